"""PostgreSQL: a capped unread count in one call of a function whose plans the session keeps.

The count's statements (:func:`actrack.countsql.recent_count_sql`, the walk
down the newest actions, and :func:`actrack.countsql.count_unread_sql`, the
fan-out over the user's trackers) spend much of their time being planned:
0.5 ms for the walk, 0.9 for the fan-out, measured on 1M actions. And the
walk, when the user's floors are far back (a long unread history), checks
hundreds of actions one by one (2.7 ms of execution) where the fan-out finds
the cap's worth in 0.7.

``actrack_unread_count(user, user content type, user key, cap, level, models)``
holds three statements, built by those functions with the arguments in place
of their parameters, and PL/pgSQL plans each once per database session (the
generic plan):

1. whether more actions than the walk's length are newer than the lowest
   tracker floor (:func:`actrack.countsql.walk_reach_sql`);
2. if not, the walk; its answer comes back after ``'w:'``;
3. otherwise, or when the walk falls short, the fan-out over the user's
   object trackers: the unread ids, ``'-2'`` (the ordered statement must
   count) or ``'-1:<content type ids>'`` (the user follows models).

For a user the process knows to follow models, ``models`` is the fan-out
naming those models' content types as constants (:func:`models_statement`),
which the function runs in place of the third. With a content type as a
parameter, a generic plan walked the whole timeline for a model that never
acts (29 ms where the statement with the constant takes 1.2); with the
constants, planning that statement takes 2.5 ms. So the function prepares it
(``PREPARE``, named after the md5 of its text) the first time its session
needs it, and executes the prepared statement from then on: the plan is kept
per session and set of models, and whatever ended the session's prepared
statements (``DEALLOCATE``, ``DISCARD ALL``, another backend behind a pool)
only costs a new ``PREPARE``. ``PREPARE`` makes the function ``VOLATILE``.
A model follower's count is one query too; it says ``'-1:...'`` only when the
user follows a model the statement does not name. The S data's whole-model
follower, a year unread, first count, interleaved: 4.3-4.5 ms with the
statement planned at each call, 1.8-2.4 once prepared (ordinary users
unchanged, 1.6-1.8).

The answer has the form of SQLite's one statement (see
``readstate._two_columns``). Measured on the M data (1M actions), 25 users
with a year unread, interleaved with the statements: first counts 5.20 ->
1.72 ms at the median (p95 10.8 -> 2.6), one query; 25 users with nothing
unread 1.96 -> 0.76.

Its first call in a session costs more than the statements (about 2 ms more,
on fresh connections): each session sends its first ``INLINE_COUNTS`` capped
counts as statements, then calls the function (``actrack.sessionuse``).
Uncapped counts run the statements.

The function is written from the statements as this code builds them. After
``migrate`` (``post_migrate``), each database that has actrack's tables gets
it, or a fresh copy when its text changed (a hash of it is the function's
comment); a process uses it once it has seen that hash (one query the first
time, unless the process ran ``migrate``). Otherwise, or on other databases,
counts run the statements.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, ProgrammingError, connections, router

from actrack.rows import reading_cursor
from actrack.sessionuse import SessionUses, database_key, undefined_function

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("actrack")

FUNCTION = "actrack_unread_count"

#: Whether each database, as (alias, name), has the function as this code writes it.
_CURRENT: dict[tuple[str, str], bool] = {}

#: Stand-ins for the arguments while the statements are built: every parameter of
#: theirs must be one of these, which become the function's arguments.
_USER_INT = 7_700_000_001
_CAP = 7_700_000_002
_LEVEL = 7_700_000_003


#: Capped counts each database session sends as statements before calling the function.
INLINE_COUNTS = 2

#: Capped counts sent so far by each open database session.
_SESSIONS = SessionUses()


def usable(connection: BaseDatabaseWrapper) -> bool:
    """Whether a capped count on ``connection`` calls the function: PostgreSQL, the
    function as this code writes it, and a session past its first ``INLINE_COUNTS``."""
    if connection.vendor != "postgresql":
        return False
    key = database_key(connection)
    current = _CURRENT.get(key)
    if current is None:
        try:
            version = definition(connection)[1]
        except ValueError as error:  # statements this code cannot write a function from
            logger.warning("actrack: unread counts run without %s(): %s", FUNCTION, error)
            version = None
        current = _CURRENT[key] = version is not None and _installed_version(connection) == version
    return current and _SESSIONS.warm(connection, INLINE_COUNTS)


def call(
    connection: BaseDatabaseWrapper, user: Any, cap: int, models: tuple[int, ...] = ()
) -> tuple[Any] | None:
    """The function's answer for ``user`` and ``cap``, as a one-column row.

    ``models``: the content type ids of the models the process knows ``user``
    to follow; the call then carries the fan-out naming them
    (:func:`models_statement`), which runs if the walk cannot count.

    None when the function has gone since the process saw it (outside a
    transaction: nothing else is undone); the process then counts by the
    statements, until it runs ``migrate`` itself or restarts.
    """
    from actrack.conf import app_settings
    from actrack.readstate import user_ref

    ct, key = user_ref(user)
    fan_out = models_statement(connection, models) if models else None
    try:
        with reading_cursor(connection) as cursor:
            cursor.execute(
                f"SELECT {FUNCTION}(%s, %s, %s, %s, %s, %s)",
                [user.pk, ct, key, cap, app_settings.READABLE_LEVEL, fan_out],
            )
            row = cursor.fetchone()
    except ProgrammingError as error:
        if not undefined_function(error) or connection.in_atomic_block:
            raise
        _CURRENT[database_key(connection)] = False
        return None
    assert row is not None
    return (row[0],)


def definition(connection: BaseDatabaseWrapper) -> tuple[str, str]:
    """``CREATE OR REPLACE FUNCTION`` for ``connection``'s database, and its version."""
    from actrack.countsql import count_unread_sql, recent_count_sql, walk_reach_sql

    user, names = _stand_ins(connection)
    with _level_stand_in():
        reach = walk_reach_sql(user, connection)
        walk = recent_count_sql(user, connection, _CAP)
        fan_out = count_unread_sql(user, connection, _CAP, False, unordered=True)
    body = (
        "DECLARE v_far boolean; v_r text; v_o text; v_name text; BEGIN "
        f"SELECT _x INTO v_far FROM ({_inline(reach, names)}) AS _p(_x); "
        "IF v_far IS NOT TRUE THEN "
        f"SELECT _x INTO v_r FROM ({_inline(walk, names)}) AS _w(_x); "
        "IF v_r IS DISTINCT FROM '-1' THEN RETURN 'w:' || COALESCE(v_r, ''); END IF; "
        "END IF; "
        # A model follower's fan-out: the statement naming its models (models_statement),
        # planned for this call with the models as constants.
        "IF p_models IS NULL THEN "
        f"SELECT _x, _y INTO v_r, v_o FROM ({_inline(fan_out, names)}) AS _f(_x, _y); "
        "ELSE v_name := 'actrack_count_' || md5(p_models); "
        "IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = v_name) THEN "
        "EXECUTE 'PREPARE ' || quote_ident(v_name) || "
        f"'({', '.join(_argument_types(connection))}) AS ' || p_models; "
        "END IF; "
        "EXECUTE format('EXECUTE %I(%L, %L, %L, %L, %L)', v_name, "
        f"{', '.join(_ARGUMENT_NAMES)}) INTO v_r, v_o; "
        "END IF; "
        "IF v_r = '-1' THEN RETURN '-1:' || COALESCE(v_o, ''); END IF; "
        "RETURN v_r; END"
    )
    arguments = ", ".join(
        f"{name} {kind}"
        for name, kind in zip(
            (*_ARGUMENT_NAMES, "p_models"),
            (*_argument_types(connection), "text"),
            strict=True,
        )
    )
    version = hashlib.sha256(f"{arguments}\n{body}".encode()).hexdigest()[:16]
    sql = (
        f"CREATE OR REPLACE FUNCTION {FUNCTION}({arguments}) RETURNS text LANGUAGE plpgsql "
        "VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan "
        f"AS $actrack$ {body} $actrack$"
    )
    return sql, version


