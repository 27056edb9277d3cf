"""ACTRACK_DASHBOARD settings, read lazily, and their system checks."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import Client, override_settings
from django.urls import reverse

from actrack_dashboard.checks import check_htmx, check_settings
from actrack_dashboard.conf import DEFAULTS, dashboard_settings
from actrack_dashboard.permissions import can_follow
from tests.conftest import make_note, make_train
from tests.demo.models import Note, Train
from tests.test_dashboard.conftest import Scene

MIDDLEWARE_WITHOUT_HTMX = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def deny_everything(user: Any, obj: Any) -> bool:
    return False


def test_defaults() -> None:
    assert dashboard_settings.PAGE_SIZE == 20
    assert dashboard_settings.POLL_INTERVAL == 30
    assert dashboard_settings.MARK_READ_ON_VIEW is False
    assert dashboard_settings.can_follow_hook() is can_follow
    assert set(DEFAULTS) == {"PAGE_SIZE", "POLL_INTERVAL", "CAN_FOLLOW", "MARK_READ_ON_VIEW"}


def test_settings_are_read_at_access_time() -> None:
    with override_settings(
        ACTRACK_DASHBOARD={
            "PAGE_SIZE": 7,
            "POLL_INTERVAL": 0,
            "MARK_READ_ON_VIEW": True,
            "CAN_FOLLOW": "tests.test_dashboard.test_conf_checks.deny_everything",
        }
    ):
        assert dashboard_settings.PAGE_SIZE == 7
        assert dashboard_settings.POLL_INTERVAL == 0
        assert dashboard_settings.MARK_READ_ON_VIEW is True
        assert dashboard_settings.can_follow_hook() is deny_everything
    assert dashboard_settings.PAGE_SIZE == 20


def test_unknown_setting_name() -> None:
    with pytest.raises(AttributeError):
        _ = dashboard_settings.NOPE


@pytest.mark.django_db
def test_default_hook_allows_connected_models_only() -> None:
    assert can_follow(None, Train) is True
    assert can_follow(None, make_train()) is True
    assert can_follow(None, Note) is False
    assert can_follow(None, make_note()) is False
    assert can_follow(None, "demo.train") is False


@pytest.mark.django_db
def test_page_size_setting(scene: Scene, alice_client: Client) -> None:
    with override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 1}):
        html = alice_client.get(reverse("actrack_dashboard:feed")).content.decode()
    assert html.count('<article id="action-') == 1


@pytest.mark.django_db
def test_hook_as_dotted_path(scene: Scene, alice_client: Client) -> None:
    hook = "tests.test_dashboard.test_conf_checks.deny_everything"
    with override_settings(ACTRACK_DASHBOARD={"CAN_FOLLOW": hook}):
        url = reverse("actrack_dashboard:track")
        response = alice_client.post(url, {"content_type_id": "1", "object_id": ""})
    assert response.status_code == 403


def test_valid_settings_pass() -> None:
    assert check_settings() == []
    assert check_htmx() == []
    full = {**DEFAULTS, "CAN_FOLLOW": deny_everything, "PAGE_SIZE": 500}
    with override_settings(ACTRACK_DASHBOARD=full):
        assert check_settings() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([("PAGE_SIZE", 5)], "actrack_dashboard.E001"),
        ({"PAGESIZE": 5}, "actrack_dashboard.E002"),
        ({"PAGE_SIZE": 0}, "actrack_dashboard.E003"),
        ({"PAGE_SIZE": 501}, "actrack_dashboard.E003"),
        ({"PAGE_SIZE": "20"}, "actrack_dashboard.E003"),
        ({"PAGE_SIZE": True}, "actrack_dashboard.E003"),
        ({"POLL_INTERVAL": -1}, "actrack_dashboard.E004"),
        ({"POLL_INTERVAL": 2.5}, "actrack_dashboard.E004"),
        ({"CAN_FOLLOW": "no.such.hook"}, "actrack_dashboard.E005"),
        ({"CAN_FOLLOW": 42}, "actrack_dashboard.E005"),
        ({"MARK_READ_ON_VIEW": "yes"}, "actrack_dashboard.E006"),
    ],
)
def test_each_bad_setting_has_its_check(value: Any, expected: str) -> None:
    with override_settings(ACTRACK_DASHBOARD=value):
        assert ids(check_settings()) == [expected]


def test_htmx_middleware_is_required() -> None:
    with override_settings(MIDDLEWARE=MIDDLEWARE_WITHOUT_HTMX):
        assert ids(check_htmx()) == ["actrack_dashboard.E007"]


def test_django_htmx_app_is_required(settings: Any) -> None:
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "django_htmx"]
    assert "actrack_dashboard.E008" in ids(check_htmx())


def test_checks_are_registered() -> None:
    with override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 0}, MIDDLEWARE=MIDDLEWARE_WITHOUT_HTMX):
        found = ids(checks.run_checks(tags=["actrack_dashboard"]))
    assert "actrack_dashboard.E003" in found
    assert "actrack_dashboard.E007" in found
