"""PostgreSQL: whole-model followers' pages through ``actrack_prepared_page()``
(actrack.pagefunction)."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import random
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

import actrack
from actrack import pagefunction
from actrack.models import Action
from actrack.readstate import mark_all_read
from actrack.sessionuse import SessionUses
from tests.conftest import all_page_ids, make_line, make_station, make_train, make_user
from tests.demo.models import Line, Station, Train
from tests.test_actrack.sessionfunctions import calls, postgresql_only
from tests.test_actrack.sessionfunctions import proconfig as _proconfig

pytestmark = pytest.mark.django_db


migration = importlib.import_module("actrack.migrations.0004_postgresql_prepared_page")


def _calls(log: Any) -> list[bool]:
    return calls(log, pagefunction.FUNCTION)


def _by_the_statement(factory: Any, size: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every page of ``factory()`` with the function out of the way."""
    with monkeypatch.context() as patch:
        patch.setattr(pagefunction, "fetch", lambda *args: None)
        return all_page_ids(factory, size)


def _pages(items: int, size: int) -> int:
    """How many pages ``items`` actions take at ``size`` a page (an empty feed: one)."""
    return max(1, -(-items // size))


def _world(count: int = 120) -> dict[str, Any]:
    """Trains, stations and lines in every role, many actions sharing a timestamp."""
    rng = random.Random(5)
    trains = [make_train() for _ in range(3)]
    stations = [make_station() for _ in range(3)]
    lines = [make_line() for _ in range(2)]
    users = [make_user() for _ in range(2)]
    now = timezone.now()
    with actrack.batch():
        for number in range(count):
            actrack.log(
                rng.choice([*trains, *stations, *users, None]),
                rng.choice(["departed", "arrived", "closed"]),
                targets=rng.sample([*stations, *trains], rng.randint(0, 3)),
                related=rng.sample([*trains, *lines], rng.randint(0, 2)),
                timestamp=now - dt.timedelta(minutes=rng.randint(0, 30)),
                level=rng.choice([10, 20, 30, 40]),
                grouping_delay=-1,
                n=number,
            )
    return {"trains": trains, "stations": stations, "lines": lines, "users": users}


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has sent no such page yet and knows nothing of the function."""
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "sessions", SessionUses())
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "present", {})
    monkeypatch.setattr(pagefunction, "_OUTCOMES", type(pagefunction._OUTCOMES)())


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_session_sends_its_first_pages_as_the_statement_then_calls_the_function(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(300)
    user = world["users"][0]
    actrack.track(user, Train)
    user.actions.feed().page(size=2)  # the tracker rows read and kept
    expected = _by_the_statement(user.actions.feed, 2, monkeypatch)
    assert len(expected) > 40
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "sessions", SessionUses())
    pages = []
    with count_queries() as log:
        cursor = None
        for _ in range(pagefunction.PREPARED_PAGE.inline + 3):
            page = user.actions.feed().page(cursor=cursor, size=2)
            pages.extend(a.pk for a in page.actions)
            cursor = page.next_cursor
    # One query a page: the statement, then the function.
    assert _calls(log) == [False] * pagefunction.PREPARED_PAGE.inline + [True] * 3
    assert pages == expected[: 2 * (pagefunction.PREPARED_PAGE.inline + 3)]
    # Prepared once for the session, planned generic.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE name LIKE 'actrack_page_%%'"
        )
        plans = cursor.fetchall()
    assert plans == [(3, 0)]  # the cursor pages' text, three times
    # Another follower of trains: the same text, its values are parameters.
    other = world["users"][1]
    actrack.track(other, Train)
    first = other.actions.feed().page(size=2)
    for _ in range(2):
        other.actions.feed().page(cursor=first.next_cursor, size=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE name LIKE 'actrack_page_%%' ORDER BY generic_plans"
        )
        assert cursor.fetchall() == [(1, 0), (5, 0)]  # page 1's text, then the cursors'


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_functions_pages_equal_the_statements(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of every kind of whole-model feed, with ties of timestamp across
    pages, the level floor, the user's own actions and unread filtering."""
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "inline", 0)
    world = _world()
    users = [make_user() for _ in range(5)]
    actrack.track(users[0], Train, actor_only=False)
    actrack.track(users[1], Station, verbs=["arrived", "closed"], actor_only=False)
    actrack.track(users[2], Train, actor_only=True)
    actrack.track(users[3], Train, actor_only=False)
    actrack.track(users[3], Line, actor_only=False)
    # A user who logged some actions: its own are left out.
    actrack.track(world["users"][1], Station, actor_only=False)
    feeds = {
        "one model": lambda: users[0].actions.feed(),
        "verbs": lambda: users[1].actions.feed(),
        "actor only": lambda: users[2].actions.feed(),
        "two models": lambda: users[3].actions.feed(),
        "own actions": lambda: world["users"][1].actions.feed(),
        "with own": lambda: world["users"][1].actions.feed(include_own=True),
        "filtered": lambda: users[3].actions.feed(verb="departed"),
    }
    for name, feed in feeds.items():
        feed().page(size=3)  # the tracker rows read and kept
        for size in (1, 7):
            expected = _by_the_statement(feed, size, monkeypatch)
            with count_queries() as log:
                assert all_page_ids(feed, size) == expected, name
            assert all(_calls(log)), name
            assert len(log) == _pages(len(expected), size), name  # one query a page
    assert len(_by_the_statement(feeds["two models"], 50, monkeypatch)) > 15  # pages of 7
    # The function's rows load as the ORM's do, field by field.
    with count_queries() as log:
        actions = users[3].actions.feed().page(size=20).actions
    assert _calls(log) == [True]
    stored = Action.objects.in_bulk([a.pk for a in actions])
    for action in actions:
        for field in Action._meta.concrete_fields:
            assert getattr(action, field.attname) == getattr(stored[action.pk], field.attname)
        assert isinstance(action.data, dict) and action.timestamp.tzinfo is not None
    # Unread filtering: the read mark's time is a parameter like any other.
    mark_all_read(users[0])
    train = world["trains"][0]
    for number in range(4):
        actrack.log(train, "departed", targets=train, level=40, n=number, grouping_delay=-1)
    unread = _by_the_statement(lambda: users[0].actions.feed(unread=True), 2, monkeypatch)
    assert len(unread) == 4
    with count_queries() as log:
        assert all_page_ids(lambda: users[0].actions.feed(unread=True), 2) == unread
    # Each page reads the tracker rows (unread pages do not keep them), then calls.
    assert _calls(log) == [False, True] * _pages(len(unread), 2)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_feeds_naming_objects_never_call_the_function(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "inline", 0)
    world = _world(40)
    user = make_user()
    actrack.track(user, Train)
    actrack.track(user, world["stations"][0])
    other = make_user()
    actrack.track(other, world["lines"][0])
    for feed in (user.actions.feed, other.actions.feed, world["trains"][0].actions.all):
        expected = _by_the_statement(feed, 4, monkeypatch)
        with count_queries() as log:
            assert all_page_ids(feed, 4) == expected
        assert not any(_calls(log))


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_only_statements_already_run_go_to_the_function(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error would end the caller's transaction: a statement the function has
    not run yet in this process is sent as itself there."""
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "inline", 0)
    _world(30)
    user = make_user()
    actrack.track(user, Train)
    user.actions.feed().page(size=3)
    with transaction.atomic(), count_queries() as log:
        first = user.actions.feed().page(size=3)
    assert _calls(log) == [False]
    user.actions.feed().page(size=3)  # autocommit: through the function
    with transaction.atomic(), count_queries() as log:
        again = user.actions.feed().page(size=3)
        cursor_page = user.actions.feed().page(cursor=first.next_cursor, size=3)
    assert [a.pk for a in again.actions] == [a.pk for a in first.actions]
    assert cursor_page.actions
    assert _calls(log) == [True, False]  # the cursor page's text is another one


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_statement_the_function_cannot_prepare_is_sent_as_itself_from_then_on(
    fresh: None,
    count_queries: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "inline", 0)
    _world(30)
    user = make_user()
    actrack.track(user, Train)
    expected = _by_the_statement(user.actions.feed, 4, monkeypatch)
    numbered = pagefunction._numbered
    # A parameter whose type PostgreSQL cannot infer.

    def unpreparable(sql: str, params: list[Any]) -> tuple[str, list[str | None]] | None:
        found = numbered(sql, params)
        assert found is not None
        return f"SELECT * FROM ({found[0]}) AS _x WHERE $99 IS NULL", found[1]

    monkeypatch.setattr(pagefunction, "_numbered", unpreparable)
    with caplog.at_level(logging.WARNING, logger="actrack.pagefunction"), count_queries() as log:
        assert all_page_ids(user.actions.feed, 4) == expected
    # Each text tried once (page 1, then the cursor pages' one), then the statements.
    assert _calls(log).count(True) == 2
    assert len(log) == _pages(len(expected), 4) + 2
    assert "could not be prepared" in caplog.text
    assert sorted(pagefunction._OUTCOMES.values()) == [False, False]
    with count_queries() as log:
        assert all_page_ids(user.actions.feed, 4) == expected
    assert not any(_calls(log))


@postgresql_only
def test_without_the_function_a_transaction_asks_once(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, expected = _model_follower(monkeypatch)
    with connection.schema_editor() as editor:  # rolled back with the test
        migration.drop_prepared_page(None, editor)
    # Known to run (as after an autocommit page): inside the transaction, the
    # process asks the catalogue first, once.
    statement, _args = pagefunction._numbered(*_page_statement(user))
    monkeypatch.setitem(pagefunction._OUTCOMES, pagefunction._digest(statement), True)
    with count_queries() as log:
        assert [a.pk for a in user.actions.feed().page(size=3).actions] == expected[:3]
    assert len(log) == 2 and "to_regprocedure" in log.statements[0]
    assert {
        ("default", connection.settings_dict["NAME"]): False
    } == pagefunction.PREPARED_PAGE.present
    with count_queries() as log:
        assert all_page_ids(user.actions.feed, 3) == expected
    assert not any(_calls(log)) and len(log) == _pages(len(expected), 3)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_without_the_function_autocommit_tries_it_once(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, expected = _model_follower(monkeypatch)
    with connection.schema_editor() as editor:
        migration.drop_prepared_page(None, editor)
    try:
        with count_queries() as log:
            assert all_page_ids(user.actions.feed, 3) == expected
        # The failed call, then the statement; then statements alone.
        assert _calls(log) == [True] + [False] * _pages(len(expected), 3)
        assert False not in pagefunction._OUTCOMES.values()  # the statement is not to blame
    finally:
        with connection.schema_editor() as editor:
            migration.create_prepared_page(None, editor)
    pagefunction.PREPARED_PAGE.migrated(using="default")
    with count_queries() as log:
        assert all_page_ids(user.actions.feed, 3) == expected
    assert all(_calls(log))


@postgresql_only
def test_the_migration_creates_a_generic_planned_function_and_drops_it() -> None:
    def proconfig() -> Any:
        return _proconfig(pagefunction.SIGNATURE)

    settings = (["plan_cache_mode=force_generic_plan", "jit=off"], "v")
    assert proconfig() == settings
    assert pagefunction.PREPARED_PAGE.has_function(connection)
    with connection.schema_editor() as editor:
        migration.drop_prepared_page(None, editor)
    assert proconfig() is None and not pagefunction.PREPARED_PAGE.has_function(connection)
    with connection.schema_editor() as editor:
        migration.create_prepared_page(None, editor)
    assert proconfig() == settings


def test_parameters_are_numbered_and_sent_as_text() -> None:
    when = dt.datetime(2026, 11, 29, 7, 30, 1, 250, tzinfo=dt.UTC)
    assert pagefunction._numbered(
        "SELECT %s, %s WHERE a = %s AND b > %s AND c = %s", [1, "x'y", None, when, True]
    ) == (
        "SELECT $1, $2 WHERE a = $3 AND b > $4 AND c = $5",
        ["1", "x'y", None, "2026-11-29T07:30:01.000250+00:00", "true"],
    )
    # Whatever the function could not send back as the statement would: refused.
    assert pagefunction._numbered("SELECT %s LIKE 'a%%'", ["b"]) is None
    assert pagefunction._numbered("SELECT %s", [[1, 2]]) is None
    assert pagefunction._numbered("SELECT %s", [dt.datetime(2026, 1, 1)]) is None  # naive
    assert pagefunction._numbered("SELECT %s", [1.5]) is None
    assert pagefunction._numbered("SELECT %s", ["a\0b"]) is None
    assert pagefunction._numbered("SELECT %s, %s", [1]) is None


def test_other_databases_get_no_function_and_page_by_the_statement(
    count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL has the function")
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "inline", 0)
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "present", {})
    executed: list[str] = []
    editor = SimpleNamespace(connection=connection, execute=executed.append)
    migration.create_prepared_page(None, editor)
    migration.drop_prepared_page(None, editor)
    assert executed == []
    pagefunction.PREPARED_PAGE.migrated(using="default")
    assert pagefunction.PREPARED_PAGE.present == {}
    _world(30)
    user = make_user()
    actrack.track(user, Train)
    with count_queries() as log:
        assert all_page_ids(user.actions.feed, 4)
    assert not any(_calls(log))


def _model_follower(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    """A follower of trains, its tracker rows kept, and its feed in pages of 3."""
    monkeypatch.setattr(pagefunction.PREPARED_PAGE, "inline", 0)
    _world(30)
    user = make_user()
    actrack.track(user, Train)
    user.actions.feed().page(size=3)
    return user, _by_the_statement(user.actions.feed, 3, monkeypatch)


def _page_statement(user: Any) -> tuple[str, list[Any]]:
    """The statement (SQL, parameters) of ``user``'s page 1 of 3, as sent to the function."""
    captured: list[tuple[str, list[Any]]] = []

    def spy(model: Any, conn: Any, sql: str, params: list[Any], extra: int) -> None:
        captured.append((sql, params))

    original = pagefunction.fetch
    pagefunction.fetch = spy  # type: ignore[assignment]
    try:
        user.actions.feed().page(size=3)
    finally:
        pagefunction.fetch = original  # type: ignore[assignment]
    assert len(captured) == 1
    return captured[0]
