"""Objects the dashboard talks about: resolving them from request values, naming them."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actrack.conf import KEY_COLUMN_LENGTH
from actrack.models import Tracker
from actrack.rendering import load_objects
from actrack_dashboard.http import DashboardError, NotFound

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_model_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, models.Model)


def model_of(obj: Any) -> type[models.Model]:
    return obj if is_model_class(obj) else type(obj)


def check_key(field: models.Field[Any, Any], value: Any, what: str) -> Any:
    """``value`` as a valid value of ``field`` (in the database's range), else 404."""
    try:
        cleaned = field.to_python(value)
        field.run_validators(cleaned)
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:
        raise NotFound(_("No such %(what)s.") % {"what": what}) from exc
    return cleaned


def content_type_from(value: Any) -> ContentType:
    """The content type whose id is ``value`` (a string of digits or an int)."""
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or len(text) > 19:
        raise DashboardError(_("content_type_id must be a positive integer."))
    ct_pk = ContentType._meta.pk
    assert ct_pk is not None
    ct_id = check_key(ct_pk, text, str(_("content type")))
    try:
        ct = ContentType.objects.get_for_id(ct_id)
    except ContentType.DoesNotExist as exc:
        raise NotFound(_("Unknown content type %(id)s.") % {"id": ct_id}) from exc
    if ct.model_class() is None:
        raise NotFound(_("The model of content type %(id)s is gone.") % {"id": ct_id})
    return ct


def object_from(ct: ContentType, object_id: Any) -> Any:
    """The instance of ``ct``'s model with key ``object_id``, or the model for ``""``."""
    model = ct.model_class()
    assert model is not None
    key = "" if object_id is None else str(object_id)
    if not key:
        return model
    if len(key) > KEY_COLUMN_LENGTH:
        raise DashboardError(
            _("object_id must be at most %(max)d characters.") % {"max": KEY_COLUMN_LENGTH}
        )
    if "\x00" in key:
        raise DashboardError(_("object_id cannot contain NUL characters."))
    pk_field = model._meta.pk
    assert pk_field is not None
    name = str(model._meta.verbose_name)
    pk = check_key(pk_field, key, name)
    obj = model._default_manager.filter(pk=pk).first()
    if obj is None:
        raise NotFound(_("No %(model)s with id %(id)s.") % {"model": name, "id": key})
    return obj


def ref_of(obj: Any) -> tuple[ContentType, str]:
    """``(content type, key)``; the key is ``""`` for a model class."""
    ct = ContentType.objects.get_for_model(obj)
    return ct, "" if is_model_class(obj) else str(obj.pk)


def dom_key(key: str) -> str:
    """A key usable inside an HTML id (hashed when it has other characters)."""
    if not key:
        return "all"
    if _SAFE_ID.match(key):
        return key
    return "h" + hashlib.sha256(key.encode()).hexdigest()[:16]


def object_actions_url(obj: Any) -> str:
    """URL of the page showing ``obj``'s actions ("" for anything but a saved instance)."""
    if not isinstance(obj, models.Model) or obj.pk is None:
        return ""
    ct, key = ref_of(obj)
    return reverse(
        "actrack_dashboard:object_actions",
        kwargs={"content_type_id": ct.pk, "object_id": key},
    )


def model_label(model: type[models.Model] | None, plural: bool = True) -> str:
    if model is None:
        return gettext("(unknown model)")
    meta = model._meta
    return str(meta.verbose_name_plural if plural else meta.verbose_name)


@dataclass
class TrackerRow:
    """A tracker as the trackers page shows it."""

    tracker: Tracker
    obj: Any
    model: type[models.Model] | None
    content_type_id: int
    object_id: str
    description: str
    url: str
    editable: bool

    @property
    def dom_id(self) -> str:
        return f"tracker-{self.tracker.pk}"

    @property
    def is_model(self) -> bool:
        return not self.object_id

    @property
    def model_name(self) -> str:
        return model_label(self.model, plural=False)

    @property
    def verbs_text(self) -> str:
        return ", ".join(self.tracker.verbs or ())


def tracker_rows(trackers: list[Tracker], user: Any) -> list[TrackerRow]:
    """Rows for ``trackers``, their objects loaded in bulk (one query per model).

    An object links to its activity page when ``user`` may see it.
    """
    from actrack_dashboard.permissions import user_can_follow

    wanted: dict[int, set[str]] = defaultdict(set)
    for tracker in trackers:
        if tracker.tracked_key:
            wanted[tracker.tracked_ct_id].add(tracker.tracked_key)
    using = trackers[0]._state.db or "default" if trackers else "default"
    objects = load_objects(wanted, using)
    rows = []
    for tracker in trackers:
        ct = ContentType.objects.get_for_id(tracker.tracked_ct_id)
        model = ct.model_class()
        if not tracker.tracked_key:
            obj: Any = model
            description = model_label(model).capitalize()
            url = ""
            editable = model is not None and user_can_follow(user, model)
        else:
            obj = objects.get((tracker.tracked_ct_id, tracker.tracked_key))
            description = str(obj) if obj is not None else gettext("(deleted)")
            editable = obj is not None and user_can_follow(user, obj)
            url = object_actions_url(obj) if editable else ""
        rows.append(
            TrackerRow(
                tracker=tracker,
                obj=obj,
                model=model,
                content_type_id=tracker.tracked_ct_id,
                object_id=tracker.tracked_key,
                description=description,
                url=url,
                editable=editable,
            )
        )
    return rows
