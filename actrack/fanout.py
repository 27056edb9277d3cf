"""The statement of a feed page, in two passes over the user's trackers.

1. heads: for every tracker and role, its newest matching row (one index
   descent, and a primary-key lookup for the filters on the action);
2. bound: the ``N``-th newest distinct head. At least ``N`` matching actions
   are that new, so the page holds nothing older;
3. page: only the trackers whose head reaches the bound are read again,
   down to the bound; the union, without duplicates, gives the newest ``N``.

Every other filter of the queryset applies inside each scan, so a page never
skips a row. Tracker rows travel as arrays (``unnest``) on PostgreSQL and as
a ``VALUES`` list on SQLite, which has no ``LATERAL`` and uses correlated
subqueries instead. A few trackers given from Python are scanned directly
(:meth:`Statement._inline`); many trackers may first walk the timeline
(:meth:`Statement._walk`). The unread count builds on the same scans
(:mod:`actrack.countsql`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import datetime as dt

    from django.db.backends.base.base import BaseDatabaseWrapper

    from actrack.querysets import TrackerLike


#: Rows a page may walk down the timeline per fan-out scan it would save (a walked
#: row costs about what a scan does), and at most; with fewer scans than
#: ``WALK_MIN_SCANS`` a page fans out at once.
WALK_ROWS_PER_SCAN = 1.0
WALK_MAX_ROWS = 5_000
WALK_MIN_SCANS = 100
#: Heads take one more row per this many rows of the page (at most 8): see Statement.
HEAD_ROWS_EVERY = 25
#: Up to this many scans (trackers times roles), a page reads each tracker's newest
#: rows directly, without the heads-and-bound passes.
DIRECT_MAX_SCANS = 6
#: At most this many verbs for a walk restricted to the trackers' verbs (one index
#: range each, merged).
WALK_MAX_VERBS = 8
#: The queryset's other filters when it has none.
NO_FILTER = "1 = 1"


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


def read_floor(user: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]] | None:
    """SQL for ``user``'s read mark: unread actions are newer, so scans stop there."""
    from actrack.models import ReadMark

    if user is None:
        return None
    mark = connection.ops.quote_name(ReadMark._meta.db_table)
    sql = f"SELECT _m.read_until, _m.last_read_id FROM {mark} AS _m WHERE _m.user_id = %s"
    return sql, [user.pk]


def verbs_match(postgres: bool, verbs: str, verb: str) -> str:
    """SQL: the tracker whose JSON ``verbs`` column this is takes ``verb`` (none: all)."""
    if postgres:
        return f"({verbs} = '[]'::jsonb OR {verbs} ? {verb})"
    return (
        f"({verbs} = '[]' OR EXISTS (SELECT 1 FROM json_each({verbs}) AS _v "
        f"WHERE _v.value = {verb}))"
    )


def later(first: str, second: str) -> str:
    """SQL: the later of two timestamps (SQLite has no ``GREATEST``)."""
    return f"CASE WHEN {first} > {second} THEN {first} ELSE {second} END"


def not_by(ct: str, key: str) -> str:
    """SQL: the actor (``ct``, ``key`` columns) is not the one of the two parameters."""
    return f"NOT (COALESCE({ct}, 0) = %s AND COALESCE({key}, '') = %s)"


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


class Statement:
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
                    f"{later(self.floor_sql, '_r.cr')}, _r.ao, _r.vb FROM _r{number} AS _r)"
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
            checks.append(verbs_match(self.postgres, "_t.vb", f"{action}.verb"))
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
            checks.append(not_by(f"{action}.actor_ct_id", f"{action}.actor_key"))
            check_params += list(self.own)
        if self.where != NO_FILTER:
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
