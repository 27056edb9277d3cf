"""The signed-in user's activity pages; each view serves its page and its HTMX fragment.

Every template context documented here is public API (see docs/dashboard.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

import actrack
from actrack import readstate
from actrack.models import Action, Tracker
from actrack_dashboard.filters import FeedFilterSet, filterable_models, recent_verbs
from actrack_dashboard.follow import clean_actor_only, clean_verbs, follow_state
from actrack_dashboard.http import (
    DashboardError,
    Forbidden,
    HtmxHttpRequest,
    NotFound,
    dashboard_view,
    is_fragment_request,
    redirect_next,
    safe_next,
)
from actrack_dashboard.items import clean_cursor, get_page, mark_shown_read, present
from actrack_dashboard.objects import (
    check_key,
    content_type_from,
    model_label,
    model_of,
    object_from,
    tracker_rows,
)
from actrack_dashboard.permissions import user_can_follow
from actrack_dashboard.unread import badge_context, unread_changed

FEED_TARGET = "actrack-feed"
TRACKERS_TARGET = "actrack-trackers"


def _page_context(
    request: HtmxHttpRequest, queryset: Any, base_url: str, params: list[tuple[str, str]]
) -> dict[str, Any]:
    """``items`` of one cursor page of ``queryset``, with its navigation URLs."""
    cursor = clean_cursor(request.GET.get("cursor"))
    page = get_page(queryset, cursor)
    items = present(page.actions, request.user)
    marked = mark_shown_read(request.user, items)

    def url(extra: list[tuple[str, str]]) -> str:
        query = urlencode([*params, *extra])
        return f"{base_url}?{query}" if query else base_url

    return {
        "items": items,
        "page": page,
        "cursor": cursor,
        "page_id": cursor or "first",
        "first_url": url([]),
        "current_url": url([("cursor", cursor)] if cursor else []),
        "next_url": url([("cursor", page.next_cursor)]) if page.next_cursor else "",
        "marked_read": marked,
    }


def _respond(
    request: HtmxHttpRequest,
    context: dict[str, Any],
    page_template: str,
    fragment_template: str,
) -> HttpResponseBase:
    if not is_fragment_request(request):
        return render(request, page_template, context)
    template = (
        "actrack_dashboard/partials/feed_page.html" if context.get("cursor") else fragment_template
    )
    response = render(request, template, context)
    if request.method == "GET":
        push_url(response, context["current_url"])
    if context.get("marked_read"):
        unread_changed(response)
    return response


# --- the feed ----------------------------------------------------------------------------


def _feed_filters(
    request: HtmxHttpRequest, data: QueryDict
) -> tuple[FeedFilterSet, list[tuple[str, str]]]:
    """The viewer's feed filtered by ``data`` (400 when invalid), and the filter params."""
    base = Action.objects.feed(request.user)
    filters = FeedFilterSet(data, base, request=request, verbs=lambda: recent_verbs(base))
    if not filters.is_valid():
        raise DashboardError(_form_errors(filters.form))
    params = [
        (name, value)
        for name in filters.filters
        for value in data.getlist(name)
        if value not in ("", None)
    ]
    return filters, params


def _feed_context(
    request: HtmxHttpRequest, filters: FeedFilterSet, params: list[tuple[str, str]]
) -> dict[str, Any]:
    feed_url = reverse("actrack_dashboard:feed")
    context = _page_context(request, filters.qs, feed_url, params)
    context.update({"filters": filters, "filtered": bool(params), "list_url": feed_url})
    return context


def _form_errors(form: Any) -> str:
    messages = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        text = " ".join(str(e) for e in errors)
        messages.append(f"{label}: {text}" if label else text)
    return gettext("Invalid filter: %(errors)s") % {"errors": " ".join(messages)}


@require_GET
@dashboard_view
def feed(request: HtmxHttpRequest) -> HttpResponseBase:
    """The viewer's feed, filtered; ``partials/feed.html`` (or one page) for HTMX."""
    context = _feed_context(request, *_feed_filters(request, request.GET))
    return _respond(
        request, context, "actrack_dashboard/feed.html", "actrack_dashboard/partials/feed.html"
    )


# --- one object's actions ----------------------------------------------------------------


@require_GET
@dashboard_view
def object_actions(
    request: HtmxHttpRequest, content_type_id: int, object_id: str
) -> HttpResponseBase:
    """Actions about one object, with follow controls for it and for its model."""
    ct = content_type_from(content_type_id)
    obj = object_from(ct, object_id)
    if isinstance(obj, type) or not user_can_follow(request.user, obj):
        raise NotFound(gettext("No such object."))
    queryset = Action.objects.for_object(obj).visible()
    base_url = request.path
    context = _page_context(request, queryset, base_url, [])
    model = model_of(obj)
    context.update(
        {
            "object": obj,
            "model": model,
            "model_name": model_label(model, plural=False),
            "content_type": ct,
            "follow": follow_state(request.user, obj, base_url),
            "follow_model": follow_state(request.user, model, base_url),
            "list_url": base_url,
        }
    )
    return _respond(
        request,
        context,
        "actrack_dashboard/object_actions.html",
        "actrack_dashboard/partials/object_actions.html",
    )


