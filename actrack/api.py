"""The public write API: ``log``, ``track`` and ``untrack``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import reprlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.utils import timezone, translation
from django.utils.functional import Promise

from actrack import trackercache
from actrack.conf import app_settings
from actrack.keys import (
    as_list,
    content_type_for,
    ct_and_key,
    has_lone_surrogate,
    is_model_class,
    unique_refs,
)
from actrack.queue import (
    Entry,
    WriteOnCommit,
    _in_transaction,
    current_queue,
    write_entries,
)

if TYPE_CHECKING:
    from actrack.models import Action, Tracker

MAX_VERB_LENGTH = 255
MAX_DATA_BYTES = 1_000_000
#: The range of timestamps (UTC): a day inside datetime's, so that every time zone can show them.
EARLIEST_TIMESTAMP = dt.datetime.min + dt.timedelta(days=1)
LATEST_TIMESTAMP = dt.datetime.max - dt.timedelta(days=1)


def log(
    actor: Any,
    verb: Any,
    *,
    targets: Any = None,
    related: Any = None,
    timestamp: dt.datetime | None = None,
    level: int | str | None = None,
    grouping_delay: int | None = None,
    using: str | None = None,
    **data: Any,
) -> Action | None:
    """Log an action; every extra keyword argument goes into ``Action.data``.

    Inside a request or ``batch()`` the action is queued and written when it
    ends (``None`` is returned); inside ``transaction.atomic()`` it is written
    when the outermost transaction commits (``None``); otherwise it is written
    at once and the saved :class:`~actrack.models.Action` is returned.

    Everything is validated before anything is queued or written: unsaved
    instances, model classes or over-long keys raise ``ValueError``; data that
    Django's JSON encoder cannot serialise raises ``TypeError``, and data that
    no database would store (NaN or infinite numbers, NUL characters, lone
    surrogates) raises ``ValueError``.
    """
    entry = build_entry(
        actor,
        verb,
        targets=targets,
        related=related,
        timestamp=timestamp,
        level=level,
        grouping_delay=grouping_delay,
        using=using,
        data=data,
    )
    queue = current_queue()
    if queue is not None:
        queue.add(entry)
        return None
    if _in_transaction(entry.using):
        transaction.on_commit(WriteOnCommit([entry]), using=entry.using)
        return None
    # Written at once, in the caller's thread: nothing can have deleted the objects
    # since the caller passed them, so the deleted-objects check of queued writes
    # is skipped (it would cost a query per content type on every call).
    written = write_entries([entry], check_deleted=False)
    return written[0] if written else entry.action


_log = log  # ``track``/``untrack`` take a ``log`` flag that shadows the function


def build_entry(
    actor: Any,
    verb: Any,
    *,
    targets: Any,
    related: Any,
    timestamp: dt.datetime | None,
    level: int | str | None,
    grouping_delay: int | None,
    using: str | None,
    data: dict[str, Any],
) -> Entry:
    from actrack.handlers import get_handler_class
    from actrack.models import Action

    verb_text = clean_verb(verb)
    if actor is not None:
        if is_model_class(actor):
            raise ValueError(f"The actor must be a model instance or None, not the class {actor}.")
        actor_ref: tuple[int, str] | None = _ref(actor)
    else:
        actor_ref = None
    target_list, target_refs = unique_refs(as_list(targets, what="targets"), what="targets")
    related_list, related_refs = unique_refs(as_list(related, what="related"), what="related")
    return Entry(
        actor=actor,
        actor_ref=actor_ref,
        verb=verb_text,
        targets=target_list,
        target_refs=target_refs,
        related=related_list,
        related_refs=related_refs,
        level=clean_level(level, get_handler_class(verb_text).level),
        data=clean_data(data),
        timestamp=clean_timestamp(timestamp),
        grouping_delay=clean_grouping_delay(grouping_delay),
        using=clean_using(using) or router.db_for_write(Action) or DEFAULT_DB_ALIAS,
    )


def _ref(obj: Any) -> tuple[int, str]:
    ct, key = ct_and_key(obj)
    assert key is not None
    return ct.pk, key


def clean_verb(verb: Any) -> str:
    """The verb as stored: a lazy translation becomes its untranslated message id."""
    if isinstance(verb, Promise):
        with translation.override(None):
            verb = str(verb)
    if not isinstance(verb, str):
        raise TypeError(f"The verb must be a string, got {type(verb).__name__}.")
    if not verb.strip():
        raise ValueError("The verb cannot be empty.")
    if len(verb) > MAX_VERB_LENGTH:
        raise ValueError(
            f"The verb is {len(verb)} characters long; the limit is {MAX_VERB_LENGTH}."
        )
    if "\x00" in verb:
        raise ValueError("The verb cannot contain NUL characters.")
    if has_lone_surrogate(verb):
        raise ValueError(
            f"The verb {verb!r} contains a lone surrogate (U+D800 to U+DFFF): "
            "it is not Unicode text, and no database can store it."
        )
    return verb


def clean_level(level: int | str | None, handler_level: int | None) -> int:
    if level is None:
        level = handler_level if handler_level is not None else app_settings.DEFAULT_LEVEL
    if isinstance(level, str):
        levels = app_settings.LEVELS
        if level not in levels:
            raise ValueError(f"Unknown level {level!r}; configured levels: {sorted(levels)}.")
        level = levels[level]
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"The level must be an integer or a level name, got {level!r}.")
    if not 0 <= level <= 32767:
        raise ValueError(f"The level must be between 0 and 32767, got {level}.")
    return level


def clean_data(data: dict[str, Any]) -> dict[str, Any]:
    """Data as it will be stored: JSON round-tripped with Django's encoder.

    What a database would refuse when the queue is written is refused here:
    NaN and infinities (JSON has no such numbers), NUL characters (PostgreSQL)
    and lone surrogates (not Unicode text), in any key or value.
    """
    flat = _flat_data(data)
    if flat is not None:
        return flat
    try:
        encoded = json.dumps(data, cls=DjangoJSONEncoder)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"Action data must be JSON-serialisable: {exc}") from exc
    if len(encoded) > MAX_DATA_BYTES:
        raise ValueError(f"Action data is {len(encoded)} bytes once encoded; the limit is 1 MB.")
    decoded: dict[str, Any] = json.loads(encoded)
    # Only escapes (ASCII output) and the bare NaN/Infinity tokens can hide a problem.
    if "\\u" in encoded or "NaN" in encoded or "Infinity" in encoded:
        for path, is_key, value in _json_leaves(decoded):
            problem = _json_problem(value)
            if problem:
                where = "data" + "".join(f"[{reprlib.repr(part)}]" for part in path)
                what = f"a key of {where}" if is_key else where
                raise ValueError(
                    f"Action data cannot contain {problem}: {what} is {reprlib.repr(value)}."
                )
    return decoded


_PLAIN = (str, int, bool, type(None))  # exact types: subclasses (enums...) round-trip


def _flat_data(data: dict[str, Any]) -> dict[str, Any] | None:
    """The usual data, a few plain scalars, checked without a JSON round trip.

    What the round trip would return unchanged: text keys, and text, integer,
    boolean, ``None`` or finite float values, with no character a database
    refuses, small enough to stay under the size limit even fully escaped.
    ``None`` for anything else (the caller then round-trips).
    """
    if type(data) is not dict or len(data) > 20:
        return None
    size = 0
    for key, value in data.items():
        if type(key) is not str:
            return None
        if type(value) is float:
            if not math.isfinite(value):
                return None
        elif type(value) not in _PLAIN or (type(value) is int and abs(value) > 2**53):
            return None
        for text in (key, value) if type(value) is str else (key,):
            size += len(text)
            if "\x00" in text or has_lone_surrogate(text):
                return None
    return dict(data) if size * 6 < MAX_DATA_BYTES else None


def _json_leaves(value: Any) -> Iterator[tuple[tuple[str | int, ...], bool, Any]]:
    """``(path, is a key, value)`` for every key and scalar of decoded JSON, iteratively."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                yield path, True, key
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        else:
            yield path, False, value


