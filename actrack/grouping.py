"""Grouping similar actions when a queue is written.

``grouping_delay`` (per ``log()`` call, else ``GROUPING_DELAY``):

- ``-1``: never grouped;
- ``0``: grouped with an older similar action of the same queue, whatever its time;
- ``N > 0``: also grouped with a saved similar action at most N seconds older
  or newer.

"Similar" is decided by the handler classmethod ``group(newer, older)``; by
default: same verb, same actor (no actor counts as the same) and equal target
sets or equal related sets. The older action receives the newer one.

On PostgreSQL, two writers grouping with saved actions of the same verb and
actor take turns: each takes a transaction-level advisory lock per (verb,
actor) before looking for a saved action, so the second one sees the action
the first one inserted instead of inserting its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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

    if len(entries) == 1 and entries[0].grouping_delay <= 0:
        return list(entries), []  # a lone entry that looks for no saved action (log())
    lock_grouping_keys(entries, using)
    fresh: list[Entry] = []
    candidates = _Candidates()
    updated: dict[int, Action] = {}
    for entry in entries:
        if entry.grouping_delay < 0:
            fresh.append(entry)
            continue
        handler = get_handler_class(entry.verb)
        older = candidates.find(entry, handler)
        if older is not None:
            merge_entry(older, entry)
            candidates.reindex(older)
            continue
        if entry.grouping_delay > 0:
            saved = _group_with_saved(entry, using)
            if saved is not None:
                updated[saved.pk] = saved
                continue
        fresh.append(entry)
        candidates.add(entry)
    return fresh, list(updated.values())


#: First half of actrack's two-key advisory locks ("actr"); the second is a hash.
ADVISORY_LOCK_CLASS = 0x61637472


def grouping_lock_key(entry: Entry) -> int:
    """A signed 32-bit hash of the entry's verb and actor (collisions only make writers wait)."""
    actor = "" if entry.actor_ref is None else f"{entry.actor_ref[0]}:{entry.actor_ref[1]}"
    digest = hashlib.blake2b(f"{entry.verb}\0{actor}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_grouping_keys(entries: list[Entry], using: str) -> None:
    """Lock, until the transaction ends, every (verb, actor) that may group with saved actions.

    PostgreSQL only (SQLite lets one writer at a time in anyway). One statement,
    keys in ascending order so that two writers never wait for each other in a
    cycle. It must run before the statement that looks for saved actions: that
    statement's snapshot then includes what the previous holder committed.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    keys = sorted({grouping_lock_key(entry) for entry in entries if entry.grouping_delay > 0})
    if not keys:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM unnest(%s::integer[]) AS k",
            [ADVISORY_LOCK_CLASS, keys],
        )


def _keys(entry: Entry) -> list[tuple[Any, ...]]:
    return [
        (entry.verb, entry.actor_ref, "targets", frozenset(entry.target_refs)),
        (entry.verb, entry.actor_ref, "related", frozenset(entry.related_refs)),
    ]


class _Candidates:
    """Queued entries that may receive newer ones.

    With the default rule (same verb and actor, equal targets or equal
    related) a lookup is a dictionary access, so writing a batch of N actions
    costs O(N); a handler with its own ``group`` is asked about every queued
    entry of its verb, newest first.
    """

    def __init__(self) -> None:
        self.by_verb: dict[str, list[Entry]] = defaultdict(list)
        self.by_key: dict[tuple[Any, ...], list[Entry]] = defaultdict(list)
        self.order: dict[int, int] = {}

    def add(self, entry: Entry) -> None:
        self.order[id(entry)] = len(self.order)
        self.by_verb[entry.verb].append(entry)
        self.reindex(entry)

    def reindex(self, entry: Entry) -> None:
        """Index ``entry`` under its current keys (older keys are checked on lookup)."""
        for key in _keys(entry):
            if entry not in self.by_key[key][-1:]:
                self.by_key[key].append(entry)

    def find(self, entry: Entry, handler: Any) -> Entry | None:
        from actrack.handlers import ActionHandler

        newer = entry.ref_kwargs()
        group: Any = handler.group  # a bound classmethod
        if getattr(group, "__func__", None) is getattr(ActionHandler.group, "__func__", None):
            pool = [c for key in _keys(entry) for c in self.by_key.get(key, ())]
            matching = [c for c in pool if default_group(newer, c.ref_kwargs())]
            return max(matching, key=lambda c: self.order[id(c)], default=None)
        for candidate in reversed(self.by_verb.get(entry.verb, [])):
            if handler.group(newer, candidate.ref_kwargs()):
                return candidate
        return None


def _group_with_saved(entry: Entry, using: str) -> Action | None:
    """Merge ``entry`` into a similar saved action, locking it; None if there is none."""
    from actrack.handlers import get_handler_class
    from actrack.models import Action

    actor_ct, actor_key = entry.actor_columns
    candidates = Action.objects.using(using).filter(
        verb=entry.verb, actor_ct_id=actor_ct, actor_key=actor_key
    )
    # Within the delay either way: a saved action may be newer than the entry when
    # its writer committed first, or when the entry was given an older timestamp.
    for lookup, sign in (("gte", -1), ("lte", 1)):
        try:
            bound = entry.timestamp + sign * dt.timedelta(seconds=entry.grouping_delay)
        except OverflowError:
            continue  # the delay reaches past year 1 or 9999: no bound that way
        candidates = candidates.filter(**{f"timestamp__{lookup}": bound})
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
        saved = {
            "actor": entry.actor_ref,
            "verb": action.verb,
            "targets": targets,
            "related": related,
            "level": action.level,
            "data": action.data,
            "timestamp": action.timestamp,
        }
        newer, older = entry.ref_kwargs(), saved
        if entry.timestamp < action.timestamp:
            newer, older = older, newer
        if handler.group(newer, older):
            _merge_into_saved(action, entry, targets, related, using)
            entry.action = action
            return action
    return None


def _saved_refs(
    actions: list[Action], using: str
) -> dict[int, tuple[list[tuple[int, str]], list[tuple[int, str]]]]:
    """``{action id: (target refs, related refs)}`` in one query."""
    from actrack.rendering import link_rows

    refs: dict[int, tuple[list[tuple[int, str]], list[tuple[int, str]]]] = defaultdict(
        lambda: ([], [])
    )
    for action_id, role, ct, key, _pk in link_rows([action.pk for action in actions], using):
        refs[action_id][role].append((ct, key))
    return refs


def _merge_into_saved(
    action: Action,
    entry: Entry,
    targets: list[tuple[int, str]],
    related: list[tuple[int, str]],
    using: str,
) -> None:
    """The older of the two receives the newer: its data wins, its timestamp stays."""
    from actrack.models import ActionRelated, ActionTarget

    fields = ["data", "level"]
    if entry.timestamp < action.timestamp:
        # The entry is the older one: the saved action takes its time, and so do
        # the link rows that carry it.
        action.data = deep_merge(entry.data, action.data)
        action.timestamp = entry.timestamp
        fields.append("timestamp")
        for model in (ActionTarget, ActionRelated):
            model.objects.using(using).filter(action=action).update(timestamp=action.timestamp)
    else:
        action.data = deep_merge(action.data, entry.data)
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
    action.level = max(action.level, entry.level)
    action.save(using=using, update_fields=fields)


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
