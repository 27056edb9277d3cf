"""Timing and query counting, one library against the other, interleaved.

Each comparison runs both callables once with queries captured (the warm-up,
which also gives the query count), then alternates timed calls, the two
libraries taking turns to go first (actrack, actstream, actstream, actrack...),
with the garbage collector off. Times come
from ``time.perf_counter``; queries are counted with Django's
``CaptureQueriesContext`` outside the timed calls only, leaving out
transaction control (``SAVEPOINT``/``RELEASE``/``BEGIN``/``COMMIT``).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models.signals import pre_delete
from django.test.utils import CaptureQueriesContext

CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")

LIBRARIES = ("actrack", "actstream")


@dataclass
class Series:
    """Samples of one operation for one library: milliseconds and queries per call."""

    ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)

    def extend(self, other: Series) -> None:
        self.ms.extend(other.ms)
        self.queries.extend(other.queries)

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def max(self) -> float:
        return max(self.ms)

    def query_range(self) -> str:
        if not self.queries:
            return "-"
        low, high = min(self.queries), max(self.queries)
        return str(low) if low == high else f"{low}-{high}"


def queries_of(context: CaptureQueriesContext) -> int:
    return sum(
        1 for q in context.captured_queries if not q["sql"].lstrip().upper().startswith(CONTROL)
    )


def captured(fn: Callable[[], Any]) -> tuple[Any, int, float]:
    """``(result, queries, ms)`` of one call, queries captured."""
    with CaptureQueriesContext(connection) as context:
        started = time.perf_counter()
        result = fn()
        elapsed = (time.perf_counter() - started) * 1000
    return result, queries_of(context), elapsed


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


@dataclass
class Comparison:
    """Both libraries' series for one operation on one subject (user or object)."""

    actrack: Series = field(default_factory=Series)
    actstream: Series = field(default_factory=Series)
    results: dict[str, Any] = field(default_factory=dict)  # warm-up results, by library

    def series(self, library: str) -> Series:
        return self.actrack if library == "actrack" else self.actstream


def compare(
    actrack_fn: Callable[[], Any],
    actstream_fn: Callable[[], Any] | None,
    *,
    repeat: int,
    budget_ms: float,
) -> Comparison:
    """Warm up both (counting queries), then time ``repeat`` interleaved pairs.

    Slow operations get fewer repeats (at least one), so that one pathological
    plan cannot take the whole run: ``budget_ms`` bounds each subject's
    timed calls.
    """
    comparison = Comparison()
    fns = {"actrack": actrack_fn, "actstream": actstream_fn}
    # Collected before the warm-up, not before the timed calls: a collection of
    # this process's large heap leaves the CPU caches cold for the next call.
    gc.collect()
    warm = 0.0
    for library, fn in fns.items():
        if fn is None:
            continue
        result, queries, ms = captured(fn)
        comparison.results[library] = result
        comparison.series(library).queries.append(queries)
        warm += ms
    rounds = max(1, min(repeat, int(budget_ms / max(warm, 0.001))))
    gc.disable()
    try:
        for round_ in range(rounds):
            for library in _order(round_):
                fn = fns[library]
                if fn is not None:
                    comparison.series(library).ms.append(_timed(fn))
    finally:
        gc.enable()
    return comparison


def pair(
    actrack_fn: Callable[[], Any],
    actstream_fn: Callable[[], Any] | None,
    *,
    count: bool,
    sample: int = 0,
) -> Comparison:
    """Run each callable once: counting its queries (``count``) or timing it, not both.

    For writes that cannot be repeated on the same subject (a deletion, a
    first ``track``): call it on one subject to count, on others to time.
    ``sample`` (the caller's sample number) picks which library goes first:
    they take turns, as the first of two cold calls pays more.
    """
    comparison = Comparison()
    fns = {"actrack": actrack_fn, "actstream": actstream_fn}
    gc.disable()
    try:
        for library in _order(sample):
            fn = fns[library]
            if fn is None:
                continue
            series = comparison.series(library)
            with alone() if library == "actrack" else nullcontext():
                if count:
                    result, queries, _ms = captured(fn)
                    series.queries.append(queries)
                else:
                    started = time.perf_counter()
                    result = fn()
                    series.ms.append((time.perf_counter() - started) * 1000)
            comparison.results[library] = result
    finally:
        gc.enable()
    return comparison


def _order(number: int) -> tuple[str, str]:
    """The libraries in the order call ``number`` runs them: turn and turn about.

    Whichever runs first after a pause (a garbage collection, the other
    operation's setup) finds the CPU caches colder: measured on the single
    ``log()``, about 0.4 ms more for the first of the two calls.
    """
    return LIBRARIES if number % 2 == 0 else LIBRARIES[::-1]


@contextmanager
def alone() -> Iterator[None]:
    """actrack's writes as on a site without django-activity-stream.

    django-activity-stream connects a ``pre_delete`` receiver for every model
    (``delete_orphaned_follows``): with it, deleting any object runs a query for
    its follows, and Django cannot delete trackers with one statement. It is
    disconnected while actrack's call runs, outside the timed region.
    """
    try:
        from actstream.follows import delete_orphaned_follows
    except ImportError:
        yield
        return
    disconnected = pre_delete.disconnect(delete_orphaned_follows)
    try:
        yield
    finally:
        if disconnected:
            pre_delete.connect(delete_orphaned_follows)
