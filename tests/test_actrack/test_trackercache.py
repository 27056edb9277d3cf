"""Tracker rows kept per process for feed pages (actrack.trackercache).

Kept rows only save a read: every page's statement checks their fingerprint,
so a change made anywhere (another process, plain ORM calls, SQL, deletions)
shows on the next page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

import actrack
from actrack import trackercache
from actrack.models import Tracker
from tests.conftest import make_station, make_train, make_user

pytestmark = pytest.mark.django_db

postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="tracker rows are kept on PostgreSQL only"
)


def world(trains: int) -> tuple[Any, list[Any]]:
    """A user following ``trains`` trains (actors, targets and related), each with actions."""
    user, followed = make_user(), [make_train() for _ in range(trains)]
    others = [make_station() for _ in range(3)]
    with actrack.batch():
        for number, train in enumerate(followed * 2):
            actrack.log(train, "departed", targets=others[number % 3], grouping_delay=-1)
    actrack.track(user, followed, actor_only=False)
    return user, followed


def page_ids(user: Any, size: int = 10) -> list[int]:
    return [action.pk for action in user.actions.feed().page(size=size).actions]


def iterated_ids(user: Any, size: int = 10) -> list[int]:
    return [action.pk for action in user.actions.feed()[:size]]


@postgresql
def test_the_kept_fingerprint_is_the_one_the_statement_computes() -> None:
    user, _trains = world(3)
    trackercache.read(user.pk, "default")
    kept = trackercache.kept(user.pk, "default")
    assert kept is not None and len(kept[0]) == 3
    with connection.cursor() as cursor:
        cursor.execute(trackercache.fingerprint_sql(connection), [user.pk])
        assert cursor.fetchone()[0] == kept[1]


@postgresql
@pytest.mark.parametrize("trains", [2, 40])  # a direct statement, and a walk first
def test_a_page_with_kept_rows_is_one_query(trains: int, count_queries: Any) -> None:
    user, _trains = world(trains)
    first = page_ids(user)
    with count_queries() as log:
        again = page_ids(user)
    assert len(log) == 1, log.statements
    assert again == first == iterated_ids(user)


@postgresql
@pytest.mark.parametrize("trains", [2, 40])  # a direct statement, and a walk first
def test_a_page_reads_the_trackers_once_to_check_them(trains: int, count_queries: Any) -> None:
    """The check is one scan of the user's tracker rows, not one per use of its answer."""
    user, _trains = world(trains)
    page_ids(user)
    with count_queries() as log:
        page_ids(user)
    assert len(log) == 1, log.statements
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {log.statements[0]}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert plan.count(" on actrack_tracker ") == 1, plan


@postgresql
@pytest.mark.parametrize("trains", [2, 40])
@pytest.mark.parametrize(
    "change",
    ["verbs updated", "tracker deleted", "tracker created", "followed object deleted"],
)
def test_a_change_made_elsewhere_shows_on_the_next_page(
    trains: int, change: str, count_queries: Any
) -> None:
    user, followed = world(trains)
    page_ids(user)  # the rows are kept
    # Changes that do not go through track()/untrack() in this process.
    mine = Tracker.objects.filter(user=user)
    if change == "verbs updated":
        mine.update(verbs=["arrived"])
    elif change == "tracker deleted":
        mine.filter(tracked_key=str(followed[0].pk)).delete()
    elif change == "tracker created":
        station = make_station()
        actrack.log(station, "closed", grouping_delay=-1)
        Tracker.objects.create(
            user=user,
            tracked_ct=ContentType.objects.get_for_model(station),
            tracked_key=str(station.pk),
        )
    else:
        followed[-1].delete()

    with count_queries() as log:
        found = page_ids(user)
    # The page (its check failed: no actions read), the rows again, the page.
    assert len(log) == 3, log.statements
    assert found == iterated_ids(user)
    with count_queries() as log:
        assert page_ids(user) == found
    assert len(log) == 1


