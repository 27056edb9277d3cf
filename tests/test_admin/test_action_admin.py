"""The read-only Action admin: pages, filters, rendering, deleted items, escaping, queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import actrack
from actrack.admin import ActionAdmin, EstimatedCountPaginator
from actrack.models import Action, DeletedItem
from tests.conftest import make_station, make_train, make_user
from tests.demo.models import Station, Train
from tests.test_admin.conftest import XSS, History, ids, log

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/actrack/action/"


def detail(action: Action) -> str:
    return reverse("admin:actrack_action_change", args=[action.pk])


def ct_id(model: Any) -> int:
    return ContentType.objects.get_for_model(model).pk


# -- access -------------------------------------------------------------------------------


def test_changelist_and_detail_answer_200_for_staff(
    history: History, staff_client: Client, viewer_client: Client
) -> None:
    for client in (staff_client, viewer_client):
        assert client.get(CHANGELIST).status_code == 200
        assert client.get(detail(history.boarded)).status_code == 200


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_non_staff_are_sent_to_the_admin_login(
    history: History, user_client: Client, who: str
) -> None:
    client = Client() if who == "anonymous" else user_client
    for url in (CHANGELIST, detail(history.boarded)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_staff_without_permission_is_refused(
    history: History, powerless_staff_client: Client
) -> None:
    assert powerless_staff_client.get(CHANGELIST).status_code == 403
    assert powerless_staff_client.get(detail(history.boarded)).status_code == 403


def test_actions_cannot_be_added_changed_or_deleted(
    history: History, staff_client: Client
) -> None:
    assert staff_client.get("/admin/actrack/action/add/").status_code == 403
    delete_url = reverse("admin:actrack_action_delete", args=[history.boarded.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = staff_client.post(detail(history.boarded), {"verb": "hacked"})
    assert response.status_code == 403
    history.boarded.refresh_from_db()
    assert history.boarded.verb == "boarded"
    # No bulk action either (no checkbox column, no "delete selected").
    page = staff_client.get(CHANGELIST)
    assert page.context["action_form"] is None
    assert Action.objects.count() == 7


# -- what the list shows ------------------------------------------------------------------


def test_list_shows_every_action_newest_first(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST)
    assert ids(response) == list(Action.objects.newest_first().values_list("pk", flat=True))


def test_each_row_is_the_handlers_rendering(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST)
    html = response.content.decode()
    for action in Action.objects.all():
        assert action.render() in html
    assert "alice boarded Seagull in relation to Ashbury, 0\xa0minutes ago" in html


def test_level_is_shown_by_name(history: History, staff_client: Client) -> None:
    html = staff_client.get(CHANGELIST).content.decode()
    for name in ("INFO", "WARNING", "DEBUG", "ERROR"):
        assert f'<td class="field-level_name">{name}</td>' in html


def test_objects_link_to_their_admin_pages_where_registered(
    history: History, staff_client: Client
) -> None:
    html = staff_client.get(CHANGELIST).content.decode()
    alice_url = reverse("admin:auth_user_change", args=[history.alice.pk])
    assert f'<a href="{alice_url}">alice</a>' in html
    # The demo registers its models (tests/demo/admin.py): trains link too.
    train_url = reverse("admin:demo_train_change", args=[history.seagull.pk])
    assert f'<a href="{train_url}">Seagull</a>' in html


def test_deleted_items_show_their_description_marked_as_deleted(
    history: History, staff_client: Client
) -> None:
    html = staff_client.get(CHANGELIST).content.decode()
    item_url = reverse("admin:actrack_deleteditem_change", args=[history.retired.pk])
    assert f'<a href="{item_url}">Train Old Faithful (retired)</a>' in html
    assert '<span class="actrack-deleted-mark" title="Deleted Train">deleted</span>' in html
    # The deleted note was not connected: nothing kept but "(deleted)".
    assert '<span class="actrack-vanished">(deleted)</span>' in html


def test_rendering_for_staff_marks_nothing_read(history: History, staff_client: Client) -> None:
    watcher = make_user("watcher")
    actrack.track(watcher, history.seagull, actor_only=False)
    from actrack.models import Tracker

    Tracker.objects.update(created=timezone.now() - dt.timedelta(days=1))
    unread = [history.boarded, history.departed]
    assert Action.bulk_is_unread_for(watcher, unread) == [True, True]
    staff_client.get(CHANGELIST)
    staff_client.get(detail(history.boarded))
    assert Action.bulk_is_unread_for(watcher, unread) == [True, True]


# -- detail page --------------------------------------------------------------------------


def test_detail_shows_rendering_objects_and_pretty_data(
    history: History, staff_client: Client
) -> None:
    html = staff_client.get(detail(history.boarded)).content.decode()
    assert history.boarded.render() in html
    assert '<pre class="actrack-json">{\n  &quot;seat&quot;: &quot;12A&quot;\n}</pre>' in html
    assert reverse("admin:auth_user_change", args=[history.alice.pk]) in html


def test_detail_shows_deleted_items_serialization(history: History, staff_client: Client) -> None:
    html = staff_client.get(detail(history.fault)).content.decode()
    assert "Train Old Faithful (retired)" in html
    assert "&quot;name&quot;: &quot;Old Faithful&quot;" in html


def test_missing_action_redirects_to_the_list(staff_client: Client) -> None:
    response = staff_client.get("/admin/actrack/action/999999/change/")
    assert response.status_code == 302


# -- filters ------------------------------------------------------------------------------


def test_level_filter(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST, {"level": actrack.level.WARNING})
    assert ids(response) == [history.departed.pk]
    choices = [
        c["display"]
        for c in response.context["cl"].filter_specs[0].choices(response.context["cl"])
    ]
    assert choices == ["All", "NULL", "DEBUG", "HIDDEN", "INFO", "WARNING", "ERROR"]


def test_verb_filter_lists_present_verbs(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST, {"verb": "departed"})
    assert ids(response) == [history.old_departed.pk, history.departed.pk]
    verb_filter = response.context["cl"].filter_specs[1]
    assert [value for value, _label in verb_filter.lookup_choices] == [
        "boarded",
        "closed",
        "commented",
        "departed",
        "reported a fault",
        "synced timetable",
    ]


def test_actor_type_filter(history: History, staff_client: Client) -> None:
    trains = staff_client.get(CHANGELIST, {"actor_type": ct_id(Train)})
    assert ids(trains) == [history.departed.pk]
    deleted = staff_client.get(CHANGELIST, {"actor_type": ct_id(DeletedItem)})
    assert ids(deleted) == [history.old_departed.pk]
    labels = dict(trains.context["cl"].filter_specs[2].lookup_choices)
    assert set(labels.values()) == {"Deleted item", "Train", "User"}


def test_target_type_filter(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST, {"target_type": ct_id(Station)})
    expected = [history.closed, history.old_departed, history.departed]
    assert ids(response) == [a.pk for a in expected]
    labels = set(dict(response.context["cl"].filter_specs[3].lookup_choices).values())
    assert labels == {"Deleted item", "Note", "Station", "Train"}


def test_involves_a_deleted_item_filter(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST, {"deleted": "1"})
    assert ids(response) == [history.fault.pk, history.old_departed.pk]


def test_object_filter_shows_one_objects_actions(history: History, staff_client: Client) -> None:
    query = {"object_ct": ct_id(Train), "object_key": history.seagull.pk}
    response = staff_client.get(CHANGELIST, query)
    assert ids(response) == [history.fault.pk, history.departed.pk, history.boarded.pk]
    assert "Seagull" in [
        c["display"]
        for c in response.context["cl"].filter_specs[5].choices(response.context["cl"])
    ]


def test_object_filter_works_for_rows_that_no_longer_exist(
    history: History, staff_client: Client
) -> None:
    from actrack.models import ActionTarget
    from tests.demo.models import Note

    # The note was deleted (it kept no pk): use the key the action stored.
    stored = ActionTarget.objects.get(action=history.commented).obj_key
    query = {"object_ct": ct_id(Note), "object_key": stored}
    response = staff_client.get(CHANGELIST, query)
    assert ids(response) == [history.commented.pk]
    assert f"Note {stored} (deleted)" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"level": "loud"},
        {"actor_type": "nope"},
        {"actor_type": "999999"},
        {"target_type": "-1"},
        {"deleted": "maybe"},
        {"object_ct": "1"},
        {"object_ct": "999999", "object_key": "1"},
        {"timestamp__year": "twenty"},
    ],
)
def test_bad_filter_values_never_500(history: History, staff_client: Client, query: Any) -> None:
    response = staff_client.get(CHANGELIST, query)
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_date_hierarchy_narrows_by_year(history: History, staff_client: Client) -> None:
    year = timezone.localtime(history.synced.timestamp).year
    response = staff_client.get(CHANGELIST, {"timestamp__year": year})
    assert ids(response) == [history.synced.pk]


def test_date_hierarchy_lists_periods_without_distinct_scans(
    history: History, staff_client: Client, count_queries: Any
) -> None:
    with count_queries() as log_:
        response = staff_client.get(CHANGELIST)
    assert not [sql for sql in log_.statements if "DISTINCT" in sql.upper()]
    hierarchy = response.context["cl"].bounded_date_hierarchy()
    first = timezone.localtime(history.synced.timestamp).year
    last = timezone.localtime(history.closed.timestamp).year
    assert [c["title"] for c in hierarchy["choices"]] == [str(y) for y in range(first, last + 1)]


def test_date_hierarchy_drills_down_to_months_and_days(
    history: History, staff_client: Client
) -> None:
    # Periods run from the first to the last action of all (the oldest is 400 days
    # old), clipped to the selected year or month.
    now = timezone.localtime(history.closed.timestamp)
    months = staff_client.get(CHANGELIST, {"timestamp__year": now.year})
    choices = months.context["cl"].bounded_date_hierarchy()["choices"]
    assert len(choices) == now.month
    assert choices[0]["title"] == f"January {now.year}"
    query = {"timestamp__year": now.year, "timestamp__month": now.month}
    days = staff_client.get(CHANGELIST, query)
    choices = days.context["cl"].bounded_date_hierarchy()["choices"]
    assert len(choices) == now.day
    assert f"timestamp__day={now.day}" in choices[-1]["link"]
    assert ids(days) == [a.pk for a in Action.objects.exclude(pk=history.synced.pk)]


def test_search_in_verbs_and_data(history: History, staff_client: Client) -> None:
    assert ids(staff_client.get(CHANGELIST, {"q": "fault"})) == [history.fault.pk]
    assert ids(staff_client.get(CHANGELIST, {"q": "12A"})) == [history.boarded.pk]


# -- escaping -----------------------------------------------------------------------------


def test_names_verbs_and_data_are_escaped(db: Any, staff_client: Client) -> None:
    evil_station = make_station(XSS)
    evil_train = make_train(XSS)
    log(evil_train, XSS, targets=evil_station, related=evil_station, note=XSS)
    evil_train.delete()  # its description (with the name) becomes a DeletedItem
    action = Action.objects.get()
    for url in (CHANGELIST, detail(action), f"{CHANGELIST}?verb={XSS}"):
        html = staff_client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert "&lt;script&gt;alert(" in html, url


# -- speed --------------------------------------------------------------------------------


def _many_actions(count: int) -> None:
    users = [make_user() for _ in range(3)]
    trains = [make_train() for _ in range(3)]
    stations = [make_station() for _ in range(3)]
    with actrack.batch():
        for n in range(count):
            actrack.log(
                users[n % 3],
                ["boarded", "booked", "commented"][n % 3],
                targets=[trains[n % 3], stations[(n + 1) % 3]],
                related=stations[n % 3],
                grouping_delay=-1,
                n=n,
            )


def test_query_count_is_the_same_for_10_and_100_actions_per_page(
    db: Any, staff_client: Client, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_actions(120)
    model_admin = admin.site._registry[Action]
    counts = {}
    for per_page in (10, 100):
        monkeypatch.setattr(model_admin, "list_per_page", per_page)
        staff_client.get(CHANGELIST)  # warm caches (content types)
        with count_queries() as queries:
            response = staff_client.get(CHANGELIST)
        assert len(response.context["cl"].result_list) == per_page
        counts[per_page] = len(queries)
    # session, user, 3 filter choice lists (verbs, actor types, target types), count,
    # date bounds, the page, its link rows, then one query per model on the page
    # (users, trains, stations): 12, plus the planner's estimate on PostgreSQL.
    bound = 12 + (connection.vendor == "postgresql")
    assert counts[10] == counts[100] <= bound, counts


def test_filter_choices_are_bounded_index_probes(
    history: History, staff_client: Client, count_queries: Any
) -> None:
    with count_queries() as queries:
        staff_client.get(CHANGELIST)
    statements = queries.statements
    distinct_scans = [sql for sql in statements if "SELECT DISTINCT" in sql.upper()]
    assert distinct_scans == []
    assert sum("WITH RECURSIVE" in sql for sql in statements) == 3
    # The count stops at the cap instead of counting the whole table.
    assert any("LIMIT 1001" in sql and "COUNT(" in sql.upper() for sql in statements)


# -- bounded counts -----------------------------------------------------------------------


def test_counts_are_exact_up_to_the_cap_then_capped(db: Any) -> None:
    _many_actions(30)
    exact = EstimatedCountPaginator(Action.objects.all(), 10, cap=50)
    assert (exact.count, exact.count_kind) == (30, "exact")
    capped = EstimatedCountPaginator(Action.objects.all(), 10, cap=20)
    assert (capped.count, capped.count_kind) == (20, "capped")
    assert capped.num_pages == 2


def test_unfiltered_count_uses_the_planner_estimate_beyond_the_cap(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_actions(5)
    monkeypatch.setattr(EstimatedCountPaginator, "estimate", staticmethod(lambda qs: 1_000_000))
    paginator = EstimatedCountPaginator(Action.objects.all(), 10, cap=20)
    assert (paginator.count, paginator.count_kind) == (1_000_000, "estimated")


def test_estimate_only_for_unfiltered_querysets_on_postgresql(db: Any) -> None:
    estimate = EstimatedCountPaginator.estimate
    assert estimate(Action.objects.filter(verb="x")) is None
    if connection.vendor != "postgresql":
        assert estimate(Action.objects.all()) is None
    else:
        value = estimate(Action.objects.all())
        assert value is None or value >= 0


def test_capped_list_says_more_than(
    db: Any, staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_actions(30)
    model_admin = admin.site._registry[Action]
    monkeypatch.setattr(model_admin, "count_cap", 20)
    monkeypatch.setattr(model_admin, "list_per_page", 2)
    monkeypatch.setattr(model_admin, "count_pages_ahead", 1)
    html = staff_client.get(CHANGELIST, {"level": actrack.level.INFO}).content.decode()
    assert "more than 20 actions" in html
    html = staff_client.get(CHANGELIST).content.decode()
    assert "more than 20 actions" in html
    # Deeper pages count further ahead, so one can always step on.
    response = staff_client.get(CHANGELIST, {"p": 12})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 26


def test_the_list_cannot_be_resorted(history: History, staff_client: Client) -> None:
    response = staff_client.get(CHANGELIST, {"o": "2.-1.3"})
    assert ids(response) == list(Action.objects.newest_first().values_list("pk", flat=True))
    assert ActionAdmin.sortable_by == ()


def test_the_engines_admin_needs_no_dashboard_packages() -> None:
    """actrack works installed alone: its admin modules import no UI dependency."""
    import ast
    from pathlib import Path

    root = Path(actrack.__file__).parent
    for path in [root / "admin.py", root / "admin_filters.py", *root.glob("templatetags/*.py")]:
        tree = ast.parse(path.read_text())
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        forbidden = {
            n
            for n in names
            if n.split(".")[0] in ("django_filters", "django_htmx", "actrack_dashboard")
        }
        assert not forbidden, (path, forbidden)
