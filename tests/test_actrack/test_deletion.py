"""Deleted items: history survives deletion, set-based and inside the deleting transaction."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete

import actrack
from actrack import logfunction
from actrack.deletion import get_del_item
from actrack.models import Action, ActionRelated, ActionTarget, DeletedItem, Tracker
from tests.conftest import log as _log
from tests.conftest import (
    make_journey,
    make_line,
    make_station,
    make_ticket,
    make_train,
    make_user,
)
from tests.demo.models import Journey, Station, Train

pytestmark = pytest.mark.django_db


def test_deleted_actor_target_and_related_become_one_deleted_item() -> None:
    train, station = make_train("Orient Express"), make_station("Venice")
    as_actor = _log(train, "departed", targets=station)
    as_target = _log(station, "announced", targets=train)
    as_related = _log(None, "cleaned", related=[station, train])
    train_pk = train.pk
    train.delete()
    item = DeletedItem.objects.get()
    assert str(item) == item.description == "Train Orient Express (retired)"
    assert item.serialization == {"pk": train_pk, "name": "Orient Express"}
    assert item.ctype.model_class() is Train
    assert item.object_key == str(train_pk)
    assert Action.objects.get(pk=as_actor.pk).actor == item
    assert list(Action.objects.get(pk=as_target.pk).targets.all()) == [item]
    assert set(Action.objects.get(pk=as_related.pk).related.all()) == {station, item}
    assert Action.objects.count() == 3


def test_default_description_and_serialization() -> None:
    station = make_station("Lyon")
    _log(station)
    pk = station.pk
    station.delete()
    item = DeletedItem.objects.get()
    assert (item.description, item.serialization) == ("Lyon", {"pk": pk})


def test_rendering_shows_the_description() -> None:
    station = make_station("Lyon")
    action = _log(make_user("ann"), "visited", targets=station)
    station.delete()
    assert Action.objects.get(pk=action.pk).render().startswith("ann visited Lyon, ")


def test_unreferenced_objects_leave_no_deleted_item() -> None:
    make_station().delete()
    assert not DeletedItem.objects.exists()


def test_trackers_follow_the_deleted_object_and_keep_the_feed() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train, actor_only=False)
    actrack.track(user, Train)
    action = _log(train, "departed")
    train.delete()
    item = DeletedItem.objects.get()
    tracker = Tracker.objects.get(tracked_key=str(item.pk))
    assert tracker.tracked == item
    assert Tracker.objects.filter(tracked_key="").count() == 1  # the model tracker stays
    assert list(user.actions.feed()) == [action]


def test_cascade_gives_one_deleted_item_per_instance() -> None:
    train = make_train("Eurostar")
    journeys = [make_journey(train) for _ in range(3)]
    for journey in journeys:
        _log(journey, "scheduled", targets=train, related=journey)
    _log(train, "retired", targets=journeys)
    train.delete()  # cascades to the journeys
    assert not Journey.objects.exists()
    items = DeletedItem.objects.all()
    assert sorted(item.ctype.model for item in items) == ["journey"] * 3 + ["train"]
    keys = {(deleted_item_ct(), str(i.pk)) for i in items}
    # every reference now points at one of these items, and each instance has one
    for action in Action.objects.all():
        assert (action.actor_ct_id, action.actor_key) in keys
    link_keys = set(ActionTarget.objects.values_list("obj_ct_id", "obj_key"))
    link_keys |= set(ActionRelated.objects.values_list("obj_ct_id", "obj_key"))
    assert link_keys == keys


def test_use_del_items_false_deletes_actions_and_trackers() -> None:
    user, ticket, other = make_user(), make_ticket(), make_ticket()
    kept = _log(user, "booked", targets=other)
    _log(user, "booked", targets=[ticket, other])
    _log(ticket, "scanned")
    _log(None, "refunded", related=ticket)
    actrack.track(user, ticket)
    ticket.delete()
    assert list(Action.objects.all()) == [kept]
    assert not Tracker.objects.exists()
    assert not DeletedItem.objects.exists()


def _bulk_history(station: Station, count: int) -> None:
    train = make_train()
    with actrack.batch():
        for number in range(count):
            actrack.log(
                train, "passed", targets=station, related=station, grouping_delay=-1, n=number
            )


def test_deleting_an_object_costs_the_same_for_10_and_10000_actions(count_queries: Any) -> None:
    small, big = make_station(), make_station()
    _bulk_history(small, 10)
    _bulk_history(big, 10_000)
    actrack.track(make_user(), [small, big])
    ContentType.objects.get_for_model(DeletedItem)  # cached, as in a running site
    with count_queries() as few:
        small.delete()
    with count_queries() as many:
        big.delete()
    assert len(few) == len(many), (few.statements, many.statements)
    # Nothing of actrack's is loaded: its only read is the existence probe.
    reads = [s for s in many.statements if s.upper().startswith("SELECT") and "actrack_" in s]
    assert len(reads) == 1
    assert "EXISTS" in reads[0]
    item = DeletedItem.objects.get(description=str(big))
    links = ActionTarget.objects.filter(obj_ct=deleted_item_ct(), obj_key=str(item.pk))
    assert links.count() == 10_000


def deleted_item_ct() -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(DeletedItem).pk


def test_failed_delete_leaves_everything_untouched() -> None:
    station = make_station()
    journey = Journey.objects.create(
        train=make_train(), origin=station, destination=make_station()
    )
    action = _log(station, "opened", targets=journey)
    with pytest.raises(ProtectedError):
        station.delete()  # Journey.origin protects it
    assert Action.objects.get(pk=action.pk).actor == station
    assert not DeletedItem.objects.exists()


def test_delete_failing_after_the_repointing_rolls_it_back() -> None:
    train = make_train()
    action = _log(train, "departed", targets=make_station())

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("a later receiver fails")

    pre_delete.connect(explode, sender=Train, dispatch_uid="test-explode")
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            train.delete()
    finally:
        pre_delete.disconnect(sender=Train, dispatch_uid="test-explode")
    assert Train.objects.filter(pk=train.pk).exists()
    assert Action.objects.get(pk=action.pk).actor == train
    assert not DeletedItem.objects.exists()


def test_get_del_item_lets_receivers_log_about_the_object(
    django_capture_on_commit_callbacks: Any,
) -> None:
    train = make_train("Mallard")
    _log(train, "departed")
    logged: list[DeletedItem] = []

    def about_to_go(sender: Any, instance: Train, **kwargs: Any) -> None:
        item = get_del_item(instance)
        assert get_del_item(instance) is item  # same item on repeated calls
        logged.append(item)
        actrack.log(None, "retired", targets=item, grouping_delay=-1)

    pre_delete.connect(about_to_go, sender=Train, dispatch_uid="test-retire")
    try:
        # Logged inside the delete's transaction: written when it commits.
        with django_capture_on_commit_callbacks(execute=True):
            train.delete()
    finally:
        pre_delete.disconnect(sender=Train, dispatch_uid="test-retire")
    item = DeletedItem.objects.get()  # the deletion used the same item
    assert logged == [item]
    retired = Action.objects.get(verb="retired")
    assert list(retired.targets.all()) == [item]
    assert Action.objects.get(verb="departed").actor == item


def test_object_deleted_between_log_and_flush_is_stored_as_deleted_item() -> None:
    station, line = make_station("Gone"), make_line()
    with actrack.batch():
        actrack.log(station, "closed", targets=line, related=station)
        station.delete()
    action = Action.objects.get()
    item = DeletedItem.objects.get()
    assert action.actor == item
    assert list(action.related.all()) == [item]


@pytest.mark.django_db(transaction=True)
def test_object_deleted_before_commit_is_stored_as_deleted_item() -> None:
    station = make_station("Gone")
    with transaction.atomic():
        actrack.log(station, "closed")
        station.delete()
    assert Action.objects.get().actor == DeletedItem.objects.get()


def test_queued_actions_about_a_use_del_items_false_object_are_dropped() -> None:
    ticket = make_ticket()
    with actrack.batch():
        actrack.log(ticket, "scanned")
        actrack.log(None, "kept", grouping_delay=-1)
        ticket.delete()
    assert list(Action.objects.values_list("verb", flat=True)) == ["kept"]


def test_dangling_reference_to_a_deleted_unconnected_object_renders_deleted() -> None:
    from tests.conftest import make_note

    note = make_note("memo")
    action = _log(make_user("zoe"), "wrote", targets=note)
    note.delete()
    assert Action.objects.get(pk=action.pk).render().startswith("zoe wrote (deleted), ")


def test_deleting_a_user_keeps_their_actions() -> None:
    user = make_user("leaving")
    action = _log(user, "commented", targets=make_train())
    user.delete()
    assert Action.objects.get(pk=action.pk).actor == DeletedItem.objects.get()


def test_multi_object_queryset_delete() -> None:
    stations = [make_station() for _ in range(3)]
    for station in stations:
        _log(station, "opened")
    Station.objects.filter(pk__in=[s.pk for s in stations]).delete()
    assert DeletedItem.objects.count() == 3
    assert Action.objects.count() == 3


# --- deleted by another request, thread or coroutine while the queue waited -----------------
# That deletion cannot see this context's queue: the writer checks the connected objects
# when it writes the queue (actrack/writer.py), and applies the same rules.


def _delete_elsewhere(*objs: Any) -> None:
    """Delete as another request would: in a context that does not see our queue."""
    for obj in objs:
        contextvars.Context().run(obj.delete)


def _ref(obj: Any) -> tuple[int, str]:
    return ContentType.objects.get_for_model(obj).pk, str(obj.pk)


def test_deleted_elsewhere_actor_target_related_share_the_deleters_item() -> None:
    """The deleter made an item (a saved action referred to the train): it is reused."""
    train, station, line = make_train("Flyer"), make_station(), make_line()
    saved = _log(train, "departed")
    with actrack.batch():
        actrack.log(train, "arrived", targets=station, grouping_delay=-1)
        actrack.log(station, "announced", targets=train, grouping_delay=-1)
        actrack.log(None, "cleaned", targets=line, related=[station, train], grouping_delay=-1)
        _delete_elsewhere(train)
    item = DeletedItem.objects.get()
    assert Action.objects.get(pk=saved.pk).actor == item
    assert Action.objects.get(verb="arrived").actor == item
    assert list(Action.objects.get(verb="announced").targets.all()) == [item]
    cleaned = Action.objects.get(verb="cleaned")
    assert set(cleaned.related.all()) == {station, item}
    assert list(cleaned.targets.all()) == [line]


def test_deleted_elsewhere_without_item_gets_one_per_object_from_the_logged_instance() -> None:
    """Nothing referred to the objects when they were deleted: the writer makes the
    items, from the instances as they were logged, one per object for the whole queue."""
    train, station, other = make_train("Comet"), make_station(), make_station()
    train_pk = train.pk
    with actrack.batch():
        actrack.log(train, "arrived", targets=[station, other], grouping_delay=-1)
        actrack.log(train, "left", targets=station, grouping_delay=-1)
        _delete_elsewhere(train, station)
    train_item = DeletedItem.objects.get(ctype=ContentType.objects.get_for_model(Train))
    station_item = DeletedItem.objects.get(ctype=ContentType.objects.get_for_model(Station))
    assert DeletedItem.objects.count() == 2
    assert (train_item.object_key, train_item.description) == (
        str(train_pk),
        "Train Comet (retired)",
    )
    assert train_item.serialization == {"pk": train_pk, "name": "Comet"}
    arrived, left = Action.objects.get(verb="arrived"), Action.objects.get(verb="left")
    assert arrived.actor == left.actor == train_item
    assert set(arrived.targets.all()) == {station_item, other}
    assert list(left.targets.all()) == [station_item]


def test_deleted_elsewhere_description_failure_gives_a_plain_item(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    train, station = make_train(), make_station()
    station_key = str(station.pk)

    def broken(self: Station) -> str:
        raise Station.DoesNotExist("a relation went with it")

    with actrack.batch():
        actrack.log(train, "passed", targets=station)
        _delete_elsewhere(station)
        monkeypatch.setattr(Station, "deleted_item_description", broken, raising=False)
    item = DeletedItem.objects.get()
    assert (item.object_key, item.description) == (station_key, f"station {station_key}")
    assert list(Action.objects.get().targets.all()) == [item]
    assert "could not describe the deleted Station" in caplog.text


def test_deleted_elsewhere_use_del_items_false_drops_the_action_in_every_role() -> None:
    train, station = make_train(), make_station()
    tickets = [make_ticket() for _ in range(3)]
    with actrack.batch():
        actrack.log(tickets[0], "scanned", grouping_delay=-1)
        actrack.log(train, "sold", targets=tickets[1], grouping_delay=-1)
        actrack.log(train, "refunded", related=tickets[2], grouping_delay=-1)
        actrack.log(train, "kept", targets=station, grouping_delay=-1)
        _delete_elsewhere(*tickets)
    assert list(Action.objects.values_list("verb", flat=True)) == ["kept"]
    assert not DeletedItem.objects.exists()


def test_deleted_elsewhere_unconnected_object_stays_a_dangling_reference() -> None:
    from tests.conftest import make_note

    note, train = make_note("memo"), make_train()
    note_ref = _ref(note)
    with actrack.batch():
        actrack.log(train, "wrote", targets=note)
        _delete_elsewhere(note)
    assert list(ActionTarget.objects.values_list("obj_ct", "obj_key")) == [note_ref]
    assert not DeletedItem.objects.exists()
    assert " wrote (deleted), " in Action.objects.get().render()


def test_deleted_elsewhere_before_commit_is_stored_as_deleted_item(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The same check for actions waiting for their transaction's commit."""
    train, station = make_train(), make_station()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        actrack.log(train, "passed", targets=station)
        # Deleted without signals, as by another connection: nothing re-points the entry.
        Station.objects.filter(pk=station.pk)._raw_delete("default")
    item = DeletedItem.objects.get()
    assert item.object_key == str(station.pk)
    assert list(Action.objects.get().targets.all()) == [item]


