"""Concurrency: many writers at once (PostgreSQL), and concurrent ASGI requests.

The threads each use their own database connection (closed at the end) and
start their steps together (barriers), so that the statements really overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished
from django.db import OperationalError, close_old_connections, connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

import actrack
from actrack import queue as queue_module
from actrack.models import Action, ActionRelated, ActionTarget, DeletedItem, ReadAction, Tracker
from actrack.readstate import mark_all_read
from tests.asgi import asgi_get, run_in_loop_thread
from tests.conftest import make_station, make_ticket, make_train, make_user
from tests.demo.models import Station, Ticket, Train

THREADS = 8
ACTIONS_PER_THREAD = 25
ASGI_REQUESTS = 10
ACTIONS_PER_REQUEST = 5

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent writers need PostgreSQL: SQLite serialises writers (one lock for the "
    "whole database) and has no row locks",
)


def run_threads(count: int, body: Callable[[int, threading.Barrier], None]) -> list[str]:
    """Run ``body(i, barrier)`` in ``count`` threads; the errors they raised, as text."""
    barrier = threading.Barrier(count)
    errors: list[str] = []

    def target(number: int) -> None:
        try:
            body(number, barrier)
        except threading.BrokenBarrierError:
            pass  # another thread failed: its error is reported
        except BaseException as exc:  # collected and asserted on below
            errors.append(f"thread {number}: {exc!r}")
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return errors


# --- many writers ----------------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_threads_log_group_track_mark_read_and_delete_at_once() -> None:
    users = [make_user() for _ in range(THREADS)]
    hub = users[0]  # the user every thread tracks for and marks read for
    train, related, loose = make_train(), make_station(), make_station()
    stations = [make_station() for _ in range(THREADS)]
    victim = make_station()
    victim_key = str(victim.pk)
    # Saved before: a "served" action every thread's "served" groups into (delay 600 s),
    # hub's trackers, actions to mark read, actions about the victim.
    saved = actrack.log(train, "served", related=related, grouping_delay=-1, stops=["s"])
    assert saved is not None
    actrack.track(hub, [train, Station], actor_only=False)
    Tracker.objects.update(created=timezone.now() - dt.timedelta(days=1))
    with actrack.batch():
        for number in range(20):
            actrack.log(train, "readable", grouping_delay=-1, n=number)
        for number in range(10):
            actrack.log(train, "about victim", targets=victim, grouping_delay=-1, n=number)
    readable = list(Action.objects.filter(verb="readable").order_by("pk"))
    about_victim = set(Action.objects.filter(verb="about victim").values_list("pk", flat=True))

    def body(number: int, barrier: threading.Barrier) -> None:
        user, station = users[number], stations[number]
        barrier.wait(timeout=30)
        with actrack.batch():
            for n in range(ACTIONS_PER_THREAD):
                actrack.log(user, "ping", targets=station, grouping_delay=-1, thread=number, n=n)
            # Groups into the saved action (locked while merged).
            actrack.log(
                train,
                "served",
                targets=station,
                related=related,
                grouping_delay=600,
                stops=[f"t{number}"],
            )
            # Nothing saved to group with yet: the first writer inserts it, the others
            # wait for its commit (advisory lock per verb and actor) and group into it.
            actrack.log(train, "loose", related=loose, grouping_delay=600, stops=[f"t{number}"])
        barrier.wait(timeout=30)
        if number == 0:
            victim.delete()
        Action.bulk_mark_read_for(hub, readable, force=True)
        assert len(list(hub.actions.feed()[:50])) > 0  # reading while all this goes on
        if user != hub:
            mark_all_read(user)
        barrier.wait(timeout=30)
        actrack.track(hub, [train, Station], verbs=[f"v{number}"])
        if user != hub:
            actrack.track(user, train, actor_only=False)

    errors = run_threads(THREADS, body)
    assert errors == []

    # Every logged action exactly once.
    pings = list(Action.objects.filter(verb="ping").values_list("data__thread", "data__n"))
    assert len(pings) == THREADS * ACTIONS_PER_THREAD
    assert Counter(pings) == Counter(
        (t, n) for t in range(THREADS) for n in range(ACTIONS_PER_THREAD)
    )
    for action in Action.objects.filter(verb="ping"):
        assert list(
            ActionTarget.objects.filter(action=action).values_list("obj_key", flat=True)
        ) == [str(stations[action.data["thread"]].pk)]
    # Grouped into the saved action: one action with every thread's target and stop.
    served = Action.objects.get(verb="served")
    assert served.pk == saved.pk
    assert sorted(served.data["stops"]) == sorted(["s", *(f"t{n}" for n in range(THREADS))])
    assert set(ActionTarget.objects.filter(action=served).values_list("obj_key", flat=True)) == {
        str(station.pk) for station in stations
    }
    assert ActionRelated.objects.filter(action=served).count() == 1
    # Grouping with nothing saved yet: one action with every stop, none lost or doubled.
    loose_action = Action.objects.get(verb="loose")
    assert Counter(loose_action.data["stops"]) == Counter(f"t{n}" for n in range(THREADS))
    # One tracker per (user, object or model), whatever the concurrent upserts.
    keys = list(Tracker.objects.values_list("user", "tracked_ct", "tracked_key"))
    assert len(keys) == len(set(keys))
    hub_trackers = Tracker.objects.filter(user=hub)
    assert hub_trackers.count() == 2
    assert {tuple(t.verbs) for t in hub_trackers} <= {(f"v{n}",) for n in range(THREADS)}
    assert Tracker.objects.exclude(user=hub).count() == THREADS - 1
    # Read once, however many threads marked it.
    read = list(ReadAction.objects.filter(user=hub).values_list("action_id", flat=True))
    assert sorted(read) == sorted(action.pk for action in readable)
    # The deleted station: every action about it now refers to its one deleted item.
    item = DeletedItem.objects.get(object_key=victim_key)
    targets = ActionTarget.objects.filter(action_id__in=about_victim)
    assert set(targets.values_list("obj_key", flat=True)) == {str(item.pk)}
    assert not ActionTarget.objects.filter(obj_ct=item.ctype, obj_key=victim_key).exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_objects_deleted_by_another_thread_while_queued_or_waiting_for_commit() -> None:
    """Thread 1 deletes (queryset delete, its own connection) what thread 0's batch, then
    its open transaction, refer to: nothing referred to them in the database, so the
    deletions made no deleted items; the writer makes them, and drops the ticket's."""
    train, station, ticket, other = make_train(), make_station(), make_ticket(), make_station()
    keys = {"station": str(station.pk), "other": str(other.pk)}

    def body(number: int, barrier: threading.Barrier) -> None:
        if number == 0:
            with actrack.batch():
                actrack.log(train, "stopped", targets=station, grouping_delay=-1)
                actrack.log(train, "sold", targets=ticket, grouping_delay=-1)
                barrier.wait(timeout=30)
                barrier.wait(timeout=30)  # deleted meanwhile
            with transaction.atomic():
                actrack.log(train, "passed", related=other, grouping_delay=-1)
                barrier.wait(timeout=30)
                barrier.wait(timeout=30)  # deleted meanwhile
        else:
            barrier.wait(timeout=30)
            Station.objects.filter(pk=station.pk).delete()
            Ticket.objects.filter(pk=ticket.pk).delete()
            barrier.wait(timeout=30)
            barrier.wait(timeout=30)
            Station.objects.filter(pk=other.pk).delete()
            barrier.wait(timeout=30)

    assert run_threads(2, body) == []
    items = {item.object_key: item for item in DeletedItem.objects.all()}
    assert set(items) == set(keys.values())
    assert list(Action.objects.get(verb="stopped").targets.all()) == [items[keys["station"]]]
    assert list(Action.objects.get(verb="passed").related.all()) == [items[keys["other"]]]
    assert not Action.objects.filter(verb="sold").exists()


