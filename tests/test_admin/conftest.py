"""Fixtures of the admin tests: a small history with every kind of object, staff and
non-staff clients, and the browser."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

import actrack
from actrack.models import Action, DeletedItem
from tests.conftest import log, make_note, make_station, make_train, make_user
from tests.demo.models import Note, Station, Train

XSS = '<script>alert("x")</script>'


def ids(response: Any) -> list[int]:
    """Primary keys of the actions a changelist response shows, in order."""
    return [action.pk for action in response.context["cl"].result_list]


@dataclass
class History:
    """alice boards Seagull at Ashbury; Seagull departs; a timetable sync (no actor);
    the retired train Old Faithful departed then was deleted; a fault report about it;
    a closure with hostile data; a comment about a note that was deleted."""

    alice: Any
    seagull: Train
    ashbury: Station
    retired: DeletedItem
    note: Note
    boarded: Action
    departed: Action
    synced: Action
    old_departed: Action
    fault: Action
    closed: Action
    commented: Action


@pytest.fixture
def history(db: Any) -> History:
    alice = make_user("alice")
    seagull, old = make_train("Seagull"), make_train("Old Faithful")
    ashbury = make_station("Ashbury")
    note = make_note("a note")
    long_ago = timezone.now() - dt.timedelta(days=400)
    boarded = log(alice, "boarded", targets=seagull, related=ashbury, seat="12A")
    departed = log(seagull, "departed", targets=ashbury, level=actrack.level.WARNING)
    synced = log(None, "synced timetable", level=actrack.level.DEBUG, timestamp=long_ago)
    old_departed = log(old, "departed", targets=ashbury)
    fault = log(alice, "reported a fault", targets=old, related=seagull)
    closed = log(
        None, "closed", targets=ashbury, level=actrack.level.ERROR, reason=XSS, hours=[1, 2]
    )
    commented = log(alice, "commented", targets=note)
    old.delete()
    note.delete()
    retired = DeletedItem.objects.get(description="Train Old Faithful (retired)")
    return History(
        alice=alice,
        seagull=seagull,
        ashbury=ashbury,
        retired=retired,
        note=note,
        boarded=boarded,
        departed=departed,
        synced=synced,
        old_departed=old_departed,
        fault=fault,
        closed=closed,
        commented=commented,
    )


@pytest.fixture
def staff(db: Any) -> Any:
    return make_user("boss", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: Any) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def viewer_client(db: Any) -> Client:
    """Staff, not superuser, allowed to view actions, trackers and deleted items only."""
    user = make_user("viewer", is_staff=True)
    codenames = ["view_action", "view_tracker", "view_deleteditem"]
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="actrack", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def powerless_staff_client(db: Any) -> Client:
    """Staff without any permission."""
    client = Client()
    client.force_login(make_user("powerless", is_staff=True))
    return client


@pytest.fixture
def user_client(db: Any) -> Client:
    """Signed in, not staff."""
    client = Client()
    client.force_login(make_user("visitor"))
    return client


def hx(**headers: str) -> dict[str, str]:
    """Headers of an HTMX request (``target`` becomes ``HX-Target``)."""
    result = {"HX-Request": "true"}
    if "target" in headers:
        result["HX-Target"] = headers.pop("target")
    result.update(headers)
    return result


__all__ = ["XSS", "History", "hx", "ids", "log", "make_station", "make_train", "make_user"]