def test_writing_a_queue_costs_one_lookup_per_connected_model(count_queries: Any) -> None:
    from tests.conftest import make_note

    train, stations, note = make_train(), [make_station() for _ in range(5)], make_note()
    ContentType.objects.get_for_models(Train, Station, DeletedItem, type(note))

    def reads(log: Any) -> list[str]:
        return [sql for sql in log.statements if sql.upper().startswith("SELECT")]

    with count_queries() as log, actrack.batch():
        for station in stations:
            actrack.log(train, "passed", targets=station, related=note, grouping_delay=-1)
    # One existence query per connected model (trains, stations), none for notes.
    assert len(reads(log)) == 2, reads(log)
    # Actions, targets and related: one statement on PostgreSQL.
    assert len(log.writes()) == (1 if connection.vendor == "postgresql" else 3)

    unreferenced = [make_station() for _ in range(5)]
    with actrack.batch():
        for station in stations + unreferenced:
            actrack.log(train, "passed", targets=station, grouping_delay=-1)
        _delete_elsewhere(*stations[:3], *unreferenced[:3])  # items made for 3 of them
        with count_queries() as log:
            actrack.save_queue()
    # ... plus one for the deleted items of those gone, and one INSERT of the missing ones.
    assert len(reads(log)) == 3, reads(log)
    assert [sql for sql in log.writes() if "actrack_deleteditem" in sql] == [
        next(sql for sql in log.writes() if sql.startswith('INSERT INTO "actrack_deleteditem"'))
    ]
    assert DeletedItem.objects.count() == 6
    # 3 saved actions re-pointed by the deleter, 6 queued ones by the writer.
    assert (
        ActionTarget.objects.filter(obj_ct=ContentType.objects.get_for_model(DeletedItem)).count()
        == 3 + 6
    )


