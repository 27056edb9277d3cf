"""Multi-database: ``using=`` and database routers, with a second database "other".

Objects live in one database, and everything actrack writes or reads about them
must stay in that database: actions and their links, trackers, read state,
deleted items, feeds, grouping, pruning.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.utils import timezone

import actrack
from actrack.models import (
    Action,
    ActionRelated,
    ActionTarget,
    DeletedItem,
    ReadAction,
    ReadMark,
    Tracker,
)
from actrack.readstate import mark_all_read, unread_count
from tests.demo.models import Station, Train

pytestmark = pytest.mark.django_db(databases=["default", "other"])

OTHER = "other"
MODELS = (Action, ActionTarget, ActionRelated, Tracker, DeletedItem, ReadAction, ReadMark)


def counts(using: str) -> dict[str, int]:
    return {model.__name__: model.objects.using(using).count() for model in MODELS}


def nothing_in_default() -> None:
    assert set(counts("default").values()) == {0}, counts("default")


def user_in(using: str, name: str = "traveller", **fields: Any) -> Any:
    manager = get_user_model().objects.db_manager(using)
    return manager.create_user(username=name, password="pw", **fields)


class Twins:
    """The same primary keys in both databases: a station, a train and a user each."""

    def __init__(self) -> None:
        # Keys far above what the sequences hand out during a test.
        self.station = {db: Station.objects.using(db).create(pk=70001, name=db) for db in DBS}
        self.train = {db: Train.objects.using(db).create(pk=90001, name=db) for db in DBS}
        self.user = {db: user_in(db, pk=40001) for db in DBS}


DBS = ("default", OTHER)


# --- writes -----------------------------------------------------------------------------------


def test_log_with_using_writes_the_action_and_its_links_there() -> None:
    station = Station.objects.using(OTHER).create(name="Elsewhere")
    train = Train.objects.using(OTHER).create(name="Far")
    action = actrack.log(train, "passed", targets=station, related=station, using=OTHER)
    assert action is not None and action._state.db == OTHER
    assert counts(OTHER) | {"Tracker": 0} == {
        "Action": 1,
        "ActionTarget": 1,
        "ActionRelated": 1,
        "Tracker": 0,
        "DeletedItem": 0,
        "ReadAction": 0,
        "ReadMark": 0,
    }
    nothing_in_default()
    saved = Action.objects.using(OTHER).get()
    assert saved.render().startswith("Far passed Elsewhere in relation to Elsewhere")


def test_queued_actions_are_written_to_their_own_database() -> None:
    twins = Twins()
    with actrack.batch():
        for db in DBS:
            actrack.log(twins.train[db], "passed", targets=twins.station[db], using=db, db=db)
    for db in DBS:
        action = Action.objects.using(db).get()
        assert action.data == {"db": db}
        assert ActionTarget.objects.using(db).get().action_id == action.pk


def test_grouping_with_saved_actions_looks_in_the_same_database() -> None:
    twins = Twins()
    other_station = Station.objects.using(OTHER).create(name="second")
    for db in DBS:
        actrack.log(twins.train[db], "served", related=twins.station[db], using=db, n=[1])
    # Grouped into the saved action of "other" (delay 60 s), not into default's.
    actrack.log(
        twins.train[OTHER],
        "served",
        targets=other_station,
        related=twins.station[OTHER],
        using=OTHER,
        grouping_delay=60,
        n=[2],
    )
    assert Action.objects.using(OTHER).get().data == {"n": [1, 2]}
    assert Action.objects.using("default").get().data == {"n": [1]}


def test_track_and_untrack_with_using() -> None:
    twins = Twins()
    user = twins.user[OTHER]
    actrack.track(user, [twins.train[OTHER], Station], verbs=["passed"], using=OTHER, log=True)
    assert Tracker.objects.using(OTHER).count() == 2
    assert Action.objects.using(OTHER).get().verb == "started tracking"
    assert Tracker.objects.using("default").count() == 0
    assert actrack.untrack(user, Station, using=OTHER) == 1
    assert actrack.untrack(user, twins.train[OTHER], verbs=["passed"], using=OTHER) == 1
    assert Tracker.objects.using(OTHER).count() == 0
    assert Action.objects.using("default").count() == 0


def test_read_state_with_using() -> None:
    twins = Twins()
    user = twins.user[OTHER]
    actrack.track(user, twins.train[OTHER], using=OTHER)
    Tracker.objects.using(OTHER).update(created="2000-01-01T00:00:00Z")
    first = actrack.log(twins.train[OTHER], "passed", using=OTHER)
    second = actrack.log(twins.train[OTHER], "stopped", using=OTHER)
    assert first is not None and second is not None
    assert unread_count(user, using=OTHER) == 2
    assert first.mark_read_for(user, force=True)
    assert ReadAction.objects.using(OTHER).count() == 1
    mark_all_read(user, using=OTHER)
    assert ReadMark.objects.using(OTHER).get().last_read_id == second.pk
    assert unread_count(user, using=OTHER) == 0
    assert ReadAction.objects.count() + ReadMark.objects.count() == 0


# --- deletion ---------------------------------------------------------------------------------


def test_deleting_an_object_in_one_database_repoints_references_there_only() -> None:
    twins = Twins()
    for db in DBS:
        actrack.log(twins.train[db], "stopped", targets=twins.station[db], using=db)
        actrack.log(twins.station[db], "closed", using=db)
        actrack.track(twins.user[db], twins.station[db], using=db)
    twins.station[OTHER].delete()

    item = DeletedItem.objects.using(OTHER).get()
    assert item.description == OTHER  # the station's name in "other"
    assert (item.ctype, item.object_key) == (ContentType.objects.get_for_model(Station), "70001")
    ref = (ContentType.objects.get_for_model(DeletedItem).pk, str(item.pk))
    link = ActionTarget.objects.using(OTHER).get()
    assert (link.obj_ct_id, link.obj_key) == ref
    closed = Action.objects.using(OTHER).get(verb="closed")
    assert (closed.actor_ct_id, closed.actor_key) == ref
    tracker = Tracker.objects.using(OTHER).get()
    assert (tracker.tracked_ct_id, tracker.tracked_key) == ref
    # default: untouched, still about station 70001.
    assert DeletedItem.objects.using("default").count() == 0
    assert ActionTarget.objects.using("default").get().obj_key == "70001"
    assert Action.objects.using("default").get(verb="closed").actor_key == "70001"
    assert Tracker.objects.using("default").get().tracked_key == "70001"


def test_queue_checks_deleted_objects_in_their_own_database() -> None:
    """When a queue is written, each object is looked up where it lives: a station of
    "other" with no twin in default is not taken for deleted, and one deleted (by
    another request) while queued gets its deleted item in "other"."""
    station = Station.objects.using(OTHER).create(pk=70002, name="only there")
    gone = Station.objects.using(OTHER).create(pk=70003, name="gone")
    twins = Twins()
    with actrack.batch():
        actrack.log(twins.train[OTHER], "stopped", targets=[station, gone], using=OTHER)
        contextvars.Context().run(gone.delete)
        twins.station["default"].delete()  # a twin in the other database: no effect
    nothing_in_default()
    item = DeletedItem.objects.using(OTHER).get()
    assert (item.object_key, item.description) == ("70003", "gone")
    links = ActionTarget.objects.using(OTHER).values_list("obj_ct", "obj_key")
    assert set(links) == {
        (ContentType.objects.get_for_model(Station).pk, "70002"),
        (ContentType.objects.get_for_model(DeletedItem).pk, str(item.pk)),
    }


def test_get_del_item_uses_the_instance_database() -> None:
    station = Station.objects.using(OTHER).create(name="gone")
    item = actrack.deletion.get_del_item(station)
    assert item._state.db == OTHER
    assert DeletedItem.objects.using(OTHER).get() == item
    assert DeletedItem.objects.using("default").count() == 0


def test_prune_with_database_option() -> None:
    twins = Twins()
    for db in DBS:
        actrack.log(twins.train[db], "old", using=db, timestamp=_days_ago(90))
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "actrack_prune", "--older-than-days", "30", "--database", OTHER, stdout=out, stderr=err
    )
    assert Action.objects.using(OTHER).count() == 0
    assert Action.objects.using("default").count() == 1
    assert "pruned 1/1" in err.getvalue()


def _days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


# --- routers ---------------------------------------------------------------------------------


class EverythingElsewhere:
    """Routes every model to "other"."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return OTHER

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return OTHER

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


