"""``{% load actrack_admin %}``: the "Activity" link of admin change pages.

``{% actrack_activity_link %}`` renders ``<li><a href="...">Activity</a></li>``
for the object-tools list of a change form, linking to the object's actions
in the ``Action`` admin, when:

- the context has ``actrack_activity_url`` (set by
  :class:`actrack.admin.ActivityLinkMixin`), or
- the ``ModelAdmin`` does not set ``actrack_activity_link = False`` and the
  object's model is connected to actrack (``actrack.connect``),

and the user may view actions on that admin site. It renders at most once per
request, so a mixin and a template override can both use it.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext

register = template.Library()

_DONE = "_actrack_activity_link_done"


@register.simple_tag(takes_context=True)
def actrack_activity_link(context: template.Context) -> str:
    request = context.get("request")
    if request is None or getattr(request, _DONE, False):
        return ""
    url = context.get("actrack_activity_url") or _connected_object_url(context, request)
    if not url:
        return ""
    setattr(request, _DONE, True)
    return format_html(
        '<li><a href="{}" class="actrack-activity-link">{}</a></li>', url, gettext("Activity")
    )


def _connected_object_url(context: template.Context, request: Any) -> str | None:
    from actrack.admin_display import activity_url
    from actrack.registry import connection_for

    original = context.get("original")
    model_admin = getattr(context.get("adminform"), "model_admin", None)
    if original is None or model_admin is None:
        return None
    wanted = getattr(model_admin, "actrack_activity_link", None)
    if wanted is False or (wanted is None and connection_for(type(original)) is None):
        return None
    return activity_url(model_admin.admin_site, request, original)
