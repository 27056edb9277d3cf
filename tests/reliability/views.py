"""Views logging actions, for the fault and ASGI tests (``@pytest.mark.urls``)."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.urls import path

import actrack
from actrack.models import Action
from actrack.queue import current_queue
from tests.demo.models import Station


def _queued() -> int:
    queue = current_queue()
    return -1 if queue is None else len(queue.entries)


def log_some(request: HttpRequest) -> JsonResponse:
    """Log ``n`` actions tagged ``tag``, each targeting the station; sleep ``pause`` between."""
    station = Station.objects.get(pk=request.GET["station"])
    tag, count = request.GET["tag"], int(request.GET.get("n", "3"))
    pause = float(request.GET.get("pause", "0"))
    queued_at_start = _queued()
    for number in range(count):
        actrack.log(station, "announced", targets=station, grouping_delay=-1, tag=tag, n=number)
        if pause:
            time.sleep(pause)
    return JsonResponse(
        {
            "queued_at_start": queued_at_start,
            "queued_at_end": _queued(),
            "saved_during_view": Action.objects.filter(data__tag=tag).count(),
        }
    )


async def alog_some(request: HttpRequest) -> JsonResponse:
    """The same from an async view, yielding to the other requests between actions."""
    station = await Station.objects.aget(pk=request.GET["station"])
    tag, count = request.GET["tag"], int(request.GET.get("n", "3"))
    queued_at_start = await sync_to_async(_queued)()
    for number in range(count):
        await sync_to_async(actrack.log)(
            station, "announced", targets=station, grouping_delay=-1, tag=tag, n=number
        )
        await asyncio.sleep(0.001)
    return JsonResponse(
        {
            "queued_at_start": queued_at_start,
            "queued_at_end": await sync_to_async(_queued)(),
            "saved_during_view": await Action.objects.filter(data__tag=tag).acount(),
        }
    )


urlpatterns = [
    path("log/", log_some),
    path("alog/", alog_some),
]


def noop(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"stations": Station.objects.count()})


urlpatterns.append(path("noop/", noop))
