"""Who may see and follow what: the default ``CAN_FOLLOW`` hook."""

from __future__ import annotations

from typing import Any

from django.db import models

from actrack.registry import connection_for


def can_follow(user: Any, obj: Any) -> bool:
    """Any object, or whole model, of a model connected to actrack."""
    model = obj if isinstance(obj, type) else type(obj)
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        return False
    return connection_for(model) is not None


def user_can_follow(user: Any, obj: Any) -> bool:
    """The configured hook's answer, for signed-in users only."""
    from actrack_dashboard.conf import dashboard_settings

    if user is None or not user.is_authenticated:
        return False
    return bool(dashboard_settings.can_follow_hook()(user, obj))
