"""``{% load actrack_dashboard %}``: dashboard pieces to embed in a site's own pages.

``{% actrack_feed %}``
    The newest actions of a user's feed (default: the signed-in user), e.g.
    ``{% actrack_feed limit=5 verb="departed" level="WARNING" model="demo.train" unread=True %}``.
``{% actrack_unread_badge %}``
    The signed-in user's unread badge (polled; refreshed after every mark-read).
``{% actrack_follow_button obj %}``
    Follow / unfollow control for an instance or a whole model class.
``{% actrack_object_url obj %}``
    URL of the page listing ``obj``'s actions.

Nothing is marked read by these tags, whatever ``MARK_READ_ON_VIEW`` says.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.apps import apps
from django.db import models
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from actrack.conf import app_settings
from actrack.models import Action
from actrack_dashboard.conf import MAX_PAGE_SIZE
from actrack_dashboard.filters import filterable_models, model_key
from actrack_dashboard.follow import follow_state
from actrack_dashboard.items import present
from actrack_dashboard.objects import object_actions_url
from actrack_dashboard.unread import badge_context

register = template.Library()


def _request_user(context: template.Context) -> Any:
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _level_value(level: Any) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    levels = app_settings.LEVELS
    if level not in levels:
        raise template.TemplateSyntaxError(f"actrack_feed: unknown level {level!r}.")
    return int(levels[level])


def _model(value: Any) -> Any:
    if isinstance(value, type) and issubclass(value, models.Model):
        return value
    found = filterable_models().get(str(value))
    if found is None:
        raise template.TemplateSyntaxError(
            f"actrack_feed: {value!r} is not a connected model ('app_label.model_name')."
        )
    return found


def feed_queryset(
    user: Any, *, verb: Any = None, level: Any = None, model: Any = None, unread: bool = False
) -> Any:
    """The feed of ``user`` narrowed like the feed page's filters."""
    queryset = Action.objects.feed(user, unread=bool(unread))
    queryset = queryset.with_verbs(*_as_list(verb))
    queryset = queryset.at_levels(*(_level_value(lv) for lv in _as_list(level)))
    models_ = [_model(m) for m in _as_list(model)]
    return queryset.involving_model(*models_) if models_ else queryset


@register.simple_tag(takes_context=True)
def actrack_feed(
    context: template.Context,
    user: Any = None,
    limit: int = 5,
    verb: Any = None,
    level: Any = None,
    model: Any = None,
    unread: bool = False,
    dom_id: str = "actrack-embedded-feed",
) -> SafeString:
    """The newest ``limit`` actions of ``user``'s feed (``partials/embedded_feed.html``)."""
    user = user or _request_user(context)
    if user is None or not user.is_authenticated:
        return mark_safe("")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise template.TemplateSyntaxError(
            f"actrack_feed: limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}."
        )
    queryset = feed_queryset(user, verb=verb, level=level, model=model, unread=unread)
    page = queryset.page(size=limit)
    params: list[tuple[str, str]] = [("verb", v) for v in _as_list(verb)]
    params += [("level", str(lv)) for lv in _as_list(level) if isinstance(lv, str)]
    params += [("model", m if isinstance(m, str) else model_key(m)) for m in _as_list(model)]
    if unread:
        params.append(("unread", "on"))
    feed_url = reverse("actrack_dashboard:feed")
    local = {
        "items": present(page.actions, user),
        "has_more": page.next_cursor is not None,
        "feed_url": f"{feed_url}?{urlencode(params)}" if params else feed_url,
        "dom_id": dom_id,
    }
    return render_to_string(
        "actrack_dashboard/partials/embedded_feed.html", local, request=context.get("request")
    )


@register.simple_tag(takes_context=True)
def actrack_unread_badge(context: template.Context) -> SafeString:
    """The signed-in user's unread badge (``partials/unread_badge.html``)."""
    user = _request_user(context)
    if user is None or not user.is_authenticated:
        return mark_safe("")
    return render_to_string(
        "actrack_dashboard/partials/unread_badge.html",
        badge_context(user),
        request=context.get("request"),
    )


def _followable(obj: Any) -> Any:
    """An instance or model class; ``"app_label.model_name"`` names a model.

    (Templates call callables, so a model class in the context arrives as an
    unsaved instance: name models with a string instead.)
    """
    if isinstance(obj, str):
        try:
            return apps.get_model(obj)
        except (LookupError, ValueError) as exc:
            raise template.TemplateSyntaxError(
                f"actrack_follow_button: {obj!r} is not a model ('app_label.model_name')."
            ) from exc
    if isinstance(obj, models.Model) and obj._state.adding:
        raise template.TemplateSyntaxError(
            "actrack_follow_button: got an unsaved instance; name a whole model with a string "
            "such as 'app_label.model_name' (templates call model classes)."
        )
    return obj


@register.simple_tag(takes_context=True)
def actrack_follow_button(context: template.Context, obj: Any, next: str = "") -> SafeString:
    """Follow / unfollow ``obj`` (``partials/follow_button.html``); nothing if not allowed.

    ``obj``: an instance, or a whole model named ``"app_label.model_name"``.
    """
    if obj is None or obj == "":  # a missing template variable
        return mark_safe("")
    obj = _followable(obj)
    request = context.get("request")
    user = _request_user(context)
    if user is None or not user.is_authenticated:
        return mark_safe("")
    next_url = next or (request.get_full_path() if request is not None else "")
    follow = follow_state(user, obj, next_url)
    if not follow.allowed:
        return mark_safe("")
    return render_to_string(
        "actrack_dashboard/partials/follow_button.html", {"follow": follow}, request=request
    )


@register.simple_tag
def actrack_object_url(obj: Any) -> str:
    """URL of ``obj``'s activity page ("" for ``None`` or a model class)."""
    return object_actions_url(obj)
