"""The timed operations, each through the libraries' public APIs.

actrack: ``user.actions.feed().page()``, ``Action.bulk_render``,
``obj.actions.all().page()``, ``actrack.readstate``, ``actrack.log``,
``actrack.track``/``untrack`` and ``Model.delete()``.
django-activity-stream: ``user_stream`` (``model_stream`` for the
whole-model user, which actstream cannot follow; ``verb__in=`` for the
verb-filtered user, which it cannot store), ``any_stream``, ``action.send``,
``follow``/``unfollow`` and ``Model.delete()``. Its streams prefetch their
generic relations (``fetch_generic_relations``); the id-only timings drop that
prefetch with ``prefetch_related(None)`` so that both sides load one page of
rows and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from actrack import readstate, trackercache
from actrack.models import Action, Tracker
from tests.bench.dataset import END, RARE_VERBS, SPAN, Dataset
from tests.bench.loading import Loaded, Progress
from tests.bench.models import DATASET_MODELS
from tests.bench.results import (
    BACKLOG_COUNT,
    BACKLOG_FIRST_COUNT,
    FIRST_PAGE,
    PAGE1_SAME_USERS,
    FeedInfo,
    Results,
)
from tests.bench.timing import Comparison, compare, pair
from tests.bench.writes import WritePhases

PAGE = 20

DEEP_PAGES = (10, 50)
#: Turns of page 1 and page 50 for the goal's ratio (at least ``--repeat``): the
#: medians of five calls each moved the ratio by 0.1-0.2 between runs of the same
#: code, across the goal's 1.2.
GOAL_TURNS = 25


def _ids(actions: Any) -> list[int]:
    return [action.pk for action in actions]


class Runner(WritePhases):
    def __init__(
        self,
        data: Dataset,
        loaded: Loaded,
        *,
        repeat: int,
        budget_ms: float,
        stream: TextIO | None = None,
    ) -> None:
        self.data, self.loaded = data, loaded
        self.repeat, self.budget_ms = repeat, budget_ms
        self.stream = stream
        self.results = Results()
        self.page1: dict[int, Comparison] = {}
        self.cursors: dict[Any, list[str | None]] = {}

    # -- the two libraries' calls ---------------------------------------------------

    def actstream_feed(self, index: int) -> Any:
        from actstream.models import model_stream, user_stream

        user, kind = self.loaded.users[index], self.data.user_types[index]
        if kind == "whole-model":
            return model_stream(DATASET_MODELS[self.data.trackers[index].model or 0])
        if kind == "verb-filtered":
            return user_stream(user, verb__in=RARE_VERBS)
        return user_stream(user)

    def actrack_page(self, user: Any, cursor: str | None = None, size: int = PAGE) -> Any:
        return user.actions.feed().page(cursor=cursor, size=size)

    # -- phases -------------------------------------------------------------------------

    def run(self) -> Results:
        users = self.data.timed
        phases: list[tuple[str, Callable[[], None]]] = [
            ("feeds", lambda: self.time_feeds(users)),
            ("deep pages", lambda: self.time_deep_pages(users)),
            ("page sizes", self.time_page_sizes),
            ("object streams", self.time_object_streams),
            ("read state", lambda: self.time_read_state(users)),
            ("writes", self.time_writes),
            ("deletion", self.time_deletion),
        ]
        for name, phase in phases:
            started = time.perf_counter()
            phase()
            self.results.phases[name] = time.perf_counter() - started
        return self.results

    def _compare(self, a: Callable[[], Any], b: Callable[[], Any] | None) -> Comparison:
        return compare(a, b, repeat=self.repeat, budget_ms=self.budget_ms)

    def _record(
        self, operation: str, kind: str, comparison: Comparison, both: bool = True
    ) -> None:
        self.results.add(operation, kind, comparison, both=both)
        self.results.add(operation, "all users", comparison, both=both)

    def time_feeds(self, users: list[int]) -> None:
        progress = Progress("timing feeds", len(users), self.stream)
        for done, index in enumerate(users, start=1):
            self._time_feed(index)
            progress.update(done)
        progress.close()

    def _time_feed(self, index: int) -> None:
        user, kind = self.loaded.users[index], self.data.user_types[index]
        # As after any page: the process keeps the user's tracker rows (PostgreSQL).
        self.actrack_page(user)
        ids = self._compare(
            lambda: _ids(self.actrack_page(user).actions),
            lambda: _ids(self.actstream_feed(index).prefetch_related(None)[:PAGE]),
        )
        self._record("feed page 1 (ids)", kind, ids)
        first = self._compare(
            lambda: _ids(_first_page(user)),
            lambda: _ids(self.actstream_feed(index).prefetch_related(None)[:PAGE]),
        )
        self._record(FIRST_PAGE, kind, first)
        self.page1[index] = ids
        rendered = self._compare(
            lambda: Action.bulk_render(
                self.actrack_page(user).actions, user=user, context={"unread": False}
            ),
            lambda: [str(action) for action in self.actstream_feed(index)[:PAGE]],
        )
        self._record("feed page 1 rendered", kind, rendered)
        a_ids, b_ids = ids.results["actrack"], ids.results["actstream"]
        overlap = None
        if self.loaded.same_ids and a_ids:
            overlap = len(set(a_ids) & set(b_ids)) / len(a_ids)
        self.results.feeds.append(
            FeedInfo(kind, self.data.trackers[index].count, len(a_ids), len(b_ids), overlap)
        )

    def _cursor_before(self, user: Any, page: int) -> str | None:
        """The cursor that opens page ``page`` (walked untimed), or None if it has none.

        ``cursors[user][n]`` opens page ``n + 2``; a walk resumes where the last one stopped.
        """
        cursors = self.cursors.setdefault(user.pk, [])
        while len(cursors) < page - 1:
            if cursors and cursors[-1] is None:
                return None
            cursors.append(self.actrack_page(user, cursors[-1] if cursors else None).next_cursor)
        return cursors[page - 2]

    def time_deep_pages(self, users: list[int]) -> None:
        """Page 10 for every timed user, page 50 for a few (dense, heavy, ordinary)."""
        self._time_deep_page(DEEP_PAGES[0], users, limit=len(users))
        kinds = ("dense", "heavy", "ordinary")
        candidates = [i for kind in kinds for i in users if self.data.user_types[i] == kind]
        timed = self._time_deep_page(
            DEEP_PAGES[1], candidates, limit=self.data.size.deep_page_users
        )
        for index in timed:
            self.results.add(PAGE1_SAME_USERS, "all users", self.page1[index])
            # Both pages of the same user, in turns, for the goal's ratio: the rows
            # above were timed in different phases, with other sample counts.
            user = self.loaded.users[index]
            cursor = self._cursor_before(user, DEEP_PAGES[1])
            turns = compare(
                lambda user=user: _ids(self.actrack_page(user).actions),
                lambda user=user, cursor=cursor: _ids(self.actrack_page(user, cursor).actions),
                repeat=max(self.repeat, GOAL_TURNS),
                budget_ms=self.budget_ms,
            )
            self.results.deep_pages.append(
                (self.data.user_types[index], turns.actrack.p50, turns.actstream.p50)
            )
        names = ", ".join(sorted({self.data.user_types[i] for i in timed}))
        self.results.notes.append(
            f"Page {DEEP_PAGES[1]} is timed for {len(timed)} users ({names}); "
            f'"{PAGE1_SAME_USERS}" is page 1 of the same users. For the goal, each of '
            f"them is timed again on page 1 and page {DEEP_PAGES[1]} in turns "
            f"({max(self.repeat, GOAL_TURNS)} calls of each, fewer when slow), and the two "
            "medians compared user by user."
        )

    def _time_deep_page(self, page: int, candidates: list[int], *, limit: int) -> list[int]:
        operation = f"feed page {page} (cursor; actstream OFFSET {(page - 1) * PAGE})"
        offset = (page - 1) * PAGE
        timed: list[int] = []
        short: set[str] = set()
        for index in candidates:
            if len(timed) == limit:
                break
            user, kind = self.loaded.users[index], self.data.user_types[index]
            cursor = self._cursor_before(user, page)
            if cursor is None:
                short.add(kind)
                continue
            comparison = self._compare(
                lambda user=user, cursor=cursor: _ids(self.actrack_page(user, cursor).actions),
                lambda index=index: _ids(
                    self.actstream_feed(index).prefetch_related(None)[offset : offset + PAGE]
                ),
            )
            self._record(operation, kind, comparison)
            timed.append(index)
        if short:
            self.results.notes.append(
                f"Page {page} is not timed for users whose actrack feed is shorter "
                f"(among types: {', '.join(sorted(short))})."
            )
        return timed

    def time_page_sizes(self) -> None:
        """Queries for a rendered page of 1, 20 and 100 actions (dense user), both libraries."""
        index = next(i for i in self.data.timed if self.data.user_types[i] == "dense")
        user = self.loaded.users[index]
        for size in (1, 20, 100):
            comparison = pair(
                lambda size=size: _render_actrack(self.actrack_page(user, size=size), user),
                lambda size=size: _render_actstream(list(self.actstream_feed(index)[:size])),
                count=True,
            )
            _, a_models = comparison.results["actrack"]
            _, b_models = comparison.results["actstream"]
            self.results.page_queries.append(
                (
                    size,
                    comparison.actrack.queries[0],
                    a_models,
                    comparison.actstream.queries[0],
                    b_models,
                )
            )

    def time_object_streams(self) -> None:
        from actstream.models import Action as StreamAction

        active = self.data.active
        picks = {
            "busy object": active[:3],
            "typical object": active[len(active) // 2 : len(active) // 2 + 3],
            "rare object": active[-3:],
        }
        for kind, indexes in picks.items():
            for i in indexes:
                obj = self.loaded.objects[i]
                comparison = self._compare(
                    lambda obj=obj: _ids(obj.actions.all().page(size=PAGE).actions),
                    lambda obj=obj: _ids(
                        StreamAction.objects.any(obj).prefetch_related(None)[:PAGE]
                    ),
                )
                self.results.add("object stream page 1 (ids)", kind, comparison)
                self.results.add("object stream page 1 (ids)", "all objects", comparison)

    def time_read_state(self, users: list[int]) -> None:
        for index in users:
            user, kind = self.loaded.users[index], self.data.user_types[index]
            # The trackers are newer than the whole history: nothing is unread yet.
            count = self._compare(lambda user=user: readstate.unread_count(user, cap=100), None)
            self._record("unread count (cap 100)", kind, count, both=False)
            # The same user had they followed everything from the start: the whole
            # history is unread, and every tracker has actions above its floor.
            Tracker.objects.filter(user=user).update(created=END - SPAN)
            # First as a process that never counted for this user does it...
            first = self._compare(lambda user=user: _first_count(user), None)
            self._record(BACKLOG_FIRST_COUNT, kind, first, both=False)
            # ...then as the next counts go (queries counted on the second count).
            readstate.unread_count(user, cap=100)
            backlog = self._compare(lambda user=user: readstate.unread_count(user, cap=100), None)
            self._record(BACKLOG_COUNT, kind, backlog, both=False)
            mark = self._compare(lambda user=user: readstate.mark_all_read(user), None)
            self._record("mark all read", kind, mark, both=False)


def _first_page(user: Any) -> list[Any]:
    """Page 1 of ``user``'s feed with the process keeping nothing about the user's
    trackers (see ``actrack.trackercache``): as a process's first page for them."""
    trackercache.forget(user.pk, user._state.db or "default")
    return user.actions.feed().page(size=PAGE).actions


def _first_count(user: Any) -> int:
    """The unread count with nothing remembered about the user's last counts.

    The process forgets whether the user's counts need the fan-out and which
    unread actions it counted (``mark_all_read`` also forgets both); what
    ``track()`` taught it about whole-model trackers stays.
    """
    readstate.forget_counts(user)
    return readstate.unread_count(user, cap=100)


def _render_actrack(page: Any, user: Any) -> tuple[int, int]:
    Action.bulk_render(page.actions, user=user, context={"unread": False})
    return len(page.actions), _models_on_page(page.actions)


def _models_on_page(actions: list[Any]) -> int:
    try:
        from actrack.rendering import hydrated
    except ImportError:  # the engine moved: the count is informational only
        return -1
    kinds = set()
    for action in actions:
        held = hydrated(action)
        kinds.update(type(o) for o in (held.actor, *held.targets, *held.related) if o is not None)
    return len(kinds)


def _render_actstream(actions: list[Any]) -> tuple[int, int]:
    for action in actions:
        str(action)
    kinds = {
        type(o)
        for action in actions
        for o in (action.actor, action.target, action.action_object)
        if o is not None
    }
    return len(actions), len(kinds)