# --- read state --------------------------------------------------------------------------


def _own_action(request: HtmxHttpRequest, action_id: int) -> Action:
    pk_field = Action._meta.pk
    assert pk_field is not None
    check_key(pk_field, action_id, gettext("action"))
    action = Action.objects.feed(request.user, include_own=True).filter(pk=action_id).first()
    if action is None:
        raise NotFound(gettext("Action %(id)s is not in your feed.") % {"id": action_id})
    return action


@require_POST
@dashboard_view
def mark_read(request: HtmxHttpRequest, action_id: int) -> HttpResponseBase:
    """Mark one action of the viewer's feed read; HTMX gets the item back, read."""
    action = _own_action(request, action_id)
    action.mark_read_for(request.user, force=True)
    if not is_fragment_request(request):
        return redirect_next(request, "actrack_dashboard:feed")
    item = present([action], request.user, unread=[False])[0]
    response = render(request, "actrack_dashboard/partials/action.html", {"item": item})
    return unread_changed(response)


@require_POST
@dashboard_view
def mark_all_read(request: HtmxHttpRequest) -> HttpResponseBase:
    """Mark the viewer's whole feed read (one statement).

    HTMX requests targeting ``#actrack-feed`` get the feed fragment back,
    filtered by the filter fields posted along (``hx-include``).
    """
    refresh = is_fragment_request(request) and request.htmx.target == FEED_TARGET
    filters = _feed_filters(request, request.POST) if refresh else None  # 400 before marking
    readstate.mark_all_read(request.user)
    if not is_fragment_request(request):
        return redirect_next(request, "actrack_dashboard:feed")
    if filters is None:
        return unread_changed(HttpResponse(status=204))
    context = _feed_context(request, *filters)
    response = render(request, "actrack_dashboard/partials/feed.html", context)
    return unread_changed(response)


@require_GET
@dashboard_view
def unread_count(request: HtmxHttpRequest) -> HttpResponseBase:
    """The unread badge (polled, and refreshed on ``actrackUnreadChanged``)."""
    context = badge_context(request.user)
    if is_fragment_request(request):
        return render(request, "actrack_dashboard/partials/unread_badge.html", context)
    return render(request, "actrack_dashboard/unread_count.html", context)


# --- trackers ----------------------------------------------------------------------------


def _trackers_context(request: HtmxHttpRequest) -> dict[str, Any]:
    user = request.user
    trackers = list(Tracker.objects.owned_by(user))
    models_ = [m for m in filterable_models().values() if user_can_follow(user, m)]
    cts = ContentType.objects.get_for_models(*models_) if models_ else {}
    return {
        "rows": tracker_rows(trackers, user),
        "model_choices": [(cts[m].pk, model_label(m).capitalize()) for m in models_],
        "trackers_url": reverse("actrack_dashboard:trackers"),
    }


@require_GET
@dashboard_view
def trackers(request: HtmxHttpRequest) -> HttpResponseBase:
    """The viewer's trackers, with forms to change their verbs and roles, or unfollow."""
    context = _trackers_context(request)
    if is_fragment_request(request):
        return render(request, "actrack_dashboard/partials/trackers.html", context)
    return render(request, "actrack_dashboard/trackers.html", context)


def _target(request: HtmxHttpRequest) -> Any:
    ct = content_type_from(request.POST.get("content_type_id"))
    return object_from(ct, request.POST.get("object_id", ""))


def _after_tracking(request: HtmxHttpRequest, obj: Any) -> HttpResponseBase:
    if not is_fragment_request(request):
        return redirect_next(request, "actrack_dashboard:trackers")
    if request.htmx.target == TRACKERS_TARGET:
        context = _trackers_context(request)
        response = render(request, "actrack_dashboard/partials/trackers.html", context)
    else:
        follow = follow_state(request.user, obj, safe_next(request, "actrack_dashboard:trackers"))
        response = render(
            request, "actrack_dashboard/partials/follow_button.html", {"follow": follow}
        )
    return unread_changed(response)


@require_POST
@dashboard_view
def track(request: HtmxHttpRequest) -> HttpResponseBase:
    """Follow an object (``object_id``) or a whole model (empty ``object_id``)."""
    obj = _target(request)
    verbs = clean_verbs(request.POST)
    actor_only = clean_actor_only(request.POST)
    if not user_can_follow(request.user, obj):
        raise Forbidden(gettext("You cannot follow this."))
    actrack.track(request.user, obj, verbs=verbs or None, actor_only=actor_only)
    return _after_tracking(request, obj)


@require_POST
@dashboard_view
def untrack(request: HtmxHttpRequest) -> HttpResponseBase:
    """Stop following an object or a model: every verb, or the ``verbs`` given."""
    obj = _target(request)
    verbs = clean_verbs(request.POST)
    actrack.untrack(request.user, obj, verbs=verbs or None)
    return _after_tracking(request, obj)
