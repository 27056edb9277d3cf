"""The benchmark's dataset, deterministic from a seed (see PERFORMANCE.md).

Users; objects of five models; actions by users with 1-3 targets and 0-2
related objects, timestamps spread over one year and logged in time order;
50-500 trackers per ordinary user; and one user of each fixed type:

- ``dense``: follows the 500 busiest objects;
- ``sparse``: follows 50 objects from the quiet end of the busy ones;
- ``quiet``: follows 100 objects that no action mentions;
- ``heavy``: 2,000 trackers (objects and users);
- ``whole-model``: follows one whole model;
- ``verb-filtered``: follows 300 busy objects for two rare verbs only;
- ``none``: follows nothing.

Object popularity follows a Zipf-like law (weight ``rank ** -0.8``) over the
objects that have actions; a tenth of each model's objects never appear in an
action. Only ordinary users act, so the fixed-type users see no actions of
their own. Everything is drawn from ``random.Random(seed)`` in a fixed order:
the same size and seed give the same data on every machine and database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Verbs and their relative frequency; the last two are the rare ones.
VERBS: dict[str, int] = {
    "departed": 25,
    "arrived": 25,
    "updated": 20,
    "commented": 15,
    "inspected": 8,
    "delayed": 5,
    "cancelled": 2,
}
RARE_VERBS = ["delayed", "cancelled"]

#: The dataset's last timestamp: fixed, so that the data never depends on the clock.
END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=365)

FIXED_TYPES = ["dense", "sparse", "quiet", "heavy", "whole-model", "verb-filtered", "none"]


@dataclass(frozen=True)
class Size:
    name: str
    actions: int
    objects_per_model: int
    users: int
    timed_users: int  # ordinary users timed by default (``--users``)
    heavy_trackers: int = 2_000
    deletion_references: int = 10_000
    deletion_probes: int = 3  # the first counts queries, the others are timed
    write_samples: int = 30  # single log(), track and untrack calls timed
    bulk_track_samples: int = 3  # "track 100 objects" calls timed (0: not measured)
    deep_page_users: int = 4  # users timed at page 50


SIZES: dict[str, Size] = {
    # XS is hidden: the smoke test's size.
    "XS": Size(
        "XS",
        2_000,
        100,
        8,
        2,
        heavy_trackers=200,
        deletion_references=200,
        write_samples=3,
        bulk_track_samples=0,
        deep_page_users=1,
    ),
    "S": Size("S", 100_000, 2_000, 300, 20),
    "M": Size("M", 1_000_000, 10_000, 1_000, 20),
    "L": Size("L", 5_000_000, 30_000, 2_000, 20),
}


@dataclass(frozen=True)
class TrackerPlan:
    """One user's trackers: object indexes, user indexes, or a whole model."""

    objects: tuple[int, ...] = ()
    users: tuple[int, ...] = ()  # followed as actors (actor_only=True)
    model: int | None = None  # index into the five models (whole-model tracker)
    verbs: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.objects) + len(self.users) + (self.model is not None)


@dataclass(frozen=True)
class Event:
    timestamp: dt.datetime
    actor: int  # user index
    verb: str
    targets: tuple[int, ...]  # object indexes
    related: tuple[int, ...]


