"""PostgreSQL: ``log()`` outside a queue through ``actrack_log_action()``
(actrack.logfunction)."""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, ProgrammingError, connection, transaction
from django.test import override_settings
from django.utils import timezone

import actrack
from actrack import logfunction
from actrack.models import Action, ActionRelated, ActionTarget
from actrack.sessionuse import SessionUses
from tests.conftest import make_note, make_station, make_train, make_user
from tests.demo.models import Note, Station, Train
from tests.test_actrack.sessionfunctions import calls, postgresql_only
from tests.test_actrack.sessionfunctions import proconfig as _proconfig

pytestmark = pytest.mark.django_db

migration = importlib.import_module("actrack.migrations.0005_postgresql_log_action")


def _calls(log: Any) -> list[bool]:
    """For each statement of ``log``: whether it called the function (not the catalogue)."""
    return calls(log, f"SELECT {logfunction.FUNCTION}")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has written no single action yet and knows nothing of the function
    (and has the content types in Django's cache: counted queries are the writes)."""
    monkeypatch.setattr(logfunction.LOG_ACTION, "sessions", SessionUses())
    monkeypatch.setattr(logfunction.LOG_ACTION, "present", {})
    ContentType.objects.get_for_models(Train, Station, Note, get_user_model())


def _written(action: Action) -> tuple[Any, ...]:
    """What ``action`` holds in the database, but its id: columns and link rows in order."""
    stored = Action.objects.get(pk=action.pk)
    links = [
        list(
            model.objects.filter(action=action)
            .order_by("pk")
            .values_list("obj_ct_id", "obj_key", "timestamp")
        )
        for model in (ActionTarget, ActionRelated)
    ]
    return (
        stored.actor_ct_id,
        stored.actor_key,
        stored.verb,
        stored.level,
        stored.data,
        stored.timestamp,
        *links,
    )


def _shapes() -> list[dict[str, Any]]:
    """Calls of ``log()`` of every shape: no actor, no links, many in a given order..."""
    train, user = make_train(), make_user()
    stations = [make_station() for _ in range(3)]
    stations.reverse()  # not the order of their keys
    notes = [make_note() for _ in range(2)]
    now = timezone.now()
    shapes: list[dict[str, Any]] = [
        {"actor": train, "verb": "departed"},
        {"actor": None, "verb": "closed", "targets": stations[:1]},
        {"actor": user, "verb": "checked", "targets": stations, "related": notes, "n": 1},
        {"actor": train, "verb": "noted", "related": notes[::-1], "level": 40},
        {"actor": user, "verb": "said", "targets": stations[1:], "text": 'l\'été "ok"'},
        {"actor": train, "verb": "late", "targets": notes, "late": [1, 2]},
    ]
    # Each its own moment (written twice, the same both times), one of them days ago.
    for number, shape in enumerate(shapes):
        shape["timestamp"] = now - dt.timedelta(days=3 if number == 5 else 0, seconds=number)
    return shapes


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_session_writes_its_first_single_actions_by_the_statement_then_calls_the_function(
    fresh: None, count_queries: Any
) -> None:
    train, station, note = make_train(), make_station(), make_note()
    with count_queries() as log:
        for number in range(logfunction.LOG_ACTION.inline + 3):
            actrack.log(train, "departed", targets=station, related=note, n=number)
    # One query each: the statement, then the function.
    assert _calls(log) == [False] * logfunction.LOG_ACTION.inline + [True] * 3
    assert all("WITH new AS" in sql for sql in log.statements[: logfunction.LOG_ACTION.inline])
    numbers = list(Action.objects.order_by("pk").values_list("data__n", flat=True))
    assert numbers == list(range(logfunction.LOG_ACTION.inline + 3))
    assert ActionTarget.objects.count() == ActionRelated.objects.count() == len(numbers)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_functions_actions_equal_the_statements(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes = _shapes()
    by_statement = []
    with monkeypatch.context() as patch:
        patch.setattr(logfunction, "insert", lambda *args: None)
        for shape in shapes:
            action = actrack.log(**shape)
            assert action is not None
            by_statement.append(action)
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    with count_queries() as log:
        by_function = [actrack.log(**shape) for shape in shapes]
    assert _calls(log) == [True] * len(shapes)
    for statement, function in zip(by_statement, by_function, strict=True):
        assert function is not None and function.pk > statement.pk
        assert _written(function) == _written(statement)
        # The returned action is the saved one.
        assert Action.objects.get(pk=function.pk).data == function.data
        assert function.timestamp == Action.objects.get(pk=function.pk).timestamp
    # Link rows in the order given (their ids follow it), as the statement writes them.
    checked = by_function[2]
    assert checked is not None
    assert list(
        ActionTarget.objects.filter(action=checked)
        .order_by("pk")
        .values_list("obj_key", flat=True)
    ) == [str(s.pk) for s in shapes[2]["targets"]]


@postgresql_only
@pytest.mark.django_db(transaction=True)
@override_settings(USE_TZ=False)
def test_naive_timestamps_through_the_function(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    moment = dt.datetime(2024, 5, 6, 7, 8, 9)
    action = actrack.log(make_user(), "walked", targets=make_station(), timestamp=moment)
    assert action is not None and action.timestamp == moment
    assert Action.objects.get().timestamp == moment
    assert ActionTarget.objects.get().timestamp == moment


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_refused_link_row_leaves_nothing_written(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function is one statement: when the database refuses its last link row,
    the action and its targets are not kept either."""
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    table = ActionRelated._meta.db_table
    train, station, note = make_train(), make_station(), make_note()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
        )
    try:
        with pytest.raises(DatabaseError, match="refused"):
            actrack.log(train, "departed", targets=station, related=note)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER test_refuse ON {table}")
            cursor.execute("DROP FUNCTION test_refuse()")
    assert not Action.objects.exists() and not ActionTarget.objects.exists()
    # The refusal was not taken for a missing function.
    assert False not in logfunction.LOG_ACTION.present.values()
    with count_queries() as log:
        assert actrack.log(train, "departed", targets=station, related=note) is not None
    assert _calls(log) == [True]
    assert ActionRelated.objects.count() == 1


@postgresql_only
def test_inside_a_transaction_the_process_asks_the_catalogue_once(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a transaction (the test's), where a failed call would end it: the catalogue
    first, once per process."""
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    train, station = make_train(), make_station()
    with count_queries() as log:
        actrack.log(train, "departed", targets=station, grouping_delay=-1)
    assert "to_regprocedure" in log.statements[0] and _calls(log) == [False, True]
    with count_queries() as log:
        actrack.log(train, "arrived", targets=station, grouping_delay=-1)
    assert _calls(log) == [True]
    assert Action.objects.count() == 2


@postgresql_only
def test_without_the_function_a_transaction_asks_once_then_writes_by_the_statement(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    with connection.schema_editor() as editor:  # rolled back with the test
        migration.drop_log_action(None, editor)
    train, station, note = make_train(), make_station(), make_note()
    for verb in ("departed", "arrived"):
        with count_queries() as log:
            action = actrack.log(train, verb, targets=station, related=note, grouping_delay=-1)
        assert action is not None and not any(_calls(log))
    assert {("default", connection.settings_dict["NAME"]): False} == logfunction.LOG_ACTION.present
    assert ActionRelated.objects.filter(action=action).count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_without_the_function_autocommit_tries_it_once(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    with connection.schema_editor() as editor:
        migration.drop_log_action(None, editor)
    train, station = make_train(), make_station()
    try:
        with count_queries() as log:
            for verb in ("departed", "arrived", "left"):
                assert actrack.log(train, verb, targets=station) is not None
        # The failed call, then the statement; then statements alone.
        assert _calls(log) == [True, False, False, False]
    finally:
        with connection.schema_editor() as editor:
            migration.create_log_action(None, editor)
    logfunction.LOG_ACTION.migrated(using="default")
    with count_queries() as log:
        actrack.log(train, "back", targets=station)
    assert _calls(log) == [True]
    verbs = list(Action.objects.order_by("pk").values_list("verb", flat=True))
    assert verbs == ["departed", "arrived", "left", "back"]
    assert ActionTarget.objects.count() == 4


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_function_dropped_under_the_process_costs_one_failed_call(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration backwards drops the function under running processes: outside a
    transaction the failed call is followed by the statement, and by the statement
    alone after."""
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    train, station = make_train(), make_station()
    assert actrack.log(train, "departed", targets=station) is not None
    assert set(logfunction.LOG_ACTION.present.values()) == {True}
    with connection.schema_editor() as editor:
        migration.drop_log_action(None, editor)
    try:
        with count_queries() as log:
            assert actrack.log(train, "arrived", targets=station) is not None
            assert actrack.log(train, "left", targets=station) is not None
        assert _calls(log) == [True, False, False]
    finally:
        with connection.schema_editor() as editor:
            migration.create_log_action(None, editor)
    verbs = list(Action.objects.order_by("pk").values_list("verb", flat=True))
    assert verbs == ["departed", "arrived", "left"]
    assert ActionTarget.objects.count() == 3


@postgresql_only
def test_inside_a_transaction_a_dropped_function_raises_once(
    fresh: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a transaction the failed call has ended it: the error is raised (the
    caller's transaction is lost either way), and the process knows from then on."""
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    train, station = make_train(), make_station()
    assert actrack.log(train, "departed", targets=station) is not None  # known to be there
    with connection.schema_editor() as editor:  # rolled back with the test
        migration.drop_log_action(None, editor)
    # Django 6.1 names it savepoint_create() (savepoint() is deprecated there).
    saved = getattr(transaction, "savepoint_create", transaction.savepoint)()
    with pytest.raises(ProgrammingError):
        actrack.log(train, "arrived", targets=station)
    transaction.savepoint_rollback(saved)
    assert set(logfunction.LOG_ACTION.present.values()) == {False}
    with count_queries() as log:
        assert actrack.log(train, "left", targets=station) is not None
    assert _calls(log) == [False]
    assert list(Action.objects.order_by("pk").values_list("verb", flat=True)) == [
        "departed",
        "left",
    ]


@postgresql_only
def test_the_migration_creates_the_function_and_drops_it() -> None:
    def proconfig() -> Any:
        return _proconfig(logfunction.SIGNATURE)

    assert proconfig() == (None, "v")  # no settings of its own, volatile
    assert logfunction.LOG_ACTION.has_function(connection)
    with connection.schema_editor() as editor:
        migration.drop_log_action(None, editor)
    assert proconfig() is None and not logfunction.LOG_ACTION.has_function(connection)
    with connection.schema_editor() as editor:
        migration.create_log_action(None, editor)
    assert proconfig() == (None, "v")


def test_other_databases_get_no_function_and_write_by_their_statement(
    count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL has the function")
    monkeypatch.setattr(logfunction.LOG_ACTION, "inline", 0)
    monkeypatch.setattr(logfunction.LOG_ACTION, "present", {})
    executed: list[str] = []
    editor = SimpleNamespace(connection=connection, execute=executed.append)
    migration.create_log_action(None, editor)
    migration.drop_log_action(None, editor)
    assert executed == []
    logfunction.LOG_ACTION.migrated(using="default")
    assert logfunction.LOG_ACTION.present == {}
    train, station, note = make_train(), make_station(), make_note()
    ContentType.objects.get_for_models(Train, Station, Note)
    with count_queries() as log:
        action = actrack.log(train, "departed", targets=station, related=note)
    assert action is not None and len(log) == 1 and not any(_calls(log))
    assert ActionTarget.objects.filter(action=action).exists()