def _json_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN or infinite numbers (JSON has none)"
    if isinstance(value, str) and "\x00" in value:
        return "NUL characters"
    if isinstance(value, str) and has_lone_surrogate(value):
        return "lone surrogates (U+D800 to U+DFFF; not Unicode text)"
    return None


def clean_timestamp(timestamp: dt.datetime | None) -> dt.datetime:
    """The timestamp as stored: aware in UTC with ``USE_TZ``, naive local time without.

    A naive one is first made aware in the current time zone. UTC, as databases
    store it: PostgreSQL refuses UTC offsets past 15:59, which Python allows. Its
    moment must lie a day inside datetime's range, since a page shows it in any
    time zone (UTC offsets are under a day): closer to either end, it could be
    logged but not written, or written but not read back or shown.
    """
    if timestamp is None:
        return timezone.now()
    if not isinstance(timestamp, dt.datetime):
        raise TypeError(f"The timestamp must be a datetime, got {type(timestamp).__name__}.")
    given = timestamp
    try:
        if settings.USE_TZ and timezone.is_naive(timestamp):
            timestamp = timezone.make_aware(timestamp)
        elif not settings.USE_TZ and timezone.is_aware(timestamp):
            # Local time, as Django stores datetimes without USE_TZ (SQLite refuses aware ones).
            timestamp = timezone.make_naive(timestamp, timezone.get_default_timezone())
        if timezone.is_aware(timestamp):
            timestamp = timestamp.astimezone(dt.UTC)
        in_range = EARLIEST_TIMESTAMP <= timestamp.replace(tzinfo=None) <= LATEST_TIMESTAMP
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError(
            f"The timestamp {given.isoformat()} is out of range: it must fall between "
            f"{EARLIEST_TIMESTAMP.isoformat()} and {LATEST_TIMESTAMP.isoformat()}"
            f"{' UTC' if settings.USE_TZ else ''}."
        )
    return timestamp


