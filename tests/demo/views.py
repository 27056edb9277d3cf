"""Views of the demo site: the home page embedding the dashboard's partials."""

from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from tests.demo.models import Line, Station, Train


class HomeView(TemplateView):
    template_name = "demo/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["trains"] = list(Train.objects.select_related("line"))
        context["stations"] = list(Station.objects.all())
        context["lines"] = list(Line.objects.prefetch_related("stations"))
        return context
