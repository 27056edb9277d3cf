"""System checks for the ``ACTRACK`` settings (ids ``actrack.E001`` and up)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from actrack.conf import KEY_COLUMN_LENGTH, AppSettings, _defaults, app_settings


def _error(msg: str, id_: str, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, obj="settings.ACTRACK", id=id_)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate every ``ACTRACK`` key; each problem has its own stable id."""
    raw = getattr(settings, "ACTRACK", {})
    if not isinstance(raw, dict):
        return [_error("ACTRACK must be a dictionary.", "actrack.E001")]
    errors: list[CheckMessage] = []
    unknown = sorted(set(raw) - set(_defaults()))
    if unknown:
        errors.append(
            _error(
                f"Unknown ACTRACK key(s): {', '.join(unknown)}.",
                "actrack.E002",
                hint=f"Known keys: {', '.join(sorted(_defaults()))}.",
            )
        )
    conf = AppSettings()
    errors += _check_user_model(conf)
    for key, id_ in (("ACTIONS_ATTR", "actrack.E004"), ("TRACKERS_ATTR", "actrack.E005")):
        value = conf.raw(key)
        if not isinstance(value, str) or not value.isidentifier() or value.startswith("_"):
            errors.append(_error(f"ACTRACK['{key}'] must be a public Python identifier.", id_))
    if conf.raw("ACTIONS_ATTR") == conf.raw("TRACKERS_ATTR"):
        errors.append(_error("ACTIONS_ATTR and TRACKERS_ATTR must differ.", "actrack.E006"))
    errors += _check_handler(conf)
    for key, id_ in (("TRACK_UNREAD", "actrack.E008"), ("AUTO_READ", "actrack.E009")):
        if not isinstance(conf.raw(key), bool):
            errors.append(_error(f"ACTRACK['{key}'] must be True or False.", id_))
    delay = conf.raw("GROUPING_DELAY")
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < -1:
        errors.append(
            _error(
                "ACTRACK['GROUPING_DELAY'] must be -1, 0 or a number of seconds.", "actrack.E010"
            )
        )
    errors += _check_pk_maxlength(conf)
    errors += _check_levels(conf)
    return errors


def _check_user_model(conf: AppSettings) -> list[CheckMessage]:
    if conf.raw("USER_MODEL") != settings.AUTH_USER_MODEL:
        return [
            _error(
                "ACTRACK['USER_MODEL'] must be the AUTH_USER_MODEL "
                f"({settings.AUTH_USER_MODEL!r}): trackers are linked to it in the schema.",
                "actrack.E003",
            )
        ]
    return []


def _check_handler(conf: AppSettings) -> list[CheckMessage]:
    from actrack.handlers import ActionHandler

    path = conf.raw("DEFAULT_HANDLER")
    try:
        handler = import_string(path) if isinstance(path, str) else None
    except ImportError:
        handler = None
    if not (isinstance(handler, type) and issubclass(handler, ActionHandler)):
        return [
            _error(
                f"ACTRACK['DEFAULT_HANDLER'] ({path!r}) must be the dotted path of an "
                "ActionHandler subclass.",
                "actrack.E007",
            )
        ]
    return []


def _check_pk_maxlength(conf: AppSettings) -> list[CheckMessage]:
    value = conf.raw("PK_MAXLENGTH")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return [_error("ACTRACK['PK_MAXLENGTH'] must be a positive integer.", "actrack.E011")]
    if value > KEY_COLUMN_LENGTH:
        return [
            _error(
                f"ACTRACK['PK_MAXLENGTH'] ({value}) is larger than the key columns of the "
                f"database schema ({KEY_COLUMN_LENGTH} characters).",
                "actrack.E012",
                hint=f"Use at most {KEY_COLUMN_LENGTH}.",
            )
        ]
    return []


def _check_levels(conf: AppSettings) -> list[CheckMessage]:
    levels = conf.raw("LEVELS")
    if not isinstance(levels, dict) or not levels:
        return [_error("ACTRACK['LEVELS'] must be a non-empty dictionary.", "actrack.E013")]
    errors: list[CheckMessage] = []
    for name, value in levels.items():
        if not isinstance(name, str) or not name.isidentifier() or name != name.upper():
            errors.append(
                _error(f"Level name {name!r} must be an upper-case identifier.", "actrack.E014")
            )
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 32767:
            errors.append(
                _error(f"Level {name!r} must be an integer from 0 to 32767.", "actrack.E015")
            )
    if errors:
        return errors
    for key, id_ in (("DEFAULT_LEVEL", "actrack.E016"), ("READABLE_LEVEL", "actrack.E017")):
        value = conf.raw(key)
        if value is not None and value not in levels.values():
            errors.append(
                _error(f"ACTRACK['{key}'] ({value!r}) must be one of the LEVELS values.", id_)
            )
    # Both levels fall back to LEVELS["INFO"] when unset.
    unset = [key for key in ("DEFAULT_LEVEL", "READABLE_LEVEL") if conf.raw(key) is None]
    if unset and "INFO" not in levels:
        errors.append(
            _error(
                f"LEVELS has no INFO level: set {' and '.join(unset)} explicitly.",
                "actrack.E018",
            )
        )
    return errors


def check_accessors(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Accessor names must not hide a field or attribute of a connected model."""
    from actrack.registry import accessor_clashes

    return [
        Error(
            f"{model.__name__}.{name} already exists; actrack cannot install its accessor there.",
            hint="Set ACTRACK['ACTIONS_ATTR'] / ACTRACK['TRACKERS_ATTR'] to free names.",
            obj=model,
            id="actrack.E019",
        )
        # A name can clash twice on one model (class attribute and field): report it once.
        for model, name in dict.fromkeys(accessor_clashes())
    ]


__all__ = ["app_settings", "check_accessors", "check_settings"]
