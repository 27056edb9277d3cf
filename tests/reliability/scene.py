"""A small world for the dashboard tests: two users with their own feeds, staff, objects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import actrack
from actrack.models import Action, Tracker
from tests.conftest import make_journey, make_station, make_ticket, make_train, make_user
from tests.demo.models import Journey, Station, Ticket, Train


def log(actor: Any, verb: str, **kwargs: Any) -> Action:
    kwargs.setdefault("grouping_delay", -1)
    action = actrack.log(actor, verb, **kwargs)
    assert action is not None
    return action


@dataclass
class Scene:
    """alice follows the train Seagull (every role); bob follows the station Ashbury.

    ``shared`` (Seagull departed from Ashbury) is in both feeds, ``alice_only`` and
    ``bob_only`` in one each; everything is unread for its follower.
    """

    alice: Any
    bob: Any
    staff: Any
    superuser: Any
    train: Train
    station: Station
    journey: Journey
    ticket: Ticket
    shared: Action
    alice_only: Action
    bob_only: Action
    alice_tracker: Tracker
    bob_tracker: Tracker

    def client_for(self, user: Any, **kwargs: Any) -> Client:
        client = Client(**kwargs)
        if user is not None:
            client.force_login(user)
        return client

    def ct(self, obj: Any) -> int:
        return ContentType.objects.get_for_model(obj).pk

    def object_url(self, obj: Any) -> str:
        return reverse(
            "actrack_dashboard:object_actions",
            kwargs={"content_type_id": self.ct(obj), "object_id": str(obj.pk)},
        )


def build_scene(train_name: str = "Seagull", station_name: str = "Ashbury") -> Scene:
    alice, bob = make_user("alice"), make_user("bob")
    staff = make_user("staff", is_staff=True)
    superuser = get_superuser()
    train, station = make_train(train_name), make_station(station_name)
    journey = make_journey(train)
    ticket = make_ticket()
    alice_tracker = actrack.track(alice, train, actor_only=False)
    bob_tracker = actrack.track(bob, station, actor_only=False)
    Tracker.objects.update(created=timezone.now() - dt.timedelta(days=30))
    shared = log(train, "departed", targets=station)
    alice_only = log(train, "whistled")
    bob_only = log(station, "closed")
    assert isinstance(alice_tracker, Tracker) and isinstance(bob_tracker, Tracker)
    alice_tracker.refresh_from_db()
    bob_tracker.refresh_from_db()
    return Scene(
        alice=alice,
        bob=bob,
        staff=staff,
        superuser=superuser,
        train=train,
        station=station,
        journey=journey,
        ticket=ticket,
        shared=shared,
        alice_only=alice_only,
        bob_only=bob_only,
        alice_tracker=alice_tracker,
        bob_tracker=bob_tracker,
    )


def get_superuser() -> Any:
    user = make_user("root", is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return user