def clean_grouping_delay(delay: int | None) -> int:
    if delay is None:
        delay = app_settings.GROUPING_DELAY
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < -1:
        raise ValueError(f"grouping_delay must be -1, 0 or a number of seconds, got {delay!r}.")
    return delay


def clean_using(using: str | None) -> str | None:
    if using is not None and using not in settings.DATABASES:
        raise ValueError(f"Unknown database alias {using!r}.")
    return using


# --- tracking -----------------------------------------------------------------------------


def _clean_user(user: Any) -> Any:
    user_model = get_user_model()
    if not isinstance(user, user_model):
        raise TypeError(f"Trackers belong to {user_model.__name__} instances, got {user!r}.")
    if user.pk is None or user._state.adding:
        raise ValueError("The user must be saved before tracking anything.")
    return user


def _clean_verbs(verbs: Any) -> list[str]:
    if verbs is None:
        return []
    if isinstance(verbs, (str, Promise)):
        verbs = [verbs]
    if not isinstance(verbs, Iterable):
        raise TypeError(f"verbs must be an iterable of strings, got {type(verbs).__name__}.")
    return sorted({clean_verb(verb) for verb in verbs})


def _tracked_list(value: Any, what: str) -> list[tuple[Any, int, str]]:
    """``[(object or model, content type id, key or "")]`` without duplicates."""
    items = as_list(value, what=what)
    if not items:
        raise ValueError(f"Nothing to {what}.")
    seen: dict[tuple[int, str], tuple[Any, int, str]] = {}
    for item in items:
        ct, key = ct_and_key(item, allow_model=True)
        seen.setdefault((ct.pk, key or ""), (item, ct.pk, key or ""))
    return list(seen.values())


def _single(value: Any) -> bool:
    return value is not None and (hasattr(value, "_meta") or is_model_class(value))


def _loggable(obj: Any) -> Any:
    """What a tracking action targets: the object, or the content type of a model."""
    return content_type_for(obj) if is_model_class(obj) else obj


def track(
    user: Any,
    to_track: Any,
    *,
    verbs: Any = None,
    actor_only: bool | None = None,
    log: bool = False,
    using: str | None = None,
) -> Tracker | list[Tracker]:
    """Make ``user`` follow objects and/or whole models; create or update trackers.

    ``verbs`` always replaces the tracked verbs (``None`` = every verb);
    ``actor_only`` changes existing trackers only when given (new ones default
    to True). One upsert for any number of objects (+1 query when ``log``).
    Returns the tracker for one object, a list for an iterable.
    """
    from actrack.inserts import returns_rows, upsert_trackers
    from actrack.models import Tracker

    user = _clean_user(user)
    items = _tracked_list(to_track, "track")
    verb_list = _clean_verbs(verbs)
    if actor_only is not None and not isinstance(actor_only, bool):
        raise TypeError(f"actor_only must be True, False or None, got {actor_only!r}.")
    db = clean_using(using) or router.db_for_write(Tracker) or DEFAULT_DB_ALIAS
    existing: dict[tuple[int, str], Tracker] = {}
    # Trackers already there keep their creation and, unless given, actor_only: the
    # upsert reads them back (PostgreSQL, SQLite), else they are read first. And
    # ``log`` needs to know which are new.
    read_first = log or (actor_only is None and not returns_rows(db))
    if read_first:
        existing = {
            (t.tracked_ct_id, t.tracked_key): t
            for t in Tracker.objects.using(db)
            .filter(user=user)
            .filter(_refs_q([(ct, key) for _, ct, key in items]))
        }
    now = timezone.now()
    rows = []
    for _obj, ct, key in items:
        old = existing.get((ct, key))
        rows.append(
            Tracker(
                user=user,
                tracked_ct_id=ct,
                tracked_key=key,
                verbs=verb_list,
                actor_only=actor_only
                if actor_only is not None
                else (old.actor_only if old else True),
                created=old.created if old else now,
                last_updated=now,
            )
        )
    update_fields = ["verbs", "last_updated"] + (["actor_only"] if actor_only is not None else [])
    # Rows in key order: concurrent calls lock the same rows in the same order.
    upsert_trackers(
        db,
        sorted(rows, key=lambda row: (row.tracked_ct_id, row.tracked_key)),
        update_fields,
        read_back=actor_only is None and not read_first,
    )
    trackercache.forget(user.pk, db)
    if models := [ct for _obj, ct, key in items if not key]:
        from actrack.readstate import note_whole_model_follower

        note_whole_model_follower(db, user.pk, models)  # its unread count then plans for them
    if log:
        new = [_loggable(obj) for obj, ct, key in items if (ct, key) not in existing]
        if new:
            _log(user, "started tracking", targets=new, using=db)
    return rows[0] if _single(to_track) else rows


