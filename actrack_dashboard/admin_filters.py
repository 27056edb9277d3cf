"""The filters of the staff activity dashboard (django-filter).

The same dimensions as the ``Action`` admin's list filters (level, verb,
actor type, target type, involves a deleted item) plus a date range. Choices
come from :mod:`actrack.admin_filters`, so they list what is present without
scanning the table. Each filter calls an ``ActionQuerySet`` method.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actrack.admin_filters import content_type_choices, distinct_values, level_choices
from actrack.models import Action, ActionTarget

__all__ = ["StaffActionFilterSet", "day_start"]


def _verb_choices() -> list[tuple[str, str]]:
    return [(verb, gettext(verb)) for verb in distinct_values(Action, "verb")]


def _actor_type_choices() -> list[tuple[str, str]]:
    return content_type_choices(Action, "actor_ct")


def _target_type_choices() -> list[tuple[str, str]]:
    return content_type_choices(ActionTarget, "obj_ct")


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in the current time zone (naive without USE_TZ)."""
    midnight = dt.datetime.combine(day, dt.time.min)
    return timezone.make_aware(midnight) if settings.USE_TZ else midnight


class StaffActionFilterSet(django_filters.FilterSet):
    """Filters over every action, for staff."""

    verb = django_filters.ChoiceFilter(
        label=_("Verb"), choices=_verb_choices, empty_label=_("All verbs"), method="by_verb"
    )
    level = django_filters.ChoiceFilter(
        label=_("Level"), choices=level_choices, empty_label=_("All levels"), method="by_level"
    )
    actor_type = django_filters.ChoiceFilter(
        label=_("Actor type"),
        choices=_actor_type_choices,
        empty_label=_("All actor types"),
        method="by_actor_type",
    )
    target_type = django_filters.ChoiceFilter(
        label=_("Target type"),
        choices=_target_type_choices,
        empty_label=_("All target types"),
        method="by_target_type",
    )
    deleted = django_filters.BooleanFilter(
        label=_("Involves a deleted item"),
        widget=forms.CheckboxInput,
        method="by_deleted",
    )
    start = django_filters.DateFilter(
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
        method="from_day",
    )
    end = django_filters.DateFilter(
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}),
        method="to_day",
    )

    class Meta:
        model = Action
        fields: list[str] = []

    def by_verb(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.with_verbs(value) if value else queryset  # type: ignore[attr-defined]

    def by_level(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.at_levels(int(value)) if value else queryset  # type: ignore[attr-defined]

    def by_actor_type(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.by_actor_model(_ct(value)) if value else queryset  # type: ignore[attr-defined]

    def by_target_type(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.by_target_model(_ct(value)) if value else queryset  # type: ignore[attr-defined]

    def by_deleted(self, queryset: QuerySet[Any], name: str, value: bool | None) -> QuerySet[Any]:
        return queryset.involving_deleted_items() if value else queryset  # type: ignore[attr-defined]

    def from_day(self, queryset: QuerySet[Any], name: str, value: dt.date | None) -> QuerySet[Any]:
        return queryset.between(start=day_start(value)) if value else queryset  # type: ignore[attr-defined]

    def to_day(self, queryset: QuerySet[Any], name: str, value: dt.date | None) -> QuerySet[Any]:
        if not value:
            return queryset
        return queryset.between(end=day_start(value + dt.timedelta(days=1)))  # type: ignore[attr-defined]

    def window_end(self) -> dt.date:
        """The last day the summaries cover: the "to" date, else today."""
        end = self.form.cleaned_data.get("end") if self.is_bound and self.is_valid() else None
        return end or timezone.localdate()


def _ct(value: str) -> Any:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_id(int(value))
