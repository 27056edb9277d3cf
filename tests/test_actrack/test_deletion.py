"""Deleted items: history survives deletion, set-based and inside the deleting transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete

import actrack
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
