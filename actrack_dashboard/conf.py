"""Settings for the dashboard, read lazily from ``settings.ACTRACK_DASHBOARD``.

Every attribute of :data:`dashboard_settings` is looked up at access time, so
``override_settings(ACTRACK_DASHBOARD={...})`` takes effect at once. Missing
keys fall back to these defaults:

``PAGE_SIZE`` (``20``)
    Actions per page of the feed and of an object's activity (1 to 500).
``POLL_INTERVAL`` (``30``)
    Seconds between two refreshes of the unread badge; ``0`` turns polling
    off (the badge still refreshes after every mark-read).
``CAN_FOLLOW`` (``"actrack_dashboard.permissions.can_follow"``)
    A callable, or its dotted path, called as ``can_follow(user, obj)`` where
    ``obj`` is an instance or a model class. It says whether the user may see
    ``obj``'s activity and follow it. The default allows any object, and any
    model, of a model connected with ``actrack.connect``.
``MARK_READ_ON_VIEW`` (``False``)
    Mark the actions shown by the feed and object pages read for the viewer.
    Off: items stay unread until the user marks them, one by one or all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    "PAGE_SIZE": 20,
    "POLL_INTERVAL": 30,
    "CAN_FOLLOW": "actrack_dashboard.permissions.can_follow",
    "MARK_READ_ON_VIEW": False,
}

MAX_PAGE_SIZE = 500


class DashboardSettings:
    """Attribute access to ``settings.ACTRACK_DASHBOARD``, with defaults."""

    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "ACTRACK_DASHBOARD", None)
        return value if isinstance(value, dict) else {}

    def raw(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown actrack_dashboard setting {name!r}")
        return self.user_settings().get(name, DEFAULTS[name])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.raw(name)

    def can_follow_hook(self) -> Callable[[Any, Any], bool]:
        """``CAN_FOLLOW`` as a callable (imported when given as a dotted path)."""
        hook = self.raw("CAN_FOLLOW")
        if isinstance(hook, str):
            hook = import_string(hook)
        if not callable(hook):
            raise TypeError("ACTRACK_DASHBOARD['CAN_FOLLOW'] must be a callable.")
        return hook


dashboard_settings = DashboardSettings()
