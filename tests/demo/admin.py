"""The demo's models in the admin, each with actrack's "Activity" link."""

from django.contrib import admin

from actrack.admin import ActivityLinkMixin
from tests.demo.models import Journey, Line, Note, Station, Ticket, Train


@admin.register(Station)
class StationAdmin(ActivityLinkMixin, admin.ModelAdmin):
    list_display = ["name", "city"]
    search_fields = ["name", "city"]


@admin.register(Line)
class LineAdmin(ActivityLinkMixin, admin.ModelAdmin):
    list_display = ["name"]
    filter_horizontal = ["stations"]


@admin.register(Train)
class TrainAdmin(ActivityLinkMixin, admin.ModelAdmin):
    list_display = ["name", "line"]
    list_select_related = ["line"]


@admin.register(Journey)
class JourneyAdmin(ActivityLinkMixin, admin.ModelAdmin):
    list_display = ["train", "origin", "destination", "departure"]
    list_select_related = ["train", "origin", "destination"]


@admin.register(Ticket)
class TicketAdmin(ActivityLinkMixin, admin.ModelAdmin):
    list_display = ["code", "journey"]
    raw_id_fields = ["journey"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["text"]
