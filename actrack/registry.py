"""``actrack.connect``: which models actrack knows, and how it treats their deletion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from django.apps import apps
from django.db import models

M = TypeVar("M", bound=type[models.Model])


@dataclass(frozen=True)
class Connection:
    model: type[models.Model]
    use_del_items: bool = True


_connected: dict[type[models.Model], Connection] = {}
_installed_names: dict[type[models.Model], tuple[str, str]] = {}


@overload
def connect(model: M, *, use_del_items: bool = True) -> M: ...
@overload
def connect(model: None = None, *, use_del_items: bool = True) -> Callable[[M], M]: ...


def connect(model: Any = None, *, use_del_items: bool = True) -> Any:
    """Connect a model to actrack: ``actions``/``trackers`` accessors and deleted items.

    Use as ``@actrack.connect``, ``@actrack.connect(use_del_items=False)`` or
    ``actrack.connect(Model)``. Accessors are installed once actrack's app is
    ready (right away if it already is), under ``ACTIONS_ATTR`` and
    ``TRACKERS_ATTR``.
    """
    if model is None:
        return lambda cls: connect(cls, use_del_items=use_del_items)
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise TypeError(f"actrack.connect() takes a model class, got {model!r}.")
    if model._meta.abstract:
        raise TypeError(f"actrack.connect() cannot connect the abstract model {model.__name__}.")
    _connected[model] = Connection(model, use_del_items=use_del_items)
    if apps.ready or _actrack_ready():
        install(model)
    return model


def _actrack_ready() -> bool:
    try:
        config = apps.get_app_config("actrack")
    except LookupError:
        return False
    return bool(getattr(config, "actrack_ready", False))


def connected_models() -> dict[type[models.Model], Connection]:
    return dict(_connected)


def connection_for(model: type[models.Model]) -> Connection | None:
    """The connection of a model (or of its concrete model, for proxies)."""
    return _connected.get(model) or _connected.get(model._meta.concrete_model)  # type: ignore[arg-type]


def install(model: type[models.Model]) -> None:
    """Attach the accessors (under the configured names) and the deletion receivers."""
    from actrack.accessors import ActionsDescriptor, TrackersDescriptor
    from actrack.conf import app_settings
    from actrack.deletion import connect_deletion

    names = (app_settings.ACTIONS_ATTR, app_settings.TRACKERS_ATTR)
    ours = (ActionsDescriptor, TrackersDescriptor)
    old = _installed_names.get(model)
    if old != names:
        if old is not None:
            for name in old:
                if isinstance(model.__dict__.get(name), ours):
                    delattr(model, name)
        _installed_names[model] = names
        for name, descriptor in zip(
            names, (ActionsDescriptor(), TrackersDescriptor()), strict=True
        ):
            # Invalid names and names already taken (fields, methods, inherited
            # attributes) are left alone; checks actrack.E004/E005/E019 report them.
            if isinstance(name, str) and name.isidentifier() and not hasattr(model, name):
                setattr(model, name, descriptor)
    connect_deletion(model)


def install_all() -> None:
    for model in list(_connected):
        install(model)


def accessor_clashes() -> list[tuple[type[models.Model], str]]:
    """(model, name) pairs where an accessor name is taken by something else."""
    from actrack.accessors import ActionsDescriptor, TrackersDescriptor

    ours = (ActionsDescriptor, TrackersDescriptor)
    clashes = []
    for model, names in _installed_names.items():
        field_names = {f.name for f in model._meta.get_fields()}
        for name in names:
            if not isinstance(name, str):
                continue
            taken = next((k.__dict__[name] for k in model.__mro__ if name in k.__dict__), None)
            if name in field_names or (taken is not None and not isinstance(taken, ours)):
                clashes.append((model, name))
    return clashes
