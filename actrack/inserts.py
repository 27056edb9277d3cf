"""Hand-built INSERTs of new actions and their link rows.

``bulk_create`` builds a model instance per row and compiles a placeholder per
value; for a queue of thousands of actions that Python work cost more than the
database's. Here rows go straight from the entries to the statements:

- PostgreSQL: one statement for the whole queue, one array parameter per
  column. It numbers the entries (``unnest ... WITH ORDINALITY``), draws one id
  per entry from the actions' sequence in that order, and inserts the actions
  and both link tables through data-modifying ``WITH`` clauses joined on that
  number, so no row depends on the order ``RETURNING`` hands rows back in.
- PostgreSQL, one action (``log()`` outside a queue): a plainer statement, or
  once the database session has written many, a call of ``actrack_log_action()``
  (migration ``0005``; see :mod:`actrack.logfunction`).
- SQLite, one action (``log()`` outside a queue): one ``INSERT`` into the view
  ``actrack_action_log``, whose trigger writes the action and its link rows
  (migration ``0002``), atomic by itself: no ``BEGIN`` and ``COMMIT``.
- Elsewhere: multi-row ``INSERT ... RETURNING id`` for the actions (rows are
  numbered in the order they are inserted, so the returned ids, sorted, match
  the entries in order), then multi-row inserts of the link rows, each
  statement under the database's limit of parameters.

Either way, action ids increase in logging order, a link row's id follows the
order its objects were given in, and each entry gets a saved ``Action``, built
as a query would build it (:func:`actrack.rows.builder`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections

from actrack import logfunction

if TYPE_CHECKING:
    from django.db import models
    from django.db.backends.base.base import BaseDatabaseWrapper

    from actrack.models import Action, Tracker
    from actrack.queue import Entry

T = TypeVar("T")

#: Columns written for an action and for a link row, in the order of the parameters.
ACTION_COLUMNS = ("actor_ct_id", "actor_key", "verb", "level", "data", "timestamp")
LINK_COLUMNS = ("action_id", "obj_ct_id", "obj_key", "timestamp")
#: Where an action row (see :func:`_action_values`) holds its adapted timestamp.
_TIMESTAMP = ACTION_COLUMNS.index("timestamp")

#: Most actions written by one PostgreSQL statement (larger queues take several).
ACTIONS_PER_STATEMENT = 10_000
#: Most rows per statement elsewhere, where the database sets no limit of parameters.
ROWS_PER_STATEMENT = 10_000


def insert_actions(using: str, entries: list[Entry]) -> list[Action]:
    """Insert ``entries`` and their link rows; set and return each entry's action.

    Several statements (more than :data:`ACTIONS_PER_STATEMENT` entries on
    PostgreSQL, any entries elsewhere) must run inside a transaction: the
    caller's.
    """
    if not entries:
        return []
    connection = connections[using]
    if connection.vendor == "postgresql" and len(entries) == 1:
        ids = [_insert_one_postgresql(connection, entries[0])]
    elif connection.vendor == "sqlite" and len(entries) == 1:
        ids = [_insert_one_sqlite(connection, entries[0])]
    elif connection.vendor == "postgresql":
        ids = [
            id_
            for chunk in slices(entries, ACTIONS_PER_STATEMENT)
            for id_ in _insert_postgresql(connection, chunk)
        ]
    else:
        ids = _insert_by_rows(connection, entries)
    return _saved_actions(using, entries, ids)


def single_statement(using: str, count: int) -> bool:
    """Whether :func:`insert_actions` writes ``count`` entries with one statement
    (on SQLite, unless the view of migration ``0002`` is missing: see
    :func:`_insert_one_sqlite`)."""
    vendor = connections[using].vendor
    if vendor == "postgresql":
        return count <= ACTIONS_PER_STATEMENT
    return vendor == "sqlite" and count == 1


def _action_values(entry: Entry, connection: BaseDatabaseWrapper) -> tuple[Any, ...]:
    actor_ct, actor_key = entry.actor_columns
    return (
        actor_ct,
        actor_key,
        entry.verb,
        entry.level,
        json.dumps(entry.data, cls=DjangoJSONEncoder) if entry.data else "{}",
        connection.ops.adapt_datetimefield_value(entry.timestamp),
    )


def links_json(entry: Entry) -> tuple[str | None, str | None]:
    """The targets and the related objects of ``entry`` as JSON arrays of
    ``[content type id, key]`` pairs, None for none: what SQLite's log view
    and PostgreSQL's ``actrack_log_action()`` take."""
    targets, related = entry.target_refs, entry.related_refs
    return (json.dumps(targets) if targets else None, json.dumps(related) if related else None)


