"""The unread count's statements, built on the page's scans (:mod:`actrack.fanout`).

The count first walks the newest actions, checking each against the tracker
table, and stops at its cap (:func:`recent_count_sql`); when that falls short,
it uses the page's scans with the tracker rows read from the tracker table
(:func:`count_unread_sql`): capped, the rows they find first, tracker by
tracker (:meth:`~actrack.fanout.Statement.any_rows`), else the page statement.
A capped count that reached its cap is checked next time on the unread actions
it found, one by one (:func:`witness_count_sql`). Which of them runs, and when
a function serves them, is :mod:`actrack.readstate`'s and
:mod:`actrack.countfunction`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from actrack.fanout import Relation, Statement, later, not_by, read_floor, verbs_match

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


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
    tracker, rather than the newest (:meth:`Statement.any_rows`). It reads
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
    statement: Statement,
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
    statement: Statement,
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


def _streamed(statement: Statement) -> str:
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


def _count_statement(user: Any, connection: BaseDatabaseWrapper, limit: int) -> Statement:
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
    return Statement(connection, where, None, limit, own=user_ref(user), floor=floor)


#: The value the count's statements take for ``READABLE_LEVEL`` while
#: ``actrack.countfunction`` writes its function from them (context-local: other
#: threads' counts keep the setting).
READABLE_LEVEL_STAND_IN: ContextVar[int | None] = ContextVar(
    "actrack_readable_level_stand_in", default=None
)


def _limit_cte(statement: Statement, user: Any, cap: int) -> tuple[str, list[Any]]:
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


def _reach_cte(statement: Statement, user: Any) -> tuple[str, list[Any]]:
    """``_rs(lo, b, wm)``: the walk's lowest floor, its length, and whether the user
    follows a model (1 or 0). Needs ``_floor``."""
    from actrack.models import Tracker

    tracker = statement.quote(Tracker._meta.db_table)
    rows_each, least = int(RECENT_ROWS_PER_TRACKER), int(RECENT_MIN)
    return (
        f"_rs(lo, b, wm) AS (SELECT MIN({later(statement.floor_sql, 'created')}), {least} + "
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
    statement: Statement,
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
    verbs = verbs_match(statement.postgres, "_k.verbs", "_a.vb")
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
        own = f"{not_by('_a.ct', '_a.k')} AND "
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