@dataclass
class Dataset:
    """Everything drawn from the seed, as indexes (the loaders map them to rows)."""

    size: Size
    seed: int
    #: ``(model index, number in that model)`` for every object, in creation order.
    objects: list[tuple[int, int]] = field(default_factory=list)
    active: list[int] = field(default_factory=list)  # objects that actions mention, busiest first
    quiet: list[int] = field(default_factory=list)  # objects no action mentions
    ordinary_users: int = 0
    #: user index -> user type ("ordinary" or one of FIXED_TYPES)
    user_types: list[str] = field(default_factory=list)
    trackers: list[TrackerPlan] = field(default_factory=list)
    timed: list[int] = field(default_factory=list)  # user indexes timed, fixed types first

    @property
    def users(self) -> int:
        return len(self.user_types)

    def events(self) -> Iterator[Event]:
        """The actions, oldest first (a generator: constant memory at any size)."""
        rng = random.Random(f"{self.seed}-events")
        object_weights = list(
            itertools.accumulate(1 / (r + 1) ** 0.8 for r in range(len(self.active)))
        )
        actor_weights = list(itertools.accumulate(1 / (r + 1) for r in range(self.ordinary_users)))
        actors = list(range(self.ordinary_users))
        rng.shuffle(actors)
        verbs, verb_weights = list(VERBS), list(itertools.accumulate(VERBS.values()))
        total = self.size.actions
        start = END - SPAN
        step = SPAN / total
        for number in range(total):
            picked = rng.choices(self.active, cum_weights=object_weights, k=5)
            distinct = list(dict.fromkeys(picked))
            n_targets = min(rng.randint(1, 3), len(distinct))
            n_related = min(rng.randint(0, 2), len(distinct) - n_targets)
            yield Event(
                timestamp=start + step * (number + rng.random()),
                actor=rng.choices(actors, cum_weights=actor_weights)[0],
                verb=rng.choices(verbs, cum_weights=verb_weights)[0],
                targets=tuple(distinct[:n_targets]),
                related=tuple(distinct[n_targets : n_targets + n_related]),
            )


def build(size: Size, seed: int, timed_users: int | None = None) -> Dataset:
    """The dataset's objects, users and trackers (events come from :meth:`Dataset.events`)."""
    rng = random.Random(f"{seed}-objects")
    data = Dataset(size=size, seed=seed)
    data.objects = [(m, n) for m in range(5) for n in range(size.objects_per_model)]
    indexes = list(range(len(data.objects)))
    rng.shuffle(indexes)
    n_quiet = len(indexes) // 10
    data.quiet, data.active = indexes[:n_quiet], indexes[n_quiet:]
    data.ordinary_users = size.users
    data.user_types = ["ordinary"] * size.users + FIXED_TYPES
    _plan_trackers(data, random.Random(f"{seed}-trackers"))
    wanted = size.timed_users if timed_users is None else timed_users
    ordinary = random.Random(f"{seed}-timed").sample(range(size.users), min(wanted, size.users))
    data.timed = [size.users + i for i in range(len(FIXED_TYPES))] + sorted(ordinary)
    return data


def _plan_trackers(data: Dataset, rng: random.Random) -> None:
    active, n_users = data.active, data.ordinary_users
    weights = list(itertools.accumulate(1 / (r + 1) ** 0.8 for r in range(len(active))))
    for _ in range(n_users):
        count = rng.randint(50, 500)
        n_people = min(count * 15 // 100, n_users - 1)
        popular = rng.choices(active, cum_weights=weights, k=(count - n_people) // 2)
        anywhere = rng.sample(range(len(data.objects)), min(count - n_people, len(data.objects)))
        objects = list(dict.fromkeys(popular + anywhere))[: count - n_people]
        data.trackers.append(
            TrackerPlan(objects=tuple(objects), users=tuple(rng.sample(range(n_users), n_people)))
        )
    heavy_people = min(data.size.heavy_trackers // 10, n_users)
    heavy_objects = min(data.size.heavy_trackers - heavy_people, len(active))
    plans = {
        "dense": TrackerPlan(objects=tuple(active[:500])),
        "sparse": TrackerPlan(objects=tuple(active[-50:])),
        "quiet": TrackerPlan(objects=tuple(data.quiet[:100])),
        "heavy": TrackerPlan(
            objects=tuple(rng.sample(active, heavy_objects)),
            users=tuple(rng.sample(range(n_users), heavy_people)),
        ),
        "whole-model": TrackerPlan(model=3),  # Trip: UUID keys
        "verb-filtered": TrackerPlan(objects=tuple(active[:300]), verbs=tuple(RARE_VERBS)),
        "none": TrackerPlan(),
    }
    data.trackers.extend(plans[kind] for kind in FIXED_TYPES)
