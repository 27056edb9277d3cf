"""Functions whose plans the database session keeps: uses per session, and the
database and error they are known by.

PL/pgSQL plans a function's statements at their first use in a session and
keeps the plans for the session; that first call costs more than sending the
statements themselves (1.4-2.2 ms more, measured on fresh connections). A
session opened per request (``CONN_MAX_AGE = 0``) would pay it every time:
callers send their statements for a session's first few uses, and call the
function after (:class:`SessionFunction`; ``actrack.countfunction`` counts its
sessions' uses itself).
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


class SessionFunction:
    """A function of a migration (PostgreSQL) that database sessions call past their
    first ``inline`` uses, sending the caller's statement before.

    The process remembers per database whether the function is there: it asks
    the catalogue inside a transaction (where a failed call would end it),
    learns from a failed call outside one, and again after ``migrate``
    (:meth:`migrated`, a ``post_migrate`` receiver).
    """

    def __init__(self, signature: str, inline: int) -> None:
        #: The function's name with its argument types, as ``to_regprocedure`` reads it.
        self.signature = signature
        #: Uses each database session sends as the statement before calling the function.
        self.inline = inline
        #: Uses so far by each open database session.
        self.sessions = SessionUses()
        #: Whether each database, as (alias, name), has the function; missing until known.
        self.present: dict[tuple[str, str], bool] = {}

    def __repr__(self) -> str:
        return f"SessionFunction({self.signature!r}, inline={self.inline})"

    def callable_here(self, connection: BaseDatabaseWrapper) -> bool:
        """Whether to call the function now.

        Counts a use by the session (its first ``inline`` send the statements)
        and, inside a transaction, asks the catalogue first (once per process
        and database).
        """
        if not self.sessions.warm(connection, self.inline):
            return False
        key = database_key(connection)
        known = self.present.get(key)
        if known is None and connection.in_atomic_block:
            known = self.present[key] = self.has_function(connection)
        return known is not False

    def call_if_here(self, connection: BaseDatabaseWrapper, call: Callable[[], T]) -> T | None:
        """``call()`` (which calls the function) when :meth:`callable_here` says so, or
        None when the caller should send its statement instead.

        A call that fails because the function does not exist (never migrated,
        or dropped since, by a migration backwards) teaches the process.
        Outside a transaction nothing else is undone, and the caller sends its
        statement; inside one the error is raised, since the transaction is
        over (the catalogue was asked first when the process did not know).
        """
        if not self.callable_here(connection):
            return None
        try:
            result = call()
        except ProgrammingError as error:
            if not undefined_function(error):
                raise
            self.note(connection, False)
            if connection.in_atomic_block:
                raise
            return None
        self.note(connection, True)
        return result

    def note(self, connection: BaseDatabaseWrapper, present: bool) -> None:
        """Remember whether the database of ``connection`` has the function."""
        self.present[database_key(connection)] = present

    def has_function(self, connection: BaseDatabaseWrapper) -> bool:
        """Whether the database of ``connection`` (PostgreSQL) has the function: the catalogue."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [self.signature])
            row = cursor.fetchone()
        return bool(row and row[0])

    def migrated(self, using: str, **kwargs: Any) -> None:
        """``post_migrate`` of actrack: learn whether the database ``using`` has the
        function now (PostgreSQL)."""
        from django.db import connections

        connection = connections[using]
        if connection.vendor == "postgresql":
            self.note(connection, self.has_function(connection))


def undefined_function(error: Exception) -> bool:
    """Whether ``error`` (Django's, wrapping the driver's) says a function does not exist."""
    return getattr(error.__cause__, "sqlstate", None) == _UNDEFINED_FUNCTION


#: PostgreSQL's error code for a function that does not exist.
_UNDEFINED_FUNCTION = "42883"
