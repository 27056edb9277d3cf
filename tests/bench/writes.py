"""The timed writes: single log() and action.send, tracking, and deletion."""

from __future__ import annotations

import random
from typing import Any, TextIO

from django.db.models import Q

import actrack
from actrack.logfunction import INLINE_LOGS
from actrack.models import Action
from tests.bench.dataset import Dataset
from tests.bench.loading import CHUNK, Loaded, Progress
from tests.bench.models import ActrackProbe, ActstreamProbe
from tests.bench.results import Results
from tests.bench.timing import pair

#: ``log()`` with what ``action.send`` can hold: one target and one related object.
LOG_AS_SEND = "log() one action, one target and one related (outside a batch)"

#: Untimed single writes past ``INLINE_LOGS`` before the timed ones: the function's
#: first calls in a session are slower (measured on fresh sessions: about six).
WARM_AFTER_INLINE = 8


class WritePhases:
    """The write phases of :class:`~tests.bench.scenarios.Runner`."""

    data: Dataset
    loaded: Loaded
    results: Results
    stream: TextIO | None

    def _writer(self) -> tuple[Any, list[Any]]:
        """An ordinary timed user, and objects it tracks in neither library."""
        index = next(i for i in self.data.timed if self.data.user_types[i] == "ordinary")
        tracked = set(self.data.trackers[index].objects)
        spare = [i for i in self.data.quiet + self.data.active[::-1] if i not in tracked]
        return self.loaded.users[index], [self.loaded.objects[i] for i in spare]

    def time_writes(self) -> None:
        from actstream import action
        from actstream.actions import follow, unfollow

        user, spare = self._writer()
        rng = random.Random(f"{self.data.seed}-writes")
        busy = [self.loaded.objects[i] for i in self.data.active[:50]]
        self._warm_single_writes(user, busy)
        # Each write runs on fresh objects: the first call counts queries, the others are timed.
        samples = self.data.size.write_samples
        for sample in range(samples + 1):
            a, b, c = rng.sample(busy, 3)
            rows = [
                (
                    "log() one action (outside a batch)",
                    lambda a=a, b=b, c=c: actrack.log(
                        user, "commented", targets=[a, b], related=[c]
                    ),
                ),
                # The same information on both sides: one target, one related object.
                (
                    LOG_AS_SEND,
                    lambda a=a, c=c: actrack.log(user, "commented", targets=[a], related=[c]),
                ),
            ]
            # Both rows write on the same objects: the first of a round reads their
            # index pages cold (on SQLite at L, about half of what set the two rows
            # apart), so each row goes first in every other round.
            for operation, write in rows if sample % 2 == 0 else rows[::-1]:
                comparison = pair(
                    write,
                    lambda a=a, c=c: action.send(
                        user, verb="commented", target=a, action_object=c
                    ),
                    count=sample == 0,
                    sample=sample,
                )
                self.results.add(operation, "one user", comparison)
        for sample, obj in enumerate(spare[: samples + 1]):
            track = pair(
                lambda obj=obj: actrack.track(user, obj, actor_only=False),
                lambda obj=obj: follow(user, obj, actor_only=False, send_action=False),
                count=sample == 0,
                sample=sample,
            )
            untrack = pair(
                lambda obj=obj: actrack.untrack(user, obj),
                lambda obj=obj: unfollow(user, obj),
                count=sample == 0,
                sample=sample,
            )
            self.results.add("track one object", "one user", track)
            self.results.add("untrack one object", "one user", untrack)
        self._time_bulk_tracking(user, spare[samples + 1 :])

    def _warm_single_writes(self, user: Any, busy: list[Any]) -> None:
        """Untimed single writes of both libraries before the timed ones.

        One action at a time outside requests is what long-lived sessions
        write (a worker's, a pool's): on PostgreSQL actrack sends a session's
        first ``INLINE_LOGS`` such writes as a statement and calls its
        function after (``actrack.logfunction``), whose first calls in a
        session cost more. Both libraries get the same untimed writes.
        """
        from actstream import action

        rng = random.Random(f"{self.data.seed}-warm-writes")
        for _ in range(INLINE_LOGS + WARM_AFTER_INLINE):
            a, c = rng.sample(busy, 2)
            actrack.log(user, "commented", targets=[a], related=[c])
            action.send(user, verb="commented", target=a, action_object=c)

    def _time_bulk_tracking(self, user: Any, spare: list[Any]) -> None:
        from actstream.actions import follow, unfollow

        if not self.data.size.bulk_track_samples:
            return
        count = self.data.size.bulk_track_samples + 1
        groups = [spare[i : i + 100] for i in range(0, 100 * count, 100)]
        for sample, objs in enumerate(g for g in groups if len(g) == 100):
            track = pair(
                lambda objs=objs: actrack.track(user, objs, actor_only=False),
                lambda objs=objs: [
                    follow(user, o, actor_only=False, send_action=False) for o in objs
                ],
                count=sample == 0,
                sample=sample,
            )
            untrack = pair(
                lambda objs=objs: actrack.untrack(user, objs),
                lambda objs=objs: [unfollow(user, o) for o in objs],
                count=sample == 0,
                sample=sample,
            )
            self.results.add("track 100 objects (actstream: 100 follow())", "one user", track)
            self.results.add(
                "untrack 100 objects (actstream: 100 unfollow())", "one user", untrack
            )

    def time_deletion(self) -> None:
        """Probe 0 of each library counts the queries, the others are timed."""
        from actstream.models import Action as StreamAction

        size = self.data.size
        actrack_probes = ActrackProbe.objects.bulk_create(
            [ActrackProbe(name=f"probe {i}") for i in range(size.deletion_probes)]
        )
        actstream_probes = ActstreamProbe.objects.bulk_create(
            [ActstreamProbe(name=f"probe {i}") for i in range(size.deletion_probes)]
        )
        probes = list(zip(actrack_probes, actstream_probes, strict=True))
        progress = Progress("deletion probes", len(probes), self.stream)
        for done, (a_probe, b_probe) in enumerate(probes, start=1):
            self._refer(a_probe, b_probe, size.deletion_references, done)
            progress.update(done)
        progress.close()
        before = Action.objects.count()
        label = f"delete an object with {size.deletion_references:,} references"
        for sample, (a_probe, b_probe) in enumerate(probes):
            comparison = pair(a_probe.delete, b_probe.delete, count=sample == 0, sample=sample)
            self.results.add(label, "one object", comparison)
        lost = before - Action.objects.count()
        left = StreamAction.objects.filter(
            Q(target_content_type__model="actstreamprobe")
            | Q(action_object_content_type__model="actstreamprobe")
        ).count()
        self.results.notes.append(
            f"{label}: actrack keeps the actions, now pointing to a DeletedItem ({lost:,} "
            f"deleted); django-activity-stream deletes them ({left:,} left)."
        )

    def _refer(self, a_probe: Any, b_probe: Any, count: int, seed: int) -> None:
        """``count`` actions mentioning each probe (a target in 2 of 3, else related)."""
        from actstream.models import Action as StreamAction
        from django.contrib.auth import get_user_model
        from django.contrib.contenttypes.models import ContentType

        rng = random.Random(f"{self.data.seed}-probe-{seed}")
        users = self.loaded.users[: self.data.ordinary_users]
        others = self.loaded.objects[:50]
        user_ct = ContentType.objects.get_for_model(get_user_model()).pk
        probe_ct = ContentType.objects.get_for_model(ActstreamProbe).pk
        rows = []
        for start in range(0, count, CHUNK):
            with actrack.batch():
                for n in range(start, min(count, start + CHUNK)):
                    actor, as_target = rng.choice(users), n % 3 != 2
                    actrack.log(
                        actor,
                        "inspected",
                        targets=[a_probe] if as_target else [others[n % 50]],
                        related=None if as_target else [a_probe],
                        grouping_delay=-1,
                    )
                    row = StreamAction(
                        actor_content_type_id=user_ct,
                        actor_object_id=str(actor.pk),
                        verb="inspected",
                    )
                    if as_target:
                        row.target_content_type_id = probe_ct
                        row.target_object_id = str(b_probe.pk)
                    else:
                        row.action_object_content_type_id = probe_ct
                        row.action_object_object_id = str(b_probe.pk)
                    rows.append(row)
        StreamAction.objects.bulk_create(rows, batch_size=CHUNK)
