"""What a benchmark run measured: rows of samples per operation and group."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.bench.timing import Comparison, Series

PAGE1_SAME_USERS = "feed page 1 (ids), page-50 users"
#: Page 1 with nothing kept by the process about the user (its tracker rows).
FIRST_PAGE = "feed page 1 (ids), first page in the process"
TRACK_100 = "track 100 objects (actstream: 100 follow())"
UNTRACK_100 = "untrack 100 objects (actstream: 100 unfollow())"
#: The unread count of a user whose trackers are as old as the history: counted
#: again (as a badge is, on every page), and for the first time in the process.
BACKLOG_COUNT = "unread count, trackers a year old (cap 100)"
BACKLOG_FIRST_COUNT = "unread count, trackers a year old, first count (cap 100)"

#: Groups of the main results table; the others are per user type or object kind.
MAIN_GROUPS = ("all users", "all objects", "one user", "one object")


@dataclass
class Row:
    """One line of the results: an operation on a group (a user type, "all"...)."""

    operation: str
    group: str
    actrack: Series = field(default_factory=Series)
    actstream: Series | None = field(default_factory=Series)
    note: str = ""


@dataclass
class FeedInfo:
    """What page 1 held for one user, to show both libraries did real work."""

    user_type: str
    trackers: int
    actrack_items: int
    actstream_items: int
    overlap: float | None  # share of actrack's page 1 also on actstream's page 1


@dataclass
class Results:
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    feeds: list[FeedInfo] = field(default_factory=list)
    page_queries: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per timing phase
    #: Per page-50 user: (user type, page 1 p50, page 50 p50), timed interleaved.
    deep_pages: list[tuple[str, float, float]] = field(default_factory=list)

    def add(
        self, operation: str, group: str, comparison: Comparison, *, both: bool = True
    ) -> None:
        row = self.rows.setdefault(
            (operation, group),
            Row(operation, group, actstream=Series() if both else None),
        )
        row.actrack.extend(comparison.actrack)
        if row.actstream is not None:
            row.actstream.extend(comparison.actstream)

    def main_rows(self) -> list[Row]:
        return [row for (_, group), row in self.rows.items() if group in MAIN_GROUPS]
