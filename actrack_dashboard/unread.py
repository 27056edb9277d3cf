"""The unread badge and the HTMX event that refreshes it."""

from __future__ import annotations

from typing import Any

from django.http.response import HttpResponseBase
from django_htmx.http import trigger_client_event

from actrack import readstate
from actrack_dashboard.conf import dashboard_settings

#: The HTMX event sent (``HX-Trigger``) after anything changes the viewer's unread state.
UNREAD_CHANGED = "actrackUnreadChanged"
#: The badge counts up to this and shows "99+" beyond.
BADGE_CAP = 99


def unread_changed(response: HttpResponseBase) -> HttpResponseBase:
    """``response`` with ``HX-Trigger: actrackUnreadChanged`` (the badge listens)."""
    return trigger_client_event(response, UNREAD_CHANGED)


def badge_context(user: Any) -> dict[str, Any]:
    """Context of ``partials/unread_badge.html``.

    ``unread_count`` (capped at ``BADGE_CAP + 1``), ``unread_display`` (``"99+"``
    beyond the cap), ``poll_interval`` (seconds, 0: no polling), ``unread_event``.
    """
    count = readstate.unread_count(user, cap=BADGE_CAP + 1)
    return {
        "unread_count": count,
        "unread_display": f"{BADGE_CAP}+" if count > BADGE_CAP else str(count),
        "poll_interval": dashboard_settings.POLL_INTERVAL,
        "unread_event": UNREAD_CHANGED,
    }
