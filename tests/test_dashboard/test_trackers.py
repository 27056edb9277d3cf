"""The trackers page, track and untrack."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings
from django.urls import reverse

import actrack
from actrack.models import DeletedItem, Tracker
from tests.conftest import make_note, make_station, make_train
from tests.demo.models import Station, Train
from tests.test_dashboard.conftest import Scene, hx
from tests.test_dashboard.test_read_state import csrf_client

pytestmark = pytest.mark.django_db

TRACKERS = reverse("actrack_dashboard:trackers")
TRACK = reverse("actrack_dashboard:track")
UNTRACK = reverse("actrack_dashboard:untrack")


def ct_id(obj: Any) -> int:
    return ContentType.objects.get_for_model(obj).pk


def fields(obj: Any, **extra: Any) -> dict[str, Any]:
    """track/untrack fields for an instance or (``object_id`` empty) a model."""
    object_id = "" if isinstance(obj, type) else str(obj.pk)
    return {"content_type_id": ct_id(obj), "object_id": object_id, **extra}


def tracked(user: Any) -> dict[Any, Tracker]:
    return {t.tracked: t for t in Tracker.objects.owned_by(user)}


# --- the page --------------------------------------------------------------------------


def test_full_page_lists_the_users_trackers(scene: Scene, alice_client: Client) -> None:
    actrack.track(scene.alice, Station, verbs=["closed", "opened"])
    response = alice_client.get(TRACKERS)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html
    tracker = Tracker.objects.owned_by(scene.alice).exactly(scene.train).get()
    assert f'id="tracker-{tracker.pk}"' in html
    assert "Seagull" in html
    assert 'value="closed, opened"' in html
    assert "Ashbury" not in html  # bob's
    assert "HX-Request" in response["Vary"]


def test_htmx_fragment(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(TRACKERS, headers=hx()).content.decode()
    assert html.startswith('<div id="actrack-trackers"')
    assert "<html" not in html


def test_trackers_of_deleted_objects_can_still_be_removed(
    scene: Scene, alice_client: Client
) -> None:
    scene.train.delete()
    html = alice_client.get(TRACKERS).content.decode()
    item = DeletedItem.objects.get()
    assert str(item) in html
    response = alice_client.post(UNTRACK, fields(item), headers=hx(target="actrack-trackers"))
    assert response.status_code == 200
    assert not Tracker.objects.owned_by(scene.alice).exists()


def test_anonymous_trackers_page(scene: Scene, client: Client) -> None:
    assert client.get(TRACKERS).status_code == 302
    assert client.get(TRACKERS, headers=hx()).status_code == 403


def test_trackers_page_is_get_only(scene: Scene, alice_client: Client) -> None:
    assert alice_client.post(TRACKERS).status_code == 405


# --- track -----------------------------------------------------------------------------


def test_follow_button_follows_an_object(scene: Scene, alice_client: Client) -> None:
    station = make_station("Redcliffe")
    dom_id = f"actrack-follow-{ct_id(station)}-{station.pk}"
    response = alice_client.post(
        TRACK, fields(station, actor_only="false"), headers=hx(target=dom_id)
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<div id="{dom_id}" class="actrack-follow is-following"')
    assert "actrackUnreadChanged" in response["HX-Trigger"]
    tracker = tracked(scene.alice)[station]
    assert tracker.actor_only is False
    assert tracker.verbs == []


def test_follow_a_whole_model_with_verbs(scene: Scene, alice_client: Client) -> None:
    response = alice_client.post(
        TRACK,
        fields(Station, verbs="closed, opened", actor_only="true"),
        headers=hx(target="actrack-trackers"),
    )
    assert response.content.decode().startswith('<div id="actrack-trackers"')
    tracker = tracked(scene.alice)[Station]
    assert tracker.tracked_key == ""
    assert sorted(tracker.verbs) == ["closed", "opened"]
    assert tracker.actor_only is True


def test_verbs_may_come_as_several_values(scene: Scene, alice_client: Client) -> None:
    alice_client.post(TRACK, fields(Train, verbs=["departed", "arrived,departed"]))
    assert sorted(tracked(scene.alice)[Train].verbs) == ["arrived", "departed"]


def test_changing_a_tracker_keeps_actor_only_when_not_given(
    scene: Scene, alice_client: Client
) -> None:
    alice_client.post(TRACK, fields(scene.train, verbs="arrived"))
    tracker = tracked(scene.alice)[scene.train]
    assert tracker.verbs == ["arrived"]
    assert tracker.actor_only is False
    alice_client.post(TRACK, fields(scene.train, verbs="", actor_only="true"))
    tracker = tracked(scene.alice)[scene.train]
    assert tracker.verbs == []
    assert tracker.actor_only is True


def test_track_without_htmx_redirects(scene: Scene, alice_client: Client) -> None:
    response = alice_client.post(TRACK, fields(Train, next="/"))
    assert response.status_code == 302
    assert response["Location"] == "/"
    response = alice_client.post(TRACK, fields(Station, next="https://evil.example/"))
    assert response["Location"] == TRACKERS
    assert Station in tracked(scene.alice)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"content_type_id": "abc", "object_id": "1"}, 400, "content_type_id"),
        ({"content_type_id": "", "object_id": "1"}, 400, "content_type_id"),
        ({"content_type_id": None, "object_id": "1"}, 400, "content_type_id"),
        ({"content_type_id": "999999", "object_id": "1"}, 404, "Unknown content type"),
        ({"content_type_id": "9" * 30, "object_id": "1"}, 400, "content_type_id"),
        ({"object_id": "424242"}, 404, "No train with id 424242"),
        ({"object_id": "not-a-number"}, 404, "No such train"),
        ({"object_id": "1" * 300}, 400, "at most 255"),
        ({"object_id": "1\x00"}, 400, "NUL characters"),
        ({"object_id": "", "verbs": "x" * 300}, 400, "at most 255"),
        ({"object_id": "", "verbs": ",".join(f"v{i}" for i in range(60))}, 400, "at most 50"),
        ({"object_id": "", "actor_only": "sometimes"}, 400, "actor_only"),
    ],
)
def test_bad_input_is_a_4xx_and_changes_nothing(
    scene: Scene,
    alice_client: Client,
    data: dict[str, str | None],
    status: int,
    message: str,
) -> None:
    data = {"content_type_id": str(ct_id(Train)), **data}
    data = {key: value for key, value in data.items() if value is not None}
    before = list(Tracker.objects.values_list("pk", "verbs", "actor_only"))
    # untrack has no use for actor_only.
    for url in (TRACK,) if "actor_only" in data else (TRACK, UNTRACK):
        response = alice_client.post(url, data)
        assert response.status_code == status, url
        assert message in response.content.decode()
    assert list(Tracker.objects.values_list("pk", "verbs", "actor_only")) == before


def test_models_not_connected_cannot_be_followed(scene: Scene, alice_client: Client) -> None:
    response = alice_client.post(TRACK, fields(make_note()))
    assert response.status_code == 403
    assert "cannot follow" in response.content.decode()
    assert not Tracker.objects.filter(user=scene.alice, tracked_ct=ct_id(make_note())).exists()


def test_the_follow_hook_decides(scene: Scene, alice_client: Client) -> None:
    def only_trains(user: Any, obj: Any) -> bool:
        return obj is Train or isinstance(obj, Train)

    with override_settings(ACTRACK_DASHBOARD={"CAN_FOLLOW": only_trains}):
        assert alice_client.post(TRACK, fields(make_station())).status_code == 403
        assert alice_client.post(TRACK, fields(make_train())).status_code == 302
        html = alice_client.get(TRACKERS).content.decode()
        assert f'<option value="{ct_id(Train)}">Trains</option>' in html
        assert "Stations</option>" not in html


def test_track_is_post_only_with_csrf(scene: Scene) -> None:
    client, token = csrf_client(scene.alice)
    assert client.get(TRACK).status_code == 405
    assert client.post(TRACK, fields(Train)).status_code == 403
    assert Train not in tracked(scene.alice)
    assert client.post(TRACK, fields(Train, csrfmiddlewaretoken=token)).status_code == 302
    assert Train in tracked(scene.alice)


def test_anonymous_cannot_track(scene: Scene, client: Client) -> None:
    count = Tracker.objects.count()
    assert client.post(TRACK, fields(Train)).status_code == 302
    assert client.post(TRACK, fields(Train), headers=hx()).status_code == 403
    assert Tracker.objects.count() == count


# --- untrack ---------------------------------------------------------------------------


def test_unfollow_button(scene: Scene, alice_client: Client) -> None:
    dom_id = f"actrack-follow-{ct_id(scene.train)}-{scene.train.pk}"
    response = alice_client.post(UNTRACK, fields(scene.train), headers=hx(target=dom_id))
    html = response.content.decode()
    assert html.startswith(f'<div id="{dom_id}" class="actrack-follow"')
    assert "actrack-button-follow" in html
    assert scene.train not in tracked(scene.alice)
    assert "actrackUnreadChanged" in response["HX-Trigger"]


def test_unfollow_some_verbs(scene: Scene, alice_client: Client) -> None:
    actrack.track(scene.alice, Station, verbs=["closed", "opened"])
    alice_client.post(UNTRACK, fields(Station, verbs="opened"))
    assert tracked(scene.alice)[Station].verbs == ["closed"]


def test_unfollow_a_model(scene: Scene, alice_client: Client) -> None:
    actrack.track(scene.alice, Station)
    response = alice_client.post(UNTRACK, fields(Station), headers=hx(target="actrack-trackers"))
    assert response.content.decode().startswith('<div id="actrack-trackers"')
    assert Station not in tracked(scene.alice)


def test_untrack_only_touches_the_users_own_trackers(scene: Scene, alice_client: Client) -> None:
    alice_client.post(UNTRACK, fields(scene.station))
    assert scene.station in tracked(scene.bob)


def test_untrack_is_post_only_with_csrf(scene: Scene) -> None:
    client, token = csrf_client(scene.alice)
    assert client.get(UNTRACK).status_code == 405
    assert client.post(UNTRACK, fields(scene.train)).status_code == 403
    assert scene.train in tracked(scene.alice)
    client.post(UNTRACK, fields(scene.train), headers={"X-CSRFToken": token})
    assert scene.train not in tracked(scene.alice)


def test_anonymous_cannot_untrack(scene: Scene, client: Client) -> None:
    assert client.post(UNTRACK, fields(scene.train)).status_code == 302
    assert client.post(UNTRACK, fields(scene.train), headers=hx()).status_code == 403
    assert scene.train in tracked(scene.alice)
