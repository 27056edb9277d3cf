from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "tests.demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Railway demo"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        import actrack

        actrack.connect(get_user_model())
