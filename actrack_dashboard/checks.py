"""System checks for ``ACTRACK_DASHBOARD`` (ids ``actrack_dashboard.E001`` and up)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from actrack_dashboard.conf import DEFAULTS, MAX_PAGE_SIZE, DashboardSettings

HTMX_MIDDLEWARE = "django_htmx.middleware.HtmxMiddleware"


def _error(msg: str, id_: str, hint: str | None = None, obj: str = "") -> Error:
    return Error(msg, hint=hint, obj=obj or "settings.ACTRACK_DASHBOARD", id=id_)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate every ``ACTRACK_DASHBOARD`` key; each problem has its own id."""
    raw = getattr(settings, "ACTRACK_DASHBOARD", {})
    if not isinstance(raw, dict):
        return [_error("ACTRACK_DASHBOARD must be a dictionary.", "actrack_dashboard.E001")]
    errors: list[CheckMessage] = []
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        errors.append(
            _error(
                f"Unknown ACTRACK_DASHBOARD key(s): {', '.join(map(str, unknown))}.",
                "actrack_dashboard.E002",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            )
        )
    conf = DashboardSettings()
    size = conf.raw("PAGE_SIZE")
    if not _is_int(size) or not 1 <= size <= MAX_PAGE_SIZE:
        errors.append(
            _error(
                f"ACTRACK_DASHBOARD['PAGE_SIZE'] must be an integer from 1 to {MAX_PAGE_SIZE}.",
                "actrack_dashboard.E003",
            )
        )
    interval = conf.raw("POLL_INTERVAL")
    if not _is_int(interval) or interval < 0:
        errors.append(
            _error(
                "ACTRACK_DASHBOARD['POLL_INTERVAL'] must be a number of seconds (0: no polling).",
                "actrack_dashboard.E004",
            )
        )
    errors += _check_hook(conf)
    if not isinstance(conf.raw("MARK_READ_ON_VIEW"), bool):
        errors.append(
            _error(
                "ACTRACK_DASHBOARD['MARK_READ_ON_VIEW'] must be True or False.",
                "actrack_dashboard.E006",
            )
        )
    return errors


def _check_hook(conf: DashboardSettings) -> list[CheckMessage]:
    hook = conf.raw("CAN_FOLLOW")
    if isinstance(hook, str):
        try:
            hook = import_string(hook)
        except ImportError:
            hook = None
    if callable(hook):
        return []
    return [
        _error(
            "ACTRACK_DASHBOARD['CAN_FOLLOW'] must be a callable or the dotted path of one, "
            f"got {conf.raw('CAN_FOLLOW')!r}.",
            "actrack_dashboard.E005",
            hint="It is called as can_follow(user, obj) and returns True or False.",
        )
    ]


def check_htmx(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The dashboard needs django-htmx's middleware (``request.htmx``) and app."""
    errors: list[CheckMessage] = []
    if HTMX_MIDDLEWARE not in getattr(settings, "MIDDLEWARE", []):
        errors.append(
            _error(
                f"actrack_dashboard needs {HTMX_MIDDLEWARE!r} in MIDDLEWARE.",
                "actrack_dashboard.E007",
                hint="Add it after the session and authentication middleware.",
                obj="settings.MIDDLEWARE",
            )
        )
    if "django_htmx" not in settings.INSTALLED_APPS:
        errors.append(
            _error(
                "actrack_dashboard needs 'django_htmx' in INSTALLED_APPS "
                "(its {% htmx_script %} tag serves htmx).",
                "actrack_dashboard.E008",
                obj="settings.INSTALLED_APPS",
            )
        )
    return errors
