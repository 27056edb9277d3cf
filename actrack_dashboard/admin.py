"""Puts the staff activity dashboard into the Django admin.

Django's admin autodiscovery imports this module, which mounts the page on
the default site (``django.contrib.admin.site``): ``<admin>/activity/``,
URL name ``admin:actrack_activity``. The page is listed, for users who may
view actions, in the "Activity tracking" section of the admin index, app
index and navigation sidebar, next to Actions, Trackers and Deleted items.

Both come from two documented ``AdminSite`` methods, ``get_urls()`` and
``get_app_list()``:

- custom sites inherit :class:`ActivityDashboardSiteMixin`::

      class MyAdminSite(ActivityDashboardSiteMixin, admin.AdminSite): ...

- or call :func:`install` on a site instance (that is what happens to the
  default site here) before its ``urls`` are read.

No admin template is overridden, so sites and admin themes keep theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from actrack.models import Action

if TYPE_CHECKING:
    _AdminSite = admin.AdminSite
else:
    _AdminSite = object

__all__ = ["URL_NAME", "ActivityDashboardSiteMixin", "dashboard_urls", "install"]

#: The page's URL name, in the admin site's namespace (``admin:actrack_activity``).
URL_NAME = "actrack_activity"

_INSTALLED = "_actrack_dashboard_installed"


def dashboard_urls(site: admin.AdminSite) -> list[URLPattern]:
    from actrack_dashboard.admin_views import StaffDashboardView

    view = site.admin_view(StaffDashboardView.as_view(admin_site=site))
    return [path("activity/", view, name=URL_NAME)]


def dashboard_entry(site: admin.AdminSite, request: HttpRequest) -> dict[str, Any] | None:
    """The page as an entry of ``get_app_list()``, or ``None`` if the user may not see it."""
    from actrack_dashboard.admin_views import can_view_actions

    if not can_view_actions(site, request):
        return None
    try:
        url = reverse(f"{site.name}:{URL_NAME}")
    except NoReverseMatch:
        return None
    return {
        # Not a model: "model" is None and only "view" is allowed.
        "model": None,
        "name": _("Activity dashboard"),
        "object_name": "ActivityDashboard",
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


def with_dashboard(
    site: admin.AdminSite,
    request: HttpRequest,
    app_list: list[Any],
    app_label: str | None = None,
) -> list[Any]:
    """``app_list`` with the dashboard in actrack's section (or a section of its own)."""
    engine_label = Action._meta.app_label
    if app_label not in (None, engine_label):
        return app_list
    entry = dashboard_entry(site, request)
    if entry is None:
        return app_list
    for app in app_list:
        if app["app_label"] == engine_label:
            app["models"].append(entry)
            app["models"].sort(key=lambda model: str(model["name"]))
            return app_list
    if app_label is None:
        app_list.append(
            {
                "name": apps.get_app_config("actrack_dashboard").verbose_name,
                "app_label": "actrack_dashboard",
                "app_url": entry["admin_url"],
                "has_module_perms": True,
                "models": [entry],
            }
        )
        app_list.sort(key=lambda app: str(app["name"]).lower())
    return app_list


class ActivityDashboardSiteMixin(_AdminSite):
    """Mounts the staff activity dashboard on an ``AdminSite`` subclass and lists it."""

    def get_urls(self) -> list[Any]:
        return [*dashboard_urls(self), *super().get_urls()]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        return with_dashboard(self, request, super().get_app_list(request, app_label), app_label)


def install(site: admin.AdminSite) -> None:
    """Give a site instance the behaviour of :class:`ActivityDashboardSiteMixin`.

    Wraps the instance's ``get_urls`` and ``get_app_list`` (its class is left
    alone); does nothing for sites using the mixin or already installed.
    """
    if isinstance(site, ActivityDashboardSiteMixin) or getattr(site, _INSTALLED, False):
        return
    get_urls, get_app_list = site.get_urls, site.get_app_list

    def get_urls_with_dashboard() -> list[Any]:
        return [*dashboard_urls(site), *get_urls()]

    def get_app_list_with_dashboard(
        request: HttpRequest, app_label: str | None = None
    ) -> list[Any]:
        return with_dashboard(site, request, get_app_list(request, app_label), app_label)

    site.get_urls = get_urls_with_dashboard  # type: ignore[method-assign]
    site.get_app_list = get_app_list_with_dashboard  # type: ignore[method-assign]
    setattr(site, _INSTALLED, True)


install(admin.site)
