"""Keyset (cursor) pagination over actions ordered newest first.

A cursor names the last action of a page by ``(timestamp, id)``; the next page
starts strictly after it, so pages neither repeat nor skip actions when new
ones arrive, and page 50 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from actrack.models import Action


class InvalidCursor(ValueError):
    """A cursor that this module did not produce (or that was tampered with)."""


@dataclass
class Page:
    """A page of actions, newest first, and the cursor of the next page (or ``None``)."""

    actions: list[Action] = field(default_factory=list)
    next_cursor: str | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)


def encode_cursor(timestamp: dt.datetime, pk: int) -> str:
    raw = f"{timestamp.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """``(timestamp, id)`` from a cursor; :class:`InvalidCursor` when malformed."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > 200:
        raise InvalidCursor("Malformed cursor.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, pk = raw.partition("|")
        timestamp = dt.datetime.fromisoformat(stamp)
        number = int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("Malformed cursor.") from exc
    if number < 1 or (settings.USE_TZ and timezone.is_naive(timestamp)):
        raise InvalidCursor("Malformed cursor.")
    return timestamp, number


def cursor_filter(position: tuple[dt.datetime, int]) -> Q:
    timestamp, pk = position
    return Q(timestamp__lt=timestamp) | Q(timestamp=timestamp, pk__lt=pk)
