"""The Tracker and DeletedItem admins."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import reverse

import actrack
from actrack.models import Action, DeletedItem, Tracker
from tests.conftest import make_station, make_train, make_user
from tests.demo.models import Station, Train
from tests.test_admin.conftest import XSS, History

pytestmark = pytest.mark.django_db

TRACKERS = "/admin/actrack/tracker/"
DELETED = "/admin/actrack/deleteditem/"


@pytest.fixture
def trackers(history: History) -> dict[str, Tracker]:
    bob = make_user("bob")
    actrack.track(history.alice, history.seagull, verbs=["departed"])
    actrack.track(history.alice, Station, actor_only=False)
    actrack.track(bob, history.ashbury)
    actrack.track(bob, history.retired)
    return {
        "alice_train": Tracker.objects.exactly(history.seagull).get(),
        "alice_stations": Tracker.objects.exactly(Station).get(),
        "bob_station": Tracker.objects.exactly(history.ashbury).get(),
        "bob_retired": Tracker.objects.exactly(history.retired).get(),
    }


def pks(response: Any) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


# -- access -------------------------------------------------------------------------------


def test_pages_answer_200_for_staff(
    trackers: dict[str, Tracker], history: History, staff_client: Client, viewer_client: Client
) -> None:
    tracker = trackers["alice_train"]
    urls = [
        TRACKERS,
        reverse("admin:actrack_tracker_change", args=[tracker.pk]),
        DELETED,
        reverse("admin:actrack_deleteditem_change", args=[history.retired.pk]),
    ]
    for client in (staff_client, viewer_client):
        for url in urls:
            assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_non_staff_are_sent_to_login(
    trackers: dict[str, Tracker], history: History, user_client: Client, who: str
) -> None:
    client = Client() if who == "anonymous" else user_client
    for url in (TRACKERS, DELETED):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_staff_without_permission_is_refused(
    trackers: dict[str, Tracker], powerless_staff_client: Client
) -> None:
    assert powerless_staff_client.get(TRACKERS).status_code == 403
    assert powerless_staff_client.get(DELETED).status_code == 403


# -- trackers -----------------------------------------------------------------------------


def test_tracker_list_shows_owner_tracked_verbs_and_actor_only(
    trackers: dict[str, Tracker], staff_client: Client
) -> None:
    html = staff_client.get(TRACKERS).content.decode()
    assert "every stations" in html
    assert "Seagull" in html
    assert "departed" in html
    assert "all verbs" in html
    # The tracker that followed the deleted train shows its deleted item, marked.
    assert "Train Old Faithful (retired)" in html
    assert 'class="actrack-deleted-mark"' in html


def test_tracker_filters(trackers: dict[str, Tracker], staff_client: Client) -> None:
    def shown(**query: Any) -> set[int]:
        return pks(staff_client.get(TRACKERS, query))

    assert shown(kind="model") == {trackers["alice_stations"].pk}
    assert shown(kind="object") == {
        trackers["alice_train"].pk,
        trackers["bob_station"].pk,
        trackers["bob_retired"].pk,
    }
    station_ct = ContentType.objects.get_for_model(Station).pk
    assert shown(tracked_type=station_ct) == {
        trackers["alice_stations"].pk,
        trackers["bob_station"].pk,
    }
    assert shown(actor_only__exact="0") == {trackers["alice_stations"].pk}
    assert shown(q="bob") == {trackers["bob_station"].pk, trackers["bob_retired"].pk}
    assert staff_client.get(TRACKERS, {"kind": "some"})["Location"].endswith("?e=1")


def test_tracker_list_loads_tracked_objects_in_bulk(
    db: Any, staff_client: Client, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stations = [make_station() for _ in range(15)]
    trains = [make_train() for _ in range(15)]
    for n in range(15):
        actrack.track(make_user(), [stations[n], trains[n]])
    model_admin = admin.site._registry[Tracker]
    counts = []
    for per_page in (5, 30):
        monkeypatch.setattr(model_admin, "list_per_page", per_page)
        staff_client.get(TRACKERS)
        with count_queries() as queries:
            response = staff_client.get(TRACKERS)
        assert len(response.context["cl"].result_list) == per_page
        counts.append(len(queries))
    # session, user, tracked-type choices, count, page (with users), stations, trains,
    # plus the planner's estimate on PostgreSQL.
    assert counts[0] == counts[1] <= 7 + (connection.vendor == "postgresql"), counts


def test_staff_can_change_verbs_and_actor_only_but_not_add(
    trackers: dict[str, Tracker], staff_client: Client
) -> None:
    tracker = trackers["alice_train"]
    url = reverse("admin:actrack_tracker_change", args=[tracker.pk])
    response = staff_client.post(url, {"verbs": '["arrived", "departed", "arrived"]'})
    assert response.status_code == 302
    tracker.refresh_from_db()
    assert (tracker.verbs, tracker.actor_only) == (["arrived", "departed"], False)
    bad = staff_client.post(url, {"verbs": '{"not": "a list"}', "actor_only": "on"})
    assert bad.status_code == 200
    assert "Enter a list of verbs" in bad.content.decode()
    assert staff_client.get(f"{TRACKERS}add/").status_code == 403


# -- deleted items ------------------------------------------------------------------------


def test_deleted_item_list_and_filter(history: History, staff_client: Client) -> None:
    response = staff_client.get(DELETED)
    assert "Train Old Faithful (retired)" in response.content.decode()
    train_ct = ContentType.objects.get_for_model(Train).pk
    assert pks(staff_client.get(DELETED, {"type": train_ct})) == {history.retired.pk}
    assert pks(staff_client.get(DELETED, {"q": "faithful"})) == {history.retired.pk}
    assert pks(staff_client.get(DELETED, {"q": "nothing like it"})) == set()


def test_deleted_item_page_shows_serialization_and_the_actions_about_it(
    history: History, staff_client: Client
) -> None:
    url = reverse("admin:actrack_deleteditem_change", args=[history.retired.pk])
    html = staff_client.get(url).content.decode()
    assert "&quot;name&quot;: &quot;Old Faithful&quot;" in html
    for action in (history.fault, history.old_departed):
        assert reverse("admin:actrack_action_change", args=[action.pk]) in html
        assert Action.objects.get(pk=action.pk).render() in html


def test_deleted_items_are_read_only(history: History, staff_client: Client) -> None:
    url = reverse("admin:actrack_deleteditem_change", args=[history.retired.pk])
    assert staff_client.post(url, {"description": "changed"}).status_code == 403
    delete = reverse("admin:actrack_deleteditem_delete", args=[history.retired.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert staff_client.get(f"{DELETED}add/").status_code == 403
    assert DeletedItem.objects.get(pk=history.retired.pk).description.startswith("Train")


def test_deleted_item_description_and_serialization_are_escaped(
    db: Any, staff_client: Client
) -> None:
    train = make_train(XSS)
    actrack.log(train, "departed")
    train.delete()
    item = DeletedItem.objects.get()
    for url in (DELETED, reverse("admin:actrack_deleteditem_change", args=[item.pk])):
        html = staff_client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(" in html


def test_deleted_item_list_query_count_does_not_grow_with_the_page(
    db: Any, staff_client: Client, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_ct = ContentType.objects.get_for_model(Train)
    DeletedItem.objects.bulk_create(
        DeletedItem(ctype=train_ct, object_key=str(n), description=f"Train {n}") for n in range(40)
    )
    model_admin = admin.site._registry[DeletedItem]
    counts = []
    for per_page in (5, 30):
        monkeypatch.setattr(model_admin, "list_per_page", per_page)
        staff_client.get(DELETED)
        with count_queries() as queries:
            response = staff_client.get(DELETED)
        assert len(response.context["cl"].result_list) == per_page
        counts.append(len(queries))
    # session, user, type choices, count, page (+ the planner's estimate on PostgreSQL).
    assert counts[0] == counts[1] <= 5 + (connection.vendor == "postgresql"), counts
