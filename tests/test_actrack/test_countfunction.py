"""PostgreSQL: capped unread counts through ``actrack_unread_count()`` (actrack.countfunction)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

import actrack
from actrack import countfunction, readstate
from actrack.models import Action
from actrack.readstate import unread_count
from tests.conftest import make_line, make_station, make_train, make_user
from tests.demo.models import Line, Station

pytestmark = pytest.mark.django_db

#: Statements of a count by the statements (settings apart with server-side binding).
COUNT_QUERIES = (
    2 if connection.settings_dict.get("OPTIONS", {}).get("server_side_binding") is True else 1
)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the function is PostgreSQL's"
)


#: The function's argument types with the test site's user model (integer keys).
_ARGUMENTS = "integer, integer, text, bigint, integer, text"


def _later(minutes: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def _calls(log: Any) -> list[bool]:
    """For each statement of ``log``: whether it called the function."""
    return [f"{countfunction.FUNCTION}(" in sql for sql in log.statements]


def _truth(user: Any, cap: int) -> int:
    return min(cap, len(list(user.actions.feed(include_own=True, unread=True))))


@pytest.fixture
def at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every capped count calls the function, from the session's first."""
    monkeypatch.setattr(countfunction, "INLINE_COUNTS", 0)


def _statements_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(countfunction, "INLINE_COUNTS", 10**9)


@pytest.fixture
def world() -> dict[str, Any]:
    """Users following objects, models, verbs and themselves, with read marks, actions
    read one by one and their own actions, over actions in every role."""
    rng = random.Random(5)
    trains = [make_train() for _ in range(5)]
    stations = [make_station() for _ in range(5)]
    lines = [make_line() for _ in range(2)]
    users = [make_user() for _ in range(6)]
    actrack.track(users[0], trains[:2], actor_only=False)
    actrack.track(users[1], trains[2], verbs=["delayed"])
    actrack.track(users[1], stations[:3])
    actrack.track(users[2], Station, actor_only=False)  # a whole model
    actrack.track(users[3], [*trains, *stations], actor_only=False)
    actrack.track(users[3], users[3])  # its own actions
    actrack.track(users[4], Line, actor_only=False)
    actrack.track(users[4], trains[0], actor_only=False)
    # users[5] follows nothing.
    with actrack.batch():
        for number in range(150):
            actrack.log(
                rng.choice([*trains, *stations, users[3], None]),
                rng.choice(["departed", "delayed", "arrived"]),
                targets=rng.sample([*stations, *trains], rng.randint(0, 2)),
                related=rng.sample([*trains, *lines], rng.randint(0, 2)),
                level=rng.choice([10, 30, 30, 40]),
                timestamp=_later(1 + number / 10),
                grouping_delay=-1,
                n=number,
            )
    actions = list(Action.objects.order_by("pk"))
    readstate.mark_read(users[3], actions[::7], force=True)
    readstate.mark_read(users[0], actions[:40], force=True)
    return {"users": users, "trains": trains}


