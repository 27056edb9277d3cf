"""Request plumbing of the dashboard views: sign-in, errors, HTMX, safe redirects."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget
from django_htmx.middleware import HtmxDetails

View = TypeVar("View", bound=Callable[..., HttpResponseBase])

#: Where HTMX error messages go (an element of ``actrack_dashboard/base.html``).
MESSAGES_TARGET = "#actrack-messages"


class HtmxHttpRequest(HttpRequest):
    """A request seen through django-htmx's middleware (for type checkers)."""

    htmx: HtmxDetails


class DashboardError(Exception):
    """Bad input: answered with ``status`` and ``message``, nothing changed."""

    status = 400

    def __init__(self, message: Any, status: int | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        if status is not None:
            self.status = status


class NotFound(DashboardError):
    status = 404


class Forbidden(DashboardError):
    status = 403


def is_fragment_request(request: HtmxHttpRequest) -> bool:
    """An HTMX request that wants a fragment (history restores want the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def error_response(request: HtmxHttpRequest, error: DashboardError) -> HttpResponse:
    """The error page, or for HTMX the error fragment swapped into the messages area."""
    context = {"message": error.message, "status": error.status}
    if is_fragment_request(request):
        response = render(
            request, "actrack_dashboard/partials/error.html", context, status=error.status
        )
        return reswap(retarget(response, MESSAGES_TARGET), "innerHTML")
    return render(request, "actrack_dashboard/error.html", context, status=error.status)


def dashboard_view(view: View) -> View:
    """Sign-in required, ``Vary: HX-Request``, and :class:`DashboardError` as 4xx.

    Anonymous users are sent to the login page; an anonymous HTMX request gets
    a 403 whose ``HX-Redirect`` sends the whole page there.
    """

    @wraps(view)
    def wrapped(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return login_response(request)
        try:
            return view(request, *args, **kwargs)
        except DashboardError as error:
            return error_response(request, error)

    return cast(View, vary_on_headers("HX-Request")(wrapped))


def login_response(request: HtmxHttpRequest) -> HttpResponseBase:
    login_url = resolve_url(settings.LOGIN_URL)
    if getattr(request, "htmx", None):
        page = request.htmx.current_url_abs_path or resolve_url("actrack_dashboard:feed")
        target = redirect_to_login(page, login_url)["Location"]
        response = HttpResponseClientRedirect(
            target, content=str(_("Sign in to see your activity.")), status=403
        )
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    return redirect_to_login(request.get_full_path(), login_url)


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` value of the request when it stays on this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(default)


def redirect_next(request: HttpRequest, default: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(safe_next(request, default))
