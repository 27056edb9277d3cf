"""Every list view costs the same number of queries for 1, 20 or 100 rows on a page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings
from django.urls import reverse

import actrack
from actrack.models import Action
from tests.conftest import make_line, make_station, make_train, make_user
from tests.test_dashboard.conftest import follow, hx

pytestmark = pytest.mark.django_db

SIZES = (1, 20, 100)


def count(client: Client, url: str, count_queries: Any, **kwargs: Any) -> int:
    with count_queries() as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(queries)


def counts_for(
    build: Callable[[int], tuple[Client, str, int]], count_queries: Any, **kwargs: Any
) -> list[int]:
    """Query counts of the page built by ``build(n)``, for each size (checked to show n)."""
    result = []
    for size in SIZES:
        client, url, expected = build(size)
        client.get(url, **kwargs)  # warm Django's content type cache
        with count_queries() as queries:
            response = client.get(url, **kwargs)
        html = response.content.decode()
        shown = html.count('<article id="action-') or html.count('<li id="tracker-')
        assert shown == expected
        result.append(len(queries))
    return result


def feed_with(size: int) -> tuple[Client, str, int]:
    """A user whose feed has ``size`` varied actions (several models, roles, levels).

    (No journeys: ``Journey.__str__`` follows foreign keys, a query per journey
    whoever renders it.)
    """
    user = make_user()
    train, station = make_train(), make_station()
    follow(user, train)
    follow(user, station)
    with actrack.batch():
        for i in range(size):
            line = make_line() if i % 3 == 0 else None
            actrack.log(
                train,
                "departed" if i % 2 else "arrived",
                targets=[station],
                related=[line] if line else None,
                level=actrack.level.WARNING if i % 5 == 0 else None,
                grouping_delay=-1,
            )
    client = Client()
    client.force_login(user)
    return client, reverse("actrack_dashboard:feed"), size


@override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 100})
@pytest.mark.parametrize("htmx", [False, True])
def test_feed(count_queries: Any, htmx: bool) -> None:
    kwargs = {"headers": hx()} if htmx else {}
    counts = counts_for(feed_with, count_queries, **kwargs)
    assert counts[0] == counts[1] == counts[2], counts


@override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 100})
def test_filtered_feed(count_queries: Any) -> None:
    def build(size: int) -> tuple[Client, str, int]:
        client, url, _ = feed_with(size)
        return client, f"{url}?model=demo.station&level=INFO&level=WARNING&unread=on", size

    counts = counts_for(build, count_queries)
    assert counts[0] == counts[1] == counts[2], counts


@override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 100})
def test_object_actions(count_queries: Any) -> None:
    def build(size: int) -> tuple[Client, str, int]:
        client, _, _ = feed_with(size)
        station = Action.objects.order_by("-pk").first().targets.first()  # type: ignore[union-attr]
        ct = ContentType.objects.get_for_model(station)
        return client, reverse("actrack_dashboard:object_actions", args=[ct.pk, station.pk]), size

    counts = counts_for(build, count_queries)
    assert counts[0] == counts[1] == counts[2], counts


def test_trackers(count_queries: Any) -> None:
    def build(size: int) -> tuple[Client, str, int]:
        # One query per tracked model: ``size`` trains, the same models every time.
        user = make_user()
        actrack.track(user, [make_train() for _ in range(size)])
        client = Client()
        client.force_login(user)
        return client, reverse("actrack_dashboard:trackers"), size

    counts = counts_for(build, count_queries)
    assert counts[0] == counts[1] == counts[2], counts


def test_mark_read_and_badge_are_cheap(count_queries: Any) -> None:
    client, _, _ = feed_with(20)
    action = Action.objects.order_by("-pk").first()
    assert action is not None
    url = reverse("actrack_dashboard:mark_read", args=[action.pk])
    with count_queries() as queries:
        client.post(url, headers=hx())
    assert len(queries) <= 20
    assert count(client, reverse("actrack_dashboard:unread_count"), count_queries) <= 6