# --- lock order: two known deadlocks ------------------------------------------------------


def _hammer(rounds: int, step: Callable[[int, random.Random, int], None]) -> list[str]:
    """4 threads run ``step`` ``rounds`` times in lockstep, until the first error."""
    stop = threading.Event()

    def body(number: int, barrier: threading.Barrier) -> None:
        rnd = random.Random(number)
        for round_ in range(rounds):
            barrier.wait(timeout=30)
            if stop.is_set():
                return
            try:
                step(number, rnd, round_)
            except OperationalError:
                stop.set()
                raise

    return run_threads(4, body)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_track_of_the_same_objects_in_any_order_never_deadlocks() -> None:
    hub = make_user()
    tracked: list[Any] = [make_train() for _ in range(6)] + [Station, Train]
    actrack.track(hub, tracked)

    def step(number: int, rnd: random.Random, round_: int) -> None:
        order = list(tracked)
        rnd.shuffle(order)
        actrack.track(hub, order, verbs=[f"v{number}"])

    assert _hammer(100, step) == []


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_mark_read_in_any_order_never_deadlocks() -> None:
    hub = make_user()
    train = make_train()
    actrack.track(hub, train)
    Tracker.objects.update(created=timezone.now() - dt.timedelta(days=1))
    rounds, size = 400, 40
    with actrack.batch():
        for number in range(rounds * size):
            actrack.log(train, "readable", grouping_delay=-1, n=number)
    actions = list(Action.objects.order_by("pk"))

    def step(number: int, rnd: random.Random, round_: int) -> None:
        chunk = actions[round_ * size : (round_ + 1) * size]
        rnd.shuffle(chunk)
        Action.bulk_mark_read_for(hub, chunk, force=True)

    assert _hammer(rounds, step) == []


# --- ASGI --------------------------------------------------------------------------------------


