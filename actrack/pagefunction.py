"""PostgreSQL: feed pages whose statement the database session plans once.

A user who follows whole models only (no object trackers) gets a page from
the newest link rows of those models' content types, which the statement
names as constants: its plan is the same whatever the other values (the
user, the level floor, a cursor). Planning it was about 0.3 ms of its 0.6-0.8
ms on the server (1M and 5M actions), where django-activity-stream's
one-table walk plans in 0.06. Migration ``0004_postgresql_prepared_page``
creates ``actrack_prepared_page()``, which prepares a statement once per
session with PostgreSQL's generic plan and runs it: measured by hand on the
5M data, the page's round trip took 0.72 ms instead of 1.20.

Each session sends its first ``INLINE_PAGES`` such pages as the statement.
The function's first call in a session compiles it and prepares the
statement, and each new text (page 1, cursor pages, another page size) is
prepared at its first call: measured on fresh sessions at 1M actions, the
first call took 2.3-4.5 ms more than the statement, a new text 0.6 ms more,
and later pages 0.83-1.0 ms against 1.0-1.6. That pays off after about ten
pages: a session that has sent ``INLINE_PAGES`` such pages is one that
serves many (persistent connections, a pool), and sessions opened per
request never switch. A statement the function
cannot prepare (a parameter whose type PostgreSQL cannot infer) is sent as
itself from then on; inside a transaction, where an error would end the
caller's transaction, only statements this process has already run through
the function go to it. Databases without the function get the statements.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError

from actrack.memo import remember
from actrack.rows import reading_cursor
from actrack.sessionuse import SessionFunction, undefined_function

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from actrack.models import Action

logger = logging.getLogger(__name__)

#: The function of migration 0004, with its argument types.
FUNCTION = "actrack_prepared_page"
SIGNATURE = f"{FUNCTION}(text, text[])"

#: Such pages each database session sends as the statement before calling the function.
INLINE_PAGES = 16

#: The function, its sessions' such pages so far, and the databases known to have it.
PREPARED_PAGE = SessionFunction(SIGNATURE, INLINE_PAGES)

#: Statements (md5 of the text the function gets) the function ran (True) or could
#: not prepare (False) in this process, the most recent last.
_OUTCOMES: OrderedDict[str, bool] = OrderedDict()
OUTCOMES_KEPT = 2_000


def fetch(
    model: type[Action], connection: BaseDatabaseWrapper, sql: str, params: list[Any], extra: int
) -> list[Any] | None:
    """The rows of ``sql`` through the function, or None when the statement should run.

    ``sql`` selects ``model``'s columns (in field order) and then ``extra``
    boolean columns; ``params`` fill its ``%s`` placeholders.
    """
    if connection.vendor != "postgresql":
        return None
    converted = _numbered(sql, params)
    if converted is None:
        return None
    statement, args = converted
    digest = _digest(statement)
    outcome = _OUTCOMES.get(digest)
    if outcome is False or (outcome is None and connection.in_atomic_block):
        return None  # refused before, or untried where an error would end the transaction
    if not PREPARED_PAGE.callable_here(connection):
        return None
    call = f"SELECT * FROM {FUNCTION}(%s, %s) AS _r({_row_type(model, connection, extra)})"
    try:
        with reading_cursor(connection) as cursor:
            cursor.execute(call, [statement, args])
            rows = cursor.fetchall()
    except DatabaseError as error:
        if connection.in_atomic_block:
            raise  # a statement the function ran before: not the function's doing
        if undefined_function(error):
            # Not migrated: autocommit, so nothing else is undone.
            PREPARED_PAGE.note(connection, False)
        else:
            logger.warning(
                "actrack: a feed page's statement could not be prepared (%s); "
                "such pages are sent as statements from now on",
                error,
            )
            remember(_OUTCOMES, digest, False, OUTCOMES_KEPT)
        return None
    PREPARED_PAGE.note(connection, True)
    remember(_OUTCOMES, digest, True, OUTCOMES_KEPT)
    return rows


def _digest(statement: str) -> str:
    """The key of ``statement`` in ``_OUTCOMES``: the md5 the function names it by."""
    return hashlib.md5(statement.encode(), usedforsecurity=False).hexdigest()


def _numbered(sql: str, params: list[Any]) -> tuple[str, list[str | None]] | None:
    """``sql`` with ``$1``, ``$2``... for its ``%s``, and ``params`` as text; None when
    the text holds other ``%`` escapes or a value has no plain text form here."""
    parts = sql.split("%s")
    if len(parts) != len(params) + 1 or any("%" in part for part in parts):
        return None
    try:
        args = [_text(value) for value in params]
    except _NoText:
        return None
    numbered = [parts[0]]
    for number, part in enumerate(parts[1:], start=1):
        numbered += [f"${number}", part]
    return "".join(numbered), args


class _NoText(Exception):
    """A parameter the statement should send itself (see :func:`_text`)."""


def _text(value: Any) -> str | None:
    """``value`` as PostgreSQL reads it from text; :class:`_NoText` for anything else
    (lists, naive datetimes, floats...)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal) or (isinstance(value, str) and "\0" not in value):
        return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat()
    raise _NoText


def _row_type(model: type[Action], connection: BaseDatabaseWrapper, extra: int) -> str:
    """The column definition list of the function's rows for ``model``."""
    found = _ROW_TYPES.get((model, extra))
    if found is None:
        types = [field.db_type(connection) for field in model._meta.concrete_fields]
        types += ["boolean"] * extra
        found = _ROW_TYPES[(model, extra)] = ", ".join(f"c{i} {t}" for i, t in enumerate(types))
    return found


#: Column definition lists per (model, extra columns).
_ROW_TYPES: dict[tuple[type[Action], int], str] = {}
