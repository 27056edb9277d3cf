"""Read / unread state.

An action is unread for user U when ``TRACK_UNREAD`` is on and:

- one of U's trackers matches it (as in feeds: role, verbs, whole-model
  trackers) and that tracker was created before the action's timestamp;
- its level is at least ``READABLE_LEVEL``;
- U is not its actor, unless U follows itself (a tracker matching U as actor);
- U has not read it: its timestamp is after U's read mark (:class:`ReadMark`,
  moved to the present by "mark all read") and there is no
  :class:`ReadAction` for it.

Nothing is stored for unread actions, and computing any of this never writes.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from django.db import connections, router, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from actrack.conf import app_settings
from actrack.keys import content_type_for
from actrack.memo import note_now, remember, within
from actrack.rows import reading_cursor

if TYPE_CHECKING:
    from actrack.models import Action, Tracker
    from actrack.querysets import ActionQuerySet


def user_ref(user: Any) -> tuple[int, str]:
    return content_type_for(user).pk, str(user.pk)


def _read_mark(user: Any, using: str) -> tuple[Any, int] | None:
    """The user's ``(read_until, last_read_id)``, or None before any "mark all read"."""
    from actrack.models import ReadMark

    mark = (
        ReadMark.objects.using(using).filter(user=user).values_list("read_until", "last_read_id")
    )
    return next(iter(mark), None)


def _matches(tracker: Tracker, action: Action, *, as_actor: bool) -> bool:
    if not as_actor and tracker.actor_only:
        return False
    if tracker.verbs and action.verb not in tracker.verbs:
        return False
    return tracker.created < action.timestamp


def unread_flags(user: Any, actions: Sequence[Action]) -> list[bool]:
    """One flag per action (same order); a constant number of queries."""
    from actrack.models import ReadAction, Tracker
    from actrack.rendering import link_refs

    actions = list(actions)
    if not actions or not app_settings.TRACK_UNREAD or user is None or user.pk is None:
        return [False] * len(actions)
    floor = app_settings.READABLE_LEVEL
    candidates = [a for a in actions if a.pk is not None and a.level >= floor]
    if not candidates:
        return [False] * len(actions)
    using = candidates[0]._state.db or "default"
    trackers = list(Tracker.objects.using(using).owned_by(user))
    if not trackers:
        return [False] * len(actions)
    by_object: dict[tuple[int, str], list[Tracker]] = defaultdict(list)
    by_model: dict[int, list[Tracker]] = defaultdict(list)
    for tracker in trackers:
        if tracker.tracked_key:
            by_object[(tracker.tracked_ct_id, tracker.tracked_key)].append(tracker)
        else:
            by_model[tracker.tracked_ct_id].append(tracker)
    mark = _read_mark(user, using)
    ids = [a.pk for a in candidates if mark is None or (a.timestamp > mark[0] and a.pk > mark[1])]
    read = set(
        ReadAction.objects.using(using)
        .filter(user=user, action_id__in=ids)
        .values_list("action_id", flat=True)
    )
    needs_links = any(not t.actor_only for t in trackers)
    links = link_refs(ids, using) if needs_links and ids else {}
    own = user_ref(user)

    def unread(action: Action) -> bool:
        if action.pk is None or action.level < floor or action.pk in read:
            return False
        if mark is not None and (action.timestamp <= mark[0] or action.pk <= mark[1]):
            return False
        refs: list[tuple[tuple[int, str], bool]] = []
        if action.actor_ct_id is not None and action.actor_key is not None:
            refs.append(((action.actor_ct_id, action.actor_key), True))
        if (action.actor_ct_id, action.actor_key) != own:
            refs.extend((ref, False) for ref in links.get(action.pk, ()))
        return any(
            _matches(tracker, action, as_actor=as_actor)
            for ref, as_actor in refs
            for tracker in (*by_object.get(ref, ()), *by_model.get(ref[0], ()))
        )

    return [unread(action) for action in actions]


def mark_read(user: Any, actions: Sequence[Action], *, force: bool = False) -> list[bool]:
    """Mark unread actions read; one flag per action: True when it was unread and now read.

    With ``AUTO_READ`` off nothing is marked unless ``force``.
    """
    from actrack.models import ReadAction

    actions = list(actions)
    if not force and not app_settings.AUTO_READ:
        return [False] * len(actions)
    flags = unread_flags(user, actions)
    to_mark = {a.pk: a for a, flag in zip(actions, flags, strict=True) if flag}
    if to_mark:
        using = router.db_for_write(ReadAction, instance=next(iter(to_mark.values())))
        now = timezone.now()
        ReadAction.objects.using(using).bulk_create(
            # In key order, so concurrent calls never lock in opposite orders.
            [ReadAction(user=user, action_id=pk, read_at=now) for pk in sorted(to_mark)],
            ignore_conflicts=True,
        )
    return flags


