"""Read / unread state.

An action is unread for user U when ``TRACK_UNREAD`` is on and:

- one of U's trackers matches it (as in feeds: role, verbs, whole-model
  trackers) and that tracker was created before the action's timestamp;
- its level is at least ``READABLE_LEVEL``;
- U is not its actor, unless U follows itself (a tracker matching U as actor);
- U has not read it: its id is above U's read mark (:class:`ReadMark`,
  moved by "mark all read") and there is no :class:`ReadAction` for it.

Nothing is stored for unread actions, and computing any of this never writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connections, router
from django.db.models import Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from actrack.conf import app_settings
from actrack.keys import content_type_for

if TYPE_CHECKING:
    from actrack.models import Action, Tracker
    from actrack.querysets import ActionQuerySet


def user_ref(user: Any) -> tuple[int, str]:
    return content_type_for(user).pk, str(user.pk)


def _read_mark(user: Any, using: str) -> int:
    from actrack.models import ReadMark

    mark = ReadMark.objects.using(using).filter(user=user).values_list("last_read_id", flat=True)
    return next(iter(mark), 0)


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
    ids = [a.pk for a in candidates if a.pk > mark]
    read = set(
        ReadAction.objects.using(using)
        .filter(user=user, action_id__in=ids)
        .values_list("action_id", flat=True)
    )
    needs_links = any(not t.actor_only for t in trackers)
    links = link_refs(ids, using) if needs_links and ids else {}
    own = user_ref(user)

    def unread(action: Action) -> bool:
        if action.pk is None or action.level < floor or action.pk <= mark or action.pk in read:
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

    Without ``using``, the database is the routers' choice for ``ReadMark``
    with ``user`` as the instance hint, else the user's own database.
    """
    from actrack.models import Action, ReadMark

    db = using or router.db_for_write(ReadMark, instance=user)
    connection = connections[db]
    quote = connection.ops.quote_name
    mark, action = ReadMark._meta.db_table, Action._meta.db_table
    sql = (
        f"INSERT INTO {quote(mark)} ({quote('user_id')}, {quote('last_read_id')}, "
        f"{quote('updated')}) "
        f"SELECT %s, COALESCE(MAX({quote('id')}), 0), %s FROM {quote(action)} WHERE 1 = 1 "
        f"ON CONFLICT ({quote('user_id')}) DO UPDATE SET "
        f"{quote('last_read_id')} = excluded.{quote('last_read_id')}, "
        f"{quote('updated')} = excluded.{quote('updated')}"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, now])


QS = TypeVar("QS", bound="ActionQuerySet")


def unread_queryset(queryset: QS, user: Any, trackers: Iterable[Any] | None = None) -> QS:
    """``queryset`` restricted to the actions unread for ``user`` (SQL, no writes).

    ``trackers``: the user's trackers (fields ``tracked_ct_id``, ``tracked_key``,
    ``verbs``, ``actor_only`` and ``created``), read from the database when omitted.
    """
    from actrack.feedengine import TrackerMatch
    from actrack.models import ReadAction, ReadMark, Tracker

    if not app_settings.TRACK_UNREAD:
        return queryset.none()
    if trackers is None:
        trackers = Tracker.objects.using(queryset.db).owned_by(user).only(*TRACKER_FIELDS)
    trackers = list(trackers)
    if not trackers:
        return queryset.none()
    mark = Subquery(ReadMark.objects.filter(user=user).values("last_read_id")[:1])
    read = ReadAction.objects.filter(user=user, action=OuterRef("pk"))
    return (
        queryset.filter(TrackerMatch(trackers, unread_for=user))
        .visible()
        .alias(read_mark=Coalesce(mark, Value(0)))
        .filter(pk__gt=F("read_mark"))
        .exclude(Exists(read))
    )


#: The tracker fields feeds and read state use.
TRACKER_FIELDS = ("tracked_ct_id", "tracked_key", "verbs", "actor_only", "created")


def unread_count(user: Any, *, cap: int | None = None, using: str | None = None) -> int:
    """How many actions are unread for ``user`` (at most ``cap`` when given): one query.

    The statement starts from the user's tracker rows and reaches the actions
    through the per-object indexes (one branch per role and tracker kind),
    so its cost follows the user's trackers and recent activity, not the
    size of the table. Without ``using``, the database is the routers' choice
    for ``Action`` with ``user`` as the instance hint, else the user's own.
    """
    from actrack.models import Action

    if not app_settings.TRACK_UNREAD or user is None or user.pk is None:
        return 0
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        raise ValueError(f"cap must be a non-negative integer, got {cap!r}")
    if cap == 0:
        return 0
    db = using or router.db_for_read(Action, instance=user)
    sql, params = _unread_count_sql(user, connections[db], cap)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _unread_count_sql(user: Any, connection: Any, cap: int | None) -> tuple[str, list[Any]]:
    """The unread page engine over the user's tracker rows, counted."""
    from actrack.feedengine import count_unread_sql
    from actrack.models import Action, ReadAction, ReadMark

    mark = Subquery(ReadMark.objects.filter(user=user).values("last_read_id")[:1])
    read = ReadAction.objects.filter(user=user, action=OuterRef("pk"))
    base = (
        Action.objects.using(connection.alias)
        .visible()
        .alias(read_mark=Coalesce(mark, Value(0)))
        .filter(pk__gt=F("read_mark"))
        .exclude(Exists(read))
    )
    return count_unread_sql(base, user, cap)


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
