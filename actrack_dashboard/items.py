"""Actions as the dashboard lists them: rendered by their handlers, with unread flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from actrack.conf import app_settings
from actrack.models import Action
from actrack.paging import InvalidCursor, Page, decode_cursor
from actrack_dashboard.conf import dashboard_settings
from actrack_dashboard.http import DashboardError


@dataclass(frozen=True)
class Item:
    """One listed action: its handler's HTML and whether it is unread for the viewer.

    Template context of ``partials/action.html`` (as ``item``).
    """

    action: Action
    html: SafeString
    unread: bool
    level_name: str
    notable: bool

    @property
    def dom_id(self) -> str:
        return f"action-{self.action.pk}"


def present(
    actions: Sequence[Action], user: Any, unread: Sequence[bool] | None = None
) -> list[Item]:
    """Items for ``actions``; a constant number of queries however many there are.

    Nothing is marked read: the unread flags are computed (unless given) and
    passed to ``Action.bulk_render``, so that rendering leaves them alone.
    """
    actions = list(actions)
    if not actions:
        return []
    flags = list(unread) if unread is not None else Action.bulk_is_unread_for(user, actions)
    # With TRACK_UNREAD off the engine neither computes nor consumes the flags (and
    # marks nothing); passing them would hand handlers the whole list as ``unread``.
    context = {"unread": flags} if app_settings.TRACK_UNREAD else None
    htmls = Action.bulk_render(actions, user=user, context=context)
    default = app_settings.DEFAULT_LEVEL
    return [
        Item(
            action=action,
            html=mark_safe(html),  # handler.render output is HTML-safe (SPEC 3.8)
            unread=flag,
            level_name=app_settings.level_name(action.level),
            notable=action.level > default,
        )
        for action, html, flag in zip(actions, htmls, flags, strict=True)
    ]


def mark_shown_read(user: Any, items: Sequence[Item]) -> bool:
    """Under ``MARK_READ_ON_VIEW``, mark the unread shown items read; True if any was."""
    if not dashboard_settings.MARK_READ_ON_VIEW:
        return False
    unread = [item.action for item in items if item.unread]
    if not unread:
        return False
    return any(Action.bulk_mark_read_for(user, unread, force=True))


def clean_cursor(value: Any) -> str | None:
    """The ``cursor`` request value: ``None`` when absent, 400 when not one of ours."""
    if value in (None, ""):
        return None
    try:
        timestamp, _pk = decode_cursor(value)
    except InvalidCursor as exc:
        raise DashboardError(_cursor_message()) from exc
    # The engine accepts naive timestamps; comparing them with aware ones warns.
    if settings.USE_TZ and timezone.is_naive(timestamp):
        raise DashboardError(_cursor_message())
    return str(value)


def _cursor_message() -> str:
    return gettext("This page link is broken (malformed cursor); start again from the first page.")


def get_page(queryset: Any, cursor: str | None, size: int | None = None) -> Page:
    """One page of ``queryset``; a malformed cursor is a 400."""
    try:
        page: Page = queryset.page(cursor=cursor, size=size or dashboard_settings.PAGE_SIZE)
    except InvalidCursor as exc:
        raise DashboardError(_cursor_message()) from exc
    return page
