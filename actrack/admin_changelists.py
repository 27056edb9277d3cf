"""Changelists that stay fast on millions of rows.

- :class:`EstimatedCountPaginator`: counts exact up to a cap, the planner's
  estimate for an unfiltered table on PostgreSQL, else "more than N";
- :class:`BoundedChangeList` keeps the indexed order whatever ``?o=`` says;
- :class:`BoundedAdmin` puts them together with ``show_full_result_count``
  and facet counts off;
- :class:`ActionChangeList` renders a page of actions in bulk and draws a
  date hierarchy from one ``MIN``/``MAX`` query; :class:`TrackerChangeList`
  loads a page's tracked objects in bulk.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from actrack.admin_display import ObjectLinks
from actrack.models import Action, Tracker
from actrack.rendering import load_objects

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

__all__ = [
    "ActionChangeList",
    "BoundedAdmin",
    "BoundedChangeList",
    "EstimatedCountPaginator",
    "TrackerChangeList",
    "local",
]

#: Keys of what ``ActionChangeList`` stores on each action of the page.
RENDERED = "_actrack_admin_rendered"
LINKS = "_actrack_admin_links"


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never scans a big table.

    ``count`` is exact up to ``cap``. Beyond it, for an unfiltered queryset on
    PostgreSQL it is the planner's row estimate (``pg_class.reltuples``), and
    otherwise ``cap`` itself. ``count_kind`` tells which ("exact",
    "estimated" or "capped") so templates can say "about" or "more than".
    """

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        *,
        cap: int = 1000,
    ) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.cap = cap
        self.count_kind = "exact"

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        estimate = self.estimate(queryset)
        if estimate is not None and estimate > self.cap:
            self.count_kind = "estimated"
            return estimate
        counted = queryset.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.count_kind = "capped"
            return self.cap
        return counted

    @staticmethod
    def estimate(queryset: QuerySet[Any]) -> int | None:
        """The planner's row count of an unfiltered queryset's table, on PostgreSQL."""
        connection = connections[queryset.db]
        query = queryset.query
        if connection.vendor != "postgresql" or query.where or query.distinct:
            return None
        if query.combinator or query.is_sliced:
            return None
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
        # -1 (never analysed) and missing tables give no estimate.
        return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


