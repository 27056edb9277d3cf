"""PostgreSQL: ``log()`` outside a queue through a function the session plans once.

One action written at once (``log()`` outside a request, ``batch()`` or
transaction) was one statement: the action's ``INSERT`` and its link rows'
in data-modifying ``WITH`` clauses, which PostgreSQL parsed and planned at
every call. Migration ``0005_postgresql_log_action`` creates
``actrack_log_action()``, whose three inserts PL/pgSQL plans once per
database session. Measured on the S data (100k actions), interleaved with
django-activity-stream's ``action.send`` in one process: ``log()`` with one
target and one related object 0.75-0.82 -> 0.68-0.76 ms (``action.send``
0.76-0.85), with two targets 0.81-0.90 -> 0.72-0.80 ms.

The function's first call in a session costs about 1.6 ms more than the
statement's, and its next few calls about 0.1-0.2 ms more (measured on fresh
connections). So each session writes its first ``INLINE_LOGS`` single
actions with the statement, later ones through the function
(``actrack.sessionuse``): a session that writes one action at a time that
often is a long-lived one (a worker's, a pool's). Databases that have not run
the migration get the statement: the process asks once inside a
transaction, or tries the call once outside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actrack.sessionuse import SessionFunction

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from actrack.queue import Entry

#: The function of migration 0005, with its argument types.
FUNCTION = "actrack_log_action"
SIGNATURE = f"{FUNCTION}(integer, text, text, smallint, jsonb, timestamptz, json, json)"

#: Single actions each database session writes with the statement before calling the function.
INLINE_LOGS = 32

#: The function, its sessions' single writes so far, and the databases known to have it.
LOG_ACTION = SessionFunction(SIGNATURE, INLINE_LOGS)

#: The call; the casts pick the function whatever types the driver gives the values.
_CALL = (
    f"SELECT {FUNCTION}(%s::integer, %s::text, %s::text, %s::smallint, %s::jsonb, "
    "%s::timestamptz, %s::json, %s::json)"
)


def insert(connection: BaseDatabaseWrapper, values: tuple[Any, ...], entry: Entry) -> int | None:
    """Write ``entry`` through the function: the new action's id, or None when the
    statement should write it.

    ``values`` are the action's columns as ``actrack.inserts`` adapts them.
    """

    def call() -> int:
        from actrack.inserts import links_json  # inserts calls this module

        params = [*values, *links_json(entry)]
        with connection.cursor() as cursor:
            cursor.execute(_CALL, params)
            row = cursor.fetchone()
        assert row is not None
        return int(row[0])

    return LOG_ACTION.call_if_here(connection, call)
