"""Faults: the database failing in the middle of writing a queue.

The writer is made to fail after the actions' INSERT, on the link rows' bulk
INSERT (or on the first INSERT). Whatever the failure, no action is half
written (no action without its targets), the error and every lost action's
payload are logged on the ``actrack`` logger, a request still gets its
response, and the next request starts with a clean queue.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.test import Client, override_settings

import actrack
from actrack import inserts, logfunction
from actrack import queue as queue_module
from actrack.models import Action, ActionRelated, ActionTarget, DeletedItem
from actrack.signals import action_logged
from tests.asgi import asgi_get, run_in_loop_thread
from tests.conftest import make_station, make_ticket, make_train
from tests.demo.models import Station

URLS = "tests.reliability.views"
FAILURES: list[str] = []


@pytest.fixture
def failing_insert(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """Make every statement inserting into the models listed in the yielded list raise.

    At the cursor, in every thread: whether the rows go through ``bulk_create``,
    a statement writing both link tables at once, SQLite's log view (whose
    trigger writes the action and both link tables) or PostgreSQL's
    ``actrack_log_action()`` (which writes them all too).
    """
    failing: list[type] = []
    original = CursorWrapper.execute

    def execute(self: CursorWrapper, sql: str, params: Any = None) -> Any:
        for model in failing:
            tables = [model._meta.db_table]
            writers = []
            if model in (Action, ActionTarget, ActionRelated):
                tables.append(inserts.SQLITE_LOG_VIEW)
                writers.append(f"SELECT {logfunction.FUNCTION}(")
            if any(re.search(rf'INSERT INTO "?{table}"?[ (]', sql) for table in tables) or any(
                writer in sql for writer in writers
            ):
                FAILURES.append(model.__name__)
                raise OperationalError("server closed the connection unexpectedly (test)")
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", execute)
    return failing


def _rows() -> tuple[int, int, int]:
    return Action.objects.count(), ActionTarget.objects.count(), ActionRelated.objects.count()


def _payload_logged(caplog: pytest.LogCaptureFixture, tag: str, count: int) -> None:
    errors = [r for r in caplog.records if r.name == "actrack" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert f"could not write {count} queued action(s)" in message
    assert message.count(f"'tag': '{tag}'") == count  # every lost action's payload
    assert "'verb': 'announced'" in message
    assert errors[0].exc_info is not None  # with the database error's traceback
    assert "server closed the connection" in str(errors[0].exc_info[1])


# --- inside a request (WSGI, test client) -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.urls(URLS)
@pytest.mark.parametrize("failing_model", [ActionTarget, Action])
def test_failed_flush_in_a_request_writes_nothing_logs_and_leaves_a_clean_queue(
    client: Client,
    failing_insert: list[type],
    caplog: pytest.LogCaptureFixture,
    failing_model: type,
) -> None:
    station = make_station()
    failing_insert.append(failing_model)
    with caplog.at_level(logging.ERROR, logger="actrack"):
        response = client.get("/log/", {"station": station.pk, "tag": "lost", "n": 3})
    # The response was complete before the queue was written, at the end of the request.
    assert response.status_code == 200
    assert response.json() == {"queued_at_start": 0, "queued_at_end": 3, "saved_during_view": 0}
    assert FAILURES[-1] == failing_model.__name__
    assert _rows() == (0, 0, 0)  # no half-written action
    _payload_logged(caplog, "lost", 3)
    assert queue_module.current_queue() is None

    # The next request starts from an empty queue and writes normally.
    failing_insert.clear()
    response = client.get("/log/", {"station": station.pk, "tag": "next", "n": 2})
    assert response.json() == {"queued_at_start": 0, "queued_at_end": 2, "saved_during_view": 0}
    assert sorted(Action.objects.values_list("data__n", flat=True)) == [0, 1]
    assert set(Action.objects.values_list("data__tag", flat=True)) == {"next"}
    assert ActionTarget.objects.count() == 2
    assert queue_module.current_queue() is None


# --- inside a request (ASGI) --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=URLS)
def test_failed_flush_under_asgi_writes_nothing_and_the_next_request_is_clean(
    failing_insert: list[type], caplog: pytest.LogCaptureFixture
) -> None:
    station = make_station()
    failing_insert.append(ActionTarget)
    with caplog.at_level(logging.ERROR, logger="actrack"):
        status, body = run_in_loop_thread(
            lambda: asgi_get(f"/log/?station={station.pk}&tag=lost&n=3")
        )
    assert status == 200
    assert json.loads(body)["queued_at_end"] == 3
    assert _rows() == (0, 0, 0)
    _payload_logged(caplog, "lost", 3)
    failing_insert.clear()
    status, body = run_in_loop_thread(lambda: asgi_get(f"/alog/?station={station.pk}&tag=ok&n=2"))
    assert status == 200
    assert json.loads(body)["queued_at_start"] == 0
    assert set(Action.objects.values_list("data__tag", flat=True)) == {"ok"}
    assert Action.objects.count() == 2
    assert not queue_module._asgi_requests  # no request queue left behind


# --- batch() and plain log() ----------------------------------------------------------------


@pytest.mark.django_db
def test_failed_flush_of_a_batch_raises_writes_nothing_and_logs(
    failing_insert: list[type], caplog: pytest.LogCaptureFixture
) -> None:
    station = make_station()
    failing_insert.append(ActionRelated)
    with (
        caplog.at_level(logging.ERROR, logger="actrack"),
        pytest.raises(OperationalError),
        actrack.batch(),
    ):
        for number in range(4):
            actrack.log(station, "announced", targets=station, related=station, tag="b", n=number)
    assert _rows() == (0, 0, 0)
    _payload_logged(caplog, "b", 4)
    assert queue_module.current_queue() is None
    failing_insert.clear()
    with actrack.batch():
        actrack.log(station, "announced", targets=station, tag="after")
    assert _rows() == (1, 1, 0)


@pytest.mark.django_db
def test_failed_immediate_log_raises_and_writes_nothing(failing_insert: list[type]) -> None:
    station = make_station()
    failing_insert.append(ActionTarget)
    with pytest.raises(OperationalError):
        actrack.log(station, "announced", targets=station)
    assert _rows() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_failed_write_on_commit_raises_from_the_committing_block(
    failing_insert: list[type],
) -> None:
    """Actions logged in ``atomic()`` are written after the commit: a failure then is
    raised from the block's exit, the site's own changes stay committed, and no action
    is half written."""
    failing_insert.append(ActionTarget)
    with pytest.raises(OperationalError), transaction.atomic():
        station = make_station()
        actrack.log(station, "announced", targets=station)
    assert Action.objects.count() == 0
    assert ActionTarget.objects.count() == 0
    assert type(station).objects.filter(pk=station.pk).exists()  # committed
    assert not connection.run_on_commit


# --- deletion racing a queued write ----------------------------------------------------------


def _delete_elsewhere(obj: Any) -> None:
    """Delete ``obj`` as another request would: in a context that does not see our queue."""
    contextvars.Context().run(obj.delete)


@pytest.mark.django_db
def test_object_deleted_in_this_context_before_the_queue_is_written() -> None:
    """Baseline (spec 3.6): the queued action is written with the deleted item."""
    train, station = make_train(), make_station()
    with actrack.batch():
        actrack.log(train, "stopped", targets=station)
        station.delete()
    item = DeletedItem.objects.get()
    assert list(ActionTarget.objects.values_list("obj_key", flat=True)) == [str(item.pk)]


@pytest.mark.django_db
def test_object_deleted_by_another_request_before_the_queue_is_written() -> None:
    train, station = make_train(), make_station()
    station_key = str(station.pk)
    with actrack.batch():
        actrack.log(train, "stopped", targets=station)
        _delete_elsewhere(station)
    keys = list(ActionTarget.objects.values_list("obj_ct", "obj_key"))
    item = DeletedItem.objects.get()  # nothing else referred to it: made by the writer
    assert item.object_key == station_key
    assert keys == [(ContentType.objects.get_for_model(DeletedItem).pk, str(item.pk))]


@pytest.mark.django_db
def test_object_without_deleted_items_deleted_by_another_request_meanwhile() -> None:
    train, ticket = make_train(), make_ticket()
    with actrack.batch():
        actrack.log(train, "sold", targets=ticket)
        _delete_elsewhere(ticket)
    assert Action.objects.count() == 0


# --- a failing action_logged receiver ----------------------------------------------------------


@pytest.mark.django_db(databases=["default", "other"])
def test_a_failing_action_logged_receiver_loses_and_misreports_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = make_station()
    elsewhere = Station.objects.using("other").create(name="elsewhere")

    def broken_receiver(**kwargs: Any) -> None:
        raise RuntimeError("a site's receiver failed")

    action_logged.connect(broken_receiver, dispatch_uid="reliability-broken")
    try:
        with (
            caplog.at_level(logging.ERROR, logger="actrack"),
            contextlib.suppress(RuntimeError),
            actrack.batch(),
        ):
            actrack.log(station, "announced", tag="default")
            actrack.log(elsewhere, "announced", tag="other", using="other")
    finally:
        action_logged.disconnect(dispatch_uid="reliability-broken")
    assert Action.objects.using("default").count() == 1
    assert Action.objects.using("other").count() == 1
    assert "could not write" not in caplog.text
    assert caplog.text.count("the action_logged receiver") == 2  # logged, for each action
    assert "broken_receiver" in caplog.text
