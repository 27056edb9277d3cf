"""Cursor pagination: ``.page(cursor=None, size=20)`` on every action queryset."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

import actrack
from actrack.models import Action
from actrack.paging import InvalidCursor, decode_cursor, encode_cursor
from tests.conftest import make_train, make_user

pytestmark = pytest.mark.django_db


def _history(train: Any, count: int, same_time: bool = False) -> list[Action]:
    now = timezone.now()
    actions = []
    for number in range(count):
        stamp = now if same_time else now - dt.timedelta(minutes=count - number)
        action = actrack.log(train, "passed", timestamp=stamp, grouping_delay=-1, n=number)
        assert action is not None
        actions.append(action)
    return actions


def _all_pages(queryset_factory: Any, size: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = queryset_factory().page(cursor=cursor, size=size)
        pages.append([a.pk for a in page.actions])
        cursor = page.next_cursor
        if cursor is None:
            return pages


@pytest.mark.parametrize("same_time", [False, True])
def test_pages_cover_everything_once_newest_first(same_time: bool) -> None:
    train = make_train()
    actions = _history(train, 45, same_time=same_time)
    pages = _all_pages(train.actions.all, size=20)
    assert [len(p) for p in pages] == [20, 20, 5]
    flat = [pk for page in pages for pk in page]
    assert flat == [a.pk for a in reversed(actions)]


def test_exact_multiple_ends_with_no_cursor() -> None:
    train = make_train()
    _history(train, 20)
    page = train.actions.all().page(size=20)
    assert len(page.actions) == 20
    assert page.next_cursor is None


def test_new_actions_do_not_shift_the_next_page() -> None:
    user, train = make_user(), make_train()
    actions = _history(train, 10)
    actrack.track(user, train)
    first = user.actions.feed().page(size=4)
    _history(train, 3)  # arrive between page requests, newer than everything
    second = user.actions.feed().page(cursor=first.next_cursor, size=4)
    expected = [a.pk for a in reversed(actions)]
    assert [a.pk for a in first.actions] == expected[:4]
    assert [a.pk for a in second.actions] == expected[4:8]


def test_page_works_on_manager_querysets_and_feeds() -> None:
    user, train = make_user(), make_train()
    _history(train, 3)
    actrack.track(user, train)
    assert len(Action.objects.page().actions) == 3
    assert len(Action.objects.all().page(size=2).actions) == 2
    assert len(user.actions.feed().page(size=2).actions) == 2
    assert len(train.actions.as_actor().page().actions) == 3


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "MTIz",  # "123": no separator
        encode_cursor(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), 1)[:-3] + "@@@",
        encode_cursor(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), -1),  # no such id
        "x" * 500,
    ],
)
def test_malformed_cursor_is_a_value_error(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        Action.objects.page(cursor=cursor)
    assert issubclass(InvalidCursor, ValueError)


@pytest.mark.parametrize("size", [0, -1, 1001, "20", 2.5, True])
def test_bad_page_size_is_a_value_error(size: Any) -> None:
    with pytest.raises(ValueError, match="Page size"):
        Action.objects.page(size=size)


def test_cursor_round_trips() -> None:
    stamp = timezone.now()
    assert decode_cursor(encode_cursor(stamp, 42)) == (stamp, 42)


def test_page_cost_is_one_query_whatever_the_depth(count_queries: Any) -> None:
    train = make_train()
    _history(train, 60)
    cursor = None
    counts = []
    for _ in range(3):
        with count_queries() as log:
            page = train.actions.all().page(cursor=cursor, size=20)
        counts.append(len(log))
        cursor = page.next_cursor
    assert counts == [1, 1, 1]


def test_page_actions_are_the_ones_a_queryset_loads() -> None:
    """Pages are read raw: every field holds what the ORM would give, state included."""
    follower, train = make_user(), make_train()
    actrack.track(follower, train)
    stamp = timezone.now() - dt.timedelta(hours=2)
    for number, data in enumerate([{"nested": {"list": [1, 2.5, None]}, "text": "é"}, {}]):
        actrack.log(train, "passed", timestamp=stamp + dt.timedelta(minutes=number), **data)
    for page in (follower.actions.feed().page(size=5), train.actions.all().page(size=5)):
        assert len(page.actions) == 2
        for action in page.actions:
            expected = Action.objects.get(pk=action.pk)
            for field in Action._meta.concrete_fields:
                mine, theirs = getattr(action, field.attname), getattr(expected, field.attname)
                assert (mine, type(mine)) == (theirs, type(theirs)), field.name
            assert action.timestamp.tzinfo is not None
            assert (action._state.db, action._state.adding) == ("default", False)
    assert follower.actions.feed().page(size=5).actions[0].data == {}
    assert follower.actions.feed().page(size=5).actions[1].data["nested"]["list"] == [1, 2.5, None]