#: Statement texts built once per process: (vendor, kind) -> SQL. Few kinds: the queue
#: statement, and the single-log one per number of targets and related objects.
_STATEMENTS: dict[tuple[str, Hashable], str] = {}
#: Most texts kept (a single log with hundreds of targets builds a statement of its own).
STATEMENTS_KEPT = 200


def _statement(connection: BaseDatabaseWrapper, kind: Hashable, build: Callable[[], str]) -> str:
    """The text of statement ``kind`` for ``connection``'s database, built at first use."""
    key = (connection.vendor, kind)
    sql = _STATEMENTS.get(key)
    if sql is None:
        sql = build()
        if len(_STATEMENTS) < STATEMENTS_KEPT:
            _STATEMENTS[key] = sql
    return sql


def _saved_actions(using: str, entries: list[Entry], ids: list[int]) -> list[Action]:
    from actrack.models import Action
    from actrack.rows import builder

    names = [field.attname for field in Action._meta.concrete_fields]
    build = builder(Action)
    actions = []
    for entry, id_ in zip(entries, ids, strict=True):
        actor_ct, actor_key = entry.actor_columns
        values = {
            "id": id_,
            "actor_ct_id": actor_ct,
            "actor_key": actor_key,
            "verb": entry.verb,
            "level": entry.level,
            "data": entry.data,
            "timestamp": entry.timestamp,
        }
        entry.action = build(Action, using, names, [values[name] for name in names])
        actions.append(entry.action)
    return actions


# --- PostgreSQL: one statement ---------------------------------------------------------------


def _postgresql_sql(connection: BaseDatabaseWrapper) -> str:
    from actrack.models import Action, ActionRelated, ActionTarget

    quote = connection.ops.quote_name
    action_columns = ", ".join(quote(c) for c in ("id", *ACTION_COLUMNS))
    link_columns = ", ".join(quote(c) for c in LINK_COLUMNS)

    def links(name: str, table: str) -> str:
        return (
            f"{name} AS (INSERT INTO {quote(table)} ({link_columns}) "
            "SELECT new.id, (link.v->>1)::integer, link.v->>2, new.ts "
            "FROM json_array_elements(%s::json) WITH ORDINALITY AS link(v, n) "
            "JOIN new ON new.ord = (link.v->>0)::bigint ORDER BY link.n)"
        )

    # nextval() runs once per row as the numbered rows are scanned, in their order.
    return (
        "WITH seq AS (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS name), "
        "new AS MATERIALIZED (SELECT nextval(seq.name) AS id, row.ord, "
        "(row.v->>5)::timestamptz AS ts, row.v "
        "FROM seq, json_array_elements(%s::json) WITH ORDINALITY AS row(v, ord)), "
        f"actions AS (INSERT INTO {quote(Action._meta.db_table)} ({action_columns}) "
        "SELECT id, (v->>0)::integer, v->>1, v->>2, (v->>3)::smallint, (v->4)::jsonb, ts "
        "FROM new ORDER BY ord), "
        f"{links('targets', ActionTarget._meta.db_table)}, "
        f"{links('related', ActionRelated._meta.db_table)} "
        "SELECT id FROM new ORDER BY ord"
    )


