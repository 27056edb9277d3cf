"""Chainable read logic for actions and trackers.

Every place that reads actions (accessors, feeds, the dashboard, the admin)
goes through these methods instead of repeating ``filter()`` chains.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Self

from django.db import models
from django.db.models import Q

from actrack.conf import app_settings
from actrack.keys import content_type_for, ct_and_key
from actrack.paging import Page, cursor_filter, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from actrack.models import Action, Tracker  # noqa: F401 - names in QuerySet[...] strings


class TrackerLike(Protocol):
    """What ``tracked_by`` needs: a ``Tracker``, a ``TempTracker`` or a ``TrackerRow``."""

    @property
    def tracked_ct_id(self) -> int: ...
    @property
    def tracked_key(self) -> str | None: ...
    @property
    def verbs(self) -> Any: ...
    @property
    def actor_only(self) -> bool: ...
    @property
    def created(self) -> Any: ...


class TrackerRow(NamedTuple):
    """A tracker's matching fields, read without building a model instance."""

    tracked_ct_id: int
    tracked_key: str
    verbs: list[str]
    actor_only: bool
    created: Any


def tracker_rows(user: Any, using: str | None = None, *, created: bool = True) -> list[TrackerRow]:
    """The matching fields of ``user``'s trackers (what feeds and read state need).

    Users may have thousands: the verbs come as JSON text, decoded only when
    not empty, and ``created`` (read state only) is left out unless asked for.
    """
    from django.db import connections, router

    from actrack.models import Tracker

    db = using or router.db_for_read(Tracker)
    connection = connections[db]
    rows = raw_tracker_rows(user.pk, db, created=created)
    if not created:
        return [tracker_row(ct, key, vb, ao, None) for ct, key, vb, ao in rows]
    field = Tracker._meta.get_field("created")
    converters = connection.ops.get_db_converters(field.get_col(""))
    trackers = []
    for ct, key, vb, ao, when in rows:
        for converter in converters:  # as the ORM would: aware datetimes under USE_TZ
            when = converter(when, field, connection)
        trackers.append(tracker_row(ct, key, vb, ao, when))
    return trackers


def raw_tracker_rows(user_pk: Any, using: str, *, created: bool) -> list[tuple[Any, ...]]:
    """The columns of :func:`tracker_rows` as the database gives them, verbs as JSON text."""
    from django.db import connections

    from actrack.models import Tracker
    from actrack.rows import reading_cursor

    # A raw query: with thousands of trackers the ORM's per-row work would cost
    # more than the query itself.
    connection = connections[using]
    quote = connection.ops.quote_name
    verbs = "verbs::text" if connection.vendor == "postgresql" else "verbs"
    columns = f"tracked_ct_id, tracked_key, {verbs}, actor_only"
    if created:
        columns += ", created"
    sql = f"SELECT {columns} FROM {quote(Tracker._meta.db_table)} WHERE user_id = %s"
    with reading_cursor(connection) as cursor:
        cursor.execute(sql, [user_pk])
        return cursor.fetchall()


_NO_VERBS = ("[]", "", None)


def tracker_row(ct: int, key: str, verbs: str | None, actor_only: Any, created: Any) -> TrackerRow:
    """A :class:`TrackerRow` from its columns, the verbs as JSON text."""
    return TrackerRow(
        ct, key, [] if verbs in _NO_VERBS else json.loads(verbs), bool(actor_only), created
    )


class TempTracker:
    """An unsaved tracker, for ``Action.objects.tracked_by()`` without touching the database.

    ``tracked`` is an instance or a model class (every instance of it).
    """

    def __init__(
        self,
        user: Any,
        tracked: Any,
        verbs: Iterable[str] = (),
        actor_only: bool = True,
        last_updated: Any = None,
    ) -> None:
        from django.utils import timezone

        ct, key = ct_and_key(tracked, allow_model=True)
        self.user = user
        self.tracked = tracked
        self.tracked_ct_id = ct.pk
        self.tracked_key = key or ""
        self.verbs = sorted({str(verb) for verb in verbs})
        self.actor_only = actor_only
        self.last_updated = last_updated or timezone.now()
        self.created = self.last_updated

    def __repr__(self) -> str:
        return f"<TempTracker {self.user} -> {self.tracked!r}>"


