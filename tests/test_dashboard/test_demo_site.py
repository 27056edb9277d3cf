"""The demo site around the dashboard: home page, login, the base template override."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from tests.test_dashboard.conftest import Scene
from tests.test_dashboard.test_feed import action_ids

pytestmark = pytest.mark.django_db


def test_home_page_for_anonymous_visitors(scene: Scene, client: Client) -> None:
    html = client.get("/").content.decode()
    assert "Log in to your feed" in html
    assert "actrack-embedded-feed" not in html
    assert "htmx-2.min.js" in html


def test_home_page_embeds_the_partials(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get("/").content.decode()
    assert 'id="actrack-embedded-feed"' in html
    assert action_ids(html) == [a.pk for a in reversed(scene.alice_actions)]
    assert 'id="actrack-unread-badge"' in html
    assert "Follow all trains" in html
    assert "actrack-follow is-following" in html  # Seagull
    assert 'id="actrack-messages"' in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_login_page_and_flow(scene: Scene, client: Client) -> None:
    page = client.get(reverse("login") + "?next=/activity/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="username"' in html
    assert 'name="next" value="/activity/"' in html
    failed = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert "Please enter a correct username and password" in failed.content.decode()
    response = client.post(
        reverse("login"), {"username": "alice", "password": "pw", "next": "/activity/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/activity/"


def test_logout_is_a_form(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get("/").content.decode()
    assert f'action="{reverse("logout")}"' in html
    assert alice_client.post(reverse("logout")).status_code == 302
    assert alice_client.get(reverse("actrack_dashboard:feed")).status_code == 302


def test_dashboard_pages_use_the_sites_base_template(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(reverse("actrack_dashboard:trackers")).content.decode()
    assert "Kingsford Railways" in html  # the demo layout, through the override
    assert "<title>What you follow · Kingsford Railways</title>" in html
    assert 'class="site-dashboard"' in html


def test_the_shipped_base_template_stands_alone(scene: Scene, alice_client: Client) -> None:
    templates: list[dict[str, Any]] = [{**settings.TEMPLATES[0], "DIRS": []}]
    with override_settings(TEMPLATES=templates):
        html = alice_client.get(reverse("actrack_dashboard:feed")).content.decode()
    assert "Kingsford Railways" not in html
    assert 'class="actrack-standalone"' in html
    assert "htmx-2.min.js" in html
    assert "actrack_dashboard/dashboard.css" in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert 'id="actrack-unread-badge"' in html
    assert len(action_ids(html)) == 3
