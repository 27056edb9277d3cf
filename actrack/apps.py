from django.apps import AppConfig
from django.core import checks
from django.core.signals import request_finished, request_started, setting_changed
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ActrackConfig(AppConfig):
    name = "actrack"
    verbose_name = _("Activity tracking")
    default_auto_field = "django.db.models.BigAutoField"
    actrack_ready = False

    def ready(self) -> None:
        from actrack import checks as actrack_checks
        from actrack import countfunction, logfunction, objectpage, pagefunction, queue, registry

        request_started.connect(queue.request_started, dispatch_uid="actrack-request-started")
        request_finished.connect(queue.request_finished, dispatch_uid="actrack-request-finished")
        setting_changed.connect(_settings_changed, dispatch_uid="actrack-setting-changed")
        post_migrate.connect(
            objectpage.OBJECT_PAGE.migrated, sender=self, dispatch_uid="actrack-migrated"
        )
        post_migrate.connect(
            countfunction.migrated, sender=self, dispatch_uid="actrack-count-function"
        )
        post_migrate.connect(
            pagefunction.PREPARED_PAGE.migrated, sender=self, dispatch_uid="actrack-prepared-page"
        )
        post_migrate.connect(
            logfunction.LOG_ACTION.migrated, sender=self, dispatch_uid="actrack-log-action"
        )
        checks.register(actrack_checks.check_settings, "actrack")
        checks.register(actrack_checks.check_accessors, "actrack")
        self.actrack_ready = True
        registry.install_all()


def _settings_changed(setting: str, **kwargs: object) -> None:
    if setting in ("ACTRACK", "AUTH_USER_MODEL"):
        from actrack import handlers
        from actrack.conf import app_settings

        app_settings.clear()
        handlers.clear_caches()
    if setting == "ACTRACK":
        from actrack import registry

        registry.install_all()