def _object_filter(prefix: str, obj: Any) -> Q:
    """``Q`` matching ``<prefix>_ct``/``<prefix>_key`` to an instance or model class."""
    ct, key = ct_and_key(obj, allow_model=True)
    if key is None:
        return Q(**{f"{prefix}_ct": ct})
    return Q(**{f"{prefix}_ct": ct, f"{prefix}_key": key})


def _content_types(models_: Iterable[Any]) -> list[Any]:
    from django.contrib.contenttypes.models import ContentType

    return [m if isinstance(m, ContentType) else content_type_for(m) for m in models_]


def _refs_filter(prefix: str, refs: dict[int, set[str] | None]) -> Q:
    """OR of ``(content type, keys)`` groups; ``None`` keys means every instance."""
    q = Q()
    for ct_id, keys in sorted(refs.items()):
        if keys is None:
            q |= Q(**{f"{prefix}_ct_id": ct_id})
        elif len(keys) == 1:
            q |= Q(**{f"{prefix}_ct_id": ct_id, f"{prefix}_key": next(iter(keys))})
        else:
            q |= Q(**{f"{prefix}_ct_id": ct_id, f"{prefix}_key__in": sorted(keys)})
    return q


#: The order of actions on pages and feeds (``Action.Meta.ordering`` as well).
_NEWEST_FIRST = ("-timestamp", "-pk")


