"""Merging one action into another, shared by combination and grouping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actrack.queue import Entry


def deep_merge(existing: Any, incoming: Any) -> Any:
    """Merge ``incoming`` into ``existing``: existing values win.

    Dicts merge recursively, lists are extended with the incoming items they
    lack (order kept), and for anything else the existing value stays.
    """
    if isinstance(existing, dict) and isinstance(incoming, dict):
        merged = dict(existing)
        for key, value in incoming.items():
            merged[key] = deep_merge(existing[key], value) if key in existing else value
        return merged
    if isinstance(existing, list) and isinstance(incoming, list):
        merged_list = list(existing)
        merged_list.extend(item for item in incoming if item not in existing)
        return merged_list
    return existing


def merge_entry(receiver: Entry, absorbed: Entry) -> None:
    """``receiver`` takes in ``absorbed``; actor, verb and timestamp stay the receiver's."""
    for refs_name, objs_name in (("target_refs", "targets"), ("related_refs", "related")):
        own_refs = getattr(receiver, refs_name)
        own_objs = getattr(receiver, objs_name)
        for ref, obj in zip(
            getattr(absorbed, refs_name), getattr(absorbed, objs_name), strict=True
        ):
            if ref not in own_refs:
                own_refs.append(ref)
                own_objs.append(obj)
    receiver.data = deep_merge(receiver.data, absorbed.data)
    receiver.level = max(receiver.level, absorbed.level)
