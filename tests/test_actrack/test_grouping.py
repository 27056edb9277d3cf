"""Combination at log time (SPEC 3.2) and grouping when the queue is written (SPEC 3.3)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

import actrack
from actrack import ActionHandler
from actrack.models import Action, ActionTarget
from tests.conftest import make_line, make_station, make_train, make_user

pytestmark = pytest.mark.django_db


# --- combination ------------------------------------------------------------------------


class IncludedHandler(ActionHandler):
    verb = "test-included"

    @classmethod
    def combine_with_test_all_inclusive(cls, own: dict[str, Any], other: dict[str, Any]) -> bool:
        return True


def test_combination_worked_example_saves_one_action() -> None:
    user, trip = make_user(), make_line()
    with actrack.batch():
        actrack.log(user, "test-included", targets=trip, item="breakfast")
        actrack.log(user, "test-all-inclusive", targets=trip, level="WARNING", plan="full")
        actrack.log(user, "test-included", targets=trip, item="dinner")
    action = Action.objects.get()
    assert action.verb == "test-all-inclusive"
    assert action.actor == user
    assert list(action.targets.all()) == [trip]
    assert action.data == {"plan": "full", "item": "breakfast"}  # receiver's values win
    assert action.level == actrack.level.WARNING


def test_combination_needs_the_same_actor_and_a_subset_of_targets() -> None:
    user, other, trip, extra = make_user(), make_user(), make_line(), make_station()
    with actrack.batch():
        actrack.log(user, "test-all-inclusive", targets=trip, grouping_delay=-1)
        actrack.log(other, "test-included", targets=trip, grouping_delay=-1)  # other actor
        actrack.log(user, "test-included", targets=[trip, extra], grouping_delay=-1)  # superset
    assert Action.objects.count() == 3


def test_combination_unions_targets_and_related_and_keeps_receiver_timestamp() -> None:
    user, trip, station, line = make_user(), make_line(), make_station(), make_line()
    early = timezone.now() - dt.timedelta(hours=1)
    with actrack.batch():
        actrack.log(user, "test-all-inclusive", targets=[trip, station], timestamp=early)
        actrack.log(user, "test-included", targets=[station], related=line, tags=["a"])
    action = Action.objects.get()
    assert action.verb == "test-all-inclusive"
    assert action.timestamp == early
    assert set(action.targets.all()) == {trip, station}
    assert list(action.related.all()) == [line]
    assert action.data == {"tags": ["a"]}


class CountingHandler(ActionHandler):
    verb = "test-counting"
    seen: list[int] = []

    @classmethod
    def combine_with_test_counting(cls, own: dict[str, Any], other: dict[str, Any]) -> bool:
        cls.seen.append(len(cls.queue))
        return False


def test_handlers_can_inspect_the_queue() -> None:
    CountingHandler.seen = []
    train = make_train()
    with actrack.batch():
        for _ in range(3):
            actrack.log(train, "test-counting", grouping_delay=-1)
        assert [entry["verb"] for entry in CountingHandler.queue] == ["test-counting"] * 3
    # Each combine call saw the queue as it was: 1 then 2 queued actions (twice each way).
    assert CountingHandler.seen == [1, 1, 2, 2, 2, 2]
    assert CountingHandler.queue == []


# --- grouping -----------------------------------------------------------------------------


def _project_history(delay: int) -> tuple[Any, list[Any]]:
    user, project = make_user(), make_line("project")
    tasks = [make_station(f"task{n}") for n in (1, 2, 3)]
    actrack.log(user, "created", targets=project, grouping_delay=delay)
    for task in tasks:
        actrack.log(user, "created", targets=task, related=project, grouping_delay=delay)
    return project, tasks


def test_grouping_worked_example_with_delay_against_saved_actions() -> None:
    project, tasks = _project_history(60)  # outside a batch: each log() writes at once
    assert Action.objects.count() == 2
    grouped = Action.objects.as_related(project).get()
    assert set(grouped.targets.all()) == set(tasks)


def test_grouping_worked_example_inside_one_queue() -> None:
    with actrack.batch():
        project, tasks = _project_history(0)
    assert Action.objects.count() == 2
    assert set(Action.objects.as_related(project).get().targets.all()) == set(tasks)


def test_grouping_disabled_keeps_every_action() -> None:
    with actrack.batch():
        _project_history(-1)
    assert Action.objects.count() == 4
    _project_history(-1)
    assert Action.objects.count() == 8


def test_delay_zero_does_not_group_with_saved_actions() -> None:
    _project_history(0)  # each written at once: no queue to group in
    assert Action.objects.count() == 4


def test_a_saved_action_newer_than_the_entry_receives_it_and_takes_its_time() -> None:
    """SPEC 3.3: "within N seconds" either way; the older one's time and data win."""
    from actrack.models import ActionRelated

    train, station, depot, line = make_train(), make_station(), make_station(), make_line()
    now = timezone.now()
    saved = actrack.log(train, "stopped", targets=station, related=line, timestamp=now, note="new")
    assert saved is not None
    older = now - dt.timedelta(seconds=30)
    actrack.log(
        train,
        "stopped",
        targets=depot,
        related=line,
        timestamp=older,
        grouping_delay=60,
        note="old",
    )
    action = Action.objects.get()
    assert action.pk == saved.pk
    assert action.timestamp == older
    assert action.data == {"note": "old"}
    assert set(action.targets.all()) == {station, depot}
    assert set(ActionTarget.objects.values_list("timestamp", flat=True)) == {older}
    assert set(ActionRelated.objects.values_list("timestamp", flat=True)) == {older}
    # More than the delay before it: a new action.
    actrack.log(
        train,
        "stopped",
        targets=depot,
        timestamp=older - dt.timedelta(seconds=61),
        grouping_delay=60,
    )
    assert Action.objects.count() == 2


