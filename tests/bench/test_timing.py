"""The timing helpers give neither library the first, colder call every time."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from tests.bench import timing
from tests.bench.timing import compare, pair


@pytest.fixture(autouse=True)
def _without_actstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """``alone()`` disconnects a django-activity-stream receiver: not installed here."""
    monkeypatch.setattr(timing, "alone", nullcontext)


def recorder(calls: list[str], name: str):  # type: ignore[no-untyped-def]
    return lambda: calls.append(name)


def test_pair_takes_turns_by_sample() -> None:
    orders = []
    for sample in range(1, 5):
        calls: list[str] = []
        comparison = pair(
            recorder(calls, "actrack"), recorder(calls, "actstream"), count=False, sample=sample
        )
        orders.append(calls)
        assert len(comparison.actrack.ms) == len(comparison.actstream.ms) == 1
    assert orders == [
        ["actstream", "actrack"],
        ["actrack", "actstream"],
        ["actstream", "actrack"],
        ["actrack", "actstream"],
    ]


def test_pair_without_actstream_times_actrack_alone() -> None:
    calls: list[str] = []
    comparison = pair(recorder(calls, "actrack"), None, count=False, sample=1)
    assert calls == ["actrack"]
    assert len(comparison.actrack.ms) == 1
    assert comparison.actstream.ms == []


@pytest.mark.django_db
def test_compare_alternates_the_first_call_of_each_round() -> None:
    calls: list[str] = []
    comparison = compare(
        recorder(calls, "actrack"), recorder(calls, "actstream"), repeat=3, budget_ms=1e9
    )
    warm_up, timed = calls[:2], calls[2:]
    assert warm_up == ["actrack", "actstream"]
    assert timed == ["actrack", "actstream", "actstream", "actrack", "actrack", "actstream"]
    assert len(comparison.actrack.ms) == len(comparison.actstream.ms) == 3
