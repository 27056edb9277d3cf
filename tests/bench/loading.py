"""Loading one dataset into actrack (public API) and django-activity-stream.

actrack is loaded the way a site would load it: ``actrack.log()`` inside
``actrack.batch()``, 5,000 actions per batch, and ``actrack.track()`` with
every object of a user in one call. The time spent in those calls gives the
bulk logging throughput.

django-activity-stream has no bulk API (``action.send`` writes one row per
call), so its ``Action`` and ``Follow`` rows are written with
``bulk_create``, exactly as ``action_handler`` and ``follow`` would fill them.
Its ``Action`` has one target and one action object: an action's first
target becomes the target and its first related object the action object.
Its actions get the ids actrack's actions get (the event's number), so pages
of the two libraries can be compared.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connection

import actrack
from tests.bench.dataset import Dataset, Event
from tests.bench.models import DATASET_MODELS, Trip

CHUNK = 5_000


class Progress:
    """A plain progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total = label, max(total, 1)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.shown = -1.0
        self.decile = -1

    def update(self, done: int) -> None:
        now = time.perf_counter()
        fraction = min(done / self.total, 1.0)
        if self.tty and now - self.shown < 0.2 and done < self.total:
            return
        if not self.tty and int(fraction * 10) == self.decile:
            return
        self.shown, self.decile = now, int(fraction * 10)
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        bar = "#" * int(fraction * 30)
        line = (
            f"{self.label:<24} [{bar:<30}] {fraction:4.0%} {done:,}/{self.total:,} "
            f"{rate:,.0f}/s ETA {eta:,.0f}s"
        )
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        self.update(self.total)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Loaded:
    """The rows of a loaded dataset and what loading them cost."""

    users: list[Any] = field(default_factory=list)
    objects: list[Any] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    same_ids: bool = False  # actrack action id == actstream action id == event number


def load(data: Dataset, stream: TextIO | None = None) -> Loaded:
    loaded = Loaded()
    _create_users_and_objects(data, loaded)
    _load_events(data, loaded, stream)
    _load_trackers(data, loaded, stream)
    return loaded


def _create_users_and_objects(data: Dataset, loaded: Loaded) -> None:
    started = time.perf_counter()
    user_model = get_user_model()
    names = [f"bench{i:05d}" for i in range(data.ordinary_users)]
    names += [f"bench-{kind}" for kind in data.user_types[data.ordinary_users :]]
    loaded.users = user_model.objects.bulk_create(
        [user_model(username=name, password="!") for name in names], batch_size=2_000
    )
    rng = random.Random(f"{data.seed}-uuids")
    rows = []
    for model_index, number in data.objects:
        model = DATASET_MODELS[model_index]
        row = model(name=f"{model.__name__} {number}")
        if model is Trip:
            row.pk = uuid.UUID(int=rng.getrandbits(128), version=4)
        rows.append(row)
    for model in DATASET_MODELS:
        model.objects.bulk_create([r for r in rows if type(r) is model], batch_size=2_000)
    loaded.objects = rows
    loaded.seconds["users and objects"] = time.perf_counter() - started


def _load_events(data: Dataset, loaded: Loaded, stream: TextIO | None) -> None:
    from actstream.models import Action as StreamAction

    progress = Progress("actions (both)", data.size.actions, stream)
    user_ct = ContentType.objects.get_for_model(get_user_model()).pk
    cts = [ContentType.objects.get_for_model(m).pk for m in DATASET_MODELS]
    spent = {"actrack": 0.0, "actstream": 0.0}
    chunk: list[Event] = []
    done = 0
    for event in data.events():
        chunk.append(event)
        if len(chunk) == CHUNK:
            _load_chunk(chunk, done, loaded, spent, user_ct, cts)
            done += len(chunk)
            chunk = []
            progress.update(done)
    if chunk:
        _load_chunk(chunk, done, loaded, spent, user_ct, cts)
        done += len(chunk)
    progress.close()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [StreamAction]):
            cursor.execute(sql)
    spent["actstream"] += time.perf_counter() - started
    loaded.seconds["actrack actions"] = spent["actrack"]
    loaded.seconds["actstream actions"] = spent["actstream"]
    loaded.counts["actions"] = done
    from actrack.models import Action, ActionRelated, ActionTarget

    loaded.counts["actrack targets"] = ActionTarget.objects.count()
    loaded.counts["actrack related"] = ActionRelated.objects.count()
    last = Action.objects.order_by("-pk").values_list("pk", flat=True).first()
    loaded.same_ids = Action.objects.count() == done and last == done