@postgresql
@pytest.mark.parametrize("trains", [2, 40])  # a direct statement, and a walk first
def test_pages_build_the_tracker_rows_statement_part_once_per_kept_version(
    trains: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _count_builds(monkeypatch)
    user, followed = world(trains)
    first = page_ids(user)  # the rows are read, then kept
    assert built == [trains]
    assert page_ids(user) == page_ids(user, size=5) + first[5:] == first
    assert built == [trains, trains]  # once for every later page
    Tracker.objects.filter(user=user, tracked_key=str(followed[-1].pk)).delete()  # the newest
    changed = page_ids(user)  # the check fails: the rows read again, not kept yet
    assert changed == iterated_ids(user) != first
    assert built[2:] == [trains - 1]
    assert page_ids(user) == page_ids(user) == changed
    assert built[2:] == [trains - 1, trains - 1]


@postgresql
def test_a_change_in_the_current_transaction_shows_at_once() -> None:
    user, followed = world(2)
    before = page_ids(user)
    with transaction.atomic():
        Tracker.objects.filter(user=user, tracked_key=str(followed[1].pk)).delete()
        during = page_ids(user)
        assert during == iterated_ids(user)
        assert during != before
    assert page_ids(user) == during


@postgresql
def test_queries_that_are_not_pages_read_the_trackers_again() -> None:
    user, followed = world(2)
    page_ids(user)
    Tracker.objects.filter(user=user, tracked_key=str(followed[0].pk)).delete()
    kept_feed = user.actions.feed()  # built from the kept rows
    expected = [a.pk for a in followed[1].actions.all()]
    assert sorted(a.pk for a in kept_feed) == sorted(expected)
    assert user.actions.feed().count() == len(expected)


@postgresql
def test_track_and_untrack_in_this_process_drop_the_kept_rows(count_queries: Any) -> None:
    user, followed = world(2)
    page_ids(user)
    actrack.untrack(user, followed[0])
    assert trackercache.kept(user.pk, "default") is None
    with count_queries() as log:
        found = page_ids(user)
    assert len(log) == 2  # the rows, then the page: no failed check
    assert found == iterated_ids(user)
    actrack.track(user, followed[0], actor_only=False)
    assert trackercache.kept(user.pk, "default") is None


@postgresql
def test_a_user_without_trackers_keeps_nothing() -> None:
    user = make_user()
    train = make_train()
    actrack.log(train, "departed")
    assert page_ids(user) == []
    assert trackercache.kept(user.pk, "default") is None
    Tracker.objects.create(
        user=user, tracked_ct=ContentType.objects.get_for_model(train), tracked_key=str(train.pk)
    )
    assert len(page_ids(user)) == 1


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the other databases")
def test_other_databases_keep_nothing(count_queries: Any) -> None:
    user, _trains = world(2)
    ContentType.objects.get_for_model(type(user))  # Django's cache, warm
    for _ in range(2):
        with count_queries() as log:
            page_ids(user)
        assert len(log) == 2
    assert trackercache.kept(user.pk, "default") is None


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of tracker rows of each statement part built from them, appended."""
    from actrack.fanout import Statement

    built: list[int] = []
    original = Statement.python_relations

    def counted(self: Any, trackers: Any, since: bool) -> Any:
        built.append(len(list(trackers)))
        return original(self, trackers, since)

    monkeypatch.setattr(Statement, "python_relations", counted)
    return built


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the other databases")
@pytest.mark.parametrize("trains", [2, 40])  # a direct statement, and a walk first
def test_elsewhere_equal_reads_share_what_pages_build_from_them(
    trains: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _count_builds(monkeypatch)
    user, followed = world(trains)
    twin = make_user()
    actrack.track(twin, followed, actor_only=False)  # the same rows as the user's
    first = page_ids(user)
    assert page_ids(user) == page_ids(twin) == first
    assert built == [trains]  # read each time, built once
    Tracker.objects.filter(user=user, tracked_key=str(followed[-1].pk)).update(
        verbs=["arrived"]  # no such action: the newest train leaves the page
    )
    changed = page_ids(user)
    assert changed == iterated_ids(user) != first
    assert page_ids(twin) == first  # the twin's rows did not change
    assert built == [trains, trains]


def test_shared_reads_keep_at_most_the_limit_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trackercache, "SHARED_ROWS", 5)
    first, _trains = world(3)
    second, _trains = world(2)
    rows, derived = trackercache.read_shared(first.pk, "default")
    assert len(rows) == 3 and derived == {}
    derived["part"] = "built"
    assert trackercache.read_shared(first.pk, "default") == (rows, {"part": "built"})
    trackercache.read_shared(second.pk, "default")[1]["part"] = "built"  # 5 rows in all
    assert trackercache.read_shared(first.pk, "default")[1] == {"part": "built"}
    assert trackercache._shared_rows == [5]
    third, _trains = world(1)
    trackercache.read_shared(third.pk, "default")  # the least recently read goes
    assert trackercache._shared_rows == [4]
    assert trackercache.read_shared(first.pk, "default")[1] == {"part": "built"}
    assert trackercache.read_shared(second.pk, "default")[1] == {}  # read again, anew
    trackercache.forget_all()
    assert trackercache._SHARED == {} and trackercache._shared_rows == [0]


def test_a_read_shared_meanwhile_by_another_thread_is_kept_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from actrack import querysets

    user, _trains = world(3)
    trackercache.forget_all()
    original, inner = querysets.tracker_row, []

    def building(*args: Any) -> Any:
        if not inner:  # the other thread reads the same rows while these are built
            inner.append(None)
            inner.append(trackercache.read_shared(user.pk, "default"))
        return original(*args)

    monkeypatch.setattr(querysets, "tracker_row", building)
    rows, derived = trackercache.read_shared(user.pk, "default")
    assert (rows, derived) == inner[1] and rows is inner[1][0] and derived is inner[1][1]
    assert len(trackercache._SHARED) == 1 and trackercache._shared_rows == [3]


@postgresql
def test_the_oldest_users_rows_go_first_beyond_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trackercache, "KEPT_ROWS", 5)
    first, _trains = world(3)
    second, _trains = world(2)
    page_ids(first)
    page_ids(second)  # 5 rows in all
    assert trackercache.kept(first.pk, "default") is not None
    third, _trains = world(1)
    page_ids(third)  # 6: the first user's rows go
    assert trackercache.kept(first.pk, "default") is None
    assert trackercache.kept(second.pk, "default") is not None
    assert trackercache.kept(third.pk, "default") is not None
    crowd, _trains = world(6)  # more than the limit alone: not kept
    assert page_ids(crowd) == iterated_ids(crowd)
    assert trackercache.kept(crowd.pk, "default") is None
    assert trackercache._counted[0] == 3


@postgresql
def test_an_empty_page_from_kept_rows_is_one_query(count_queries: Any) -> None:
    user = make_user()
    actrack.track(user, [make_train() for _ in range(3)], actor_only=False)  # quiet trains
    actrack.log(make_train(), "departed")
    assert page_ids(user) == []
    with count_queries() as log:
        assert page_ids(user) == []
    assert len(log) == 1


@postgresql
def test_a_walk_that_falls_short_then_the_whole_statement_check_the_kept_rows(
    count_queries: Any,
) -> None:
    user = make_user()
    followed = [make_train() for _ in range(40)]  # 120 scans: the page walks first
    with actrack.batch():
        for train in followed:
            actrack.log(train, "departed", grouping_delay=-1)
        for _ in range(300):  # newer actions of other trains: the walk finds too few
            actrack.log(make_train(), "departed", grouping_delay=-1)
    actrack.track(user, followed, actor_only=False)
    with count_queries() as log:
        first = page_ids(user)
    assert len(log) == 3  # the rows, the walk (short), the whole statement
    expected = iterated_ids(user)
    assert first == expected
    with count_queries() as log:
        assert page_ids(user) == expected  # straight to the whole statement
    assert len(log) == 1
    Tracker.objects.filter(user=user, tracked_key=str(followed[-1].pk)).delete()
    with count_queries() as log:
        found = page_ids(user)
    assert len(log) == 3  # the check fails, the rows, the whole statement
    assert found == iterated_ids(user) != expected
