"""The last goal of PERFORMANCE.md, judged from a run's medians (tests.bench.goals)."""

from __future__ import annotations

from tests.bench.goals import _versus_goals
from tests.bench.results import Results, Row
from tests.bench.timing import Series

LOG = "log() one action (outside a batch)"
PAGE = "feed page 1 (ids)"
STREAM = "object stream page 1 (ids)"
TRACK = "track one object"


def _run(*rows: tuple[str, str, float, float | None]) -> Results:
    """Results with rows (operation, group, actrack p50, actstream p50 or None)."""
    run = Results()
    for operation, group, ours, theirs in rows:
        run.rows[(operation, group)] = Row(
            operation,
            group,
            actrack=Series(ms=[ours], queries=[1]),
            actstream=None if theirs is None else Series(ms=[theirs], queries=[1]),
        )
    return run


def _versus(run: Results) -> dict[str, tuple[str, bool | None]]:
    return {goal: (measured, met) for goal, measured, met in _versus_goals(run)[:3]}


FASTER = "faster than actstream at p50, every operation"
FEEDS = ">= 2x faster than actstream at p50, feeds (pages, object streams)"
STRICTER = "(stricter reading, not judged) >= 2x at p50 on the other operations too"


def test_faster_everywhere_and_twice_as_fast_on_feeds_meets_the_goal() -> None:
    run = _run(
        (PAGE, "all users", 2.0, 9.0),
        (STREAM, "all objects", 0.8, 1.7),
        (LOG, "one user", 0.60, 0.66),
        (TRACK, "one user", 0.7, 1.9),
        ("unread count (cap 100)", "all users", 0.6, None),  # nothing to compare
        (PAGE, "whole-model", 1.6, 1.3),  # a user type: shown elsewhere, not judged here
    )
    assert _versus(run) == {
        FASTER: ("all 4", True),
        FEEDS: ("all 2", True),
        STRICTER: ("below 2x: " + LOG, None),
    }


def test_an_operation_no_faster_fails_the_goal() -> None:
    run = _run(
        (PAGE, "all users", 2.0, 9.0), (LOG, "one user", 0.62, 0.62), (TRACK, "one user", 0.7, 0.6)
    )
    versus = _versus(run)
    assert versus[FASTER] == (f"not faster: {LOG}; {TRACK}", False)
    assert versus[FEEDS] == ("all 1", True)


def test_a_feed_below_twice_as_fast_fails_the_feed_goal() -> None:
    run = _run(
        (PAGE, "all users", 2.0, 3.9),
        (STREAM, "all objects", 0.8, 1.6),
        (LOG, "one user", 0.5, 1.2),
    )
    versus = _versus(run)
    assert versus[FASTER] == ("all 3", True)
    assert versus[FEEDS] == (f"below 2x: {PAGE}", False)
    assert versus[STRICTER] == ("all 1", None)


def test_nothing_compared_is_not_met() -> None:
    versus = _versus(_run(("unread count (cap 100)", "all users", 0.6, None)))
    assert versus[FASTER] == ("nothing compared", False)
    assert versus[FEEDS] == ("nothing compared", False)
