"""The action queue: requests (WSGI and ASGI), batch(), transactions, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

import actrack
from actrack import queue as queue_module
from actrack.api import build_entry
from actrack.models import Action
from tests.asgi import asgi_get, run_in_loop_thread
from tests.conftest import make_line, make_station, make_train

pytestmark = pytest.mark.django_db

URLS = "tests.test_actrack.views"


# --- WSGI requests through the test client ----------------------------------------------


@pytest.mark.urls(URLS)
def test_request_writes_nothing_until_the_response_ends(client: Any) -> None:
    station = make_station()
    response = client.get(f"/log-three/?station={station.pk}")
    assert response.json() == {"saved_during_view": 0}
    actions = list(Action.objects.order_by("pk"))
    assert [a.data["number"] for a in actions] == [0, 1, 2]  # ids follow logging order
    assert {a.verb for a in actions} == {"announced"}
    assert actrack.queue.current_queue() is None


@pytest.mark.urls(URLS)
def test_actions_logged_before_a_view_error_are_still_written(client: Any) -> None:
    station = make_station()
    client.raise_request_exception = False
    response = client.get(f"/log-then-fail/?station={station.pk}")
    assert response.status_code == 500
    assert list(Action.objects.values_list("verb", flat=True)) == ["announced"]


@pytest.mark.urls(URLS)
def test_rolled_back_block_inside_a_request_discards_its_actions(client: Any) -> None:
    station = make_station()
    response = client.get(f"/log-rolled-back/?station={station.pk}")
    assert response.json() == {"saved_during_view": 0}
    assert list(Action.objects.values_list("verb", flat=True)) == ["kept"]


def test_request_end_leaves_a_connection_inside_an_atomic_block_open() -> None:
    """After writing, actrack closes old connections as Django's request_finished
    receiver does (see tests/reliability/test_concurrency.py), but never one inside an
    atomic block, here the test case's transaction."""
    station = make_station()
    queue_module.request_started(sender=None)
    actrack.log(station, "announced")
    assert connection.in_atomic_block
    queue_module.request_finished(sender=None)
    assert connection.connection is not None
    assert not connection.closed_in_transaction
    assert Action.objects.get().actor == station  # the test's transaction is usable


# --- ASGI requests through Django's real ASGI handler --------------------------------------


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=URLS)
def test_asgi_request_queues_until_the_response_ends() -> None:
    station = make_station()
    status, body = run_in_loop_thread(lambda: asgi_get(f"/log-three/?station={station.pk}"))
    assert status == 200
    assert json.loads(body) == {"saved_during_view": 0}
    assert [a.data["number"] for a in Action.objects.order_by("pk")] == [0, 1, 2]


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=URLS)
def test_async_view_queues_through_sync_to_async() -> None:
    station = make_station()
    status, body = run_in_loop_thread(lambda: asgi_get(f"/async-log/?station={station.pk}"))
    assert status == 200
    assert json.loads(body) == {"saved_during_view": 0}
    assert Action.objects.count() == 2


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=URLS)
def test_concurrent_asgi_requests_keep_their_own_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_station(), make_station()
    if connection.vendor == "sqlite":
        # The test database is in memory with a shared cache, where a connection
        # touching a table another one is writing fails at once ("database table is
        # locked") instead of waiting as file databases do. The requests still
        # interleave; their database work takes turns.
        from tests.test_actrack import views

        turn = threading.Lock()
        flush = queue_module.flush_and_close

        def flush_in_turn(*args: Any, **kwargs: Any) -> Any:
            with turn:
                return flush(*args, **kwargs)

        monkeypatch.setattr(views, "database_turn", turn)
        monkeypatch.setattr(queue_module, "flush_and_close", flush_in_turn)

    async def both() -> list[tuple[int, bytes]]:
        return list(
            await asyncio.gather(
                asgi_get(f"/log-three/?station={first.pk}"),
                asgi_get(f"/log-three/?station={second.pk}"),
            )
        )

    results = run_in_loop_thread(both)
    assert [status for status, _ in results] == [200, 200]
    assert Action.objects.as_actor(first).count() == 3
    assert Action.objects.as_actor(second).count() == 3
    assert not queue_module._asgi_requests


# --- batch() ------------------------------------------------------------------------------


def test_batch_writes_on_exit_in_logging_order(count_queries: Any) -> None:
    stations = [make_station() for _ in range(3)]
    train = make_train()
    with count_queries() as log, actrack.batch() as queue:
        for number in range(30):
            assert (
                actrack.log(
                    train, "passed", targets=stations[number % 3], grouping_delay=-1, n=number
                )
                is None
            )
        assert Action.objects.count() == 0
        assert len(queue.entries) == 30
    # Set-based: one statement on PostgreSQL, one INSERT per table elsewhere.
    assert len(log.writes()) == (1 if connection.vendor == "postgresql" else 2)
    assert [a.data["n"] for a in Action.objects.order_by("pk")] == list(range(30))


def test_batch_as_decorator_opens_a_queue_per_call() -> None:
    train = make_train()

    @actrack.batch()
    def announce(count: int) -> int:
        for number in range(count):
            actrack.log(train, "announced", grouping_delay=-1, n=number)
        return Action.objects.count()

    assert announce(2) == 0
    assert announce(3) == 2  # the first call's actions were written when it returned
    assert Action.objects.count() == 5


def test_nested_batches_write_their_own_actions() -> None:
    train = make_train()
    with actrack.batch():
        actrack.log(train, "outer")
        with actrack.batch():
            actrack.log(train, "inner")
        assert list(Action.objects.values_list("verb", flat=True)) == ["inner"]
    assert Action.objects.count() == 2


