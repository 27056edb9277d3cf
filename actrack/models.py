"""actrack's models: actions, their link rows, trackers and deleted items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from gm2m import GM2MField
from gm2m.deletion import DO_NOTHING as GM2M_DO_NOTHING

from actrack.conf import KEY_COLUMN_LENGTH
from actrack.querysets import ActionManager, TempTracker, TrackerManager

if TYPE_CHECKING:
    from actrack.handlers import ActionHandler

__all__ = [
    "Action",
    "ActionRelated",
    "ActionTarget",
    "DeletedItem",
    "ReadAction",
    "ReadMark",
    "TempTracker",
    "Tracker",
]


class Action(models.Model):
    """Something that happened: an actor, a verb, targets, related objects and data."""

    # No index of its own on the foreign keys here and below: a composite index
    # leading with the same column (Meta.indexes or a unique constraint) serves
    # every lookup, and each index costs every insert.
    # No database constraint on the content-type columns, here and in the link tables:
    # PostgreSQL checked one at commit per action and per link row (deferred, with a
    # row lock on the content type), about a fifth of bulk logging's time. Deleting a
    # content type through Django still deletes its actions and link rows (Django
    # cascades them itself); only SQL run by hand could leave them pointing nowhere.
    actor_ct = models.ForeignKey(
        ContentType,
        verbose_name=_("actor type"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # NULL (not "") when there is no actor, like actor_ct beside it.
    actor_key = models.CharField(  # noqa: DJ001
        _("actor key"), max_length=KEY_COLUMN_LENGTH, null=True, blank=True
    )
    actor = GenericForeignKey("actor_ct", "actor_key")
    verb = models.CharField(_("verb"), max_length=255)
    level = models.PositiveSmallIntegerField(_("level"))
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    timestamp = models.DateTimeField(_("timestamp"), default=timezone.now)
    targets = GM2MField(
        verbose_name=_("targets"),
        through="actrack.ActionTarget",
        through_fields=("action", "obj", "obj_ct", "obj_key"),
        related_name="actrack_actions_as_target",
        on_delete=GM2M_DO_NOTHING,
    )
    related = GM2MField(
        verbose_name=_("related objects"),
        through="actrack.ActionRelated",
        through_fields=("action", "obj", "obj_ct", "obj_key"),
        related_name="actrack_actions_as_related",
        on_delete=GM2M_DO_NOTHING,
    )

    objects = ActionManager()

    class Meta:
        verbose_name = _("action")
        verbose_name_plural = _("actions")
        ordering = ["-timestamp", "-pk"]
        indexes = [
            models.Index(fields=["-timestamp", "-id"], name="actrack_action_timeline"),
            models.Index(
                fields=["actor_ct", "actor_key", "-timestamp", "-id"],
                name="actrack_action_actor",
            ),
            # Whole-model trackers: newest actions whose actor is of one model.
            models.Index(
                fields=["actor_ct", "-timestamp", "-id"], name="actrack_action_actor_model"
            ),
            models.Index(fields=["verb", "-timestamp", "-id"], name="actrack_action_verb"),
        ]

    def __str__(self) -> str:
        return self.render()

    @property
    def handler(self) -> ActionHandler:
        """The handler instance for this action's verb (cached per instance)."""
        cached = self.__dict__.get("_handler")
        if cached is None or cached.verb_key != self.verb:
            from actrack.handlers import get_handler_class

            cached = get_handler_class(self.verb)(self)
            self.__dict__["_handler"] = cached
        return cached

    def render(self, user: Any = None, context: dict[str, Any] | None = None) -> str:
        """Render through the verb's handler; see :mod:`actrack.rendering`."""
        from actrack.rendering import render_actions

        return render_actions([self], user=user, context=context)[0]

    def is_unread_for(self, user: Any) -> bool:
        """Whether this action is unread for ``user`` (see :mod:`actrack.readstate`)."""
        from actrack.readstate import unread_flags

        return unread_flags(user, [self])[0]

    def mark_read_for(self, user: Any, force: bool = False) -> bool:
        """Mark read for ``user``; True when it was unread and is now read.

        With ``AUTO_READ`` off this marks nothing and returns False, unless ``force``.
        """
        from actrack.readstate import mark_read

        return mark_read(user, [self], force=force)[0]

    @classmethod
    def bulk_is_unread_for(cls, user: Any, actions: Any) -> list[bool]:
        """One flag per action, in order; a constant number of queries."""
        from actrack.readstate import unread_flags

        return unread_flags(user, list(actions))

    @classmethod
    def bulk_mark_read_for(cls, user: Any, actions: Any, force: bool = False) -> list[bool]:
        """Mark many actions read; one flag per action, as :meth:`mark_read_for`."""
        from actrack.readstate import mark_read

        return mark_read(user, list(actions), force=force)

    @classmethod
    def bulk_render(
        cls,
        actions: Any,
        user: Any = None,
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        """Render many actions, loading their objects in bulk; one string per action."""
        from actrack.rendering import render_actions

        return render_actions(list(actions), user=user, context=context)


class ActionLink(models.Model):
    """Common columns of the link tables behind ``Action.targets`` and ``related``.

    ``timestamp`` copies the action's timestamp so that the per-object index
    (content type, key, timestamp, action) answers feeds without a join.
    """

    # No related_name on the FK to Action: gm2m's reverse accessors need the default.
    # Indexed by the unique constraint (action, obj_ct, obj_key) and the feed indexes.
    action = models.ForeignKey(
        Action, verbose_name=_("action"), on_delete=models.CASCADE, db_index=False
    )
    obj_ct = models.ForeignKey(
        ContentType,
        verbose_name=_("object type"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    obj_key = models.CharField(_("object key"), max_length=KEY_COLUMN_LENGTH)
    obj = GenericForeignKey("obj_ct", "obj_key")
    timestamp = models.DateTimeField(_("timestamp"))

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.action_id} -> {self.obj_ct_id}:{self.obj_key}"


class ActionTarget(ActionLink):
    """One target of one action."""

    class Meta:
        verbose_name = _("action target")
        verbose_name_plural = _("action targets")
        db_table = "actrack_action_targets"
        ordering = ["-timestamp", "-action", "-pk"]
        indexes = [
            models.Index(
                fields=["obj_ct", "obj_key", "-timestamp", "-action"],
                name="actrack_target_feed",
            ),
            models.Index(
                fields=["obj_ct", "-timestamp", "-action"], name="actrack_target_model_feed"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "obj_ct", "obj_key"], name="actrack_target_unique"
            ),
        ]


class ActionRelated(ActionLink):
    """One related object of one action."""

    class Meta:
        verbose_name = _("action related object")
        verbose_name_plural = _("action related objects")
        db_table = "actrack_action_related"
        ordering = ["-timestamp", "-action", "-pk"]
        indexes = [
            models.Index(
                fields=["obj_ct", "obj_key", "-timestamp", "-action"],
                name="actrack_related_feed",
            ),
            models.Index(
                fields=["obj_ct", "-timestamp", "-action"], name="actrack_related_model_feed"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "obj_ct", "obj_key"], name="actrack_related_unique"
            ),
        ]