def mark_all_read(user: Any, using: str | None = None) -> None:
    """Everything logged so far becomes read for ``user``: one statement.

    See :class:`~actrack.models.ReadMark` for what the mark covers.
    Without ``using``, the database is the routers' choice for ``ReadMark``
    with ``user`` as the instance hint, else the user's own database.
    """
    from actrack.models import Action, ReadMark

    db = using or router.db_for_write(ReadMark, instance=user)
    connection = connections[db]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("user_id", "last_read_id", "read_until", "updated"))
    updates = ", ".join(
        f"{quote(c)} = excluded.{quote(c)}" for c in ("last_read_id", "read_until", "updated")
    )
    sql = (
        f"INSERT INTO {quote(ReadMark._meta.db_table)} ({columns}) "
        f"SELECT %s, COALESCE(MAX({quote('id')}), 0), %s, %s "
        f"FROM {quote(Action._meta.db_table)} WHERE 1 = 1 "
        f"ON CONFLICT ({quote('user_id')}) DO UPDATE SET {updates}"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, now, now])
    forget_counts(user, db)  # nothing is above the new floors


QS = TypeVar("QS", bound="ActionQuerySet")


def unread_queryset(queryset: QS, user: Any, trackers: Iterable[Any] | None = None) -> QS:
    """``queryset`` restricted to the actions unread for ``user`` (SQL, no writes).

    ``trackers``: the user's trackers (fields ``tracked_ct_id``, ``tracked_key``,
    ``verbs``, ``actor_only`` and ``created``), read from the database when omitted.
    """
    from actrack.feedengine import TrackerMatch
    from actrack.models import ReadAction, ReadMark
    from actrack.querysets import tracker_rows

    if not app_settings.TRACK_UNREAD:
        return queryset.none()
    trackers = tracker_rows(user, queryset.db) if trackers is None else list(trackers)
    if not trackers:
        return queryset.none()
    marked = ReadMark.objects.filter(
        Q(read_until__gte=OuterRef("timestamp")) | Q(last_read_id__gte=OuterRef("pk")), user=user
    )
    read = ReadAction.objects.filter(user=user, action=OuterRef("pk"))
    return (
        queryset.filter(TrackerMatch(trackers, unread_for=user))
        .visible()
        .exclude(Exists(marked))
        .exclude(Exists(read))
    )


