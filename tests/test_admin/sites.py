"""A second admin site for the tests: a custom site class with the dashboard mixin,
a ModelAdmin with ActivityLinkMixin and plain ModelAdmins of demo models."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from actrack.admin import ActionAdmin, ActivityLinkMixin, DeletedItemAdmin, TrackerAdmin
from actrack.models import Action, DeletedItem, Tracker
from actrack_dashboard.admin import ActivityDashboardSiteMixin
from tests.demo.models import Note, Station, Train


class CustomAdminSite(ActivityDashboardSiteMixin, admin.AdminSite):
    site_header = "Railway back office"


class StationAdmin(ActivityLinkMixin, admin.ModelAdmin):
    """Opts in explicitly."""


class NoteAdmin(ActivityLinkMixin, admin.ModelAdmin):
    """Opts in although notes are not connected to actrack."""


class QuietTrainAdmin(admin.ModelAdmin):
    """Trains are connected: they get the link automatically when the template
    override is found, unless an admin says no like this one."""

    actrack_activity_link = False


site = CustomAdminSite(name="custom_admin")
site.register(Action, ActionAdmin)
site.register(Tracker, TrackerAdmin)
site.register(DeletedItem, DeletedItemAdmin)
site.register(get_user_model(), UserAdmin)
site.register(Group, GroupAdmin)
site.register(Station, StationAdmin)
site.register(Note, NoteAdmin)
site.register(Train, admin.ModelAdmin)

quiet_site = admin.AdminSite(name="quiet_admin")
quiet_site.register(Action, ActionAdmin)
quiet_site.register(Train, QuietTrainAdmin)
