"""Feeds: every tracker kind, own actions, level floor, each action once, no writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

import actrack
from actrack.models import Action, TempTracker
from tests.conftest import log as _log
from tests.conftest import make_line, make_station, make_train, make_user
from tests.demo.models import Station, Train

pytestmark = pytest.mark.django_db


def test_actor_only_tracker_matches_actions_of_the_object_as_actor() -> None:
    user, train, other = make_user(), make_train(), make_train()
    as_actor = _log(train, "departed")
    _log(other, "departed", targets=train)
    _log(None, "cleaned", related=train)
    actrack.track(user, train)
    assert list(user.actions.feed()) == [as_actor]


def test_full_tracker_matches_actor_targets_and_related() -> None:
    user, train, other = make_user(), make_train(), make_train()
    a = _log(train, "departed")
    b = _log(other, "overtook", targets=train)
    c = _log(None, "cleaned", related=[make_station(), train])
    _log(other, "departed")
    actrack.track(user, train, actor_only=False)
    assert list(user.actions.feed()) == [c, b, a]


def test_model_tracker_matches_every_instance() -> None:
    user = make_user()
    a = _log(make_train(), "departed")
    b = _log(make_train(), "arrived")
    _log(make_station(), "opened", targets=make_train())
    actrack.track(user, Train)
    assert list(user.actions.feed()) == [b, a]
    actrack.track(user, Train, actor_only=False)
    assert len(user.actions.feed()) == 3


def test_verbs_restrict_a_tracker() -> None:
    user, train = make_user(), make_train()
    departed = _log(train, "departed")
    _log(train, "arrived")
    actrack.track(user, train, verbs=["departed"])
    assert list(user.actions.feed()) == [departed]


def test_trackers_with_different_verbs_combine() -> None:
    user, train, station = make_user(), make_train(), make_station()
    a = _log(train, "departed")
    _log(train, "arrived")
    c = _log(station, "closed")
    _log(station, "opened")
    actrack.track(user, train, verbs=["departed"])
    actrack.track(user, Station, verbs=["closed"])
    assert list(user.actions.feed()) == [c, a]


def test_own_actions_are_excluded_unless_asked() -> None:
    user = make_user()
    own = _log(user, "commented", targets=make_train())
    actrack.track(user, user)
    assert list(user.actions.feed()) == []
    assert list(user.actions.feed(include_own=True)) == [own]
    # The same through the feed engine's page.
    assert user.actions.feed().page().actions == []
    assert user.actions.feed(include_own=True).page().actions == [own]


def test_actions_without_actor_are_not_taken_for_the_users_own() -> None:
    user, train = make_user(), make_train()
    system = actrack.log(None, "cleaned", targets=train)
    other = _log(make_user(), "boarded", targets=train)
    actrack.track(user, train, actor_only=False)
    assert list(user.actions.feed()) == [other, system]
    assert user.actions.feed().page().actions == [other, system]


def test_actions_below_readable_level_are_hidden_and_floor_cannot_be_lowered() -> None:
    user, train = make_user(), make_train()
    info = _log(train, "departed")
    _log(train, "checked", level=actrack.level.DEBUG)
    warning = _log(train, "delayed", level="WARNING")
    actrack.track(user, train)
    assert list(user.actions.feed()) == [warning, info]
    assert list(user.actions.feed(level__gte=actrack.level.WARNING)) == [warning]
    assert list(user.actions.feed(level__gte=0)) == [warning, info]
    assert user.actions.feed().page().actions == [warning, info]
    assert user.actions.feed(level__gte=actrack.level.WARNING).page().actions == [warning]
    assert user.actions.feed(level__gte=0).page().actions == [warning, info]
    with override_settings(ACTRACK={"READABLE_LEVEL": 10}):
        assert len(user.actions.feed()) == 3
        assert len(user.actions.feed().page().actions) == 3


def test_an_action_matching_several_trackers_appears_once() -> None:
    user, train, station, line = make_user(), make_train(), make_station(), make_line()
    action = _log(train, "departed", targets=station, related=line)
    actrack.track(user, [train, station, line, Train, Station], actor_only=False)
    assert list(user.actions.feed()) == [action]


def test_feed_is_newest_first_by_timestamp_then_id() -> None:
    user, train = make_user(), make_train()
    now = timezone.now()
    old = _log(train, "a", timestamp=now - dt.timedelta(hours=2))
    new = _log(train, "b", timestamp=now)
    middle = _log(train, "c", timestamp=now - dt.timedelta(hours=1))
    tie = _log(train, "d", timestamp=now)
    actrack.track(user, train)
    assert list(user.actions.feed()) == [tie, new, middle, old]


def test_feed_filters_apply() -> None:
    user, train = make_user(), make_train()
    _log(train, "departed")
    arrived = _log(train, "arrived")
    actrack.track(user, train)
    assert list(user.actions.feed(verb="arrived")) == [arrived]
    assert list(user.actions.feed().with_verbs("arrived")) == [arrived]


def test_user_without_trackers_has_an_empty_feed() -> None:
    _log(make_train(), "departed")
    assert list(make_user().actions.feed()) == []


def test_reading_a_feed_never_writes(count_queries: Any) -> None:
    user, train = make_user(), make_train()
    for number in range(5):
        _log(train, "departed", targets=make_station(), n=number)
    actrack.track(user, [train, Station], actor_only=False)
    with count_queries() as log:
        actions = list(user.actions.feed())
        page = user.actions.feed().page(size=2)
        Action.bulk_render(page.actions)
        user.actions.feed().count()
    assert len(actions) == 5
    assert log.writes() == []


def test_feed_query_count_does_not_grow_with_trackers(count_queries: Any) -> None:
    user = make_user()
    trains = [make_train() for _ in range(30)]
    for train in trains:
        _log(train, "departed")
    actrack.track(user, trains[:3])
    list(user.actions.feed())  # caches the user's content type, whatever ran before
    with count_queries() as few:
        list(user.actions.feed())
    actrack.track(user, trains)
    with count_queries() as many:
        assert len(list(user.actions.feed())) == 30
    assert len(few) == len(many) == 2  # the trackers, then the actions


def test_temp_tracker_with_tracked_by() -> None:
    user, train, station = make_user(), make_train(), make_station()
    a = _log(train, "departed", targets=station)
    b = _log(station, "closed")
    assert list(Action.objects.tracked_by(TempTracker(user, train))) == [a]
    full = TempTracker(user, station, actor_only=False)
    assert list(Action.objects.tracked_by(full).newest_first()) == [b, a]
    model = TempTracker(user, Station, verbs=["closed"])
    assert list(Action.objects.tracked_by(model)) == [b]
    assert list(Action.objects.tracked_by([TempTracker(user, train), model], verb="closed")) == [b]
    assert list(Action.objects.tracked_by([])) == []


def test_tracked_by_saved_tracker() -> None:
    user, train = make_user(), make_train()
    action = _log(train, "departed")
    tracker = actrack.track(user, train)
    assert list(Action.objects.tracked_by(tracker)) == [action]


def test_feed_on_a_non_user_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="feed"):
        make_train().actions.feed()


def test_tracker_conditions_are_added_as_filter_would_add_them() -> None:
    """``tracked_by()``, ``for_object()`` and ``feed()`` add their condition without
    ``filter()``: the same SQL, and the same refusals of sliced or combined querysets."""
    from django.db import NotSupportedError

    from actrack.feedengine import TrackerMatch

    user, train, station = make_user(), make_train(), make_station()
    actrack.track(user, train, actor_only=False)
    _log(train, "left", targets=station)
    tracker = TempTracker(user, station, actor_only=False)
    expected = Action.objects.filter(TrackerMatch([tracker]))
    assert str(Action.objects.tracked_by(tracker).query) == str(expected.query)
    assert str(Action.objects.for_object(station).query) == str(expected.query)
    assert str(station.actions.all().query) == str(expected.newest_first().query)
    assert list(station.actions.all()) == list(expected) == list(Action.objects.all())
    assert [a.verb for a in user.actions.feed()] == ["left"]
    assert [a.verb for a in user.actions.feed(verb="left")] == ["left"]
    assert list(user.actions.feed(verb="other")) == []
    with pytest.raises(TypeError, match="slice"):
        Action.objects.all()[:1].tracked_by(tracker)
    with pytest.raises(NotSupportedError, match="union"):
        Action.objects.all().union(Action.objects.all()).for_object(station)
