"""The follow control of an object or a whole model, and the values track/untrack take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actrack.models import Tracker
from actrack_dashboard.filters import FALSE_VALUES, MAX_VERB_LENGTH, TRUE_VALUES
from actrack_dashboard.http import DashboardError
from actrack_dashboard.objects import dom_key, model_label, model_of, ref_of
from actrack_dashboard.permissions import user_can_follow

MAX_TRACKED_VERBS = 50


@dataclass
class FollowState:
    """Context of ``partials/follow_button.html`` (as ``follow``)."""

    obj: Any
    content_type_id: int
    object_id: str
    allowed: bool
    tracker: Tracker | None
    model_tracker: Tracker | None
    next_url: str

    @property
    def is_model(self) -> bool:
        return not self.object_id

    @property
    def dom_id(self) -> str:
        return f"actrack-follow-{self.content_type_id}-{dom_key(self.object_id)}"

    @property
    def label(self) -> str:
        """``"Seagull"`` or ``"every train"``."""
        if self.is_model:
            return gettext("every %(model)s") % {"model": model_label(model_of(self.obj))}
        return str(self.obj)

    @property
    def model_name(self) -> str:
        return model_label(model_of(self.obj), plural=False)

    @property
    def model_name_plural(self) -> str:
        return model_label(model_of(self.obj))

    @property
    def verbs(self) -> list[str]:
        return list(self.tracker.verbs or ()) if self.tracker else []


def follow_state(user: Any, obj: Any, next_url: str = "") -> FollowState:
    """Whether ``user`` follows ``obj`` (an instance or a model class): one query."""
    ct, key = ref_of(obj)
    allowed = user_can_follow(user, obj)
    trackers = list(Tracker.objects.owned_by(user).tracking(obj)) if allowed else []
    exact = next((t for t in trackers if t.tracked_key == key), None)
    whole = next((t for t in trackers if not t.tracked_key), None) if key else None
    return FollowState(
        obj=obj,
        content_type_id=ct.pk,
        object_id=key,
        allowed=allowed,
        tracker=exact,
        model_tracker=whole,
        next_url=next_url,
    )


def clean_verbs(data: QueryDict) -> list[str]:
    """``verbs`` values, each possibly comma-separated; ``[]`` means every verb."""
    verbs: list[str] = []
    for value in data.getlist("verbs"):
        for part in value.split(","):
            verb = part.strip()
            if not verb:
                continue
            if len(verb) > MAX_VERB_LENGTH or "\x00" in verb:
                raise DashboardError(
                    _("A verb must be at most %(max)d characters long.") % {"max": MAX_VERB_LENGTH}
                )
            if verb not in verbs:
                verbs.append(verb)
    if len(verbs) > MAX_TRACKED_VERBS:
        raise DashboardError(
            _("Follow at most %(max)d verbs at once.") % {"max": MAX_TRACKED_VERBS}
        )
    return verbs


def clean_actor_only(data: QueryDict) -> bool | None:
    """``actor_only``: ``None`` when absent or empty (keep the tracker's), else a boolean."""
    value = (data.get("actor_only") or "").strip().lower()
    if not value:
        return None
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise DashboardError(_("actor_only must be true or false."))
