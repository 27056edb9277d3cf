"""actrack.log(): what is stored, what is rejected, what it costs."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.utils import timezone
from django.utils.translation import gettext_lazy

import actrack
from actrack.models import Action, ActionRelated, ActionTarget
from actrack.signals import action_logged
from tests.conftest import (
    make_journey,
    make_line,
    make_station,
    make_train,
    make_user,
)
from tests.demo.models import Journey, Station, Train

pytestmark = pytest.mark.django_db


def test_log_writes_actor_verb_targets_related_and_data() -> None:
    train, origin, destination = make_train(), make_station(), make_station()
    action = actrack.log(train, "left_station", targets=[origin], related=[destination], speed=80)
    assert action is not None
    action = Action.objects.get(pk=action.pk)
    assert action.actor == train
    assert action.verb == "left_station"
    assert list(action.targets.all()) == [origin]
    assert list(action.related.all()) == [destination]
    assert action.data == {"speed": 80}
    assert action.level == actrack.level.INFO


def test_link_rows_copy_the_action_timestamp() -> None:
    stamp = timezone.now() - dt.timedelta(days=3)
    action = actrack.log(make_train(), "left", targets=make_station(), timestamp=stamp)
    assert action is not None
    link = ActionTarget.objects.get(action=action)
    assert link.timestamp == stamp == Action.objects.get(pk=action.pk).timestamp


def test_targets_accept_an_instance_an_iterable_or_none() -> None:
    a, b = make_station(), make_station()
    single = actrack.log(None, "closed", targets=a)
    many = actrack.log(None, "closed", targets=(s for s in [a, b, a]))
    nothing = actrack.log(None, "closed", targets=None, related=[])
    assert single is not None and many is not None and nothing is not None
    assert list(single.targets.all()) == [a]
    assert set(many.targets.all()) == {a, b}
    assert ActionTarget.objects.filter(action=many).count() == 2  # duplicates collapsed
    assert not ActionTarget.objects.filter(action=nothing).exists()
    assert not ActionRelated.objects.filter(action=nothing).exists()


def test_any_keyword_goes_into_data_including_reserved_looking_names() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    action = actrack.log(
        None,
        "noted",
        sender="s",
        signal="sig",
        data={"nested": [1]},
        at=moment,
        price=Decimal("1.5"),
    )
    assert action is not None
    stored = Action.objects.get(pk=action.pk).data
    assert stored == {
        "sender": "s",
        "signal": "sig",
        "data": {"nested": [1]},
        "at": "2024-05-01T12:30:00Z",
        "price": "1.5",
    }


def test_non_json_data_is_a_type_error_and_writes_nothing() -> None:
    with pytest.raises(TypeError, match="JSON-serialisable"):
        actrack.log(None, "noted", thing=object())
    with pytest.raises(TypeError):
        actrack.log(None, "noted", items={1, 2})
    assert Action.objects.count() == 0


def test_unsaved_instances_are_rejected() -> None:
    saved = make_station()
    with pytest.raises(ValueError, match="unsaved"):
        actrack.log(None, "closed", targets=[saved, Station(name="draft")])
    with pytest.raises(ValueError, match="unsaved"):
        actrack.log(Train(name="draft"), "departed")
    with pytest.raises(ValueError, match="unsaved"):
        # A UUID primary key is set before saving: still unsaved.
        actrack.log(None, "planned", related=Journey(train=make_train()))
    assert Action.objects.count() == 0


def test_model_classes_are_rejected_as_actor_target_or_related() -> None:
    with pytest.raises(ValueError, match="model class"):
        actrack.log(None, "closed", targets=Station)
    with pytest.raises(ValueError, match="model class"):
        actrack.log(None, "closed", related=[make_station(), Station])
    with pytest.raises(ValueError, match="class"):
        actrack.log(Train, "departed")
    assert Action.objects.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"targets": "not an object"}, TypeError),
        ({"targets": [None]}, TypeError),
        ({"related": 42}, TypeError),
        ({"timestamp": "yesterday"}, TypeError),
        ({"level": "NOT_A_LEVEL"}, ValueError),
        ({"level": 70000}, ValueError),
        ({"level": 1.5}, TypeError),
        ({"grouping_delay": -2}, ValueError),
        ({"grouping_delay": "soon"}, ValueError),
        ({"using": "nowhere"}, ValueError),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        actrack.log(make_train(), "departed", **kwargs)
    assert Action.objects.count() == 0


@pytest.mark.parametrize("verb", ["", "   ", "x" * 256, "bad\x00verb", 42, None])
def test_bad_verbs_are_rejected(verb: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        actrack.log(None, verb)
    assert Action.objects.count() == 0


def test_lazy_verb_is_stored_as_its_message_id() -> None:
    from django.utils import translation

    with translation.override("fr"):
        action = actrack.log(None, gettext_lazy("created"))
    assert action is not None
    assert Action.objects.get(pk=action.pk).verb == "created"


def test_uuid_keyed_objects_are_stored_and_read_back() -> None:
    journey = make_journey()
    action = actrack.log(journey, "delayed", targets=[journey], related=journey, minutes=5)
    assert action is not None
    action = Action.objects.get(pk=action.pk)
    assert action.actor_key == str(journey.pk) and len(action.actor_key) == 36
    assert action.actor == journey
    assert list(action.targets.all()) == [journey]
    assert list(Action.objects.as_target(journey)) == [action]


@override_settings(ACTRACK={"PK_MAXLENGTH": 20})
def test_key_longer_than_allowed_is_a_value_error_and_writes_nothing() -> None:
    journey = make_journey()  # 36-character key
    with pytest.raises(ValueError, match="PK_MAXLENGTH"):
        actrack.log(None, "delayed", targets=[make_station(), journey])
    with pytest.raises(ValueError, match="PK_MAXLENGTH"):
        actrack.log(journey, "delayed")
    assert Action.objects.count() == 0
    assert ActionTarget.objects.count() == 0


def test_timestamp_is_kept_and_naive_datetimes_made_aware() -> None:
    naive = dt.datetime(2023, 1, 2, 3, 4, 5)
    action = actrack.log(None, "archived", timestamp=naive)
    assert action is not None
    stored = Action.objects.get(pk=action.pk).timestamp
    assert stored == timezone.make_aware(naive)


def test_level_by_name_and_number() -> None:
    by_name = actrack.log(None, "warned", level="WARNING")
    by_number = actrack.log(None, "debugged", level=actrack.level.DEBUG)
    assert by_name is not None and by_number is not None
    assert by_name.level == 40
    assert by_number.level == 10


def test_single_log_costs_one_statement(count_queries: Any) -> None:
    train, station = make_train(), make_station()
    ContentType.objects.get_for_model(Train)
    ContentType.objects.get_for_model(Station)
    with count_queries() as log:
        actrack.log(train, "departed", targets=station, grouping_delay=-1)
    # The action and its target links: one statement (on SQLite, into the log view).
    assert len(log) == 1, log.statements


def test_action_logged_signal_is_sent_for_each_saved_action() -> None:
    received: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs)

    action_logged.connect(receiver, dispatch_uid="test-log-signal")
    try:
        train = make_train()
        with actrack.batch():
            actrack.log(train, "first", grouping_delay=-1)
            actrack.log(train, "second", grouping_delay=-1)
            assert received == []
    finally:
        action_logged.disconnect(dispatch_uid="test-log-signal")
    assert [kw["action"].verb for kw in received] == ["first", "second"]
    assert all(kw["sender"] is Action and kw["using"] == "default" for kw in received)
    assert all(kw["action"].pk is not None and kw["grouped"] is False for kw in received)


def test_a_failing_action_logged_receiver_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The action is committed before the signal: log() returns it, the receiver's
    error goes to the ``actrack`` logger (naming the receiver), later receivers run."""
    later: list[Any] = []

    def broken_receiver(**kwargs: Any) -> None:
        raise RuntimeError("a site's receiver failed")

    action_logged.connect(broken_receiver, dispatch_uid="test-log-broken")
    action_logged.connect(
        lambda **kw: later.append(kw["action"]), weak=False, dispatch_uid="test-log-later"
    )
    try:
        with caplog.at_level(logging.ERROR, logger="actrack"):
            action = actrack.log(make_train(), "departed")
    finally:
        action_logged.disconnect(dispatch_uid="test-log-broken")
        action_logged.disconnect(dispatch_uid="test-log-later")
    assert action is not None and Action.objects.get() == action
    assert later == [action]
    [record] = [r for r in caplog.records if r.name == "actrack"]
    assert record.levelno == logging.ERROR
    assert "broken_receiver" in record.getMessage()
    assert record.exc_info is not None and "receiver failed" in str(record.exc_info[1])


def test_actor_can_be_any_model_or_none() -> None:
    user = make_user()
    station = make_station()
    for actor in (user, station, None):
        action = actrack.log(actor, "did")
        assert action is not None
        assert Action.objects.get(pk=action.pk).actor == actor


def test_log_returns_none_inside_a_batch_and_the_action_after() -> None:
    with actrack.batch() as queue:
        assert actrack.log(None, "queued") is None
        entry = queue.entries[0]
    assert entry.action is not None and entry.action.pk is not None


def test_uuid_for_missing_pk_default() -> None:
    # A hand-built instance whose UUID was never saved is refused even with a pk.
    ghost = Journey(id=uuid.uuid4())
    with pytest.raises(ValueError, match="unsaved"):
        actrack.log(ghost, "vanished")


def test_log_with_targets_and_related_is_one_statement(
    count_queries: Any,
) -> None:
    train, station, line = make_train(), make_station(), make_line()
    ContentType.objects.get_for_models(type(train), type(station), type(line))  # cached
    with count_queries() as log:
        action = actrack.log(train, "departed", targets=station, related=line, grouping_delay=-1)
    assert action is not None
    assert list(action.targets.all()) == [station]
    assert list(action.related.all()) == [line]
    assert len(log) == 1, log.statements
