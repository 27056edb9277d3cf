"""The ``seed_demo`` management command."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

import actrack
from actrack.models import Action, DeletedItem, Tracker
from tests.demo.models import Journey, Line, Note, Station, Ticket, Train

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, Any]:
    """What a run produced, minus timestamps (relative to now) and primary keys."""
    return {
        "counts": {
            model.__name__: model._default_manager.count()
            for model in (
                Action,
                Tracker,
                DeletedItem,
                Station,
                Line,
                Train,
                Journey,
                Ticket,
                Note,
            )
        },
        "users": sorted(get_user_model().objects.values_list("username", flat=True)),
        "verbs": Counter(Action.objects.values_list("verb", flat=True)),
        "levels": Counter(Action.objects.values_list("level", flat=True)),
        "journeys": sorted(str(pk) for pk in Journey.objects.values_list("pk", flat=True)),
        "tickets": sorted(Ticket.objects.values_list("code", flat=True)),
    }


def test_users_passwords_and_flags() -> None:
    seed()
    user_model = get_user_model()
    assert user_model.objects.count() >= 9
    admin = authenticate(username="admin", password="admin")
    assert admin is not None
    assert admin.is_staff
    assert admin.is_superuser
    for username in ("alice", "bob", "carol", "hugo"):
        user = authenticate(username=username, password="demo")
        assert user is not None, username
        assert not user.is_staff
        assert not user.is_superuser
    assert authenticate(username="alice", password="admin") is None
    assert user_model.objects.filter(is_staff=True).count() == 1


def test_railway_and_history() -> None:
    output = seed()
    assert Line.objects.count() == 4
    assert Station.objects.count() == 12
    assert Train.objects.count() == 9  # ten, less the retired one
    assert Journey.objects.count() > 100
    assert Action.objects.count() >= 500
    verbs = Counter(Action.objects.values_list("verb", flat=True))
    for verb in ("departed", "arrived", "was delayed", "cancelled", "opened", "closed"):
        assert verbs[verb] > 0, verb
    for verb in ("created", "commented", "boarded", "booked", "retired"):
        assert verbs[verb] > 0, verb
    levels = set(Action.objects.values_list("level", flat=True))
    assert {actrack.level.DEBUG, actrack.level.HIDDEN, actrack.level.INFO} <= levels
    assert actrack.level.WARNING in levels
    assert set(Action.objects.filter(verb="cancelled").values_list("level", flat=True)) == {
        actrack.level.WARNING
    }
    assert Action.objects.filter(actor_ct__isnull=True).exists()  # system actions
    delayed = Action.objects.filter(verb="was delayed").first()
    assert delayed is not None
    assert delayed.data["minutes"] > 0
    assert f"History: {Action.objects.count()} actions" in output


def test_history_spans_the_weeks_and_ends_before_now() -> None:
    seed()
    oldest = Action.objects.order_by("timestamp").first()
    newest = Action.objects.order_by("-timestamp").first()
    assert oldest is not None
    assert newest is not None
    assert newest.timestamp <= timezone.now()
    assert (timezone.now() - oldest.timestamp).days >= 6 * 7
    assert (timezone.now() - newest.timestamp).days == 0


def test_fewer_weeks_give_less_history() -> None:
    seed("--weeks", "1")
    one_week = Action.objects.count()
    seed("--reset", "--weeks", "2")
    assert 0 < one_week < Action.objects.count()


def test_trackers_and_feeds() -> None:
    seed()
    users = {user.username: user for user in get_user_model().objects.all()}
    alice, bob = users["alice"], users["bob"]
    alice_trackers = Tracker.objects.filter(user=alice)
    assert alice_trackers.count() == 3
    station_tracker = alice_trackers.get(tracked_key="")
    assert station_tracker.tracked is Station
    assert sorted(station_tracker.verbs) == ["closed", "opened"]
    assert Tracker.objects.filter(user=bob).count() >= 2
    assert Tracker.objects.filter(user=users["admin"], tracked_key="").count() == 1
    assert alice.actions.feed().exists()
    assert bob.actions.feed().exists()
    assert alice.actions.feed().filter(verb="departed").exists()


def test_deleted_items() -> None:
    output = seed()
    assert not Train.objects.filter(name="Old Faithful").exists()
    item = DeletedItem.objects.get(description="Train Old Faithful (retired)")
    assert item.serialization["name"] == "Old Faithful"
    assert Action.objects.for_object(item).count() > 1
    assert Tracker.objects.filter(tracked_key=str(item.pk)).exists()  # carol's tracker
    # The deleted note is not connected: its action stays and points at nothing.
    commented = Action.objects.filter(verb="commented")
    assert commented.count() == Note.objects.count() + 1
    assert any("(deleted)" in action.render() for action in commented)
    assert "Deletions: train 'Old Faithful'" in output


def test_second_run_without_reset_changes_nothing() -> None:
    seed()
    before = snapshot()
    output = seed()
    assert "already" in output
    assert snapshot() == before


def test_reset_seeds_the_same_data_again() -> None:
    seed()
    before = snapshot()
    output = seed("--reset")
    assert "Reset" in output
    assert snapshot() == before


def test_another_seed_gives_other_data() -> None:
    seed()
    before = snapshot()
    seed("--reset", "--seed", "7")
    assert snapshot()["journeys"] != before["journeys"]


@pytest.mark.parametrize("weeks", ["0", "53", "-1"])
def test_bad_weeks(weeks: str) -> None:
    with pytest.raises(CommandError, match="--weeks"):
        seed("--weeks", weeks)
    assert not get_user_model().objects.exists()


def test_success_message() -> None:
    output = seed()
    lines = output.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == [
        "Users",
        "Railway",
        "History",
        "Trackers",
        "Deletions",
    ]
    assert "Demo ready" in lines[-1]