def untrack(
    user: Any,
    to_untrack: Any,
    *,
    verbs: Any = None,
    log: bool = False,
    using: str | None = None,
) -> int:
    """Stop ``user`` following objects and/or models, for every verb or some.

    Without ``verbs`` the trackers are deleted. With ``verbs`` those verbs are
    removed; a tracker left with none, or one that followed every verb, is
    deleted (as in the original django-actrack). Returns the number of
    trackers deleted or changed.
    """
    from actrack.models import Tracker

    user = _clean_user(user)
    items = _tracked_list(to_untrack, "untrack")
    verb_list = sorted(set(_clean_verbs(verbs)))
    db = clean_using(using) or router.db_for_write(Tracker) or DEFAULT_DB_ALIAS
    refs = [(ct, key) for _, ct, key in items]
    trackercache.forget(user.pk, db)
    changed = _untrack_rows(user, refs, db, verb_list, returning=log)
    if isinstance(changed, int):
        return changed
    if changed:
        stopped = [_loggable(obj) for obj, ct, key in items if (ct, key) in changed]
        extra: dict[str, Any] = {"verbs": verb_list} if verb_list else {}
        _log(user, "stopped tracking", targets=stopped, using=db, **extra)
    return len(changed)


def _untrack_rows(
    user: Any, refs: list[tuple[int, str]], db: str, verbs: list[str], *, returning: bool
) -> int | set[tuple[int, str]]:
    """Delete the user's trackers of ``refs``; or, with ``verbs``, take those verbs
    from them: trackers left with none, and all-verb trackers, go, the others
    keep their other verbs.

    The number of trackers deleted or changed; with ``returning``, their
    (content type, key) pairs instead. When nothing listens to the deletion
    of trackers (no signal receiver, and no model refers to them; as Django's
    fast delete would), set-based, with statements built here (building and
    compiling querysets cost more than running them): a ``DELETE`` without
    ``verbs``; with them, the ``DELETE`` and an ``UPDATE`` computing what
    is left of each tracker's verbs in the database (one statement on
    PostgreSQL, two on SQLite), so a concurrent ``track()`` is not
    overwritten by verbs read before it. A single statement needs no
    transaction (no ``BEGIN``/``COMMIT`` round trips); more keys than one
    statement takes (SQLite's limit of parameters) take several, in one
    transaction. Otherwise, or on other databases where ``verbs`` or
    ``returning`` need it, the ORM, with its signals.
    """
    from django.db.models.deletion import Collector

    from actrack.inserts import chunks, quoted_column, returns_rows
    from actrack.models import Tracker

    connection = connections[db]
    if not Collector(using=db).can_fast_delete(Tracker.objects.none()) or (
        (verbs or returning) and not returns_rows(db)
    ):
        return _untrack_by_the_orm(user, refs, db, verbs, returning=returning)
    meta = Tracker._meta
    table = connection.ops.quote_name(meta.db_table)
    user_value = meta.get_field("user").get_db_prep_value(user.pk, connection)
    user_col, ct_col, key_col, verbs_col, updated_col = (
        quoted_column(connection, Tracker, name)
        for name in ("user", "tracked_ct", "tracked_key", "verbs", "last_updated")
    )
    returned = f" RETURNING {ct_col}, {key_col}" if returning or verbs else ""
    postgres = connection.vendor == "postgresql"
    now = meta.get_field("last_updated").get_db_prep_value(timezone.now(), connection)
    # A key and at most its content type per object; besides, the user, the verbs and
    # the time (PostgreSQL's limit is far: its statement names the objects twice).
    parts = list(chunks(refs, db, per_item=2 if postgres else 3, spare=len(verbs) + 2))
    changed: set[tuple[int, str]] = set()
    count = 0
    several = len(parts) > 1 or (bool(verbs) and not postgres)
    atomic = transaction.atomic(using=db) if several else contextlib.nullcontext()
    with atomic, connection.cursor() as cursor:
        for part in parts:
            conditions, where_params = [], [user_value]
            for ct, keys in _keys_by_ct(part).items():
                conditions.append(
                    f"({ct_col} = %s AND {key_col} IN ({', '.join(['%s'] * len(keys))}))"
                )
                where_params += [ct, *keys]
            where = f"{user_col} = %s AND ({' OR '.join(conditions)})"
            statements: list[tuple[str, list[Any]]]
            if not verbs:
                statements = [(f"DELETE FROM {table} WHERE {where}{returned}", where_params)]
            elif postgres:
                # jsonb minus text[]: the array without those strings.
                gone = f"({verbs_col} = '[]'::jsonb OR ({verbs_col} - %s::text[]) = '[]'::jsonb)"
                statements = [
                    (
                        f"WITH _d AS (DELETE FROM {table} WHERE {where} AND {gone}{returned}), "
                        f"_u AS (UPDATE {table} SET {verbs_col} = {verbs_col} - %s::text[], "
                        f"{updated_col} = %s WHERE {where} AND NOT {gone}{returned}) "
                        f"SELECT * FROM _d UNION ALL SELECT * FROM _u",
                        [*where_params, verbs, verbs, now, *where_params, verbs],
                    )
                ]
            else:
                listed = ", ".join(["%s"] * len(verbs))
                left = f"FROM json_each({table}.{verbs_col}) WHERE value NOT IN ({listed})"
                statements = [
                    (
                        f"DELETE FROM {table} WHERE {where} AND ({verbs_col} = '[]' OR "
                        f"NOT EXISTS (SELECT 1 {left})){returned}",
                        [*where_params, *verbs],
                    ),
                    (
                        f"UPDATE {table} SET {verbs_col} = (SELECT json_group_array(value) "
                        f"{left}), {updated_col} = %s WHERE {where}{returned}",
                        [*verbs, now, *where_params],
                    ),
                ]
            for sql, params in statements:
                cursor.execute(sql, params)
                if returned:
                    changed.update((int(ct), str(key)) for ct, key in cursor.fetchall())
                else:
                    count += cursor.rowcount
    return changed if returning else (len(changed) if returned else count)


