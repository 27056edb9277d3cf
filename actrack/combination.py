"""Combination at log time: a new action absorbed by a queued one, or absorbing it.

For a new entry N and each queued entry Q with the same actor, where N's
targets are a subset of Q's: N's handler ``combine_with_<Q.verb>(own=N,
other=Q)`` returning True absorbs N into Q; otherwise Q's handler
``combine_with_<N.verb>(own=Q, other=N)`` returning True absorbs Q into N.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actrack.merging import merge_entry

if TYPE_CHECKING:
    from actrack.queue import ActionQueue, Entry


def combine_into_queue(queue: ActionQueue, entry: Entry) -> bool:
    """Combine ``entry`` with the queue; True when it was absorbed (not to be queued)."""
    from actrack.handlers import get_handler_class, may_combine

    if not may_combine(entry.verb):
        return False
    new_handler = get_handler_class(entry.verb)
    for queued in list(queue.live_entries()):
        if queued.actor_ref != entry.actor_ref or queued.using != entry.using:
            continue
        if not set(entry.target_refs) <= set(queued.target_refs):
            continue
        if new_handler.combine(entry.kwargs(), queued.kwargs(), other_verb=queued.verb):
            merge_entry(queued, entry)
            return True
        queued_handler = get_handler_class(queued.verb)
        if queued_handler.combine(queued.kwargs(), entry.kwargs(), other_verb=entry.verb):
            queue.entries.remove(queued)
            merge_entry(entry, queued)
    return False
