"""PostgreSQL: an object's pages through ``actrack_object_page()`` (actrack.objectpage)."""

from __future__ import annotations

import datetime as dt
import importlib
import random
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

import actrack
from actrack import objectpage
from actrack.models import Action
from actrack.sessionuse import SessionUses
from tests.conftest import all_page_ids, make_line, make_station, make_train, make_user
from tests.test_actrack.sessionfunctions import calls, postgresql_only
from tests.test_actrack.sessionfunctions import proconfig as _proconfig

pytestmark = pytest.mark.django_db


migration = importlib.import_module("actrack.migrations.0003_postgresql_object_page")


def _calls(log: Any) -> list[bool]:
    return calls(log, objectpage.FUNCTION)


def _newest_first(obj: Any) -> list[int]:
    return [a.pk for a in Action.objects.for_object(obj).order_by("-timestamp", "-pk")]


@pytest.fixture
def world() -> dict[str, Any]:
    """Trains and stations in every role, many actions sharing a timestamp."""
    rng = random.Random(11)
    trains = [make_train() for _ in range(4)]
    stations = [make_station() for _ in range(4)]
    lines = [make_line() for _ in range(2)]
    now = timezone.now()
    with actrack.batch():
        for number in range(200):
            actrack.log(
                rng.choice([*trains, *stations, None]),
                rng.choice(["departed", "arrived", "closed"]),
                targets=rng.sample([*stations, *trains], rng.randint(0, 3)),
                related=rng.sample([*trains, *lines], rng.randint(0, 2)),
                timestamp=now - dt.timedelta(minutes=rng.randint(0, 40)),
                grouping_delay=-1,
                n=number,
            )
    return {"objects": [*trains, *stations, *lines]}


@pytest.fixture
def fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's database session as one that has sent no object page yet."""
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "sessions", SessionUses())


@postgresql_only
def test_a_session_sends_its_first_object_pages_as_the_statement_then_calls_the_function(
    world: dict[str, Any], fresh_session: None, count_queries: Any
) -> None:
    train = world["objects"][0]
    expected = _newest_first(train)
    assert len(expected) > 60
    pages = []
    with count_queries() as log:
        cursor = None
        for _ in range(objectpage.OBJECT_PAGE.inline + 3):
            page = train.actions.all().page(cursor=cursor, size=6)
            pages.extend(a.pk for a in page.actions)
            cursor = page.next_cursor
    assert _calls(log) == [False] * objectpage.OBJECT_PAGE.inline + [True] * 3  # one query a page
    assert pages == expected[: 6 * (objectpage.OBJECT_PAGE.inline + 3)]


@postgresql_only
@pytest.mark.parametrize("size", [1, 4, 20])
def test_the_functions_pages_equal_the_plain_order(
    world: dict[str, Any], size: int, monkeypatch: pytest.MonkeyPatch, count_queries: Any
) -> None:
    """Every object, every page, ties of timestamp broken by id across pages; the
    object can be the actor, a target and a related object of the same action."""
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "inline", 0)
    for obj in world["objects"]:
        expected = _newest_first(obj)
        assert expected
        with count_queries() as log:
            assert all_page_ids(obj.actions.all, size) == expected
        assert all(_calls(log))


@postgresql_only
def test_the_functions_actions_are_the_orms(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "inline", 0)
    train = world["objects"][0]
    actions = train.actions.all().page(size=20).actions
    stored = Action.objects.in_bulk([a.pk for a in actions])
    for action in actions:
        other = stored[action.pk]
        for field in Action._meta.concrete_fields:
            assert getattr(action, field.attname) == getattr(other, field.attname)
        assert action.timestamp.tzinfo is not None
        assert not action._state.adding and action._state.db == "default"


@postgresql_only
def test_other_queries_never_call_the_function(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, count_queries: Any
) -> None:
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "inline", 0)
    train, station = world["objects"][0], world["objects"][4]
    user = make_user()
    actrack.track(user, train, actor_only=False)
    querysets = {
        "verbs": lambda: train.actions.all().with_verbs("arrived"),
        "levels": lambda: train.actions.all().filter(level__gte=20),
        "as target": lambda: train.actions.as_target(),
        "two objects": lambda: Action.objects.for_object(train).for_object(station),
        "feed": lambda: user.actions.feed(),
        "unread": lambda: user.actions.feed().unread_for(user),
        "whole model": lambda: Action.objects.tracked_by(
            actrack.models.TempTracker(None, type(train), actor_only=False)
        ),
    }
    for name, queryset in querysets.items():
        expected = [a.pk for a in queryset().order_by("-timestamp", "-pk")]
        with count_queries() as log:
            assert all_page_ids(queryset, 7) == expected, name
        assert not any(_calls(log)), name


