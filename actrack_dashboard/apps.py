from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class ActrackDashboardConfig(AppConfig):
    name = "actrack_dashboard"
    verbose_name = _("Activity dashboard")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from actrack_dashboard import checks as dashboard_checks

        checks.register(dashboard_checks.check_settings, "actrack_dashboard")
        checks.register(dashboard_checks.check_htmx, "actrack_dashboard")
