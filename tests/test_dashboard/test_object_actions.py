"""One object's actions, with follow controls for the object and its model."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings
from django.urls import reverse

from actrack import readstate
from tests.conftest import make_journey, make_note
from tests.test_dashboard.conftest import Scene, hx, log
from tests.test_dashboard.test_feed import action_ids, unread_ids

pytestmark = pytest.mark.django_db


def url_for(obj: Any) -> str:
    ct = ContentType.objects.get_for_model(obj)
    return reverse("actrack_dashboard:object_actions", args=[ct.pk, obj.pk])


def test_full_page_lists_every_action_about_the_object(scene: Scene, alice_client: Client) -> None:
    about_station = log(None, "cleaned", related=scene.station)
    response = alice_client.get(url_for(scene.station))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert '<h1 class="actrack-title">Ashbury</h1>' in html
    assert action_ids(html) == [about_station.pk, scene.bob_actions[0].pk]
    # alice follows neither: nothing is unread for her, and she may follow both.
    assert unread_ids(html) == []
    assert "Follow all stations" in html
    assert reverse("actrack_dashboard:track") in html
    assert "HX-Request" in response["Vary"]


def test_unread_flags_are_the_viewers(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(url_for(scene.train)).content.decode()
    assert unread_ids(html) == [a.pk for a in reversed(scene.alice_actions)]
    assert "actrack-follow is-following" in html
    assert readstate.unread_count(scene.alice) == 3


def test_htmx_fragment(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(url_for(scene.train), headers=hx())
    html = response.content.decode()
    assert "<html" not in html
    assert html.startswith('<div id="actrack-object-actions"')
    assert len(action_ids(html)) == 3


@override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 2})
def test_cursor_pages(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(url_for(scene.train)).content.decode()
    assert len(action_ids(html)) == 2
    assert 'id="actrack-load-more"' in html


def test_uuid_keyed_objects(scene: Scene, alice_client: Client) -> None:
    journey = make_journey(scene.train)
    action = log(scene.train, "departed", related=journey)
    html = alice_client.get(url_for(journey)).content.decode()
    assert action_ids(html) == [action.pk]


def test_anonymous_is_sent_to_login(scene: Scene, client: Client) -> None:
    response = client.get(url_for(scene.train))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_htmx_is_refused(scene: Scene, client: Client) -> None:
    response = client.get(url_for(scene.train), headers=hx())
    assert response.status_code == 403
    assert "HX-Redirect" in response


@pytest.mark.parametrize(
    ("ct_id", "object_id", "status", "message"),
    [
        (999999, "1", 404, "Unknown content type"),
        (99999999999999999999, "1", 400, "content_type_id"),
        (None, "999999", 404, "No train with id 999999"),
        (None, "abc", 404, "No such train"),
        (None, "99999999999999999999999", 404, "No such train"),
        (None, "x" * 300, 400, "at most 255 characters"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(
    scene: Scene,
    alice_client: Client,
    ct_id: int | None,
    object_id: str,
    status: int,
    message: str,
) -> None:
    ct = ct_id or ContentType.objects.get_for_model(scene.train).pk
    response = alice_client.get(f"/activity/objects/{ct}/{object_id}/")
    assert response.status_code == status
    assert message in response.content.decode()


def test_objects_of_models_not_connected_are_not_shown(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(url_for(make_note()))
    assert response.status_code == 404
    assert "No such object" in response.content.decode()


def test_the_follow_hook_hides_objects(scene: Scene, alice_client: Client) -> None:
    with override_settings(ACTRACK_DASHBOARD={"CAN_FOLLOW": lambda user, obj: False}):
        assert alice_client.get(url_for(scene.train)).status_code == 404


def test_post_is_not_allowed(scene: Scene, alice_client: Client) -> None:
    assert alice_client.post(url_for(scene.train)).status_code == 405
