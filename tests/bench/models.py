"""The benchmark's own sample models.

Five models for the dataset (``Trip`` has a UUID key, so 36-character keys
are exercised), each with a ``__str__`` that reads no other row, so that
rendering costs what the two libraries make it cost and nothing more. The two
probe models are only ever deleted: ``ActrackProbe`` is connected to actrack
alone and ``ActstreamProbe`` registered with django-activity-stream alone, so
that timing the deletion of one measures one library's machinery only.
"""

from __future__ import annotations

import uuid

from django.db import models

import actrack


class BenchObject(models.Model):
    name = models.CharField("name", max_length=100)

    class Meta:
        abstract = True
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


@actrack.connect
class Depot(BenchObject):
    pass


@actrack.connect
class Route(BenchObject):
    pass


@actrack.connect
class Locomotive(BenchObject):
    pass


@actrack.connect
class Trip(BenchObject):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


@actrack.connect
class Booking(BenchObject):
    pass


@actrack.connect
class ActrackProbe(BenchObject):
    """Deleted while 10,000 actions refer to it (connected to actrack only)."""


class ActstreamProbe(BenchObject):
    """Deleted while 10,000 actions refer to it (registered with actstream only)."""


DATASET_MODELS: list[type[BenchObject]] = [Depot, Route, Locomotive, Trip, Booking]