class Tracker(models.Model):
    """A user following an object (or every instance of a model) for some verbs."""

    # Indexed by the unique constraint (user, ...) and actrack_tracker_tracked.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="actrack_trackers",
        db_index=False,
    )
    tracked_ct = models.ForeignKey(
        ContentType,
        verbose_name=_("tracked type"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    # "" (not NULL) marks a whole-model tracker, so that one plain unique
    # constraint covers both kinds and set-based upserts can target it.
    tracked_key = models.CharField(
        _("tracked key"),
        max_length=KEY_COLUMN_LENGTH,
        blank=True,
        default="",
        help_text=_("Empty to track every instance of the model."),
    )
    tracked_object = GenericForeignKey("tracked_ct", "tracked_key")
    verbs = models.JSONField(
        _("verbs"), default=list, blank=True, help_text=_("Empty to track every verb.")
    )
    actor_only = models.BooleanField(_("actor only"), default=True)
    created = models.DateTimeField(_("created"), default=timezone.now)
    last_updated = models.DateTimeField(_("last updated"), default=timezone.now)

    objects = TrackerManager()

    class Meta:
        verbose_name = _("tracker")
        verbose_name_plural = _("trackers")
        ordering = ["-created", "-pk"]
        indexes = [
            models.Index(fields=["tracked_ct", "tracked_key"], name="actrack_tracker_tracked"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "tracked_ct", "tracked_key"], name="actrack_tracker_unique"
            ),
        ]

    def __str__(self) -> str:
        return _("%(user)s tracking %(tracked)s") % {
            "user": self.user,
            "tracked": self.tracked_description(),
        }

    @property
    def tracked(self) -> Any:
        """The tracked instance, or the model class for a whole-model tracker."""
        if not self.tracked_key:
            return self.tracked_ct.model_class()
        return self.tracked_object

    @tracked.setter
    def tracked(self, value: Any) -> None:
        from actrack.keys import ct_and_key

        self.tracked_ct, key = ct_and_key(value, allow_model=True)
        self.tracked_key = key or ""

    @property
    def verb_set(self) -> frozenset[str]:
        return frozenset(self.verbs or ())

    def tracked_description(self) -> str:
        if not self.tracked_key:
            model = self.tracked_ct.model_class()
            name = model._meta.verbose_name_plural if model else self.tracked_ct.model
            return str(_("every %(model)s") % {"model": name})
        obj = self.tracked_object
        return str(obj) if obj is not None else str(_("(deleted)"))


class DeletedItem(models.Model):
    """What remains of a deleted object that actions or trackers referred to."""

    ctype = models.ForeignKey(
        ContentType,
        verbose_name=_("content type"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    object_key = models.CharField(
        _("original key"), max_length=KEY_COLUMN_LENGTH, blank=True, default=""
    )
    description = models.TextField(_("description"))
    serialization = models.JSONField(
        _("serialization"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )
    deleted_at = models.DateTimeField(_("deleted at"), default=timezone.now)

    class Meta:
        verbose_name = _("deleted item")
        verbose_name_plural = _("deleted items")
        ordering = ["-deleted_at", "-pk"]
        indexes = [
            models.Index(fields=["ctype", "object_key"], name="actrack_deleteditem_origin"),
        ]

    def __str__(self) -> str:
        return self.description


class ReadMark(models.Model):
    """Per user: what "mark all read" covered, moved with one statement.

    An action is read by the mark when it existed at the last "mark all read"
    (id at most ``last_read_id``) or its timestamp is not after that moment
    (``read_until``). The second rule lets feed scans stop at the mark, as
    feeds are ordered by timestamp; its price: an action logged later with an
    earlier timestamp (backdated) counts as read.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="actrack_read_mark",
    )
    last_read_id = models.BigIntegerField(_("read up to action"), default=0)
    read_until = models.DateTimeField(_("read up to"), default=timezone.now)
    updated = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("read mark")
        verbose_name_plural = _("read marks")
        ordering = ["-updated", "-pk"]

    def __str__(self) -> str:
        return str(
            _("%(user)s read up to %(when)s") % {"user": self.user, "when": self.read_until}
        )


class ReadAction(models.Model):
    """One action a user marked read (beyond their read mark)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="actrack_read_actions",
    )
    action = models.ForeignKey(
        Action, verbose_name=_("action"), on_delete=models.CASCADE, related_name="+"
    )
    read_at = models.DateTimeField(_("read at"), default=timezone.now)

    class Meta:
        verbose_name = _("read action")
        verbose_name_plural = _("read actions")
        ordering = ["-read_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "action"], name="actrack_readaction_unique"),
        ]

    def __str__(self) -> str:
        return str(_("%(user)s read action %(id)s") % {"user": self.user, "id": self.action_id})
