"""actrack: activity tracking for Django.

The public API, importable before Django is set up::

    import actrack

    actrack.log(actor, "verb", targets=..., related=..., **data)
    actrack.track(user, obj_or_model, verbs=..., actor_only=...)
    actrack.untrack(user, obj_or_model, verbs=...)
    actrack.connect(Model) / @actrack.connect / @actrack.connect(use_del_items=False)
    with actrack.batch(): ...
    actrack.save_queue()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actrack import level
from actrack.handlers import ActionHandler
from actrack.queue import batch, save_queue
from actrack.registry import connect

if TYPE_CHECKING:
    from actrack import deletion
    from actrack.api import log, track, untrack

__all__ = [
    "ActionHandler",
    "batch",
    "connect",
    "deletion",
    "level",
    "log",
    "save_queue",
    "track",
    "untrack",
]

_LAZY = {"log": "actrack.api", "track": "actrack.api", "untrack": "actrack.api"}


def __getattr__(name: str) -> Any:
    # ``api`` and ``deletion`` import models: load them on first use only.
    import importlib

    if name in _LAZY:
        # Kept as a module attribute: later lookups (every ``actrack.log()``) skip this.
        value = globals()[name] = getattr(importlib.import_module(_LAZY[name]), name)
        return value
    if name == "deletion":
        return importlib.import_module("actrack.deletion")
    raise AttributeError(f"module 'actrack' has no attribute {name!r}")
