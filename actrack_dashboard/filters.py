"""The feed's filters (django-filter): verb, level, model, unread only, date range.

Actions link to their objects through django-gm2m fields, which are not form
fields, so every filter is explicit and calls the engine's chainable queryset
methods (``with_verbs``, ``at_levels``, ``involving_model``, ``unread_for``,
``between``) instead of repeating ``filter()`` chains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actrack.conf import app_settings
from actrack.models import Action
from actrack.registry import connected_models

MAX_VERB_LENGTH = 255
MAX_VERBS = 20
#: How many of the newest actions of a feed suggest verbs to filter by.
VERB_SAMPLE = 500
TRUE_VALUES = frozenset({"1", "on", "true", "yes"})
FALSE_VALUES = frozenset({"", "0", "off", "false", "no"})


def model_key(model: type[models.Model]) -> str:
    """``"app_label.model_name"``, the value of a model in forms and URLs."""
    return f"{model._meta.app_label}.{model._meta.model_name}"


def filterable_models() -> dict[str, type[models.Model]]:
    """Connected models by :func:`model_key`, sorted by their plural name."""
    models_ = sorted(connected_models(), key=lambda m: str(m._meta.verbose_name_plural))
    return {model_key(model): model for model in models_}


def recent_verbs(queryset: Any, limit: int = VERB_SAMPLE) -> list[str]:
    """Verbs of the newest ``limit`` actions of ``queryset`` (one bounded query)."""
    verbs = queryset.order_by("-timestamp", "-pk").values_list("verb", flat=True)[:limit]
    return sorted(set(verbs))


class SingleSelect(forms.SelectMultiple):
    """A one-choice ``<select>`` feeding a multiple-value field (URLs may repeat it)."""

    allow_multiple_selected = False


class VerbsField(forms.MultipleChoiceField):
    """Any well-formed verbs: known ones are offered, unknown ones match nothing."""

    def to_python(self, value: Any) -> list[str]:
        return [verb for verb in super().to_python(value) if verb != ""]

    def valid_value(self, value: Any) -> bool:
        return isinstance(value, str) and 0 < len(value) <= MAX_VERB_LENGTH and "\x00" not in value

    def validate(self, value: Any) -> None:
        super().validate(value)
        if len(value) > MAX_VERBS:
            raise ValidationError(
                _("Choose at most %(count)d verbs."), code="max_verbs", params={"count": MAX_VERBS}
            )


class StrictCheckbox(forms.CheckboxInput):
    """A checkbox that hands the field the raw value, so nonsense can be refused."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, check_test=lambda value: str(value).lower() in TRUE_VALUES)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name, "")

    def format_value(self, value: Any) -> str | None:
        return None


class StrictBooleanField(forms.Field):
    """``on``/``true``/``1``/``yes`` or ``off``/``false``/``0``/``no``/empty; else an error."""

    widget = StrictCheckbox
    default_error_messages = {"invalid": _("Enter yes or no (on/off, true/false, 1/0).")}

    def to_python(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value if value is not None else "").strip().lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise ValidationError(self.error_messages["invalid"], code="invalid")


class VerbFilter(django_filters.MultipleChoiceFilter):
    field_class = VerbsField


class UnreadFilter(django_filters.Filter):
    field_class = StrictBooleanField


class FeedFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise ValidationError(_("The start date is after the end date."), code="date_range")
        return cleaned


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def start_of(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day``, in the current time zone."""
    moment = dt.datetime.combine(day, dt.time.min)
    return timezone.make_aware(moment) if timezone.is_aware(timezone.now()) else moment


class FeedFilterSet(django_filters.FilterSet):
    """Filters of a user's feed. Pass ``request`` (the unread filter needs its user)."""

    verb = VerbFilter(label=_("Verb"), method="filter_verb", widget=SingleSelect)
    level = django_filters.MultipleChoiceFilter(
        label=_("Level"), method="filter_level", widget=forms.CheckboxSelectMultiple
    )
    model = django_filters.ChoiceFilter(
        label=_("About"), method="filter_model", empty_label=_("Anything")
    )
    unread = UnreadFilter(label=_("Unread only"), method="filter_unread")
    since = django_filters.DateFilter(label=_("From"), method="filter_since", widget=_date_input())
    until = django_filters.DateFilter(label=_("To"), method="filter_until", widget=_date_input())

    class Meta:
        model = Action
        fields: list[str] = []
        form = FeedFilterForm

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        queryset: Any = None,
        *,
        request: Any = None,
        prefix: str | None = None,
        verbs: Callable[[], Iterable[str]] | Iterable[str] = (),
    ) -> None:
        super().__init__(data, queryset, request=request, prefix=prefix)
        self.models = filterable_models()
        chosen = data.getlist("verb") if data is not None and hasattr(data, "getlist") else []

        cache: list[tuple[str, str]] = []

        def verb_choices() -> list[tuple[str, str]]:
            # Computed when the form is first rendered, not when it is validated.
            if not cache:
                known = verbs() if callable(verbs) else verbs
                offered = sorted({*known, *(v for v in chosen if isinstance(v, str) and v)})
                cache.append(("", str(_("Any verb"))))
                cache.extend((v, gettext(v)) for v in offered)
            return cache

        self.filters["verb"].extra["choices"] = verb_choices
        floor = app_settings.READABLE_LEVEL
        self.levels = {
            name: value for name, value in app_settings.LEVELS.items() if value >= floor
        }
        self.filters["level"].extra["choices"] = [
            (name, str(name).capitalize())
            for name in sorted(self.levels, key=lambda level: self.levels[level])
        ]
        self.filters["model"].extra["choices"] = [
            (key, str(model._meta.verbose_name_plural).capitalize())
            for key, model in self.models.items()
        ]

    def filter_verb(self, queryset: Any, name: str, value: list[str]) -> Any:
        return queryset.with_verbs(*value)

    def filter_level(self, queryset: Any, name: str, value: list[str]) -> Any:
        return queryset.at_levels(*(self.levels[level] for level in value))

    def filter_model(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.involving_model(self.models[value])

    def filter_unread(self, queryset: Any, name: str, value: bool) -> Any:
        return queryset.unread_for(self.request.user) if value else queryset

    def filter_since(self, queryset: Any, name: str, value: dt.date) -> Any:
        return queryset.between(start=start_of(value))

    def filter_until(self, queryset: Any, name: str, value: dt.date) -> Any:
        if value >= dt.date.max:
            return queryset
        return queryset.between(end=start_of(value + dt.timedelta(days=1)))

    def active(self) -> bool:
        """Whether any filter is set (for the "clear filters" link)."""
        if not self.is_bound or not self.form.is_valid():
            return False
        return any(value not in (None, "", [], False) for value in self.form.cleaned_data.values())
