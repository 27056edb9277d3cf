"""The action queue: where logged actions wait until the request or batch ends.

Scoping
    The current queue lives in a context variable, so it is never shared
    between threads, coroutines or requests. ``request_started`` opens a queue
    and ``request_finished`` writes it; ``batch()`` does the same around a
    block. On Django 5.2 under ASGI, changes a ``request_started`` receiver
    makes to context variables are lost (``Signal.asend`` runs receivers in
    a copied context), so the request queue is also registered under the
    request's asgiref ``ThreadSensitiveContext``, which Django's ASGI handler
    opens before ``request_started`` and which the view and
    ``request_finished`` inherit.

Transactions
    An action logged inside ``transaction.atomic()`` is queued with a token
    registered through ``transaction.on_commit``. Django drops that token when
    a savepoint or transaction rolls back, and runs it on commit, so when the
    queue is written each entry is either confirmed (written), still pending
    (written when the outermost transaction commits) or dead (dropped).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asgiref.sync import SyncToAsync
from django.db import DEFAULT_DB_ALIAS, connections, transaction

if TYPE_CHECKING:
    import datetime as dt

    from actrack.models import Action

logger = logging.getLogger("actrack")

Ref = tuple[int, str]  # (content type id, key)


class _CommitToken:
    """Registered with ``on_commit``; tells whether its transaction committed."""

    __slots__ = ("confirmed", "using")

    def __init__(self, using: str) -> None:
        self.using = using
        self.confirmed = False

    def __call__(self) -> None:
        self.confirmed = True

    @property
    def alive(self) -> bool:
        """Confirmed, or still waiting in a transaction that has not rolled back."""
        if self.confirmed:
            return True
        connection = connections[self.using]
        return any(item[1] is self for item in connection.run_on_commit)


@dataclass(eq=False)
class Entry:
    """One logged action, validated, waiting to be written."""

    actor: Any
    actor_ref: Ref | None
    verb: str
    targets: list[Any]
    target_refs: list[Ref]
    related: list[Any]
    related_refs: list[Ref]
    level: int
    data: dict[str, Any]
    timestamp: dt.datetime
    grouping_delay: int
    using: str
    token: _CommitToken | None = None
    #: The action this entry became (set when written, or when it was grouped).
    action: Action | None = None

    @property
    def actor_columns(self) -> tuple[int | None, str | None]:
        """The action's ``(actor_ct_id, actor_key)``: both ``None`` without an actor."""
        return self.actor_ref if self.actor_ref is not None else (None, None)

    @property
    def alive(self) -> bool:
        return self.token is None or self.token.alive

    @property
    def confirmed(self) -> bool:
        return self.token is None or self.token.confirmed

    def kwargs(self) -> dict[str, Any]:
        """The action as keyword arguments, as handlers' ``combine``/``group`` see it."""
        return {
            "actor": self.actor,
            "verb": self.verb,
            "targets": self.targets,
            "related": self.related,
            "level": self.level,
            "data": self.data,
            "timestamp": self.timestamp,
        }

    def ref_kwargs(self) -> dict[str, Any]:
        """Like :meth:`kwargs`, with ``(content type id, key)`` pairs instead of objects."""
        return self.kwargs() | {
            "actor": self.actor_ref,
            "targets": list(self.target_refs),
            "related": list(self.related_refs),
        }