ROUTERS = [f"{__name__}.EverythingElsewhere"]


@override_settings(DATABASE_ROUTERS=ROUTERS)
def test_router_decides_where_log_track_and_read_state_go() -> None:
    station = Station.objects.create(name="routed")
    user = get_user_model().objects.create_user(username="routed", password="pw")
    assert station._state.db == OTHER and user._state.db == OTHER
    actrack.track(user, station)
    Tracker.objects.update(created="2000-01-01T00:00:00Z")
    action = actrack.log(station, "opened")
    assert action is not None and action._state.db == OTHER
    assert unread_count(user) == 1
    mark_all_read(user)
    station.delete()
    other = counts(OTHER)
    assert (other["Action"], other["Tracker"], other["ReadMark"], other["DeletedItem"]) == (
        1,
        1,
        1,
        1,
    )
    nothing_in_default()


# --- reads --------------------------------------------------------------------------------


def test_feed_on_another_database_uses_the_trackers_there() -> None:
    twins = Twins()
    user = twins.user[OTHER]
    actrack.track(user, twins.train[OTHER], using=OTHER)
    action = actrack.log(twins.train[OTHER], "passed", using=OTHER)
    assert action is not None
    feed = Action.objects.using(OTHER).feed(user)
    assert list(feed) == [action]
    assert feed.page().actions == [action]


