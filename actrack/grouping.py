"""Grouping similar actions when a queue is written.

``grouping_delay`` (per ``log()`` call, else ``GROUPING_DELAY``):

- ``-1``: never grouped;
- ``0``: grouped with an older similar action of the same queue, whatever its time;
- ``N > 0``: also grouped with a saved similar action at most N seconds older.

"Similar" is decided by the handler classmethod ``group(newer, older)``; by
default: same verb, same actor (no actor counts as the same) and equal target
sets or equal related sets. The older action receives the newer one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.db import connections

from actrack.merging import deep_merge, merge_entry

if TYPE_CHECKING:
    from actrack.models import Action
    from actrack.queue import Entry


def group_entries(entries: list[Entry], using: str) -> tuple[list[Entry], list[Action]]:
    """Return (entries still to insert, saved actions that received entries)."""
    from actrack.handlers import get_handler_class

    fresh: list[Entry] = []
    updated: dict[int, Action] = {}
    for entry in entries:
        if entry.grouping_delay < 0:
            fresh.append(entry)
            continue
        handler = get_handler_class(entry.verb)
        older = next(
            (
                candidate
                for candidate in reversed(fresh)
                if candidate.grouping_delay >= 0
                and candidate.verb == entry.verb
                and handler.group(entry.ref_kwargs(), candidate.ref_kwargs())
            ),
            None,
        )
        if older is not None:
            merge_entry(older, entry)
            continue
        if entry.grouping_delay > 0:
            saved = _group_with_saved(entry, using)
            if saved is not None:
                updated[saved.pk] = saved
                continue
        fresh.append(entry)
    return fresh, list(updated.values())


def _group_with_saved(entry: Entry, using: str) -> Action | None:
    """Merge ``entry`` into a similar saved action, locking it; None if there is none."""
    from actrack.handlers import get_handler_class
    from actrack.models import Action

    since = entry.timestamp - dt.timedelta(seconds=entry.grouping_delay)
    candidates = Action.objects.using(using).filter(
        verb=entry.verb,
        timestamp__gte=since,
        timestamp__lte=entry.timestamp,
        actor_ct_id=entry.actor_ref[0] if entry.actor_ref else None,
        actor_key=entry.actor_ref[1] if entry.actor_ref else None,
    )
    if connections[using].features.has_select_for_update:
        # Two writers grouping into the same action take turns.
        candidates = candidates.select_for_update()
    candidate_list = list(candidates.newest_first()[:20])
    if not candidate_list:
        return None
    refs = _saved_refs(candidate_list, using)
    handler = get_handler_class(entry.verb)
    for action in candidate_list:
        targets, related = refs[action.pk]
        older = {
            "actor": entry.actor_ref,
            "verb": action.verb,
            "targets": targets,
            "related": related,
            "level": action.level,
            "data": action.data,
            "timestamp": action.timestamp,
        }
        if handler.group(entry.ref_kwargs(), older):
            _merge_into_saved(action, entry, targets, related, using)
            entry.action = action
            return action
    return None


def _saved_refs(
    actions: list[Action], using: str
) -> dict[int, tuple[list[tuple[int, str]], list[tuple[int, str]]]]:
    from actrack.models import ActionRelated, ActionTarget

    refs: dict[int, tuple[list[tuple[int, str]], list[tuple[int, str]]]] = defaultdict(
        lambda: ([], [])
    )
    ids = [action.pk for action in actions]
    links: tuple[type[ActionTarget] | type[ActionRelated], ...] = (ActionTarget, ActionRelated)
    for index, model in enumerate(links):
        rows = model._default_manager.using(using).filter(action_id__in=ids).order_by("pk")
        for action_id, ct, key in rows.values_list("action_id", "obj_ct_id", "obj_key"):
            refs[action_id][index].append((ct, key))
    return refs


def _merge_into_saved(
    action: Action,
    entry: Entry,
    targets: list[tuple[int, str]],
    related: list[tuple[int, str]],
    using: str,
) -> None:
    from actrack.models import ActionRelated, ActionTarget

    new_links: list[Any] = [
        ActionTarget(action=action, obj_ct_id=ct, obj_key=key, timestamp=action.timestamp)
        for ct, key in entry.target_refs
        if (ct, key) not in targets
    ]
    new_related = [
        ActionRelated(action=action, obj_ct_id=ct, obj_key=key, timestamp=action.timestamp)
        for ct, key in entry.related_refs
        if (ct, key) not in related
    ]
    if new_links:
        ActionTarget.objects.using(using).bulk_create(new_links)
    if new_related:
        ActionRelated.objects.using(using).bulk_create(new_related)
    action.data = deep_merge(action.data, entry.data)
    action.level = max(action.level, entry.level)
    action.save(using=using, update_fields=["data", "level"])


def default_group(newer: dict[str, Any], older: dict[str, Any]) -> bool:
    """Same verb and actor, and equal target sets or equal related sets.

    Both arguments are action keyword arguments whose ``actor``, ``targets``
    and ``related`` are ``(content type id, key)`` pairs.
    """
    if newer["verb"] != older["verb"] or newer["actor"] != older["actor"]:
        return False
    return set(newer["targets"]) == set(older["targets"]) or set(newer["related"]) == set(
        older["related"]
    )
