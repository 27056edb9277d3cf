"""The ``obj.actions`` and ``obj.trackers`` accessors that ``connect`` installs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import models

from actrack.querysets import ActionManager, ActionQuerySet, TrackerManager, TrackerQuerySet

if TYPE_CHECKING:
    from django.db.models import QuerySet


class _ReadOnlyDescriptor:
    name = "accessor"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, instance: Any, value: Any) -> None:
        raise AttributeError(
            f"{type(instance).__name__}.{self.name} is an actrack accessor and cannot be "
            "assigned; log actions with actrack.log() and track with actrack.track()."
        )

    def __delete__(self, instance: Any) -> None:
        raise AttributeError(f"{type(instance).__name__}.{self.name} cannot be deleted.")


class ActionsDescriptor(_ReadOnlyDescriptor):
    name = "actions"

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        return ObjectActions(instance)


class TrackersDescriptor(_ReadOnlyDescriptor):
    name = "trackers"

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        return ObjectTrackers(instance)


def _is_user(obj: Any) -> bool:
    return isinstance(obj, get_user_model())


# Which database the accessors use, as Django's related managers choose it: the
# instance is the routers' hint, so querysets read (and write) where the routers
# send them for that instance, else in the instance's own database
# (``instance._state.db``); ``db_manager()`` or ``using()`` still choose explicitly.
class ObjectActions(ActionManager):
    """Actions about one object; ``all()`` is every action it appears in, newest first."""

    def __init__(self, instance: models.Model) -> None:
        from actrack.models import Action

        super().__init__()
        self.model = Action
        self.instance = instance
        self._hints = {"instance": instance}

    def get_queryset(self) -> ActionQuerySet:
        return self._base().for_object(self.instance, newest_first=True)

    def as_actor(self, **filters: Any) -> ActionQuerySet:
        return self._base().as_actor(self.instance).filter(**filters).newest_first()

    def as_target(self, **filters: Any) -> ActionQuerySet:
        return self._base().as_target(self.instance).filter(**filters).newest_first()

    def as_related(self, **filters: Any) -> ActionQuerySet:
        return self._base().as_related(self.instance).filter(**filters).newest_first()

    def all(self, **filters: Any) -> ActionQuerySet:
        qs = self.get_queryset()
        return qs.filter(**filters) if filters else qs  # each filter() clones

    def feed(self, include_own: bool = False, **filters: Any) -> ActionQuerySet:
        """The actions the user's trackers match (users only)."""
        if not _is_user(self.instance):
            raise TypeError(
                f"feed() is only available on {get_user_model().__name__} instances, "
                f"not on {type(self.instance).__name__}."
            )
        return self._base().feed(self.instance, include_own=include_own, **filters)

    def _base(self) -> ActionQuerySet:
        return ActionQuerySet(self.model, using=self._db, hints=self._hints)


class ObjectTrackers(TrackerManager):
    """Trackers about one object, and those owned when the object is a user."""

    def __init__(self, instance: models.Model) -> None:
        from actrack.models import Tracker

        super().__init__()
        self.model = Tracker
        self.instance = instance
        self._hints = {"instance": instance}

    def get_queryset(self) -> TrackerQuerySet:
        base = self._base()
        if _is_user(self.instance):
            return base.filter(pk__in=self.tracking().values("pk")) | base.owned_by(self.instance)
        return base.tracking(self.instance)

    def _base(self) -> TrackerQuerySet:
        return TrackerQuerySet(self.model, using=self._db, hints=self._hints)

    def tracking(self, **filters: Any) -> TrackerQuerySet:
        """Trackers following this object (its own and those of its whole model)."""
        return self._base().tracking(self.instance).filter(**filters)

    def users(self, **filters: Any) -> QuerySet[Any]:
        """Users following this object; ``filters`` apply to the users.

        They are read from the trackers' database, which the query's subquery reads.
        """
        trackers = self.tracking()
        users = get_user_model()._default_manager.using(trackers.db)
        return users.filter(pk__in=trackers.values("user_id")).filter(**filters)

    def owned(self, **filters: Any) -> TrackerQuerySet:
        """Trackers the user owns (users only)."""
        self._require_user("owned")
        return self._base().owned_by(self.instance).filter(**filters)

    def tracked(self, *models_: type[models.Model], verbs: Any = (), **filters: Any) -> set[Any]:
        """Objects and model classes the user follows (users only), loaded in bulk."""
        from actrack.rendering import load_objects

        self._require_user("tracked")
        if isinstance(verbs, str):
            verbs = [verbs]
        queryset = (
            self._base()
            .owned_by(self.instance)
            .of_models(*models_)
            .with_any_verb(verbs)
            .filter(**filters)
        )
        trackers = list(queryset)
        wanted: dict[int, set[str]] = {}
        for tracker in trackers:
            if tracker.tracked_key:
                wanted.setdefault(tracker.tracked_ct_id, set()).add(tracker.tracked_key)
        objects = load_objects(wanted, queryset.db)  # the tracked objects live beside them
        result: set[Any] = set()
        for tracker in trackers:
            if tracker.tracked_key:
                obj = objects.get((tracker.tracked_ct_id, tracker.tracked_key))
                if obj is not None:
                    result.add(obj)
            else:
                model = tracker.tracked_ct.model_class()
                if model is not None:
                    result.add(model)
        return result

    def all(self, **filters: Any) -> TrackerQuerySet:
        return self.get_queryset().filter(**filters)

    def _require_user(self, method: str) -> None:
        if not _is_user(self.instance):
            raise TypeError(
                f"{method}() is only available on {get_user_model().__name__} instances, "
                f"not on {type(self.instance).__name__}."
            )