def unread_count(user: Any, *, cap: int | None = None, using: str | None = None) -> int:
    """How many actions are unread for ``user`` (at most ``cap`` when given): one query.

    A small statement checks the newest actions one by one, down to the
    trackers' floors (their creation or the read mark, whichever is later) or
    until ``cap`` are unread (:func:`actrack.countsql.recent_count_sql`):
    enough for a user who has just read, whose trackers are new, or whose
    unread actions are frequent among the newest. Otherwise the feed engine's
    statement counts (:func:`actrack.countsql.count_unread_sql`), reading
    the user's tracker rows itself: its cost follows the number of trackers
    and the unread actions, not the size of the tables or the history already
    read. A capped count takes the unread actions it finds first, tracker by
    tracker, and stops at ``cap`` of them: a long backlog is counted from its
    first few trackers. (When the rows it read held fewer than ``cap`` unread
    actions but were not all there was, as when many match several trackers,
    the count takes the newest instead, a query more.)
    Each costs one query; on PostgreSQL a second one goes when the guess of
    which one applies is wrong: once per process when the small statement
    cannot count (then not again for ``FAN_OUT_RETRY_SECONDS``, or until the
    user marks all read). On SQLite the two are one statement, whose fan-out
    runs only when the walk cannot count (then the fan-out's statement alone
    for ``FAN_OUT_RETRY_SECONDS``): building and sending the larger statement
    costs a count with nothing unread about 0.08 ms (0.20 -> 0.28 ms on
    100,000 actions). On both, a second query goes once per process for a user who
    follows a whole model, unless that process ran the ``track()``. On
    PostgreSQL a capped count is a call of ``actrack_unread_count()`` instead,
    which holds both and chooses itself (see :mod:`actrack.countfunction`);
    the call carries the fan-out naming the models the process knows the user
    to follow.
    When a capped count reaches ``cap`` (either statement), the process keeps
    the ids of the unread actions it counted: the next count checks those
    actions only, one by one (:func:`actrack.countsql.witness_count_sql`),
    and gives ``cap`` while ``cap`` of them are still unread. Once fewer are
    (some were read, or the trackers changed), it counts as above, a query
    more. On PostgreSQL, once a check found every kept action still
    matching, the next ones leave the tracker probes out while the user's
    tracker rows and the deleted items stay the same; the first check after
    they changed probes again, a query more.
    Without ``using``, the database is the routers' choice for ``Action`` with
    ``user`` as the instance hint, else the user's own.
    """
    from actrack import countfunction
    from actrack.countsql import count_unread_sql, recent_count_sql, witness_count_sql
    from actrack.models import Action

    if not app_settings.TRACK_UNREAD or user is None or user.pk is None:
        return 0
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        raise ValueError(f"cap must be a non-negative integer, got {cap!r}")
    if cap == 0:
        return 0
    db = using or router.db_for_read(Action, instance=user)
    connection = connections[db]
    key = (db, user.pk)
    # A user with at least ``cap`` unread actions last time: while ``cap`` of those
    # actions are still unread, so is the count, whatever is newer.
    kept = _WITNESSES.get(key)
    if cap is not None and kept is not None and len(kept.ids) >= cap:
        sql, params = witness_count_sql(user, connection, kept.ids, kept.trackers)
        row = _execute_count(connection, db, sql, params)
        if kept.trackers and row is not None and row[1] != kept.trackers:
            # The tracker rows or deleted items changed since every kept action
            # matched: that statement did not probe them, this one does.
            sql, params = witness_count_sql(user, connection, kept.ids)
            row = _execute_count(connection, db, sql, params)
        if row is not None and int(row[0]) >= cap:
            if len(row) > 1 and row[1] != kept.trackers:
                _keep_fingerprint(key, kept, int(row[0]), str(row[1]))
            return cap
        _WITNESSES.pop(key, None)
    # Most users' unread actions are few, or dense among the newest actions: a
    # small statement counts them from the newest down, or says it cannot (-1).
    # Users it could not count go straight to the fan-out for a while. On SQLite the
    # two are one statement, whose fan-out runs only where the walk falls short
    # (SQLite runs a CASE's branches only when taken), and which says which answered.
    fanned = within(_FAN_OUT_USERS, key, FAN_OUT_RETRY_SECONDS)
    merged = connection.vendor == "sqlite" and not fanned
    known = _WHOLE_MODEL_FOLLOWERS.get(key, ())
    models: bool | tuple[int, ...] = known or False
    # On PostgreSQL a function holds the walk and the fan-out, planned once per
    # session, and chooses between them itself (actrack.countfunction).
    answer = None
    if cap is not None and countfunction.usable(connection):
        # None: the function has gone.
        answer = countfunction.call(connection, user, cap, known)
    function = answer is not None
    if not merged and not fanned and not function:
        row = _execute_count(connection, db, *recent_count_sql(user, connection, cap))
        if row is not None and not _short(row):
            _FAN_OUT_USERS.pop(key, None)
            return int(row[0]) if cap is None else _counted(key, row, cap)
        note_now(_FAN_OUT_USERS, key, FAN_OUT_USERS_KEPT)
    # Most users follow no whole model: their count leaves those branches out,
    # which halves PostgreSQL's planning (about 1 ms of a 5 ms count, measured on
    # 1M actions). The statement covers the models the process knows the user
    # follows, and says -1 (with the user's models) when there are others: then
    # it runs again with those, which are remembered. Should the user's models
    # change again meanwhile, the last try reads them inside the statement.
    # A capped count takes the unread actions it finds first, tracker by tracker,
    # unless the rows it read held fewer than the cap unread actions while more rows
    # were left ('-2'): then the newest-first statement counts.
    unordered, attempt = cap is not None, 0
    while True:
        if function:
            # Once: the function answers as SQLite's one statement does (the walk's
            # answer or the fan-out's); another attempt is a statement.
            function = False
            row, _walked = _two_columns(answer, cap)
        else:
            sql, params = count_unread_sql(
                user,
                connection,
                cap,
                True if attempt == 2 else models,
                unordered=unordered,
                one_column=merged,
            )
            if merged:
                # Once: a second statement (another attempt, the ordered count) is the
                # fan-out's alone.
                merged = False
                row = _execute_count(
                    connection,
                    db,
                    *recent_count_sql(user, connection, cap, otherwise=(sql, params)),
                )
                row, walked = _two_columns(row, cap)
                if walked:
                    _FAN_OUT_USERS.pop(key, None)
                else:
                    note_now(_FAN_OUT_USERS, key, FAN_OUT_USERS_KEPT)
            else:
                row = _execute_count(connection, db, sql, params)
        if unordered and row is not None and row[0] == "-2":
            unordered = False
            continue
        if row is None or not _short(row) or attempt == 2:
            break
        models = tuple(sorted({int(ct) for ct in str(row[1]).split(",")}))
        remember(_WHOLE_MODEL_FOLLOWERS, key, models, WHOLE_MODEL_FOLLOWERS_KEPT)
        attempt += 1
    if cap is None:
        return int(row[0]) if row else 0
    return _counted(key, row, cap)


