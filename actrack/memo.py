"""Small per-process memories: bounded, newest last, safe to share between threads."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any


def remember(memo: OrderedDict[Any, Any], key: Any, value: Any, kept: int) -> None:
    """Set ``key`` in ``memo`` as its newest entry, dropping the oldest beyond ``kept``."""
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > kept:
        try:
            memo.popitem(last=False)
        except KeyError:  # emptied by another thread meanwhile
            break


def note_now(memo: OrderedDict[Any, float], key: Any, kept: int) -> None:
    """Remember that ``key`` happened now (``time.monotonic()``): see :func:`within`."""
    remember(memo, key, time.monotonic(), kept)


def within(memo: OrderedDict[Any, float], key: Any, seconds: float) -> bool:
    """Whether ``key`` was noted (:func:`note_now`) at most ``seconds`` ago."""
    when = memo.get(key)
    return when is not None and time.monotonic() - when <= seconds
