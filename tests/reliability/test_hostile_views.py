"""Hostile input to every dashboard view, property-based (hypothesis).

Signed in as alice, each view gets random and malformed query strings, form
fields, path arguments and HTMX headers: cursors (random, truncated, forged
with out-of-range dates and ids), content type ids, object ids, verbs (very
long, unicode, NUL bytes), levels, dates. Properties:

- the answer is never a 5xx (and a 4xx carries a message);
- a GET never changes anything (nothing in the database moves);
- a rejected (4xx) POST changes nothing;
- no request, accepted or not, changes another user's trackers or read state.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st

from actrack.models import Action, ReadAction, ReadMark, Tracker
from actrack.paging import encode_cursor
from tests.reliability.conftest import (
    MAX_EXAMPLES,
    RELIABLE,
    STATUSES,
    answered,
    report,
    snapshot,
    tried,
)
from tests.reliability.scene import Scene, build_scene

pytestmark = pytest.mark.django_db

STATE = (Tracker, ReadAction, ReadMark, Action)


@pytest.fixture
def scene() -> Scene:
    return build_scene()


# --- strategies -------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "0",
    "-1",
    "+1",
    "00",
    "1.5",
    "1e3",
    "0x1f",
    "9" * 19,
    "9" * 20,
    "9" * 400,
    str(2**63),
    str(2**63 - 1),
    str(-(2**63) - 1),
    "NaN",
    "inf",
    "true",
    "on",
    "off",
    "null",
    "[]",
    "{}",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    '"',
    "../../etc/passwd",
    "x" * 255,
    "x" * 256,
    "x" * 5000,
    "é",
    "٣",
    "\uff11\uff12",  # fullwidth digits
    "\u202e",
    "\ufeff",
    "😀",
    "DEBUG",
    "INFO",
    "HIDDEN",
    "NULL",
    "ERROR",
    "debug",
    "demo.station",
    "demo.train",
    "auth.user",
    "actrack.action",
    "station",
    "2024-01-01",
    "2024-02-30",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "2024-1-1",
    "01/02/2024",
    "2024-01-01T00:00",
    "-2024-01-01",
]

# Cursors: random text, random bytes in base64, and well-formed cursors whose parts are
# forged (dates at the ends of the range in every time zone, ids out of range, naive).
offsets = st.integers(-1439, 1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
forged_stamps = st.one_of(st.datetimes(timezones=offsets), st.datetimes())


cursors = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.builds(
        encode_cursor,
        forged_stamps,
        st.one_of(st.integers(-5, 5), st.integers(2**62, 2**80), st.integers(1, 10**6)),
    ),
    st.text(max_size=30).map(
        lambda text: base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    ),
    st.sampled_from(["", "=", "====", "x" * 201, "MjAyNC0wMS0wMVQwMDowMDowMCswMDowMHww"]),
)
values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(-(2**70), 2**70).map(str),
    cursors,
)
htmx_headers = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"HX-Request": st.sampled_from(["true", "false", ""])},
        optional={
            "HX-Target": st.sampled_from(["actrack-feed", "actrack-trackers", "", "x" * 300]),
            "HX-History-Restore-Request": st.sampled_from(["true", "x"]),
            "HX-Current-URL": st.sampled_from(["http://evil.example/", "//evil", "x"]),
        },
    ),
)
FEED_KEYS = ["verb", "level", "model", "unread", "since", "until", "cursor", "next"]


def params(keys: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """A query string or form body as (name, value) pairs, names repeatable."""
    return st.lists(
        st.tuples(st.one_of(st.sampled_from(keys), st.text(max_size=10)), values), max_size=8
    )


raw_queries = st.text(alphabet="%&=;+#?[]x0a.\x00é ", max_size=30)


# --- running one request ------------------------------------------------------------------


class Checker:
    """Sends one request as alice and checks the properties of the answer."""

    def __init__(self, scene: Scene, label: str) -> None:
        self.scene = scene
        self.label = label
        self.client = scene.client_for(scene.alice)

    def others(self) -> dict[str, Any]:
        """Everything that belongs to users other than alice."""
        alice = self.scene.alice.pk
        return {
            "trackers": sorted(
                Tracker.objects.exclude(user=alice).values_list("pk", "verbs", "actor_only")
            ),
            "read": sorted(ReadAction.objects.exclude(user=alice).values_list("pk")),
            "marks": sorted(
                ReadMark.objects.exclude(user=alice).values_list("pk", "last_read_id")
            ),
        }

    def run(self, send: Callable[[Client], Any], *, post: bool) -> Any:
        before, others = snapshot(*STATE), self.others()
        response = send(self.client)
        status = response.status_code
        answered(self.label, status)
        assert status < 500, (status, response.content[:500])
        if 400 <= status < 500 and status != 405:
            assert response.content.strip(), f"{status} without a message"
        after = snapshot(*STATE)
        if not post or status >= 400:
            assert after == before, f"{status} changed the database"
        assert self.others() == others
        return response


# --- the views ------------------------------------------------------------------------------


def _get(url: str, pairs: list[tuple[str, str]], headers: dict[str, str]) -> Any:
    query = urlencode(pairs)
    return lambda client: client.get(f"{url}?{query}" if query else url, headers=headers)


@pytest.mark.parametrize("name", ["feed", "unread_count", "trackers"])
def test_get_views_survive_hostile_query_strings(scene: Scene, name: str) -> None:
    url = reverse(f"actrack_dashboard:{name}")
    label = f"GET {name}"
    checker = Checker(scene, label)

    @RELIABLE
    @given(pairs=params(FEED_KEYS), headers=htmx_headers, raw=st.one_of(st.none(), raw_queries))
    @example(pairs=[("cursor", "x" * 201)], headers={}, raw=None)
    @example(pairs=[("verb", "a\x00b")], headers={"HX-Request": "true"}, raw=None)
    @example(pairs=[("level", "NULL"), ("level", "ERROR")], headers={}, raw=None)
    @example(pairs=[("since", "9999-12-31"), ("until", "0001-01-01")], headers={}, raw=None)
    @example(pairs=[("until", "9999-12-31"), ("unread", "on")], headers={}, raw=None)
    @example(pairs=[("model", "auth.user")], headers={}, raw=None)
    @example(pairs=[("verb", "v")] * 30, headers={}, raw=None)
    def check(pairs: list[tuple[str, str]], headers: dict[str, str], raw: str | None) -> None:
        tried(label)
        if raw is not None:
            checker.run(lambda client: client.get(f"{url}?{raw}", headers=headers), post=False)
        else:
            checker.run(_get(url, pairs, headers), post=False)

    check()
    report(label, MAX_EXAMPLES // 2)
    if name == "feed":  # the others take no parameters
        both_sides(label)


def _targets(scene: Scene, *, models: bool) -> st.SearchStrategy[tuple[str, str]]:
    """``(content type id, object id)``: real objects (weighted up) or anything at all."""
    objects = [scene.station, scene.train, scene.journey, scene.ticket, scene.alice]
    real = [(str(scene.ct(obj)), str(obj.pk)) for obj in objects]
    if models:
        real += [(str(scene.ct(obj)), "") for obj in objects]
    return weighted(st.sampled_from(real), st.tuples(_ct_ids(), _object_ids(scene)))


def weighted(valid: st.SearchStrategy[Any], anything: st.SearchStrategy[Any]) -> Any:
    """``valid`` three times in four, else ``anything``."""
    return st.integers(0, 3).flatmap(lambda n: valid if n else anything)


def both_sides(label: str) -> None:
    """The inputs reached both accepted and rejected answers."""
    statuses = STATUSES[label]
    assert any(status < 400 for status in statuses), statuses
    assert any(400 <= status < 500 for status in statuses), statuses


def _object_ids(scene: Scene) -> st.SearchStrategy[str]:
    real = [scene.station.pk, scene.train.pk, scene.journey.pk, scene.ticket.pk, scene.alice.pk]
    return st.one_of(st.sampled_from([str(pk) for pk in real]), values)


def _ct_ids() -> st.SearchStrategy[str]:
    real = [str(pk) for pk in ContentType.objects.values_list("pk", flat=True)]
    return st.one_of(
        st.sampled_from(real),
        st.from_regex(r"[0-9]{1,25}", fullmatch=True),
        values,
    )


def test_object_actions_survives_hostile_paths_and_query_strings(scene: Scene) -> None:
    label = "GET object_actions"
    checker = Checker(scene, label)

    @RELIABLE
    @given(
        target=_targets(scene, models=False),
        pairs=params(["cursor", "next"]),
        headers=htmx_headers,
    )
    @example(target=(str(2**63), "1"), pairs=[], headers={})
    @example(target=(str(scene.ct(scene.station)), "9" * 300), pairs=[], headers={})
    @example(target=(str(scene.ct(scene.journey)), "not-a-uuid"), pairs=[], headers={})
    @example(target=(str(scene.ct(scene.station)), "\x00"), pairs=[], headers={})
    @example(target=(str(scene.ct(Session)), "x" * 40), pairs=[], headers={})
    def check(target: tuple[str, str], pairs: list[tuple[str, str]], headers: Any) -> None:
        tried(label)
        ct, object_id = target
        path = f"/activity/objects/{quote(ct, safe='')}/{quote(object_id, safe='')}/"
        checker.run(_get(path, pairs, headers), post=False)

    check()
    report(label, MAX_EXAMPLES // 2)
    both_sides(label)


def _post(url: str, pairs: list[tuple[str, str]], headers: dict[str, str], raw: bool) -> Any:
    if raw:
        body = urlencode(pairs)
        return lambda client: client.post(
            url, body, content_type="application/x-www-form-urlencoded", headers=headers
        )
    data: dict[str, list[str]] = {}
    for key, value in pairs:
        data.setdefault(key, []).append(value)
    return lambda client: client.post(url, data, headers=headers)


def test_mark_read_survives_hostile_ids_and_fields(scene: Scene) -> None:
    label = "POST mark_read"
    checker = Checker(scene, label)
    ids = [scene.shared.pk, scene.alice_only.pk, scene.bob_only.pk]
    valid_ids = st.sampled_from([str(pk) for pk in ids])

    @RELIABLE
    @given(
        action_id=weighted(valid_ids, values),
        pairs=params(["next", *FEED_KEYS]),
        headers=htmx_headers,
        raw=st.booleans(),
    )
    @example(action_id=str(2**63), pairs=[], headers={}, raw=False)
    @example(action_id=str(scene.bob_only.pk), pairs=[], headers={"HX-Request": "true"}, raw=False)
    def check(action_id: str, pairs: Any, headers: Any, raw: bool) -> None:
        tried(label)
        path = f"/activity/actions/{quote(action_id, safe='')}/read/"
        response = checker.run(_post(path, pairs, headers, raw), post=True)
        if action_id == str(scene.bob_only.pk):
            assert response.status_code == 404

    check()
    report(label, MAX_EXAMPLES // 2)
    both_sides(label)


def test_mark_all_read_survives_hostile_fields(scene: Scene) -> None:
    label = "POST mark_all_read"
    checker = Checker(scene, label)
    url = reverse("actrack_dashboard:mark_all_read")

    @RELIABLE
    @given(pairs=params(FEED_KEYS), headers=htmx_headers, raw=st.booleans())
    @example(
        pairs=[("since", "2024-02-30")],
        headers={"HX-Request": "true", "HX-Target": "actrack-feed"},
        raw=False,
    )
    @example(
        pairs=[("cursor", "garbage")],
        headers={"HX-Request": "true", "HX-Target": "actrack-feed"},
        raw=True,
    )
    def check(pairs: Any, headers: Any, raw: bool) -> None:
        tried(label)
        checker.run(_post(url, pairs, headers, raw), post=True)

    check()
    report(label, MAX_EXAMPLES // 2)
    both_sides(label)


@pytest.mark.parametrize("name", ["track", "untrack"])
def test_track_and_untrack_survive_hostile_fields(scene: Scene, name: str) -> None:
    label = f"POST {name}"
    checker = Checker(scene, label)
    url = reverse(f"actrack_dashboard:{name}")
    fields = ["content_type_id", "object_id", "verbs", "actor_only", "next"]

    @RELIABLE
    @given(
        target=st.one_of(_targets(scene, models=True), st.tuples(st.none(), st.none())),
        pairs=params(fields),
        headers=htmx_headers,
        raw=st.booleans(),
    )
    @example(
        target=(str(scene.ct(scene.station)), str(scene.station.pk)),
        pairs=[("verbs", "a\x00b")],
        headers={},
        raw=False,
    )
    @example(
        target=(str(scene.ct(scene.station)), str(scene.station.pk)),
        pairs=[("verbs", ",".join(f"v{n}" for n in range(60)))],
        headers={},
        raw=False,
    )
    @example(
        target=(str(scene.ct(scene.alice)), str(scene.bob.pk)), pairs=[], headers={}, raw=False
    )
    @example(
        target=(str(scene.ct(scene.train)), ""),
        pairs=[("actor_only", "maybe")],
        headers={"HX-Request": "true", "HX-Target": "actrack-trackers"},
        raw=True,
    )
    def check(target: tuple[Any, Any], pairs: Any, headers: Any, raw: bool) -> None:
        tried(label)
        ct, object_id = target
        body = list(pairs)
        if ct is not None:
            body.insert(0, ("content_type_id", ct))
        if object_id is not None:
            body.insert(1, ("object_id", object_id))
        checker.run(_post(url, body, headers, raw), post=True)

    check()
    report(label, MAX_EXAMPLES // 2)
    both_sides(label)


@pytest.mark.parametrize(
    "name", ["mark_all_read", "track", "untrack", "feed", "trackers", "unread_count"]
)
def test_wrong_method_is_405_and_changes_nothing(scene: Scene, name: str) -> None:
    checker = Checker(scene, f"wrong method {name}")
    url = reverse(f"actrack_dashboard:{name}")
    post_only = name in ("mark_all_read", "track", "untrack")
    for method in ("get", "put", "patch", "delete") if post_only else ("post", "put", "delete"):
        response = checker.run(lambda client, m=method: getattr(client, m)(url), post=True)
        assert response.status_code == 405


# --- the admin's changelists (when the admin exists) ---------------------------------------

ADMIN_PARAMS = [
    "level",
    "verb",
    "actor_type",
    "target_type",
    "deleted",
    "object_ct",
    "object_key",
    "tracked_type",
    "kind",
    "type",
    "q",
    "o",
    "p",
    "e",
    "all",
    "timestamp__year",
    "timestamp__month",
    "timestamp__day",
    "cursor",
    "_changelist_filters",
]


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "actrack" / "admin.py").exists(),
    reason="actrack/admin.py is not written yet",
)
@pytest.mark.parametrize("model", ["action", "tracker", "deleteditem"])
def test_admin_changelists_survive_hostile_query_strings(scene: Scene, model: str) -> None:
    label = f"GET admin {model} changelist"
    checker = Checker(scene, label)
    checker.client = scene.client_for(scene.superuser)
    url = reverse(f"admin:actrack_{model}_changelist")

    @RELIABLE
    @given(pairs=params(ADMIN_PARAMS), raw=st.one_of(st.none(), raw_queries))
    @example(pairs=[("object_ct", "9" * 30), ("object_key", "\x00")], raw=None)
    @example(pairs=[("timestamp__year", "99999")], raw=None)
    @example(pairs=[("p", "-1")], raw=None)
    def check(pairs: list[tuple[str, str]], raw: str | None) -> None:
        tried(label)
        if raw is not None:
            checker.run(lambda client: client.get(f"{url}?{raw}"), post=False)
        else:
            checker.run(_get(url, pairs, {}), post=False)

    check()
    report(label, MAX_EXAMPLES // 2)
