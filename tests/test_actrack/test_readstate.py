"""Read / unread state: who has unread actions, marking, counting, and no writes on read."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

import actrack
from actrack import memo, readstate
from actrack.models import Action, ReadAction, ReadMark
from actrack.readstate import mark_all_read, unread_count
from tests.conftest import log as _log
from tests.conftest import make_line, make_station, make_train, make_user
from tests.demo.models import Station, Train

#: The count is one query; two with server-side binding (its JIT setting goes apart).
COUNT_QUERIES = (
    2 if connection.settings_dict.get("OPTIONS", {}).get("server_side_binding") is True else 1
)
#: A count the walk cannot settle: the walk's statement, then the fan-out's on
#: PostgreSQL; on SQLite one statement holds both.
WALK_THEN_FAN_OUT = COUNT_QUERIES if connection.vendor == "sqlite" else 2 * COUNT_QUERIES

pytestmark = pytest.mark.django_db


def _later(minutes: int = 1) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def fans_out(user: Any) -> None:
    """As after a count that needed the fan-out: the next ones go straight to it."""
    memo.note_now(
        readstate._FAN_OUT_USERS, (connection.alias, user.pk), readstate.FAN_OUT_USERS_KEPT
    )


@pytest.fixture
def follower() -> Any:
    return make_user("follower")


def test_new_action_matching_a_tracker_is_unread(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    action = _log(train, timestamp=_later())
    assert action.is_unread_for(follower)
    assert not action.is_unread_for(make_user())  # does not track it


def test_actions_logged_before_the_tracker_are_not_unread(follower: Any) -> None:
    train = make_train()
    before = _log(train, timestamp=timezone.now() - dt.timedelta(hours=1))
    actrack.track(follower, train)
    assert list(follower.actions.feed()) == [before]
    assert not before.is_unread_for(follower)


def test_level_below_readable_is_never_unread(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    debug = _log(train, level=actrack.level.DEBUG, timestamp=_later())
    assert not debug.is_unread_for(follower)
    assert not debug.mark_read_for(follower, force=True)
    with override_settings(ACTRACK={"READABLE_LEVEL": 10}):
        assert debug.is_unread_for(follower)


def test_own_actions_are_not_unread_unless_the_user_tracks_itself(follower: Any) -> None:
    station = make_station()
    actrack.track(follower, station, actor_only=False)
    own = _log(follower, "visited", targets=station)
    assert not own.is_unread_for(follower)
    actrack.track(follower, follower)
    own_after = _log(follower, "visited", targets=station, timestamp=_later(2))
    assert own_after.is_unread_for(follower)
    assert unread_count(follower) == 1


def test_verbs_and_model_trackers_are_honoured(follower: Any) -> None:
    train, station = make_train(), make_station()
    actrack.track(follower, train, verbs=["arrived"])
    actrack.track(follower, Station, actor_only=False)
    departed = _log(train, "departed", timestamp=_later())
    arrived = _log(train, "arrived", timestamp=_later())
    as_target = _log(make_train(), "passed", targets=station, timestamp=_later())
    flags = Action.bulk_is_unread_for(follower, [departed, arrived, as_target])
    assert flags == [False, True, True]


def test_mark_read_returns_the_prior_state(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    action = _log(train, timestamp=_later())
    assert action.mark_read_for(follower) is True
    assert action.mark_read_for(follower) is False
    assert not action.is_unread_for(follower)
    assert ReadAction.objects.filter(user=follower, action=action).count() == 1


@override_settings(ACTRACK={"AUTO_READ": False})
def test_without_auto_read_mark_read_needs_force(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    action = _log(train, timestamp=_later())
    assert action.mark_read_for(follower) is False
    assert action.is_unread_for(follower)
    assert action.mark_read_for(follower, force=True) is True
    assert not action.is_unread_for(follower)


def test_render_marks_read_under_auto_read_unless_context_says(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    first = _log(train, timestamp=_later())
    second = _log(train, "arrived", timestamp=_later())
    first.render(follower, context={"unread": True})
    assert first.is_unread_for(follower)  # the caller supplied the flag: nothing marked
    first.render(follower)
    assert not first.is_unread_for(follower)
    with override_settings(ACTRACK={"AUTO_READ": False}):
        second.render(follower)
    assert second.is_unread_for(follower)


def test_bulk_methods_are_aligned_with_their_input(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    read = _log(train, timestamp=_later())
    read.mark_read_for(follower)
    unread = _log(train, "arrived", timestamp=_later())
    debug = _log(train, "checked", level=actrack.level.DEBUG, timestamp=_later())
    other = _log(make_train(), timestamp=_later())
    actions = [unread, debug, read, other, unread]
    assert Action.bulk_is_unread_for(follower, actions) == [True, False, False, False, True]
    assert Action.bulk_mark_read_for(follower, actions) == [True, False, False, False, True]
    assert Action.bulk_is_unread_for(follower, actions) == [False] * 5


def test_bulk_is_unread_for_costs_constant_queries(follower: Any, count_queries: Any) -> None:
    trains = [make_train() for _ in range(20)]
    actrack.track(follower, trains, actor_only=False)
    actrack.track(follower, Station)
    actions = [_log(t, targets=make_station(), timestamp=_later()) for t in trains]
    with count_queries() as one:
        Action.bulk_is_unread_for(follower, actions[:1])
    with count_queries() as twenty:
        flags = Action.bulk_is_unread_for(follower, actions)
    assert all(flags)
    assert len(one) == len(twenty) <= 4
    assert one.writes() == twenty.writes() == []


def test_unread_count_and_unread_feed(follower: Any, count_queries: Any) -> None:
    train = make_train()
    actrack.track(follower, [train, Station], actor_only=False)
    actions = [_log(train, targets=make_station(), timestamp=_later(n)) for n in range(1, 6)]
    actions[1].mark_read_for(follower)
    assert unread_count(follower) == 4
    assert unread_count(follower, cap=2) == 2
    unread = list(follower.actions.feed(unread=True))
    assert unread == [a for a in reversed(actions) if a != actions[1]]
    with count_queries() as log:
        unread_count(follower)
    assert log.writes() == []
    assert len(log) == COUNT_QUERIES


def test_mark_all_read_is_one_statement_whatever_the_backlog(
    follower: Any, count_queries: Any
) -> None:
    train = make_train()
    actrack.track(follower, train)
    for n in range(30):
        _log(train, timestamp=_later(n + 1), n=n)
    assert unread_count(follower) == 30
    with count_queries() as log:
        mark_all_read(follower)
    assert len(log) == 1
    assert unread_count(follower) == 0
    assert ReadMark.objects.get(user=follower).last_read_id == Action.objects.latest("pk").pk
    newer = _log(train, timestamp=_later(60))
    assert unread_count(follower) == 1
    assert newer.is_unread_for(follower)
    mark_all_read(follower)  # again: updates the same mark
    assert ReadMark.objects.filter(user=follower).count() == 1
    assert unread_count(follower) == 0


def test_mark_all_read_leaves_other_users_alone(follower: Any) -> None:
    other = make_user()
    train = make_train()
    actrack.track(follower, train)
    actrack.track(other, train)
    _log(train, timestamp=_later())
    mark_all_read(follower)
    assert unread_count(follower) == 0
    assert unread_count(other) == 1


@override_settings(ACTRACK={"TRACK_UNREAD": False})
def test_track_unread_off_means_nothing_is_unread(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    action = _log(train, timestamp=_later())
    assert not action.is_unread_for(follower)
    assert unread_count(follower) == 0
    assert list(follower.actions.feed(unread=True)) == []
    assert action.mark_read_for(follower, force=True) is False


def test_computing_read_state_never_writes(follower: Any, count_queries: Any) -> None:
    train = make_train()
    actrack.track(follower, [train, Train], actor_only=False)
    actions = [_log(train, timestamp=_later(n)) for n in range(1, 4)]
    with count_queries() as log:
        Action.bulk_is_unread_for(follower, actions)
        actions[0].is_unread_for(follower)
        unread_count(follower)
        list(follower.actions.feed(unread=True))
        Action.bulk_render(actions, user=follower, context={"unread": [True, True, True]})
    assert log.writes() == []


def test_no_rows_are_created_for_unread_actions(follower: Any) -> None:
    train = make_train()
    actrack.track(follower, train)
    for n in range(10):
        _log(train, timestamp=_later(n + 1))
    assert unread_count(follower) == 10
    assert not ReadAction.objects.exists()
    assert not ReadMark.objects.exists()


def test_anonymous_or_unsaved_user_has_nothing_unread() -> None:
    train = make_train()
    action = _log(train)
    assert not action.is_unread_for(get_user_model()(username="ghost"))
    assert not action.is_unread_for(None)


def test_the_read_mark_is_a_position_in_the_feed(follower: Any) -> None:
    """What "mark all read" covers: what existed then, and everything dated before then."""
    train = make_train()
    actrack.track(follower, train)
    scheduled = _log(train, "scheduled", timestamp=_later(60))  # dated in the future
    current = _log(train, timestamp=_later())
    mark_all_read(follower)
    assert not scheduled.is_unread_for(follower)
    assert not current.is_unread_for(follower)
    # Logged afterwards: a future date is unread, a date before the mark counts as read.
    later = _log(train, "delayed", timestamp=_later(30))
    backdated = _log(train, "departed", timestamp=timezone.now() - dt.timedelta(seconds=1))
    assert later.is_unread_for(follower)
    assert not backdated.is_unread_for(follower)
    assert unread_count(follower) == 1
    assert list(follower.actions.feed(unread=True)) == [later]
    assert follower.actions.feed(unread=True).page().actions == [later]
    assert Action.bulk_is_unread_for(follower, [scheduled, later, backdated]) == [
        False,
        True,
        False,
    ]


@pytest.mark.parametrize("cap", [1, 3, 5, 8, None])
def test_unread_count_is_exact_up_to_the_cap_with_actions_read_one_by_one(
    follower: Any, cap: int | None, count_queries: Any
) -> None:
    """Actions read one by one are left out after the engine takes as many more rows."""
    trains = [make_train() for _ in range(3)]
    actrack.track(follower, trains[:2], actor_only=False)
    actrack.track(follower, Station, actor_only=False, verbs=["closed"])
    actions = []
    for n in range(12):
        train = trains[n % 3]
        actions.append(_log(train, "departed", targets=make_station(), timestamp=_later(n + 1)))
        actions.append(_log(make_station(), "closed", timestamp=_later(n + 1)))
    expected = [a for a in actions if a.is_unread_for(follower)]
    assert len(expected) == 20  # two trains of three, and every closing
    for action in expected[-6:]:  # the newest ones, read one by one
        assert action.mark_read_for(follower, force=True)
    fans_out(follower)
    with count_queries() as log:
        count = unread_count(follower, cap=cap)
    assert len(log) == COUNT_QUERIES
    assert count == (14 if cap is None else min(cap, 14))
    assert len(list(follower.actions.feed(unread=True))) == 14


def test_unread_count_turns_postgresql_jit_off_for_itself_only(
    follower: Any, count_queries: Any
) -> None:
    """JIT compiling the count's many small lookups once took 2 s for a 40 ms query."""
    train = make_train()
    actrack.track(follower, train)
    _log(train, timestamp=_later())
    with count_queries() as log:
        assert unread_count(follower, cap=10) == 1
    assert len(log) == COUNT_QUERIES
    if connection.vendor != "postgresql":
        return
    if COUNT_QUERIES == 1:  # with server-side binding, the setting is a query of its own
        assert log.statements[0].startswith("SET LOCAL jit = off; ")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        setting = cursor.fetchone()[0]
    # The test runs inside a transaction, where SET LOCAL lasts until its end: the
    # setting is then off, and back to the server's default afterwards.
    assert setting == "off"