def follow_in_other(twins: Twins) -> list[Action]:
    """The user of "other" follows the train there (every role, since long ago); three
    actions about it in "other", newest first. In default, the twin user (same key)
    follows the twin train only for a verb that never happens and has read everything:
    anything read from default instead of "other" finds no feed and nothing unread."""
    actrack.track(twins.user[OTHER], twins.train[OTHER], actor_only=False, using=OTHER)
    Tracker.objects.using(OTHER).update(created=_days_ago(365))
    actrack.track(twins.user["default"], twins.train["default"], verbs=["never"])
    ReadMark.objects.using("default").create(user=twins.user["default"], last_read_id=10**9)
    actions: list[Action] = []
    for day, verb in enumerate(("announced", "departed", "arrived")):
        action = actrack.log(
            twins.station[OTHER],
            verb,
            targets=twins.train[OTHER],
            timestamp=_days_ago(3 - day),
            using=OTHER,
            grouping_delay=-1,
        )
        assert action is not None
        actions.append(action)
    return actions[::-1]


def test_feed_on_another_database_ignores_the_trackers_in_default() -> None:
    twins = Twins()
    newest, middle, oldest = follow_in_other(twins)
    user = twins.user[OTHER]
    feed = Action.objects.using(OTHER).feed(user)
    assert list(feed) == [newest, middle, oldest]
    assert all(action._state.db == OTHER for action in feed)
    assert list(Action.objects.using(OTHER).feed(user, verb="departed")) == [middle]
    assert list(Action.objects.using(OTHER).with_verbs("arrived").feed(user)) == [newest]
    assert list(Action.objects.using("default").feed(twins.user["default"])) == []


def test_feed_pages_on_another_database_follow_their_cursor() -> None:
    twins = Twins()
    newest, middle, oldest = follow_in_other(twins)
    feed = Action.objects.using(OTHER).feed(twins.user[OTHER])
    first = feed.page(size=2)
    assert first.actions == [newest, middle] and first.next_cursor is not None
    second = feed.page(first.next_cursor, size=2)
    assert (second.actions, second.next_cursor) == ([oldest], None)
    assert all(action._state.db == OTHER for action in first.actions + second.actions)


def test_a_page_on_another_database_is_compiled_for_its_connection(monkeypatch: Any) -> None:
    """The fan-out branches of page() are SQL for the queryset's connection, not the default
    one (they differ when the databases run different backends or versions)."""
    twins = Twins()
    newest, middle, oldest = follow_in_other(twins)
    feed = Action.objects.using(OTHER).feed(twins.user[OTHER])

    def not_here(name: str) -> str:
        raise AssertionError(f"{name!r} quoted for the default connection")

    monkeypatch.setattr(connections["default"].ops, "quote_name", not_here)
    first = feed.page(size=2)
    assert first.actions == [newest, middle]
    assert feed.page(first.next_cursor, size=2).actions == [oldest]


def test_unread_feed_on_another_database_reads_its_read_state() -> None:
    twins = Twins()
    newest, middle, oldest = follow_in_other(twins)
    user = twins.user[OTHER]
    actions = Action.objects.using(OTHER)
    assert list(actions.feed(user, unread=True)) == [newest, middle, oldest]
    assert middle.mark_read_for(user, force=True)
    assert list(actions.feed(user, unread=True)) == [newest, oldest]
    assert list(actions.newest_first().unread_for(user)) == [newest, oldest]
    assert actions.feed(user, unread=True).page(size=1).actions == [newest]
    mark_all_read(user, using=OTHER)
    assert list(actions.feed(user, unread=True)) == []
    assert list(actions.unread_for(user)) == []


def test_unread_count_and_mark_all_read_follow_the_users_database() -> None:
    """Without ``using``: the user's own database (no router has an opinion here)."""
    twins = Twins()
    follow_in_other(twins)
    user = twins.user[OTHER]
    assert unread_count(user) == 3
    assert unread_count(user, cap=2) == 2
    assert unread_count(twins.user["default"]) == 0
    mark_all_read(user)
    assert unread_count(user) == 0
    assert ReadMark.objects.using(OTHER).get().user_id == user.pk
    assert ReadMark.objects.using("default").get().last_read_id == 10**9  # untouched


