"""Settings for actrack, read lazily from ``settings.ACTRACK``.

Every attribute of :data:`app_settings` is looked up at access time, so
``override_settings(ACTRACK={...})`` takes effect immediately. Keys missing
from ``settings.ACTRACK`` fall back to the defaults documented below.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Default levels, as in the original django-actrack.
DEFAULT_LEVELS: dict[str, int] = {
    "NULL": 0,
    "DEBUG": 10,
    "HIDDEN": 20,
    "INFO": 30,
    "WARNING": 40,
    "ERROR": 50,
}

#: Width of the key columns (actor, targets, related, trackers) in the shipped
#: migration. ``PK_MAXLENGTH`` may not exceed it.
KEY_COLUMN_LENGTH = 255


#: Defaults of every key but USER_MODEL, which follows AUTH_USER_MODEL.
DEFAULTS: dict[str, Any] = {
    "ACTIONS_ATTR": "actions",
    "TRACKERS_ATTR": "trackers",
    "DEFAULT_HANDLER": "actrack.ActionHandler",
    "TRACK_UNREAD": True,
    "AUTO_READ": True,
    "GROUPING_DELAY": 0,
    # The original defaulted to 16, which rejects UUID keys (36 chars).
    "PK_MAXLENGTH": 36,
    "LEVELS": DEFAULT_LEVELS,
    "DEFAULT_LEVEL": None,  # resolved to LEVELS["INFO"]
    "READABLE_LEVEL": None,  # resolved to LEVELS["INFO"]
}


def _defaults() -> dict[str, Any]:
    return {"USER_MODEL": settings.AUTH_USER_MODEL, **DEFAULTS}


class AppSettings:
    """Attribute access to the ``ACTRACK`` settings dictionary, with defaults.

    Resolved values are cached (logging reads several per action); the cache
    is cleared when ``ACTRACK`` or ``AUTH_USER_MODEL`` changes through
    ``setting_changed`` (``override_settings`` sends it).
    """

    def __init__(self) -> None:
        self.__dict__["_cache"] = {}

    def clear(self) -> None:
        self._cache.clear()

    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "ACTRACK", None)
        return value if isinstance(value, dict) else {}

    def raw(self, name: str) -> Any:
        """The value as configured (or the default), without resolution."""
        if name == "USER_MODEL":
            default = settings.AUTH_USER_MODEL
        elif name in DEFAULTS:
            default = DEFAULTS[name]
        else:
            raise AttributeError(f"Unknown actrack setting {name!r}")
        return self.user_settings().get(name, default)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        cache = self._cache
        if name not in cache:
            cache[name] = self._resolve(name)
        value = cache[name]
        # Mutable values are copied: a caller changing one must not change the cache.
        return dict(value) if isinstance(value, dict) else value

    def _resolve(self, name: str) -> Any:
        value = self.raw(name)
        if name in ("DEFAULT_LEVEL", "READABLE_LEVEL") and value is None:
            return self.LEVELS.get("INFO", 30)
        if name == "LEVELS":
            return dict(value) if isinstance(value, dict) else dict(DEFAULT_LEVELS)
        return value

    def level_name(self, value: int) -> str:
        """Name of a level value, or the number as text when unnamed."""
        for name, level in self.LEVELS.items():
            if level == value:
                return str(name)
        return str(value)


app_settings = AppSettings()
