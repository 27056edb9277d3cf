"""Feed pages by fan-out on read, in two passes over the user's trackers.

A feed's tracker condition is a :class:`TrackerMatch` in the queryset's
``WHERE``. Iterating the queryset evaluates it as one boolean condition. A
``page()`` instead compiles one statement (:class:`_Statement`) that reaches
the actions through the per-object indexes (content type, key, timestamp,
id) of the link tables and of the actor columns:

1. heads: for every tracker and role, its newest matching row (one index
   descent, and a primary-key lookup for the filters on the action);
2. bound: the ``N``-th newest distinct head. At least ``N`` matching actions
   are that new, so the page holds nothing older;
3. page: only the trackers whose head reaches the bound are read again,
   down to the bound; the union, without duplicates, gives the newest ``N``.

Its cost follows the number of trackers (one descent each) plus the page,
not the size of the tables or the activity of the followed objects. Every
other filter of the queryset applies inside each scan, so a page never
skips a row. Tracker rows travel as arrays (``unnest``) on PostgreSQL and as
a ``VALUES`` list on SQLite, which has no ``LATERAL`` and uses correlated
subqueries instead. On PostgreSQL a user's feed page first runs the walk
alone (:func:`fetch_page`). The unread count first walks the newest actions,
checking each against the tracker table, and stops at its cap
(:func:`recent_count_sql`); when that falls short, it uses the page's scans
with the tracker rows read from the tracker table (:func:`count_unread_sql`):
capped, the rows they find first, tracker by tracker
(:meth:`_Statement.any_rows`), else the page statement. A capped count that
reached its cap is checked next time on the unread actions it found, one by
one (:func:`witness_count_sql`).
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import connections
from django.db.models import BooleanField, Expression, Q
from django.db.models.lookups import Exact

from actrack.memo import note_now, within
from actrack.rows import columns, instances, reading_cursor

if TYPE_CHECKING:
    import datetime as dt

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from actrack.models import Action
    from actrack.querysets import ActionQuerySet, TrackerLike

#: Above this many trackers a page walks the timeline instead (see module docs).
MAX_FANOUT_TRACKERS = 10_000

# Link tables by role, with the name Action's reverse relation has in queries.
_ROLES = (("actor", None), ("targets", "actiontarget"), ("related", "actionrelated"))


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
    statement = _Statement(
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
    straight to it for ``WALK_RETRY_SECONDS``. An object's pages with no
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
        # Per user, whatever the other filters: a hint, and filters may hold
        # subqueries that compare by identity only.
        key = (queryset.db, owner)
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


#: Users (database, pk) whose last feed page the walk alone did not settle, with
#: when (``time.monotonic()``): for ``WALK_RETRY_SECONDS`` their feed pages run the
#: whole statement at once.
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


def read_floor(user: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]] | None:
    """SQL for ``user``'s read mark: unread actions are newer, so scans stop there."""
    from actrack.models import ReadMark

    if user is None:
        return None
    mark = connection.ops.quote_name(ReadMark._meta.db_table)
    sql = f"SELECT _m.read_until, _m.last_read_id FROM {mark} AS _m WHERE _m.user_id = %s"
    return sql, [user.pk]


def _verbs_match(postgres: bool, verbs: str, verb: str) -> str:
    """SQL: the tracker whose JSON ``verbs`` column this is takes ``verb`` (none: all)."""
    if postgres:
        return f"({verbs} = '[]'::jsonb OR {verbs} ? {verb})"
    return (
        f"({verbs} = '[]' OR EXISTS (SELECT 1 FROM json_each({verbs}) AS _v "
        f"WHERE _v.value = {verb}))"
    )


def _later(first: str, second: str) -> str:
    """SQL: the later of two timestamps (SQLite has no ``GREATEST``)."""
    return f"CASE WHEN {first} > {second} THEN {first} ELSE {second} END"


def _not_by(ct: str, key: str) -> str:
    """SQL: the actor (``ct``, ``key`` columns) is not the one of the two parameters."""
    return f"NOT (COALESCE({ct}, 0) = %s AND COALESCE({key}, '') = %s)"


def count_unread_sql(
    user: Any,
    connection: BaseDatabaseWrapper,
    cap: int | None,
    whole_models: bool | Sequence[int] = True,
    *,
    unordered: bool = False,
    one_column: bool = False,
) -> tuple[str, list[Any]]:
    """One statement counting the actions unread for ``user`` (at least ``cap`` if that many).

    The tracker rows come from the tracker table inside the statement, so the
    count is one query. Actions marked read one by one are left out after the
    page engine: it takes as many more rows as the user has such marks above
    the read mark, so the count is exact up to ``cap``.

    ``whole_models``: ``True`` for every kind of tracker. A sequence of content
    type ids: the whole-model trackers of those models, whose ids stand in the
    statement as constants, so that PostgreSQL plans each model's scans from
    its statistics (with a parameter it once walked the whole timeline for a
    model that never acts). ``False``: object trackers only. With a sequence or
    ``False`` the statement gives -1 instead of a count when the user follows
    another model; its second column then lists the user's whole-model content
    type ids (comma-separated).

    With a ``cap``, the first column is text instead: the ids of the unread
    actions counted, comma-separated (NULL for none), or ``'-1'``.

    ``unordered`` (with a ``cap``): the unread actions found first, tracker by
    tracker, rather than the newest (:meth:`_Statement.any_rows`). It reads
    ``ANY_ROWS_PER_COUNTED`` rows per action it may count at most, and gives
    ``'-2'`` when those held fewer than ``cap`` unread actions although more
    rows were left (actions matching several trackers, or read one by one):
    then the ordered statement counts.

    ``one_column``: a statement of one row and column, usable as a scalar
    subquery (SQLite; see :func:`recent_count_sql`'s ``otherwise``): with a
    sequence or ``False``, the user's other models follow the -1 as text,
    ``'-1:<ids>'``.
    """
    from actrack.models import Tracker

    table = connection.ops.quote_name(Tracker._meta.db_table)
    statement = _count_statement(user, connection, cap or 0)
    ctes: list[tuple[str, list[Any]]] = []
    if cap is None:
        statement.limit_sql = str(NO_CAP)
    else:
        ctes.append(_limit_cte(statement, user, cap))
        statement.limit_sql = "(SELECT n FROM _limit)"
    models = None if isinstance(whole_models, bool) else sorted({int(m) for m in whole_models})
    relations = [
        Relation(
            f"SELECT tracked_ct_id, tracked_key, created, actor_only, verbs FROM {table} "
            f"WHERE user_id = %s AND tracked_key {'<>' if keyed else '='} ''",
            [user.pk],
            keyed=keyed,
            verbs=None,
            since=True,
            constants=None if keyed else models,
        )
        for keyed in ((True, False) if whole_models else (True,))
    ]
    if unordered:
        assert cap is not None, "an unordered count has a cap"
        count, params = _unordered_count(statement, relations, ctes, user, cap)
    else:
        count, params = _ordered_count(statement, relations, ctes, user, cap)
    if whole_models is True:
        return count, params
    # Whole-model trackers the statement does not cover: -1, and the user's models.
    others = "user_id = %s AND tracked_key = ''"
    if models:
        others += f" AND tracked_ct_id NOT IN ({', '.join(str(m) for m in models)})"
    listed = _id_list(statement.postgres, "tracked_ct_id", distinct=True)
    their_models = f"(SELECT {listed} FROM {table} WHERE user_id = %s AND tracked_key = '')"
    verdict = f"FROM (SELECT EXISTS (SELECT 1 FROM {table} WHERE {others}) AS other) AS _o"
    if one_column:
        return (
            f"SELECT CASE WHEN _o.other THEN '-1:' || {their_models} ELSE ({count}) END {verdict}"
        ), [user.pk, *params, user.pk]
    other = "-1" if cap is None else "'-1'"
    return (
        f"SELECT CASE WHEN _o.other THEN {other} ELSE ({count}) END, "
        f"CASE WHEN _o.other THEN {their_models} END {verdict}"
    ), [*params, user.pk, user.pk]


