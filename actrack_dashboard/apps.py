from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActrackDashboardConfig(AppConfig):
    name = "actrack_dashboard"
    verbose_name = _("Activity dashboard")
    default_auto_field = "django.db.models.BigAutoField"
