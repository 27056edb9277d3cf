"""Turning objects into (content type, key) pairs, with the checks ``log()`` promises."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from actrack.conf import KEY_COLUMN_LENGTH, app_settings

#: Surrogate code points: a ``str`` holding one is not Unicode text, and no database
#: driver can encode it (``UnicodeEncodeError`` when the queue is written).
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def is_model_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, models.Model)


def content_type_for(model: type[models.Model] | models.Model) -> ContentType:
    """The content type of a model or instance, from Django's cache."""
    return ContentType.objects.get_for_model(model)


def max_key_length() -> int:
    return min(int(app_settings.PK_MAXLENGTH), KEY_COLUMN_LENGTH)


def key_of(obj: models.Model, limit: int | None = None) -> str:
    """The stored key of a saved instance; ``ValueError`` if unsaved or too long.

    ``limit``: :func:`max_key_length`, when the caller has already read it.
    """
    # ``_state.adding`` also catches unsaved instances whose pk has a default (UUIDs).
    if obj.pk is None or obj._state.adding:
        raise ValueError(
            f"actrack cannot refer to an unsaved {type(obj).__name__} instance: save it first."
        )
    key = str(obj.pk)
    if not key:
        raise ValueError(
            f"actrack cannot refer to {type(obj).__name__} with an empty primary key."
        )
    if has_lone_surrogate(key):
        # No database holds such a key: the instance was built by hand, not loaded.
        raise ValueError(
            f"The primary key of {type(obj).__name__} {key!r} contains a lone surrogate "
            "(U+D800 to U+DFFF): it is not Unicode text, and no database can store it."
        )
    if limit is None:
        limit = max_key_length()
    if len(key) > limit:
        raise ValueError(
            f"The primary key of {type(obj).__name__} {key!r} is {len(key)} characters long, "
            f"more than ACTRACK['PK_MAXLENGTH'] ({app_settings.PK_MAXLENGTH}) allows "
            f"(the key columns hold at most {KEY_COLUMN_LENGTH}). Raise PK_MAXLENGTH."
        )
    return key


def ct_and_key(
    value: Any, *, allow_model: bool = False, limit: int | None = None
) -> tuple[ContentType, str | None]:
    """``(content type, key)`` for an instance, or ``(content type, None)`` for a model."""
    if is_model_class(value):
        if not allow_model:
            raise ValueError(
                f"A model class ({value.__name__}) cannot be the actor, a target or a "
                "related object of an action: pass an instance."
            )
        if value._meta.abstract:
            raise ValueError(f"{value.__name__} is abstract and cannot be tracked.")
        return content_type_for(value), None
    if isinstance(value, models.Model):
        return content_type_for(value), key_of(value, limit)
    raise TypeError(
        f"Expected a model instance{' or model class' if allow_model else ''}, "
        f"got {type(value).__name__}: {value!r}"
    )


def as_list(value: Any, *, what: str) -> list[Any]:
    """Normalise ``None`` / one object / an iterable of objects to a list."""
    if value is None:
        return []
    if isinstance(value, models.Model) or is_model_class(value):
        return [value]
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{what} must be a model instance, an iterable of instances or None, "
            f"got {type(value).__name__}"
        )
    return list(value)


def unique_refs(values: Iterable[Any], *, what: str) -> tuple[list[Any], list[tuple[int, str]]]:
    """The instances without duplicates (first of each wins) and their refs, in order."""
    objects: list[Any] = []
    refs: list[tuple[int, str]] = []
    seen: set[tuple[int, str]] = set()
    limit = max_key_length()
    for value in values:
        if value is None:
            raise TypeError(f"{what} cannot contain None")
        ct, key = ct_and_key(value, limit=limit)
        assert key is not None
        ref = (ct.pk, key)
        if ref not in seen:
            seen.add(ref)
            objects.append(value)
            refs.append(ref)
    return objects, refs
