"""Django admin for actrack: actions (read-only), trackers and deleted items.

Built to stay fast on millions of actions (see :mod:`actrack.admin_changelists`):

- counts are bounded: exact up to a cap, the planner's estimate for an
  unfiltered table on PostgreSQL, else "more than N"; ``show_full_result_count``
  and facet counts are off;
- filter choices come from index probes (:mod:`actrack.admin_filters`), and
  the date hierarchy from one ``MIN``/``MAX`` query, never ``DISTINCT`` scans;
- lists keep the indexed order (newest first) and cannot be re-sorted;
- the objects of a page's actions are loaded in bulk (one query for the link
  rows, one per content type) and every action is shown through its
  handler's ``render()``, without a user, so nothing is marked read.

:class:`ActivityLinkMixin` (from :mod:`actrack.admin_display`) adds an
"Activity" link to any ``ModelAdmin``'s change page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actrack.admin_changelists import (
    LINKS,
    RENDERED,
    ActionChangeList,
    BoundedAdmin,
    EstimatedCountPaginator,
    TrackerChangeList,
    local,
)
from actrack.admin_display import ActivityLinkMixin, ObjectLinks, activity_url, pretty_json
from actrack.admin_filters import (
    ActorModelFilter,
    DeletedItemModelFilter,
    InvolvesDeletedItemFilter,
    LevelFilter,
    ObjectFilter,
    TargetModelFilter,
    TrackedModelFilter,
    TrackerKindFilter,
    VerbFilter,
    actions_about,
    content_type_label,
)
from actrack.conf import app_settings
from actrack.models import Action, DeletedItem, Tracker
from actrack.rendering import hydrated

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

__all__ = [
    "ActionAdmin",
    "ActivityLinkMixin",
    "DeletedItemAdmin",
    "EstimatedCountPaginator",
    "ObjectLinks",
    "TrackerAdmin",
    "activity_url",
    "pretty_json",
]


class _ActionDisplay(_ModelAdmin):
    """The columns and detail fields of an action."""

    def _links(self, obj: Action) -> ObjectLinks:
        links: ObjectLinks | None = obj.__dict__.get(LINKS)
        return links or ObjectLinks(self.admin_site)

    @admin.display(description=_("timestamp"))
    def when(self, obj: Action) -> str:
        when = local(obj.timestamp)
        return format_html(
            '<time datetime="{}">{}<br><span class="quiet">{}</span></time>',
            obj.timestamp.isoformat(),
            formats.date_format(when, "DATE_FORMAT"),
            formats.time_format(when, "TIME_FORMAT"),
        )

    @admin.display(description=_("action"))
    def rendered(self, obj: Action) -> str:
        html: str | None = obj.__dict__.get(RENDERED)
        return html if html is not None else Action.bulk_render([obj])[0]

    @admin.display(description=_("verb"))
    def verb_name(self, obj: Action) -> str:
        return obj.handler.get_verb_display()

    @admin.display(description=_("level"))
    def level_name(self, obj: Action) -> str:
        return app_settings.level_name(obj.level)

    @admin.display(description=_("actor"))
    def actor_link(self, obj: Action) -> str:
        if obj.actor_ct_id is None:
            return "-"
        return self._links(obj).one(hydrated(obj).actor)

    @admin.display(description=_("targets"))
    def targets_links(self, obj: Action) -> str:
        return self._links(obj).many(hydrated(obj).targets)

    @admin.display(description=_("related objects"))
    def related_links(self, obj: Action) -> str:
        return self._links(obj).many(hydrated(obj).related)

    @admin.display(description=_("objects"))
    def objects(self, obj: Action) -> str:
        """Actor, targets and related objects in one column, each labelled."""
        objects, links = hydrated(obj), self._links(obj)
        parts = []
        if obj.actor_ct_id is not None:
            parts.append((gettext("actor"), links.one(objects.actor)))
        if objects.targets:
            parts.append((gettext("targets"), links.many(objects.targets)))
        if objects.related:
            parts.append((gettext("related"), links.many(objects.related)))
        if not parts:
            return "-"
        return format_html(
            '<dl class="actrack-objects">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", parts),
        )

    @admin.display(description=_("data"))
    def data_json(self, obj: Action) -> str:
        return pretty_json(obj.data)

    @admin.display(description=_("deleted items"))
    def deleted_items(self, obj: Action) -> str:
        objects = hydrated(obj)
        items = [
            item
            for item in [objects.actor, *objects.targets, *objects.related]
            if isinstance(item, DeletedItem)
        ]
        if not items:
            return "-"
        links = self._links(obj)
        return format_html_join(
            "",
            '<div class="actrack-deleted-item">{}{}</div>',
            ((links.one(item), pretty_json(item.serialization)) for item in items),
        )


class ReadOnlyAdminMixin(_ModelAdmin):
    """No adding, changing or deleting: history is shown, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Action)