def _show(setting: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        return str(cursor.fetchone()[0])


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="server-side binding is a psycopg 3 option"
)
@pytest.mark.parametrize("prepare_threshold", [None, 0])
@pytest.mark.django_db(transaction=True)
def test_unread_count_with_server_side_binding(
    prepare_threshold: int | None, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``OPTIONS={"server_side_binding": True}`` a query may hold one command
    only: the count sends its settings apart (it failed with "cannot insert multiple
    commands into a prepared statement"). Where the site prepares statements, the
    count is prepared and runs with the generic plan, except inside the caller's
    transaction (the setting would outlive the count). (The statements, not the
    function of actrack.countfunction: see test_countfunction.)"""
    from actrack import countfunction

    monkeypatch.setattr(countfunction, "INLINE_COUNTS", 10**9)
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = dict(options)
    connection.close()
    options.update(server_side_binding=True, prepare_threshold=prepare_threshold)
    try:
        follower = make_user()
        train = make_train()
        actrack.track(follower, train)
        _log(train, timestamp=_later())
        _log(train, timestamp=_later(2))
        assert type(connection.cursor().cursor).__name__ == "ServerBindingCursor"
        assert unread_count(follower) == 2  # content types cached
        for recent in (True, False):  # the recent-actions statement, then the fan-out's
            if not recent:
                fans_out(follower)
            for _ in range(3):
                with count_queries() as log:
                    assert unread_count(follower, cap=10) == 2
                    assert unread_count(follower) == 2
                assert len(log) == 4  # the settings, then the count, twice
        assert unread_count(follower, cap=2) == 2  # the fan-out reaches the cap: kept
        for _ in range(3):
            with count_queries() as log:
                assert unread_count(follower, cap=1) == 1
            assert len(log) == 2  # the settings, then the check of the kept actions
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN statement NOT LIKE 'WITH%%' THEN 'fan-out' WHEN statement "
                "LIKE '%%_rc%%' THEN 'recent' ELSE 'kept' END, generic_plans, custom_plans "
                "FROM pg_prepared_statements WHERE statement LIKE 'SELECT COUNT(*)%%' "
                "OR statement LIKE 'SELECT string_agg%%' "
                "OR statement LIKE 'SELECT CASE%%' OR statement LIKE 'WITH _floor%%'"
            )
            plans = cursor.fetchall()
        if prepare_threshold is None:
            assert plans == []
        else:
            # The recent actions' statement and the fan-out's, with a cap and without
            # (the fan-out's text changes with the cap: 10, then 2), and the check of
            # the kept actions, whatever the cap: probing the trackers (the first
            # check), then with the fingerprint of the tracker rows instead.
            kinds = sorted(kind for kind, _g, _c in plans)
            assert kinds == ["fan-out", "fan-out", "fan-out", "kept", "kept", "recent", "recent"]
            assert all(generic > 0 and custom == 0 for _r, generic, custom in plans)
        # Outside the count's own transaction, the settings are the server's again.
        assert (_show("jit"), _show("plan_cache_mode")) == ("on", "auto")
        with transaction.atomic():
            assert unread_count(follower, cap=10) == 2
            assert (_show("jit"), _show("plan_cache_mode")) == ("off", "auto")
    finally:
        connection.close()
        options.clear()
        options.update(saved)


@pytest.fixture
def forgotten_followers() -> Any:
    """This process knows no whole-model follower, as after a restart."""
    saved = dict(readstate._WHOLE_MODEL_FOLLOWERS)
    readstate._WHOLE_MODEL_FOLLOWERS.clear()
    yield readstate._WHOLE_MODEL_FOLLOWERS
    readstate._WHOLE_MODEL_FOLLOWERS.clear()
    readstate._WHOLE_MODEL_FOLLOWERS.update(saved)


def test_a_whole_model_follower_unknown_to_the_process_costs_one_more_query_once(
    follower: Any, count_queries: Any, forgotten_followers: Any
) -> None:
    """Counts leave the whole-model branches out unless the user is known to follow
    a model; the statement says so when the guess is wrong, and runs again."""
    actrack.track(follower, [make_train(), Station], actor_only=False)
    forgotten_followers.clear()  # as if another process had called track()
    fans_out(follower)  # counted by the fan-out, which plans the whole-model branches
    for n in range(3):
        _log(make_station(), "opened", timestamp=_later(n + 1))
    with count_queries() as first:
        assert unread_count(follower) == 3
    assert len(first) == 2 * COUNT_QUERIES
    assert first.writes() == []
    assert (connection.alias, follower.pk) in forgotten_followers
    with count_queries() as then:
        assert unread_count(follower, cap=2) == 2
    assert len(then) == COUNT_QUERIES


def test_track_makes_a_whole_model_follower_known(
    follower: Any, count_queries: Any, forgotten_followers: Any
) -> None:
    actrack.track(follower, make_train())
    assert not forgotten_followers  # objects only
    actrack.track(follower, Station, verbs=["opened"])
    assert list(forgotten_followers) == [(connection.alias, follower.pk)]
    _log(make_station(), "opened", timestamp=_later())
    _log(make_station(), "closed", timestamp=_later())
    fans_out(follower)
    with count_queries() as log:
        assert unread_count(follower) == 1
    assert len(log) == COUNT_QUERIES


def test_a_stale_whole_model_hint_changes_no_count(
    follower: Any, count_queries: Any, forgotten_followers: Any
) -> None:
    """A user remembered as a whole-model follower who no longer is (or a pk reused)."""
    train = make_train()
    actrack.track(follower, [train, Station])
    actrack.untrack(follower, Station)
    assert (connection.alias, follower.pk) in forgotten_followers
    _log(train, timestamp=_later())
    _log(make_station(), "opened", timestamp=_later())
    fans_out(follower)
    with count_queries() as log:
        assert unread_count(follower) == 1
    assert len(log) == COUNT_QUERIES


def test_remembered_whole_model_followers_are_bounded(
    forgotten_followers: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(readstate, "WHOLE_MODEL_FOLLOWERS_KEPT", 3)
    for pk in range(5):
        readstate.note_whole_model_follower("default", pk, [7])
    readstate.note_whole_model_follower("default", 2, [3])  # seen again: kept longest
    readstate.note_whole_model_follower("default", 5, [7])
    assert list(forgotten_followers.items()) == [
        (("default", 4), (7,)),
        (("default", 2), (3, 7)),
        (("default", 5), (7,)),
    ]


def test_a_walk_falling_short_for_an_unknown_model_follower_learns_the_models(
    follower: Any, count_queries: Any, forgotten_followers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk cannot settle (it may read one action), and the fan-out after it,
    in its statement on SQLite, finds a model the process did not know of: it says
    so (``'-1:<models>'`` in SQLite's one column), and the count runs once more."""
    from django.contrib.contenttypes.models import ContentType

    from actrack import countsql

    monkeypatch.setattr(countsql, "RECENT_MIN", 0)
    monkeypatch.setattr(countsql, "RECENT_ROWS_PER_TRACKER", 0)
    actrack.track(follower, [make_train(), Station], actor_only=False)
    forgotten_followers.clear()
    for n in range(3):
        _log(make_station(), "opened", timestamp=_later(n + 1))
    ContentType.objects.get_for_model(follower)  # cached, as in a process that ran a while
    with count_queries() as first:
        assert unread_count(follower, cap=10) == 3
    assert len(first) == WALK_THEN_FAN_OUT + COUNT_QUERIES
    assert forgotten_followers[(connection.alias, follower.pk)] == (
        ContentType.objects.get_for_model(Station).pk,
    )
    assert (connection.alias, follower.pk) in readstate._FAN_OUT_USERS
    with count_queries() as then:
        assert unread_count(follower, cap=10) == 3
    assert len(then) == COUNT_QUERIES


def test_the_count_names_the_remembered_models_and_learns_the_others(
    follower: Any, count_queries: Any, forgotten_followers: Any
) -> None:
    """Whole-model content types stand in the statement as constants (PostgreSQL plans
    each model's scans from its statistics); a model the process did not know of
    costs one more query, once, and no count."""
    from django.contrib.contenttypes.models import ContentType

    from actrack.countsql import count_unread_sql

    station, train = (ContentType.objects.get_for_model(m).pk for m in (Station, Train))
    actrack.track(follower, Station, actor_only=False)
    key = (connection.alias, follower.pk)
    assert forgotten_followers[key] == (station,)
    actrack.track(follower, Train)
    forgotten_followers[key] = (station,)  # as if another process had tracked Train
    _log(make_station(), "opened", timestamp=_later(1))
    _log(make_train(), "departed", timestamp=_later(2))
    _log(make_user(), "boarded", targets=make_train(), timestamp=_later(3))  # actor only: no
    fans_out(follower)
    with count_queries() as first:
        assert unread_count(follower) == 2
    assert len(first) == 2 * COUNT_QUERIES
    assert forgotten_followers[key] == tuple(sorted((station, train)))
    with count_queries() as then:
        assert unread_count(follower) == 2
    assert len(then) == COUNT_QUERIES
    sql, _params = count_unread_sql(follower, connection, 100, (station, train))
    inlined = f"{connection.ops.quote_name('actrack_action')}.actor_ct_id = {train}"
    assert (inlined in sql) is (connection.vendor == "postgresql")


# -- the recent-actions walk (countsql.recent_count_sql) -----------------------------------


@pytest.fixture
def which_plan() -> Any:
    """``which_plan(user)``: the count, and whether the recent-actions walk gave it.

    Otherwise the fan-out did: with its per-tracker heads, or, capped, the rows
    found first (``_any``), in a statement of its own (PostgreSQL) or in the
    walk's statement (SQLite). Either way the process then notes the user in
    ``_FAN_OUT_USERS``, and takes the user out when the walk answers. The
    unread actions a capped count kept are forgotten first: their check is
    another statement (see the witness tests below).
    """

    def counted(user: Any, cap: int | None = None) -> tuple[int, bool]:
        key = (connection.alias, user.pk)
        readstate._WITNESSES.pop(key, None)
        count = unread_count(user, cap=cap)
        return count, key not in readstate._FAN_OUT_USERS

    return counted


def _busy_follower(follower: Any) -> dict[str, Any]:
    """A follower of every kind of tracker; every action below is logged after them."""
    train, other_train, station, line = make_train(), make_train(), make_station(), make_line()
    actrack.track(follower, train)  # actor only
    actrack.track(follower, station, actor_only=False, verbs=["closed"])
    actrack.track(follower, Train, actor_only=False, verbs=["derailed"])  # a whole model
    actrack.track(follower, line, actor_only=False)
    actrack.track(follower, follower)  # their own actions, as actor
    someone = make_user()
    logged = [
        _log(train, "departed", timestamp=_later(1)),  # actor: unread
        _log(someone, "boarded", targets=train, timestamp=_later(2)),  # actor only: no
        _log(someone, "closed", targets=station, timestamp=_later(3)),  # unread
        _log(someone, "opened", targets=station, timestamp=_later(4)),  # verb: no
        _log(other_train, "derailed", timestamp=_later(5)),  # whole model, actor: unread
        _log(someone, "derailed", related=other_train, timestamp=_later(6)),  # unread
        _log(follower, "inspected", related=line, timestamp=_later(7)),  # own, actor: unread
        _log(someone, "inspected", related=line, timestamp=_later(8)),  # unread
        _log(train, "departed", level=actrack.level.DEBUG, timestamp=_later(9)),  # level: no
        _log(someone, "repaired", targets=[station, line], timestamp=_later(10)),  # unread
    ]
    return {"train": train, "line": line, "someone": someone, "logged": logged}


@pytest.mark.parametrize("budget", [100, 0], ids=["recent-check", "fan-out"])
def test_the_recent_check_counts_what_the_fan_out_counts(
    follower: Any, which_plan: Any, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    """Every kind of tracker, own actions, a level below readable, actions read one by
    one and the read mark: both plans give the unread feed's length, up to the cap."""
    from actrack import countsql

    monkeypatch.setattr(countsql, "RECENT_MIN", budget)
    monkeypatch.setattr(countsql, "RECENT_ROWS_PER_TRACKER", 0)
    world = _busy_follower(follower)
    checked = budget > 0

    def expected() -> int:
        return len(list(follower.actions.feed(unread=True, include_own=True)))

    assert expected() == 7
    assert which_plan(follower) == (7, checked)
    assert which_plan(follower, cap=3) == (3, checked)
    world["logged"][2].mark_read_for(follower)
    world["logged"][7].mark_read_for(follower)
    assert which_plan(follower) == (expected(), checked) == (5, checked)
    # Capped: as many more candidates as actions read one by one, then those left out.
    for cap in (1, 4, 5, 6):
        assert which_plan(follower, cap=cap) == (min(cap, 5), checked)

    mark_all_read(follower)
    assert which_plan(follower)[0] == 0
    after = [
        _log(world["train"], "departed", timestamp=_later(20)),
        _log(world["someone"], "inspected", related=world["line"], timestamp=_later(21)),
        _log(world["someone"], "waved", timestamp=_later(22)),  # followed by nobody
    ]
    after[0].mark_read_for(follower)
    assert which_plan(follower) == (expected(), checked) == (1, checked)


def test_on_sqlite_the_walk_probes_only_objects_the_trackers_name(follower: Any) -> None:
    """Most walked actions match no tracker: on SQLite a hashed lookup of the user's
    tracked objects and models comes before each probe of the tracker table
    (PostgreSQL would parse and plan six more subplans for every count)."""
    from actrack import countsql

    actrack.track(follower, [make_train(), Station], actor_only=False)
    sql, _params = countsql.recent_count_sql(follower, connection, 100)
    sieved = sql.count("IN (SELECT ct, k FROM _named)")
    assert (sieved, "_named(ct, k)" in sql) == (
        (0, False) if connection.vendor == "postgresql" else (3, True)
    )


def test_the_counts_read_their_walk_and_fan_out_rows_as_they_are_used(
    follower: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite 3.35 and later materialize a CTE named twice, reading all its rows
    first: the walk's window (``_rc``) and the capped fan-out's rows (``_any``)
    are read as they are used instead. PostgreSQL does so without a hint, and
    older SQLite takes none."""
    from actrack import countsql

    trains = [make_train() for _ in range(3)]
    actrack.track(follower, trains, actor_only=False)
    for n in range(12):
        _log(trains[n % 3], timestamp=_later(n + 1))
    statements = {
        "_rc": countsql.recent_count_sql(follower, connection, 5),
        "_any": countsql.count_unread_sql(follower, connection, 5, unordered=True),
    }
    version = getattr(connection.Database, "sqlite_version_info", ())
    for name, (sql, params) in statements.items():
        hinted = f"{name}(id" in sql and " NOT MATERIALIZED (" in sql
        assert hinted == (connection.vendor == "sqlite" and version >= (3, 35)), name
        if not hinted:
            continue
        plans = {}
        for label, text in (("hinted", sql), ("plain", sql.replace(" NOT MATERIALIZED", ""))):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN QUERY PLAN {text}", params)
                plans[label] = [row[-1] for row in cursor.fetchall()]
                cursor.execute(text, params)
                plans[f"{label} answer"] = cursor.fetchone()
        assert f"MATERIALIZE {name}" in plans["plain"], plans["plain"]
        assert f"MATERIALIZE {name}" not in plans["hinted"], plans["hinted"]
        assert plans["hinted answer"] == plans["plain answer"]
        assert len(str(plans["hinted answer"][0]).split(",")) == 5
    assert unread_count(follower, cap=5) == 5
    assert unread_count(follower) == len(list(follower.actions.feed(unread=True))) == 12
    if connection.vendor == "sqlite":
        monkeypatch.setattr(connection.Database, "sqlite_version_info", (3, 34, 1))
        sql, _params = countsql.recent_count_sql(follower, connection, 5)
        assert "MATERIALIZED" not in sql
        readstate.forget_counts(follower)  # not the check of the kept actions: the walk
        assert unread_count(follower, cap=5) == 5


def test_the_walk_applies_each_trackers_own_floor(follower: Any, which_plan: Any) -> None:
    """An action between two trackers' creations is unread for the older one only."""
    first, second = make_train(), make_train()
    actrack.track(follower, first)
    between = _log(first, "departed")
    too_early = _log(second, "departed")  # before the second tracker: never unread
    actrack.track(follower, second)
    later = _log(second, "departed", timestamp=_later())
    assert list(follower.actions.feed(unread=True)) == [later, between]
    assert too_early in follower.actions.feed()
    assert which_plan(follower) == (2, True)
    mark_all_read(follower)
    newest = _log(first, "arrived", timestamp=_later(2))
    assert which_plan(follower) == (1, True)
    assert newest.is_unread_for(follower)


def test_on_sqlite_the_walks_statement_runs_the_fan_out_only_when_it_falls_short(
    follower: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's count is one statement: the fan-out (here a statement failing when
    run) sits in the walk's CASE and runs only when the walk cannot count."""
    from django.db import DatabaseError

    from actrack import countsql

    if connection.vendor != "sqlite":
        pytest.skip("the walk and the fan-out are one statement on SQLite only")
    train = make_train()
    actrack.track(follower, train)
    for n in range(3):
        _log(train, timestamp=_later(n + 1))
    failing = ("SELECT abs(-9223372036854775807 - 1)", [])  # integer overflow when run

    def run(sql: str, params: list[Any]) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    capped = run(*countsql.recent_count_sql(follower, connection, 2, otherwise=failing))
    assert capped.startswith("w:") and len(capped[2:].split(",")) == 2  # the walk's ids
    assert run(*countsql.recent_count_sql(follower, connection, None, otherwise=failing)) == "w:3"
    monkeypatch.setattr(countsql, "RECENT_MIN", 0)
    monkeypatch.setattr(countsql, "RECENT_ROWS_PER_TRACKER", 0)
    with pytest.raises(DatabaseError):
        run(*countsql.recent_count_sql(follower, connection, None, otherwise=failing))


def test_a_walk_that_finds_too_few_in_its_length_leaves_the_count_to_the_fan_out(
    follower: Any, which_plan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actrack import countsql

    monkeypatch.setattr(countsql, "RECENT_MIN", 1)
    monkeypatch.setattr(countsql, "RECENT_ROWS_PER_TRACKER", 1)
    trains = [make_train()]  # two actions checked at most
    actrack.track(follower, trains)
    _log(trains[0], timestamp=_later(1))
    _log(make_train(), timestamp=_later(2))  # followed by nobody
    assert which_plan(follower) == (1, True)
    _log(trains[0], timestamp=_later(3))
    assert which_plan(follower, cap=1) == (1, True)  # the cap is reached: enough
    assert which_plan(follower) == (2, False)


def test_a_count_just_after_reading_is_one_small_query(follower: Any, count_queries: Any) -> None:
    """With nothing above the floors but an action nobody follows, no statement
    scans per tracker, however many trackers."""
    trains = [make_train() for _ in range(30)]
    actrack.track(follower, trains, actor_only=False)
    for number, train in enumerate(trains):
        _log(train, targets=make_station(), timestamp=_later(number + 1))
    assert unread_count(follower) == 30
    mark_all_read(follower)
    _log(make_train(), timestamp=_later(40))  # newer, followed by nobody
    with count_queries() as log:
        assert unread_count(follower) == 0
    assert len(log) == COUNT_QUERIES
    assert (connection.alias, follower.pk) not in readstate._FAN_OUT_USERS  # the walk's answer
    if connection.vendor == "postgresql":  # on SQLite the fan-out is in the statement, not run
        assert not any("_heads" in sql for sql in log.statements)


def test_after_a_fan_out_the_next_counts_fan_out_at_once(
    follower: Any, which_plan: Any, count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small statement's -1 costs a query once (PostgreSQL; on SQLite the fan-out
    is in the same statement); the walk is tried again after a while, or at once
    after the user marks all read."""
    from actrack import countsql

    monkeypatch.setattr(countsql, "RECENT_MIN", 0)
    monkeypatch.setattr(countsql, "RECENT_ROWS_PER_TRACKER", 1)
    train = make_train()
    actrack.track(follower, train)
    for n in range(3):  # more recent actions than the walk's length
        _log(train, timestamp=_later(n + 1))
    with count_queries() as first:
        assert unread_count(follower) == 3
    assert len(first) == WALK_THEN_FAN_OUT
    with count_queries() as then:
        assert which_plan(follower) == (3, False)
    assert len(then) == COUNT_QUERIES
    assert all("_rc(" not in sql for sql in then.statements)  # no walk this time
    clock = memo.time.monotonic() + readstate.FAN_OUT_RETRY_SECONDS + 1
    monkeypatch.setattr(memo.time, "monotonic", lambda: clock)
    with count_queries() as later:
        assert unread_count(follower) == 3
    assert len(later) == WALK_THEN_FAN_OUT  # tried again, still too many
    assert any("_rc(" in sql for sql in later.statements)
    mark_all_read(follower)
    _log(train, timestamp=_later(10))
    assert which_plan(follower) == (1, True)


# -- the capped fan-out: the rows found first (fanout.Statement.any_rows) ------------------


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_plan_nodes(child))
    return found


def test_a_capped_fan_out_stops_at_the_first_trackers_that_hold_the_cap(follower: Any) -> None:
    """30 followed trains with three unread actions each and a cap of 5: the count
    reads twice the cap in rows (ANY_ROWS_PER_COUNTED), so the scans of four
    trackers run, not of thirty."""
    import json

    from actrack import countsql

    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN ANALYZE's loop counts are PostgreSQL's")
    trains = [make_train() for _ in range(30)]
    actrack.track(follower, trains, actor_only=False)
    someone = make_user()
    for number, train in enumerate(trains):
        for n in range(3):
            _log(someone, "boarded", targets=train, timestamp=_later(3 * number + n + 1))
    fans_out(follower)
    assert unread_count(follower, cap=5) == 5
    assert unread_count(follower) == 90
    sql, params = countsql.count_unread_sql(follower, connection, 5, unordered=True)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = [node for node in _plan_nodes(plan) if node.get("Alias") in ("_s0", "_s1", "_s2")]
    # Actor, targets and related scans of four trackers, but the fourth tracker's
    # targets complete the ten rows: its related scan does not run.
    assert [(node["Alias"], node["Actual Loops"]) for node in scans] == [
        ("_s0", 4),
        ("_s1", 4),
        ("_s2", 3),
    ]


def test_a_capped_count_whose_rows_match_several_trackers_takes_the_newest(
    follower: Any, count_queries: Any
) -> None:
    """Two actions each target three followed trains: the six rows the capped count
    reads for a cap of 3 hold two actions, and more rows might be left, so the
    statement of the newest counts; with a cap of 2 the first rows suffice."""
    trains = [make_train() for _ in range(3)]
    actrack.track(follower, trains, actor_only=False)
    someone = make_user()
    logged = {_log(someone, targets=trains, timestamp=_later(n + 1)).pk for n in range(2)}
    fans_out(follower)
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 2
    assert len(log) == 2 * COUNT_QUERIES
    assert "_any(id)" in log.statements[COUNT_QUERIES - 1]
    assert "_heads" in log.statements[-1]
    assert _kept(follower) == []
    with count_queries() as log:
        assert unread_count(follower, cap=2) == 2
    assert len(log) == COUNT_QUERIES
    assert "_any(id)" in log.statements[-1]
    assert set(_kept(follower)) == logged


def test_a_capped_count_of_a_whole_model_naming_several_of_its_objects_counts_each_once(
    follower: Any,
) -> None:
    """A model's link rows hold an action once per object of that model it names:
    whatever the cap, each action counts once, and as many as there are."""
    actrack.track(follower, Station, actor_only=False)
    someone = make_user()
    for n in range(4):
        _log(someone, targets=[make_station(), make_station()], timestamp=_later(n + 1))
    fans_out(follower)
    unread = list(follower.actions.feed(unread=True))
    assert len(unread) == 4
    for cap in (1, 2, 3, 4, 5):
        readstate._WITNESSES.pop((connection.alias, follower.pk), None)
        assert unread_count(follower, cap=cap) == min(cap, 4)
        assert set(_kept(follower)) <= {action.pk for action in unread}
    assert follower.actions.feed().page(size=3).actions == unread[:3]


# -- the unread actions a capped fan-out kept (countsql.witness_count_sql) -----------------


def _kept(user: Any) -> list[int]:
    kept = readstate._WITNESSES.get((connection.alias, user.pk))
    return [] if kept is None else list(kept.ids)


def _witness_check(statements: list[str]) -> bool:
    """Whether the statements are the kept actions' check alone (no walk, no fan-out);
    the count's settings, sent apart with server-side binding, are left out."""
    counts = [sql for sql in statements if "actrack_action" in sql]
    return len(counts) == 1 and not any(
        marker in counts[0] for marker in ("_heads", "_any(id)", "_rc", "_scan")
    )


@pytest.fixture
def backlog(follower: Any) -> dict[str, Any]:
    """A follower with five unread actions, whose counts go straight to the fan-out."""
    train = make_train()
    actrack.track(follower, train)
    logged = [_log(train, timestamp=_later(n + 1)) for n in range(5)]
    fans_out(follower)
    return {"train": train, "logged": logged}


def test_a_capped_count_reaching_its_cap_keeps_what_it_counted(
    follower: Any, backlog: dict[str, Any], count_queries: Any
) -> None:
    assert unread_count(follower, cap=3) == 3
    kept = _kept(follower)
    assert len(kept) == 3
    assert set(kept) <= {action.pk for action in backlog["logged"]}
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 3
        assert unread_count(follower, cap=2) == 3 - 1  # a smaller cap: the same check
    assert len(log) == 2 * COUNT_QUERIES
    assert _witness_check(log.statements[: len(log) // 2])
    assert _witness_check(log.statements[len(log) // 2 :])
    assert _kept(follower) == kept


def test_counts_that_stay_under_the_cap_keep_nothing(
    follower: Any, backlog: dict[str, Any]
) -> None:
    assert unread_count(follower, cap=10) == 5
    assert unread_count(follower) == 5
    assert _kept(follower) == []


def test_a_larger_cap_than_what_was_kept_counts_again(
    follower: Any, backlog: dict[str, Any], count_queries: Any
) -> None:
    assert unread_count(follower, cap=3) == 3
    with count_queries() as log:
        assert unread_count(follower, cap=4) == 4
    assert len(log) == COUNT_QUERIES  # straight to the fan-out, no check
    assert any("_any(id)" in sql for sql in log.statements)  # capped: the rows found first
    assert len(_kept(follower)) == 4
    assert unread_count(follower, cap=6) == 5
    assert _kept(follower) == []


def test_reading_a_kept_action_sends_the_count_back_to_the_fan_out(
    follower: Any, backlog: dict[str, Any], count_queries: Any
) -> None:
    assert unread_count(follower, cap=3) == 3
    by_pk = {action.pk: action for action in backlog["logged"]}
    first = _kept(follower)
    by_pk[first[0]].mark_read_for(follower)
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 3  # four unread are left
    assert len(log) == 2 * COUNT_QUERIES  # the check, then the fan-out
    assert first[0] not in _kept(follower)
    for pk in _kept(follower)[:2]:
        by_pk[pk].mark_read_for(follower)
    assert unread_count(follower, cap=3) == 2
    assert _kept(follower) == []
    assert unread_count(follower) == len(list(follower.actions.feed(unread=True))) == 2


def test_kept_actions_follow_the_trackers_and_the_read_mark(
    follower: Any, backlog: dict[str, Any]
) -> None:
    assert unread_count(follower, cap=5) == 5
    actrack.untrack(follower, backlog["train"])
    assert unread_count(follower, cap=5) == 0
    assert _kept(follower) == []
    actrack.track(follower, backlog["train"], verbs=["arrived"])  # not their verb
    fans_out(follower)
    assert unread_count(follower, cap=5) == 0
    actrack.track(follower, backlog["train"], verbs=[])  # every verb; the actions are newer
    fans_out(follower)
    assert unread_count(follower, cap=5) == 5
    assert len(_kept(follower)) == 5
    mark_all_read(follower)
    assert _kept(follower) == []  # forgotten: nothing can be unread below the mark
    assert unread_count(follower, cap=5) == 0


def test_the_check_of_kept_actions_applies_every_rule(follower: Any, count_queries: Any) -> None:
    """Every kind of tracker, own actions, a level below readable, actions read one by
    one: the check counts exactly the kept actions still unread."""
    world = _busy_follower(follower)
    unread = {action.pk for action in follower.actions.feed(unread=True, include_own=True)}
    expected = len(unread)
    assert expected == 7
    fans_out(follower)
    assert unread_count(follower, cap=expected) == expected
    kept = set(_kept(follower))
    assert kept == unread
    _log(world["someone"], "waved", timestamp=_later(30))  # followed by nobody
    with count_queries() as log:
        assert unread_count(follower, cap=expected) == expected
    assert _witness_check(log.statements)
    from actrack.countsql import witness_count_sql

    with connection.cursor() as cursor:
        every = [action.pk for action in Action.objects.all()]
        cursor.execute(*witness_count_sql(follower, connection, every))
        assert cursor.fetchone()[0] == expected  # only the unread, out of every action
    Action.objects.get(pk=min(kept)).mark_read_for(follower)
    assert unread_count(follower, cap=expected) == expected - 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL")
def test_the_check_probes_trackers_per_link_row_without_joining_them(
    follower: Any, backlog: dict[str, Any]
) -> None:
    """A semi-join of link and tracker rows would be planned from both key columns'
    statistics (most of the statement's planning time): the probe stays a subquery."""
    from actrack.countsql import witness_count_sql

    station = make_station()
    actrack.track(follower, station, actor_only=False)
    _log(make_train(), targets=[station], timestamp=_later(20))
    ids = [action.pk for action in Action.objects.all()]
    sql, params = witness_count_sql(follower, connection, ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchone()[0] == 6  # the backlog's five, and the station's action
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Semi Join" not in plan, plan
    # One probe per role, by whichever index the planner takes for it (that follows the
    # table's statistics, which other tests' rows move); the tracker rows'
    # fingerprint reads them by user alone.
    assert len(re.findall(r"on actrack_tracker _k_\d", plan)) == 3, plan
    assert len(re.findall(r"on actrack_tracker _k\s", plan)) == 1, plan


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the fingerprint reads PostgreSQL's row versions"
)


def _probes_ran(follower: Any, kept: Any) -> bool:
    """Whether the check of the ``kept`` actions probes the tracker table (EXPLAIN
    ANALYZE of its statements, as ``unread_count`` would run them now)."""
    from actrack.countsql import witness_count_sql

    sql, params = witness_count_sql(follower, connection, kept.ids, kept.trackers)
    loops = _probe_loops(sql, params)
    if not kept.trackers:
        assert len(loops) == 3  # one probe per role
        return any(loops)
    assert loops == []  # with a fingerprint: no probe at all
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fingerprint = cursor.fetchone()[1]
    if fingerprint == kept.trackers:
        return False
    # It changed: the check runs again, probing.
    loops = _probe_loops(*witness_count_sql(follower, connection, kept.ids))
    assert len(loops) == 3
    return any(loops)


def _probe_loops(sql: str, params: list[Any]) -> list[int]:
    """How often each probe of the tracker table in ``sql`` ran (EXPLAIN ANALYZE)."""
    import json

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return [
        node.get("Actual Loops", 0)
        for node in _plan_nodes(plan[0]["Plan"])
        if node.get("Relation Name") == "actrack_tracker" and "tracked_ct_id" in str(node)
    ]


def _kept_entry(follower: Any) -> Any:
    return readstate._WITNESSES[(connection.alias, follower.pk)]


@postgres_only
def test_kept_actions_all_matching_are_checked_without_tracker_probes_next_time(
    follower: Any, backlog: dict[str, Any], count_queries: Any
) -> None:
    """The first check probes the trackers; having found every kept action matching,
    it keeps the fingerprint of the tracker rows, and the next checks, which find
    the same rows, skip the probes but still see actions read."""
    assert unread_count(follower, cap=3) == 3
    assert _kept_entry(follower).trackers is None
    assert _probes_ran(follower, _kept_entry(follower))
    assert unread_count(follower, cap=3) == 3  # the first check: every kept action matches
    kept = _kept_entry(follower)
    assert kept.trackers is not None
    assert not _probes_ran(follower, kept)
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 3
    assert len(log) == COUNT_QUERIES
    assert _witness_check(log.statements)
    Action.objects.get(pk=kept.ids[0]).mark_read_for(follower)
    assert unread_count(follower, cap=3) == 3  # four unread are left: counted again
    assert kept.ids[0] not in _kept(follower)
    assert _kept_entry(follower).trackers is None


@postgres_only
@pytest.mark.parametrize(
    "change", ["verbs", "untrack another", "track another", "delete a followed model's object"]
)
def test_any_change_to_the_trackers_or_a_deletion_brings_the_probes_back(
    follower: Any, count_queries: Any, change: str
) -> None:
    """Each change could end a kept action's match (or, for a new tracker, not):
    the fingerprint differs, the check probes the trackers again and counts
    exactly what is still unread."""
    train, other = make_train(), make_station()
    actrack.track(follower, [train, other])
    actrack.track(follower, Station, actor_only=False)  # the whole model
    station = make_station()
    logged = [_log(train, timestamp=_later(n + 1)) for n in range(3)]
    logged.append(_log(make_train(), targets=station, timestamp=_later(5)))
    fans_out(follower)
    assert unread_count(follower, cap=4) == 4
    assert unread_count(follower, cap=4) == 4
    kept = _kept_entry(follower)
    assert kept.trackers is not None
    assert not _probes_ran(follower, kept)
    expected = 4
    if change == "verbs":
        actrack.track(follower, train, verbs=["arrived"])  # none of the train's actions
        expected = 1
    elif change == "untrack another":
        actrack.untrack(follower, other)
    elif change == "track another":
        actrack.track(follower, make_line())
    else:
        station.delete()  # its action now names a deleted item, which no model tracker names
        expected = 3
    assert _probes_ran(follower, kept)
    with count_queries() as log:
        assert unread_count(follower, cap=4) == expected
    if expected == 4:  # still every kept action: the new fingerprint is kept
        # The check without probes saw the fingerprint change, the second probed.
        assert len(log) == 2 * COUNT_QUERIES
        assert _kept_entry(follower).trackers not in (None, kept.trackers)
        assert not _probes_ran(follower, _kept_entry(follower))
        with count_queries() as log:
            assert unread_count(follower, cap=4) == 4
        assert len(log) == COUNT_QUERIES
    assert unread_count(follower) == len(list(follower.actions.feed(unread=True))) == expected


@postgres_only
def test_a_user_who_follows_no_model_probes_each_object_key_alone(
    follower: Any, backlog: dict[str, Any]
) -> None:
    """A whole-model tracker has the key '': the probes look it up only for a user
    who follows a model (one index descent per probe instead of two: a third of the
    walk's buffers for a user with a year unread, 1M actions). Whether the user does
    is asked once per statement."""
    import json

    from actrack.countsql import witness_count_sql

    station = make_station()
    actrack.track(follower, station, actor_only=False)
    for n in range(5):
        _log(make_train(), targets=[station, make_line()], timestamp=_later(n + 10))

    def probed() -> int:
        """The still unread of every action, checked with the tracker probes."""
        ids = [action.pk for action in Action.objects.all()]
        sql, params = witness_count_sql(follower, connection, ids, "")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = int(cursor.fetchone()[0])
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        scans = [
            node
            for node in _plan_nodes(plan[0]["Plan"])
            if node.get("Relation Name") == "actrack_tracker"
        ]
        probes = [node for node in scans if "tracked_ct_id" in node.get("Index Cond", "")]
        assert len(probes) == 3
        # The key's lookup (an index condition on large tables, a filter on small ones).
        assert all("CASE WHEN" in str(node) for node in probes)
        asked = [node for node in scans if node not in probes]
        assert len(asked) == 3 and all(node["Actual Loops"] <= 1 for node in asked)
        return count

    assert probed() == 10  # the backlog's five and the station's
    actrack.track(follower, Train, verbs=["never logged"])  # now '' is looked up too
    assert probed() == 10
    _log(make_train(), "never logged", timestamp=_later(20))
    assert probed() == 10 + 1


@postgres_only
def test_a_user_with_more_trackers_than_fingerprinted_keeps_probing(
    follower: Any, backlog: dict[str, Any], count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading thousands of tracker rows costs more than the probes: the checks of
    such a user read no fingerprint after the first."""
    monkeypatch.setattr(readstate, "FINGERPRINTED_TRACKERS", 1)
    actrack.track(follower, make_station())
    fans_out(follower)
    assert unread_count(follower, cap=3) == 3
    assert unread_count(follower, cap=3) == 3
    kept = _kept_entry(follower)
    assert kept.trackers == ""
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 3
    assert _witness_check(log.statements)
    assert not any("_fp" in sql for sql in log.statements)
    assert _kept_entry(follower) == kept


@postgres_only
def test_a_check_that_finds_some_kept_actions_no_longer_matching_keeps_no_fingerprint(
    follower: Any,
) -> None:
    """Five kept actions and a cap of four, one no longer readable: the count is
    still the cap, but a fingerprint would let the next checks count that one."""
    train = make_train()
    actrack.track(follower, train)
    logged = [_log(train, timestamp=_later(n + 1)) for n in range(5)]
    fans_out(follower)
    assert unread_count(follower, cap=5) == 5
    ids = readstate._WITNESSES[(connection.alias, follower.pk)].ids
    Action.objects.filter(pk=logged[0].pk).update(level=actrack.level.DEBUG)  # unreadable
    assert unread_count(follower, cap=4) == 4
    kept = _kept_entry(follower)
    assert kept.ids == ids
    assert kept.trackers is None


def test_the_check_leaves_out_actions_below_the_read_mark(
    follower: Any, backlog: dict[str, Any]
) -> None:
    """An action logged after the read mark but dated before it is read, even for a
    tracker older than both: the check compares timestamps with the mark too."""
    from actrack.countsql import witness_count_sql
    from actrack.models import Tracker

    Tracker.objects.filter(user=follower).update(created=timezone.now() - dt.timedelta(days=1))
    mark_all_read(follower)
    _log(backlog["train"], timestamp=timezone.now() - dt.timedelta(hours=1))  # backdated
    newer = _log(backlog["train"], timestamp=_later(30))
    unread = [action.pk for action in follower.actions.feed(unread=True)]
    assert unread == [newer.pk]
    every = [action.pk for action in Action.objects.all()]
    with connection.cursor() as cursor:
        cursor.execute(*witness_count_sql(follower, connection, every))
        assert cursor.fetchone()[0] == 1
    assert unread_count(follower) == 1


def test_forget_counts_starts_the_next_count_afresh(
    follower: Any, backlog: dict[str, Any], which_plan: Any
) -> None:
    assert unread_count(follower, cap=3) == 3
    assert _kept(follower)
    readstate.forget_counts(follower)
    assert _kept(follower) == []
    assert (connection.alias, follower.pk) not in readstate._FAN_OUT_USERS
    assert which_plan(follower, cap=3) == (3, True)  # the newest actions first again


def test_a_capped_walk_reaching_its_cap_keeps_what_it_counted(
    follower: Any, count_queries: Any
) -> None:
    train = make_train()
    actrack.track(follower, train)
    logged = {_log(train, timestamp=_later(n + 1)).pk for n in range(5)}
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 3
    assert (connection.alias, follower.pk) not in readstate._FAN_OUT_USERS  # walked
    if connection.vendor == "postgresql":  # SQLite's statement holds the fan-out, not run
        assert not any("_heads" in sql or "_any(id)" in sql for sql in log.statements)
    assert len(_kept(follower)) == 3
    assert set(_kept(follower)) <= logged
    with count_queries() as log:
        assert unread_count(follower, cap=3) == 3
    assert _witness_check(log.statements)
    assert unread_count(follower, cap=10) == 5  # under the cap: nothing kept
    assert _kept(follower) == []
