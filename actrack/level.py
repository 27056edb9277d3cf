"""Logging levels, one upper-case attribute per level of ``ACTRACK["LEVELS"]``.

``actrack.level.INFO`` reads the settings at access time, so overridden levels
show up here too.
"""

from __future__ import annotations

from actrack.conf import app_settings


def __getattr__(name: str) -> int:
    levels = app_settings.LEVELS
    if name in levels:
        return int(levels[name])
    raise AttributeError(f"actrack.level has no level {name!r} (configured: {sorted(levels)})")


def __dir__() -> list[str]:
    return sorted(app_settings.LEVELS)