def test_unread_flags_and_rendering_on_another_database() -> None:
    twins = Twins()
    newest, middle, oldest = follow_in_other(twins)
    user = twins.user[OTHER]
    assert newest.is_unread_for(user)
    assert Action.bulk_is_unread_for(user, [newest, middle, oldest]) == [True, True, True]
    with override_settings(ACTRACK={"AUTO_READ": False}):
        assert newest.render(user).startswith("other arrived other")  # objects of "other"
        assert ReadAction.objects.using(OTHER).count() == 0
    assert Action.bulk_render([newest, middle], user=user)  # AUTO_READ: marks them read
    assert Action.bulk_is_unread_for(user, [newest, middle, oldest]) == [False, False, True]
    assert sorted(ReadAction.objects.using(OTHER).values_list("action_id", flat=True)) == sorted(
        [newest.pk, middle.pk]
    )
    assert oldest.mark_read_for(user) and not oldest.is_unread_for(user)
    assert ReadAction.objects.using(OTHER).count() == 3
    assert ReadAction.objects.using("default").count() == 0


def test_routers_choose_where_unread_count_and_mark_all_read_go() -> None:
    """Routers come first, as for Django's related managers: a user loaded from default
    has its read state in "other" when the routers say so."""
    twins = Twins()
    follow_in_other(twins)
    user = twins.user["default"]
    with override_settings(DATABASE_ROUTERS=ROUTERS):
        assert unread_count(user) == 3
        mark_all_read(user)
    assert unread_count(user, using=OTHER) == 0
    assert ReadMark.objects.using(OTHER).count() == 1
    assert ReadMark.objects.using("default").get().last_read_id == 10**9


def test_feed_on_another_database_reads_nothing_from_default() -> None:
    """What works today: with the same trackers in both databases, each feed reads its own
    actions (the trackers' rows, not only their ids, differ between databases)."""
    twins = Twins()
    for db in DBS:
        actrack.track(twins.user[db], twins.train[db], using=db)
        actrack.log(twins.train[db], "passed", using=db, db=db)
    for db in DBS:
        feed = list(Action.objects.using(db).feed(twins.user[db]))
        assert [action.data["db"] for action in feed] == [db]
        assert all(action._state.db == db for action in feed)


def test_accessors_of_an_instance_read_its_database() -> None:
    twins = Twins()
    for db in DBS:
        actrack.log(twins.train[db], "passed", targets=twins.station[db], using=db, db=db)
        actrack.track(twins.user[db], twins.train[db], using=db)
    for db in DBS:
        assert [a.data["db"] for a in twins.train[db].actions.all()] == [db]
        assert [a.data["db"] for a in twins.station[db].actions.as_target()] == [db]
        assert [a.data["db"] for a in twins.user[db].actions.feed()] == [db]
        assert [t._state.db for t in twins.user[db].trackers.owned()] == [db]


def scene_in_both(twins: Twins) -> dict[str, list[Action]]:
    """In each database, about the train: it departs (actor), a station announces it
    (related), it is cleaned (target); the user follows it (every role) since long ago.
    Each action's data names its database."""
    actions: dict[str, list[Action]] = {}
    for db in DBS:
        train, station = twins.train[db], twins.station[db]
        logged = [
            actrack.log(train, "departed", targets=station, timestamp=_days_ago(3), using=db),
            actrack.log(station, "announced", related=train, timestamp=_days_ago(2), using=db),
            actrack.log(None, "cleaned", targets=train, timestamp=_days_ago(1), using=db),
        ]
        for action in logged:
            assert action is not None
            action.data = {"db": db}
            action.save(using=db, update_fields=["data"])
        actions[db] = logged[::-1]  # newest first
        actrack.track(twins.user[db], train, actor_only=False, using=db)
        Tracker.objects.using(db).update(created=_days_ago(365))
    return actions


def dbs_of(actions: Any) -> set[str]:
    """Where ``actions`` were read from, and where their data says they were written."""
    return {action._state.db for action in actions} | {action.data["db"] for action in actions}