@postgresql_only
def test_the_functions_counts_equal_the_statements_and_the_feed(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for cap, user in itertools.product([1, 3, 10, 40, 200], world["users"]):
        expected = _truth(user, cap)
        monkeypatch.setattr(countfunction, "INLINE_COUNTS", 0)
        readstate.forget_counts(user)
        by_function = unread_count(user, cap=cap)
        _statements_only(monkeypatch)
        readstate.forget_counts(user)
        by_statements = unread_count(user, cap=cap)
        assert (by_function, by_statements) == (expected, expected), user


@postgresql_only
def test_the_readable_level_is_an_argument_of_the_call(
    world: dict[str, Any], at_once: None, settings: Any, count_queries: Any
) -> None:
    """The function was written with a stand-in for the level, context-local: the
    setting is untouched, and a site's level reaches the call."""
    from actrack.conf import app_settings
    from actrack.countsql import READABLE_LEVEL_STAND_IN

    countfunction.definition(connection)
    assert READABLE_LEVEL_STAND_IN.get() is None and app_settings.READABLE_LEVEL == 30
    user = world["users"][0]
    at_30 = unread_count(user, cap=200)
    settings.ACTRACK = {"READABLE_LEVEL": 10}
    readstate.forget_counts(user)
    with count_queries() as log:
        at_10 = unread_count(user, cap=200)
    assert _calls(log) == [True] and at_10 == _truth(user, 200) > at_30


@postgresql_only
def test_a_long_backlog_is_one_call_that_fans_out_without_walking(
    at_once: None, count_queries: Any
) -> None:
    """More actions than the walk may read (20, plus 4 per tracker) are newer than
    the tracker's floor: the function goes to the fan-out at once."""
    user, train = make_user(), make_train()
    actrack.track(user, train)
    with actrack.batch():
        for number in range(40):
            actrack.log(train, "departed", timestamp=_later(1 + number), grouping_delay=-1)
    answer = countfunction.call(connection, user, 10)[0]
    assert not answer.startswith("w:") and len(answer.split(",")) == 10
    with count_queries() as log:
        assert unread_count(user, cap=10) == 10
    assert _calls(log) == [True]


@postgresql_only
def test_a_short_backlog_is_walked_in_the_same_call(at_once: None, count_queries: Any) -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train)
    with actrack.batch():
        for number in range(5):
            actrack.log(train, "departed", timestamp=_later(1 + number), grouping_delay=-1)
        actrack.log(make_train(), "departed", timestamp=_later(9), grouping_delay=-1)
    assert countfunction.call(connection, user, 10)[0].startswith("w:")
    with count_queries() as log:
        assert unread_count(user, cap=10) == 5
    assert _calls(log) == [True]
    nobody = make_user()
    assert countfunction.call(connection, nobody, 10) == ("w:",)
    assert unread_count(nobody, cap=10) == 0


def _model_follower(backlog: int) -> Any:
    """A user following the Station model, with ``backlog`` unread actions naming a
    station (more than 24 go beyond the walk's length: the call fans out)."""
    user, station = make_user(), make_station()
    actrack.track(user, Station, actor_only=False)
    with actrack.batch():
        for number in range(backlog):
            actrack.log(
                make_train(), "passed", targets=station, timestamp=_later(1 + number), n=number
            )
    return user


@postgresql_only
def test_a_model_follower_unknown_to_the_process_gets_the_statement_after_the_call(
    at_once: None, count_queries: Any
) -> None:
    """The function's own fan-out covers object trackers: for a follower of a model
    the process does not know of, it says which models, the statement with them
    counts, and the process remembers them: its next counts are one call."""
    user = _model_follower(40)
    # As in a process that did not run the track(): it does not know the user's models.
    readstate._WHOLE_MODEL_FOLLOWERS.pop((connection.alias, user.pk), None)
    with count_queries() as log:
        assert unread_count(user, cap=10) == 10
    assert _calls(log) == [True] + [False] * COUNT_QUERIES
    readstate._WITNESSES.clear()
    with count_queries() as log:
        assert unread_count(user, cap=10) == 10
    assert _calls(log) == [True]


@postgresql_only
@pytest.mark.parametrize("backlog", [5, 40])
def test_a_known_model_followers_count_is_one_call(
    backlog: int, at_once: None, count_queries: Any
) -> None:
    """The call carries the fan-out naming the models the process knows (the walk
    answers a short backlog, that fan-out a long one): one query either way."""
    user = _model_follower(backlog)
    expected = _truth(user, 10)
    assert expected == min(10, backlog)
    answer = countfunction.call(connection, user, 10, (_station_ct(),))[0]
    assert answer.startswith("w:") is (backlog == 5)
    with count_queries() as log:
        assert unread_count(user, cap=10) == expected
    assert _calls(log) == [True]
    # Without the models, the function's own fan-out says which ones.
    if backlog == 40:
        assert countfunction.call(connection, user, 10)[0] == f"-1:{_station_ct()}"


