"""Hostile input to the Python API: ``log``, ``track`` and ``untrack`` (property-based).

Every call either raises ``TypeError``/``ValueError`` at call time and writes
nothing, or succeeds and writes what it says. Inside a batch a rejected call
leaves the queue as it was, so the other actions of the batch are still written.

Values that Python allows but a database refuses (NaN, lone surrogates, NUL
characters, moments at the ends of datetime's range, UTC offsets past 15:59) are
rejected or converted at call time too, on every backend: the strategies draw
them, and the end of this module tests each one directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import override_settings
from django.utils import timezone
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st

import actrack
from actrack.api import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from actrack.models import Action, ActionRelated, ActionTarget, Tracker
from tests.conftest import make_station, make_train, make_user
from tests.demo.models import Station, Train
from tests.reliability.conftest import MAX_EXAMPLES, RELIABLE, report, tried

pytestmark = pytest.mark.django_db

REJECTED = (TypeError, ValueError)


@dataclass
class World:
    user: Any
    station: Station
    train: Train
    other_station: Station


@pytest.fixture
def world() -> World:
    return World(make_user(), make_station(), make_train(), make_station())


def counts() -> tuple[int, int, int, int]:
    return (
        Action.objects.count(),
        ActionTarget.objects.count(),
        ActionRelated.objects.count(),
        Tracker.objects.count(),
    )


# --- strategies -------------------------------------------------------------------------

#: Values of no business being an actor, a target, a level...: every JSON-ish type,
#: model classes, unsaved instances, dates, arbitrary objects.
junk = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sets(st.integers(), max_size=3),
    st.booleans(),
    st.just(object()),
    st.just(Station),
    st.just(Action),
    st.builds(lambda: Station(name="unsaved")),
    st.builds(lambda: get_user_model()(username="unsaved")),
    st.just(AnonymousUser()),
    st.dates(),
    st.just(len),
)

#: Any code point, lone surrogates included (``st.text()`` leaves them out by default).
any_char = st.characters() | st.characters(categories=["Cs"])
any_text = st.text(any_char, max_size=300)
junk_verbs = st.one_of(
    junk,
    st.sampled_from(["", " ", "\t\n", "a\x00b", "x" * 256, "é" * 300, "bad\ud800"]),
    st.text(max_size=300),
    any_text,
)

# Fixed-offset time zones over the whole range, and naive datetimes, over datetime's whole
# range: moments near its ends are rejected (see the timestamp tests below).
offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
datetimes = st.one_of(
    st.datetimes(timezones=offsets),
    st.datetimes(),
    # The edges, rare above: just inside and just outside the range.
    st.sampled_from([EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, dt.datetime.min, dt.datetime.max]).map(
        lambda edge: edge.replace(tzinfo=dt.UTC)
    ),
)
timestamps = st.one_of(st.none(), datetimes, junk, st.text(max_size=25))

levels = st.one_of(
    st.none(),
    st.sampled_from(["INFO", "DEBUG", "info", "LOUD", "", "30"]),
    st.integers(min_value=-(2**40), max_value=2**40),
    junk,
)
grouping_delays = st.one_of(st.none(), st.integers(min_value=-5, max_value=10**6), junk)
usings = st.one_of(st.none(), st.just("default"), st.sampled_from(["nowhere", ""]), junk)

# JSON-ish data, NaN, infinities, NUL characters and lone surrogates included.
json_texts = st.one_of(st.text(max_size=20), st.text(any_char, max_size=5))
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        json_texts,
        st.datetimes(),
        # Rare in the strategies above: drawn often enough to be tried on every run.
        st.sampled_from(
            [
                float("nan"),
                float("inf"),
                -float("inf"),
                "\ud800",
                "x\udfff",
                "\x00",
                "\ud83d\ude00",
            ]
        ),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(json_texts, children, max_size=3)
    ),
    max_leaves=8,
)
data_values = st.one_of(json_values, junk, st.just({1, 2}), st.just(b"bytes"))
data_kwargs = st.dictionaries(
    st.sampled_from(["note", "sender", "signal", "data", "count", "when", "n"]),
    data_values,
    max_size=3,
)


def objects(world: World) -> st.SearchStrategy[Any]:
    valid = st.sampled_from([world.station, world.train, world.other_station, world.user])
    return st.one_of(
        st.none(),
        valid,
        st.lists(valid, max_size=3),
        st.lists(st.one_of(valid, junk, st.none()), min_size=1, max_size=3),
        st.lists(valid, max_size=3).map(iter),
        junk,
    )


# --- log ----------------------------------------------------------------------------------


def test_log_rejects_junk_with_type_or_value_error_and_writes_nothing(world: World) -> None:
    name = "api log"

    @RELIABLE
    @given(
        actor=objects(world),
        verb=st.one_of(st.sampled_from(["passed", "announced"]), junk_verbs),
        targets=objects(world),
        related=objects(world),
        timestamp=timestamps,
        level=levels,
        grouping_delay=grouping_delays,
        using=usings,
        data=data_kwargs,
    )
    def check(**kwargs: Any) -> None:
        tried(name)
        data = kwargs.pop("data")
        before = counts()
        try:
            action = actrack.log(**kwargs, **data)
        except REJECTED:
            assert counts() == before
            return
        assert action is not None and action.pk is not None
        saved = Action.objects.get(pk=action.pk)
        assert saved.verb == action.verb
        grew = counts()[0] - before[0]
        assert grew in (0, 1)
        if kwargs["grouping_delay"] == -1:
            assert grew == 1

    check()
    report(name, MAX_EXAMPLES // 2)


def test_rejected_log_inside_a_batch_leaves_the_queue_alone(world: World) -> None:
    name = "api log in batch"

    @RELIABLE
    @given(
        verb=junk_verbs,
        targets=objects(world),
        level=levels,
        timestamp=timestamps,
        data=data_kwargs,
    )
    def check(verb: Any, targets: Any, level: Any, timestamp: Any, data: Any) -> None:
        tried(name)
        before = Action.objects.count()
        with actrack.batch() as queue:
            actrack.log(world.train, "kept", grouping_delay=-1, marker="before")
            try:
                actrack.log(
                    world.train,
                    verb,
                    targets=targets,
                    level=level,
                    timestamp=timestamp,
                    grouping_delay=-1,
                    **data,
                )
                accepted = 1
            except REJECTED:
                accepted = 0
            actrack.log(world.train, "kept", grouping_delay=-1, marker="after")
            assert len(queue.entries) == 2 + accepted
        assert Action.objects.count() == before + 2 + accepted
        markers = list(Action.objects.filter(verb="kept").values_list("data__marker", flat=True))
        assert markers.count("before") == markers.count("after")

    check()
    report(name, MAX_EXAMPLES // 2)


def test_log_in_a_batch_rejects_or_writes_any_verb_data_and_timestamp(world: World) -> None:
    """With valid objects the verb, data and timestamp decide: rejected, or written and read."""
    name = "api log values"

    @RELIABLE
    @given(
        verb=st.one_of(st.just("passed"), any_text),
        payload=json_values,
        timestamp=st.one_of(st.none(), datetimes),
    )
    def check(verb: Any, payload: Any, timestamp: Any) -> None:
        tried(name)
        before = Action.objects.count()
        with actrack.batch() as queue:
            actrack.log(world.train, "kept", grouping_delay=-1)
            try:
                actrack.log(
                    world.train,
                    verb,
                    targets=world.station,
                    timestamp=timestamp,
                    grouping_delay=-1,
                    p=payload,
                )
                accepted = 1
            except REJECTED:
                accepted = 0
            assert len(queue.entries) == 1 + accepted
        assert Action.objects.count() == before + 1 + accepted
        if accepted:
            # Read back (data not compared: PostgreSQL's jsonb stores floats as decimals).
            action = Action.objects.latest("pk")
            assert (action.verb, list(action.data)) == (verb, ["p"])
            if timestamp is not None:
                aware = timezone.is_aware(timestamp)
                assert action.timestamp == (timestamp if aware else timezone.make_aware(timestamp))

    check()
    report(name, MAX_EXAMPLES // 2)


# --- track / untrack ------------------------------------------------------------------------


def _users(world: World) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(world.user), junk, st.just(world.station))


def _tracked(world: World) -> st.SearchStrategy[Any]:
    valid = st.sampled_from([world.station, world.train, Station, Train, world.user])
    return st.one_of(
        valid,
        st.lists(valid, max_size=3),
        st.lists(st.one_of(valid, junk, st.none()), min_size=1, max_size=3),
        junk,
        st.none(),
    )


tracked_verbs = st.one_of(
    st.none(),
    st.sampled_from(["passed", ["passed", "announced"], (), set()]),
    st.lists(junk_verbs, max_size=3),
    junk_verbs,
)
flags = st.one_of(st.none(), st.booleans(), junk)


def test_track_rejects_junk_and_writes_nothing(world: World) -> None:
    name = "api track"

    @RELIABLE
    @given(
        user=_users(world),
        to_track=_tracked(world),
        verbs=tracked_verbs,
        actor_only=flags,
        log=st.booleans(),
        using=usings,
    )
    def check(**kwargs: Any) -> None:
        tried(name)
        before = counts()
        try:
            result = actrack.track(**kwargs)
        except REJECTED:
            assert counts() == before
            return
        trackers = result if isinstance(result, list) else [result]
        assert trackers
        for tracker in trackers:
            assert Tracker.objects.filter(pk=tracker.pk, user=world.user).exists()
        # One tracker per (user, object or model), whatever was asked.
        keys = list(Tracker.objects.values_list("user", "tracked_ct", "tracked_key"))
        assert len(keys) == len(set(keys))

    check()
    report(name, MAX_EXAMPLES // 2)


def test_untrack_rejects_junk_and_writes_nothing(world: World) -> None:
    name = "api untrack"
    actrack.track(world.user, [world.station, world.train, Train], verbs=["passed", "left"])

    @RELIABLE
    @given(
        user=_users(world),
        to_untrack=_tracked(world),
        verbs=tracked_verbs,
        log=st.booleans(),
        using=usings,
    )
    def check(**kwargs: Any) -> None:
        tried(name)
        before = counts()
        rows = list(Tracker.objects.values_list("pk", "verbs"))
        try:
            changed = actrack.untrack(**kwargs)
        except REJECTED:
            assert counts() == before
            assert list(Tracker.objects.values_list("pk", "verbs")) == rows
            return
        assert isinstance(changed, int) and changed >= 0
        actrack.track(world.user, [world.station, world.train, Train], verbs=["passed", "left"])

    check()
    report(name, MAX_EXAMPLES // 2)


# --- values a database refuses: rejected when log() is called, so a batch survives them ---


def _rejected_in_a_batch(error: type[Exception], match: str, **bad: Any) -> None:
    """``log()`` refuses the bad action at call time; the batch writes only the good one."""
    train = make_train()
    before = list(Action.objects.values_list("verb", flat=True))
    with actrack.batch() as queue:
        actrack.log(train, "good", grouping_delay=-1)
        with pytest.raises(error, match=match):
            actrack.log(bad.pop("actor", train), bad.pop("verb", "bad"), grouping_delay=-1, **bad)
        assert len(queue.entries) == 1
    assert sorted(Action.objects.values_list("verb", flat=True)) == sorted([*before, "good"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_in_data_are_rejected_at_log_time(value: float) -> None:
    _rejected_in_a_batch(ValueError, r"NaN or infinite numbers.*data\['value'\]", value=value)
    _rejected_in_a_batch(
        ValueError, r"NaN or infinite.*data\['note'\]\['a'\]\[1\]", note={"a": [1, value]}
    )


@pytest.mark.parametrize("verb", ["bad\ud800", "\udfff", "a pair \ud83d\ude00 is no better"])
def test_verb_with_a_lone_surrogate_is_rejected_at_log_time(verb: str) -> None:
    _rejected_in_a_batch(ValueError, "lone surrogate", verb=verb)


def test_lazy_verb_with_a_lone_surrogate_is_rejected_at_log_time() -> None:
    _rejected_in_a_batch(ValueError, "lone surrogate", verb=gettext_lazy("bad\ud800"))


def test_track_and_untrack_reject_verbs_with_a_lone_surrogate(world: World) -> None:
    actrack.track(world.user, world.station, verbs=["passed"])
    before = list(Tracker.objects.values_list("pk", "tracked_key", "verbs"))
    with pytest.raises(ValueError, match="lone surrogate"):
        actrack.track(world.user, [world.station, world.train], verbs=["passed", "bad\ud800"])
    with pytest.raises(ValueError, match="lone surrogate"):
        actrack.untrack(world.user, world.station, verbs="bad\udc00", log=True)
    assert list(Tracker.objects.values_list("pk", "tracked_key", "verbs")) == before
    assert not Action.objects.exists()


def _forged_station(key: str) -> Station:
    """A "saved" instance whose key no database holds (built by hand, say from a cache)."""
    return Station.from_db("default", ["id", "name", "city"], [key, "forged", ""])


@pytest.mark.parametrize("role", ["actor", "targets", "related"])
def test_object_key_with_a_lone_surrogate_is_rejected_at_log_time(role: str) -> None:
    forged = _forged_station("x\ud800")
    kwargs = {"actor": forged} if role == "actor" else {role: [make_station(), forged]}
    _rejected_in_a_batch(ValueError, "lone surrogate", **kwargs)


def test_track_and_untrack_reject_an_object_key_with_a_lone_surrogate(world: World) -> None:
    actrack.track(world.user, world.station)
    forged = _forged_station("\udc80")
    with pytest.raises(ValueError, match="lone surrogate"):
        actrack.track(world.user, [world.train, forged], log=True)
    with pytest.raises(ValueError, match="lone surrogate"):
        actrack.untrack(world.user, [world.station, forged])
    assert list(Tracker.objects.values_list("tracked_key", flat=True)) == [str(world.station.pk)]
    assert not Action.objects.exists()


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"note": "bad\udc80"}, r"data\['note'\] is"),
        ({"note": {"deep": ["ok", "bad\ud800"]}}, r"data\['note'\]\['deep'\]\[1\] is"),
        ({"note": {"bad\udfff": 1}}, r"a key of data\['note'\] is"),
        ({"note": [{"ok": {"\ud800": None}}]}, r"a key of data\['note'\]\[0\]\['ok'\] is"),
    ],
)
def test_lone_surrogate_in_data_is_rejected_at_log_time(data: dict[str, Any], where: str) -> None:
    """On every backend, although SQLite could store it (PostgreSQL's jsonb cannot)."""
    _rejected_in_a_batch(ValueError, f"lone surrogates.*: {where}", **data)


@pytest.mark.parametrize(
    "data",
    [{"note": {"a": ["a\x00b"]}}, {"note": {"a\x00": 1}}],
)
def test_nul_anywhere_in_data_is_rejected_at_log_time(data: dict[str, Any]) -> None:
    _rejected_in_a_batch(ValueError, "NUL characters", **data)


def test_data_that_only_looks_bad_once_encoded_is_stored_as_given() -> None:
    """A surrogate pair is one character once decoded; a backslash before "u0000" is text."""
    action = actrack.log(
        make_train(),
        "odd",
        pair="\ud83d\ude00",
        escaped="\\u0000 and \\ud800",
        words=["NaN", "Infinity"],
        **{"NaN": 1},
    )
    assert action is not None
    assert Action.objects.get(pk=action.pk).data == {
        "pair": "\N{GRINNING FACE}",
        "escaped": "\\u0000 and \\ud800",
        "words": ["NaN", "Infinity"],
        "NaN": 1,
    }


def test_data_nested_too_deeply_to_encode_is_a_type_error() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    _rejected_in_a_batch(TypeError, "JSON-serialisable", note=deep)


UTC_PLUS_5 = dt.timezone(dt.timedelta(hours=5))
UTC_MINUS_5 = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize(
    ("timestamp", "zone"),
    [
        # Out of datetime's range once in UTC.
        (dt.datetime(1, 1, 1, tzinfo=UTC_PLUS_5), "UTC"),
        (dt.datetime(9999, 12, 31, 23, 0, tzinfo=UTC_MINUS_5), "UTC"),
        # Naive, made aware in the current time zone, then out of range in UTC.
        (dt.datetime(1, 1, 1, 3, 0), "Asia/Tokyo"),
        (dt.datetime(9999, 12, 31, 20, 0), "America/New_York"),
        # In range in UTC, but not in every time zone that could show it.
        (dt.datetime(1, 1, 1, 12, 0, tzinfo=dt.UTC), "UTC"),
        (dt.datetime(9999, 12, 31, 0, 0, tzinfo=dt.UTC), "UTC"),
    ],
)
def test_timestamp_out_of_range_is_rejected_at_log_time(timestamp: dt.datetime, zone: str) -> None:
    """Out of range: not a day inside datetime's range once in UTC."""
    with timezone.override(zone):
        _rejected_in_a_batch(ValueError, "out of range", timestamp=timestamp)


@pytest.mark.parametrize("timestamp", [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP])
def test_timestamps_at_the_ends_of_the_range_are_written_read_and_shown(
    timestamp: dt.datetime,
) -> None:
    aware = timestamp.replace(tzinfo=dt.UTC)
    action = actrack.log(make_train(), "edge", timestamp=aware)
    assert action is not None
    stored = Action.objects.get(pk=action.pk).timestamp
    assert stored == aware
    for minutes in (-1439, 1439):
        with timezone.override(dt.timezone(dt.timedelta(minutes=minutes))):
            assert Template("{{ t|date:'c' }}").render(Context({"t": stored}))


@pytest.mark.parametrize("minutes", [-1439, -961, 961, 1439])
def test_timestamp_with_a_utc_offset_postgresql_refuses_is_written_in_utc(minutes: int) -> None:
    """PostgreSQL takes UTC offsets up to 15:59; Python's go up to 23:59."""
    moment = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))
    with actrack.batch():
        actrack.log(make_train(), "far", timestamp=moment, grouping_delay=-1)
    assert Action.objects.get().timestamp == moment


@override_settings(USE_TZ=False)
def test_aware_timestamp_without_use_tz_is_stored_as_local_time() -> None:
    """Django keeps naive local times without USE_TZ; SQLite refuses aware ones."""
    aware = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC_PLUS_5)
    with override_settings(TIME_ZONE="America/New_York"):
        action = actrack.log(make_train(), "local", timestamp=aware)
        assert action is not None
        stored = Action.objects.get(pk=action.pk).timestamp
    assert stored == dt.datetime(2024, 5, 5, 22, 8, 9)
