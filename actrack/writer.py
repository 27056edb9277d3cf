"""Writing queued entries to the database, set-based."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from django.db import transaction

from actrack.signals import action_logged

if TYPE_CHECKING:
    from actrack.models import Action
    from actrack.queue import Entry


def write(entries: list[Entry]) -> list[Action]:
    """Write entries grouped by database, in logging order; returns the new actions.

    Per database: grouping (see :mod:`actrack.grouping`), one INSERT for the
    actions and one per link table, all in one transaction.
    """
    by_alias: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_alias[entry.using].append(entry)
    written: list[Action] = []
    for using, group in by_alias.items():
        written.extend(_write_one_database(using, group))
    return written


def _write_one_database(using: str, entries: list[Entry]) -> list[Action]:
    from actrack.grouping import group_entries
    from actrack.models import Action, ActionRelated, ActionTarget

    with transaction.atomic(using=using):
        fresh, updated = group_entries(entries, using)
        actions = [
            Action(
                actor_ct_id=entry.actor_ref[0] if entry.actor_ref else None,
                actor_key=entry.actor_ref[1] if entry.actor_ref else None,
                verb=entry.verb,
                level=entry.level,
                data=entry.data,
                timestamp=entry.timestamp,
            )
            for entry in fresh
        ]
        Action.objects.using(using).bulk_create(actions)
        targets: list[ActionTarget] = []
        related: list[ActionRelated] = []
        for entry, action in zip(fresh, actions, strict=True):
            entry.action = action
            targets.extend(
                ActionTarget(action=action, obj_ct_id=ct, obj_key=key, timestamp=action.timestamp)
                for ct, key in entry.target_refs
            )
            related.extend(
                ActionRelated(action=action, obj_ct_id=ct, obj_key=key, timestamp=action.timestamp)
                for ct, key in entry.related_refs
            )
        if targets:
            ActionTarget.objects.using(using).bulk_create(targets)
        if related:
            ActionRelated.objects.using(using).bulk_create(related)
    for action in actions:
        action_logged.send(sender=Action, action=action, using=using, grouped=False)
    for action in updated:
        action_logged.send(sender=Action, action=action, using=using, grouped=True)
    return actions