def _other_sessions() -> int:
    """Sessions on this test database besides ours (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0])


def _asgi_url(station: Station, number: int) -> str:
    # Half sync views (each request in its own thread, pausing between actions), half
    # async views (interleaving on the event loop).
    view = "log" if number % 2 else "alog"
    return f"/{view}/?station={station.pk}&tag=r{number}&n={ACTIONS_PER_REQUEST}&pause=0.005"


def _run_asgi_requests(station: Station, count: int) -> list[tuple[int, bytes]]:
    async def all_at_once() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(asgi_get(_asgi_url(station, n)) for n in range(count))))

    return run_in_loop_thread(all_at_once)


@postgres_only
@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.reliability.views")
def test_concurrent_asgi_requests_each_write_their_own_actions_once() -> None:
    station = make_station()
    results = _run_asgi_requests(station, ASGI_REQUESTS)
    for status, body in results:
        assert status == 200
        assert json.loads(body) == {
            "queued_at_start": 0,
            "queued_at_end": ACTIONS_PER_REQUEST,
            "saved_during_view": 0,
        }
    rows = list(Action.objects.values_list("data__tag", "data__n"))
    assert len(rows) == ASGI_REQUESTS * ACTIONS_PER_REQUEST
    assert Counter(rows) == Counter(
        (f"r{r}", n) for r in range(ASGI_REQUESTS) for n in range(ACTIONS_PER_REQUEST)
    )
    # Each request's actions were written together, in its logging order.
    for number in range(ASGI_REQUESTS):
        ordered = Action.objects.filter(data__tag=f"r{number}").order_by("pk")
        assert list(ordered.values_list("data__n", flat=True)) == list(range(ACTIONS_PER_REQUEST))
    assert ActionTarget.objects.count() == ASGI_REQUESTS * ACTIONS_PER_REQUEST
    assert not queue_module._asgi_requests
    assert queue_module.current_queue() is None


@contextlib.contextmanager
def _connection_state_at_request_end() -> Iterator[list[bool]]:
    """Whether each request's thread still has an open connection once every
    request_finished receiver ran, in the order a site has them: Django's
    close_old_connections (connected when django.db is imported), then actrack's writer.

    (Django's test client reconnects close_old_connections after each request, which
    puts it last and hides the problem from test-client tests.) The probe then closes
    the connection (whatever CONN_MAX_AGE says), so that nothing leaks from the test.
    """
    states: list[bool] = []

    def probe(**kwargs: Any) -> None:
        states.append(connection.connection is not None)
        connection.close()

    saved = list(request_finished.receivers)
    request_finished.disconnect(close_old_connections)
    request_finished.disconnect(dispatch_uid="actrack-request-finished")
    request_finished.connect(close_old_connections)
    request_finished.connect(
        queue_module.request_finished, dispatch_uid="actrack-request-finished"
    )
    request_finished.connect(probe, dispatch_uid="reliability-probe")
    try:
        yield states
    finally:
        with request_finished.lock:
            request_finished.receivers[:] = saved
            request_finished.sender_receivers_cache.clear()


@postgres_only
@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.reliability.views")
def test_asgi_request_that_logs_nothing_leaves_no_connection_open() -> None:
    """The probe of the next test, on a request that does not log: it is sound."""
    station = make_station()
    with _connection_state_at_request_end() as states:
        run_in_loop_thread(lambda: asgi_get(f"/noop/?station={station.pk}"))
    assert states == [False]


@postgres_only
@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.reliability.views")
def test_asgi_requests_that_log_leave_no_connection_open() -> None:
    station = make_station()
    with _connection_state_at_request_end() as states:
        _run_asgi_requests(station, 4)
    assert states == [False] * 4
    assert Action.objects.count() == 4 * ACTIONS_PER_REQUEST


def _wsgi_get(url: str) -> str:
    """One GET through Django's WSGI handler in a thread of its own, as a threaded
    WSGI server runs it (closing the response sends request_finished): the status."""
    parts = urlsplit(url)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=parts.path, QUERY_STRING=parts.query, HTTP_HOST="testserver")
    statuses: list[str] = []

    def serve() -> None:
        response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
        b"".join(response)
        response.close()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    return statuses[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.reliability.views")
def test_wsgi_requests_that_log_leave_no_connection_open() -> None:
    station = make_station()
    with _connection_state_at_request_end() as states:
        statuses = [_wsgi_get(f"/log/?station={station.pk}&tag=w{n}&n=2") for n in range(2)]
    assert statuses == ["200 OK"] * 2
    assert states == [False] * 2
    assert Action.objects.count() == 4


@postgres_only
@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.reliability.views")
def test_requests_that_log_keep_persistent_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """actrack closes what Django's close_old_connections would: with CONN_MAX_AGE, the
    connection is kept for the thread's next request (the probe closes it)."""
    station = make_station()
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)
    with _connection_state_at_request_end() as states:
        _wsgi_get(f"/log/?station={station.pk}&tag=kept&n=1")
        _run_asgi_requests(station, 1)
    assert states == [True, True]
