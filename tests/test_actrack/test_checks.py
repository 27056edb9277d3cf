"""System checks of the ``ACTRACK`` settings, run-time overrides of every setting,
and the migrations being up to date."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

import actrack
from actrack.checks import check_accessors, check_settings
from actrack.conf import DEFAULT_LEVELS, KEY_COLUMN_LENGTH, app_settings
from actrack.handlers import ActionHandler, get_handler_class
from actrack.models import Action
from tests.conftest import make_journey, make_station, make_user
from tests.demo.models import Station

FALLBACK_PATH = "tests.test_actrack.test_checks.CheckFallbackHandler"


class CheckFallbackHandler(ActionHandler):
    """A valid DEFAULT_HANDLER (no verb: not registered)."""


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [message.id for message in messages if message.id is not None]


# -- default settings -------------------------------------------------------------------------


def test_demo_settings_pass_every_check() -> None:
    assert check_settings() == []
    assert check_accessors() == []


def test_empty_actrack_settings_pass_every_check() -> None:
    with override_settings(ACTRACK={}):
        assert check_settings() == []
        assert check_accessors() == []


def test_every_setting_given_its_default_value_passes() -> None:
    explicit = {
        "USER_MODEL": settings.AUTH_USER_MODEL,
        "ACTIONS_ATTR": "actions",
        "TRACKERS_ATTR": "trackers",
        "DEFAULT_HANDLER": "actrack.ActionHandler",
        "TRACK_UNREAD": True,
        "AUTO_READ": True,
        "GROUPING_DELAY": 0,
        "PK_MAXLENGTH": 36,
        "LEVELS": dict(DEFAULT_LEVELS),
        "DEFAULT_LEVEL": 30,
        "READABLE_LEVEL": 30,
    }
    with override_settings(ACTRACK=explicit):
        assert check_settings() == []


def test_checks_are_registered_with_the_actrack_tag() -> None:
    assert checks.run_checks(tags=["actrack"]) == []
    with override_settings(ACTRACK={"GROUPING_DELAY": -5}):
        assert "actrack.E010" in ids(checks.run_checks(tags=["actrack"]))


# -- one failing case per check -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("actrack_setting", "expected"),
    [
        pytest.param(["GROUPING_DELAY", 0], "actrack.E001", id="E001-not-a-dict"),
        pytest.param({"GROUPING_DELAYS": 5}, "actrack.E002", id="E002-unknown-key"),
        pytest.param({"USER_MODEL": "demo.Station"}, "actrack.E003", id="E003-user-model"),
        pytest.param({"ACTIONS_ATTR": "not an identifier"}, "actrack.E004", id="E004-spaces"),
        pytest.param({"ACTIONS_ATTR": "_private"}, "actrack.E004", id="E004-private"),
        pytest.param({"TRACKERS_ATTR": "2trackers"}, "actrack.E005", id="E005-digit"),
        pytest.param({"TRACKERS_ATTR": ""}, "actrack.E005", id="E005-empty"),
        pytest.param(
            {"ACTIONS_ATTR": "activity", "TRACKERS_ATTR": "activity"},
            "actrack.E006",
            id="E006-same-names",
        ),
        pytest.param({"DEFAULT_HANDLER": "nowhere.Handler"}, "actrack.E007", id="E007-missing"),
        pytest.param(
            {"DEFAULT_HANDLER": "actrack.models.Action"}, "actrack.E007", id="E007-not-handler"
        ),
        pytest.param({"DEFAULT_HANDLER": "nodots"}, "actrack.E007", id="E007-no-module"),
        pytest.param({"DEFAULT_HANDLER": None}, "actrack.E007", id="E007-not-a-string"),
        pytest.param({"TRACK_UNREAD": "yes"}, "actrack.E008", id="E008-track-unread"),
        pytest.param({"AUTO_READ": 1}, "actrack.E009", id="E009-auto-read"),
        pytest.param({"GROUPING_DELAY": -2}, "actrack.E010", id="E010-negative"),
        pytest.param({"GROUPING_DELAY": "60"}, "actrack.E010", id="E010-string"),
        pytest.param({"GROUPING_DELAY": True}, "actrack.E010", id="E010-bool"),
        pytest.param({"GROUPING_DELAY": 1.5}, "actrack.E010", id="E010-float"),
        pytest.param({"PK_MAXLENGTH": 0}, "actrack.E011", id="E011-zero"),
        pytest.param({"PK_MAXLENGTH": "36"}, "actrack.E011", id="E011-string"),
        pytest.param(
            {"PK_MAXLENGTH": KEY_COLUMN_LENGTH + 1}, "actrack.E012", id="E012-wider-than-schema"
        ),
        pytest.param({"LEVELS": {}}, "actrack.E013", id="E013-empty"),
        pytest.param({"LEVELS": [("INFO", 30)]}, "actrack.E013", id="E013-not-a-dict"),
        pytest.param({"LEVELS": {"INFO": 30, "notice": 35}}, "actrack.E014", id="E014-lower"),
        pytest.param({"LEVELS": {"INFO": 30, "MY LEVEL": 35}}, "actrack.E014", id="E014-space"),
        pytest.param({"LEVELS": {"INFO": -1}}, "actrack.E015", id="E015-negative"),
        pytest.param({"LEVELS": {"INFO": 32768}}, "actrack.E015", id="E015-too-big"),
        pytest.param({"LEVELS": {"INFO": "30"}}, "actrack.E015", id="E015-string"),
        pytest.param({"LEVELS": {"INFO": True}}, "actrack.E015", id="E015-bool"),
        pytest.param({"DEFAULT_LEVEL": 35}, "actrack.E016", id="E016-default-level"),
        pytest.param({"READABLE_LEVEL": 99}, "actrack.E017", id="E017-readable-level"),
        pytest.param({"LEVELS": {"LOW": 1, "HIGH": 2}}, "actrack.E018", id="E018-no-info"),
        pytest.param(
            {"LEVELS": {"LOW": 1, "HIGH": 2}, "DEFAULT_LEVEL": 1},
            "actrack.E018",
            id="E018-no-info-readable-level-unset",
        ),
        pytest.param(
            {"LEVELS": {"LOW": 1, "HIGH": 2}, "READABLE_LEVEL": 2},
            "actrack.E018",
            id="E018-no-info-default-level-unset",
        ),
    ],
)
def test_each_settings_check_has_a_failing_case(actrack_setting: Any, expected: str) -> None:
    with override_settings(ACTRACK=actrack_setting):
        errors = check_settings()

    assert ids(errors) == [expected]
    assert all(isinstance(error, checks.Error) for error in errors)
    assert all(error.msg for error in errors)


def test_levels_without_info_pass_with_both_levels_explicit() -> None:
    setting = {"LEVELS": {"LOW": 1, "HIGH": 2}, "DEFAULT_LEVEL": 1, "READABLE_LEVEL": 2}
    with override_settings(ACTRACK=setting):
        assert check_settings() == []


def test_several_problems_are_reported_together() -> None:
    setting = {"AUTO_READ": "no", "GROUPING_DELAY": -3, "PK_MAXLENGTH": 0}
    with override_settings(ACTRACK=setting):
        assert ids(check_settings()) == ["actrack.E009", "actrack.E010", "actrack.E011"]


def test_unknown_keys_are_named_in_the_message() -> None:
    with override_settings(ACTRACK={"GROUPING_DELAYS": 5, "ZZZ": 1}):
        (error,) = check_settings()

    assert "GROUPING_DELAYS" in error.msg
    assert "ZZZ" in error.msg


def test_accessor_name_clashing_with_a_field_fails_once_per_model() -> None:
    # Station, Line and Train are connected and all have a "name" field.
    with override_settings(ACTRACK={"ACTIONS_ATTR": "name"}):
        errors = check_accessors()

    assert ids(errors) == ["actrack.E019"] * len(errors)
    clashing = [error.obj for error in errors]
    assert Station in clashing
    assert len(clashing) == len(set(clashing))
    assert "Station.name" in next(e.msg for e in errors if e.obj is Station)


def test_accessor_name_clashing_with_a_field_keeps_the_field() -> None:
    with override_settings(ACTRACK={"TRACKERS_ATTR": "name"}):
        assert Station(name="kept").name == "kept"


def test_accessor_name_hiding_an_inherited_method_fails_and_keeps_the_method() -> None:
    with override_settings(ACTRACK={"ACTIONS_ATTR": "save"}):
        hidden = "save" in Station.__dict__
        errors = check_accessors()

    assert not hidden
    assert "actrack.E019" in ids(errors)
    assert "Station.save" in " ".join(error.msg for error in errors)


def test_non_string_accessor_name_fails_the_check() -> None:
    with override_settings(ACTRACK={"ACTIONS_ATTR": 123}):
        assert ids(check_settings()) == ["actrack.E004"]
        assert check_accessors() == []


# -- every setting takes effect at run time ----------------------------------------------------


def test_user_model_override() -> None:
    assert app_settings.USER_MODEL == settings.AUTH_USER_MODEL
    with override_settings(ACTRACK={"USER_MODEL": "demo.Station"}):
        assert app_settings.USER_MODEL == "demo.Station"
    assert app_settings.USER_MODEL == settings.AUTH_USER_MODEL


@pytest.mark.django_db
def test_actions_attr_override() -> None:
    station = make_station()
    actrack.log(station, "test-checks-arrived")

    with override_settings(ACTRACK={"ACTIONS_ATTR": "activity"}):
        assert app_settings.ACTIONS_ATTR == "activity"
        assert not hasattr(station, "actions")
        assert [a.verb for a in station.activity.as_actor()] == ["test-checks-arrived"]

    assert app_settings.ACTIONS_ATTR == "actions"
    assert not hasattr(station, "activity")
    assert station.actions.as_actor().count() == 1


@pytest.mark.django_db
def test_trackers_attr_override() -> None:
    user = make_user()
    station = make_station()
    actrack.track(user, station)

    with override_settings(ACTRACK={"TRACKERS_ATTR": "followers"}):
        assert app_settings.TRACKERS_ATTR == "followers"
        assert not hasattr(station, "trackers")
        assert list(station.followers.users()) == [user]

    assert not hasattr(station, "followers")
    assert list(station.trackers.users()) == [user]


def test_default_handler_override() -> None:
    with override_settings(ACTRACK={"DEFAULT_HANDLER": FALLBACK_PATH}):
        assert app_settings.DEFAULT_HANDLER == FALLBACK_PATH
        assert get_handler_class("test-checks-unknown") is CheckFallbackHandler

    assert get_handler_class("test-checks-unknown") is ActionHandler


@pytest.mark.parametrize("name", ["TRACK_UNREAD", "AUTO_READ"])
def test_boolean_settings_override(name: str) -> None:
    assert getattr(app_settings, name) is True
    with override_settings(ACTRACK={name: False}):
        assert getattr(app_settings, name) is False
    assert getattr(app_settings, name) is True


@pytest.mark.django_db
def test_grouping_delay_override() -> None:
    user = make_user()
    station = make_station()

    def log_twice() -> None:
        with actrack.batch():
            actrack.log(user, "test-checks-grouped", targets=station)
            actrack.log(user, "test-checks-grouped", targets=station)

    log_twice()
    assert Action.objects.count() == 1

    with override_settings(ACTRACK={"GROUPING_DELAY": -1}):
        assert app_settings.GROUPING_DELAY == -1
        log_twice()

    assert Action.objects.count() == 3


@pytest.mark.django_db
def test_pk_maxlength_override() -> None:
    journey = make_journey()  # UUID key: 36 characters
    assert actrack.log(journey, "test-checks-departed") is not None

    with override_settings(ACTRACK={"PK_MAXLENGTH": 16}):
        assert app_settings.PK_MAXLENGTH == 16
        with pytest.raises(ValueError, match="PK_MAXLENGTH"):
            actrack.log(journey, "test-checks-departed")
        with pytest.raises(ValueError, match="PK_MAXLENGTH"):
            actrack.log(None, "test-checks-departed", targets=journey)

    assert Action.objects.count() == 1


def test_levels_override() -> None:
    with override_settings(ACTRACK={"LEVELS": {"INFO": 1, "LOUD": 2}}):
        assert app_settings.LEVELS == {"INFO": 1, "LOUD": 2}
        assert actrack.level.LOUD == 2
        assert app_settings.DEFAULT_LEVEL == 1
        assert app_settings.READABLE_LEVEL == 1
    assert app_settings.LEVELS == DEFAULT_LEVELS


@pytest.mark.django_db
def test_default_level_override() -> None:
    user = make_user()
    with override_settings(ACTRACK={"DEFAULT_LEVEL": 50}):
        assert app_settings.DEFAULT_LEVEL == 50
        assert actrack.log(user, "test-checks-loud").level == 50
    assert actrack.log(user, "test-checks-quiet").level == 30


@pytest.mark.django_db
def test_readable_level_override() -> None:
    user = make_user()
    actrack.log(user, "test-checks-debug", level="DEBUG")
    actrack.log(user, "test-checks-info", level="INFO")

    assert [a.verb for a in Action.objects.visible()] == ["test-checks-info"]
    with override_settings(ACTRACK={"READABLE_LEVEL": 10}):
        assert app_settings.READABLE_LEVEL == 10
        assert {a.verb for a in Action.objects.visible()} == {
            "test-checks-debug",
            "test-checks-info",
        }


def test_every_setting_has_an_override_test() -> None:
    from actrack.conf import _defaults

    covered = {
        "USER_MODEL",
        "ACTIONS_ATTR",
        "TRACKERS_ATTR",
        "DEFAULT_HANDLER",
        "TRACK_UNREAD",
        "AUTO_READ",
        "GROUPING_DELAY",
        "PK_MAXLENGTH",
        "LEVELS",
        "DEFAULT_LEVEL",
        "READABLE_LEVEL",
    }
    assert set(_defaults()) == covered


# -- migrations ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_migrations_are_up_to_date() -> None:
    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    except SystemExit as exc:  # pragma: no cover - only when a migration is missing
        pytest.fail(f"makemigrations --check found model changes without a migration ({exc})")