def _untrack_by_the_orm(
    user: Any, refs: list[tuple[int, str]], db: str, verbs: list[str], *, returning: bool
) -> int | set[tuple[int, str]]:
    """:func:`_untrack_rows` through querysets, sending the deletion signals."""
    from actrack.models import Tracker

    trackers = list(Tracker.objects.using(db).filter(user=user).filter(_refs_q(refs)))
    verb_set = set(verbs)
    to_delete = [
        t.pk for t in trackers if not verb_set or not t.verbs or not set(t.verbs) - verb_set
    ]
    to_update = [t for t in trackers if t.pk not in to_delete]
    for tracker in to_update:
        tracker.verbs = sorted(set(tracker.verbs) - verb_set)
        tracker.last_updated = timezone.now()
    with transaction.atomic(using=db):
        if to_delete:
            Tracker.objects.using(db).filter(pk__in=to_delete).delete()
        if to_update:
            Tracker.objects.using(db).bulk_update(to_update, ["verbs", "last_updated"])
    if returning:
        return {(t.tracked_ct_id, t.tracked_key) for t in trackers}
    return len(trackers)


def _refs_q(refs: list[tuple[int, str]]) -> Any:
    from django.db.models import Q

    condition = Q()
    for ct, keys in _keys_by_ct(refs).items():
        if len(keys) == 1:
            condition |= Q(tracked_ct_id=ct, tracked_key=keys[0])
        else:
            condition |= Q(tracked_ct_id=ct, tracked_key__in=keys)
    return condition


def _keys_by_ct(refs: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    """The keys of ``refs`` by content type, in the order given."""
    by_ct: dict[int, list[str]] = {}
    for ct, key in refs:
        by_ct.setdefault(ct, []).append(key)
    return by_ct
