"""``manage.py actrack_prune``: retention by date and/or level, in batches."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import actrack
from actrack.models import (
    Action,
    ActionRelated,
    ActionTarget,
    DeletedItem,
    ReadAction,
    ReadMark,
    Tracker,
)
from tests.conftest import make_station, make_train, make_user
from tests.reliability.conftest import snapshot

pytestmark = pytest.mark.django_db

NOW = timezone.now()
ALL_MODELS = (Action, ActionTarget, ActionRelated, ReadAction, ReadMark, Tracker, DeletedItem)


def prune(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("actrack_prune", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def log_at(days_ago: float, verb: str = "passed", **kwargs: Any) -> Action:
    kwargs.setdefault("grouping_delay", -1)
    actor = kwargs.pop("actor", None) or make_train()
    action = actrack.log(actor, verb, timestamp=NOW - dt.timedelta(days=days_ago), **kwargs)
    assert action is not None
    return action


def remaining() -> set[int]:
    return set(Action.objects.values_list("pk", flat=True))


# --- invalid input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Nothing to prune by"),
        (("--dry-run",), "Nothing to prune by"),
        (("--before", "2024-13-01"), "YYYY-MM-DD"),
        (("--before", "2024-02-30"), "YYYY-MM-DD"),
        (("--before", "yesterday"), "YYYY-MM-DD"),
        (("--before", "2024-1-1"), "YYYY-MM-DD"),
        (("--before", "2024-01-01T00:00"), "YYYY-MM-DD"),
        (("--older-than-days", "-1"), "at least 0"),
        (("--older-than-days", "ten"), "whole number"),
        (("--older-than-days", "99999999999"), "too far"),
        (("--below-level", "LOUD"), "Unknown level"),
        (("--below-level", "-5"), "Unknown level"),
        (("--below-level", "40000"), "Unknown level"),
        (("--older-than-days", "1", "--batch-size", "0"), "positive"),
        (("--older-than-days", "1", "--batch-size", "-3"), "positive"),
        (("--older-than-days", "1", "--batch-size", "x"), "whole number"),
        (("--older-than-days", "1", "--batch-size", "1000000"), "at most"),
        (("--older-than-days", "1", "--database", "nowhere"), "Unknown database"),
        (("--before", "2024-01-01", "--older-than-days", "3"), "not allowed with"),
    ],
)
def test_invalid_input_is_a_clear_command_error(args: tuple[str, ...], message: str) -> None:
    log_at(400)
    with pytest.raises(CommandError, match=message):
        prune(*args)
    assert Action.objects.count() == 1


# --- each criterion ---------------------------------------------------------------------


def test_before_prunes_actions_logged_before_midnight_of_that_day() -> None:
    station = make_station()
    old = log_at(10, targets=station, related=make_station())
    new = log_at(1, targets=station)
    day = timezone.localdate(NOW - dt.timedelta(days=5)).isoformat()
    out, _ = prune("--before", day)
    assert remaining() == {new.pk}
    assert not ActionTarget.objects.filter(action_id=old.pk).exists()
    assert not ActionRelated.objects.filter(action_id=old.pk).exists()
    assert ActionTarget.objects.filter(action_id=new.pk).count() == 1
    assert "Pruned 1 action(s)" in out


def test_before_is_exclusive_of_the_day_itself() -> None:
    today = timezone.localdate()
    midnight = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
    at_midnight = actrack.log(make_train(), "x", timestamp=midnight, grouping_delay=-1)
    before = actrack.log(make_train(), "x", timestamp=midnight - dt.timedelta(microseconds=1))
    assert at_midnight is not None and before is not None
    prune("--before", today.isoformat())
    assert remaining() == {at_midnight.pk}


def test_older_than_days() -> None:
    old, new = log_at(31), log_at(29)
    prune("--older-than-days", "30")
    assert remaining() == {new.pk}
    assert old.pk not in remaining()


def test_below_level_by_name_case_insensitive_and_by_number() -> None:
    debug = log_at(0, level=actrack.level.DEBUG)
    info = log_at(0, level=actrack.level.INFO)
    warning = log_at(0, level=actrack.level.WARNING)
    prune("--below-level", "info")
    assert remaining() == {info.pk, warning.pk}
    assert debug.pk not in remaining()
    prune("--below-level", "41")
    assert remaining() == set()


def test_date_and_level_together_prune_what_matches_both() -> None:
    old_debug = log_at(40, level=actrack.level.DEBUG)
    old_info = log_at(40, level=actrack.level.INFO)
    new_debug = log_at(1, level=actrack.level.DEBUG)
    prune("--older-than-days", "30", "--below-level", "INFO")
    assert remaining() == {old_info.pk, new_debug.pk}
    assert old_debug.pk not in remaining()


def test_read_rows_of_pruned_actions_go_with_them_and_read_marks_stay() -> None:
    reader = make_user()
    train = make_train()
    actrack.track(reader, train)
    Tracker.objects.update(created=NOW - dt.timedelta(days=100))
    old = log_at(50, actor=train)
    new = log_at(1, actor=train)
    assert Action.bulk_mark_read_for(reader, [old, new], force=True) == [True, True]
    actrack.readstate.mark_all_read(reader)
    prune("--older-than-days", "30")
    assert list(ReadAction.objects.values_list("action_id", flat=True)) == [new.pk]
    assert ReadMark.objects.filter(user=reader).exists()
    assert Tracker.objects.filter(user=reader).count() == 1


# --- dry run ----------------------------------------------------------------------------


def test_dry_run_counts_and_changes_nothing() -> None:
    reader = make_user()
    train, station = make_train(), make_station()
    actrack.track(reader, train)
    Tracker.objects.update(created=NOW - dt.timedelta(days=100))
    old = [log_at(60 + n, actor=train, targets=station, related=make_station()) for n in range(3)]
    log_at(1, actor=train, targets=station)
    Action.bulk_mark_read_for(reader, old[:2], force=True)
    gone = make_train()
    log_at(70, actor=gone)
    gone.delete()  # its only action is old: its deleted item would go too
    before = snapshot(*ALL_MODELS)
    with CaptureQueriesContext(connection) as queries:
        out, err = prune("--older-than-days", "30", "--dry-run")
    assert snapshot(*ALL_MODELS) == before
    assert not [
        q for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
    ]
    assert out.strip() == (
        "Dry run, nothing deleted. Would delete: 4 actions, 3 target links, "
        "3 related links, 2 read rows, 1 deleted items."
    )
    assert err == ""
    # ... and the real run deletes exactly that.
    out, _ = prune("--older-than-days", "30")
    assert "Pruned 4 action(s) and 1 unreferenced deleted item(s)." in out
    assert Action.objects.count() == 1


# --- batches and progress ---------------------------------------------------------------


def test_small_batches_each_in_its_own_transaction_with_progress() -> None:
    station = make_station()
    doomed = [log_at(100, targets=station, related=make_station(), n=n) for n in range(10)]
    kept = log_at(1, targets=station)
    with CaptureQueriesContext(connection) as queries:
        _, err = prune("--older-than-days", "30", "--batch-size", "3")
    assert remaining() == {kept.pk}
    assert ActionTarget.objects.count() == ActionRelated.objects.count() + 1 == 1
    assert err.splitlines() == [
        "pruned 3/10 actions (30%)",
        "pruned 6/10 actions (60%)",
        "pruned 9/10 actions (90%)",
        "pruned 10/10 actions (100%)",
    ]
    statements = [q["sql"] for q in queries]
    # One transaction per batch (savepoints inside the test's transaction), plus the
    # final empty one that finds nothing left.
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 5
    # Set-based: four DELETEs per batch (targets, related, read rows, actions) + items.
    deletes = [sql for sql in statements if sql.startswith("DELETE")]
    assert len(deletes) == 4 * 4 + 1
    # Nothing but ids is read from the action table.
    action_selects = [
        sql for sql in statements if sql.startswith("SELECT") and '"actrack_action"' in sql
    ]
    assert action_selects
    assert not [sql for sql in action_selects if '"actrack_action"."data"' in sql]
    assert len(doomed) == 10


def test_quiet_with_verbosity_zero() -> None:
    log_at(100)
    out, err = io.StringIO(), io.StringIO()
    call_command("actrack_prune", "--older-than-days", "1", verbosity=0, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("", "")
    assert Action.objects.count() == 0


def test_nothing_to_prune() -> None:
    kept = log_at(1)
    out, err = prune("--older-than-days", "30")
    assert remaining() == {kept.pk}
    assert err == ""
    assert "Pruned 0 action(s) and 0 unreferenced deleted item(s)." in out


def test_keyword_options_as_from_code() -> None:
    old, new = log_at(40), log_at(1)
    out = io.StringIO()
    call_command("actrack_prune", older_than_days=30, batch_size=1, stdout=out, stderr=out)
    assert remaining() == {new.pk}
    assert old.pk not in remaining()
    assert re.search(r"pruned 1/1 actions", out.getvalue())


# --- deleted items ----------------------------------------------------------------------


def test_deleted_items_still_referenced_are_kept_others_removed() -> None:
    user = make_user()

    def deleted(*roles: tuple[str, float]) -> DeletedItem:
        """A train referred to in ``roles`` (role, days ago), then deleted."""
        train = make_train()
        for role, days in roles:
            if role == "actor":
                log_at(days, actor=train)
            else:
                log_at(days, **{role: train})
        key = str(train.pk)
        train.delete()
        return DeletedItem.objects.get(object_key=key)

    only_old = deleted(("actor", 90), ("targets", 90), ("related", 90))
    kept_as_actor = deleted(("actor", 90), ("actor", 1))
    kept_as_target = deleted(("targets", 90), ("targets", 1))
    kept_as_related = deleted(("related", 1))
    tracked = make_train()
    actrack.track(user, tracked)
    log_at(90, actor=tracked)
    key = str(tracked.pk)
    tracked.delete()
    kept_by_tracker = DeletedItem.objects.get(object_key=key)
    assert Tracker.objects.filter(tracked_key=str(kept_by_tracker.pk)).exists()

    out, _ = prune("--older-than-days", "30")

    assert set(DeletedItem.objects.values_list("pk", flat=True)) == {
        kept_as_actor.pk,
        kept_as_target.pk,
        kept_as_related.pk,
        kept_by_tracker.pk,
    }
    assert not DeletedItem.objects.filter(pk=only_old.pk).exists()
    assert "1 unreferenced deleted item(s)" in out


def test_deleted_item_cleanup_is_one_statement() -> None:
    for _ in range(5):
        train = make_train()
        log_at(90, actor=train)
        train.delete()
    assert DeletedItem.objects.count() == 5
    with CaptureQueriesContext(connection) as queries:
        prune("--older-than-days", "30")
    item_statements = [q["sql"] for q in queries if '"actrack_deleteditem"' in q["sql"]]
    assert len(item_statements) == 1
    assert item_statements[0].startswith("DELETE")
    assert DeletedItem.objects.count() == 0
