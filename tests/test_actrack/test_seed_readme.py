"""Every example of the original README's Quick start, accessors and advanced usage.

Each test quotes the example it covers; they must keep working as written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.timezone import now

import actrack
from actrack import ActionHandler
from actrack.accessors import ActionsDescriptor, TrackersDescriptor
from actrack.models import Action, Tracker
from tests.conftest import make_line, make_station, make_train, make_user
from tests.demo.models import Station, Train

pytestmark = pytest.mark.django_db


def test_log_had_lunch() -> None:
    # actrack.log(user, 'had_lunch')
    user = make_user()
    actrack.log(user, "had_lunch")
    action = Action.objects.get()
    assert (action.actor, action.verb) == (user, "had_lunch")


def test_log_left_station_with_targets_and_related() -> None:
    # actrack.log(train, 'left_station', targets=[from], related=[destination])
    train, from_, destination = make_train(), make_station(), make_station()
    actrack.log(train, "left_station", targets=[from_], related=[destination])
    action = Action.objects.get()
    assert list(action.targets.all()) == [from_]
    assert list(action.related.all()) == [destination]


def test_log_arrived_with_data() -> None:
    # actrack.log(train, 'arrived', time=now())
    train = make_train()
    moment = now()
    actrack.log(train, "arrived", time=moment)
    # Stored as Django's JSON encoder writes datetimes: ISO 8601, milliseconds.
    assert Action.objects.get().data == {"time": DjangoJSONEncoder().default(moment)}


def test_track_user_train() -> None:
    # actrack.track(user, train)
    user, train = make_user(), make_train()
    actrack.track(user, train)
    assert Tracker.objects.get().tracked == train


def test_connect_as_decorator() -> None:
    # @actrack.connect
    # class MyModel(models.Model): ...
    assert isinstance(Train.__dict__["actions"], ActionsDescriptor)
    assert isinstance(Train.__dict__["trackers"], TrackersDescriptor)


def test_connect_as_function() -> None:
    # actrack.connect(UserModel)
    user_model = get_user_model()
    assert actrack.connect(user_model) is user_model
    assert isinstance(user_model.__dict__["actions"], ActionsDescriptor)


def test_iterate_over_the_feed() -> None:
    # for action in user.actions.feed(): ...
    user, train = make_user(), make_train()
    actrack.track(user, train)
    actrack.log(train, "left_station")
    verbs = [action.verb for action in user.actions.feed()]
    assert verbs == ["left_station"]


@pytest.fixture
def world() -> dict[str, Any]:
    user, train, station, line = make_user(), make_train(), make_station(), make_line()
    actrack.log(train, "left_station", targets=[station], related=[line], grouping_delay=-1)
    actrack.log(station, "announced", targets=[train], grouping_delay=-1)
    actrack.log(line, "rerouted", related=[train], grouping_delay=-1)
    actrack.track(user, train, actor_only=False)
    actrack.track(user, Station)
    return {"user": user, "train": train, "station": station, "line": line}


def test_instance_actions_as_actor(world: dict[str, Any]) -> None:
    # instance.actions.as_actor(**kw)
    assert [a.verb for a in world["train"].actions.as_actor()] == ["left_station"]
    assert list(world["train"].actions.as_actor(verb="other")) == []


def test_instance_actions_as_target(world: dict[str, Any]) -> None:
    # instance.actions.as_target(**kw)
    assert [a.verb for a in world["train"].actions.as_target()] == ["announced"]


def test_instance_actions_as_related(world: dict[str, Any]) -> None:
    # instance.actions.as_related(**kw)
    assert [a.verb for a in world["train"].actions.as_related()] == ["rerouted"]


def test_instance_actions_all(world: dict[str, Any]) -> None:
    # instance.actions.all(): the three above combined
    assert [a.verb for a in world["train"].actions.all()] == [
        "rerouted",
        "announced",
        "left_station",
    ]


def test_instance_actions_feed(world: dict[str, Any]) -> None:
    # instance.actions.feed(**kw)
    feed = world["user"].actions.feed()
    assert [a.verb for a in feed] == ["rerouted", "announced", "left_station"]
    assert [a.verb for a in world["user"].actions.feed(verb="announced")] == ["announced"]


def test_instance_trackers_tracking(world: dict[str, Any]) -> None:
    # instance.trackers.tracking(**kw)
    assert [t.user for t in world["train"].trackers.tracking()] == [world["user"]]
    assert [t.tracked for t in world["station"].trackers.tracking()] == [Station]


def test_instance_trackers_users(world: dict[str, Any]) -> None:
    # instance.trackers.users(**kw)
    assert list(world["train"].trackers.users()) == [world["user"]]


def test_instance_trackers_owned(world: dict[str, Any]) -> None:
    # instance.trackers.owned(**kw)
    assert {t.tracked for t in world["user"].trackers.owned()} == {world["train"], Station}


def test_instance_trackers_tracked(world: dict[str, Any]) -> None:
    # instance.trackers.tracked(*models, **kw)
    assert world["user"].trackers.tracked() == {world["train"], Station}
    assert world["user"].trackers.tracked(Train) == {world["train"]}


def test_instance_trackers_all(world: dict[str, Any]) -> None:
    # instance.trackers.all()
    assert set(world["user"].trackers.all()) == set(world["user"].trackers.owned())
    assert set(world["train"].trackers.all()) == set(world["train"].trackers.tracking())


def test_log_timestamp_argument() -> None:
    # timestamp: the timestamp that should be recorded for the action
    stamp = timezone.now() - dt.timedelta(days=2)
    action = actrack.log(make_train(), "departed", timestamp=stamp)
    assert action is not None and action.timestamp == stamp


def test_log_grouping_delay_argument() -> None:
    # grouping_delay: merge with a similar action within that many seconds
    train = make_train()
    first = actrack.log(train, "departed", targets=make_station())
    actrack.log(train, "departed", targets=make_station(), grouping_delay=60)
    assert Action.objects.get() == first
    assert first is not None and first.targets.count() == 2


def test_track_log_actor_only_verbs_arguments() -> None:
    # track(..., log=True, actor_only=False, verbs=[...])
    user, train = make_user(), make_train()
    actrack.track(user, train, log=True, actor_only=False, verbs=["departed"])
    tracker = Tracker.objects.get()
    assert (tracker.actor_only, tracker.verbs) == (False, ["departed"])
    assert Action.objects.get().verb == "started tracking"


def test_untrack_verbs_argument() -> None:
    # untrack(..., verbs=[...]): removes those verbs; deletes when none remain
    user, train = make_user(), make_train()
    actrack.track(user, train, verbs=["departed", "arrived"])
    actrack.untrack(user, train, verbs=["departed"])
    assert Tracker.objects.get().verbs == ["arrived"]
    actrack.untrack(user, train, verbs=["arrived"])
    assert not Tracker.objects.exists()


class MyActionHandler(ActionHandler):
    verb = "my_action"

    def render(self, context: dict[str, Any]) -> str:
        return "I did that"

    def do_something(self) -> list[str]:
        return [str(t) for t in self.action.targets.all()]


def test_action_handler_example() -> None:
    # class MyActionHandler(ActionHandler): verb = 'my_action' ...
    station = make_station("Lyon")
    action = actrack.log(make_user(), "my_action", targets=station)
    assert action is not None
    assert isinstance(action.handler, MyActionHandler)
    assert action.render() == "I did that"
    assert action.handler.do_something() == ["Lyon"]
