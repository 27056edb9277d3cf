"""Feed pages by fan-out on read: which queryset a page takes, and how it is run.

A feed's tracker condition is a :class:`TrackerMatch` in the queryset's
``WHERE``. Iterating the queryset evaluates it as one boolean condition. A
``page()`` instead takes the queryset's other filters as SQL over the action
table and compiles one statement (:class:`actrack.fanout.Statement`) that
reaches the actions through the per-object indexes (content type, key,
timestamp, id) of the link tables and of the actor columns, in two passes over
the trackers. Its cost follows the number of trackers plus the page, not the
size of the tables or the activity of the followed objects.

On PostgreSQL a user's feed page first runs the walk alone
(:func:`fetch_page`); an object's pages with no other filter may go through a
function (:mod:`actrack.objectpage`), whole-model followers' pages through
another (:mod:`actrack.pagefunction`). The unread count's statements are in
:mod:`actrack.countsql`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connections
from django.db.models import BooleanField, Expression, Q
from django.db.models.lookups import Exact

from actrack.fanout import NO_FILTER, Relation, Statement, not_by, read_floor, walk_verbs
from actrack.memo import note_now, within
from actrack.rows import columns, instances, reading_cursor

if TYPE_CHECKING:
    import datetime as dt

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from actrack.models import Action
    from actrack.querysets import ActionQuerySet, TrackerLike


#: Above this many trackers a page is the queryset itself, newest first: the
#: database walks the timeline until the page's rows match its condition over every
#: tracker (the statement here walks first itself, up to ``fanout.WALK_MAX_ROWS``).
MAX_FANOUT_TRACKERS = 10_000


class TrackerMatch(Expression):
    """Boolean condition: the action matches one of ``trackers`` (see ``tracker_condition``).

    With ``unread_for`` (a user), only what can be unread for that user
    matches: actions newer than the matching tracker, and the user's own
    actions only through a tracker of the user as actor.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(
        self,
        trackers: Iterable[TrackerLike],
        *,
        unread_for: Any = None,
        owner: Any = None,
        min_level: int | None = None,
        not_by: tuple[int, str] | None = None,
        fingerprint: str | None = None,
        derived: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.trackers = tuple(trackers)
        self.unread_for = unread_for
        #: The pk of the user whose feed this is (``feed()``), if any: pages remember
        #: per user which plan served them (see :func:`fetch_page`).
        self.owner = owner
        #: A feed's own filters, carried here rather than as filters of their own:
        #: building them as querysets cost more than a page's statement took to
        #: build (about 0.4 ms a page). ``min_level``: only actions at that level
        #: or above; ``not_by`` (content type id, key): not that actor's actions.
        self.min_level = min_level
        self.not_by = not_by
        #: Set when ``trackers`` are the owner's rows kept by this process, with their
        #: fingerprint: a page checks it (see actrack.trackercache); a query reads
        #: the rows again.
        self.fingerprint = fingerprint
        #: Where pages keep what they build from ``trackers`` alone, when the rows are
        #: shared with earlier reads of the same rows (see actrack.trackercache).
        self.derived = derived

    def __repr__(self) -> str:
        unread = ", unread" if self.unread_for is not None else ""
        return f"TrackerMatch(<{len(self.trackers)} trackers>{unread})"

    @property
    def own(self) -> tuple[int, str] | None:
        if self.unread_for is None:
            return None
        from actrack.readstate import user_ref

        return user_ref(self.unread_for)

    def resolve_expression(
        self,
        query: Any = None,
        allow_joins: bool = True,
        reuse: Any = None,
        summarize: bool = False,
        for_save: bool = False,
    ) -> TrackerMatch:
        # The condition is built when compiled: a page() replaces it unbuilt.
        return self.copy()

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        from actrack import trackercache
        from actrack.querysets import tracker_condition

        since = self.unread_for is not None
        trackers = self.trackers
        if self.fingerprint is not None:
            trackers = tuple(trackercache.read(self.owner, compiler.using or "default"))
        condition = tracker_condition(trackers, since_created=since, own_links=self.own)
        if condition is None:
            condition = Q(pk__in=[])
        if self.min_level is not None:
            condition &= Q(level__gte=self.min_level)
        if self.not_by is not None:
            condition &= ~Q(actor_ct_id=self.not_by[0], actor_key=self.not_by[1])
        where: Any = compiler.query.build_where(condition)
        sql, params = compiler.compile(where)
        return f"({sql})", params


def _find_match(queryset: ActionQuerySet) -> tuple[int, TrackerMatch] | None:
    """Index and expression of the single top-level TrackerMatch, if any."""
    where = queryset.query.where
    if where.connector != "AND" or where.negated:
        return None
    found = [
        (index, child.lhs)
        for index, child in enumerate(where.children)
        if isinstance(child, Exact) and isinstance(child.lhs, TrackerMatch) and child.rhs is True
    ]
    return found[0] if len(found) == 1 else None


def page_ids_sql(
    queryset: ActionQuerySet,
    position: tuple[dt.datetime, int] | None,
    limit: int,
    *,
    walk_only: bool = False,
    walk: bool = True,
) -> tuple[str, list[Any]] | None:
    """SQL selecting the ids of the next page (newest first), or None for the plain plan.

    ``walk_only``: on PostgreSQL, when the page would walk the timeline first,
    the statement holds the walk alone and ends with a NULL id when the walk
    did not settle the page (see :func:`fetch_page`). ``walk=False``: the
    fan-out alone, without a walk first.
    """
    found = _page_ids(queryset, position, limit, walk_only=walk_only, walk=walk)
    return None if found is None else found[0]


def _page_ids(
    queryset: ActionQuerySet,
    position: tuple[dt.datetime, int] | None,
    limit: int,
    *,
    walk_only: bool = False,
    walk: bool = True,
) -> tuple[tuple[str, list[Any]], bool] | None:
    """:func:`page_ids_sql`, and whether its plan may be kept for the session: on
    PostgreSQL, the direct scans of whole-model trackers alone, whose content
    types are constants of the text (see :mod:`actrack.pagefunction`)."""
    match = _find_match(queryset)
    if match is None:
        return None
    index, expression = match
    trackers = expression.trackers
    connection = connections[queryset.db]
    if not trackers or connection.vendor not in ("postgresql", "sqlite"):
        return None
    if len(trackers) > MAX_FANOUT_TRACKERS:
        return None
    base = queryset.all()  # a clone: its WHERE can be changed
    del base.query.where.children[index]
    where = _base_where(base, connection)
    if where is None:
        return None
    if where is _NOTHING:
        return ("SELECT 1 WHERE 1 = 0", []), False
    assert isinstance(where, tuple)
    where = _with_feed_filters(where, expression, connection)
    statement = Statement(
        connection,
        where,
        position,
        limit,
        own=expression.own,
        floor=read_floor(expression.unread_for, connection),
    )
    since = expression.unread_for is not None

    def from_trackers() -> tuple[int, list[str] | None, list[Relation]]:
        scans = sum(1 if tracker.actor_only else 3 for tracker in trackers)
        verbs = None if since else walk_verbs(trackers)
        return scans, verbs, statement.python_relations(trackers, since)

    from actrack import trackercache

    name = f"page since={since}"
    if expression.fingerprint is not None:
        # The owner's rows kept by this process: what depends on them alone is kept
        # with them (about 0.7 ms for 500 trackers).
        found = trackercache.derived(
            expression.owner, queryset.db, expression.fingerprint, name, from_trackers
        )
    elif expression.derived is not None:
        found = trackercache.built(expression.derived, name, from_trackers)
    else:
        found = from_trackers()
    statement.scans, verbs, relations = found
    if not since:
        statement.walk = walk
        statement.walk_verbs = verbs
        statement.walk_only = walk_only and statement.postgres
    sql, params = statement.sql(relations)
    cap = _max_params(connection)
    if cap is not None and len(params) > cap:
        return None  # too many trackers for one statement here: the plain plan
    kept_plan = statement.postgres and statement.direct and not any(r.keyed for r in relations)
    return (sql, params), kept_plan


def fetch_page(
    queryset: ActionQuerySet, position: tuple[dt.datetime, int] | None, limit: int
) -> list[Action] | None:
    """The next ``limit`` actions of a page by the feed engine, or None for the plain plan.

    On PostgreSQL, planning the whole statement (walk, heads, bound and page)
    costs about 0.7 ms more than planning its walk alone, which settles most
    users' pages: the newest actions hold enough of their matches. So a
    user's feed page first runs the walk alone. When it does not settle the
    page (it found fewer than ``limit`` matches in rows that did not reach
    the end of the timeline), the whole statement runs, a second query, and
    the process sends that user's feed pages (whatever their filters)
    straight to it for ``WALK_RETRY_SECONDS``: first pages after a first
    page, cursor pages after a cursor page. A first page's walk reads the
    newest actions, which a burst of activity nobody follows can fill; a
    cursor page's walk reads below its cursor. On 5M actions, after 30,000
    such actions on top of the timeline, page 50 of the user following the
    500 busiest objects took 2.4 ms with its walk and 14.5 ms by the fan-out
    alone (the user with 2,000 trackers: 4.7 and 43.9), while the first page
    was cheapest by the fan-out alone. An object's pages with no
    other filter may go through a function instead (see :mod:`actrack.objectpage`).
    """
    match = _find_match(queryset)
    owner = match[1].owner if match is not None else None
    if match is not None and owner is None:
        from actrack import objectpage

        found = objectpage.fetch(queryset, match[1], position, limit)
        if found is not None:
            return found
    guard = None
    if match is not None and match[1].fingerprint is not None:
        guard = _tracker_guard(queryset.db, match[1])
    try:
        return _fetch_page(queryset, position, limit, owner, guard)
    except _StaleTrackers:
        assert match is not None
        return fetch_page(_with_fresh_trackers(queryset, *match), position, limit)


class _StaleTrackers(Exception):
    """The trackers a page was built from are no longer the user's."""


def _tracker_guard(using: str, match: TrackerMatch) -> tuple[str, list[Any]]:
    """SQL true when the user's trackers still have the fingerprint ``match`` was built with."""
    from actrack.trackercache import fingerprint_sql

    return f"({fingerprint_sql(connections[using])}) = %s", [match.owner, match.fingerprint]


def _with_fresh_trackers(queryset: ActionQuerySet, index: int, match: TrackerMatch) -> Any:
    """``queryset`` with the owner's trackers read again (and kept) in its tracker condition."""
    from actrack import trackercache

    fresh = copy.copy(match)
    fresh.trackers = tuple(trackercache.read(match.owner, queryset.db))
    fresh.fingerprint = None
    clone = queryset.all()
    clone.query.where.children[index] = Exact(fresh, True)  # type: ignore[call-overload]
    return clone


def _fetch_page(
    queryset: ActionQuerySet,
    position: tuple[dt.datetime, int] | None,
    limit: int,
    owner: Any,
    guard: tuple[str, list[Any]] | None,
) -> list[Action] | None:
    key = None
    walks_first = owner is not None and connections[queryset.db].vendor == "postgresql"
    if walks_first:
        # Per user and kind of page (first or by cursor), whatever the other filters:
        # a hint, and filters may hold subqueries that compare by identity only.
        key = (queryset.db, owner, position is None)
        if within(_WHOLE_STATEMENT_FEEDS, key, WALK_RETRY_SECONDS):
            key = None
    if key is not None:
        page = _page_ids(queryset, position, limit, walk_only=True)
        if page is None:
            return None
        rows = fetch_actions(
            queryset.model,
            queryset.db,
            page[0],
            limit,
            settled=True,
            guard=guard,
            kept_plan=page[1],
        )
        if rows is not None:
            return rows
        note_now(_WHOLE_STATEMENT_FEEDS, key, WHOLE_STATEMENT_FEEDS_KEPT)
    # A user's page on PostgreSQL gets here when the walk alone did not settle it, now
    # or lately: the fan-out alone (walking the same rows again first cost quiet users
    # a third of the page). Elsewhere the one statement walks first.
    page = _page_ids(queryset, position, limit, walk=not walks_first)
    if page is None:
        return None
    found = fetch_actions(
        queryset.model, queryset.db, page[0], limit, guard=guard, kept_plan=page[1]
    )
    assert found is not None
    return found


#: Users and kinds of page (database, pk, whether a first page) whose last such feed
#: page the walk alone did not settle, with when (``time.monotonic()``): for
#: ``WALK_RETRY_SECONDS`` their feed pages of that kind run the fan-out at once.
_WHOLE_STATEMENT_FEEDS: OrderedDict[tuple[Any, ...], float] = OrderedDict()
WHOLE_STATEMENT_FEEDS_KEPT = 10_000
WALK_RETRY_SECONDS = 60.0


def fetch_actions(
    model: type[Action],
    using: str,
    ids: tuple[str, list[Any]],
    limit: int,
    *,
    settled: bool = False,
    guard: tuple[str, list[Any]] | None = None,
    kept_plan: bool = False,
) -> list[Action] | None:
    """The actions whose ids ``ids`` (SQL, parameters) selects, newest first, at most ``limit``.

    A raw query and ``from_db``, with the converters the ORM would apply: for a
    page this took half the time of a queryset, whose compiling cost more than
    running it. ``settled``: ``ids`` may end with a NULL id, meaning that it
    did not settle the page; then None. ``guard``: SQL checked in the same
    statement; when false, :class:`_StaleTrackers` is raised. ``kept_plan``:
    the statement may go through :mod:`actrack.pagefunction`, planned once per
    database session.
    """
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    column = columns(model, connection)
    # With a guard, each row of the page says so (the join below may add an empty one).
    selected = ", ".join(column.values()) + (", TRUE" if guard is not None else "")
    if settled:
        # The NULL id joins no action: its row comes last, all NULL.
        sql = (
            f"SELECT {selected} FROM ({ids[0]}) AS _i(id) LEFT JOIN {table} "
            f"ON {column['id']} = _i.id ORDER BY {column['timestamp']} DESC NULLS LAST, "
            f"{column['id']} DESC NULLS LAST LIMIT {int(limit)}"
        )
    else:
        sql = (
            f"SELECT {selected} FROM {table} WHERE {column['id']} IN "
            f"({ids[0]}) ORDER BY {column['timestamp']} DESC, {column['id']} DESC "
            f"LIMIT {int(limit)}"
        )
    params = list(ids[1])
    if guard is not None:
        # The guard's one row, joined to the page when it holds: at least one row,
        # each carrying the guard's answer. (A union with a row for a failed guard,
        # and a sort, took PostgreSQL longer to plan than the page itself.) OFFSET 0
        # keeps the guard a subquery of its own: pulled up, it was computed twice,
        # for the join and for the column, each reading every tracker row.
        sql = (
            f"SELECT _p.*, _g.ok FROM (SELECT {guard[0]} AS ok OFFSET 0) AS _g "
            f"LEFT JOIN ({sql}) AS _p ON _g.ok"
        )
        params = [*guard[1], *params]
    rows = None
    if kept_plan:
        from actrack import pagefunction

        rows = pagefunction.fetch(model, connection, sql, params, 0 if guard is None else 2)
    if rows is None:
        with reading_cursor(connection) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    if guard is not None:
        if not rows[0][-1]:
            raise _StaleTrackers
        # The page's own rows (an empty page leaves the join's row alone), in the
        # page's order: the join keeps it, and sorting 21 rows here costs nothing.
        rows = _in_page_order([row[:-2] for row in rows if row[-2]], list(column))
    if settled and rows and rows[-1][0] is None:
        return None
    return instances(model, using, connection, rows)


def _in_page_order(rows: list[Any], names: list[str]) -> list[Any]:
    """``rows`` (action columns ``names``) newest first, a NULL id (unsettled) last."""
    ts, pk = names.index("timestamp"), names.index("id")
    found = sorted((row for row in rows if row[pk] is not None), key=lambda r: (r[ts], r[pk]))
    return [*reversed(found), *(row for row in rows if row[pk] is None)]


def _max_params(connection: BaseDatabaseWrapper) -> int | None:
    """How many parameters one statement may have: SQLite's own limit when it says."""
    cap: int | None = connection.features.max_query_params
    if connection.vendor == "sqlite":
        import sqlite3

        connection.ensure_connection()
        raw = connection.connection
        if hasattr(raw, "getlimit"):  # Python 3.11+
            cap = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return cap


_NOTHING = object()


def _base_where(
    base: ActionQuerySet, connection: BaseDatabaseWrapper
) -> tuple[str, list[Any]] | object | None:
    """The queryset's other filters as SQL over the action table, None if they need joins."""
    from django.core.exceptions import EmptyResultSet, FullResultSet

    query = base.query
    table = base.model._meta.db_table
    joined = {alias for alias in query.alias_map if query.alias_refcount[alias]} - {table}
    if joined or query.distinct or query.combinator or query.is_sliced or query.extra:
        return None
    compiler = query.get_compiler(connection=connection)
    try:
        sql, params = compiler.compile(query.where)
    except EmptyResultSet:
        return _NOTHING
    except FullResultSet:
        return NO_FILTER, []
    return (sql or NO_FILTER), list(params)


def _with_feed_filters(
    where: tuple[str, list[Any]], expression: TrackerMatch, connection: BaseDatabaseWrapper
) -> tuple[str, list[Any]]:
    """``where`` and the feed's own filters carried by ``expression``, as SQL."""
    from actrack.models import Action

    sql, params = where
    action = connection.ops.quote_name(Action._meta.db_table)
    conditions = [] if sql == NO_FILTER else [f"({sql})"]
    if expression.min_level is not None:
        conditions.append(f"{action}.level >= %s")
        params = [*params, expression.min_level]
    if expression.not_by is not None:
        conditions.append(not_by(f"{action}.actor_ct_id", f"{action}.actor_key"))
        params = [*params, *expression.not_by]
    return (" AND ".join(conditions) or NO_FILTER), params
