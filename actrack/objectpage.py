"""PostgreSQL: an object's pages through a function whose plan the session keeps.

``obj.actions.all().page()`` reads the newest actions of one object per role
(actor, target, related) and merges them. On PostgreSQL most of the server's
work for that statement is parsing and planning it: 0.24 ms of planning and
0.23 of execution for an object's first page, measured on 1M actions. Migration
``0003_postgresql_object_page`` creates ``actrack_object_page()``, whose
statement is planned once per database session (a generic plan, which reads the
same indexes for every object); a page is then a call of the function. Measured
on the same data, statement and rows alone: 0.91 -> 0.55 ms a page.

A session's first call of the function costs more than the statement: about
1.4 ms more, compiling the function and planning its statement (measured on
fresh connections). So each session sends its first ``INLINE_PAGES`` object
pages as the statement, later ones as the call (``actrack.sessionuse``): a
session opened per request (``CONN_MAX_AGE = 0``) rarely gets there, a
persistent one gains from then on.

Only an object's pages with no other filter go this way (``obj.actions.all()``,
cursors included); anything else, and databases that have not run the
migration, get the feed engine's statement.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import connections

from actrack.rows import instances, reading_cursor
from actrack.sessionuse import SessionFunction

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from actrack.feedengine import TrackerMatch
    from actrack.models import Action
    from actrack.querysets import ActionQuerySet

#: The function of migration 0003, with its argument types.
FUNCTION = "actrack_object_page"
SIGNATURE = f"{FUNCTION}(integer, text, timestamptz, bigint, integer)"

#: Object pages each database session sends as the statement before calling the function.
INLINE_PAGES = 4

#: The function, its sessions' object pages so far, and the databases known to have it.
OBJECT_PAGE = SessionFunction(SIGNATURE, INLINE_PAGES)


def fetch(
    queryset: ActionQuerySet,
    match: TrackerMatch,
    position: tuple[dt.datetime, int] | None,
    limit: int,
) -> list[Action] | None:
    """The page through the function, or None when the statement should serve it.

    ``match`` is the queryset's only condition (see ``feedengine.fetch_page``).
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or not _object_page(queryset, match):
        return None
    tracker = match.trackers[0]
    before = position or (None, None)
    params = [tracker.tracked_ct_id, tracker.tracked_key, before[0], before[1], limit]

    def call() -> list[Action]:
        with reading_cursor(connection) as cursor:
            cursor.execute(_statement(queryset.model, connection), params)
            rows = cursor.fetchall()
        return instances(queryset.model, queryset.db, connection, rows)

    return OBJECT_PAGE.call_if_here(connection, call)


def _object_page(queryset: ActionQuerySet, match: TrackerMatch) -> bool:
    """Whether ``queryset`` is an object's actions and nothing more (the function's case)."""
    from actrack.models import Action

    query = queryset.query
    if (
        len(query.where.children) != 1
        or query.distinct
        or query.combinator
        or query.is_sliced
        or query.extra
        or queryset.model._meta.db_table != Action._meta.db_table
    ):
        return False
    if (
        len(match.trackers) != 1
        or match.unread_for is not None
        or match.owner is not None
        or match.min_level is not None
        or match.not_by is not None
        or match.fingerprint is not None
    ):
        return False
    tracker = match.trackers[0]
    return bool(tracker.tracked_key) and not tracker.actor_only and not tracker.verbs


def _statement(model: type[Action], connection: BaseDatabaseWrapper) -> str:
    sql = _STATEMENTS.get(model)
    if sql is None:
        quote = connection.ops.quote_name
        fields = model._meta.concrete_fields
        columns = ", ".join(quote(field.column or field.attname) for field in fields)
        sql = _STATEMENTS[model] = f"SELECT {columns} FROM {FUNCTION}(%s, %s, %s, %s, %s)"
    return sql


#: The call's text per model (Action or a proxy of it), its columns in field order.
_STATEMENTS: dict[type[Action], str] = {}