@postgresql_only
def test_a_follower_of_models_the_process_does_not_all_know_counts_with_them_all(
    at_once: None, count_queries: Any
) -> None:
    """The models statement says -1 when the user follows a model it does not name:
    the process learns the user's models and the statement with them counts."""
    user = _model_follower(40)
    actrack.track(user, Line, actor_only=False)
    readstate._WHOLE_MODEL_FOLLOWERS[(connection.alias, user.pk)] = (_station_ct(),)
    assert _truth(user, 10) == 10
    with count_queries() as log:
        assert unread_count(user, cap=10) == 10
    assert _calls(log) == [True] + [False] * COUNT_QUERIES
    assert readstate._WHOLE_MODEL_FOLLOWERS[(connection.alias, user.pk)] == tuple(
        sorted([_station_ct(), ContentType.objects.get_for_model(Line).pk])
    )


def _prepared(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [name])
        return int(cursor.fetchone()[0])


@postgresql_only
def test_a_model_followers_fan_out_is_prepared_once_per_session(
    at_once: None, count_queries: Any
) -> None:
    """The function prepares the statement naming the models the first time its
    session needs it, then executes it; a session that lost it (DEALLOCATE, a
    pool's DISCARD ALL) prepares it again."""
    user = _model_follower(40)
    text = countfunction.models_statement(connection, (_station_ct(),))
    name = f"actrack_count_{hashlib.md5(text.encode()).hexdigest()}"
    if _prepared(name):
        with connection.cursor() as cursor:
            cursor.execute(f"DEALLOCATE {name}")
    for _ in range(2):
        readstate.forget_counts(user)
        with count_queries() as log:
            assert unread_count(user, cap=10) == 10
        assert _calls(log) == [True] and _prepared(name) == 1
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {name}")
    readstate.forget_counts(user)
    assert unread_count(user, cap=10) == 10 and _prepared(name) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT provolatile FROM pg_proc WHERE oid = %s::regprocedure",
            [f"{countfunction.FUNCTION}({_ARGUMENTS})"],
        )
        assert cursor.fetchone()[0] == "v"  # PREPARE is refused in a STABLE function


@postgresql_only
def test_the_models_statement_names_the_models_and_numbers_the_arguments() -> None:
    line, station = ContentType.objects.get_for_model(Line).pk, _station_ct()
    text = countfunction.models_statement(connection, (line, station))
    assert "%s" not in text and "$1" in text and "$5" in text and "$6" not in text
    assert f"= {line}" in text or f"({line})" in text or f" {line} " in text
    assert countfunction.models_statement(connection, (line, station)) is text  # kept
    assert countfunction.models_statement(connection, (station,)) != text


