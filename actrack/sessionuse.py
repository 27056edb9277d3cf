"""Functions whose plans the database session keeps: uses per session, and the
database and error they are known by.

PL/pgSQL plans a function's statements at their first use in a session and
keeps the plans for the session; that first call costs more than sending the
statements themselves (1.4-2.2 ms more, measured on fresh connections). A
session opened per request (``CONN_MAX_AGE = 0``) would pay it every time:
callers send their statements for a session's first few uses, and call the
function after (see ``actrack.objectpage`` and ``actrack.countfunction``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import ProgrammingError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

T = TypeVar("T")


class SessionUses:
    """Uses of one thing per open database session (the driver's connection)."""

    def __init__(self) -> None:
        self._uses: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def warm(self, connection: BaseDatabaseWrapper, after: int) -> bool:
        """Count a use by ``connection``'s session: whether it had ``after`` uses before."""
        connection.ensure_connection()
        session = connection.connection
        used = self._uses.get(session, 0)
        if used >= after:
            return True
        self._uses[session] = used + 1
        return False


def database_key(connection: BaseDatabaseWrapper) -> tuple[str, str]:
    """The database of ``connection`` as (alias, name): what a process remembers
    about its functions is per database (a test run recreates one under the alias)."""
    return connection.alias, str(connection.settings_dict["NAME"])


def callable_here(
    connection: BaseDatabaseWrapper,
    sessions: SessionUses,
    inline: int,
    present: dict[tuple[str, str], bool],
    signature: str,
) -> bool:
    """Whether to call the function now.

    Counts a use by the session (its first ``inline`` send the statements) and,
    inside a transaction, where a failed call would end it, asks the catalogue
    first (once per process and database, kept in ``present``).
    """
    if not sessions.warm(connection, inline):
        return False
    key = database_key(connection)
    known = present.get(key)
    if known is None and connection.in_atomic_block:
        known = present[key] = has_function(connection, signature)
    return known is not False


def call_if_here(
    connection: BaseDatabaseWrapper,
    sessions: SessionUses,
    inline: int,
    present: dict[tuple[str, str], bool],
    signature: str,
    call: Callable[[], T],
) -> T | None:
    """``call()`` (which calls the function) when :func:`callable_here` says so, or
    None when the caller should send its statement instead.

    A call that fails because the function does not exist (never migrated, or
    dropped since, by a migration backwards) teaches ``present``. Outside a
    transaction nothing else is undone, and the caller sends its statement;
    inside one the error is raised, since the transaction is over (the
    catalogue was asked first when the process did not know).
    """
    if not callable_here(connection, sessions, inline, present, signature):
        return None
    key = database_key(connection)
    try:
        result = call()
    except ProgrammingError as error:
        if not undefined_function(error):
            raise
        present[key] = False
        if connection.in_atomic_block:
            raise
        return None
    present[key] = True
    return result


def has_function(connection: BaseDatabaseWrapper, signature: str) -> bool:
    """Whether the database of ``connection`` (PostgreSQL) has the function ``signature``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [signature])
        row = cursor.fetchone()
    return bool(row and row[0])


def learn_function(using: str, present: dict[tuple[str, str], bool], signature: str) -> None:
    """Note in ``present`` whether the database ``using`` has the function now
    (PostgreSQL; a ``post_migrate`` step)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "postgresql":
        present[database_key(connection)] = has_function(connection, signature)


def undefined_function(error: Exception) -> bool:
    """Whether ``error`` (Django's, wrapping the driver's) says a function does not exist."""
    return getattr(error.__cause__, "sqlstate", None) == _UNDEFINED_FUNCTION


#: PostgreSQL's error code for a function that does not exist.
_UNDEFINED_FUNCTION = "42883"