def _load_chunk(
    chunk: list[Event],
    first: int,
    loaded: Loaded,
    spent: dict[str, float],
    user_ct: int,
    cts: list[int],
) -> None:
    from actstream.models import Action as StreamAction

    users, objects = loaded.users, loaded.objects
    started = time.perf_counter()
    with actrack.batch():
        for event in chunk:
            actrack.log(
                users[event.actor],
                event.verb,
                targets=[objects[i] for i in event.targets],
                related=[objects[i] for i in event.related] or None,
                timestamp=event.timestamp,
                grouping_delay=-1,
            )
    middle = time.perf_counter()
    rows = []
    for number, event in enumerate(chunk, start=first + 1):
        row = StreamAction(
            id=number,
            actor_content_type_id=user_ct,
            actor_object_id=str(users[event.actor].pk),
            verb=event.verb,
            timestamp=event.timestamp,
            public=True,
        )
        target = objects[event.targets[0]]
        row.target_content_type_id = cts[DATASET_MODELS.index(type(target))]
        row.target_object_id = str(target.pk)
        if event.related:
            related = objects[event.related[0]]
            row.action_object_content_type_id = cts[DATASET_MODELS.index(type(related))]
            row.action_object_object_id = str(related.pk)
        rows.append(row)
    StreamAction.objects.bulk_create(rows, batch_size=CHUNK)
    ended = time.perf_counter()
    spent["actrack"] += middle - started
    spent["actstream"] += ended - middle


def _load_trackers(data: Dataset, loaded: Loaded, stream: TextIO | None) -> None:
    from actstream.models import Follow

    progress = Progress("trackers (both)", data.users, stream)
    user_ct = ContentType.objects.get_for_model(get_user_model()).pk
    cts = [ContentType.objects.get_for_model(m).pk for m in DATASET_MODELS]
    spent = {"actrack": 0.0, "actstream": 0.0}
    trackers = follows = 0
    for index, plan in enumerate(data.trackers):
        user = loaded.users[index]
        objs = [loaded.objects[i] for i in plan.objects]
        people = [loaded.users[i] for i in plan.users]
        verbs = list(plan.verbs) or None
        started = time.perf_counter()
        if objs:
            actrack.track(user, objs, verbs=verbs, actor_only=False)
        if people:
            actrack.track(user, people, verbs=verbs, actor_only=True)
        if plan.model is not None:
            actrack.track(user, DATASET_MODELS[plan.model], verbs=verbs, actor_only=False)
        middle = time.perf_counter()
        rows = [
            Follow(
                user=user,
                content_type_id=cts[DATASET_MODELS.index(type(obj))],
                object_id=str(obj.pk),
                actor_only=False,
            )
            for obj in objs
        ]
        rows += [
            Follow(user=user, content_type_id=user_ct, object_id=str(p.pk), actor_only=True)
            for p in people
        ]
        Follow.objects.bulk_create(rows)
        spent["actrack"] += middle - started
        spent["actstream"] += time.perf_counter() - middle
        trackers += plan.count
        follows += len(rows)
        progress.update(index + 1)
    progress.close()
    loaded.seconds["actrack trackers"] = spent["actrack"]
    loaded.seconds["actstream follows"] = spent["actstream"]
    loaded.counts["trackers"] = trackers
    loaded.counts["follows"] = follows