@postgresql_only
def test_a_models_fan_out_the_code_cannot_write_leaves_it_to_the_statement(
    at_once: None, count_queries: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The fan-out naming the models refused (a parameter of its own): logged once,
    and the calls go without it (the function names the models, a statement counts)."""
    from actrack import countsql

    user = _model_follower(40)
    original = countsql.count_unread_sql

    def with_a_value_of_its_own(who: Any, *args: Any, **kwargs: Any) -> tuple[str, list[Any]]:
        sql, params = original(who, *args, **kwargs)
        if who.pk == countfunction._USER_INT:  # the function's stand-in user
            return f"SELECT * FROM ({sql}) AS _s WHERE %s IS NOT NULL", [*params, 12345]
        return sql, params

    monkeypatch.setattr(countsql, "count_unread_sql", with_a_value_of_its_own)
    monkeypatch.setattr(countfunction, "_MODELS_STATEMENTS", {})
    for _ in range(2):
        readstate.forget_counts(user)
        with count_queries() as log:
            assert unread_count(user, cap=10) == 10
        assert _calls(log) == [True] + [False] * COUNT_QUERIES
    assert caplog.text.count("parameter of its own: 12345") == 1


def _station_ct() -> int:
    return int(ContentType.objects.get_for_model(Station).pk)


@postgresql_only
def test_a_session_sends_its_first_counts_as_statements(
    world: dict[str, Any], count_queries: Any
) -> None:
    user = world["users"][3]
    calls = []
    for _ in range(countfunction.INLINE_COUNTS + 2):
        readstate.forget_counts(user)
        with count_queries() as log:
            unread_count(user, cap=5)
        calls.append(any(_calls(log)))
    assert calls == [False] * countfunction.INLINE_COUNTS + [True, True]
    readstate.forget_counts(user)
    with count_queries() as log:
        unread_count(user)  # uncapped: the statements
    assert not any(_calls(log))


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_new_session_starts_over(at_once: None, count_queries: Any) -> None:
    user = make_user()
    countfunction.INLINE_COUNTS = 1  # restored by at_once's monkeypatch
    unread_count(user, cap=5)
    with count_queries() as log:
        unread_count(user, cap=5)
    assert _calls(log) == [True]
    connection.close()
    with count_queries() as log:
        unread_count(user, cap=5)
    assert _calls(log) == [False] * COUNT_QUERIES


@postgresql_only
def test_without_the_current_function_counts_run_the_statements(
    world: dict[str, Any], at_once: None, monkeypatch: pytest.MonkeyPatch, count_queries: Any
) -> None:
    """A process learns once whether the database has the function as this code
    writes it (its version is the function's comment); ``migrate`` writes it."""
    user = world["users"][0]
    key = (connection.alias, connection.settings_dict["NAME"])
    monkeypatch.setitem(countfunction._CURRENT, key, None)
    del countfunction._CURRENT[key]
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute(
            f"COMMENT ON FUNCTION {countfunction.FUNCTION}({_ARGUMENTS}) IS 'an older version'"
        )
    expected = _truth(user, 5)
    with count_queries() as log:
        assert unread_count(user, cap=5) == expected
    assert "obj_description" in log.statements[0] and not any(_calls(log))
    assert countfunction._CURRENT[key] is False
    countfunction.migrated(using=connection.alias)  # as after migrate
    assert countfunction._CURRENT[key] is True
    readstate.forget_counts(user)
    with count_queries() as log:
        assert unread_count(user, cap=5) == expected
    assert _calls(log) == [True]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION {countfunction.FUNCTION}({_ARGUMENTS})")
    del countfunction._CURRENT[key]
    readstate.forget_counts(user)
    assert unread_count(user, cap=5) == expected
    assert countfunction._CURRENT[key] is False


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_function_gone_since_the_process_saw_it_leaves_counts_to_the_statements(
    at_once: None, count_queries: Any
) -> None:
    """Outside a transaction, the failed call undoes nothing: the count runs the
    statements, and so do the next ones (no call, no check)."""
    user, train = make_user(), make_train()
    actrack.track(user, train)
    actrack.log(train, "departed", timestamp=_later(1))
    assert countfunction.usable(connection)
    readstate.user_ref(user)  # the user model's content type, cached
    with connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION {countfunction.FUNCTION}({_ARGUMENTS})")
    try:
        with count_queries() as log:
            assert unread_count(user, cap=5) == 1
        assert _calls(log)[0] and not any(_calls(log)[1:])
        readstate.forget_counts(user)
        with count_queries() as log:
            assert unread_count(user, cap=5) == 1
        assert not any(_calls(log))
    finally:
        countfunction.install(connection)
    assert countfunction.usable(connection)


@postgresql_only
def test_the_function_is_written_from_the_statements_with_its_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from actrack import countsql

    sql, version = countfunction.definition(connection)
    assert "%s" not in sql and "p_user_key" in sql and "p_level" in sql
    assert countfunction._installed_version(connection) == version
    original = countsql.walk_reach_sql

    def with_a_value_of_its_own(user: Any, connection: Any) -> tuple[str, list[Any]]:
        reach, params = original(user, connection)
        return f"{reach} AND %s", [*params, 12345]

    monkeypatch.setattr(countsql, "walk_reach_sql", with_a_value_of_its_own)
    with pytest.raises(ValueError, match="parameter of its own: 12345"):
        countfunction.definition(connection)
    # Then counts run the statements (logged), and migrate leaves the function as it is.
    key = (connection.alias, connection.settings_dict["NAME"])
    monkeypatch.delitem(countfunction._CURRENT, key)
    assert not countfunction.usable(connection)
    countfunction.migrated(using=connection.alias)
    assert countfunction._installed_version(connection) == version


def test_other_databases_count_by_the_statements(world: dict[str, Any]) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL has the function")
    assert not countfunction.usable(connection)
    countfunction.migrated(using=connection.alias)
    assert (connection.alias, connection.settings_dict["NAME"]) not in countfunction._CURRENT
    user = world["users"][3]
    assert unread_count(user, cap=10) == _truth(user, 10)