class ActionAdmin(ReadOnlyAdminMixin, BoundedAdmin, _ActionDisplay, admin.ModelAdmin):
    """Read-only: actions are history. Nobody adds, changes or deletes them here.

    Deleting is refused too (also for superusers): it would rewrite the audit
    trail and users' feeds and read state, and the admin's bulk delete loads
    every selected row and its related rows into memory. Purge old actions
    with a queryset ``delete()`` in a maintenance task instead, or subclass
    and allow it.
    """

    list_display = (
        "when",
        "rendered",
        "verb_name",
        "level_name",
        "objects",
    )
    # Only computed columns: ``?o=`` cannot sort on a column without an index either.
    list_display_links = ("when",)
    list_filter = (
        LevelFilter,
        VerbFilter,
        ActorModelFilter,
        TargetModelFilter,
        InvolvesDeletedItemFilter,
        ObjectFilter,
    )
    # Nothing to join: the page's actors, targets and related objects are loaded in bulk
    # (actrack.rendering.hydrate) and content types come from Django's cache.
    list_select_related = ()
    date_hierarchy = "timestamp"
    search_fields = ("verb", "data")
    search_help_text = _("Searches verbs and data (every row: narrow with filters first).")
    actions = None
    fieldsets = (
        (None, {"fields": ("rendered", "verb", "level_name", "timestamp")}),
        (_("Objects"), {"fields": ("actor_link", "targets_links", "related_links")}),
        (_("Data"), {"fields": ("data_json", "deleted_items")}),
    )
    readonly_fields = (
        "rendered",
        "level_name",
        "actor_link",
        "targets_links",
        "related_links",
        "data_json",
        "deleted_items",
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ActionChangeList

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Action | None:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.__dict__[LINKS] = ObjectLinks(self.admin_site, request)
        return obj


# -- trackers -----------------------------------------------------------------------------


class TrackerForm(forms.ModelForm):
    class Meta:
        model = Tracker
        fields = ("verbs", "actor_only")

    def clean_verbs(self) -> list[str]:
        verbs = self.cleaned_data["verbs"]
        if not isinstance(verbs, list) or not all(isinstance(v, str) and v for v in verbs):
            raise forms.ValidationError(
                _('Enter a list of verbs, such as ["created", "cancelled"], or [] for all verbs.')
            )
        return sorted(set(verbs))


@admin.register(Tracker)
class TrackerAdmin(BoundedAdmin, admin.ModelAdmin):
    """Who follows what. Staff may change verbs and ``actor_only`` or delete a tracker;
    trackers are created by ``actrack.track()`` (or the dashboard), not here."""

    form = TrackerForm
    list_display = (
        "user",
        "tracked_link",
        "tracked_type",
        "verb_list",
        "actor_only",
        "created",
    )
    list_display_links = ("user",)
    list_filter = ("actor_only", TrackerKindFilter, TrackedModelFilter, "created")
    list_select_related = ("user",)
    # The primary key's order (creation order) is indexed; "created" is not.
    ordering = ("-pk",)
    fields = (
        "user",
        "tracked_link",
        "tracked_type",
        "verbs",
        "actor_only",
        "created",
        "last_updated",
    )
    readonly_fields = ("user", "tracked_link", "tracked_type", "created", "last_updated")

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f"user__{get_user_model().USERNAME_FIELD}"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return TrackerChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("tracked"))
    def tracked_link(self, obj: Tracker) -> str:
        if not obj.tracked_key:
            return obj.tracked_description()
        links: ObjectLinks = obj.__dict__.get(LINKS) or ObjectLinks(self.admin_site)
        return links.one(obj.tracked_object)

    @admin.display(description=_("tracked type"))
    def tracked_type(self, obj: Tracker) -> str:
        return content_type_label(ContentType.objects.get_for_id(obj.tracked_ct_id))

    @admin.display(description=_("verbs"))
    def verb_list(self, obj: Tracker) -> str:
        return ", ".join(obj.verbs or ()) or gettext("all verbs")


# -- deleted items ------------------------------------------------------------------------


@admin.register(DeletedItem)
class DeletedItemAdmin(ReadOnlyAdminMixin, ActivityLinkMixin, BoundedAdmin, admin.ModelAdmin):
    """What remains of deleted objects: read-only, like the actions that refer to them."""

    list_display = ("description", "type_name", "object_key", "deleted_at")
    list_filter = (DeletedItemModelFilter, "deleted_at")
    search_fields = ("description",)
    # The primary key's order (deletion order) is indexed; "deleted_at" is not.
    ordering = ("-pk",)
    fields = (
        "description",
        "type_name",
        "object_key",
        "deleted_at",
        "serialization_json",
        "latest_actions",
    )
    readonly_fields = fields
    #: How many of the actions referring to an item its page shows.
    actions_shown = 20

    @admin.display(description=_("type"))
    def type_name(self, obj: DeletedItem) -> str:
        if obj.ctype_id is None:
            return "-"
        return content_type_label(ContentType.objects.get_for_id(obj.ctype_id))

    @admin.display(description=_("serialization"))
    def serialization_json(self, obj: DeletedItem) -> str:
        return pretty_json(obj.serialization)

    @admin.display(description=_("actions"))
    def latest_actions(self, obj: DeletedItem) -> str:
        ct_id = ContentType.objects.get_for_model(obj).pk
        about: Any = actions_about(Action.objects.all(), ct_id, str(obj.pk))
        actions = list(about.newest_first()[: self.actions_shown])
        if not actions:
            return gettext("No action refers to this item.")
        opts = Action._meta
        rows = []
        for action, html in zip(actions, Action.bulk_render(actions), strict=True):
            url = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[quote(action.pk)],
            )
            rows.append((url, formats.localize(local(action.timestamp)), html))
        return format_html(
            '<ul class="actrack-actions">{}</ul>',
            format_html_join("", '<li><a href="{}">{}</a> {}</li>', rows),
        )