def test_delay_zero_groups_in_the_queue_whatever_the_time() -> None:
    train, station = make_train(), make_station()
    now = timezone.now()
    with actrack.batch():
        actrack.log(train, "stopped", targets=station, timestamp=now - dt.timedelta(days=3))
        actrack.log(train, "stopped", targets=station, timestamp=now, extra=1)
    action = Action.objects.get()
    assert action.timestamp == now - dt.timedelta(days=3)  # the older one receives
    assert action.data == {"extra": 1}


def test_saved_actions_older_than_the_delay_are_left_alone() -> None:
    train, station = make_train(), make_station()
    now = timezone.now()
    actrack.log(train, "stopped", targets=station, timestamp=now - dt.timedelta(seconds=120))
    actrack.log(train, "stopped", targets=station, timestamp=now, grouping_delay=60)
    assert Action.objects.count() == 2
    actrack.log(train, "stopped", targets=station, timestamp=now, grouping_delay=300)
    assert Action.objects.count() == 2  # grouped into the newest similar one


@pytest.mark.parametrize(
    ("older", "newer", "delay"),
    [
        # A delay longer than timedelta allows, or than the time since year 1.
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC), 2**70),
        (dt.datetime(1, 1, 2, tzinfo=dt.UTC), dt.datetime(1, 1, 2, 1, tzinfo=dt.UTC), 10**14),
        (dt.datetime(1, 1, 2, tzinfo=dt.UTC), dt.datetime(1, 1, 3, tzinfo=dt.UTC), 3 * 86400),
    ],
)
def test_a_delay_reaching_back_past_year_one_groups_with_any_older_action(
    older: dt.datetime, newer: dt.datetime, delay: int
) -> None:
    train, station = make_train(), make_station()
    actrack.log(train, "stopped", targets=station, timestamp=older, first=1)
    with actrack.batch():  # the batch is written, not lost to an OverflowError
        actrack.log(train, "stopped", targets=station, timestamp=newer, grouping_delay=delay)
    assert Action.objects.get().timestamp == older