@dataclass(eq=False)
class ActionQueue:
    """Entries waiting to be written, in logging order."""

    origin: str = "batch"
    entries: list[Entry] = field(default_factory=list)
    token: Token[ActionQueue | None] | None = None
    asgi_context: Any = None
    previous_asgi_queue: ActionQueue | None = None

    def live_entries(self) -> list[Entry]:
        """The entries, less those whose transaction rolled back (pruned here).

        One pass over each connection's ``run_on_commit``, and none at all when
        no entry waits for a commit, so big batches stay linear.
        """
        pending = [e for e in self.entries if e.token is not None and not e.token.confirmed]
        if not pending:
            return self.entries
        registered: dict[str, set[int]] = {}
        for entry in pending:
            assert entry.token is not None
            if entry.token.using not in registered:
                hooks = connections[entry.token.using].run_on_commit
                registered[entry.token.using] = {id(item[1]) for item in hooks}
        self.entries = [
            entry
            for entry in self.entries
            if entry.token is None
            or entry.token.confirmed
            or id(entry.token) in registered[entry.token.using]
        ]
        return self.entries

    def add(self, entry: Entry) -> None:
        from actrack.combination import combine_into_queue

        if entry.token is None and _in_transaction(entry.using):
            entry.token = _CommitToken(entry.using)
            transaction.on_commit(entry.token, using=entry.using)
        if not combine_into_queue(self, entry):
            self.entries.append(entry)

    def flush(self) -> list[Action]:
        """Write what is confirmed now, defer what is pending, drop what rolled back."""
        entries, self.entries = self.live_entries(), []
        ready = [entry for entry in entries if entry.confirmed]
        pending = [entry for entry in entries if not entry.confirmed]
        for using in dict.fromkeys(entry.using for entry in pending):
            waiting = [entry for entry in pending if entry.using == using]
            transaction.on_commit(WriteOnCommit(waiting), using=using)
        return write_entries(ready)


class WriteOnCommit:
    """An ``on_commit`` callback writing entries whose transaction committed.

    A class rather than a closure so that a deletion happening before the
    commit can find these entries (in ``connection.run_on_commit``) and
    re-point their references.
    """

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    def __call__(self) -> None:
        write_entries([entry for entry in self.entries if entry.confirmed])


def entries_waiting_for_commit(using: str) -> list[Entry]:
    """Entries of ``WriteOnCommit`` callbacks still registered on ``using``."""
    return [
        entry
        for item in connections[using].run_on_commit
        if isinstance(item[1], WriteOnCommit)
        for entry in item[1].entries
    ]


def _in_transaction(using: str) -> bool:
    """Inside an ``atomic()`` block of the site (test-case wrappers do not count)."""
    connection = connections[using]
    if not connection.in_atomic_block:
        return False
    return not all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def write_entries(entries: list[Entry], *, check_deleted: bool = True) -> list[Action]:
    """Group, then bulk-write entries (one transaction per database).

    ``check_deleted``: first look for referenced objects deleted since they
    were logged (see :func:`actrack.writer.find_deleted`).
    """
    if not entries:
        return []
    from actrack.writer import write

    return write(entries, check_deleted=check_deleted)


# --- scoping ---------------------------------------------------------------------------

_current: ContextVar[ActionQueue | None] = ContextVar("actrack_queue", default=None)
#: Request queues by the request's asgiref ThreadSensitiveContext (ASGI only).
_asgi_requests: weakref.WeakKeyDictionary[Any, ActionQueue] = weakref.WeakKeyDictionary()


def _asgi_request_context() -> Any:
    """The per-request ``ThreadSensitiveContext`` Django's ASGI handler opens, if any.

    It is set before ``request_started`` is sent and inherited by the view
    (sync or async) and by ``request_finished``, unlike context variables set
    by a ``request_started`` receiver on Django 5.2.
    """
    var = getattr(SyncToAsync, "thread_sensitive_context", None)
    return var.get(None) if var is not None else None


def current_queue() -> ActionQueue | None:
    """The queue ``log()`` should add to, or ``None`` to write at once."""
    queue = _current.get()
    if queue is None:
        context = _asgi_request_context()
        if context is not None:
            queue = _asgi_requests.get(context)
    return queue


def open_queue(origin: str, *, asgi: bool = False) -> ActionQueue:
    queue = ActionQueue(origin=origin)
    queue.token = _current.set(queue)
    context = _asgi_request_context() if asgi else None
    if context is not None:
        queue.previous_asgi_queue = _asgi_requests.get(context)
        queue.asgi_context = context
        _asgi_requests[context] = queue
    return queue