class ActionQuerySet(models.QuerySet["Action"]):
    """Actions, newest first."""

    def newest_first(self) -> Self:
        return self.order_by(*_NEWEST_FIRST)

    def as_actor(self, obj: Any) -> Self:
        """Actions whose actor is ``obj`` (an instance, or any instance of a model class)."""
        return self.filter(_object_filter("actor", obj))

    def as_target(self, obj: Any) -> Self:
        from actrack.models import ActionTarget

        links = ActionTarget.objects.filter(_object_filter("obj", obj))
        return self.filter(pk__in=links.values("action_id"))

    def as_related(self, obj: Any) -> Self:
        from actrack.models import ActionRelated

        links = ActionRelated.objects.filter(_object_filter("obj", obj))
        return self.filter(pk__in=links.values("action_id"))

    def for_object(self, obj: Any, *, newest_first: bool = False) -> Self:
        """Actions where ``obj`` is the actor, a target or a related object.

        It is the feed of one full tracker of ``obj``, so ``page()`` takes the
        newest actions per role through the per-object indexes.
        ``newest_first``: as :meth:`newest_first` does, in the same clone.
        """
        from actrack.feedengine import TrackerMatch

        match = TrackerMatch([TempTracker(None, obj, actor_only=False)])
        return self._matching(match, newest_first=newest_first)

    def _matching(self, match: Any, *, newest_first: bool = False) -> Self:
        """``filter(match)`` for a :class:`~actrack.feedengine.TrackerMatch`: the same
        condition (the ``Exact(match, True)`` that :func:`actrack.feedengine.fetch_page`
        finds), added without the ORM's parsing of filter arguments, which took longer
        than building an object's page statement. ``newest_first``: ordered as
        :meth:`newest_first` orders, in the same clone."""
        from django.db import NotSupportedError
        from django.db.models.lookups import Exact
        from django.db.models.sql.where import AND

        if self.query.combinator:
            raise NotSupportedError(
                f"Calling QuerySet.filter() after {self.query.combinator}() is not supported."
            )
        if self.query.is_sliced:
            raise TypeError("Cannot filter a query once a slice has been taken.")
        clone = self.all()
        clone.query.where.add(Exact(match.resolve_expression(clone.query), True), AND)
        if newest_first:
            clone.query.clear_ordering(force=True, clear_default=False)
            clone.query.add_ordering(*_NEWEST_FIRST)
        return clone

    def with_verbs(self, *verbs: str) -> Self:
        return self.filter(verb__in=[str(v) for v in verbs]) if verbs else self

    def at_levels(self, *levels: int) -> Self:
        return self.filter(level__in=levels) if levels else self

    def between(self, start: Any = None, end: Any = None) -> Self:
        """Actions with ``start <= timestamp < end`` (either bound optional)."""
        qs = self
        if start is not None:
            qs = qs.filter(timestamp__gte=start)
        if end is not None:
            qs = qs.filter(timestamp__lt=end)
        return qs

    def by_actor_model(self, *models_: Any) -> Self:
        """Actions whose actor is an instance of one of ``models_`` (classes or content types)."""
        return self.filter(actor_ct__in=_content_types(models_)) if models_ else self

    def by_target_model(self, *models_: Any) -> Self:
        """Actions with at least one target of one of ``models_``."""
        from actrack.models import ActionTarget

        if not models_:
            return self
        links = ActionTarget.objects.filter(obj_ct__in=_content_types(models_))
        return self.filter(pk__in=links.values("action_id"))

    def involving_model(self, *models_: Any) -> Self:
        """Actions with an actor, target or related object of one of ``models_``."""
        from actrack.models import ActionRelated, ActionTarget

        if not models_:
            return self
        cts = _content_types(models_)
        return self.filter(
            Q(actor_ct__in=cts)
            | Q(pk__in=ActionTarget.objects.filter(obj_ct__in=cts).values("action_id"))
            | Q(pk__in=ActionRelated.objects.filter(obj_ct__in=cts).values("action_id"))
        )

    def involving_deleted_items(self) -> Self:
        """Actions whose actor, a target or a related object is a ``DeletedItem``."""
        from actrack.models import DeletedItem

        return self.involving_model(DeletedItem)

    def visible(self) -> Self:
        """Actions at or above ``READABLE_LEVEL``: what feeds show."""
        return self.filter(level__gte=app_settings.READABLE_LEVEL)

    def excluding_actor(self, obj: Any) -> Self:
        return self.exclude(_object_filter("actor", obj))

    def tracked_by(self, trackers: TrackerLike | Iterable[TrackerLike], **filters: Any) -> Self:
        """Actions matching any of ``trackers`` (``Tracker`` or ``TempTracker``)."""
        from actrack.feedengine import TrackerMatch

        if hasattr(trackers, "tracked_ct_id"):
            trackers = [trackers]  # type: ignore[list-item]
        trackers = list(trackers)
        if not trackers:
            return self.none()
        qs = self._matching(TrackerMatch(trackers))
        return qs.filter(**filters) if filters else qs  # each filter() clones

    def feed(
        self, user: Any, *, include_own: bool = False, unread: bool = False, **filters: Any
    ) -> Self:
        """The feed of ``user``: actions matching their trackers, readable level and up.

        ``unread=True`` keeps only the actions unread for ``user``. The user's
        trackers (and read state) are read from this queryset's database.
        """
        from actrack import trackercache
        from actrack.feedengine import TrackerMatch
        from actrack.readstate import user_ref

        # Feed pages check the rows this process kept (see actrack.trackercache).
        fingerprint, derived = None, None
        if unread:
            trackers = tracker_rows(user, self.db, created=True)
        elif not trackercache.applies(self.db):
            trackers, derived = trackercache.read_shared(user.pk, self.db)
        elif found := trackercache.kept(user.pk, self.db):
            trackers, fingerprint = found
        else:
            trackers = trackercache.read(user.pk, self.db)
        # Unread actions are a subset of the feed: their condition replaces the
        # feed's, so a page still has one tracker condition to fan out.
        if unread:
            qs = self.unread_for(user, trackers)
        elif trackers:
            # The level and the user's own actions are left out by the condition itself.
            match = TrackerMatch(
                trackers,
                owner=user.pk,
                min_level=app_settings.READABLE_LEVEL,
                not_by=None if include_own else user_ref(user),
                fingerprint=fingerprint,
                derived=derived,
            )
            qs = self._matching(match, newest_first=True)
            return qs.filter(**filters) if filters else qs
        else:
            qs = self.none()
        if not include_own:
            qs = qs.excluding_actor(user)
        return qs.filter(**filters).newest_first()

    def unread_for(self, user: Any, trackers: Iterable[TrackerLike] | None = None) -> Self:
        """Only the actions unread for ``user`` (see :mod:`actrack.readstate`).

        ``trackers``: the user's trackers when the caller has them already.
        """
        from actrack.readstate import unread_queryset

        return unread_queryset(self, user, trackers)

    def after_cursor(self, cursor: str | None) -> Self:
        """Actions strictly after ``cursor`` in newest-first order."""
        if not cursor:
            return self
        return self.filter(cursor_filter(decode_cursor(cursor)))

    def page(self, cursor: str | None = None, size: int = 20) -> Page:
        """One page of actions (newest first) and the cursor of the next page."""
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1000:
            raise ValueError(f"Page size must be an integer from 1 to 1000, got {size!r}")
        from actrack.feedengine import fetch_page

        position = decode_cursor(cursor) if cursor else None
        rows = fetch_page(self, position, size + 1)
        if rows is None:
            rows = list(self.after_cursor(cursor).newest_first()[: size + 1])
        actions = rows[:size]
        more = len(rows) > size
        next_cursor = encode_cursor(actions[-1].timestamp, actions[-1].pk) if more else None
        return Page(actions=actions, next_cursor=next_cursor)


