"""The staff activity dashboard inside the admin (actrack_dashboard.admin_views)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone
from django.utils.html import strip_tags

import actrack
from actrack.models import Action, DeletedItem, Tracker
from actrack_dashboard.admin_views import StaffDashboardView
from tests.conftest import make_station, make_train, make_user
from tests.demo.models import Station, Train
from tests.test_admin.conftest import XSS, History, hx, log

pytestmark = pytest.mark.django_db

URL = "/admin/activity/"


def shown(response: Any) -> list[int]:
    return [item.action.pk for item in response.context["items"]]


def ct_id(model: Any) -> int:
    return ContentType.objects.get_for_model(model).pk


# -- access -------------------------------------------------------------------------------


def test_full_page_inside_the_admin(history: History, staff_client: Client) -> None:
    response = staff_client.get(URL)
    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    html = response.content.decode()
    assert "<html" in html
    assert "Django administration" in html  # admin base template, site header
    assert 'id="nav-sidebar"' in html  # each_context: the admin's navigation
    assert '<svg class="actrack-chart"' in html
    assert 'id="actrack-staff-filters"' in html
    assert "django_htmx/htmx-2.min.js" in html
    for action in Action.objects.all():
        assert f'id="action-{action.pk}"' in html


def test_viewer_with_permission_sees_it(history: History, viewer_client: Client) -> None:
    assert viewer_client.get(URL).status_code == 200


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_non_staff_are_sent_to_the_admin_login(
    history: History, user_client: Client, who: str
) -> None:
    client = Client() if who == "anonymous" else user_client
    for headers in ({}, hx()):
        response = client.get(URL, headers=headers)
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={URL}"


def test_staff_who_may_not_view_actions_are_refused(
    history: History, powerless_staff_client: Client
) -> None:
    assert powerless_staff_client.get(URL).status_code == 403
    assert powerless_staff_client.get(URL, headers=hx()).status_code == 403


def test_admin_index_links_to_it_only_for_those_who_may_see_it(
    history: History, staff_client: Client, powerless_staff_client: Client
) -> None:
    assert f'href="{URL}"' in staff_client.get("/admin/").content.decode()
    assert f'href="{URL}"' in staff_client.get("/admin/actrack/").content.decode()
    assert f'href="{URL}"' not in powerless_staff_client.get("/admin/").content.decode()
    # The Actions changelist links to it too.
    assert f'href="{URL}"' in staff_client.get("/admin/actrack/action/").content.decode()


# -- fragments ----------------------------------------------------------------------------


def test_htmx_filter_request_gets_the_results_fragment(
    history: History, staff_client: Client
) -> None:
    response = staff_client.get(URL, {"level": actrack.level.ERROR}, headers=hx())
    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="actrack-staff-results"')
    assert "<html" not in html
    assert '<svg class="actrack-chart"' in html
    assert shown(response) == [history.closed.pk]


def test_htmx_paging_request_gets_the_timeline_fragment(
    history: History, staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StaffDashboardView, "page_size", 2)
    first = staff_client.get(URL)
    next_url = first.context["next_url"]
    assert next_url
    response = staff_client.get(URL + next_url, headers=hx(target="actrack-staff-timeline"))
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="actrack-staff-timeline"')
    assert "<svg" not in html
    assert "chart" not in response.context


def test_history_restore_gets_the_full_page(history: History, staff_client: Client) -> None:
    response = staff_client.get(URL, headers=hx(**{"HX-History-Restore-Request": "true"}))
    assert "<html" in response.content.decode()


# -- timeline and cursor paging -----------------------------------------------------------


def test_cursor_pages_cover_every_action_once_newest_first(
    history: History, staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StaffDashboardView, "page_size", 3)
    seen: list[int] = []
    response = staff_client.get(URL)
    assert response.context["newest_url"] is None
    while True:
        seen += shown(response)
        if not response.context["next_url"]:
            break
        response = staff_client.get(URL + response.context["next_url"])
        assert response.context["newest_url"] == "?"
    assert seen == list(Action.objects.newest_first().values_list("pk", flat=True))


def test_paging_keeps_the_filters(
    history: History, staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StaffDashboardView, "page_size", 1)
    response = staff_client.get(URL, {"verb": "departed"})
    assert shown(response) == [history.old_departed.pk]
    second = staff_client.get(URL + response.context["next_url"])
    assert shown(second) == [history.departed.pk]
    assert second.context["next_url"] is None


def test_timeline_shows_handler_renderings(history: History, staff_client: Client) -> None:
    response = staff_client.get(URL)
    html = response.content.decode()
    for action in Action.objects.all():
        assert action.render() in html
    items = {item.action.pk: item for item in response.context["items"]}
    assert items[history.departed.pk].level_name == "WARNING"
    assert items[history.boarded.pk].url == f"/admin/actrack/action/{history.boarded.pk}/change/"


def test_showing_the_dashboard_writes_nothing(
    history: History, staff_client: Client, count_queries: Any
) -> None:
    watcher = make_user("watcher")
    actrack.track(watcher, history.seagull, actor_only=False)
    Tracker.objects.update(created=timezone.now() - dt.timedelta(days=1))
    with count_queries() as queries:
        staff_client.get(URL)
        staff_client.get(URL, headers=hx())
    assert queries.writes() == []
    assert history.boarded.is_unread_for(watcher)


# -- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"level": 40}, ["departed"]),
        ({"verb": "boarded"}, ["boarded"]),
        ({"actor_type": "train"}, ["departed"]),
        ({"actor_type": "deleteditem"}, ["old_departed"]),
        ({"target_type": "station"}, ["closed", "old_departed", "departed"]),
        ({"deleted": "on"}, ["fault", "old_departed"]),
        ({"verb": "departed", "deleted": "on"}, ["old_departed"]),
    ],
)
def test_each_filter_narrows(
    history: History, staff_client: Client, query: dict[str, Any], expected: list[str]
) -> None:
    models = {"train": Train, "station": Station, "deleteditem": DeletedItem}
    query = {
        key: ct_id(models[value]) if key.endswith("_type") else value
        for key, value in query.items()
    }
    response = staff_client.get(URL, query)
    assert response.status_code == 200
    assert shown(response) == [getattr(history, name).pk for name in expected]


def test_date_range_filter(history: History, staff_client: Client) -> None:
    day = timezone.localtime(history.synced.timestamp).date()
    response = staff_client.get(URL, {"start": day.isoformat(), "end": day.isoformat()})
    assert shown(response) == [history.synced.pk]
    response = staff_client.get(URL, {"start": (day + dt.timedelta(days=1)).isoformat()})
    assert history.synced.pk not in shown(response)
    assert len(shown(response)) == 6


def test_filter_choices_list_what_is_present(history: History, staff_client: Client) -> None:
    form = staff_client.get(URL).context["filter"].form
    verbs = [value for value, _label in form.fields["verb"].choices if value]
    assert verbs == sorted(
        ["boarded", "closed", "commented", "departed", "reported a fault", "synced timetable"]
    )
    actor_types = {label for value, label in form.fields["actor_type"].choices if value}
    assert actor_types == {"Deleted item", "Train", "User"}
    levels = [label for value, label in form.fields["level"].choices if value]
    assert levels == ["NULL", "DEBUG", "HIDDEN", "INFO", "WARNING", "ERROR"]


@pytest.mark.parametrize(
    "query",
    [
        {"verb": "exploded"},
        {"level": "99"},
        {"level": "loud"},
        {"actor_type": "999999"},
        {"target_type": "x"},
        {"start": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"cursor": "x" * 500},
    ],
)
def test_bad_input_is_a_400_with_a_message(
    history: History, staff_client: Client, query: dict[str, str]
) -> None:
    for headers in ({}, hx(), hx(target="actrack-staff-timeline")):
        response = staff_client.get(URL, query, headers=headers)
        assert response.status_code == 400
        assert 'class="errornote"' in response.content.decode() or response.context["errors"]


# -- summaries ----------------------------------------------------------------------------


def test_counts_per_day_top_verbs_and_top_actors(db: Any, staff_client: Client) -> None:
    today = timezone.localdate()
    noon = timezone.make_aware(dt.datetime.combine(today, dt.time(12)))
    seagull, ashbury = make_train("Seagull"), make_station("Ashbury")
    for days_ago, count in ((0, 3), (1, 1), (5, 2), (40, 7)):
        for _ in range(count):
            log(seagull, "departed", targets=ashbury, timestamp=noon - dt.timedelta(days_ago))
    log(ashbury, "closed", timestamp=noon)
    response = staff_client.get(URL)
    chart = response.context["chart"]
    counts = {bar.day: bar.count for bar in chart.bars}
    assert len(chart.bars) == 28
    assert counts[today] == 4
    assert counts[today - dt.timedelta(days=1)] == 1
    assert counts[today - dt.timedelta(days=5)] == 2
    assert chart.total == 7 and chart.max_count == 4  # the 40-day-old ones are out
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.day == today and tallest.height == chart.bottom - chart.top
    assert [(r.label, r.count) for r in response.context["top_verbs"]] == [
        ("departed", 6),
        ("closed", 1),
    ]
    actors = response.context["top_actors"]
    assert [(strip_tags(r.label), r.count) for r in actors] == [("Seagull", 6), ("Ashbury", 1)]
    assert actors[0].url.startswith("/admin/actrack/action/?object_ct=")


def test_top_actors_come_from_the_latest_actions_when_the_window_is_busy(
    db: Any, staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = timezone.now()
    seagull, owl = make_train("Seagull"), make_train("Night Owl")
    for hours in range(5, 10):
        log(seagull, "departed", timestamp=now - dt.timedelta(hours=hours))
    for hours in range(3):
        log(owl, "departed", timestamp=now - dt.timedelta(hours=hours))
    response = staff_client.get(URL)
    assert [strip_tags(r.label) for r in response.context["top_actors"]] == [
        "Seagull",
        "Night Owl",
    ]
    assert not response.context["actors_sampled"]
    monkeypatch.setattr(StaffDashboardView, "actor_sample", 4)
    response = staff_client.get(URL)
    assert [(strip_tags(r.label), r.count) for r in response.context["top_actors"]] == [
        ("Night Owl", 3),
        ("Seagull", 1),
    ]
    assert response.context["actors_sampled"]
    assert "Top actors, latest 4 actions" in response.content.decode()


def test_summaries_follow_the_filters_and_the_end_date(db: Any, staff_client: Client) -> None:
    noon = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(12)))
    seagull = make_train("Seagull")
    log(seagull, "departed", timestamp=noon - dt.timedelta(days=60))
    log(seagull, "arrived", timestamp=noon - dt.timedelta(days=59))
    end = (timezone.localdate() - dt.timedelta(days=59)).isoformat()
    response = staff_client.get(URL, {"end": end, "verb": "departed"})
    assert response.context["window_end"].isoformat() == end
    assert response.context["chart"].total == 1
    assert [r.label for r in response.context["top_verbs"]] == ["departed"]


def test_latest_deleted_items(history: History, staff_client: Client) -> None:
    response = staff_client.get(URL)
    items = [item for item, _html in response.context["deleted_items"]]
    assert items == list(DeletedItem.objects.order_by("-pk"))
    assert "Train Old Faithful (retired)" in response.content.decode()


# -- escaping and queries -----------------------------------------------------------------


def test_names_verbs_and_data_are_escaped(db: Any, staff_client: Client) -> None:
    evil_train = make_train(XSS)
    log(evil_train, XSS, targets=make_station(XSS), note=XSS)
    evil_train.delete()
    for query in ({}, {"verb": XSS}):
        for headers in ({}, hx()):
            html = staff_client.get(URL, query, headers=headers).content.decode()
            assert "<script>alert" not in html
            assert "&lt;script&gt;alert(" in html


def _many_actions(count: int) -> None:
    users = [make_user() for _ in range(3)]
    trains = [make_train() for _ in range(3)]
    stations = [make_station() for _ in range(3)]
    with actrack.batch():
        for n in range(count):
            actrack.log(
                [users, trains][n % 2][n % 3],
                ["boarded", "booked", "commented"][n % 3],
                targets=[trains[n % 3], stations[(n + 1) % 3]],
                related=stations[n % 3],
                grouping_delay=-1,
            )


def test_query_count_is_the_same_for_10_and_100_actions_per_page(
    db: Any, staff_client: Client, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_actions(120)
    counts = {}
    for size in (10, 100):
        monkeypatch.setattr(StaffDashboardView, "page_size", size)
        staff_client.get(URL)  # warm caches (content types)
        with count_queries() as queries:
            response = staff_client.get(URL)
        assert len(response.context["items"]) == size
        counts[size] = len(queries)
    # session, user, 3 filter choice lists, the page, its link rows, users, trains,
    # stations, day x verb counts, top actors, their users and trains, deleted items: 15.
    assert counts[10] == counts[100] <= 15, counts
    statements = " ".join(queries.statements).upper()
    assert "SELECT DISTINCT" not in statements


def test_paging_fragment_skips_the_summaries(
    db: Any, staff_client: Client, count_queries: Any
) -> None:
    _many_actions(30)
    staff_client.get(URL)
    with count_queries() as queries:
        staff_client.get(URL, headers=hx(target="actrack-staff-timeline"))
    # session, user, 3 filter choice lists, the page, link rows, users, trains, stations.
    assert len(queries) <= 10


def test_chart_svg_is_well_formed_numbers(history: History, staff_client: Client) -> None:
    html = staff_client.get(URL).content.decode()
    svg = html[html.index("<svg class") : html.index("</svg>")]
    for value in re.findall(r' (?:x|y|width|height)="([^"]*)"', svg):
        float(value)  # never a localized "12,5"