def test_grouping_into_saved_action_deep_merges_data_and_keeps_max_level() -> None:
    train, station = make_train(), make_station()
    first = actrack.log(
        train, "delayed", targets=station, minutes=5, causes=["snow"], info={"a": 1}
    )
    actrack.log(
        train,
        "delayed",
        targets=station,
        grouping_delay=60,
        level="WARNING",
        minutes=9,
        causes=["snow", "ice"],
        info={"b": 2},
    )
    assert first is not None
    action = Action.objects.get()
    assert action.pk == first.pk
    assert action.data == {"minutes": 5, "causes": ["snow", "ice"], "info": {"a": 1, "b": 2}}
    assert action.level == actrack.level.WARNING


def test_grouping_needs_the_same_verb_and_actor_but_no_actor_is_an_actor() -> None:
    station, line = make_station(), make_line()
    with actrack.batch():
        actrack.log(None, "closed", targets=station)
        actrack.log(None, "closed", targets=line, related=None)  # equal related sets: both empty
        actrack.log(make_train(), "closed", targets=station)
        actrack.log(None, "opened", targets=station)
    assert Action.objects.count() == 3
    grouped = Action.objects.get(verb="closed", actor_ct__isnull=True)
    assert set(grouped.targets.all()) == {station, line}


class NeverGroup(ActionHandler):
    verb = "test-never-grouped"

    @classmethod
    def group(cls, newer: dict[str, Any], older: dict[str, Any]) -> bool:
        return False


def test_group_is_overridable() -> None:
    train = make_train()
    with actrack.batch():
        actrack.log(train, "test-never-grouped")
        actrack.log(train, "test-never-grouped")
    assert Action.objects.count() == 2


def test_grouping_with_saved_costs_one_more_lookup(count_queries: Any) -> None:
    train, station, second, third = make_train(), make_station(), make_station(), make_station()
    actrack.log(train, "passed", targets=station, grouping_delay=-1)
    with count_queries() as no_grouping:
        actrack.log(train, "passed", targets=second, related=station, grouping_delay=-1)
    with count_queries() as grouping:
        actrack.log(train, "passed", targets=third, related=station, grouping_delay=60)
    # The action and its links (one statement);
    # with grouping: candidates, then their links, then the merge (new links, then
    # the action's data); on PostgreSQL the (verb, actor) advisory lock comes first.
    postgres = connection.vendor == "postgresql"
    assert len(no_grouping) == 1
    assert len(grouping) <= (4 if postgres else 5) + postgres
    assert ("pg_advisory_xact_lock" in grouping.statements[0]) is postgres
    assert Action.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_group_into_the_same_saved_action() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE) are a PostgreSQL matter; SQLite serialises")
    train = make_train()
    stations = [make_station() for _ in range(8)]
    saved = actrack.log(train, "served", related=stations[0], stops=["s0"])
    assert saved is not None
    barrier = threading.Barrier(len(stations) - 1)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                actrack.log(
                    train,
                    "served",
                    targets=stations[number],
                    related=stations[0],
                    grouping_delay=600,
                    stops=[f"s{number}"],
                )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, len(stations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    action = Action.objects.get()
    assert action.pk == saved.pk
    assert sorted(action.data["stops"]) == sorted(f"s{n}" for n in range(len(stations)))
    assert ActionTarget.objects.filter(action=action).count() == len(stations) - 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_with_nothing_saved_yet_make_one_action(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both writers look for a saved action before either has inserted one.

    Each waits (up to 2 s) for the other after its lookup found nothing: without
    the advisory lock both get past it and insert an action each; with it the
    second one only looks once the first has committed, and groups into it.
    """
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: there is no race to lose")
    from actrack import grouping

    train, station = make_train(), make_station()
    barrier = threading.Barrier(2)
    found_nothing: list[int] = []
    original = grouping._group_with_saved

    def slow_lookup(entry: Any, using: str) -> Any:
        result = original(entry, using)
        if result is None:
            found_nothing.append(entry.data["stops"][0])
            # Broken after 2 s when the other writer waits for the lock: go on alone.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=2)
        return result

    monkeypatch.setattr(grouping, "_group_with_saved", slow_lookup)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            actrack.log(train, "served", related=station, grouping_delay=600, stops=[number])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(found_nothing) == 1
    action = Action.objects.get()
    assert sorted(action.data["stops"]) == [0, 1]