def tracker_condition(
    trackers: Iterable[TrackerLike],
    *,
    since_created: bool = False,
    actor_only: bool = False,
    own_links: tuple[int, str] | None = None,
) -> Q | None:
    """One ``Q`` over ``Action`` matching any tracker, or ``None`` for no trackers.

    Trackers with the same ``actor_only`` and verb set are merged, so the
    condition grows with the number of distinct (actor_only, verbs) pairs and
    content types, not with the number of trackers. ``since_created`` keeps
    only actions newer than the matching tracker (read state); ``actor_only``
    treats every tracker as actor-only. ``own_links`` (a content type id and key)
    keeps that object's own actions out of the target and related roles.
    """
    from actrack.models import ActionRelated, ActionTarget

    Key = tuple[bool, frozenset[str], Any]
    groups: dict[Key, dict[int, set[str] | None]] = defaultdict(dict)
    for tracker in trackers:
        created = tracker.created if since_created else None
        only = actor_only or bool(tracker.actor_only)
        refs = groups[(only, frozenset(tracker.verbs or ()), created)]
        if not tracker.tracked_key:
            refs[tracker.tracked_ct_id] = None
        else:
            keys = refs.setdefault(tracker.tracked_ct_id, set())
            if keys is not None:
                keys.add(tracker.tracked_key)
    if not groups:
        return None
    condition = Q()
    for (only, verbs, created), refs in sorted(groups.items(), key=lambda item: repr(item[0])):
        role = _refs_filter("actor", refs)
        if not only:
            links = _refs_filter("obj", refs)
            linked = Q(pk__in=ActionTarget.objects.filter(links).values("action_id"))
            linked |= Q(pk__in=ActionRelated.objects.filter(links).values("action_id"))
            if own_links is not None:
                linked &= ~Q(actor_ct_id=own_links[0], actor_key=own_links[1])
            role |= linked
        if verbs:
            role &= Q(verb__in=sorted(verbs))
        if created is not None:
            role &= Q(timestamp__gt=created)
        condition |= role
    return condition


class ActionManager(models.Manager.from_queryset(ActionQuerySet)):  # type: ignore[misc]
    """``Action.objects``: the read methods of :class:`ActionQuerySet`."""


class TrackerQuerySet(models.QuerySet["Tracker"]):
    def owned_by(self, user: Any) -> Self:
        return self.filter(user=user)

    def tracking(self, obj: Any) -> Self:
        """Trackers following ``obj``: those of the instance and of its whole model."""
        ct, key = ct_and_key(obj, allow_model=True)
        if key is None:
            return self.filter(tracked_ct=ct, tracked_key="")
        return self.filter(tracked_ct=ct, tracked_key__in=[key, ""])

    def exactly(self, obj: Any) -> Self:
        """Trackers of exactly ``obj`` (an instance, or a model class for model trackers)."""
        ct, key = ct_and_key(obj, allow_model=True)
        return self.filter(tracked_ct=ct, tracked_key=key or "")

    def of_models(self, *models_: type[models.Model]) -> Self:
        if not models_:
            return self
        return self.filter(tracked_ct__in=[content_type_for(m) for m in models_])

    def with_any_verb(self, verbs: Iterable[str]) -> Self:
        """Trackers following at least one of ``verbs`` (all-verb trackers included)."""
        verbs = [str(v) for v in verbs]
        if not verbs:
            return self
        matching = [
            t.pk for t in self.only("pk", "verbs") if not t.verbs or set(t.verbs) & set(verbs)
        ]
        return self.filter(pk__in=matching)


class TrackerManager(models.Manager.from_queryset(TrackerQuerySet)):  # type: ignore[misc]
    """``Tracker.objects``; the write logic lives in :mod:`actrack.api`."""


__all__ = [
    "ActionManager",
    "ActionQuerySet",
    "TempTracker",
    "TrackerManager",
    "TrackerQuerySet",
    "tracker_condition",
]
