"""Writing queued entries to the database, set-based."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import router, transaction
from django.db.models import Q

from actrack.inserts import chunks
from actrack.signals import action_logged

if TYPE_CHECKING:
    from django.db import models

    from actrack.models import Action, DeletedItem
    from actrack.queue import Entry, Ref

logger = logging.getLogger("actrack")


def write(entries: list[Entry], *, check_deleted: bool = True) -> list[Action]:
    """Write entries grouped by database, in logging order; returns the new actions.

    Per database: grouping (see :mod:`actrack.grouping`), then the actions and
    their link rows (see :mod:`actrack.inserts`: one statement on PostgreSQL),
    in one transaction. With
    ``check_deleted`` (see :func:`find_deleted`), references to objects
    deleted since they were logged are handled first.
    """
    by_alias: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_alias[entry.using].append(entry)
    written: list[Action] = []
    for using, group in by_alias.items():
        written.extend(_write_one_database(using, group, check_deleted=check_deleted))
    return written


def _write_one_database(
    using: str, entries: list[Entry], *, check_deleted: bool = True
) -> list[Action]:
    from actrack.grouping import group_entries
    from actrack.inserts import insert_actions, single_statement

    # Read outside the transaction: it stays as short as before (on SQLite, a
    # transaction that reads first holds up the other writers for longer).
    deleted = find_deleted(entries, using) if check_deleted else None
    # A write that is one statement is atomic by itself: no BEGIN and COMMIT round trips
    # (grouping with saved actions and deleted items write more, so they take a transaction).
    alone = (
        not deleted
        and all(entry.grouping_delay <= 0 for entry in entries)
        and single_statement(using, len(entries))
    )
    with contextlib.nullcontext() if alone else transaction.atomic(using=using):
        if deleted:
            entries = deleted.apply(entries, using)
        fresh, updated = group_entries(entries, using)
        actions = insert_actions(using, fresh)
    send_action_logged(using, actions, updated)
    return actions


# --- action_logged ------------------------------------------------------------------------


def send_action_logged(using: str, actions: list[Action], updated: list[Action]) -> None:
    """Send ``action_logged`` for new then grouped-into actions, robustly.

    The actions are committed by now, so a receiver's exception is logged
    (logger ``actrack``, ERROR, with its traceback) rather than raised: raising
    would stop the writing of the other databases' actions and make the
    caller (or ``flush_and_close``'s "could not write" log) report committed
    actions as lost. The other receivers and actions still get the signal.
    """
    from actrack.models import Action

    for grouped, group in ((False, actions), (True, updated)):
        for action in group:
            responses = action_logged.send_robust(
                sender=Action, action=action, using=using, grouped=grouped
            )
            for receiver, response in responses:
                if isinstance(response, Exception):
                    logger.error(
                        "actrack: the action_logged receiver %r raised %r for action %s "
                        "(database %r); the action is saved",
                        receiver,
                        response,
                        action.pk,
                        using,
                        exc_info=(type(response), response, response.__traceback__),
                    )


# --- objects deleted while their actions waited ---------------------------------------------
#
# A pre_delete receiver (actrack.deletion) re-points the entries of the deleting
# context's own queue and of its connection's on_commit callbacks, but it cannot see
# the queues of other requests, threads or coroutines. So before a queue is written,
# its references to instances of *connected* models are checked, set-based: one
# query per content type (and database) present, then one for the DeletedItems of
# those that are gone, and nothing at all when no reference is to a connected model.
# References to models that are not connected are left alone: they may dangle, and
# render as "(deleted)" (spec 3.6).
#
# A deletion committed between this check and our commit is not seen (and the
# deleter did not see our uncommitted rows either): that window is a few statements
# wide, and such a reference renders as "(deleted)".


@dataclass
class DeletedRefs:
    """What :func:`find_deleted` found: the references to handle, by rule."""

    #: Deleted objects of ``use_del_items=False`` models: their entries are dropped.
    doomed: set[Ref] = field(default_factory=set)
    #: Deleted objects of ``use_del_items=True`` models and their existing DeletedItem...
    items: dict[Ref, DeletedItem] = field(default_factory=dict)
    #: ...or a new one, built from the instance as it was logged, saved by :meth:`apply`.
    unsaved: dict[Ref, DeletedItem] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.doomed or self.items or self.unsaved)

    def apply(self, entries: list[Entry], using: str) -> list[Entry]:
        """Save the new DeletedItems (one INSERT), re-point references, drop entries.

        As a deletion does (``actrack.deletion``): a reference to an object of a
        ``use_del_items=True`` model is re-pointed to its DeletedItem; an entry
        referring to an object of a ``use_del_items=False`` model in any role
        (actor, target or related) is dropped.
        """
        from actrack.deletion import _repoint_entry
        from actrack.keys import content_type_for
        from actrack.models import DeletedItem

        if self.unsaved:
            DeletedItem.objects.using(using).bulk_create(list(self.unsaved.values()))
            self.items.update(self.unsaved)
            self.unsaved = {}
        kept: list[Entry] = []
        for entry in entries:
            refs = set(_entry_objects(entry))
            if refs & self.doomed:
                continue
            for ref in refs & self.items.keys():
                item = self.items[ref]
                _repoint_entry(entry, ref, (content_type_for(item).pk, str(item.pk)), item)
            kept.append(entry)
        return kept


def find_deleted(entries: list[Entry], using: str) -> DeletedRefs:
    """The references of ``entries`` to connected objects deleted since they were logged.

    For a ``use_del_items=True`` model, the object's newest DeletedItem in
    ``using``; if there is none (the deleter had nothing to re-point when it
    ran, as no saved action or tracker referred to the object yet, or the
    object was deleted without signals, or its item was pruned), a new one is
    built from the instance as it was logged, so that the action keeps the
    history the model asked for.
    """
    gone = _deleted_objects(entries)
    found = DeletedRefs(doomed={ref for ref, (_obj, keep) in gone.items() if not keep})
    kept = {ref: obj for ref, (obj, keep) in gone.items() if keep}
    found.items = _existing_deleted_items(list(kept), using)
    found.unsaved = {
        ref: _new_deleted_item(obj, ref) for ref, obj in kept.items() if ref not in found.items
    }
    return found


def _entry_objects(entry: Entry) -> dict[Ref, Any]:
    """``{ref: instance}`` for the actor, targets and related of ``entry``."""
    objects: dict[Ref, Any] = {}
    if entry.actor_ref is not None:
        objects[entry.actor_ref] = entry.actor
    for refs, objs in ((entry.target_refs, entry.targets), (entry.related_refs, entry.related)):
        objects.update(zip(refs, objs, strict=True))
    return objects


def _deleted_objects(entries: list[Entry]) -> dict[Ref, tuple[Any, bool]]:
    """``{ref: (instance, use_del_items)}`` for referenced connected objects now gone.

    One query per (database, content type), split on SQLite past 998 objects
    (Django keeps its statements under 999 parameters there), in the database
    the object would be deleted from (``router.db_for_write`` with the instance
    as hint: the instance's own database unless a router says otherwise).
    """
    from actrack.registry import connection_for

    wanted: dict[tuple[str, int], dict[str, tuple[Any, bool]]] = defaultdict(dict)
    models_by_ct: dict[int, type[models.Model]] = {}
    # The same instance often comes back in many entries: ask the router once for it.
    # (The entries hold the instances, so their ids stay theirs during the loop.)
    known: dict[int, tuple[str, bool] | None] = {}
    for entry in entries:
        for (ct, key), obj in _entry_objects(entry).items():
            if id(obj) in known:
                found = known[id(obj)]
            else:
                connection = connection_for(type(obj))
                found = known[id(obj)] = (
                    None
                    if connection is None
                    else (router.db_for_write(type(obj), instance=obj), connection.use_del_items)
                )
                if found is not None:
                    models_by_ct[ct] = type(obj)._meta.concrete_model
            if found is not None:
                wanted[(found[0], ct)][key] = (obj, found[1])
    gone: dict[Ref, tuple[Any, bool]] = {}
    for (db, ct), by_key in wanted.items():
        present: set[str] = set()
        for keys in chunks(list(by_key), db):
            existing = models_by_ct[ct]._base_manager.using(db).filter(pk__in=keys).order_by()
            present.update(str(pk) for pk in existing.values_list("pk", flat=True))
        gone.update(((ct, key), found) for key, found in by_key.items() if key not in present)
    return gone


def _existing_deleted_items(refs: list[Ref], using: str) -> dict[Ref, DeletedItem]:
    """The newest DeletedItem of each ``(ct, key)`` that has one, in one query
    (split on SQLite past 499 keys, see :func:`actrack.inserts.chunks`)."""
    from actrack.models import DeletedItem

    items: dict[Ref, DeletedItem] = {}
    for chunk in chunks(refs, using, per_item=2):
        keys_by_ct: dict[int, list[str]] = defaultdict(list)
        for ct, key in chunk:
            keys_by_ct[ct].append(key)
        condition = Q()
        for ct, keys in keys_by_ct.items():
            condition |= Q(ctype_id=ct, object_key__in=keys)
        # Oldest first, so that the newest item of a key deleted more than once wins.
        for item in DeletedItem.objects.using(using).filter(condition).order_by("pk"):
            assert item.ctype_id is not None
            items[(item.ctype_id, item.object_key)] = item
    return items


def _new_deleted_item(obj: Any, ref: Ref) -> DeletedItem:
    """An unsaved DeletedItem built from the instance as it was logged (the row is gone).

    The model's ``deleted_item_description()``/``__str__`` may follow relations
    deleted with it: if describing fails, a plain item (model name and key) is
    used rather than losing the queue.
    """
    from actrack.deletion import build_del_item
    from actrack.models import DeletedItem

    if obj.pk is None:
        # Django's delete() cleared the key of this very instance (shared with the
        # deleting thread): describe a copy with its key back.
        obj = copy.copy(obj)
        obj.pk = obj._meta.pk.to_python(ref[1])
    try:
        return build_del_item(obj)
    except Exception:
        logger.warning(
            "actrack: could not describe the deleted %s %s; storing a plain deleted item",
            type(obj).__name__,
            ref[1],
            exc_info=True,
        )
        return DeletedItem(
            ctype_id=ref[0],
            object_key=ref[1],
            description=f"{type(obj)._meta.verbose_name} {ref[1]}",
            serialization={"pk": ref[1]},
        )
