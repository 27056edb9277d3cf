"""Views that log actions, for the request-scoping tests."""

from __future__ import annotations

import contextlib
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

import actrack
from actrack.models import Action
from tests.demo.models import Station

#: Held around the database work of ``log_three`` when a test sets it (see
#: test_concurrent_asgi_requests_keep_their_own_queues).
database_turn: Any = contextlib.nullcontext()


def log_three(request: HttpRequest) -> JsonResponse:
    with database_turn:
        station = Station.objects.get(pk=request.GET["station"])
    for number in range(3):
        actrack.log(station, "announced", grouping_delay=-1, number=number)
    # Nothing is written while the request runs.
    with database_turn:
        return JsonResponse({"saved_during_view": Action.objects.count()})


def log_then_fail(request: HttpRequest) -> HttpResponse:
    station = Station.objects.get(pk=request.GET["station"])
    actrack.log(station, "announced", number=1)
    raise RuntimeError("view failed after logging")


def log_in_rolled_back_block(request: HttpRequest) -> JsonResponse:
    station = Station.objects.get(pk=request.GET["station"])
    actrack.log(station, "kept")
    try:
        with transaction.atomic():
            actrack.log(station, "discarded")
            raise ValueError("roll back")
    except ValueError:
        pass
    return JsonResponse({"saved_during_view": Action.objects.count()})


async def async_log(request: HttpRequest) -> JsonResponse:
    station = await Station.objects.aget(pk=request.GET["station"])
    for number in range(2):
        await sync_to_async(actrack.log)(station, "announced", grouping_delay=-1, number=number)
    count = await Action.objects.acount()
    return JsonResponse({"saved_during_view": count})


urlpatterns = [
    path("log-three/", log_three),
    path("log-then-fail/", log_then_fail),
    path("log-rolled-back/", log_in_rolled_back_block),
    path("async-log/", async_log),
]