def _ordered_count(
    statement: _Statement,
    relations: list[Relation],
    ctes: list[tuple[str, list[Any]]],
    user: Any,
    cap: int | None,
) -> tuple[str, list[Any]]:
    """The count of :func:`count_unread_sql` over the page statement's newest rows."""
    from actrack.models import ReadAction

    read = statement.quote(ReadAction._meta.db_table)
    sql, params = statement.sql(relations, ctes)
    # Capped, the statement lists the unread ids (at most the cap plus the reads one by
    # one): unread_count counts them, and keeps them to check again (witness_count_sql).
    counted = "COUNT(*)" if cap is None else _id_list(statement.postgres, "_n.id")
    count = (
        f"SELECT {counted} FROM ({sql}) AS _n WHERE NOT EXISTS (SELECT 1 FROM {read} AS _r "
        f"WHERE _r.user_id = %s AND _r.action_id = _n.id)"
    )
    return count, [*params, user.pk]


def _unordered_count(
    statement: _Statement,
    relations: list[Relation],
    ctes: list[tuple[str, list[Any]]],
    user: Any,
    cap: int,
) -> tuple[str, list[Any]]:
    """The count of :func:`count_unread_sql` over the rows found first (``unordered``)."""
    from actrack.models import ReadAction

    read = statement.quote(ReadAction._meta.db_table)
    names: list[str] = []
    params: list[Any] = []
    assert statement.floor is not None
    names.append(f"_floor(ts, id) AS ({statement.floor[0]})")
    params += statement.floor[1]
    for sql, cte_params in ctes:
        names.append(sql)
        params += cte_params
    most = f"(SELECT {int(ANY_ROWS_PER_COUNTED)} * n FROM _limit)"
    found = statement.any_rows(relations, names, params, most)
    names.append(f"_any(id) AS{_streamed(statement)} ({found})")
    names.append(
        f"_u(id) AS (SELECT DISTINCT _n.id FROM _any AS _n WHERE NOT EXISTS (SELECT 1 FROM "
        f"{read} AS _r WHERE _r.user_id = %s AND _r.action_id = _n.id) LIMIT %s)"
    )
    params += [user.pk, cap]
    listed = _id_list(statement.postgres, "id")
    sql = (
        f"WITH {', '.join(names)} SELECT CASE WHEN (SELECT COUNT(*) FROM _u) < %s AND "
        f"(SELECT COUNT(*) FROM _any) >= {most} THEN '-2' ELSE (SELECT {listed} FROM _u) END"
    )
    return sql, [*params, cap]


def _streamed(statement: _Statement) -> str:
    """`` NOT MATERIALIZED`` for a count's CTE read twice, on SQLite 3.35 and later.

    SQLite 3.35 and later materialize a CTE named more than once, reading all
    of its rows before the first is used: the count's walk (``_rc``) then read
    its whole length, its bound on work, when the first hundred matches were
    near the top, and the capped fan-out (``_any``) every row it may read.
    Not materialized, the rows are read as they are used, and the second
    reference, a count asked only when the first fell short, reads them again.
    On a year unread at 1M actions (25 users): the walk 2.07 -> 1.33 ms, the
    fan-out 0.50 -> 0.43, nothing unread unchanged. Older SQLite takes no
    such hint: its statements stay as they were. PostgreSQL reads a CTE's
    rows as they are used, without a hint.
    """
    if statement.postgres:
        return ""
    return " NOT MATERIALIZED" if statement.sqlite_version >= (3, 35) else ""


def _id_list(postgres: bool, column: str, *, distinct: bool = False) -> str:
    """SQL aggregate: the values of ``column`` (each once if ``distinct``) as
    comma-separated text (NULL for none)."""
    once = "DISTINCT " if distinct else ""
    if postgres:
        return f"string_agg({once}CAST({column} AS TEXT), ',')"
    return f"group_concat({once}{column})"


def _count_statement(user: Any, connection: BaseDatabaseWrapper, limit: int) -> _Statement:
    """The unread count's statement builder: readable actions above the read mark."""
    from actrack.conf import app_settings
    from actrack.models import Action
    from actrack.readstate import user_ref

    action = connection.ops.quote_name(Action._meta.db_table)
    level = READABLE_LEVEL_STAND_IN.get()
    where = (
        f"{action}.level >= %s AND {action}.id > COALESCE((SELECT id FROM _floor), 0)",
        [app_settings.READABLE_LEVEL if level is None else level],
    )
    floor = read_floor(user, connection)
    return _Statement(connection, where, None, limit, own=user_ref(user), floor=floor)


#: The value the count's statements take for ``READABLE_LEVEL`` while
#: ``actrack.countfunction`` writes its function from them (context-local: other
#: threads' counts keep the setting).
READABLE_LEVEL_STAND_IN: ContextVar[int | None] = ContextVar(
    "actrack_readable_level_stand_in", default=None
)


def _limit_cte(statement: _Statement, user: Any, cap: int) -> tuple[str, list[Any]]:
    """``_limit(n)``: ``cap`` plus the actions above the read mark read one by one.

    Taking that many unread candidates, then leaving out those read one by
    one, keeps a count exact up to ``cap``.
    """
    from actrack.models import ReadAction

    read = statement.quote(ReadAction._meta.db_table)
    return (
        f"_limit(n) AS (SELECT %s + (SELECT COUNT(*) FROM {read} AS _r JOIN "
        f"{statement.action} AS _a ON _a.id = _r.action_id WHERE _r.user_id = %s AND "
        f"_a.timestamp > {statement.floor_sql} AND _a.id > "
        f"COALESCE((SELECT id FROM _floor), 0)))",
        [cap, user.pk],
    )


