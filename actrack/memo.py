"""Small per-process memories: bounded, newest last, safe to share between threads."""

from __future__ import annotations

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