def models_statement(connection: BaseDatabaseWrapper, models: tuple[int, ...]) -> str | None:
    """The fan-out for a follower of ``models`` (content type ids), as the function
    runs it: with the models as constants and its arguments as ``$1`` to ``$5``.

    Models as constants let PostgreSQL plan each model's scans from its
    statistics (see :func:`actrack.countsql.count_unread_sql`); the function
    prepares the text once per session. None (logged once) when the statement
    has a parameter that is none of the function's arguments: the function
    then names the models, and a statement counts.
    """
    from actrack.countsql import count_unread_sql

    key = (*database_key(connection), models)
    if key in _MODELS_STATEMENTS:
        return _MODELS_STATEMENTS[key]
    user, names = _stand_ins(connection)
    numbered = {value: f"${_ARGUMENT_NAMES.index(name) + 1}" for value, name in names.items()}
    with _level_stand_in():
        fan_out = count_unread_sql(user, connection, _CAP, models, unordered=True)
    text: str | None
    try:
        text = _inline(fan_out, numbered)
    except ValueError as error:
        logger.warning("actrack: no fan-out naming models for %s(): %s", FUNCTION, error)
        text = None
    if len(_MODELS_STATEMENTS) >= MODELS_STATEMENTS_KEPT:
        _MODELS_STATEMENTS.pop(next(iter(_MODELS_STATEMENTS)))
    _MODELS_STATEMENTS[key] = text
    return text