def _keep_fingerprint(key: tuple[str, Any], kept: _Kept, count: int, fingerprint: str) -> None:
    """After a check of ``kept`` on PostgreSQL: ``count`` of the kept actions are
    still unread, under the tracker rows and deleted items ``fingerprint`` stands
    for. When that is all of them, the next checks skip the tracker probes while the
    fingerprint stays; for a user with more than ``FINGERPRINTED_TRACKERS``
    trackers, they read no fingerprint at all."""
    if int(fingerprint.split(":", 1)[0]) > FINGERPRINTED_TRACKERS:
        remember(_WITNESSES, key, _Kept(kept.ids, ""), WITNESSES_KEPT)
    elif count == len(kept.ids):
        remember(_WITNESSES, key, _Kept(kept.ids, fingerprint), WITNESSES_KEPT)


def _two_columns(row: Any, cap: int | None) -> tuple[Any, bool]:
    """The row of SQLite's one statement (``recent_count_sql(otherwise=...)``) as the
    two-column statements give it, and whether the walk answered.

    The walk's answer comes after ``'w:'`` (the ids, or the count when uncapped);
    the fan-out's as :func:`~actrack.countsql.count_unread_sql` gives it with
    ``one_column``, where ``'-1:<models>'`` splits into -1 and the models.
    """
    value = row[0] if row is not None else None
    if isinstance(value, str) and value.startswith("w:"):
        answer = value[2:]
        if cap is None:
            return (int(answer or 0), None), True
        return (answer or None, None), True
    if isinstance(value, str) and value.startswith("-1:"):
        return ("-1", value[3:]), False
    return (value, None), False


def _short(row: Any) -> bool:
    """Whether a count statement answered -1 (``'-1'`` when capped): it could not count."""
    return row[0] in (-1, "-1")


def _counted(key: tuple[str, Any], row: Any, cap: int) -> int:
    """A capped count from its statement's row, the unread ids; kept when ``cap`` or more."""
    ids = array("q", (int(pk) for pk in str(row[0]).split(","))) if row and row[0] else array("q")
    if len(ids) >= cap:
        remember(_WITNESSES, key, _Kept(ids, None), WITNESSES_KEPT)
    else:
        _WITNESSES.pop(key, None)
    return min(len(ids), cap)


def _execute_count(connection: Any, db: str, sql: str, params: list[Any]) -> Any:
    """Run the count's statement with JIT off (see ``_NO_JIT``): its one row."""
    if connection.vendor != "postgresql":
        with reading_cursor(connection) as cursor:  # SQLite: placeholders replaced in C
            cursor.execute(sql, params)
            return cursor.fetchone()
    if (options := connection.settings_dict.get("OPTIONS", {})).get("server_side_binding"):
        # Server-side binding (and prepared statements) allow one command per query:
        # the settings go first, in a transaction of their own unless inside the
        # caller's. The count's text is the same for every user: where the site
        # prepares statements (``prepare_threshold``), it is prepared once and, in
        # its own transaction, run with the generic plan, which skips planning
        # (about 2 ms of a 2-5 ms count, measured on 1M actions; no plan was slower).
        generic = options.get("prepare_threshold") is not None and not connection.in_atomic_block
        with transaction.atomic(using=db, savepoint=False), connection.cursor() as cursor:
            cursor.execute(_NO_JIT_GENERIC if generic else _NO_JIT)
            cursor.execute(sql, params)
            return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(f"{_NO_JIT}; {sql}", params)
        if cursor.description is None:  # psycopg 3: the SET's result comes first
            cursor.nextset()
        return cursor.fetchone()


