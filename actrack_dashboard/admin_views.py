"""The staff activity dashboard: one page inside the Django admin.

Mounted on an admin site by :mod:`actrack_dashboard.admin` at
``<admin>/activity/`` (URL name ``admin:actrack_activity``), behind
``AdminSite.admin_view`` (staff only) and the permission to view actions.

One view serves the page and its fragments (``Vary: HX-Request``): an HTMX
request aimed at ``#actrack-staff-timeline`` (paging) gets
``partials/timeline.html``, any other HTMX request (the filter form) gets
``partials/results.html``, everything else the full page. Bad filters or a
malformed cursor answer 400 with the reason on the page.

Template context (public; templates live in ``actrack_dashboard/admin/``):

- everything from ``admin_site.each_context(request)`` (full page only), ``title``;
- ``filter``: the :class:`~actrack_dashboard.admin_filters.StaffActionFilterSet`;
- ``errors``: messages explaining a 400 answer (empty otherwise);
- ``items``: :class:`TimelineItem` per action of the page, newest first;
  ``next_url`` (older actions) and ``newest_url`` (back to the first page), or ``None``;
- ``chart`` (:class:`DayChart`), ``top_verbs`` and ``top_actors`` (:class:`Ranked`)
  over the ``window_days`` days ending ``window_end`` (the "to" filter, else today),
  with the other filters applied; when the window holds more than ``actor_sample``
  actions (``actors_sampled``), top actors come from the latest ``actor_sample``;
- ``deleted_items``: the latest :class:`~actrack.models.DeletedItem` rows, as
  ``(item, html)`` pairs (full page only).

Nothing shown here is marked read: actions are rendered without a user.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.cache import patch_vary_headers
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from actrack.admin_display import ObjectLinks, activity_url
from actrack.conf import app_settings
from actrack.models import Action, DeletedItem
from actrack.paging import InvalidCursor
from actrack.rendering import load_objects
from actrack_dashboard.admin_filters import StaffActionFilterSet, day_start

__all__ = ["DayChart", "Ranked", "StaffDashboardView", "TimelineItem", "can_view_actions"]

TIMELINE_ID = "actrack-staff-timeline"


def can_view_actions(site: admin.AdminSite, request: HttpRequest) -> bool:
    """Whether the user may view actions (the ``Action`` admin's rule where registered)."""
    model_admin = site._registry.get(Action)
    if model_admin is not None:
        return bool(model_admin.has_view_permission(request))
    opts = Action._meta
    return bool(request.user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}"))


@dataclass
class TimelineItem:
    action: Action
    html: str
    level_name: str
    #: The action's page in the ``Action`` admin (``None`` if the site has none).
    url: str | None


@dataclass
class Ranked:
    """One line of a top list: what (HTML), how many, a link, and the bar's share in %."""

    label: str
    count: int
    url: str | None
    share: int


@dataclass
class Bar:
    day: dt.date
    count: int
    x: float
    y: float
    width: float
    height: float
    title: str
    url: str


@dataclass
class DayChart:
    """Geometry of a small bar chart of actions per day, drawn as SVG by the template."""

    bars: list[Bar]
    width: int
    height: int
    top: int
    bottom: int
    left: int
    max_count: int
    total: int
    ticks: list[tuple[float, str, str]] = field(default_factory=list)


def day_chart(counts: dict[dt.date, int], days: list[dt.date], link: Any) -> DayChart:
    """Bars for ``days`` (oldest first), scaled to the busiest day."""
    width, height, top, bottom, left = 640, 150, 10, 22, 34
    plot_width, plot_height = width - left - 4, height - top - bottom
    slot = plot_width / max(len(days), 1)
    peak = max([counts.get(day, 0) for day in days] + [0])
    bars = []
    for index, day in enumerate(days):
        count = counts.get(day, 0)
        bar_height = round(plot_height * count / peak, 1) if peak else 0.0
        if count and bar_height < 1:
            bar_height = 1.0
        label = formats.date_format(day, "MONTH_DAY_FORMAT")
        title = ngettext("%(day)s: %(count)s action", "%(day)s: %(count)s actions", count) % {
            "day": label,
            "count": count,
        }
        bars.append(
            Bar(
                day=day,
                count=count,
                x=round(left + index * slot + slot * 0.1, 1),
                y=round(top + plot_height - bar_height, 1),
                width=round(slot * 0.8, 1),
                height=bar_height,
                title=title,
                url=link(day),
            )
        )
    # Labels under the first, middle and last bars, kept inside the drawing.
    ticks = []
    for index in sorted({0, len(days) // 2, len(days) - 1} if days else set()):
        anchor = "start" if index == 0 else "end" if index == len(days) - 1 else "middle"
        x = (
            left
            + index * slot
            + {"start": slot * 0.1, "middle": slot / 2, "end": slot * 0.9}[anchor]
        )
        ticks.append((round(x, 1), formats.date_format(days[index], "M j"), anchor))
    return DayChart(
        bars=bars,
        width=width,
        height=height,
        top=top,
        bottom=height - bottom,
        left=left,
        max_count=peak,
        total=sum(counts.get(day, 0) for day in days),
        ticks=ticks,
    )


class StaffDashboardView(View):
    """The global timeline with filters, counts per day, top verbs and actors, and the
    latest deleted items. Create with ``as_view(admin_site=site)`` and wrap in
    ``site.admin_view``."""

    admin_site: admin.AdminSite = admin.site
    template_name = "actrack_dashboard/admin/dashboard.html"
    results_template_name = "actrack_dashboard/admin/partials/results.html"
    timeline_template_name = "actrack_dashboard/admin/partials/timeline.html"
    page_size = 25
    window_days = 28
    top_size = 5
    #: Top actors are counted over at most this many of the latest actions of the window.
    actor_sample = 5000
    deleted_items_shown = 8

    def get(self, request: HttpRequest) -> HttpResponse:
        if not can_view_actions(self.admin_site, request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        htmx = getattr(request, "htmx", None)
        fragment = bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]
        paging = fragment and htmx.target == TIMELINE_ID  # type: ignore[union-attr]
        links = ObjectLinks(self.admin_site, request)
        filterset = StaffActionFilterSet(request.GET, queryset=Action.objects.all())
        context: dict[str, Any] = {
            "title": _("Activity dashboard"),
            "filter": filterset,
            "errors": [],
            "items": [],
            "next_url": None,
            "newest_url": None,
            "window_days": self.window_days,
            "timeline_id": TIMELINE_ID,
        }
        if filterset.is_valid():
            queryset = filterset.qs
            try:
                context.update(self.timeline_context(request, queryset, links))
            except InvalidCursor:
                context["errors"].append(gettext("This page link is malformed or out of date."))
            if not paging:
                context.update(self.summary_context(request, filterset, queryset, links))
        else:
            context["errors"].extend(_form_errors(filterset))
        if paging:
            template = self.timeline_template_name
        elif fragment:
            template = self.results_template_name
        else:
            template = self.template_name
            context.update(self.admin_site.each_context(request))
            context["deleted_items"] = self.latest_deleted_items(links)
        status = 400 if context["errors"] else 200
        response = TemplateResponse(request, template, context, status=status)
        patch_vary_headers(response, ["HX-Request"])
        return response

    # -- parts --------------------------------------------------------------------------

    def timeline_context(
        self, request: HttpRequest, queryset: Any, links: ObjectLinks
    ) -> dict[str, Any]:
        cursor = request.GET.get("cursor") or None
        page = queryset.page(cursor, size=self.page_size)
        items = [
            TimelineItem(
                action=action,
                html=html,
                level_name=app_settings.level_name(action.level),
                url=links.url(action),
            )
            for action, html in zip(page.actions, Action.bulk_render(page.actions), strict=True)
        ]
        return {
            "items": items,
            "next_url": _query(request, cursor=page.next_cursor) if page.next_cursor else None,
            "newest_url": _query(request, cursor=None) if cursor else None,
        }

    def summary_context(
        self,
        request: HttpRequest,
        filterset: StaffActionFilterSet,
        queryset: Any,
        links: ObjectLinks,
    ) -> dict[str, Any]:
        """Counts per day and the top verbs (one GROUP BY day, verb over the window) and
        the top actors (see :meth:`top_actors`)."""
        end = filterset.window_end()
        days = [end - dt.timedelta(days=n) for n in range(self.window_days - 1, -1, -1)]
        window = queryset.order_by().between(day_start(days[0]), day_start(end + dt.timedelta(1)))
        tz = timezone.get_current_timezone() if settings.USE_TZ else None
        per_day: Counter[dt.date] = Counter()
        per_verb: Counter[str] = Counter()
        rows = (
            window.annotate(day=TruncDate("timestamp", tzinfo=tz))
            .values("day", "verb")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            per_day[row["day"]] += row["n"]
            per_verb[row["verb"]] += row["n"]
        top = per_verb.most_common(self.top_size)
        peak = top[0][1] if top else 1
        top_verbs = [
            Ranked(gettext(verb), n, _query(request, cursor=None, verb=verb), 100 * n // peak)
            for verb, n in top
        ]
        return {
            "chart": day_chart(per_day, days, lambda day: _query(request, start=day, end=day)),
            "top_verbs": top_verbs,
            "top_actors": self.top_actors(request, window, links),
            "actors_sampled": sum(per_day.values()) > self.actor_sample,
            "actor_sample": self.actor_sample,
            "window_start": days[0],
            "window_end": end,
        }

    def top_actors(self, request: HttpRequest, window: Any, links: ObjectLinks) -> list[Ranked]:
        """The most frequent actors among the latest ``actor_sample`` actions of the window
        (all of them when it holds fewer), so the cost does not grow with the traffic:
        one index-ordered read of at most ``actor_sample`` short rows, counted here."""
        latest = window.newest_first().values_list("actor_ct_id", "actor_key")
        counts = Counter(ref for ref in latest[: self.actor_sample] if ref[0] is not None)
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: self.top_size]
        rows = [{"actor_ct_id": ct, "actor_key": key, "n": n} for (ct, key), n in top]
        wanted: dict[int, set[str]] = defaultdict(set)
        for row in rows:
            wanted[row["actor_ct_id"]].add(row["actor_key"])
        objects = load_objects(wanted, window.db)
        peak = rows[0]["n"] if rows else 1
        ranked = []
        for row in rows:
            obj = objects.get((row["actor_ct_id"], row["actor_key"]))
            url = activity_url(self.admin_site, request, obj)
            ranked.append(Ranked(links.one(obj), row["n"], url, 100 * row["n"] // peak))
        return ranked

    def latest_deleted_items(self, links: ObjectLinks) -> list[tuple[DeletedItem, SafeString]]:
        # Newest by primary key: indexed, unlike deleted_at, and the same order.
        items = DeletedItem.objects.order_by("-pk")[: self.deleted_items_shown]
        return [(item, links.one(item)) for item in items]


def _form_errors(filterset: StaffActionFilterSet) -> list[str]:
    fields = filterset.form.fields
    return [
        f"{fields[name].label}: {' '.join(messages)}" if name in fields else " ".join(messages)
        for name, messages in filterset.errors.items()
    ]


def _query(request: HttpRequest, **changes: Any) -> str:
    """``?<the current query string with changes>``; ``None`` values drop a parameter."""
    params = request.GET.copy()
    for name, value in changes.items():
        params.pop(name, None)
        if value is not None:
            params[name] = value.isoformat() if isinstance(value, dt.date) else str(value)
    if "verb" in changes or "start" in changes:
        params.pop("cursor", None)
    return f"?{urlencode(sorted(params.items()))}" if params else "?"