def recent_count_sql(
    user: Any,
    connection: BaseDatabaseWrapper,
    cap: int | None,
    *,
    otherwise: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """One statement counting the unread actions of ``user`` from the newest down, or -1.

    The fan-out pays three index descents per tracker and role, and a
    millisecond or two of planning, whatever is unread. Most users' unread
    actions are dense in the newest part of the timeline instead, or few (a
    user who has just read, or whose trackers are new). So this statement
    walks the newest actions above the lowest tracker floor (``_rc``; a
    floor is the later of the tracker's creation and the read mark), up to
    ``RECENT_MIN`` plus ``RECENT_ROWS_PER_TRACKER`` per tracker, and checks
    each against the tracker table (probes by its unique index on user,
    content type and key, with that tracker's floor, verbs and roles). It
    stops at ``_limit`` matches. When it neither reached them nor walked
    every action above the floor, the count is not known: it gives -1, and
    :func:`count_unread_sql` counts. With a ``cap``, it gives text as that
    statement does: the ids of the unread actions, or ``'-1'``.

    ``otherwise``: a scalar statement (SQL, parameters) answering instead of
    -1 (``'-1'``), run only then: :func:`count_unread_sql` with ``one_column``
    makes the count one statement whatever the walk finds (SQLite). The walk's
    own answer then comes as text after ``'w:'``.
    """
    from actrack.models import ReadAction, Tracker

    statement = _count_statement(user, connection, 0)
    quote, action = statement.quote, statement.action
    read, tracker = quote(ReadAction._meta.db_table), quote(Tracker._meta.db_table)
    assert statement.floor is not None
    ctes = [(f"_floor(ts, id) AS ({statement.floor[0]})", list(statement.floor[1]))]
    if cap is None:
        limit = str(NO_CAP)
    else:
        ctes.append(_limit_cte(statement, user, cap))
        limit = "(SELECT n FROM _limit)"
    ctes += [
        _reach_cte(statement, user),
        # One action more than the walk's length: more than that means fanning out.
        (
            f"_rc(id, ts, ct, k, vb) AS{_streamed(statement)} "
            f"(SELECT {_CHECKED_COLUMNS.format(action=action)} "
            f"FROM {action} WHERE ({statement.where}) AND {action}.timestamp > (SELECT lo FROM "
            f"_rs) ORDER BY {action}.timestamp DESC, {action}.id DESC LIMIT (SELECT b + 1 FROM "
            "_rs))",
            list(statement.where_params),
        ),
    ]
    # On SQLite the walk sieves its actions by the user's tracked objects and models
    # (a year unread, M data: 18% less). On PostgreSQL it took 41% less there, but a
    # count with nothing unread, the common one, 0.4 ms more (parsing and planning six
    # more subplans): no sieve.
    sieve = None
    if not statement.postgres:
        sieve = "_named"
        ctes.append(
            (
                f"_named(ct, k) AS (SELECT tracked_ct_id, tracked_key FROM {tracker} "
                "WHERE user_id = %s)",
                [user.pk],
            )
        )
    condition, params = _unread_check(
        statement, user, sieve=sieve, follows_models="(SELECT wm FROM _rs) = 1"
    )
    # No order: any matches do. Unordered, the walk stops at the limit-th one.
    walked = f"_w(id) AS (SELECT _a.id FROM _rc AS _a WHERE {condition} LIMIT {limit})"
    ctes.append((walked, params))
    # Capped, as the fan-out: the unread ids (text), or '-1'.
    counted, short = (
        ("COUNT(*)", "-1") if cap is None else (_id_list(statement.postgres, "id"), "'-1'")
    )
    cut = (
        f"(SELECT COUNT(*) FROM _w) < {limit} AND (SELECT COUNT(*) FROM _rc) > (SELECT b FROM _rs)"
    )
    walked = (
        f"(SELECT {counted} FROM _w WHERE NOT EXISTS (SELECT 1 FROM {read} AS _r WHERE "
        f"_r.user_id = %s AND _r.action_id = _w.id))"
    )
    short_params: list[Any] = []
    if otherwise is not None:
        # The walk's answer marked as such (text, 'w:' first). The verdict stays in the
        # one CASE: put in a CTE for a second column, its count of the walk's rows ran
        # whatever the walk found (0.6 ms of a 1.3 ms count).
        short, short_params = f"({otherwise[0]})", list(otherwise[1])
        walked = f"'w:' || COALESCE(CAST({walked} AS TEXT), '')"
    sql = (
        f"WITH {', '.join(cte for cte, _p in ctes)} SELECT CASE WHEN {cut} THEN {short} "
        f"ELSE {walked} END"
    )
    return sql, [*(p for _cte, cte_params in ctes for p in cte_params), *short_params, user.pk]


def _reach_cte(statement: _Statement, user: Any) -> tuple[str, list[Any]]:
    """``_rs(lo, b, wm)``: the walk's lowest floor, its length, and whether the user
    follows a model (1 or 0). Needs ``_floor``."""
    from actrack.models import Tracker

    tracker = statement.quote(Tracker._meta.db_table)
    rows_each, least = int(RECENT_ROWS_PER_TRACKER), int(RECENT_MIN)
    return (
        f"_rs(lo, b, wm) AS (SELECT MIN({_later(statement.floor_sql, 'created')}), {least} + "
        f"COUNT(*) * {rows_each}, MAX(CASE WHEN tracked_key = '' THEN 1 ELSE 0 END) "
        f"FROM {tracker} WHERE user_id = %s)"
    ), [user.pk]


def walk_reach_sql(user: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """One statement: whether more actions than the walk of :func:`recent_count_sql`
    may read, whatever their level, are newer than the user's lowest tracker floor.

    Then the walk cannot reach the floors and counts only if the cap's worth of
    unread actions are among the newest: the fan-out counts instead (see
    :mod:`actrack.countfunction`). NULL for a user without trackers.
    """
    statement = _count_statement(user, connection, 0)
    action = statement.action
    assert statement.floor is not None
    reach, reach_params = _reach_cte(statement, user)
    return (
        f"WITH _floor(ts, id) AS ({statement.floor[0]}), {reach} SELECT (SELECT lo FROM _rs) < "
        f"(SELECT {action}.timestamp FROM {action} ORDER BY {action}.timestamp DESC, "
        f"{action}.id DESC OFFSET (SELECT b FROM _rs) LIMIT 1)"
    ), [*statement.floor[1], *reach_params]


#: The columns of an action the one-by-one check reads, as ``(id, ts, ct, k, vb)``.
_CHECKED_COLUMNS = (
    "{action}.id, {action}.timestamp, {action}.actor_ct_id, {action}.actor_key, {action}.verb"
)


def _unread_check(
    statement: _Statement,
    user: Any,
    *,
    sieve: str | None = None,
    follows_models: str | None = None,
) -> tuple[str, list[Any]]:
    """SQL: the action ``_a`` (columns ``id, ts, ct, k, vb``) matches one of ``user``'s trackers.

    Each role probes the tracker table by its unique index (user, content
    type, key), with that tracker's own floor (``_a.ts`` above the later of
    its creation and the read mark), verbs and roles. The level and the read
    mark (its timestamp and id) are the caller's to check, and actions read
    one by one too: the probe only compares ``_a.ts`` with the tracker's
    creation (a read-mark subquery in each probe cost PostgreSQL two more
    subplans to plan).

    ``sieve``: for actions most of which match no tracker (a walk down the
    timeline), the name of a relation ``(ct, k)`` of the user's tracker rows'
    content types and keys: each probe then runs only for an object they
    name, looked up in that relation, hashed once.

    ``follows_models``: SQL saying whether the user has a whole-model tracker,
    taken from the caller's statement (by default a subquery of its own).
    """
    from actrack.models import Tracker

    tracker = statement.quote(Tracker._meta.db_table)
    verbs = _verbs_match(statement.postgres, "_k.verbs", "_a.vb")
    # A tracker matches an action newer than its own floor only: the later of its
    # creation and the read mark. The callers' actions are all above the read mark.
    newer = "_a.ts > _k.created"
    keys, each = "IN ({key}, '')", [user.pk]
    if statement.postgres:
        # A whole-model tracker has the key '': probing for it too is a second index
        # descent per probe, wasted for a user who follows no model (most users). The
        # question is answered once per statement (an InitPlan). A year unread, 458
        # trackers, 1M actions: the walk's tracker probes read about a third fewer
        # buffers.
        asked: list[Any] = []
        if follows_models is None:
            follows_models = (
                f"EXISTS (SELECT 1 FROM {tracker} WHERE user_id = %s AND tracked_key = '')"
            )
            asked = [user.pk]
        keys = f"= ANY(CASE WHEN {follows_models} THEN ARRAY[{{key}}, ''] ELSE ARRAY[{{key}}] END)"
        each = [user.pk, *asked]
    match = (
        f"SELECT 1 FROM {tracker} AS _k WHERE _k.user_id = %s AND _k.tracked_ct_id = {{ct}} "
        f"AND _k.tracked_key {keys}{{only}} AND {newer} AND {verbs}"
    )

    def sieved(ct: str, key: str) -> str:
        """SQL: ``sieve``'s check that a tracker names the object (``ct``, ``key``)."""
        if sieve is None:
            return ""
        # Only SQLite's walk takes a sieve (recent_count_sql), which hashes each IN's
        # set once.
        return (
            f"(({ct}, {key}) IN (SELECT ct, k FROM {sieve}) OR "
            f"{ct} IN (SELECT ct FROM {sieve} WHERE k = '')) AND "
        )

    actor = f"EXISTS ({match.format(ct='_a.ct', key='_a.k', only='')})"
    conditions = [f"{sieved('_a.ct', '_a.k')}{actor}"]
    params: list[Any] = list(each)
    links = []
    # PostgreSQL would turn the probe below into a semi-join of the link and tracker
    # tables, and estimating it compares both key columns' most common values pairwise:
    # most of the statement's planning time. OFFSET 0 keeps it a subquery run per link
    # row, the same index probe.
    probe_end = " OFFSET 0" if statement.postgres else ""
    for role in ("targets", "related"):
        probe = match.format(ct="_l.obj_ct_id", key="_l.obj_key", only=" AND NOT _k.actor_only")
        links.append(
            f"EXISTS (SELECT 1 FROM {statement.links[role]} AS _l WHERE _l.action_id = _a.id "
            f"AND {sieved('_l.obj_ct_id', '_l.obj_key')}EXISTS ({probe}{probe_end}))"
        )
        params += each
    own = ""
    if statement.own is not None:
        # Own actions count through the actor role only (a tracker of oneself).
        own = f"{_not_by('_a.ct', '_a.k')} AND "
        params[len(each) : len(each)] = list(statement.own)
    conditions.append(f"{own}({' OR '.join(links)})")
    return f"({' OR '.join(conditions)})", params


def witness_count_sql(
    user: Any, connection: BaseDatabaseWrapper, ids: Sequence[int], trackers: str | None = None
) -> tuple[str, list[Any]]:
    """One statement counting how many of the actions ``ids`` are still unread for ``user``.

    The same checks as :func:`recent_count_sql`'s, on these actions only:
    ``unread_count`` keeps the ids a capped count found unread, and while at
    least ``cap`` of them still are, the count is ``cap`` whatever else
    happened, for a few index probes per action instead of a fan-out. The
    ids travel as one parameter, so the text is the same for every user.

    On PostgreSQL a second column gives a fingerprint of what the matching
    depends on besides the actions themselves: the user's tracker rows
    (``actrack.trackercache``: any insert, update or delete of one changes
    it) and the newest deleted item (deleting an object re-points its link
    rows, which a whole-model tracker then no longer matches). ``trackers``:
    a fingerprint under which every one of ``ids`` matched. While it is
    still the current one, the actions still match, and the statement holds
    no tracker probes at all, only the rest of the check (the read mark,
    actions read one by one, the level, actions deleted): the probes were
    most of its execution (about 1,900 of 2,500 buffers read for 100
    actions, 1M actions), and planning them half of its planning (0.50 ->
    0.23 ms; the whole round trip 1.37 -> 0.91 ms). When the fingerprint
    differs, it counts nothing and its second column says so: the caller
    checks again, with ``trackers=None``. ``''``: no fingerprint (one
    column): it reads every tracker row, which for thousands of trackers
    costs more than the probes.
    """
    from actrack.models import DeletedItem, ReadAction
    from actrack.trackercache import fingerprint_sql

    statement = _count_statement(user, connection, 0)
    quote, action = statement.quote, statement.action
    assert statement.floor is not None
    listed_params: list[Any]
    if statement.postgres:
        # An array literal: psycopg's adaptation of a list of 100 ids took about 0.2 ms.
        listed = f"{action}.id = ANY(CAST(%s AS bigint[]))"
        listed_params = ["{" + ",".join(map(str, ids)) + "}"]
    else:
        listed = f"{action}.id IN (SELECT value FROM json_each(%s))"
        listed_params = [json.dumps(list(ids))]
    condition, params = _unread_check(statement, user)
    read = quote(ReadAction._meta.db_table)
    ctes, cte_params = f"_floor(ts, id) AS ({statement.floor[0]})", list(statement.floor[1])
    counted = "COUNT(*)"
    if statement.postgres and trackers != "":
        deleted = quote(DeletedItem._meta.db_table)
        ctes += (
            f", _fp(f) AS (SELECT ({fingerprint_sql(connection)}) || '/' || "
            f"CAST(COALESCE((SELECT MAX(id) FROM {deleted}), 0) AS TEXT))"
        )
        cte_params.append(user.pk)
        counted += ", (SELECT f FROM _fp)"
        if trackers is not None:
            condition, params = "(SELECT f FROM _fp) = %s", [trackers]
    sql = (
        f"WITH {ctes}, "
        f"_a(id, ts, ct, k, vb) AS (SELECT {_CHECKED_COLUMNS.format(action=action)} FROM "
        f"{action} WHERE ({statement.where}) AND {action}.timestamp > {statement.floor_sql} "
        f"AND {listed}) "
        f"SELECT {counted} FROM _a WHERE {condition} AND NOT EXISTS (SELECT 1 FROM {read} AS _r "
        "WHERE _r.user_id = %s AND _r.action_id = _a.id)"
    )
    return sql, [
        *cte_params,
        *statement.where_params,
        *listed_params,
        *params,
        user.pk,
    ]


#: Rows a page may walk down the timeline per fan-out scan it would save (a walked
#: row costs about what a scan does), and at most; with fewer scans than
#: ``WALK_MIN_SCANS`` a page fans out at once.
WALK_ROWS_PER_SCAN = 1.0
WALK_MAX_ROWS = 5_000
WALK_MIN_SCANS = 100
#: Heads take one more row per this many rows of the page (at most 8): see _Statement.
HEAD_ROWS_EVERY = 25
#: Up to this many scans (trackers times roles), a page reads each tracker's newest
#: rows directly, without the heads-and-bound passes.
DIRECT_MAX_SCANS = 6


#: At most this many verbs for a walk restricted to the trackers' verbs (one index
#: range each, merged).
WALK_MAX_VERBS = 8
#: How many of the newest actions the unread count checks one by one before it
#: leaves the count to the fan-out: ``RECENT_MIN`` plus this many per tracker (a
#: checked action costs a few index probes, a tracker's fan-out three descents and
#: the fan-out statement a millisecond or two of planning). See recent_count_sql.
RECENT_MIN = 20
RECENT_ROWS_PER_TRACKER = 4
#: Rows an unordered count reads at most per action it may count (see count_unread_sql).
ANY_ROWS_PER_COUNTED = 2
#: A count's limit when it has no cap.
NO_CAP = 2**31 - 1


def walk_verbs(trackers: Iterable[TrackerLike]) -> list[str] | None:
    """The verbs a walk may keep to: when every tracker names some, all of them.

    Then only actions with one of these verbs can match, and the walk reads the
    newest of those (through the (verb, timestamp, id) index) instead of the
    newest actions of any verb, which may hold no match at all when the verbs
    are rare.
    """
    verbs: set[str] = set()
    for tracker in trackers:
        if not tracker.verbs:
            return None
        verbs.update(tracker.verbs)
    return sorted(verbs) if len(verbs) <= WALK_MAX_VERBS else None


_NOTHING = object()
#: The queryset's other filters when it has none.
_NO_FILTER = "1 = 1"


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
        return _NO_FILTER, []
    return (sql or _NO_FILTER), list(params)


def _with_feed_filters(
    where: tuple[str, list[Any]], expression: TrackerMatch, connection: BaseDatabaseWrapper
) -> tuple[str, list[Any]]:
    """``where`` and the feed's own filters carried by ``expression``, as SQL."""
    from actrack.models import Action

    sql, params = where
    action = connection.ops.quote_name(Action._meta.db_table)
    conditions = [] if sql == _NO_FILTER else [f"({sql})"]
    if expression.min_level is not None:
        conditions.append(f"{action}.level >= %s")
        params = [*params, expression.min_level]
    if expression.not_by is not None:
        conditions.append(_not_by(f"{action}.actor_ct_id", f"{action}.actor_key"))
        params = [*params, *expression.not_by]
    return (" AND ".join(conditions) or _NO_FILTER), params


class Relation(NamedTuple):
    """Tracker rows ``(ct, k, cr, ao, vb)`` for the branches of one kind of tracker.

    ``k`` is ``''`` for whole-model trackers, ``cr`` the tracker's creation
    (``NULL`` unless only newer actions count), ``ao`` its ``actor_only``, ``vb``
    its verbs as JSON when ``verbs`` is ``None`` (verbs read per row), else ``NULL``.
    """

    sql: str
    params: list[Any]
    keyed: bool
    verbs: tuple[str, ...] | None
    since: bool
    constants: list[int] | None = None  # whole-model content types, inlined on PostgreSQL
    rows: list[tuple[int, str, Any, bool]] | None = None  # the rows, when given from Python


def _array_literal(values: Iterable[str | None]) -> str:
    """A PostgreSQL array literal of ``values`` (text; ``None`` is NULL)."""
    return (
        "{"
        + ",".join(
            "NULL"
            if value is None
            else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for value in values
        )
        + "}"
    )


def _array_rows(rows: list[tuple[int, str, Any, bool]], since: bool) -> tuple[str, list[str]]:
    """Tracker rows as ``unnest`` of array literals, one parameter per column.

    Formatted here: psycopg adapting lists of thousands of values cost more than
    the query, and a JSON document cost PostgreSQL more to take apart (about
    1.4 ms more for 2,000 trackers).
    """
    params = [
        "{" + ",".join(str(int(ct)) for ct, _k, _cr, _ao in rows) + "}",
        _array_literal(key for _ct, key, _cr, _ao in rows),
        "{" + ",".join("t" if ao else "f" for _ct, _k, _cr, ao in rows) + "}",
    ]
    columns = ["%s::integer[]", "%s::text[]", "%s::boolean[]"]
    created = "NULL::timestamptz"
    if since:
        params.append(
            _array_literal(cr.isoformat() if cr is not None else None for _c, _k, cr, _a in rows)
        )
        columns.append("%s::timestamptz[]")
        created = "_r.cr"
    sql = (
        f"SELECT _r.ct, _r.k, {created}, _r.ao, NULL::jsonb "
        f"FROM unnest({', '.join(columns)}) AS _r({'ct, k, ao, cr' if since else 'ct, k, ao'})"
    )
    return sql, params


class _Statement:
    """One statement for a page, in two passes over the user's trackers.

    ``_heads``: for every tracker and role, its newest matching row, one index
    descent each. ``_bound``: the ``limit``-th newest distinct head. At least
    ``limit`` distinct actions are as new as the bound, so the page holds
    nothing older: the second pass visits only the trackers whose head reaches
    the bound, taking their rows down to it. Both passes apply every filter of
    the queryset, so no page skips a row.
    """

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        where: tuple[str, list[Any]],
        position: tuple[dt.datetime, int] | None,
        limit: int,
        *,
        own: tuple[int, str] | None = None,
        floor: tuple[str, list[Any]] | None = None,
    ) -> None:
        from actrack.models import Action, ActionRelated, ActionTarget

        quote = connection.ops.quote_name
        self.postgres = connection.vendor == "postgresql"
        self.sqlite_version: tuple[int, ...] = (
            getattr(getattr(connection, "Database", None), "sqlite_version_info", ())
            if connection.vendor == "sqlite"
            else ()
        )
        self.action = quote(Action._meta.db_table)
        self.links = {
            "targets": quote(ActionTarget._meta.db_table),
            "related": quote(ActionRelated._meta.db_table),
        }
        self.quote = quote
        self.where, self.where_params = where
        self.adapt = connection.ops.adapt_datetimefield_value
        self.position: tuple[Any, int] | None = None
        if position is not None:
            self.position = (self.adapt(position[0]), position[1])
        self.limit_sql = str(int(limit))
        # Rows per head: with one, a page of many rows often finds fewer distinct
        # heads than rows (most trackers quiet, a few busy), hence no bound, and
        # every busy tracker is read down to the page size. PostgreSQL only (SQLite
        # reads each head as a scalar subquery).
        self.head_rows = 1 if not self.postgres else max(1, min(8, int(limit) // HEAD_ROWS_EVERY))
        self.own, self.floor = own, floor
        lowest = "'-infinity'::timestamptz" if self.postgres else "''"
        self.bound = f"COALESCE((SELECT ts FROM _bound), {lowest})"
        self.floor_sql = f"COALESCE((SELECT ts FROM _floor), {lowest})"
        self.walk = False  # whether the page may walk the timeline first (see _walk)
        self.walk_only = False  # the walk alone, with a NULL id when unsettled (PostgreSQL)
        self.walk_check: tuple[str, list[Any]] | None = None  # the walked rows, counted
        self.walk_verbs: list[str] | None = None  # walk_verbs(): walk only these verbs
        self.scans = 0  # how many scans the fan-out makes (trackers times roles)
        self.floor_in_cr = False  # whether the tracker rows' cr includes the read mark
        self.direct = False  # whether sql() read the trackers' rows directly (_inline)

    def python_relations(self, trackers: Iterable[TrackerLike], since: bool) -> list[Relation]:
        """The trackers as literal rows, one relation per (keyed, verb set)."""
        groups: dict[tuple[bool, tuple[str, ...]], dict[Any, None]] = defaultdict(dict)
        adapt = self.adapt
        for tracker in trackers:
            key = tracker.tracked_key or ""
            created = adapt(tracker.created) if since else None
            verbs = tracker.verbs
            group = (bool(key), tuple(sorted(verbs)) if verbs else ())
            groups[group][(tracker.tracked_ct_id, key, created, tracker.actor_only)] = None
        relations = []
        for (keyed, verbs), found in sorted(groups.items()):
            rows = list(found)  # each tracker once, in the order given
            constants = None if keyed else sorted({row[0] for row in rows})
            if self.postgres:
                sql, params = _array_rows(rows, since)
            else:
                # Integers inline, keys and dates as parameters: SQLite caps parameters.
                values = ", ".join(
                    f"({int(ct)}, %s, {'%s' if since else 'NULL'}, {int(bool(ao))}, NULL)"
                    for ct, _k, _cr, ao in rows
                )
                sql = f"VALUES {values}"
                params = [v for _ct, k, cr, _ao in rows for v in ((k, cr) if since else (k,))]
            relations.append(Relation(sql, params, keyed, verbs, since, constants, rows))
        return relations

    def sql(
        self,
        relations: list[Relation],
        extra: list[tuple[str, list[Any]]] = (),  # type: ignore[assignment]
    ) -> tuple[str, list[Any]]:
        ctes: list[str] = []
        params: list[Any] = []
        if self.floor is not None:
            ctes.append(f"_floor(ts, id) AS ({self.floor[0]})")
            params += self.floor[1]
        for sql, extra_params in extra:
            ctes.append(sql)
            params += extra_params
        scans = self.scans
        if self.walk and (
            scans < WALK_MIN_SCANS or scans * WALK_ROWS_PER_SCAN < int(self.limit_sql)
        ):
            self.walk = False  # too few scans for a walk to pay
        if (
            0 < scans <= DIRECT_MAX_SCANS
            and not self.walk
            and all(relation.rows is not None for relation in relations)
        ):
            self.direct = True
            return self._inline(ctes, params, relations)
        self._tracker_ctes(relations, ctes, params)
        branches = [
            (relation, number, role)
            for number, relation in enumerate(relations)
            for role in ("actor", "targets", "related")
        ]
        self.gate = ""
        if self.walk:
            walk, walk_params = self._walk(relations, scans)
            ctes.append(walk)
            params += walk_params
            if self.walk_only and self.walk_check is not None:
                # Unsettled: fewer matches than the page, and the walked rows did not
                # reach the end of the timeline. Counted only then (an InitPlan runs
                # when first needed).
                walked, walked_params = self.walk_check
                sql = (
                    f"WITH {', '.join(ctes)} SELECT id FROM _w UNION ALL SELECT NULL WHERE "
                    f"(SELECT COUNT(*) FROM _w) < {self.limit_sql} AND {walked}"
                )
                return sql, [*params, *walked_params]
            # The fan-out runs only when the walk did not fill the page.
            self.gate = f"(SELECT COUNT(*) FROM _w) < {self.limit_sql}"
        heads, head_params = self._heads(branches)
        ctes.append(heads)
        params += head_params
        ctes.append(
            "_bound AS (SELECT ts, id FROM (SELECT DISTINCT ts, id FROM _heads) AS _d "
            f"ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ({self.limit_sql} - 1))"
        )
        parts: list[str] = []
        for branch, (relation, _number, role) in enumerate(branches):
            scan, scan_params = self._scan(relation, role, self.limit_sql, bounded=True)
            where = f"_t.g = {branch} AND _t.ts >= {self.bound}"
            if self.head_rows > 1:
                where += " AND _t.rn = 1"  # each tracker once: its newest head
            if self.postgres:
                parts.append(
                    f"SELECT _y.id, _y.ts FROM _heads AS _t CROSS JOIN LATERAL ({scan}) AS _y "
                    f"WHERE {where}"
                )
            else:
                # CROSS JOIN: SQLite then keeps the tracker rows as the outer loop
                # (it may otherwise scan every action, testing the IN for each).
                parts.append(
                    f"SELECT _a.id, _a.timestamp AS ts FROM _heads AS _t CROSS JOIN "
                    f"{self.action} AS _a WHERE {where} AND _a.id IN ({scan})"
                )
            params += scan_params
        union = " UNION ALL ".join(parts)
        if self.walk:
            union = f"SELECT id, ts FROM _w WHERE NOT {self.gate} UNION ALL {union}"
        sql = (
            f"WITH {', '.join(ctes)} SELECT _u.id FROM (SELECT DISTINCT _c.id, _c.ts "
            f"FROM ({union}) AS _c) AS _u ORDER BY _u.ts DESC, _u.id DESC LIMIT {self.limit_sql}"
        )
        return sql, params

    def _tracker_ctes(self, relations: list[Relation], ctes: list[str], params: list[Any]) -> None:
        """Add the tracker rows of each relation as ``_t<n>`` to ``ctes`` (and ``params``).

        With a read mark, each tracker row carries the later of its creation
        and the mark in ``cr``: one column for the scans to compare, where a
        subquery per scan cost PostgreSQL milliseconds to plan.
        """
        self.floor_in_cr = self.floor is not None
        for number, relation in enumerate(relations):
            if self.floor_in_cr:
                assert relation.since, "a read mark goes with trackers' creation times"
                ctes.append(f"_r{number}(ct, k, cr, ao, vb) AS ({relation.sql})")
                ctes.append(
                    f"_t{number}(ct, k, cr, ao, vb) AS (SELECT _r.ct, _r.k, "
                    f"{_later(self.floor_sql, '_r.cr')}, _r.ao, _r.vb FROM _r{number} AS _r)"
                )
            else:
                ctes.append(f"_t{number}(ct, k, cr, ao, vb) AS ({relation.sql})")
            params += relation.params

    def any_rows(
        self, relations: list[Relation], ctes: list[str], params: list[Any], rows: str
    ) -> str:
        """SQL: up to ``rows`` matching action ids, in no order.

        Tracker by tracker, each role's newest ``limit`` matching rows (the
        scans of a page), until ``rows`` are found: a count that only needs
        to know whether ``limit`` actions are unread stops at the first
        trackers that hold them, where ordering them would read every
        tracker's rows. An action comes once per tracker and role it matches.
        The tracker rows and their parameters go to ``ctes`` and ``params``;
        the SQL returned takes the scans' parameters, which follow.
        """
        self._tracker_ctes(relations, ctes, params)
        parts: list[str] = []
        for number, relation in enumerate(relations):
            # Whole-model content types as constants on PostgreSQL (see _heads): with a
            # parameter, the actor scan of a model that never acts walked the timeline.
            each = relation.constants if self.postgres and relation.constants else [None]
            for ct in each:
                scans: list[str] = []
                for role in ("actor", "targets", "related"):
                    scan, scan_params = self._scan(
                        relation,
                        role,
                        self.limit_sql,
                        bounded=False,
                        ct=ct,
                        only=None if role == "actor" else "NOT _t.ao",
                    )
                    # A tracker's roles one after the other: its rows come together.
                    scans.append(f"SELECT * FROM ({scan}) AS _s{len(scans)}")
                    params += scan_params
                roles = " UNION ALL ".join(scans)
                if not self.postgres:
                    # CROSS JOIN keeps the tracker rows the outer loop (see sql()).
                    parts.append(
                        f"SELECT _a.id FROM _t{number} AS _t CROSS JOIN {self.action} AS _a "
                        f"WHERE _a.id IN ({roles})"
                    )
                    continue
                where = "" if ct is None else f" WHERE _t.ct = {int(ct)}"
                parts.append(
                    f"SELECT _y.id FROM _t{number} AS _t CROSS JOIN LATERAL ({roles}) AS _y{where}"
                )
        return f"{' UNION ALL '.join(parts)} LIMIT {rows}"

    def _inline(
        self, ctes: list[str], params: list[Any], relations: list[Relation]
    ) -> tuple[str, list[Any]]:
        """For a few trackers given from Python: each one's newest rows, values inlined.

        An object's stream is one tracker: with its content type and key in
        the scans themselves (no tracker rows to join), the statement is
        planned about twice as fast as one reading them from a relation.
        On PostgreSQL the scans are the members of a ``UNION`` (which drops
        the actions found twice): without a subquery around each scan and a
        ``DISTINCT`` around them, an object's page was planned and parsed 0.05
        ms faster (7% of its round trip). SQLite takes no ``ORDER BY`` or
        ``LIMIT`` in a compound's member outside a subquery.
        """
        parts: list[str] = []
        for relation in relations:
            assert relation.rows is not None
            for row in relation.rows:
                for role in ("actor",) if row[3] else ("actor", "targets", "related"):
                    scan, scan_params = self._scan(
                        relation, role, self.limit_sql, bounded=False, row=row
                    )
                    if self.postgres:
                        parts.append(f"({scan})")
                    else:
                        parts.append(f"SELECT * FROM ({scan}) AS _d{len(parts)}")
                    params += scan_params
        with_ = f"WITH {', '.join(ctes)} " if ctes else ""
        if self.postgres:
            found = f"({' UNION '.join(parts)}) AS _u"
        else:
            union = " UNION ALL ".join(parts)
            found = f"(SELECT DISTINCT _c.id, _c.ts FROM ({union}) AS _c) AS _u"
        sql = (
            f"{with_}SELECT _u.id FROM {found} "
            f"ORDER BY _u.ts DESC, _u.id DESC LIMIT {self.limit_sql}"
        )
        return sql, params

    def _walk(self, relations: list[Relation], scans: int) -> tuple[str, list[Any]]:
        """``_w``: the page by walking the timeline, if its newest rows hold enough matches.

        At most ``rows`` actions are read, newest first, each checked against
        the trackers' rows; the walk stops at the ``limit``-th match.
        It wins when the followed objects are busy and costs little when they
        are not: ``rows`` follows the number of scans the fan-out would make.

        Sets, by (role, kind): role ``actor`` (every tracker) or ``links``
        (those not actor-only, for targets and related); kind ``object``
        (rows of content type and key), ``model`` (content type), and both
        again with a verb for trackers limited to some verbs. They are read
        from the tracker relations ``_t<n>`` and compared as row values, hashed
        or indexed once (text tokens built from them made SQLite's walk two and
        a half times as slow for 2,000 trackers).
        """
        action = self.action
        rows = min(WALK_MAX_ROWS, int(scans * WALK_ROWS_PER_SCAN))
        ctes: list[str] = []
        params: list[Any] = []
        # Each set's rows, by (role, kind): a tracker's content type, then its key
        # (objects), then a verb (trackers limited to some verbs).
        selects: dict[tuple[str, str], list[tuple[str, list[Any]]]] = defaultdict(list)
        for number, relation in enumerate(relations):
            assert relation.verbs is not None, "walks read tracker rows given from Python"
            assert relation.rows is not None, "walks read tracker rows given from Python"
            kind, columns = ("object", "_t.ct, _t.k") if relation.keyed else ("model", "_t.ct")
            if relation.verbs:
                kind += " verb"
                # Each (tracker, verb): the verbs of this relation are the same for its rows.
                each = " UNION ALL ".join(
                    ["SELECT CAST(%s AS TEXT) AS verb"] * len(relation.verbs)
                )
                source = f"_t{number} AS _t CROSS JOIN ({each}) AS _vb"
                columns += ", _vb.verb"
                source_params = list(relation.verbs)
            else:
                source, source_params = f"_t{number} AS _t", []
            selects[("actor", kind)].append((f"SELECT {columns} FROM {source}", source_params))
            if not all(row[3] for row in relation.rows):  # some trackers are not actor-only
                selects[("links", kind)].append(
                    (f"SELECT {columns} FROM {source} WHERE NOT _t.ao", source_params)
                )
        sets: dict[tuple[str, str], str] = {}
        for number, (key, parts) in enumerate(sorted(selects.items())):
            name = sets[key] = f"_wt{number}"
            ctes.append(f"{name} AS ({' UNION ALL '.join(sql for sql, _p in parts)})")
            params += [value for _sql, part_params in parts for value in part_params]

        # SQLite walks the action table itself (see below): its conditions name it.
        inline = not self.postgres
        a = action if inline else "_a"

        def match(ct: str, key: str, role: str) -> str:
            """SQL: the action's object in this role is in one of the role's sets."""
            kinds = {"object": f"{ct}, {key}", "model": ct}
            terms = []
            for kind, row in kinds.items():
                if (role, kind) in sets:
                    terms.append(f"({row}) IN (SELECT * FROM {sets[(role, kind)]})")
                if (role, f"{kind} verb") in sets:
                    name = sets[(role, f"{kind} verb")]
                    terms.append(f"({row}, {a}.verb) IN (SELECT * FROM {name})")
            if self.postgres:
                # IS TRUE keeps each IN a subplan, its set hashed once: PostgreSQL
                # turns a lone IN of a link's EXISTS into a join, which built the
                # set again for every walked action (twice the whole walk for
                # 2,000 trackers).
                terms = [f"({term}) IS TRUE" for term in terms]
            return " OR ".join(terms)

        conditions: list[str] = []
        if any(role == "actor" for role, _kind in sets):
            conditions.append(match(f"{a}.actor_ct_id", f"{a}.actor_key", "actor"))
        if any(role == "links" for role, _kind in sets):
            # OFFSET 0 keeps PostgreSQL from hashing the whole link table instead of
            # probing each walked action's links through the index on action_id.
            fence = " OFFSET 0" if self.postgres else ""
            for role in ("targets", "related"):
                conditions.append(
                    f"EXISTS (SELECT 1 FROM {self.links[role]} AS _l WHERE _l.action_id = {a}.id "
                    f"AND ({match('_l.obj_ct_id', '_l.obj_key', 'links')}){fence})"
                )
        position, position_params = "", []
        if self.position is not None:
            timestamp, pk = self.position
            position = (
                f" AND {action}.timestamp <= %s AND ({action}.timestamp < %s OR {action}.id < %s)"
            )
            position_params = [timestamp, timestamp, pk]
        columns = (
            f"{action}.id, {action}.timestamp, {action}.actor_ct_id, {action}.actor_key, "
            f"{action}.verb"
        )
        order = f"ORDER BY {action}.timestamp DESC, {action}.id DESC LIMIT {rows}"
        # Walking some verbs only: one index range per verb, merged.
        verbs: list[str | None] = [*self.walk_verbs] if self.walk_verbs else [None]

        def per_verb(select: str, rest: str, *, filtered: bool = True) -> list[str]:
            """One statement per walked verb (one for all verbs), parameters in order.

            ``filtered=False``: without the queryset's filters, which the
            timeline and verb indexes do not hold.
            """
            statements = []
            for verb in verbs:
                conditions = [f"({self.where})"] if filtered else []
                if verb is not None:
                    conditions.append(f"{action}.verb = %s")
                where = " AND ".join(conditions) or "1 = 1"
                statements.append(f"{select} FROM {action} WHERE {where}{position}{rest}")
                params.extend(
                    [
                        *(self.where_params if filtered else []),
                        *([] if verb is None else [verb]),
                        *position_params,
                    ]
                )
            return statements

        if inline:
            # SQLite sorts a derived table's matches before taking the first
            # ones, reading every walked row: the walk reads the timeline (or
            # each verb's) index itself, down to the oldest of the newest
            # ``rows`` actions (_wh), and stops at the ``limit``-th match.
            # _wh reads the index alone: filtering there cost a table row per
            # action, as much as the walk. Its rows are a bound on work only:
            # a walk short of the page hands it to the fan-out.
            single = len(verbs) == 1
            newest_parts = per_verb(
                f"SELECT {action}.timestamp AS ts, {action}.id AS id",
                f" ORDER BY {action}.timestamp DESC, {action}.id DESC "
                + (f"LIMIT 1 OFFSET {rows - 1}" if single else f"LIMIT {rows}"),
                filtered=False,
            )
            if single:
                ctes.append(f"_wh(ts, id) AS ({newest_parts[0]})")
            else:
                merged = " UNION ALL ".join(f"SELECT * FROM ({part})" for part in newest_parts)
                ctes.append(
                    f"_wh(ts, id) AS (SELECT ts, id FROM ({merged}) "
                    f"ORDER BY ts DESC, id DESC LIMIT 1 OFFSET {rows - 1})"
                )
            horizon = (
                f"{action}.timestamp >= COALESCE((SELECT ts FROM _wh), '') AND "
                f"({action}.timestamp > COALESCE((SELECT ts FROM _wh), '') OR "
                f"{action}.id >= COALESCE((SELECT id FROM _wh), 0))"
            )
            walk_parts = per_verb(
                f"SELECT {action}.id AS id, {action}.timestamp AS ts",
                f" AND {horizon} AND ({' OR '.join(conditions) or '1 = 0'}) "
                f"ORDER BY {action}.timestamp DESC, {action}.id DESC LIMIT {self.limit_sql}",
            )
            if len(walk_parts) == 1:
                ctes.append(f"_w AS ({walk_parts[0]})")
            else:  # each verb's first matches, merged
                merged = " UNION ALL ".join(f"SELECT * FROM ({part})" for part in walk_parts)
                ctes.append(
                    f"_w AS (SELECT id, ts FROM ({merged}) "
                    f"ORDER BY ts DESC, id DESC LIMIT {self.limit_sql})"
                )
            return ", ".join(ctes), params
        before = len(params)
        newest_parts = per_verb(f"SELECT {columns}", f" {order}")
        newest_params = params[before:]
        if len(newest_parts) == 1:
            newest = newest_parts[0]
        else:
            merged = " UNION ALL ".join(
                f"SELECT * FROM ({part}) AS _v{number}" for number, part in enumerate(newest_parts)
            )
            newest = f"SELECT * FROM ({merged}) AS {action} {order}"
        ctes.append(
            f"_w AS (SELECT _a.id, _a.timestamp AS ts FROM ({newest}) AS _a "
            f"WHERE {' OR '.join(conditions) or '1 = 0'} "
            f"ORDER BY _a.timestamp DESC, _a.id DESC LIMIT {self.limit_sql})"
        )
        if self.walk_only:
            # The newest rows again, counted: as many as the walk reads means there are
            # older ones it did not read.
            self.walk_check = (f"(SELECT COUNT(*) FROM ({newest}) AS _n) >= {rows}", newest_params)
        return ", ".join(ctes), params

    def _heads(self, branches: list[tuple[Relation, int, str]]) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        columns = "_t.ct, _t.k, _t.cr, _t.ao, _t.vb"
        for branch, (relation, number, role) in enumerate(branches):
            # Whole-model trackers, few per user: on PostgreSQL each content type is a
            # constant, so the planner sees from statistics how busy that model is.
            each = relation.constants if self.postgres and relation.constants else [None]
            for ct in each:
                filters = [] if role == "actor" else ["NOT _t.ao"]
                if self.gate:
                    filters.append(self.gate)
                filter_params: list[Any] = []
                if ct is not None:
                    filters.append(f"_t.ct = {int(ct)}")
                where = f" WHERE {' AND '.join(filters)}" if filters else ""
                size = str(self.head_rows)
                scan, scan_params = self._scan(relation, role, size, bounded=False, ct=ct)
                if self.postgres and self.head_rows > 1:
                    parts.append(
                        f"SELECT {branch} AS g, {columns}, _x.ts, _x.id, _x.rn FROM "
                        f"_t{number} AS _t CROSS JOIN LATERAL (SELECT _s.ts, _s.id, row_number() "
                        f"OVER (ORDER BY _s.ts DESC, _s.id DESC) AS rn FROM ({scan}) AS _s) "
                        f"AS _x{where}"
                    )
                elif self.postgres:
                    parts.append(
                        f"SELECT {branch} AS g, {columns}, _x.ts, _x.id FROM _t{number} AS _t "
                        f"CROSS JOIN LATERAL ({scan}) AS _x{where}"
                    )
                else:
                    parts.append(
                        f"SELECT {branch} AS g, {columns}, ({scan}) AS id "
                        f"FROM _t{number} AS _t{where}"
                    )
                params += scan_params + filter_params
        union = " UNION ALL ".join(parts)
        if self.postgres:
            return f"_heads AS ({union})", params
        return (
            f"_h AS ({union}), _heads AS (SELECT _h.*, _a.timestamp AS ts FROM _h "
            f"CROSS JOIN {self.action} AS _a WHERE _a.id = _h.id)"
        ), params

    def _scan(
        self,
        relation: Relation,
        role: str,
        size: str,
        *,
        bounded: bool,
        ct: int | None = None,
        row: tuple[int, str, Any, bool] | None = None,
        only: str | None = None,
    ) -> tuple[str, list[Any]]:
        """The newest ``size`` matching rows of the tracker row ``_t`` in ``role``.

        With ``row`` (content type, key, creation, actor only), that tracker's
        values stand in the scan instead of ``_t``'s, and it selects the
        timestamp and id on every database. ``only``: a condition on ``_t``
        alone, which skips the scan when false.
        """
        action = self.action
        if role == "actor":
            source = action
            ts, ident = f"{action}.timestamp", f"{action}.id"
            ct_column, key = f"{action}.actor_ct_id", f"{action}.actor_key"
        else:
            source = f"{self.links[role]} AS _l"
            ts, ident = "_l.timestamp", "_l.action_id"
            ct_column, key = "_l.obj_ct_id", "_l.obj_key"
        params: list[Any] = []
        if row is not None:
            ct = row[0]
        # A whole-model content type is inlined: a literal, even in a prepared
        # statement, lets the planner see from statistics how busy that model is.
        conditions = [f"{ct_column} = {'_t.ct' if ct is None else int(ct)}"]
        if only is not None:
            conditions.insert(0, only)
        if relation.keyed:
            conditions.append(f"{key} = {'_t.k' if row is None else '%s'}")
            params += [] if row is None else [row[1]]
        if relation.since:
            conditions.append(f"{ts} > {'_t.cr' if row is None else '%s'}")
            params += [] if row is None else [row[2]]
        if self.floor is not None and not (self.floor_in_cr and row is None):
            conditions.append(f"{ts} > {self.floor_sql}")
        # Conditions on the action itself: a link scan joins it, or checks them in a
        # subquery per link row (see below).
        checks: list[str] = []
        check_params: list[Any] = []
        if relation.verbs is None:
            checks.append(_verbs_match(self.postgres, "_t.vb", f"{action}.verb"))
        elif relation.verbs:
            checks.append(f"{action}.verb IN ({', '.join(['%s'] * len(relation.verbs))})")
            check_params += relation.verbs
        if self.position is not None:
            timestamp, pk = self.position
            # The first part bounds the index range; the second breaks ties.
            conditions.append(f"{ts} <= %s AND ({ts} < %s OR {ident} < %s)")
            params += [timestamp, timestamp, pk]
        if bounded:
            conditions.append(f"{ts} >= {self.bound}")
        if self.own is not None and role != "actor":
            # Own actions count through the actor role only (a tracker of oneself).
            checks.append(_not_by(f"{action}.actor_ct_id", f"{action}.actor_key"))
            check_params += list(self.own)
        if self.where != _NO_FILTER:
            checks.append(f"({self.where})")
            check_params += self.where_params
        if role == "actor" or not checks:
            # The actor role reads the action table itself. A link scan with nothing to
            # check on the action (an object's stream) reads the link rows alone, a
            # join less to plan and run.
            conditions += checks
            params += check_params
        elif self.postgres:
            # A scalar subquery per link row rather than a join: the same index probe
            # of each row's action, but PostgreSQL plans it as one filter instead of
            # weighing join orders and methods in every scan of the statement. On the
            # benchmark's S data, a whole-model user's page took 28% less time, and
            # sparse users' about 10% less (no user type took longer).
            conditions.append(
                f"(SELECT {' AND '.join(checks)} FROM {action} WHERE {action}.id = _l.action_id)"
            )
            params += check_params
        else:
            source = f"{self.links[role]} AS _l JOIN {action} ON {action}.id = _l.action_id"
            conditions += checks
            params += check_params
        columns = f"{ts} AS ts, {ident} AS id" if self.postgres or row else ident
        # The equal leading columns in the order too: it is then the index's own.
        order = [ct_column, key] if relation.keyed else [ct_column]
        where_order = (
            f"WHERE {' AND '.join(conditions)} "
            f"ORDER BY {', '.join(order)}, {ts} DESC, {ident} DESC LIMIT {size}"
        )
        if not relation.keyed and role != "actor":
            # A model's link rows hold an action once per object of that model it
            # names: the newest ``size`` distinct actions, whose rows are adjacent in
            # the index's order. (Its first ``size`` rows could hold fewer actions,
            # and a page then missed the next ones.)
            outer = "_dq.ts, _dq.id" if self.postgres or row else "_dq.id"
            sql = (
                f"SELECT {outer} FROM (SELECT DISTINCT {ct_column}, {ts} AS ts, {ident} AS id "
                f"FROM {source} {where_order}) AS _dq"
            )
        else:
            sql = f"SELECT {columns} FROM {source} {where_order}"
        return sql, params
