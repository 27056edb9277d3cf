"""Model instances from hand-written SELECTs, built as the ORM builds them.

Pages of actions and the objects they mention are read on every rendered
feed page. Building and compiling a queryset for them cost more than running
the query (about 0.2 ms to compile and 0.25 ms more in the queryset's
iteration, per query, measured on PostgreSQL against 0.5 ms for the whole
hand-written read), so these reads select the model's columns directly and
apply the converters the ORM would (the backend's, then the field's). Models
whose initialisation does nothing more than store the values (no init signal
listener, no ``__init__`` of their own, Django's own attributes) skip
``Model.__init__``: see :func:`_direct`.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db import connections, models
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper


def reading_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """``connection.cursor()``, for hand-read rows and the feed engine's statements:
    on PostgreSQL with psycopg 3 its ``timestamptz`` values load through
    :func:`_iso_loader`'s loader; on SQLite its placeholders are converted by
    :func:`_qmark_cursor`'s class."""
    opened = connection.cursor()
    if connection.vendor == "postgresql" and (loader := _iso_loader(connection.timezone)):
        opened.cursor.adapters.register_loader(_TIMESTAMPTZ_OID, loader)
    elif (
        connection.vendor == "sqlite"
        and (fast := _qmark_cursor()) is not None
        and type(opened.cursor) is fast.__base__
    ):
        opened.cursor.__class__ = fast
    return opened


@cache
def _qmark_cursor() -> type | None:
    """Django's SQLite cursor, converting ``%s`` placeholders to ``?`` with
    :meth:`str.replace` when the statement holds no ``%%``.

    Django converts them with a regular expression (``%s`` not after ``%``,
    then ``%%`` to ``%``): about 11 us per kilobyte of SQL, 0.14-0.22 ms of an
    ordinary user's feed page at 1M actions and 0.7 ms of the page of a user
    with 2,000 trackers, whose statements run to 11-55 kB. Without ``%%`` in
    the statement, no ``%s`` follows a ``%``, so the plain replacement gives
    the same text. Anything else (``%%``, named parameters) goes to Django's
    conversion. None when Django's class is not the one this was written for.
    """
    try:
        from django.db.backends.sqlite3.base import SQLiteCursorWrapper
    except ImportError:  # pragma: no cover - Python built without sqlite3
        return None
    if not callable(getattr(SQLiteCursorWrapper, "convert_query", None)):
        return None  # pragma: no cover - a Django that converts elsewhere

    class QmarkCursor(SQLiteCursorWrapper):
        def convert_query(self, query: str, *, param_names: Any = None) -> str:
            if param_names is None and "%%" not in query:
                return query.replace("%s", "?")
            return super().convert_query(query, param_names=param_names)

    return QmarkCursor


#: PostgreSQL's ``timestamptz`` type (a fixed built-in OID).
_TIMESTAMPTZ_OID = 1184


@cache
def _iso_loader(timezone: Any) -> type | None:
    """A psycopg 3 loader of ``timestamptz`` text giving what Django's gives, for
    connections whose time zone is ``timezone`` (None: naive datetimes).

    Django's loader parses the text in Python, then sets the zone: about 4 us a
    value, 80 us of a 21-action page (about a tenth of an object's page on
    PostgreSQL). :meth:`datetime.fromisoformat` parses PostgreSQL's ISO output
    (the default ``DateStyle``) in C; any other text (another ``DateStyle``,
    ``infinity``, years BC or past 9999) goes to Django's loader, which parses it
    or raises as before.
    """
    try:
        from django.db.backends.postgresql.psycopg_any import BaseTzLoader, is_psycopg3
    except ImportError:  # pragma: no cover - no PostgreSQL driver at all
        return None
    if not is_psycopg3:
        return None
    parse = datetime.fromisoformat

    class IsoTzLoader(BaseTzLoader):
        def load(self, data: Any) -> datetime:
            try:
                value = parse(str(data, "ascii"))
            except ValueError:
                return super().load(data)
            # The text is in the session's zone, which Django sets to ``timezone``.
            if timezone is None:
                return value.replace(tzinfo=None)
            return value if value.tzinfo is timezone else value.astimezone(timezone)

    IsoTzLoader.timezone = timezone
    return IsoTzLoader


def plain(model: type[models.Model]) -> bool:
    """Whether all of ``model``'s fields live in its own table, read by Django's plain
    base manager: its rows can be read with :func:`columns` and :func:`instances`."""
    meta = model._meta
    return (
        not meta.parents
        and not meta.proxy
        and type(model._base_manager) is models.Manager
        and not getattr(model, "actrack_select_related", None)
    )


