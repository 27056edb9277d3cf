"""``python manage.py actrack_prune``: delete old and/or low-level actions, in batches.

Examples::

    manage.py actrack_prune --older-than-days 365
    manage.py actrack_prune --before 2024-01-01 --below-level INFO --dry-run
    manage.py actrack_prune --older-than-days 30 --below-level DEBUG --batch-size 1000

With a date criterion and a level, an action is pruned when it matches both
(older than the date *and* below the level). Each batch is its own
transaction: the batch's action ids are selected (and locked on PostgreSQL,
so that a writer grouping into one of them waits), then its target links,
related links and read rows are deleted with one statement each, then the
actions. Nothing but ids is loaded. Afterwards, deleted items that no action
(actor, target, related) and no tracker refers to any more are deleted with
one statement. ``--dry-run`` counts and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Cast
from django.utils import timezone

from actrack.conf import app_settings
from actrack.models import Action, ActionRelated, ActionTarget, DeletedItem, ReadAction, Tracker

DEFAULT_BATCH_SIZE = 5000
#: Ids of a batch are bound as query parameters: stay under SQLite's and
#: PostgreSQL's limits on parameters per statement.
MAX_BATCH_SIZE = 30000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = (
        "Delete actions older than a date (--before / --older-than-days) and/or below a "
        "level (--below-level), in batches, then the deleted items nothing refers to any more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        when = parser.add_mutually_exclusive_group()
        when.add_argument(
            "--before",
            metavar="YYYY-MM-DD",
            help="Prune actions logged before this day (midnight, in TIME_ZONE).",
        )
        when.add_argument(
            "--older-than-days",
            metavar="N",
            help="Prune actions logged more than N days ago.",
        )
        parser.add_argument(
            "--below-level",
            metavar="LEVEL",
            help="Prune actions whose level is below this one (a level name or a number).",
        )
        parser.add_argument(
            "--batch-size",
            default=str(DEFAULT_BATCH_SIZE),
            metavar="N",
            help=f"Actions deleted per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted; change nothing.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help='The database to prune (default: "default").',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        if using not in connections:
            raise CommandError(f"Unknown database {using!r}.")
        criteria = self.criteria(options)
        batch_size = self.batch_size(options["batch_size"])
        verbosity = int(options.get("verbosity", 1))
        actions = Action.objects.using(using).filter(criteria)
        if options["dry_run"]:
            self.dry_run(actions, criteria, using)
            return
        total = actions.count()
        pruned = 0
        while True:
            deleted = _prune_batch(actions, using, batch_size)
            if not deleted:
                break
            pruned += deleted
            if verbosity >= 1:
                percent = 100 * min(pruned, total) // total if total else 100
                self.stderr.write(
                    f"pruned {pruned}/{max(total, pruned)} actions ({percent}%)",
                    style_func=_plain,
                )
        items = unreferenced_deleted_items(using).delete()[0]
        if verbosity >= 1:
            self.stdout.write(
                f"Pruned {pruned} action(s) and {items} unreferenced deleted item(s)."
            )

    # --- options ---------------------------------------------------------------------------

    def criteria(self, options: dict[str, Any]) -> Q:
        parts: list[Q] = []
        if options.get("before") is not None:
            parts.append(Q(timestamp__lt=_start_of(_parse_date(options["before"]))))
        if options.get("older_than_days") is not None:
            days = _parse_int(options["older_than_days"], "--older-than-days", minimum=0)
            try:
                cutoff = timezone.now() - dt.timedelta(days=days)
            except OverflowError as exc:
                raise CommandError(f"--older-than-days {days} goes back too far.") from exc
            parts.append(Q(timestamp__lt=cutoff))
        if options.get("below_level") is not None:
            parts.append(Q(level__lt=_parse_level(options["below_level"])))
        if not parts:
            raise CommandError(
                "Nothing to prune by: give --before YYYY-MM-DD or --older-than-days N, "
                "and/or --below-level LEVEL."
            )
        condition = parts[0]
        for part in parts[1:]:
            condition &= part
        return condition

    def batch_size(self, value: Any) -> int:
        size = _parse_int(value, "--batch-size", minimum=1)
        if size > MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be at most {MAX_BATCH_SIZE}, got {size}.")
        return size

    # --- dry run -------------------------------------------------------------------------

    def dry_run(self, actions: models.QuerySet[Action], criteria: Q, using: str) -> None:
        doomed = actions.values("pk")
        counts = {
            "actions": actions.count(),
            "target links": ActionTarget.objects.using(using).filter(action_id__in=doomed).count(),
            "related links": ActionRelated.objects.using(using)
            .filter(action_id__in=doomed)
            .count(),
            "read rows": ReadAction.objects.using(using).filter(action_id__in=doomed).count(),
            "deleted items": unreferenced_deleted_items(using, kept=~criteria).count(),
        }
        summary = ", ".join(f"{count} {what}" for what, count in counts.items())
        self.stdout.write(f"Dry run, nothing deleted. Would delete: {summary}.")


def _prune_batch(actions: models.QuerySet[Action], using: str, size: int) -> int:
    """Delete the next ``size`` actions of ``actions`` (lowest ids first) in one transaction."""
    with transaction.atomic(using=using):
        ids = list(actions.order_by("pk").select_for_update().values_list("pk", flat=True)[:size])
        if not ids:
            return 0
        for model in (ActionTarget, ActionRelated, ReadAction):
            model._default_manager.using(using).filter(action_id__in=ids)._raw_delete(using)
        # The rows pointing at these actions are gone: no cascade to collect.
        return Action.objects.using(using).filter(pk__in=ids)._raw_delete(using)


def unreferenced_deleted_items(using: str, kept: Q | None = None) -> models.QuerySet[DeletedItem]:
    """Deleted items no action or tracker refers to.

    ``kept`` restricts the actions that count as references (the dry run
    passes the actions that the prune would keep).
    """
    ct = ContentType.objects.db_manager(using).get_for_model(DeletedItem)
    key = OuterRef("key")
    acting = Action.objects.using(using).filter(actor_ct_id=ct.pk, actor_key=key)
    targets = ActionTarget.objects.using(using).filter(obj_ct_id=ct.pk, obj_key=key)
    related = ActionRelated.objects.using(using).filter(obj_ct_id=ct.pk, obj_key=key)
    if kept is not None:
        acting = acting.filter(kept)
        kept_ids = Action.objects.using(using).filter(kept).values("pk")
        targets = targets.filter(action_id__in=kept_ids)
        related = related.filter(action_id__in=kept_ids)
    trackers = Tracker.objects.using(using).filter(tracked_ct_id=ct.pk, tracked_key=key)
    return (
        DeletedItem.objects.using(using)
        .alias(key=Cast("pk", output_field=models.CharField()))
        .exclude(Exists(acting.order_by()))
        .exclude(Exists(targets.order_by()))
        .exclude(Exists(related.order_by()))
        .exclude(Exists(trackers.order_by()))
    )


def _parse_date(value: str) -> dt.date:
    text = str(value).strip()
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--before takes a date as YYYY-MM-DD, got {value!r}.") from exc


def _start_of(day: dt.date) -> dt.datetime:
    moment = dt.datetime.combine(day, dt.time.min)
    if timezone.is_aware(timezone.now()):
        return timezone.make_aware(moment)
    return moment


def _parse_int(value: Any, option: str, *, minimum: int) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d{1,18}", text):
        raise CommandError(f"{option} takes a whole number, got {value!r}.")
    number = int(text)
    if number < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise CommandError(f"{option} must be {what}, got {number}.")
    return number


def _parse_level(value: Any) -> int:
    text = str(value).strip()
    levels = app_settings.LEVELS
    by_name = {str(name).upper(): level for name, level in levels.items()}
    if text.upper() in by_name:
        return int(by_name[text.upper()])
    if re.fullmatch(r"\d{1,5}", text) and int(text) <= 32767:
        return int(text)
    known = ", ".join(f"{name} ({level})" for name, level in sorted(levels.items(), key=_second))
    raise CommandError(
        f"Unknown level {value!r}: give a level name ({known}) or a number from 0 to 32767."
    )


def _second(item: tuple[str, int]) -> int:
    return item[1]
