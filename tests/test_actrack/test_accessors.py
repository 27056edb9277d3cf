"""The ``actions`` and ``trackers`` accessors installed by ``connect``."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

import actrack
from actrack.accessors import ActionsDescriptor
from tests.conftest import log as _log
from tests.conftest import make_line, make_note, make_station, make_train, make_user
from tests.demo.models import Line, Note, Station, Train

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene() -> dict[str, Any]:
    train, station, line = make_train(), make_station(), make_line()
    return {
        "train": train,
        "station": station,
        "line": line,
        "a": _log(train, "departed", targets=station),
        "b": _log(station, "announced", targets=train, related=line),
        "c": _log(None, "cleaned", related=[train, station]),
        "d": _log(train, "arrived", targets=[station, line]),
    }


def test_as_actor_as_target_as_related(scene: dict[str, Any]) -> None:
    train = scene["train"]
    assert list(train.actions.as_actor()) == [scene["d"], scene["a"]]
    assert list(train.actions.as_target()) == [scene["b"]]
    assert list(train.actions.as_related()) == [scene["c"]]
    assert list(train.actions.as_actor(verb="arrived")) == [scene["d"]]


def test_all_is_every_role_once_newest_first(scene: dict[str, Any]) -> None:
    assert list(scene["train"].actions.all()) == [scene["d"], scene["c"], scene["b"], scene["a"]]
    assert list(scene["station"].actions.all()) == [scene["d"], scene["c"], scene["b"], scene["a"]]
    assert list(scene["line"].actions.all()) == [scene["d"], scene["b"]]
    assert list(scene["station"].actions.all(verb="cleaned")) == [scene["c"]]
    assert scene["line"].actions.count() == 2
    assert list(scene["line"].actions.filter(verb="announced")) == [scene["b"]]


def test_accessors_are_per_instance(scene: dict[str, Any]) -> None:
    assert list(make_train().actions.all()) == []


def test_trackers_tracking_users_owned_all() -> None:
    alice, bob, train, station = make_user(), make_user(), make_train(), make_station()
    t1 = actrack.track(alice, train)
    t2 = actrack.track(bob, Train)
    t3 = actrack.track(alice, station)
    t4 = actrack.track(bob, alice)
    assert set(train.trackers.tracking()) == {t1, t2}
    assert set(train.trackers.users()) == {alice, bob}
    assert list(train.trackers.users(username=alice.username)) == [alice]
    assert set(alice.trackers.owned()) == {t1, t3}
    assert set(alice.trackers.tracking()) == {t4}
    assert set(alice.trackers.all()) == {t1, t3, t4}
    assert set(train.trackers.all()) == {t1, t2}
    assert list(train.trackers.tracking(user=bob)) == [t2]


def test_trackers_tracked_returns_objects_and_models() -> None:
    user, train, station = make_user(), make_train(), make_station()
    actrack.track(user, [train, station], verbs=["departed"])
    actrack.track(user, Line, verbs=["closed"])
    actrack.track(user, Station)
    assert user.trackers.tracked() == {train, station, Line, Station}
    assert user.trackers.tracked(Station) == {station, Station}
    assert user.trackers.tracked(verbs=["closed"]) == {Line, Station}
    assert user.trackers.tracked(Train, Line, verbs=["departed"]) == {train}


def test_tracked_skips_objects_that_no_longer_exist() -> None:
    user, note = make_user(), make_note()
    actrack.track(user, note)  # Note is not connected: no deleted-item handling
    note.delete()
    assert user.trackers.tracked() == set()


def test_user_only_methods_raise_type_error_elsewhere() -> None:
    train = make_train()
    with pytest.raises(TypeError):
        train.trackers.owned()
    with pytest.raises(TypeError):
        train.trackers.tracked()
    with pytest.raises(TypeError):
        train.actions.feed()


def test_assigning_an_accessor_is_refused() -> None:
    train = make_train()
    with pytest.raises(AttributeError, match="cannot be assigned"):
        train.actions = []
    with pytest.raises(AttributeError, match="cannot be assigned"):
        train.trackers = None
    assert isinstance(Train.actions, ActionsDescriptor)


def test_only_connected_models_get_accessors() -> None:
    assert not hasattr(make_note(), "actions")
    assert not hasattr(Note, "trackers")


def test_connect_rejects_non_models() -> None:
    with pytest.raises(TypeError):
        actrack.connect(object)
    with pytest.raises(TypeError):
        actrack.connect("tests.demo.Train")


def test_accessor_names_follow_the_settings() -> None:
    train = make_train()
    _log(train, "departed")
    with override_settings(ACTRACK={"ACTIONS_ATTR": "history", "TRACKERS_ATTR": "followers"}):
        assert [a.verb for a in train.history.all()] == ["departed"]
        assert list(train.followers.all()) == []
        assert not hasattr(train, "actions")
    assert [a.verb for a in train.actions.all()] == ["departed"]
    assert not hasattr(train, "history")


@isolate_apps("tests.demo")
def test_connect_as_decorator_with_arguments_returns_the_model() -> None:
    from actrack.registry import _connected, _installed_names, connection_for

    class Depot(models.Model):
        class Meta:
            app_label = "demo"

    try:
        assert actrack.connect(use_del_items=False)(Depot) is Depot
        assert isinstance(Depot.__dict__["actions"], ActionsDescriptor)
        connection = connection_for(Depot)
        assert connection is not None and connection.use_del_items is False
    finally:
        _connected.pop(Depot, None)
        _installed_names.pop(Depot, None)


def test_station_accessor_from_a_fresh_query(scene: dict[str, Any]) -> None:
    station = Station.objects.get(pk=scene["station"].pk)
    assert station.actions.as_actor().get() == scene["b"]