@postgresql_only
def test_without_the_function_a_transaction_asks_once_then_pages_by_the_statement(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, count_queries: Any
) -> None:
    """Inside a transaction (as every test here) a failed call would end it: the
    process asks the database first, once."""
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "inline", 0)
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "present", {})
    with connection.schema_editor() as editor:  # rolled back with the test
        migration.drop_object_page(None, editor)
    train = world["objects"][0]
    expected = _newest_first(train)
    with count_queries() as first:
        page = train.actions.all().page(size=5)
    assert [a.pk for a in page.actions] == expected[:5]
    assert len(first) == 2 and "to_regprocedure" in first.statements[0]
    with count_queries() as later:
        assert all_page_ids(train.actions.all, 5) == expected
    assert not any(_calls(later)) and len(later) == -(-len(expected) // 5)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_without_the_function_autocommit_tries_it_once_then_pages_by_the_statement(
    monkeypatch: pytest.MonkeyPatch, count_queries: Any
) -> None:
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "inline", 0)
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "present", {})
    train = make_train()
    for number in range(12):
        actrack.log(None, "departed", targets=train, n=number)
    expected = _newest_first(train)
    with connection.schema_editor() as editor:
        migration.drop_object_page(None, editor)
    try:
        with count_queries() as first:
            assert all_page_ids(train.actions.all, 5) == expected
        # The call failed (no function), then the statement; then the statement alone.
        assert _calls(first) == [True, False, False, False]
        known = objectpage.OBJECT_PAGE.present
        assert known == {("default", connection.settings_dict["NAME"]): False}
    finally:
        with connection.schema_editor() as editor:
            migration.create_object_page(None, editor)
    objectpage.OBJECT_PAGE.migrated(using="default")
    with count_queries() as again:
        assert all_page_ids(train.actions.all, 5) == expected
    assert _calls(again) == [True, True, True]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_new_session_sends_its_first_pages_as_the_statement_again(count_queries: Any) -> None:
    train = make_train()
    for number in range(3):
        actrack.log(None, "departed", targets=train, n=number)
    for _ in range(objectpage.OBJECT_PAGE.inline):
        train.actions.all().page(size=2)
    with count_queries() as log:
        train.actions.all().page(size=2)
    assert _calls(log) == [True]
    connection.close()
    with count_queries() as log:
        train.actions.all().page(size=2)
    assert _calls(log) == [False]


@postgresql_only
def test_the_migration_creates_a_generic_planned_function_and_drops_it() -> None:
    def proconfig() -> Any:
        return _proconfig(objectpage.SIGNATURE)

    assert proconfig() == (["plan_cache_mode=force_generic_plan"], "s")
    assert objectpage.OBJECT_PAGE.has_function(connection)
    with connection.schema_editor() as editor:
        migration.drop_object_page(None, editor)
    assert proconfig() is None and not objectpage.OBJECT_PAGE.has_function(connection)
    with connection.schema_editor() as editor:
        migration.create_object_page(None, editor)
    assert proconfig() == (["plan_cache_mode=force_generic_plan"], "s")


def test_other_databases_get_no_function_and_page_by_the_statement(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, count_queries: Any
) -> None:
    """The migration does nothing elsewhere, and pages never try the function."""
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL has the function")
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "inline", 0)
    monkeypatch.setattr(objectpage.OBJECT_PAGE, "present", {})
    executed: list[str] = []
    editor = SimpleNamespace(connection=connection, execute=executed.append)
    migration.create_object_page(None, editor)
    migration.drop_object_page(None, editor)
    assert executed == []
    objectpage.OBJECT_PAGE.migrated(using="default")
    assert objectpage.OBJECT_PAGE.present == {}
    train = world["objects"][0]
    expected = _newest_first(train)
    with count_queries() as log:
        assert all_page_ids(train.actions.all, 3) == expected
    assert len(log) == -(-len(expected) // 3) and not any(_calls(log))