#: Many small index lookups whose estimated cost can cross ``jit_above_cost``:
#: compiling them took 2 s where running them takes 40 ms (2,000 trackers, 1M
#: actions). SET LOCAL lasts for the count's own transaction (or the caller's) and
#: only turns JIT off.
_NO_JIT = "SET LOCAL jit = off"
_NO_JIT_GENERIC = (
    "SELECT set_config('jit', 'off', true), "
    "set_config('plan_cache_mode', 'force_generic_plan', true)"
)


#: Users known to follow whole models, as (database alias, pk), with those models'
#: content type ids, the most recent last: their count plans those models'
#: branches at once. A hint only: a model missing here costs a second query, one
#: wrongly here a slower plan.
_WHOLE_MODEL_FOLLOWERS: OrderedDict[tuple[str, Any], tuple[int, ...]] = OrderedDict()
WHOLE_MODEL_FOLLOWERS_KEPT = 10_000


#: Users (database alias, pk) whose last count needed the fan-out, with when
#: (``time.monotonic()``): for ``FAN_OUT_RETRY_SECONDS`` their counts skip the
#: recent-actions statement, unless they mark all read in this process.
_FAN_OUT_USERS: OrderedDict[tuple[str, Any], float] = OrderedDict()
FAN_OUT_USERS_KEPT = 10_000
FAN_OUT_RETRY_SECONDS = 60.0


class _Kept(NamedTuple):
    """What a capped count that reached its cap kept (see :func:`unread_count`)."""

    #: The unread actions it counted.
    ids: array[int]
    #: The fingerprint of the user's tracker rows (and deleted items) when every one
    #: of ``ids`` was last found to match (PostgreSQL; see
    #: ``countsql.witness_count_sql``), None before a check, ``''`` for none.
    trackers: str | None


#: Up to this many trackers, the check of the kept actions reads the fingerprint of
#: the user's tracker rows to skip its tracker probes. Reading 2,000 rows cost more
#: than probing for 100 actions (1.86 against 1.48 ms, 1M actions), 458 rows less
#: (1.16 against 1.77 ms).
FINGERPRINTED_TRACKERS = 1_000

#: Users (database alias, pk) whose last capped count reached its cap, with the ids
#: of the unread actions it counted: their next count checks those actions only
#: (see :func:`unread_count`). About 900 bytes a user with a cap of 100.
_WITNESSES: OrderedDict[tuple[str, Any], _Kept] = OrderedDict()
WITNESSES_KEPT = 5_000


def forget_counts(user: Any, using: str | None = None) -> None:
    """Forget what this process learnt from ``user``'s last unread counts in ``using``.

    Whether they needed the fan-out, and the unread actions a capped count
    kept (see :func:`unread_count`). The next count starts afresh: nothing
    else changes. ``mark_all_read`` does it for its database. Without
    ``using``, the database ``unread_count`` would read.
    """
    from actrack.models import Action

    key = (using or router.db_for_read(Action, instance=user), user.pk)
    _FAN_OUT_USERS.pop(key, None)
    _WITNESSES.pop(key, None)


def note_whole_model_follower(using: str, user_pk: Any, content_type_ids: Iterable[int]) -> None:
    """Remember that the user follows these models (see :func:`unread_count`)."""
    key = (using, user_pk)
    models = {*_WHOLE_MODEL_FOLLOWERS.get(key, ()), *(int(ct) for ct in content_type_ids)}
    remember(_WHOLE_MODEL_FOLLOWERS, key, tuple(sorted(models)), WHOLE_MODEL_FOLLOWERS_KEPT)


def align_unread(given: Any, actions: Sequence[Action]) -> list[bool]:
    """Unread flags passed in a rendering context: a bool, a mapping by pk, or a sequence."""
    if isinstance(given, bool):
        return [given] * len(actions)
    if isinstance(given, Mapping):
        return [bool(given.get(action.pk, False)) for action in actions]
    flags = [bool(flag) for flag in given]
    if len(flags) != len(actions):
        raise ValueError(
            f"context['unread'] has {len(flags)} flags for {len(actions)} actions; "
            "pass one per action, a mapping by action id, or a single bool."
        )
    return flags
