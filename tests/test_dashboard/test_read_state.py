"""mark_read, mark_all_read and the unread badge."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from actrack import readstate
from actrack.models import Action, ReadAction
from tests.test_dashboard.conftest import Scene, follow, hx, log
from tests.test_dashboard.test_feed import action_ids, unread_ids

pytestmark = pytest.mark.django_db

MARK_ALL = reverse("actrack_dashboard:mark_all_read")
BADGE = reverse("actrack_dashboard:unread_count")


def mark_url(action: Action | int) -> str:
    pk = action if isinstance(action, int) else action.pk
    return reverse("actrack_dashboard:mark_read", args=[pk])


def csrf_client(user: Any) -> tuple[Client, str]:
    """A client that enforces CSRF, signed in, with a valid token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("actrack_dashboard:feed"))
    return client, client.cookies["csrftoken"].value


# --- mark_read -------------------------------------------------------------------------


def test_htmx_mark_read_swaps_the_item_and_refreshes_the_badge(
    scene: Scene, alice_client: Client
) -> None:
    action = scene.alice_actions[1]
    response = alice_client.post(mark_url(action), headers=hx(target=f"action-{action.pk}"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith(f'<article id="action-{action.pk}" class="actrack-action')
    assert unread_ids(html) == []
    assert "Mark read" not in html
    assert "<html" not in html
    assert json.loads(response["HX-Trigger"]) == {"actrackUnreadChanged": {}}
    assert not action.is_unread_for(scene.alice)
    assert readstate.unread_count(scene.alice) == 2


def test_mark_read_without_htmx_redirects_to_next(scene: Scene, alice_client: Client) -> None:
    response = alice_client.post(
        mark_url(scene.alice_actions[0]), {"next": "/activity/?verb=departed"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/activity/?verb=departed"
    assert readstate.unread_count(scene.alice) == 2


@pytest.mark.parametrize(
    "next_url", ["https://evil.example.com/", "//evil.example.com/x", "javascript:alert(1)"]
)
def test_next_must_stay_on_the_site(scene: Scene, alice_client: Client, next_url: str) -> None:
    response = alice_client.post(mark_url(scene.alice_actions[0]), {"next": next_url})
    assert response["Location"] == reverse("actrack_dashboard:feed")


def test_marking_a_read_action_again_is_harmless(scene: Scene, alice_client: Client) -> None:
    action = scene.alice_actions[0]
    alice_client.post(mark_url(action))
    assert alice_client.post(mark_url(action), headers=hx()).status_code == 200
    assert ReadAction.objects.filter(user=scene.alice, action=action).count() == 1


@pytest.mark.parametrize("which", ["foreign", "missing", "huge"])
def test_actions_outside_the_feed_are_a_404_and_nothing_changes(
    scene: Scene, alice_client: Client, which: str
) -> None:
    pk = {"foreign": scene.bob_actions[0].pk, "missing": 999999, "huge": 2**70}[which]
    response = alice_client.post(mark_url(pk))
    assert response.status_code == 404
    expected = "No such action." if which == "huge" else f"Action {pk} is not in your feed."
    assert expected in response.content.decode()
    assert readstate.unread_count(scene.bob) == 1
    assert readstate.unread_count(scene.alice) == 3
    assert not ReadAction.objects.exists()


def test_mark_read_is_post_only(scene: Scene, alice_client: Client) -> None:
    assert alice_client.get(mark_url(scene.alice_actions[0])).status_code == 405
    assert readstate.unread_count(scene.alice) == 3


def test_mark_read_needs_the_csrf_token(scene: Scene) -> None:
    client, token = csrf_client(scene.alice)
    assert client.post(mark_url(scene.alice_actions[0])).status_code == 403
    assert readstate.unread_count(scene.alice) == 3
    response = client.post(mark_url(scene.alice_actions[0]), headers={"X-CSRFToken": token})
    assert response.status_code == 302
    assert readstate.unread_count(scene.alice) == 2


def test_anonymous_cannot_mark_read(scene: Scene, client: Client) -> None:
    response = client.post(mark_url(scene.alice_actions[0]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    response = client.post(mark_url(scene.alice_actions[0]), headers=hx())
    assert response.status_code == 403
    assert readstate.unread_count(scene.alice) == 3


# --- mark_all_read ---------------------------------------------------------------------


def test_mark_all_read_redirects_without_htmx(scene: Scene, alice_client: Client) -> None:
    response = alice_client.post(MARK_ALL, {"next": "/activity/?level=INFO"})
    assert response.status_code == 302
    assert response["Location"] == "/activity/?level=INFO"
    assert readstate.unread_count(scene.alice) == 0
    assert readstate.unread_count(scene.bob) == 1


def test_htmx_mark_all_read_returns_the_filtered_feed(scene: Scene, alice_client: Client) -> None:
    response = alice_client.post(
        MARK_ALL, {"verb": "departed", "next": "/"}, headers=hx(target="actrack-feed")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<div id="actrack-feed"')
    assert action_ids(html) == [scene.alice_actions[0].pk]
    assert unread_ids(html) == []
    assert "actrackUnreadChanged" in response["HX-Trigger"]
    assert readstate.unread_count(scene.alice) == 0


def test_htmx_mark_all_read_elsewhere_answers_no_content(
    scene: Scene, alice_client: Client
) -> None:
    response = alice_client.post(MARK_ALL, headers=hx(target="somewhere-else"))
    assert response.status_code == 204
    assert "actrackUnreadChanged" in response["HX-Trigger"]
    assert readstate.unread_count(scene.alice) == 0


def test_mark_all_read_with_bad_filters_changes_nothing(
    scene: Scene, alice_client: Client
) -> None:
    response = alice_client.post(MARK_ALL, {"level": "LOUD"}, headers=hx(target="actrack-feed"))
    assert response.status_code == 400
    assert "Invalid filter" in response.content.decode()
    assert readstate.unread_count(scene.alice) == 3


def test_mark_all_read_is_post_only_with_csrf(scene: Scene) -> None:
    client, token = csrf_client(scene.alice)
    assert client.get(MARK_ALL).status_code == 405
    assert client.post(MARK_ALL).status_code == 403
    assert readstate.unread_count(scene.alice) == 3
    assert client.post(MARK_ALL, {"csrfmiddlewaretoken": token}).status_code == 302
    assert readstate.unread_count(scene.alice) == 0


def test_anonymous_cannot_mark_all_read(scene: Scene, client: Client) -> None:
    assert client.post(MARK_ALL).status_code == 302
    assert client.post(MARK_ALL, headers=hx()).status_code == 403
    assert readstate.unread_count(scene.alice) == 3


# --- unread badge ----------------------------------------------------------------------


def test_badge_fragment(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(BADGE, headers=hx())
    html = response.content.decode()
    assert html.startswith('<a id="actrack-unread-badge" class="actrack-badge has-unread"')
    assert '<span class="actrack-badge-count">3</span>' in html
    assert 'hx-trigger="every 30s, actrackUnreadChanged from:body"' in html
    assert "HX-Request" in response["Vary"]


def test_badge_page(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(BADGE).content.decode()
    assert "<html" in html
    assert "3 unread actions in your feed" in html


def test_badge_counts_only_the_viewers_unread(scene: Scene, client: Client) -> None:
    client.force_login(scene.bob)
    html = client.get(BADGE, headers=hx()).content.decode()
    assert '<span class="actrack-badge-count">1</span>' in html


def test_badge_is_capped(scene: Scene, alice_client: Client) -> None:
    for i in range(100):
        log(scene.train, "passed", signal=i)
    html = alice_client.get(BADGE, headers=hx()).content.decode()
    assert '<span class="actrack-badge-count">99+</span>' in html


def test_badge_without_unread(db: Any, scene: Scene, alice_client: Client) -> None:
    readstate.mark_all_read(scene.alice)
    html = alice_client.get(BADGE, headers=hx()).content.decode()
    assert 'class="actrack-badge"' in html
    assert '<span class="actrack-badge-count">0</span>' in html


@override_settings(ACTRACK_DASHBOARD={"POLL_INTERVAL": 5})
def test_poll_interval_setting(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(BADGE, headers=hx()).content.decode()
    assert 'hx-trigger="every 5s, actrackUnreadChanged from:body"' in html


@override_settings(ACTRACK_DASHBOARD={"POLL_INTERVAL": 0})
def test_no_polling(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(BADGE, headers=hx()).content.decode()
    assert 'hx-trigger="actrackUnreadChanged from:body"' in html


def test_anonymous_badge(scene: Scene, client: Client) -> None:
    assert client.get(BADGE).status_code == 302
    assert client.get(BADGE, headers=hx()).status_code == 403


def test_badge_is_get_only(scene: Scene, alice_client: Client) -> None:
    assert alice_client.post(BADGE).status_code == 405


def test_following_changes_unread_state(scene: Scene, alice_client: Client) -> None:
    follow(scene.alice, scene.station)
    assert readstate.unread_count(scene.alice) == 4
