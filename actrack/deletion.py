"""Keeping history when objects are deleted.

For a model connected with ``use_del_items=True`` (the default), a
``pre_delete`` receiver re-points every reference to the instance (actor,
targets, related, trackers) to a :class:`~actrack.models.DeletedItem`, with a
fixed number of ``UPDATE`` statements whatever the number of actions, inside
the deleting transaction (a failed delete changes nothing). With
``use_del_items=False`` the actions referring to the instance, and its
trackers, are deleted instead. Queued actions are updated the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connections, models
from django.db.models import Exists, Q
from django.db.models.signals import pre_delete

from actrack.keys import content_type_for

if TYPE_CHECKING:
    from actrack.models import DeletedItem
    from actrack.queue import Entry

_CACHE = "_actrack_deleted_item"


def connect_deletion(model: type[models.Model]) -> None:
    pre_delete.connect(
        _pre_delete, sender=model, dispatch_uid=f"actrack-deletion-{model._meta.label_lower}"
    )


def get_del_item(instance: models.Model, using: str | None = None) -> DeletedItem:
    """The :class:`DeletedItem` standing for ``instance`` while it is being deleted.

    Repeated calls (and the deletion itself) return the same item, so actions
    can be logged about the instance from ``pre_delete``/``post_delete``
    handlers. Call it only for an instance that is really being deleted: it
    writes the item to the database.
    """
    cached: DeletedItem | None = instance.__dict__.get(_CACHE)
    if cached is not None:
        return cached
    db = using or instance._state.db or "default"
    item = build_del_item(instance)
    item.save(using=db, force_insert=True)
    instance.__dict__[_CACHE] = item
    return item


def build_del_item(instance: models.Model) -> DeletedItem:
    """An unsaved :class:`DeletedItem` describing ``instance``."""
    from actrack.models import DeletedItem

    describe = getattr(instance, "deleted_item_description", None)
    serialize = getattr(instance, "deleted_item_serialization", None)
    return DeletedItem(
        ctype=content_type_for(instance),
        object_key=str(instance.pk),
        description=str(describe() if callable(describe) else instance)[:10_000],
        serialization=serialize() if callable(serialize) else {"pk": instance.pk},
    )


def _pre_delete(sender: Any, instance: models.Model, using: str, **kwargs: Any) -> None:
    from actrack.registry import connection_for

    connection = connection_for(sender)
    if connection is None or instance.pk is None:
        return
    ct = content_type_for(instance)
    key = str(instance.pk)
    if connection.use_del_items:
        _replace_with_deleted_item(instance, ct.pk, key, using)
    else:
        _delete_references(ct.pk, key, using)


def _references(ct_id: int, key: str, using: str) -> dict[str, Any]:
    from actrack.models import Action, ActionRelated, ActionTarget, Tracker

    links = Q(obj_ct_id=ct_id, obj_key=key)
    return {
        "actor": Action.objects.using(using).filter(actor_ct_id=ct_id, actor_key=key),
        "targets": ActionTarget.objects.using(using).filter(links),
        "related": ActionRelated.objects.using(using).filter(links),
        "trackers": Tracker.objects.using(using).filter(tracked_ct_id=ct_id, tracked_key=key),
    }


def _is_referenced(ct_id: int, refs: dict[str, Any], using: str) -> bool:
    """One query: does any action or tracker refer to the object?"""
    from django.contrib.contenttypes.models import ContentType

    condition = Q()
    for qs in refs.values():
        condition |= Q(Exists(qs.order_by()))
    return ContentType.objects.using(using).filter(condition, pk=ct_id).exists()


def _replace_with_deleted_item(instance: models.Model, ct_id: int, key: str, using: str) -> None:
    ref = (ct_id, key)
    queued = _queued_entries(using, ref)
    refs = _references(ct_id, key, using)
    if not queued and _CACHE not in instance.__dict__ and not _is_referenced(ct_id, refs, using):
        return
    item = get_del_item(instance, using)
    item_ref = (content_type_for(item).pk, str(item.pk))
    refs["actor"].update(actor_ct_id=item_ref[0], actor_key=item_ref[1])
    refs["targets"].update(obj_ct_id=item_ref[0], obj_key=item_ref[1])
    refs["related"].update(obj_ct_id=item_ref[0], obj_key=item_ref[1])
    refs["trackers"].update(tracked_ct_id=item_ref[0], tracked_key=item_ref[1])
    for entry in queued:
        _repoint_entry(entry, ref, item_ref, item)


def _delete_references(ct_id: int, key: str, using: str) -> None:
    from actrack.models import Action
    from actrack.queue import WriteOnCommit, current_queue

    refs = _references(ct_id, key, using)
    Action.objects.using(using).filter(
        Q(pk__in=refs["actor"].values("pk"))
        | Q(pk__in=refs["targets"].values("action_id"))
        | Q(pk__in=refs["related"].values("action_id"))
    ).delete()
    refs["trackers"].delete()

    doomed = set(_queued_entries(using, (ct_id, key)))
    if not doomed:
        return
    queue = current_queue()
    if queue is not None:
        queue.entries = [entry for entry in queue.entries if entry not in doomed]
    for item in connections[using].run_on_commit:
        if isinstance(item[1], WriteOnCommit):
            item[1].entries = [entry for entry in item[1].entries if entry not in doomed]


def _queued_entries(using: str, ref: tuple[int, str]) -> list[Entry]:
    """Entries not written yet (queued, or waiting for a commit) that refer to ``ref``."""
    from actrack.queue import current_queue, entries_waiting_for_commit

    queue = current_queue()
    waiting = entries_waiting_for_commit(using)
    candidates = (queue.entries if queue is not None else []) + waiting
    return [
        entry
        for entry in candidates
        if entry.using == using
        and (entry.actor_ref == ref or ref in entry.target_refs or ref in entry.related_refs)
    ]


def _repoint_entry(
    entry: Entry, ref: tuple[int, str], item_ref: tuple[int, str], item: Any
) -> None:
    if entry.actor_ref == ref:
        entry.actor_ref, entry.actor = item_ref, item
    for refs, objs in ((entry.target_refs, entry.targets), (entry.related_refs, entry.related)):
        if ref in refs:
            index = refs.index(ref)
            if item_ref in refs:
                del refs[index], objs[index]
            else:
                refs[index], objs[index] = item_ref, item