class BoundedChangeList(ChangeList):
    """A changelist that keeps the admin's (indexed) order, whatever ``?o=`` says."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        # actrack's admins order by "-pk" or the model's ordering, which ends in "-pk".
        return list(self.model_admin.get_ordering(request) or self.lookup_opts.ordering or ())


class BoundedAdmin(_ModelAdmin):
    """Changelist settings shared by actrack's admins: bounded counts, no facets,
    the indexed order only."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    sortable_by = ()
    #: Counts are exact up to this many rows (and a few pages past the current one).
    count_cap = 1000
    count_pages_ahead = 5

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> EstimatedCountPaginator:
        try:
            page = max(1, int(request.GET.get(PAGE_VAR, 1)))
        except ValueError:
            page = 1
        cap = max(self.count_cap, (page + self.count_pages_ahead) * per_page)
        return EstimatedCountPaginator(
            queryset, per_page, orphans, allow_empty_first_page, cap=cap
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BoundedChangeList


class ActionChangeList(BoundedChangeList):
    """Renders the page's actions in bulk and draws a bounded date hierarchy."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        actions: list[Action] = list(self.result_list)
        links = ObjectLinks(self.model_admin.admin_site, request)
        # No user: rendering for staff never marks anything read.
        for action, html in zip(actions, Action.bulk_render(actions), strict=True):
            action.__dict__[RENDERED] = html
            action.__dict__[LINKS] = links
        self.result_list = actions

    def bounded_date_hierarchy(self) -> dict[str, Any]:
        """Context for ``admin/date_hierarchy.html`` from one MIN/MAX query.

        Django's own tag lists the years, months or days that hold rows with a
        ``DISTINCT`` over the matching rows (the whole table at first). This
        lists every period between the first and the last action instead, some
        of which may hold no matching action.
        """
        field = str(self.date_hierarchy)
        names = (f"{field}__year", f"{field}__month", f"{field}__day")
        year, month, day = (self.params.get(name) for name in names)

        def link(filters: dict[str, Any]) -> str:
            return self.get_query_string(filters, [f"{field}__"])

        if year and month and day:
            date = dt.date(int(year), int(month), int(day))
            back = {"link": link({names[0]: year, names[1]: month}), "title": _month(date)}
            return {"show": True, "back": back, "choices": [{"title": _day(date)}]}
        # The bounds of every action, not of the matching ones: two index probes, where
        # MIN/MAX over a filtered set can scan it all (1 s at 1M actions by target type).
        bounds = self.root_queryset.order_by().aggregate(first=Min(field), last=Max(field))
        if bounds["first"] is None:
            return {"show": bool(year), "back": {"link": link({}), "title": _("All dates")}}
        first, last = (_local_date(bounds["first"]), _local_date(bounds["last"]))
        if not year and first.year == last.year:
            year = str(first.year)
            if first.month == last.month:
                month = str(first.month)
        if year:
            start = dt.date(int(year), int(month or 1), 1)
            end = (
                dt.date(int(year) + (month == "12"), int(month) % 12 + 1, 1)
                if month
                else (dt.date(int(year) + 1, 1, 1))
            )
            first, last = max(first, start), min(last, end - dt.timedelta(days=1))
        if year and month:
            days = _dates_between(first, last, "day")
            return {
                "show": True,
                "back": {"link": link({names[0]: year}), "title": year},
                "choices": [
                    {
                        "link": link({names[0]: year, names[1]: month, names[2]: d.day}),
                        "title": _day(d),
                    }
                    for d in days
                ],
            }
        if year:
            return {
                "show": True,
                "back": {"link": link({}), "title": _("All dates")},
                "choices": [
                    {"link": link({names[0]: year, names[1]: d.month}), "title": _month(d)}
                    for d in _dates_between(first, last, "month")
                ],
            }
        return {
            "show": True,
            "back": None,
            "choices": [
                {"link": link({names[0]: str(y)}), "title": str(y)}
                for y in range(first.year, last.year + 1)
            ],
        }


def local(value: dt.datetime) -> dt.datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def _local_date(value: dt.datetime) -> dt.date:
    return local(value).date()


def _dates_between(first: dt.date, last: dt.date, unit: str) -> list[dt.date]:
    """Each day, or the first day of each month, from ``first`` to ``last``."""
    if unit == "day":
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    months = (last.year - first.year) * 12 + last.month - first.month
    return [
        dt.date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, 1)
        for n in range(months + 1)
    ]


def _month(date: dt.date) -> str:
    return capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT"))


def _day(date: dt.date) -> str:
    return capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))


class TrackerChangeList(BoundedChangeList):
    """Loads the page's tracked objects in bulk (one query per content type)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        trackers: list[Tracker] = list(self.result_list)
        wanted: dict[int, set[str]] = defaultdict(set)
        for tracker in trackers:
            if tracker.tracked_key:
                wanted[tracker.tracked_ct_id].add(tracker.tracked_key)
        objects = load_objects(wanted, self.queryset.db)
        links = ObjectLinks(self.model_admin.admin_site, request)
        generic_fk: Any = Tracker._meta.get_field("tracked_object")
        for tracker in trackers:
            if tracker.tracked_key:
                # Fill the generic foreign key's cache (None for vanished objects), so
                # ``tracker.tracked_object`` and ``str(tracker)`` cost no query.
                key = (tracker.tracked_ct_id, tracker.tracked_key)
                generic_fk.set_cached_value(tracker, objects.get(key))
            tracker.__dict__[LINKS] = links
        self.result_list = trackers
