"""Feeds' tracker rows, kept per process and checked by each page's statement.

A feed page on PostgreSQL read the user's trackers (a round trip and, for a
user with thousands of them, milliseconds of transfer and Python) before its
statement could be built. The rows are now kept per process, by database and
user, with a fingerprint of their row versions: their number, and the sum of
a 64-bit hash of each tracker's id, ``xmin`` (the transaction that wrote that
version of the row) and ``ctid`` (where the version lies: every insert or
update, even inside one transaction, writes a new version elsewhere). The
page's statement computes the fingerprint again, in the snapshot it reads the
actions in (see :func:`actrack.feedengine.fetch_actions`); when it differs (a
tracker was added, changed or removed, by any process or in SQL), it reads no
actions and the page runs again with the trackers read afresh. Kept rows never
change a page: they only save the read. What a page builds from the rows alone
(their part of the statement) is kept with them, under the same fingerprint.

PostgreSQL only: SQLite has no row versions, and no round trips to save.
There every page reads the rows; a read equal to an earlier one (the same
columns) takes that read's rows and what pages built from them
(:func:`read_shared`), which depend on those values alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from django.db import connections

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from actrack.querysets import TrackerRow


class _Entry(NamedTuple):
    rows: list[TrackerRow]
    fingerprint: str
    #: What feed pages build from the rows, by name (see :func:`derived`).
    derived: dict[str, Any]


#: Users' tracker rows, by (database alias, user pk), newest last.
_KEPT: OrderedDict[tuple[str, Any], _Entry] = OrderedDict()
#: Reads of tracker rows elsewhere, by (database alias, the columns read), newest last
#: (see :func:`read_shared`), within :data:`SHARED_ROWS`.
_SHARED: OrderedDict[tuple[str, tuple[Any, ...]], _Entry] = OrderedDict()
_shared_rows = [0]
#: At most this many rows are kept in all (about 250 bytes each with what pages build
#: from them, measured on the benchmark's data), the oldest users' dropped first.
KEPT_ROWS = 200_000
#: At most this many rows of shared reads (see :func:`read_shared`; about 500 bytes
#: each with their statement parts, 25 MB in all), the least recently read dropped
#: first.
SHARED_ROWS = 50_000
_lock = threading.Lock()
_counted = [0]  # rows kept in all
T = TypeVar("T")


def applies(using: str) -> bool:
    """Whether feeds in ``using`` keep their tracker rows (PostgreSQL)."""
    return connections[using].vendor == "postgresql"


def kept(user_pk: Any, using: str) -> tuple[list[TrackerRow], str] | None:
    """The rows kept for the user and their fingerprint, if any (none for no trackers)."""
    entry = _KEPT.get((using, user_pk))
    return None if entry is None else (entry.rows, entry.fingerprint)


def derived(user_pk: Any, using: str, fingerprint: str, name: str, build: Callable[[], T]) -> T:
    """``build()``, a value made from the user's kept rows, kept with them by ``name``.

    Built again when the rows kept now have another fingerprint than the
    caller's (they were read again meanwhile), and then not kept.
    """
    entry = _KEPT.get((using, user_pk))
    if entry is None or entry.fingerprint != fingerprint:
        return build()
    return built(entry.derived, name, build)


def built(derived: dict[str, Any], name: str, build: Callable[[], T]) -> T:
    """``derived[name]``, from ``build()`` the first time."""
    try:
        found: T = derived[name]
    except KeyError:
        found = derived[name] = build()
    return found


def read_shared(user_pk: Any, using: str) -> tuple[list[TrackerRow], dict[str, Any]]:
    """The user's tracker rows read now (no creation times), and where pages keep what
    they build from them.

    Where rows are not kept (SQLite), every page reads them; a read equal to an
    earlier one (same rows, same values) returns that read's rows and built
    parts, which depend on those values alone.
    """
    from actrack.querysets import raw_tracker_rows, tracker_row

    found = tuple(raw_tracker_rows(user_pk, using, created=False))
    key = (using, found)
    with _lock:
        entry = _SHARED.get(key)
        if entry is not None:
            _SHARED.move_to_end(key)
            return entry.rows, entry.derived
    rows = [tracker_row(ct, k, vb, ao, None) for ct, k, vb, ao in found]
    entry = _Entry(rows, "", {})
    with _lock:
        if (earlier := _SHARED.get(key)) is not None:  # another thread read the same
            return earlier.rows, earlier.derived
        _admit(_SHARED, _shared_rows, key, entry, SHARED_ROWS)
    return entry.rows, entry.derived


def read(user_pk: Any, using: str) -> list[TrackerRow]:
    """The user's tracker rows (no creation times), read now and kept with their fingerprint."""
    from actrack.models import Tracker
    from actrack.querysets import tracker_row

    connection = connections[using]
    table = connection.ops.quote_name(Tracker._meta.db_table)
    sql = (
        "SELECT tracked_ct_id, tracked_key, verbs::text, actor_only, "
        f"{_FINGERPRINT.format(over='OVER ()')} FROM {table} AS _k WHERE user_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_pk])
        found = cursor.fetchall()
    rows = [tracker_row(ct, key, vb, ao, None) for ct, key, vb, ao, _fp in found]
    # Nothing is kept for a user without trackers (no statement would check it).
    _keep((using, user_pk), _Entry(rows, str(found[0][4]), {}) if rows else None)
    return rows


def _keep(key: tuple[str, Any], entry: _Entry | None) -> None:
    """Keep ``entry`` (None: nothing) for ``key``, the newest, within :data:`KEPT_ROWS`."""
    with _lock:
        old = _KEPT.pop(key, None)
        if old is not None:
            _counted[0] -= len(old.rows)
        if entry is not None:
            _admit(_KEPT, _counted, key, entry, KEPT_ROWS)


def _admit(
    store: OrderedDict[Any, _Entry], counted: list[int], key: Any, entry: _Entry, limit: int
) -> None:
    """Put ``entry`` in ``store`` as the newest, ``counted`` holding the rows of all its
    entries, within ``limit`` rows: the oldest go first, an entry larger than all of it
    is not kept. The caller holds the lock."""
    if len(entry.rows) > limit:
        return
    store[key] = entry
    counted[0] += len(entry.rows)
    while counted[0] > limit:
        _key, dropped = store.popitem(last=False)
        counted[0] -= len(dropped.rows)


def fingerprint_sql(connection: BaseDatabaseWrapper) -> str:
    """SQL giving the fingerprint of the trackers of the user (one parameter)."""
    from actrack.models import Tracker

    table = connection.ops.quote_name(Tracker._meta.db_table)
    return f"SELECT {_FINGERPRINT.format(over='')} FROM {table} AS _k WHERE _k.user_id = %s"


#: The fingerprint of the tracker rows ``_k`` (an aggregate, or a window over them):
#: their number and the sum of a 64-bit hash of each row version. It needs no order,
#: and no md5(), which cost 0.4 ms even for a single row here. The hash is the row
#: of (id, xmin, ctid)'s own, from each type's hash function: the same hash of
#: their text took a third longer (300 trackers, interleaved: 0.61 against 0.51 ms a
#: statement, 0.30 for their number alone).
_FINGERPRINT = (
    "CAST(COUNT(*) {over} AS TEXT) || ':' || CAST(COALESCE(SUM(hash_record_extended("
    "(_k.id, _k.xmin, _k.ctid), 0)) {over}, 0) AS TEXT)"
)


def forget(user_pk: Any, using: str) -> None:
    """Drop the rows kept for the user: ``track()``/``untrack()`` in this process changed
    them (the check would find it, a query later)."""
    _keep((using, user_pk), None)


def forget_all() -> None:
    """Drop every row kept."""
    with _lock:
        _KEPT.clear()
        _counted[0] = 0
        _SHARED.clear()
        _shared_rows[0] = 0
