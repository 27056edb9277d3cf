"""Loading the objects of many actions in bulk, and rendering them.

For a list of actions, :func:`hydrate` costs one query for all their link
rows (targets and related together) and one query per content type of the
objects they refer to, whatever the number of actions. Objects that no longer
exist come back as ``None`` and render as "(deleted)".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connections

from actrack.conf import app_settings
from actrack.inserts import chunks
from actrack.rows import columns, instances, plain, reading_cursor

if TYPE_CHECKING:
    from actrack.models import Action

_CACHE = "_actrack_hydrated"


@dataclass
class Hydrated:
    actor: Any = None
    targets: list[Any] = field(default_factory=list)
    related: list[Any] = field(default_factory=list)


def hydrated(action: Action) -> Hydrated:
    """The objects of ``action``, loading them (for this action alone) if needed."""
    if _CACHE not in action.__dict__:
        hydrate([action])
    result: Hydrated = action.__dict__[_CACHE]
    return result


def hydrate(actions: Sequence[Action]) -> None:
    """Load actor, targets and related of every action not loaded yet, in bulk."""
    todo = [action for action in actions if _CACHE not in action.__dict__]
    if not todo:
        return
    using = todo[0]._state.db or "default"
    links = link_rows([action.pk for action in todo if action.pk is not None], using)
    wanted: dict[int, set[str]] = defaultdict(set)
    for action in todo:
        if action.actor_ct_id is not None and action.actor_key is not None:
            wanted[action.actor_ct_id].add(action.actor_key)
    for _action_id, _role, ct_id, key, _pk in links:
        wanted[ct_id].add(key)
    objects = load_objects(wanted, using)
    by_action: dict[int, Hydrated] = defaultdict(Hydrated)
    for action_id, role, ct_id, key, _pk in links:
        holder = by_action[action_id]
        (holder.targets if role == 0 else holder.related).append(objects.get((ct_id, key)))
    for action in todo:
        holder = by_action[action.pk] if action.pk is not None else Hydrated()
        if action.actor_ct_id is not None and action.actor_key is not None:
            holder.actor = objects.get((action.actor_ct_id, action.actor_key))
        action.__dict__[_CACHE] = holder


def link_rows(action_ids: list[int], using: str) -> list[tuple[int, int, int, str, int]]:
    """``(action id, role, content type id, key, link id)`` of targets (role 0) then
    related objects (role 1), for many actions in one query."""
    from actrack.models import ActionRelated, ActionTarget

    if not action_ids:
        return []
    connection = connections[using]
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(action_ids))
    parts = [
        f"SELECT action_id, obj_ct_id, obj_key, {role}, id FROM {quote(model._meta.db_table)} "
        f"WHERE action_id IN ({marks})"
        for role, model in enumerate((ActionTarget, ActionRelated))
    ]
    # A raw query: a page's links are read on every rendered page, and compiling the
    # ORM's union cost more than running it.
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), [*action_ids, *action_ids])
        rows = [
            (action_id, role, ct_id, key, pk)
            for action_id, ct_id, key, role, pk in cursor.fetchall()
        ]
    return sorted(rows, key=lambda row: (row[1], row[4]))


def link_refs(action_ids: list[int], using: str) -> dict[int, list[tuple[int, str]]]:
    """``{action id: [(content type id, key), ...]}`` over targets and related."""
    refs: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for action_id, _role, ct_id, key, _pk in link_rows(action_ids, using):
        refs[action_id].append((ct_id, key))
    return refs


def load_objects(wanted: dict[int, set[str]], using: str) -> dict[tuple[int, str], Any]:
    """``{(content type id, key): object}``: one query per content type.

    A model whose ``__str__`` follows foreign keys can list them in an
    ``actrack_select_related`` attribute; they are loaded in the same query.
    Models whose fields all live in their own table are read by a hand-written
    query (see :mod:`actrack.rows`), others through their base manager.
    """
    objects: dict[tuple[int, str], Any] = {}
    for ct_id, keys in wanted.items():
        model = ContentType.objects.db_manager(using).get_for_id(ct_id).model_class()
        if model is None:  # the model itself is gone
            continue
        pk_field = model._meta.pk
        assert pk_field is not None
        lookup: dict[Any, str] = {}
        for key in keys:
            try:
                lookup[pk_field.to_python(key)] = key
            except ValidationError:
                continue
        if not lookup:
            continue
        for pk, obj in _by_pk(model, using, list(lookup)):
            objects[(ct_id, lookup.get(pk, str(pk)))] = obj
    return objects


def render_actions(
    actions: list[Action], user: Any = None, context: dict[str, Any] | None = None
) -> list[str]:
    """Render each action through its handler; objects are loaded in bulk first.

    With a ``user`` and ``TRACK_UNREAD``, each action's context gets ``unread``:
    taken from ``context["unread"]`` when given (a bool, a mapping by action id
    or one flag per action), else computed, and then, under ``AUTO_READ``, the
    unread actions are marked read.
    """
    from actrack.readstate import align_unread, mark_read, unread_flags

    hydrate(actions)
    base = dict(context or {})
    given_unread = base.pop("unread", None)
    flags: list[bool] | None = None
    if user is not None and app_settings.TRACK_UNREAD:
        if given_unread is not None:
            flags = align_unread(given_unread, actions)
        else:
            flags = unread_flags(user, actions)
            if app_settings.AUTO_READ and any(flags):
                mark_read(user, [a for a, f in zip(actions, flags, strict=True) if f])
    results = []
    for index, action in enumerate(actions):
        extra = dict(base)
        if user is not None:
            extra.setdefault("user", user)
        if flags is not None:
            extra["unread"] = flags[index]
        handler = action.handler
        results.append(handler.render(handler.get_context(**extra)))
    return results


def _by_pk(model: type[Any], using: str, pks: list[Any]) -> list[tuple[Any, Any]]:
    """``(pk, instance)`` of the instances of ``model`` whose keys are in ``pks``."""
    if not plain(model):
        manager = model._base_manager.using(using)
        related = getattr(model, "actrack_select_related", None)
        if related:
            manager = manager.select_related(*related)
        return list(manager.in_bulk(pks).items())
    connection = connections[using]
    pk_field = model._meta.pk
    column = columns(model, connection)
    table = connection.ops.quote_name(model._meta.db_table)
    head = f"SELECT {', '.join(column.values())} FROM {table} WHERE {column[pk_field.attname]} IN "
    found = []
    with reading_cursor(connection) as cursor:
        for chunk in chunks(pks, using):
            cursor.execute(
                head + f"({', '.join(['%s'] * len(chunk))})",
                [pk_field.get_db_prep_value(pk, connection) for pk in chunk],
            )
            found += instances(model, using, connection, cursor.fetchall())
    return [(obj.pk, obj) for obj in found]