#: The function's arguments, in order, as its statements name them.
_ARGUMENT_NAMES = ("p_user", "p_user_ct", "p_user_key", "p_cap", "p_level")

#: Texts of :func:`models_statement`, per (database alias, name, models); the oldest
#: goes first beyond ``MODELS_STATEMENTS_KEPT``.
_MODELS_STATEMENTS: dict[tuple[Any, ...], str | None] = {}
MODELS_STATEMENTS_KEPT = 100


def _stand_ins(connection: BaseDatabaseWrapper) -> tuple[Any, dict[Any, str]]:
    """A user standing in for the function's: and each stand-in value, by argument."""
    from actrack.models import Tracker
    from actrack.readstate import user_ref

    user_field = Tracker._meta.get_field("user")
    user_model = user_field.related_model
    assert isinstance(user_model, type)
    user = user_model(pk=_stand_in(user_field.target_field.get_internal_type()))
    ct, user_key = user_ref(user)
    names = {user.pk: "p_user", ct: "p_user_ct", user_key: "p_user_key"}
    names.update({_CAP: "p_cap", _LEVEL: "p_level"})
    return user, names


def _argument_types(connection: BaseDatabaseWrapper) -> tuple[str, ...]:
    """The types of :data:`_ARGUMENT_NAMES`."""
    from actrack.models import Tracker

    user_type = str(Tracker._meta.get_field("user").target_field.db_type(connection))
    return (user_type, "integer", "text", "bigint", "integer")


@contextlib.contextmanager
def _level_stand_in() -> Iterator[None]:
    """The statements are built with a stand-in for the readable level (context-local)."""
    from actrack.countsql import READABLE_LEVEL_STAND_IN

    token = READABLE_LEVEL_STAND_IN.set(_LEVEL)
    try:
        yield
    finally:
        READABLE_LEVEL_STAND_IN.reset(token)


def _inline(statement: tuple[str, list[Any]], names: dict[Any, str]) -> str:
    """``statement``'s text with each parameter replaced by what ``names`` gives for
    its value; a parameter that is none of the stand-ins is refused (ValueError)."""
    sql, params = statement
    values = iter(params)

    def argument(_match: re.Match[str]) -> str:
        value = next(values)
        if type(value) not in (int, str, uuid.UUID) or value not in names:
            raise ValueError(f"The count's statement has a parameter of its own: {value!r}")
        return names[value]

    text = re.sub(r"(?<!%)%s", argument, sql).replace("%%", "%")
    if next(values, _missing) is not _missing:
        raise ValueError("The count's statement has more parameters than placeholders.")
    return text


_missing = object()


def _stand_in(internal_type: str) -> Any:
    if internal_type == "UUIDField":
        return uuid.UUID(int=_USER_INT)
    if internal_type in ("CharField", "TextField", "SlugField", "EmailField"):
        return f"actrack-{_USER_INT}"
    return _USER_INT


def _installed_version(connection: BaseDatabaseWrapper) -> str | None:
    """The version (comment) of the function in ``connection``'s database, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc AS p "
            "JOIN pg_namespace AS n ON n.oid = p.pronamespace "
            "WHERE p.proname = %s AND n.nspname = ANY(current_schemas(false)) "
            "ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1",
            [FUNCTION],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def install(connection: BaseDatabaseWrapper) -> None:
    """Write the function into ``connection``'s database unless it has this version."""
    sql, version = definition(connection)
    if _installed_version(connection) != version:
        with connection.cursor() as cursor:
            # Arguments of another type (a user model changed) make another function.
            cursor.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc AS p JOIN pg_namespace AS n "
                "ON n.oid = p.pronamespace WHERE p.proname = %s AND n.nspname = "
                "current_schema()",
                [FUNCTION],
            )
            for (old,) in cursor.fetchall():
                cursor.execute(f"DROP FUNCTION {old}")
            cursor.execute(sql)
            signature = sql.split(" RETURNS ", 1)[0].removeprefix("CREATE OR REPLACE FUNCTION ")
            # A literal (hexadecimal digits): a utility statement takes no parameters
            # under server-side binding.
            cursor.execute(f"COMMENT ON FUNCTION {signature} IS '{version}'")
    _CURRENT[database_key(connection)] = True


def migrated(using: str, **kwargs: Any) -> None:
    """``post_migrate`` of actrack: the function, where actrack's tables are."""
    from actrack.models import Action

    connection = connections[using]
    if connection.vendor != "postgresql" or not router.allow_migrate_model(using, Action):
        return
    if Action._meta.db_table not in connection.introspection.table_names():
        _CURRENT[database_key(connection)] = False
        return
    try:
        install(connection)
    except (DatabaseError, ValueError) as error:
        _CURRENT[database_key(connection)] = False
        logger.warning("actrack: unread counts run without %s(): %s", FUNCTION, error)