def _insert_postgresql(connection: BaseDatabaseWrapper, entries: Sequence[Entry]) -> list[int]:
    """One statement; its parameters are three JSON documents (the actions, their
    targets, their related objects), far cheaper to send than a parameter per value."""
    from actrack.models import Action

    actions: list[list[Any]] = []
    links: tuple[list[Any], list[Any]] = ([], [])
    for number, entry in enumerate(entries, start=1):
        actor_ct, actor_key = entry.actor_columns
        timestamp = entry.timestamp.isoformat()
        actions.append([actor_ct, actor_key, entry.verb, entry.level, entry.data, timestamp])
        links[0].extend([number, ct, key] for ct, key in entry.target_refs)
        links[1].extend([number, ct, key] for ct, key in entry.related_refs)
    params = [
        connection.ops.quote_name(Action._meta.db_table),
        json.dumps(actions, cls=DjangoJSONEncoder),
        json.dumps(links[0]),
        json.dumps(links[1]),
    ]
    sql = _statement(connection, "queue", lambda: _postgresql_sql(connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _insert_one_postgresql(connection: BaseDatabaseWrapper, entry: Entry) -> int:
    """One action (``log()`` outside a queue): a plainer statement than the general one.

    Its link rows are plain ``VALUES`` rows, in the order given, each taking the new
    id from a scalar subquery (computed once) and the timestamp as a parameter:
    about a sixth less round trip than joining the rows to the inserted action,
    most of it planning. A session that has written many goes through
    ``actrack_log_action()`` instead (see :mod:`actrack.logfunction`).
    """
    values = _action_values(entry, connection)
    written = logfunction.insert(connection, values, entry)
    if written is not None:
        return written
    timestamp = values[_TIMESTAMP]
    params: list[Any] = list(values)
    for refs in (entry.target_refs, entry.related_refs):
        params += [value for ct, key in refs for value in (ct, key, timestamp)]
    sql = _statement(
        connection,
        ("one", len(entry.target_refs), len(entry.related_refs)),
        lambda: _postgresql_one_sql(connection, len(entry.target_refs), len(entry.related_refs)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def _postgresql_one_sql(connection: BaseDatabaseWrapper, targets: int, related: int) -> str:
    from actrack.models import Action, ActionRelated, ActionTarget

    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ACTION_COLUMNS)
    link_columns = ", ".join(quote(c) for c in LINK_COLUMNS)
    parts = [
        f"WITH new AS (INSERT INTO {quote(Action._meta.db_table)} ({columns}) "
        f"VALUES (%s, %s, %s, %s, %s::jsonb, %s) RETURNING {quote('id')})"
    ]
    for name, model, count in (
        ("targets", ActionTarget, targets),
        ("related", ActionRelated, related),
    ):
        if count:
            rows = ", ".join(["((SELECT id FROM new), %s, %s, %s)"] * count)
            parts.append(
                f"{name} AS (INSERT INTO {quote(model._meta.db_table)} ({link_columns}) "
                f"VALUES {rows})"
            )
    return ", ".join(parts) + " SELECT id FROM new"


# --- SQLite: one action through a view ------------------------------------------------------

#: The view of migration ``0002_sqlite_action_log``.
SQLITE_LOG_VIEW = "actrack_action_log"


def _sqlite_one_sql(connection: BaseDatabaseWrapper) -> str:
    from actrack.models import Action

    quote = connection.ops.quote_name
    table, pk = quote(Action._meta.db_table), quote("id")
    columns = ", ".join(quote(c) for c in ("id", *ACTION_COLUMNS, "targets", "related"))
    # The id AUTOINCREMENT would give, taken in the statement (which holds the write
    # lock from its start): past the highest id the table ever had, even if deleted.
    next_id = (
        f"(SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = "
        f"'{Action._meta.db_table}'), 0), coalesce((SELECT max({pk}) FROM {table}), 0)) + 1)"
    )
    placeholders = ", ".join(["%s"] * (len(ACTION_COLUMNS) + 2))
    return (
        f"INSERT INTO {quote(SQLITE_LOG_VIEW)} ({columns}) VALUES ({next_id}, {placeholders}) "
        f"RETURNING {pk}"
    )


def _insert_one_sqlite(connection: BaseDatabaseWrapper, entry: Entry) -> int:
    """One action (``log()`` outside a queue) in one statement.

    The row inserted into the view carries the action's columns, its id, and its
    targets and related objects as two JSON arrays of ``[content type id, key]``
    pairs; ``RETURNING`` hands back the id the trigger used.

    A database created without migrations (tests with ``MIGRATE: False``) has no
    view: the action is then written a statement per table, in a transaction.
    """
    from django.db import OperationalError, transaction

    values = _action_values(entry, connection)
    params = [*values, *links_json(entry)]
    sql = _statement(connection, "one", lambda: _sqlite_one_sql(connection))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except OperationalError as error:
        if f"no such table: {SQLITE_LOG_VIEW}" not in str(error):
            raise
        with transaction.atomic(using=connection.alias):
            return _insert_by_rows(connection, [entry])[0]
    assert row is not None
    return int(row[0])


# --- other databases: a statement per slice of rows ------------------------------------------


def rows_per_statement(
    connection: BaseDatabaseWrapper, per_row: int, default: int, spare: int = 0
) -> int:
    """How many rows of ``per_row`` parameters one statement takes besides ``spare``
    others, one parameter spare, under the database's limit
    (``features.max_query_params``: 999 on SQLite, none on PostgreSQL);
    ``default`` where there is no limit."""
    limit = connection.features.max_query_params
    return max(1, (limit - 1 - spare) // per_row) if limit else default


def slices(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def chunks(
    values: Sequence[T], using: str, per_item: int = 1, spare: int = 0
) -> Iterator[Sequence[T]]:
    """``values`` in slices that fit one statement when each takes up to ``per_item``
    parameters, besides ``spare`` others (see :func:`rows_per_statement`); all at
    once where the database sets no limit."""
    connection = connections[using]
    return slices(values, rows_per_statement(connection, per_item, len(values) or 1, spare))


def _insert_by_rows(connection: BaseDatabaseWrapper, entries: list[Entry]) -> list[int]:
    """The actions of ``entries``, then their link rows, a statement per table (per
    slice under the database's limit); the actions' ids, in order. The caller holds a
    transaction."""
    rows = [_action_values(entry, connection) for entry in entries]
    ids = _insert_actions_by_rows(connection, rows)
    # The link rows repeat their action's timestamp, adapted once (per row it was a
    # quarter of writing a queue on SQLite).
    _insert_links_by_rows(connection, entries, ids, [row[_TIMESTAMP] for row in rows])
    return ids


def _insert_actions_by_rows(
    connection: BaseDatabaseWrapper, rows: list[tuple[Any, ...]]
) -> list[int]:
    """Insert the action ``rows`` (see :func:`_action_values`); their ids, in order."""
    from actrack.models import Action

    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(Action._meta.db_table)} "
        f"({', '.join(quote(c) for c in ACTION_COLUMNS)}) VALUES "
    )
    placeholders = f"({', '.join(['%s'] * len(ACTION_COLUMNS))})"
    ids: list[int] = []
    with connection.cursor() as cursor:
        size = rows_per_statement(connection, len(ACTION_COLUMNS), ROWS_PER_STATEMENT)
        for chunk in slices(rows, size):
            sql = f"{head}{', '.join([placeholders] * len(chunk))} RETURNING {quote('id')}"
            cursor.execute(sql, [value for row in chunk for value in row])
            ids.extend(sorted(row[0] for row in cursor.fetchall()))
    return ids


def _insert_links_by_rows(
    connection: BaseDatabaseWrapper, entries: list[Entry], ids: list[int], stamps: list[Any]
) -> None:
    """The link rows of ``entries``, whose actions have ``ids`` and adapted timestamps
    ``stamps``."""
    from actrack.models import ActionRelated, ActionTarget

    quote = connection.ops.quote_name
    placeholders = f"({', '.join(['%s'] * len(LINK_COLUMNS))})"
    size = rows_per_statement(connection, len(LINK_COLUMNS), ROWS_PER_STATEMENT)
    for model, role in ((ActionTarget, "target_refs"), (ActionRelated, "related_refs")):
        rows = [
            (id_, ct, key, stamp)
            for entry, id_, stamp in zip(entries, ids, stamps, strict=True)
            for ct, key in getattr(entry, role)
        ]
        head = (
            f"INSERT INTO {quote(model._meta.db_table)} "
            f"({', '.join(quote(c) for c in LINK_COLUMNS)}) VALUES "
        )
        with connection.cursor() as cursor:
            for chunk in slices(rows, size):
                sql = head + ", ".join([placeholders] * len(chunk))
                cursor.execute(sql, [value for row in chunk for value in row])


# --- trackers: one upsert ---------------------------------------------------------------------


def quoted_column(connection: BaseDatabaseWrapper, model: type[models.Model], name: str) -> str:
    """The quoted column of ``model``'s field ``name``, for hand-written statements."""
    return connection.ops.quote_name(str(model._meta.get_field(name).column))  # type: ignore[union-attr]


def returns_rows(using: str) -> bool:
    """Whether actrack's own writes may read rows back (``RETURNING``): PostgreSQL, and
    SQLite 3.35+. :func:`upsert_trackers` reads each tracker back as stored there
    (elsewhere ``bulk_create``'s upsert), and ``untrack()`` the trackers it changed."""
    connection = connections[using]
    return connection.vendor in ("postgresql", "sqlite") and bool(
        connection.features.can_return_rows_from_bulk_insert
    )


def upsert_trackers(
    using: str, rows: list[Tracker], update_fields: list[str], *, read_back: bool = False
) -> None:
    """Insert ``rows`` (unsaved trackers, in the order given), or update ``update_fields``
    of the trackers already there for the same user and object; set each row's key.

    As ``bulk_create(update_conflicts=True)`` does, but a single statement is sent
    alone: ``bulk_create`` wraps even one statement in ``BEGIN``/``COMMIT``, two
    round trips more than the upsert itself. More rows than one statement takes
    (SQLite's limit of parameters) are written in a transaction.

    ``read_back`` (where :func:`returns_rows`): the statement returns the
    stored rows, and each row gets its stored ``created`` and ``actor_only``
    (a tracker already there keeps both unless ``update_fields`` names them).
    """
    from django.db import transaction

    from actrack.models import Tracker
    from actrack.rows import instances

    connection = connections[using]
    if not rows:
        return
    if not returns_rows(using):
        Tracker.objects.using(using).bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user", "tracked_ct", "tracked_key"],
            update_fields=update_fields,
        )
        return
    quote = connection.ops.quote_name
    meta = Tracker._meta

    def column(name: str) -> str:
        return quoted_column(connection, Tracker, name)

    fields = [field for field in meta.concrete_fields if not field.primary_key]
    unique = [column(name) for name in ("user", "tracked_ct", "tracked_key")]
    updates = ", ".join(f"{column(name)} = EXCLUDED.{column(name)}" for name in update_fields)
    head = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "
        "VALUES "
    )
    if read_back:
        returned = ", ".join(quote(str(field.column)) for field in meta.concrete_fields)
    else:
        returned = f"{column('id')}, {unique[1]}, {unique[2]}"
    tail = f" ON CONFLICT ({', '.join(unique)}) DO UPDATE SET {updates} RETURNING {returned}"
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    chunks = list(slices(rows, rows_per_statement(connection, len(fields), ROWS_PER_STATEMENT)))
    stored: dict[tuple[int, str], Any] = {}
    atomic = transaction.atomic(using=using) if len(chunks) > 1 else contextlib.nullcontext()
    with atomic, connection.cursor() as cursor:
        for chunk in chunks:
            params = [
                field.get_db_prep_save(getattr(row, field.attname), connection)
                for row in chunk
                for field in fields
            ]
            cursor.execute(head + ", ".join([placeholders] * len(chunk)) + tail, params)
            if read_back:
                for tracker in instances(Tracker, using, connection, cursor.fetchall()):
                    stored[(tracker.tracked_ct_id, tracker.tracked_key)] = tracker
            else:
                stored.update(((ct, key), pk) for pk, ct, key in cursor.fetchall())
    for row in rows:
        found = stored[(row.tracked_ct_id, row.tracked_key)]
        if read_back:
            row.pk, row.created, row.actor_only = found.pk, found.created, found.actor_only
        else:
            row.pk = found
        row._state.adding = False
        row._state.db = using
