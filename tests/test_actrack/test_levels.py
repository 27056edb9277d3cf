"""Levels: ``actrack.level`` and how ``log()`` resolves an action's level (SPEC 3.7)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

import actrack
from actrack import ActionHandler, handlers
from actrack.models import Action
from tests.conftest import make_user

SEED_LEVELS = {"NULL": 0, "DEBUG": 10, "HIDDEN": 20, "INFO": 30, "WARNING": 40, "ERROR": 50}


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handlers registered by a test are forgotten after it."""
    monkeypatch.setattr(handlers, "_registry", dict(handlers._registry))


@pytest.fixture
def user() -> Any:
    return make_user()


def handler_with_level(verb: str, level: Any) -> type[ActionHandler]:
    return type(f"Handler_{verb}", (ActionHandler,), {"verb": verb, "level": level})


# -- actrack.level ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), SEED_LEVELS.items())
def test_seed_levels_are_module_attributes(name: str, value: int) -> None:
    assert getattr(actrack.level, name) == value


def test_level_module_lists_the_configured_levels() -> None:
    assert sorted(dir(actrack.level)) == sorted(SEED_LEVELS)


def test_level_module_reflects_overridden_levels() -> None:
    with override_settings(ACTRACK={"LEVELS": {"INFO": 3, "NOTICE": 5, "CRITICAL": 9}}):
        assert actrack.level.INFO == 3
        assert actrack.level.NOTICE == 5
        assert actrack.level.CRITICAL == 9
        assert sorted(dir(actrack.level)) == ["CRITICAL", "INFO", "NOTICE"]
        with pytest.raises(AttributeError):
            _ = actrack.level.WARNING

    assert actrack.level.WARNING == 40
    with pytest.raises(AttributeError):
        _ = actrack.level.NOTICE


@pytest.mark.parametrize("name", ["BOGUS", "info", "Info"])
def test_unknown_level_is_an_attribute_error(name: str) -> None:
    with pytest.raises(AttributeError, match=name):
        getattr(actrack.level, name)
    assert not hasattr(actrack.level, name)


def test_from_import_of_a_level_works() -> None:
    from actrack.level import ERROR, INFO

    assert (INFO, ERROR) == (30, 50)


# -- resolution order ------------------------------------------------------------------------


@pytest.mark.django_db
def test_default_level_is_info(user: Any) -> None:
    assert actrack.log(user, "test-levels-plain").level == actrack.level.INFO


@pytest.mark.django_db
def test_handler_level_beats_default_level(user: Any) -> None:
    handler_with_level("test-levels-handler", 40)

    assert actrack.log(user, "test-levels-handler").level == 40


@pytest.mark.django_db
def test_call_level_beats_handler_level(user: Any) -> None:
    handler_with_level("test-levels-call", 40)

    assert actrack.log(user, "test-levels-call", level=actrack.level.ERROR).level == 50


@pytest.mark.django_db
def test_zero_is_a_level_not_a_missing_one(user: Any) -> None:
    handler_with_level("test-levels-zero-handler", 0)
    handler_with_level("test-levels-zero-call", 40)

    assert actrack.log(user, "test-levels-zero-handler").level == 0
    assert actrack.log(user, "test-levels-zero-call", level=0).level == 0


@pytest.mark.django_db
def test_overridden_default_level_is_used_at_run_time(user: Any) -> None:
    handler_with_level("test-levels-with-handler", 50)

    with override_settings(ACTRACK={"DEFAULT_LEVEL": 10}):
        assert actrack.log(user, "test-levels-default").level == 10
        assert actrack.log(user, "test-levels-with-handler").level == 50
        assert actrack.log(user, "test-levels-default", level=40).level == 40

    assert actrack.log(user, "test-levels-default").level == 30


@pytest.mark.django_db
def test_default_level_follows_an_overridden_info_level(user: Any) -> None:
    with override_settings(ACTRACK={"LEVELS": {"LOW": 1, "INFO": 35}}):
        assert actrack.log(user, "test-levels-info").level == 35


@pytest.mark.django_db
def test_level_stored_is_the_one_read_back(user: Any) -> None:
    action = actrack.log(user, "test-levels-stored", level=actrack.level.WARNING)

    assert Action.objects.get(pk=action.pk).level == 40


# -- levels by name ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_level_given_by_name(user: Any) -> None:
    assert actrack.log(user, "test-levels-named", level="WARNING").level == 40
    assert actrack.log(user, "test-levels-named", level="NULL").level == 0


@pytest.mark.django_db
def test_level_name_from_overridden_levels(user: Any) -> None:
    with override_settings(ACTRACK={"LEVELS": {"INFO": 30, "NOTICE": 35}}):
        assert actrack.log(user, "test-levels-notice", level="NOTICE").level == 35


@pytest.mark.django_db
def test_handler_level_given_by_name(user: Any) -> None:
    handler_with_level("test-levels-handler-name", "ERROR")

    assert actrack.log(user, "test-levels-handler-name").level == 50


# -- invalid levels ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("level", "error"),
    [
        ("BOGUS", ValueError),
        ("warning", ValueError),
        ("", ValueError),
        (-1, ValueError),
        (32768, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ([30], TypeError),
        (object(), TypeError),
    ],
)
def test_invalid_level_is_rejected_and_nothing_is_written(
    user: Any, level: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        actrack.log(user, "test-levels-invalid", level=level)

    assert not Action.objects.exists()


@pytest.mark.django_db
def test_name_of_a_level_removed_by_an_override_is_rejected(user: Any) -> None:
    only_info = {"LEVELS": {"INFO": 30}}
    with override_settings(ACTRACK=only_info), pytest.raises(ValueError, match="WARNING"):
        actrack.log(user, "test-levels-removed", level="WARNING")

    assert not Action.objects.exists()


@pytest.mark.django_db
def test_invalid_handler_level_is_rejected(user: Any) -> None:
    handler_with_level("test-levels-bad-handler", -5)

    with pytest.raises(ValueError, match="-5"):
        actrack.log(user, "test-levels-bad-handler")

    assert not Action.objects.exists()


@pytest.mark.django_db
def test_invalid_level_inside_a_batch_is_rejected_at_log_time(user: Any) -> None:
    with actrack.batch():
        actrack.log(user, "test-levels-ok")
        with pytest.raises(ValueError, match="BOGUS"):
            actrack.log(user, "test-levels-bad", level="BOGUS")

    assert list(Action.objects.values_list("verb", flat=True)) == ["test-levels-ok"]
