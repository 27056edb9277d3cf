"""The hand-built INSERTs of actions and link rows (actrack.inserts), on either database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import actrack
from actrack import inserts
from actrack.models import Action, ActionRelated, ActionTarget
from actrack.signals import action_logged
from tests.conftest import make_note, make_station, make_ticket, make_train, make_user

pytestmark = pytest.mark.django_db


def _links(model: Any, action: Action) -> list[tuple[int, str]]:
    return list(
        model.objects.filter(action=action).order_by("pk").values_list("obj_ct_id", "obj_key")
    )


def _ref(obj: Any) -> tuple[int, str]:
    return ContentType.objects.get_for_model(obj).pk, str(obj.pk)


def test_a_batch_is_written_in_logging_order_with_its_links() -> None:
    trains = [make_train() for _ in range(3)]
    stations = [make_station() for _ in range(4)]
    note, ticket = make_note(), make_ticket()
    moment = timezone.now() - dt.timedelta(days=3)
    plan = [
        (trains[0], "departed", [stations[2], stations[0], stations[1]], [note, ticket]),
        (None, "closed", [stations[3]], []),
        (trains[1], "passed", [], [ticket]),
        (trains[2], "arrived", [stations[1], stations[1], stations[0]], [note]),
    ]
    with actrack.batch() as queue:
        for number, (actor, verb, targets, related) in enumerate(plan):
            actrack.log(
                actor,
                verb,
                targets=targets,
                related=related,
                timestamp=moment + dt.timedelta(minutes=number),
                grouping_delay=-1,
                n=number,
                price=Decimal("1.50"),
            )
        entries = list(queue.entries)
    actions = list(Action.objects.order_by("pk"))
    assert [a.data["n"] for a in actions] == [0, 1, 2, 3]
    assert [e.action for e in entries] == actions
    for entry, action, (actor, verb, targets, related) in zip(entries, actions, plan, strict=True):
        assert entry.action is not None and entry.action.pk == action.pk
        assert not entry.action._state.adding and entry.action._state.db == "default"
        assert action.verb == verb and entry.action.verb == verb
        assert action.actor == actor
        assert action.data == entry.action.data == {"n": action.data["n"], "price": "1.50"}
        assert action.timestamp == entry.action.timestamp == entry.timestamp
        # Duplicates dropped, the given order kept (link ids follow it).
        assert _links(ActionTarget, action) == list(dict.fromkeys(_ref(t) for t in targets))
        assert _links(ActionRelated, action) == [_ref(r) for r in related]
        stamps = set(
            ActionTarget.objects.filter(action=action).values_list("timestamp", flat=True)
        )
        assert stamps <= {action.timestamp}


def test_the_returned_action_is_the_saved_one() -> None:
    train, station, ticket = make_train(), make_station(), make_ticket()
    action = actrack.log(train, "departed", targets=station, related=ticket, platform=4)
    assert action is not None
    saved = Action.objects.get()
    assert (action.pk, action.actor_ct_id, action.actor_key) == (
        saved.pk,
        saved.actor_ct_id,
        saved.actor_key,
    )
    assert (action.verb, action.level, action.data) == (saved.verb, saved.level, saved.data)
    assert action.timestamp == saved.timestamp
    assert list(action.targets.all()) == [station]
    assert list(action.related.all()) == [ticket]


def test_action_logged_gets_saved_actions_in_order() -> None:
    received: list[Action] = []

    def receiver(action: Action, **kwargs: Any) -> None:
        received.append(action)

    action_logged.connect(receiver, dispatch_uid="test-inserts-signal")
    try:
        train = make_train()
        with actrack.batch():
            for number in range(5):
                actrack.log(train, "passed", grouping_delay=-1, n=number)
    finally:
        action_logged.disconnect(dispatch_uid="test-inserts-signal")
    assert [a.pk for a in received] == list(
        Action.objects.order_by("pk").values_list("pk", flat=True)
    )
    assert [a.data["n"] for a in received] == list(range(5))


@pytest.mark.parametrize("per_statement", [1, 2, 7])
def test_queues_larger_than_a_statement(
    monkeypatch: pytest.MonkeyPatch, count_queries: Any, per_statement: int
) -> None:
    """Several statements (PostgreSQL past ACTIONS_PER_STATEMENT, SQLite past 999
    parameters) keep the order and the links, in one transaction."""
    monkeypatch.setattr(inserts, "ACTIONS_PER_STATEMENT", per_statement)
    train = make_train()
    stations = [make_station() for _ in range(3)]
    count = 400  # past SQLite's 166 actions and 249 link rows per statement
    with count_queries() as log, actrack.batch():
        for number in range(count):
            actrack.log(
                train,
                "passed",
                targets=stations[: 1 + number % 3],
                related=stations[number % 3] if number % 2 else None,
                grouping_delay=-1,
                n=number,
            )
    actions = list(Action.objects.order_by("pk"))
    assert [a.data["n"] for a in actions] == list(range(count))
    for action in actions:
        number = action.data["n"]
        assert _links(ActionTarget, action) == [_ref(s) for s in stations[: 1 + number % 3]]
        assert _links(ActionRelated, action) == (
            [_ref(stations[number % 3])] if number % 2 else []
        )
    if connection.vendor == "postgresql":
        assert len(log.writes()) == -(-count // per_statement)


def test_ids_increase_across_writes() -> None:
    train = make_train()
    first = actrack.log(train, "first")
    with actrack.batch():
        actrack.log(train, "second", grouping_delay=-1)
        actrack.log(train, "third", grouping_delay=-1)
    last = actrack.log(train, "fourth")
    assert first is not None and last is not None
    verbs = list(Action.objects.order_by("pk").values_list("verb", flat=True))
    assert verbs == ["first", "second", "third", "fourth"]
    assert first.pk < last.pk == Action.objects.order_by("pk").last().pk  # type: ignore[union-attr]


@override_settings(USE_TZ=False)
def test_naive_timestamps_without_use_tz() -> None:
    moment = dt.datetime(2024, 5, 6, 7, 8, 9)
    user, station = make_user(), make_station()
    action = actrack.log(user, "walked", targets=station, timestamp=moment)
    assert action is not None and action.timestamp == moment
    assert Action.objects.get().timestamp == moment
    assert ActionTarget.objects.get().timestamp == moment


@pytest.mark.parametrize(("targets", "related"), [(0, 0), (3, 0), (0, 2), (3, 2)])
def test_a_single_log_writes_its_links_in_the_given_order(targets: int, related: int) -> None:
    stations = [make_station() for _ in range(targets)]
    notes = [make_note() for _ in range(related)]
    stations.reverse()  # not the order of their keys
    action = actrack.log(make_train(), "checked", targets=stations, related=notes, n=1)
    assert action is not None and action.pk == Action.objects.get().pk
    assert action.data == Action.objects.get().data == {"n": 1}
    assert _links(ActionTarget, action) == [_ref(s) for s in stations]
    assert _links(ActionRelated, action) == [_ref(n) for n in notes]
    stamps = {action.timestamp}
    assert set(ActionTarget.objects.values_list("timestamp", flat=True)) <= stamps
    assert set(ActionRelated.objects.values_list("timestamp", flat=True)) <= stamps


def test_a_single_log_never_reuses_the_id_of_a_deleted_action() -> None:
    train = make_train()
    kept = actrack.log(train, "kept")
    newest = actrack.log(train, "deleted", targets=make_station())
    assert kept is not None and newest is not None
    Action.objects.filter(pk=newest.pk).delete()
    again = actrack.log(train, "again", targets=make_station(), related=make_note())
    assert again is not None and again.pk > newest.pk
    assert Action.objects.order_by("pk").last() == again
    assert ActionTarget.objects.get().action_id == again.pk


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the log view is SQLite's")
def test_without_the_log_view_a_single_log_takes_a_statement_per_table(
    count_queries: Any,
) -> None:
    """A database made without migrations has no view: ``log()`` still writes, in a
    transaction (the view is dropped inside the test's transaction, which restores it)."""
    train, stations, note = make_train(), [make_station() for _ in range(2)], make_note()
    ContentType.objects.get_for_models(type(train), type(note), type(stations[0]))
    with connection.cursor() as cursor:
        cursor.execute(f'DROP VIEW "{inserts.SQLITE_LOG_VIEW}"')
    with count_queries() as log:
        action = actrack.log(train, "checked", targets=stations, related=note)
    assert action is not None and action.pk == Action.objects.get().pk
    assert _links(ActionTarget, action) == [_ref(s) for s in stations]
    assert _links(ActionRelated, action) == [_ref(note)]
    # The refused statement, then one INSERT per table.
    assert len(log) == 4, log.statements
    assert inserts.SQLITE_LOG_VIEW in log.statements[0]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the log view is SQLite's")
@pytest.mark.django_db(transaction=True)
def test_rebuilding_a_link_table_on_sqlite_needs_the_log_trigger_dropped_first() -> None:
    """What migration 0002's docstring asks of later migrations: SQLite refuses to
    rename a rebuilt table into place while the trigger names it; dropped before
    and created after, the rebuild goes through and ``log()`` is one statement."""
    import importlib

    from django.db import OperationalError, models

    log_view = importlib.import_module("actrack.migrations.0002_sqlite_action_log")
    old = ActionTarget._meta.get_field("obj_key")
    new = models.CharField(max_length=old.max_length + 1)  # type: ignore[attr-defined]
    new.set_attributes_from_name("obj_key")
    new.model = ActionTarget
    with pytest.raises(OperationalError, match=log_view.TRIGGER):  # noqa: SIM117
        with connection.schema_editor() as editor:
            editor.alter_field(ActionTarget, old, new)
    with connection.schema_editor() as editor:
        log_view.drop_log_view(None, editor)
        editor.alter_field(ActionTarget, old, new)
        editor.alter_field(ActionTarget, new, old)
        log_view.create_log_view(None, editor)
    station = make_station()
    with CaptureQueriesContext(connection) as queries:
        action = actrack.log(make_train(), "checked", targets=station)
    assert action is not None
    assert _links(ActionTarget, action) == [_ref(station)]
    assert [q["sql"] for q in queries if inserts.SQLITE_LOG_VIEW in q["sql"]]