def test_a_single_log_outside_any_queue_does_not_look_objects_up(count_queries: Any) -> None:
    train, station = make_train(), make_station()
    ContentType.objects.get_for_models(Train, Station)
    with count_queries() as log:
        actrack.log(train, "passed", targets=station)
    # One statement: the write (on PostgreSQL, maybe the call of actrack_log_action()).
    assert len(log) == 1
    assert not [
        sql
        for sql in log.statements
        if sql.upper().startswith("SELECT") and logfunction.FUNCTION not in sql
    ]


def test_a_queue_about_more_objects_than_a_statement_takes(count_queries: Any) -> None:
    """SQLite statements take at most 999 parameters in Django: the lookups are split."""
    train = make_train()
    stations = Station.objects.bulk_create(Station(name=f"s{n}") for n in range(1200))
    ContentType.objects.get_for_models(Train, Station, DeletedItem)
    with actrack.batch():
        for station in stations:
            actrack.log(train, "passed", targets=station, grouping_delay=-1)
        _delete_elsewhere(stations[-1])
        with count_queries() as log:
            actrack.save_queue()
    limit = connection.features.max_query_params
    station_lookups = -(-1200 // (limit - 1)) if limit else 1
    reads = [sql for sql in log.statements if sql.upper().startswith("SELECT")]
    assert len(reads) == 1 + station_lookups + 1, reads  # train, stations, deleted items
    item = DeletedItem.objects.get()
    deleted_ct = ContentType.objects.get_for_model(DeletedItem)
    assert ActionTarget.objects.filter(obj_ct=deleted_ct, obj_key=str(item.pk)).count() == 1
    assert ActionTarget.objects.count() == 1200


# -- content types: no database constraint, Django's cascade ----------------------------------


def _foreign_keys(table: str) -> dict[str, tuple[str, str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        info["columns"][0]: info["foreign_key"]
        for info in constraints.values()
        if info["foreign_key"]
    }


def test_content_type_columns_have_no_database_constraint() -> None:
    """Checking them cost PostgreSQL a fifth of bulk logging; link rows still
    reference their action."""
    assert "actor_ct_id" not in _foreign_keys("actrack_action")
    for table in ("actrack_action_targets", "actrack_action_related"):
        keys = _foreign_keys(table)
        assert "obj_ct_id" not in keys
        assert keys["action_id"] == ("actrack_action", "id")


def test_deleting_a_content_type_deletes_its_actions_and_link_rows() -> None:
    ghost = ContentType.objects.create(app_label="gone", model="ghost")
    station = make_station()
    by_ghost = Action.objects.create(actor_ct=ghost, actor_key="1", verb="haunted", level=20)
    about_ghost = _log(station, "closed", targets=[make_train()], related=[make_line()])
    for link in (ActionTarget, ActionRelated):
        link.objects.create(
            action=about_ghost, obj_ct=ghost, obj_key="1", timestamp=about_ghost.timestamp
        )
    ghost_id = ghost.pk
    ghost.delete()
    assert not Action.objects.filter(pk=by_ghost.pk).exists()
    assert Action.objects.filter(pk=about_ghost.pk).exists()  # its other links stay
    for link in (ActionTarget, ActionRelated):
        assert not link.objects.filter(obj_ct_id=ghost_id).exists()
        assert link.objects.filter(action=about_ghost).count() == 1