def test_action_accessors_of_an_instance_read_its_database() -> None:
    twins = Twins()
    actions = scene_in_both(twins)
    for db in DBS:
        train, user = twins.train[db], twins.user[db]
        cleaned, announced, departed = actions[db]
        assert list(train.actions.all()) == [cleaned, announced, departed]
        assert list(train.actions.all(verb="departed")) == [departed]
        assert list(train.actions.filter(verb="cleaned")) == [cleaned]
        assert train.actions.count() == 3
        assert list(train.actions.as_actor()) == [departed]
        assert list(train.actions.as_target()) == [cleaned]
        assert list(train.actions.as_related()) == [announced]
        assert list(user.actions.feed()) == [cleaned, announced, departed]
        assert list(user.actions.feed(unread=True)) == [cleaned, announced, departed]
        assert list(user.actions.feed(verb="announced")) == [announced]
        page = train.actions.all().page(size=2)
        assert page.actions == [cleaned, announced]
        assert train.actions.all().page(page.next_cursor, size=2).actions == [departed]
        assert user.actions.feed().page(size=3).actions == [cleaned, announced, departed]
        for read in (train.actions.all(), train.actions.as_actor(), user.actions.feed()):
            assert dbs_of(read) == {db}


def test_tracker_accessors_of_an_instance_read_their_database() -> None:
    twins = Twins()
    for db in DBS:
        actrack.track(twins.user[db], [twins.train[db], Station], verbs=["departed"], using=db)
    fan = user_in("default", "fan")  # a second follower, in default only
    actrack.track(fan, twins.train["default"])
    for db, followers in (("default", 2), (OTHER, 1)):
        train, station, user = twins.train[db], twins.station[db], twins.user[db]
        assert {t._state.db for t in train.trackers.all()} == {db}
        assert train.trackers.all().count() == followers
        assert train.trackers.tracking().count() == followers
        assert train.trackers.tracking(user=user).get().verbs == ["departed"]
        users = list(train.trackers.users())
        assert len(users) == followers and {u._state.db for u in users} == {db}
        assert list(train.trackers.users(username="traveller")) == [user]
        assert station.trackers.tracking().get().tracked is Station
        owned = list(user.trackers.owned())
        assert len(owned) == 2 and {t._state.db for t in owned} == {db}
        assert user.trackers.owned(tracked_key="").get().tracked is Station
        assert user.trackers.all().count() == 2
        tracked = user.trackers.tracked()
        assert tracked == {train, Station}
        (instance,) = user.trackers.tracked(Train, verbs=["departed"])
        assert (instance.name, instance._state.db) == (db, db)  # loaded from the same database
        assert user.trackers.tracked(verbs=["arrived"]) == set()


def test_an_explicit_database_wins_over_the_instances() -> None:
    twins = Twins()
    actions = scene_in_both(twins)
    train, user = twins.train[OTHER], twins.user[OTHER]
    assert list(train.actions.db_manager("default").all()) == actions["default"]
    assert dbs_of(train.actions.db_manager("default").as_target()) == {"default"}
    assert dbs_of(train.actions.all().using("default")) == {"default"}
    assert dbs_of(user.actions.db_manager("default").feed()) == {"default"}
    owned = user.trackers.db_manager("default").owned()
    assert {t._state.db for t in owned} == {"default"}
    users = train.trackers.db_manager("default").users()
    assert {u._state.db for u in users} == {"default"}


class ActrackElsewhere:
    """Routes actrack's models to "other"; no opinion on the others."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return OTHER if model._meta.app_label == "actrack" else None

    db_for_write = db_for_read


def test_routers_choose_the_accessors_database_before_the_instance() -> None:
    """As for Django's related managers: the routers decide first, with the instance as
    a hint; the instance's own database is the fallback."""
    twins = Twins()
    actions = scene_in_both(twins)
    train, user = twins.train["default"], twins.user["default"]
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.ActrackElsewhere"]):
        assert list(train.actions.all()) == actions[OTHER]
        assert dbs_of(train.actions.as_related()) == {OTHER}
        assert dbs_of(user.actions.feed()) == {OTHER}
        assert {t._state.db for t in user.trackers.owned()} == {OTHER}
        assert {u._state.db for u in train.trackers.users()} == {OTHER}
        assert {obj._state.db for obj in user.trackers.tracked()} == {OTHER}
        assert list(train.actions.db_manager("default").all()) == actions["default"]


def test_writes_through_the_accessors_go_to_the_instances_database() -> None:
    twins = Twins()
    scene_in_both(twins)
    assert twins.train[OTHER].actions.filter(verb="departed").update(level=50) == 1
    assert Action.objects.using(OTHER).get(verb="departed").level == 50
    assert Action.objects.using("default").get(verb="departed").level != 50
    twins.user[OTHER].trackers.owned().delete()
    assert Tracker.objects.using(OTHER).count() == 0
    assert Tracker.objects.using("default").count() == 1