def columns(model: type[models.Model], connection: BaseDatabaseWrapper) -> dict[str, str]:
    """``{attname: "table"."column"}`` of the model's concrete fields, in their order."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    return {
        field.attname: f"{table}.{quote(field.column or field.attname)}"
        for field in model._meta.concrete_fields
    }


def instances(
    model: type[models.Model],
    using: str,
    connection: BaseDatabaseWrapper,
    rows: Iterable[Sequence[Any]],
) -> list[Any]:
    """Instances from rows holding :func:`columns` in order, with the ORM's converters."""
    converters = _converters(model, connection)
    names = [field.attname for field in model._meta.concrete_fields]
    build = builder(model)
    built = []
    for row in rows:
        values = list(row)
        for number, found, col in converters:
            for converter in found:
                values[number] = converter(values[number], col, connection)
        built.append(build(model, using, names, values))
    return built


def builder(model: type[models.Model]) -> Callable[[Any, str, list[str], list[Any]], Any]:
    """How to build a saved instance of ``model`` from its concrete fields' ``names``
    and converted ``values`` (all of them, in order): ``build(model, using, names,
    values)``, as ``from_db`` builds it."""
    return _build if _direct(model) else _from_db


#: Per connection (a thread's): each model's converters, by column number. Finding
#: them took a quarter of building a page's 21 actions.
_CONVERTERS: weakref.WeakKeyDictionary[BaseDatabaseWrapper, dict[type[models.Model], Any]] = (
    weakref.WeakKeyDictionary()
)


def _converters(model: type[models.Model], connection: BaseDatabaseWrapper) -> list[Any]:
    """``[(column number, converters, column), ...]`` for ``model``'s concrete fields."""
    # The thread's own wrapper: ``django.db.connection`` is a proxy, not a key.
    known = _CONVERTERS.setdefault(connections[connection.alias], {})
    converters = known.get(model)
    if converters is None:
        converters = []
        for number, field in enumerate(model._meta.concrete_fields):
            col = field.get_col(model._meta.db_table)
            found = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
            if isinstance(field, models.JSONField) and _plain_json(field):
                found = [_empty_or(c) if c == field.from_db_value else c for c in found]
            if found:
                converters.append((number, found, col))
        known[model] = converters
    return converters


def _from_db(model: Any, using: str, names: list[str], values: list[Any]) -> Any:
    return model.from_db(using, names, values)


def _build(model: Any, using: str, names: list[str], values: list[Any]) -> Any:
    """What ``from_db`` builds, for a model :func:`_direct` accepts: a fifth of its time
    (about 0.8 against 4.5 us for an action, 21 per page)."""
    obj = model.__new__(model)
    obj.__dict__.update(zip(names, values, strict=True))
    state = obj._state = ModelState()
    state.adding = False
    state.db = using
    return obj


def _direct(model: type[models.Model]) -> bool:
    """Whether instances of ``model`` may skip ``Model.__init__``: nobody listens to its
    ``pre_init``/``post_init``, and :func:`_plain_attributes` holds."""
    return (
        _plain_attributes(model)
        and not pre_init.has_listeners(model)
        and not post_init.has_listeners(model)
    )


@cache
def _plain_attributes(model: type[models.Model]) -> bool:
    """Whether ``Model.__init__`` would only store each concrete field's value in the
    instance's ``__dict__``: neither the model nor its fields' attributes add anything
    (no ``__init__``, ``__new__`` or ``from_db`` of its own, and Django's own attribute
    descriptors, which keep the value in ``__dict__``)."""
    if (
        model.__init__ is not models.Model.__init__
        or model.__new__ is not object.__new__
        or model.from_db.__func__ is not models.Model.from_db.__func__  # type: ignore[attr-defined]
    ):
        return False
    kinds: tuple[type, ...] = (DeferredAttribute, ForeignKeyDeferredAttribute)
    return all(
        type(inspect.getattr_static(model, field.attname, None)) in kinds
        for field in model._meta.concrete_fields
    )


def _plain_json(field: models.JSONField[Any]) -> bool:
    """Whether ``field`` is decoded by Django's own ``from_db_value``, with the default
    decoder."""
    return field.decoder is None and type(field).from_db_value is models.JSONField.from_db_value


def _empty_or(convert: Any) -> Any:
    """``convert``, except that the stored empty object gives a new ``{}`` at once.

    Most actions carry no data: parsing their ``"{}"`` was a tenth of a page's
    time on SQLite (21 rows).
    """

    def converter(value: Any, expression: Any, connection: Any) -> Any:
        return {} if value == "{}" else convert(value, expression, connection)

    return converter
