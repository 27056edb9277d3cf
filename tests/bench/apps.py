from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "tests.bench"
    label = "bench"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "actrack benchmark"

    def ready(self) -> None:
        # django-activity-stream wants every model that appears in its actions
        # registered (it adds GenericRelations to them), from an AppConfig.ready().
        from actstream import registry
        from django.contrib.auth import get_user_model

        from tests.bench.models import ActstreamProbe, Booking, Depot, Locomotive, Route, Trip

        registry.register(get_user_model(), Depot, Route, Locomotive, Trip, Booking)
        registry.register(ActstreamProbe)
