"""Feed pages by fan-out on read: per-tracker newest-N, then merge.

A feed's tracker condition is a :class:`TrackerMatch` in the queryset's
``WHERE``. Iterating the queryset evaluates it as one boolean condition. A
``page()`` instead replaces it with one branch per (role, kind of tracker,
verb set); each branch takes, for every tracker of a ``VALUES`` list, the
newest ``N`` matching rows through the per-object indexes
(content type, key, timestamp, id), with every other filter of the queryset
applied inside the branch so that no page skips a row. The union of the
branches holds at most ``N`` rows per tracker and role; the page is its
newest ``N``. On PostgreSQL the per-tracker scan is a ``LATERAL`` subquery,
on SQLite a correlated ``IN`` subquery.

For a user with very many trackers the per-tracker scans cost more than
walking the timeline backwards until ``N`` rows match, so above
:data:`MAX_FANOUT_TRACKERS` the page falls back to the plain condition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connections
from django.db.models import BooleanField, Expression, Q
from django.db.models.expressions import RawSQL
from django.db.models.lookups import Exact

if TYPE_CHECKING:
    import datetime as dt

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from actrack.querysets import ActionQuerySet, TrackerLike

#: Above this many trackers a page walks the timeline instead (see module docs).
MAX_FANOUT_TRACKERS = 1000

# Link tables by role, with the name Action's reverse relation has in queries.
_ROLES = (("actor", None), ("targets", "actiontarget"), ("related", "actionrelated"))


class TrackerMatch(Expression):
    """Boolean condition: the action matches one of ``trackers`` (see ``tracker_condition``)."""

    conditional = True
    output_field = BooleanField()
    where: Any = None  # the compiled condition, set by resolve_expression()

    def __init__(self, trackers: Iterable[TrackerLike]) -> None:
        super().__init__()
        self.trackers = tuple(trackers)

    def __repr__(self) -> str:
        return f"TrackerMatch(<{len(self.trackers)} trackers>)"

    def resolve_expression(
        self,
        query: Any = None,
        allow_joins: bool = True,
        reuse: Any = None,
        summarize: bool = False,
        for_save: bool = False,
    ) -> TrackerMatch:
        from actrack.querysets import tracker_condition

        clone = self.copy()
        condition = tracker_condition(self.trackers)
        clone.where = query.build_where(condition if condition is not None else Q(pk__in=[]))
        return clone

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        sql, params = compiler.compile(self.where)
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
    queryset: ActionQuerySet, position: tuple[dt.datetime, int] | None, limit: int
) -> tuple[str, list[Any]] | None:
    """SQL selecting the ids of the next page (newest first), or None for the plain plan."""
    match = _find_match(queryset)
    if match is None:
        return None
    index, expression = match
    trackers = expression.trackers
    if not trackers or len(trackers) > MAX_FANOUT_TRACKERS:
        return None
    base = queryset.all()  # a clone: its WHERE can be changed
    del base.query.where.children[index]
    base = base.order_by()
    vendor = connections[queryset.db].vendor
    if vendor not in ("postgresql", "sqlite"):
        return None
    parts: list[str] = []
    params: list[Any] = []
    for (role, keyed, verbs), rows in _groups(trackers).items():
        branch = _branch(base, role, keyed, verbs, position, limit)
        sql, branch_params = branch.query.sql_with_params()
        values, value_params = _values(rows, keyed)
        if vendor == "postgresql":
            parts.append(
                f"SELECT _x.id, _x.timestamp FROM (VALUES {values}) "
                f"AS _t({'ct, k' if keyed else 'ct'}) CROSS JOIN LATERAL ({sql}) AS _x"
            )
        else:
            columns = "column1 AS ct, column2 AS k" if keyed else "column1 AS ct"
            table = connections[queryset.db].ops.quote_name(queryset.model._meta.db_table)
            parts.append(
                f"SELECT _h.id, _h.timestamp FROM (SELECT {columns} FROM (VALUES {values})) "
                f"AS _t JOIN {table} AS _h ON _h.id IN ({sql})"
            )
        params += value_params + list(branch_params)
    # The page's ids themselves, so the outer query only looks up ``limit`` keys.
    union = " UNION ALL ".join(parts)
    sql = (
        f"SELECT _u.id FROM (SELECT DISTINCT _c.id, _c.timestamp FROM ({union}) AS _c) AS _u "
        f"ORDER BY _u.timestamp DESC, _u.id DESC LIMIT %s"
    )
    return sql, [*params, limit]


def _groups(
    trackers: Iterable[TrackerLike],
) -> dict[tuple[str, bool, tuple[str, ...]], list[tuple[int, str]]]:
    """Trackers by (role, keyed, verbs): the rows of each branch's VALUES list."""
    groups: dict[tuple[str, bool, tuple[str, ...]], set[tuple[int, str]]] = defaultdict(set)
    for tracker in trackers:
        verbs = tuple(sorted(tracker.verbs or ()))
        keyed = bool(tracker.tracked_key)
        row = (tracker.tracked_ct_id, tracker.tracked_key or "")
        for role, _link in _ROLES:
            if role == "actor" or not tracker.actor_only:
                groups[(role, keyed, verbs)].add(row)
    return {key: sorted(rows) for key, rows in sorted(groups.items())}


def _values(rows: list[tuple[int, str]], keyed: bool) -> tuple[str, list[Any]]:
    if keyed:
        return ", ".join(["(%s, %s)"] * len(rows)), [v for row in rows for v in row]
    cts = sorted({ct for ct, _key in rows})
    return ", ".join(["(%s)"] * len(cts)), list(cts)


def _branch(
    base: ActionQuerySet,
    role: str,
    keyed: bool,
    verbs: tuple[str, ...],
    position: tuple[dt.datetime, int] | None,
    limit: int,
) -> Any:
    """Newest ``limit`` ids of ``base`` for one tracker of the VALUES list ``_t``."""
    link = dict(_ROLES)[role]
    if link is None:  # the actor columns of Action itself
        ct, key, stamp, ident = "actor_ct_id", "actor_key", "timestamp", "id"
    else:
        ct, key = f"{link}__obj_ct_id", f"{link}__obj_key"
        stamp, ident = f"{link}__timestamp", f"{link}__action_id"
    condition = Q(**{ct: RawSQL("_t.ct", ())})
    if keyed:
        condition &= Q(**{key: RawSQL("_t.k", ())})
    if position is not None:
        timestamp, pk = position
        condition &= Q(**{f"{stamp}__lt": timestamp}) | Q(**{stamp: timestamp, f"{ident}__lt": pk})
    branch = base.filter(condition)  # one filter() call: one join to the link table
    if verbs:
        branch = branch.filter(verb__in=verbs)
    columns = ("id", "timestamp") if connections[base.db].vendor == "postgresql" else ("id",)
    return branch.order_by(f"-{stamp}", f"-{ident}").values(*columns)[:limit]