def test_batch_body_failure_still_writes_and_reraises() -> None:
    train = make_train()
    with pytest.raises(KeyError), actrack.batch():
        actrack.log(train, "logged before failure")
        raise KeyError("boom")
    assert Action.objects.count() == 1
    assert actrack.queue.current_queue() is None


def test_save_queue_writes_now_and_keeps_queueing() -> None:
    train = make_train()
    with actrack.batch():
        actrack.log(train, "first")
        saved = actrack.save_queue()
        assert [a.verb for a in saved] == ["first"]
        actrack.log(train, "second")
        assert Action.objects.count() == 1
    assert Action.objects.count() == 2
    assert actrack.save_queue() == []  # no queue outside a batch


def test_failed_flush_raises_logs_and_leaves_no_queue(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    train = make_train()

    def broken(entries: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr("actrack.writer.write", broken)
    with (
        caplog.at_level(logging.ERROR, logger="actrack"),
        pytest.raises(RuntimeError),
        actrack.batch(),
    ):
        actrack.log(train, "lost?", detail="kept in the log")
    assert actrack.queue.current_queue() is None
    assert "could not write 1 queued action" in caplog.text
    assert "kept in the log" in caplog.text
    monkeypatch.undo()
    with actrack.batch():
        actrack.log(train, "next batch")
    assert list(Action.objects.values_list("verb", flat=True)) == ["next batch"]


def test_failed_write_leaves_no_half_written_action(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db.backends.utils import CursorWrapper

    from actrack.models import ActionTarget

    train, station = make_train(), make_station()
    original = CursorWrapper.execute
    table = ActionTarget._meta.db_table

    def failing_execute(self: CursorWrapper, sql: str, params: Any = None) -> Any:
        if re.search(rf'INSERT INTO "?{table}"?[ (]', sql):
            raise RuntimeError("link insert failed")
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", failing_execute)
    # Two actions: one statement on PostgreSQL, a statement per table in a transaction
    # elsewhere.
    entries = [
        build_entry(
            train,
            verb,
            targets=station,
            related=None,
            timestamp=None,
            level=None,
            grouping_delay=-1,
            using=None,
            data={},
        )
        for verb in ("departed", "arrived")
    ]
    with pytest.raises(RuntimeError):
        queue_module.write_entries(entries)
    assert Action.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_single_statement_log_failing_in_the_database_writes_nothing() -> None:
    """``log()`` outside a transaction is one statement on both databases: when the
    database refuses its last link row, the action and its targets are not kept."""
    from actrack.models import ActionRelated, ActionTarget

    table = ActionRelated._meta.db_table
    train, station, line = make_train(), make_station(), make_line()
    if connection.vendor == "postgresql":
        create = [
            "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse()",
        ]
        drop = [f"DROP TRIGGER test_refuse ON {table}", "DROP FUNCTION test_refuse()"]
    else:
        create = [
            f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER test_refuse"]
    with connection.cursor() as cursor:
        for sql in create:
            cursor.execute(sql)
    try:
        with pytest.raises(DatabaseError, match="refused"):
            actrack.log(train, "departed", targets=station, related=line, grouping_delay=-1)
    finally:
        with connection.cursor() as cursor:
            for sql in drop:
                cursor.execute(sql)
    assert not Action.objects.exists()
    assert not ActionTarget.objects.exists()
    actrack.log(train, "departed", targets=station, related=line, grouping_delay=-1)
    assert ActionRelated.objects.count() == 1


# --- transactions -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_log_in_atomic_is_written_on_commit() -> None:
    train = make_train()
    with transaction.atomic():
        assert actrack.log(train, "departed") is None
        assert Action.objects.count() == 0
    assert Action.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_log_in_rolled_back_atomic_is_discarded() -> None:
    train = make_train()
    with pytest.raises(ValueError, match="rollback"), transaction.atomic():
        actrack.log(train, "departed")
        raise ValueError("rollback")
    assert Action.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_rolled_back_savepoint_discards_only_its_actions() -> None:
    train = make_train()
    with transaction.atomic():
        actrack.log(train, "outer before")
        try:
            with transaction.atomic():
                actrack.log(train, "inner")
                raise ValueError
        except ValueError:
            pass
        actrack.log(train, "outer after")
    assert list(Action.objects.order_by("pk").values_list("verb", flat=True)) == [
        "outer before",
        "outer after",
    ]


@pytest.mark.django_db(transaction=True)
def test_batch_inside_rolled_back_savepoint() -> None:
    train = make_train()
    with actrack.batch():
        actrack.log(train, "kept")
        try:
            with transaction.atomic():
                actrack.log(train, "discarded")
                raise ValueError
        except ValueError:
            pass
        with transaction.atomic():
            actrack.log(train, "committed")
    assert sorted(Action.objects.values_list("verb", flat=True)) == ["committed", "kept"]


@pytest.mark.django_db(transaction=True)
def test_batch_ending_inside_a_transaction_waits_for_its_commit() -> None:
    train = make_train()
    with transaction.atomic():
        with actrack.batch():  # ends before the commit: nothing may be written yet
            actrack.log(train, "pending")
        assert Action.objects.count() == 0
    assert Action.objects.count() == 1

    with pytest.raises(ValueError, match="no"), transaction.atomic():
        with actrack.batch():
            actrack.log(train, "rolled back")
        raise ValueError("no")
    assert Action.objects.count() == 1


def test_test_case_transaction_does_not_delay_logging() -> None:
    # pytest-django wraps this test in a transaction; it is not the site's own.
    assert actrack.log(make_train(), "departed") is not None
