"""Showing actrack's objects in the admin: links, JSON, and the "Activity" link.

:class:`ObjectLinks` turns the objects of actions into HTML (links to their
admin pages, deleted items marked as such), :func:`activity_url` points at one
object's actions, and :class:`ActivityLinkMixin` puts that link on any
``ModelAdmin``'s change page (see also ``{% load actrack_admin %}``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from actrack.admin_filters import ObjectFilter, content_type_label
from actrack.models import Action, DeletedItem

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

__all__ = ["ActivityLinkMixin", "ObjectLinks", "activity_url", "pretty_json"]


class ObjectLinks:
    """HTML for objects of actions: a link to their admin change page where there is one.

    A link is given when ``site`` has an admin for the object's model and,
    with a ``request``, when its user may view or change that model (checked
    once per model). Deleted items show their description, marked as deleted;
    objects that vanished show "(deleted)". Everything is escaped.
    """

    def __init__(self, site: admin.AdminSite, request: HttpRequest | None = None) -> None:
        self.site = site
        self.request = request
        self._allowed: dict[type[Model], bool] = {}

    def url(self, obj: Model) -> str | None:
        model = type(obj)
        model_admin = self.site._registry.get(model)
        if model_admin is None:
            return None
        if self.request is not None:
            if model not in self._allowed:
                allowed = model_admin.has_view_or_change_permission(self.request)
                self._allowed[model] = allowed
            if not self._allowed[model]:
                return None
        opts = model._meta
        try:
            return reverse(
                f"{self.site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[quote(obj.pk)],
            )
        except NoReverseMatch:
            return None

    def one(self, obj: Model | None) -> SafeString:
        # Plain escape() and concatenation: this runs for every object of every row.
        if obj is None:
            return mark_safe(
                f'<span class="actrack-vanished">{escape(gettext("(deleted)"))}</span>'
            )
        url = self.url(obj)
        name = conditional_escape(str(obj))
        text = f'<a href="{escape(url)}">{name}</a>' if url else str(name)
        if not isinstance(obj, DeletedItem):
            return mark_safe(text)
        ct = ContentType.objects.get_for_id(obj.ctype_id) if obj.ctype_id else None
        title = (
            gettext("Deleted %(type)s") % {"type": content_type_label(ct)}
            if ct
            else gettext("Deleted")
        )
        return mark_safe(
            f'<span class="actrack-deleted">{text} <span class="actrack-deleted-mark"'
            f' title="{escape(title)}">{escape(gettext("deleted"))}</span></span>'
        )

    def many(self, objs: Iterable[Model | None]) -> SafeString:
        return mark_safe(", ".join(self.one(obj) for obj in objs) or "-")


def pretty_json(value: Any) -> SafeString:
    """``value`` as indented JSON in a ``<pre>``, escaped."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)
    return format_html('<pre class="actrack-json">{}</pre>', text)


def activity_url(site: admin.AdminSite, request: HttpRequest, obj: Model | None) -> str | None:
    """The ``Action`` changelist of ``site`` filtered to ``obj``'s actions, if ``request``'s
    user may see it (``None`` otherwise)."""
    if obj is None or obj.pk is None:
        return None
    model_admin = site._registry.get(Action)
    if model_admin is None or not model_admin.has_view_permission(request):
        return None
    opts = Action._meta
    try:
        base = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return None
    ct = ContentType.objects.get_for_model(obj)
    query = {ObjectFilter.ct_parameter: ct.pk, ObjectFilter.key_parameter: str(obj.pk)}
    return f"{base}?{urlencode(query)}"


class ActivityLinkMixin(_ModelAdmin):
    """Adds an "Activity" link to a ``ModelAdmin``'s change page: the object's actions.

    ``class TrainAdmin(ActivityLinkMixin, admin.ModelAdmin): ...``

    The link opens the ``Action`` changelist of the same admin site filtered
    to the object (as actor, target or related object), for users who may
    view actions. It keeps the admin's own change form template (and any
    per-model override of it) and adds the link to its ``object-tools-items``
    block. Override :meth:`get_activity_url` to point elsewhere. Templates
    get the URL as ``actrack_activity_url``.
    """

    actrack_activity_link = True

    def get_activity_url(self, request: HttpRequest, obj: Model) -> str | None:
        return activity_url(self.admin_site, request, obj)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        response = super().render_change_form(request, context, add, change, form_url, obj)
        url = self.get_activity_url(request, obj) if change and obj is not None else None
        if url and isinstance(response, TemplateResponse) and response.context_data is not None:
            base: Any = response.template_name
            if isinstance(base, str | list | tuple):
                base = select_template([base] if isinstance(base, str) else list(base))
            response.context_data["actrack_activity_url"] = url
            response.context_data["actrack_base_change_form"] = base
            response.template_name = "admin/actrack/change_form_activity.html"
        return response
