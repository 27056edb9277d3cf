"""Fixtures of the dashboard tests: a user with a small feed, HTMX requests, the browser."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

import actrack
from actrack.models import Action, Tracker
from tests.conftest import log, make_station, make_train, make_user
from tests.demo.models import Station, Train


@pytest.fixture(autouse=True)
def _counts_by_the_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unread counts run their statements, never actrack's count function: a
    session's third count would call it, one query where the statements (and the
    check of kept unread actions) take two with server-side binding, and the views'
    query counts would change from one request to the next. The function has
    tests of its own (tests/test_actrack/test_countfunction.py)."""
    from actrack import countfunction

    monkeypatch.setattr(countfunction, "INLINE_COUNTS", 10**9)


def backdate_trackers(user: Any, days: int = 30) -> None:
    """Make ``user``'s trackers older than the actions logged after (so those are unread)."""
    Tracker.objects.filter(user=user).update(created=timezone.now() - dt.timedelta(days=days))


def follow(user: Any, obj: Any, **kwargs: Any) -> None:
    kwargs.setdefault("actor_only", False)
    actrack.track(user, obj, **kwargs)
    backdate_trackers(user)


@dataclass
class Scene:
    """alice follows the train Seagull; bob follows the station Ashbury."""

    alice: Any
    bob: Any
    train: Train
    station: Station
    alice_actions: list[Action]
    bob_actions: list[Action]


@pytest.fixture
def scene(db: Any) -> Scene:
    alice, bob = make_user("alice"), make_user("bob")
    train, station = make_train("Seagull"), make_station("Ashbury")
    follow(alice, train)
    follow(bob, station)
    alice_actions = [
        log(train, "departed", level=actrack.level.INFO),
        log(train, "was delayed", level=actrack.level.WARNING, minutes=5),
        log(train, "arrived", level=actrack.level.INFO),
    ]
    bob_actions = [log(None, "closed", targets=station, level=actrack.level.WARNING)]
    return Scene(alice, bob, train, station, alice_actions, bob_actions)


@pytest.fixture
def alice_client(scene: Scene) -> Client:
    client = Client()
    client.force_login(scene.alice)
    return client


def hx(**headers: str) -> dict[str, str]:
    """Headers of an HTMX request (``target`` becomes ``HX-Target``)."""
    result = {"HX-Request": "true"}
    if "target" in headers:
        result["HX-Target"] = headers.pop("target")
    result.update(headers)
    return result


__all__ = ["Scene", "backdate_trackers", "follow", "hx", "log", "make_station", "make_train"]