def close_queue(queue: ActionQueue) -> None:
    """Detach ``queue`` from the current context (and request) without writing it."""
    if _current.get() is queue and queue.token is not None:
        try:
            _current.reset(queue.token)
        except ValueError:  # token made in another context
            _current.set(None)
    context = queue.asgi_context
    if context is not None and _asgi_requests.get(context) is queue:
        if queue.previous_asgi_queue is not None:
            _asgi_requests[context] = queue.previous_asgi_queue
        else:
            del _asgi_requests[context]
    queue.token = None
    queue.asgi_context = None


def save_queue() -> list[Action]:
    """Write the current queue now; the queue stays open for what is logged next."""
    queue = current_queue()
    if queue is None:
        return []
    return queue.flush()


def flush_and_close(queue: ActionQueue, *, raise_errors: bool) -> list[Action]:
    """Detach then write ``queue``; a failed write never leaves it behind.

    On failure the unwritten actions are logged (logger ``actrack``, level
    ERROR, with each action's verb, actor, targets, related, level, data and
    timestamp) so that nothing logged is lost silently; the error is re-raised
    when ``raise_errors``.
    """
    close_queue(queue)
    entries = list(queue.entries)
    try:
        return queue.flush()
    except Exception:
        logger.exception(
            "actrack could not write %d queued action(s): %s",
            len(entries),
            [describe_entry(entry) for entry in entries],
        )
        if raise_errors:
            raise
        return []


def describe_entry(entry: Entry) -> dict[str, Any]:
    return {
        "verb": entry.verb,
        "actor": entry.actor_ref,
        "targets": entry.target_refs,
        "related": entry.related_refs,
        "level": entry.level,
        "data": entry.data,
        "timestamp": entry.timestamp.isoformat(),
        "using": entry.using,
    }


class batch(contextlib.ContextDecorator):
    """Queue actions logged inside the block and write them, in order, on exit.

    Usable as ``with actrack.batch():`` and as ``@actrack.batch()``. Batches
    nest: an inner batch writes its own actions when it ends.
    """

    def __init__(self) -> None:
        self.queue: ActionQueue | None = None

    def _recreate_cm(self) -> batch:
        return type(self)()

    def __enter__(self) -> ActionQueue:
        self.queue = open_queue("batch")
        return self.queue

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.queue is not None
        # A failure of the block itself takes precedence over a failure to write.
        flush_and_close(self.queue, raise_errors=exc_type is None)


# --- request scoping (receivers connected in AppConfig.ready) ----------------------------


def request_started(sender: Any, scope: Any = None, **kwargs: Any) -> None:
    open_queue("request", asgi=scope is not None)


def request_finished(sender: Any, **kwargs: Any) -> None:
    queue = current_queue()
    if queue is not None and queue.origin == "request":
        wrote = bool(queue.entries)
        # The response is gone: report failures through the log, never raise.
        flush_and_close(queue, raise_errors=False)
        if wrote:
            close_old_connections_again()


def close_old_connections_again() -> None:
    """Do again what ``django.db.close_old_connections`` did at the end of the request.

    Django connects ``close_old_connections`` to ``request_finished`` when
    ``django.db`` is imported, before actrack's receiver, so the connections
    the flush opened or used would stay open; under ASGI, where each request
    runs its sync code in a thread of its own, nothing would ever close them.
    The same rule applies (``close_if_unusable_or_obsolete``: ``CONN_MAX_AGE``
    and ``CONN_HEALTH_CHECKS`` are respected), except that a connection inside
    an ``atomic()`` block is left alone: it is not ours to close (Django's
    ``TestCase`` wraps each test in one; its test client disconnects
    ``close_old_connections`` during requests for the same reason).
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


__all__ = [
    "DEFAULT_DB_ALIAS",
    "ActionQueue",
    "Entry",
    "batch",
    "current_queue",
    "save_queue",
]
