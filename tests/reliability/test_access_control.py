"""Who may do what: roles x dashboard URLs x methods, CSRF, IDOR, redirects, stored XSS.

Roles: anonymous, alice (a user), bob (another user), staff (``is_staff``, no
permissions) and a superuser. The dashboard gives staff and superusers no
powers over other users' data: everyone acts on their own feed only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

import actrack
from actrack.models import Action, ReadAction, ReadMark, Tracker
from tests.reliability.conftest import snapshot
from tests.reliability.scene import Scene, build_scene, log

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "alice", "bob", "staff", "superuser")
PAGES = ("feed", "object_actions", "unread_count", "trackers")
POST_VIEWS = ("mark_read", "mark_all_read", "track", "untrack")
TOKEN = "A" * 32  # a well-formed CSRF secret: cookie and form field agree
STATE = (Tracker, ReadAction, ReadMark, Action)


@pytest.fixture
def scene() -> Scene:
    return build_scene()


def user_of(scene: Scene, role: str) -> Any:
    return None if role == "anonymous" else getattr(scene, role)


def url_of(scene: Scene, name: str) -> str:
    if name == "object_actions":
        return scene.object_url(scene.train)
    if name == "mark_read":
        return reverse("actrack_dashboard:mark_read", args=[scene.shared.pk])
    return reverse(f"actrack_dashboard:{name}")


def form_of(scene: Scene, name: str) -> dict[str, Any]:
    if name in ("track", "untrack"):
        return {"content_type_id": scene.ct(scene.station), "object_id": scene.station.pk}
    return {}


def csrf_client(scene: Scene, role: str) -> Client:
    client = scene.client_for(user_of(scene, role), enforce_csrf_checks=True)
    client.cookies[settings.CSRF_COOKIE_NAME] = TOKEN
    return client


def login_redirect(response: Any, path: str) -> bool:
    location = response.headers.get("Location", "")
    return response.status_code == 302 and location == f"{reverse('login')}?next={path}"


# --- the matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", PAGES)
def test_pages_need_a_signed_in_user_and_refuse_post(scene: Scene, role: str, name: str) -> None:
    client = csrf_client(scene, role)
    url = url_of(scene, name)
    response = client.get(url)
    if role == "anonymous":
        assert login_redirect(response, url), response.headers.get("Location")
    else:
        assert response.status_code == 200
        assert response.headers["Vary"].count("HX-Request") == 1
    before = snapshot(*STATE)
    response = client.post(url, {"csrfmiddlewaretoken": TOKEN})
    assert response.status_code == 405
    assert snapshot(*STATE) == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", POST_VIEWS)
def test_state_changing_views_are_post_only(scene: Scene, role: str, name: str) -> None:
    client = csrf_client(scene, role)
    before = snapshot(*STATE)
    for method in ("get", "head", "put", "patch", "delete"):
        # With a CSRF token for the unsafe methods: the method itself is refused.
        response = getattr(client, method)(url_of(scene, name), headers={"X-CSRFToken": TOKEN})
        assert response.status_code == 405, method
    assert snapshot(*STATE) == before


#: What a POST with a valid CSRF token answers, by role and view.
EXPECTED_POST = {
    # The shared action is in alice's and bob's feeds only: for staff and superusers
    # it is someone else's action.
    "mark_read": {"alice": 302, "bob": 302, "staff": 404, "superuser": 404},
    "mark_all_read": {"alice": 302, "bob": 302, "staff": 302, "superuser": 302},
    "track": {"alice": 302, "bob": 302, "staff": 302, "superuser": 302},
    "untrack": {"alice": 302, "bob": 302, "staff": 302, "superuser": 302},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", POST_VIEWS)
def test_post_with_csrf_token_by_role(scene: Scene, role: str, name: str) -> None:
    client = csrf_client(scene, role)
    url = url_of(scene, name)
    others_before = _others(scene, user_of(scene, role))
    response = client.post(url, {**form_of(scene, name), "csrfmiddlewaretoken": TOKEN})
    if role == "anonymous":
        assert login_redirect(response, url)
        assert _others(scene, None) == others_before
        return
    assert response.status_code == EXPECTED_POST[name][role]
    # Nobody else's trackers or read state moved.
    assert _others(scene, user_of(scene, role)) == others_before


def _others(scene: Scene, user: Any) -> dict[str, Any]:
    pk = user.pk if user is not None else None
    return {
        "trackers": sorted(Tracker.objects.exclude(user=pk).values_list("pk", "verbs")),
        "read": sorted(ReadAction.objects.exclude(user=pk).values_list("pk")),
        "marks": sorted(ReadMark.objects.exclude(user=pk).values_list("pk", "last_read_id")),
    }


def test_anonymous_htmx_request_gets_403_with_hx_redirect_to_login(scene: Scene) -> None:
    for name in (*PAGES, *POST_VIEWS):
        client = csrf_client(scene, "anonymous")
        method = client.get if name in PAGES else client.post
        response = method(
            url_of(scene, name),
            {"csrfmiddlewaretoken": TOKEN} if name in POST_VIEWS else None,
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 403, name
        assert response.headers["HX-Redirect"].startswith(reverse("login"))


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", POST_VIEWS)
@pytest.mark.parametrize("token", ["missing", "wrong", "no cookie"])
def test_csrf_is_enforced_on_every_post(scene: Scene, role: str, name: str, token: str) -> None:
    client = csrf_client(scene, role)
    data = form_of(scene, name)
    if token == "wrong":
        data["csrfmiddlewaretoken"] = "B" * 32
    elif token == "no cookie":
        del client.cookies[settings.CSRF_COOKIE_NAME]
        data["csrfmiddlewaretoken"] = TOKEN
    before = snapshot(*STATE)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(url_of(scene, name), data, headers=headers)
        assert response.status_code == 403
        assert b"CSRF" in response.content
    assert snapshot(*STATE) == before


@pytest.mark.parametrize("name", POST_VIEWS)
def test_csrf_token_from_the_page_and_htmx_header_are_accepted(scene: Scene, name: str) -> None:
    client = scene.client_for(scene.alice, enforce_csrf_checks=True)
    page = client.get(reverse("actrack_dashboard:feed"))
    token = str(page.context["csrf_token"])
    assert f'value="{token}"' in page.content.decode()  # forms carry it
    response = client.post(
        url_of(scene, name), form_of(scene, name), headers={"X-CSRFToken": token}
    )
    assert response.status_code == 302


# --- IDOR -----------------------------------------------------------------------------------


def test_other_user_cannot_mark_an_action_outside_their_feed_read(scene: Scene) -> None:
    bob = csrf_client(scene, "bob")
    before = snapshot(*STATE)
    for headers in ({}, {"HX-Request": "true"}):
        response = bob.post(
            reverse("actrack_dashboard:mark_read", args=[scene.alice_only.pk]),
            {"csrfmiddlewaretoken": TOKEN},
            headers=headers,
        )
        assert response.status_code == 404
    assert snapshot(*STATE) == before
    assert scene.alice_only.is_unread_for(scene.alice)


def test_other_user_cannot_untrack_or_change_someone_elses_tracker(scene: Scene) -> None:
    bob = csrf_client(scene, "bob")
    train = {"content_type_id": scene.ct(scene.train), "object_id": scene.train.pk}
    before = list(Tracker.objects.filter(user=scene.alice).values())
    response = bob.post(
        reverse("actrack_dashboard:untrack"), {**train, "csrfmiddlewaretoken": TOKEN}
    )
    assert response.status_code == 302
    response = bob.post(
        reverse("actrack_dashboard:track"),
        {**train, "verbs": "only-this", "actor_only": "true", "csrfmiddlewaretoken": TOKEN},
    )
    assert response.status_code == 302
    # bob now has his own tracker; alice's is untouched.
    assert list(Tracker.objects.filter(user=scene.alice).values()) == before
    assert Tracker.objects.filter(user=scene.bob).exactly(scene.train).get().verbs == ["only-this"]
    response = bob.post(
        reverse("actrack_dashboard:untrack"), {**train, "csrfmiddlewaretoken": TOKEN}
    )
    assert list(Tracker.objects.filter(user=scene.alice).values()) == before
    assert not Tracker.objects.filter(user=scene.bob).exactly(scene.train).exists()


def test_object_page_shows_each_viewer_their_own_unread_state(scene: Scene) -> None:
    url = scene.object_url(scene.train)
    item = f'id="action-{scene.alice_only.pk}" class="actrack-action actrack-level-info unread"'
    alice_page = scene.client_for(scene.alice).get(url).content.decode()
    bob_page = scene.client_for(scene.bob).get(url).content.decode()
    assert item in alice_page
    assert f'id="action-{scene.alice_only.pk}"' in bob_page
    assert item not in bob_page
    # Marking it read for alice changes nothing for bob, and the reverse.
    scene.alice_only.mark_read_for(scene.alice, force=True)
    assert item not in scene.client_for(scene.alice).get(url).content.decode()
    assert not scene.alice_only.is_unread_for(scene.bob)


def test_feeds_badges_and_tracker_pages_are_each_users_own(scene: Scene) -> None:
    alice, bob = scene.client_for(scene.alice), scene.client_for(scene.bob)
    staff = scene.client_for(scene.superuser)

    def ids_in(client: Client) -> set[int]:
        response = client.get(reverse("actrack_dashboard:feed"))
        return {item.action.pk for item in response.context["items"]}

    assert ids_in(alice) == {scene.shared.pk, scene.alice_only.pk}
    assert ids_in(bob) == {scene.shared.pk, scene.bob_only.pk}
    assert ids_in(staff) == set()

    def badge(client: Client) -> int:
        return int(client.get(reverse("actrack_dashboard:unread_count")).context["unread_count"])

    assert (badge(alice), badge(bob), badge(staff)) == (2, 2, 0)
    alice.post(reverse("actrack_dashboard:mark_all_read"))
    assert (badge(alice), badge(bob)) == (0, 2)

    def trackers_in(client: Client) -> set[int]:
        response = client.get(reverse("actrack_dashboard:trackers"))
        return {row.tracker.pk for row in response.context["rows"]}

    assert trackers_in(alice) == {scene.alice_tracker.pk}
    assert trackers_in(bob) == {scene.bob_tracker.pk}
    assert trackers_in(staff) == set()
    page = bob.get(reverse("actrack_dashboard:trackers")).content.decode()
    assert f'id="tracker-{scene.alice_tracker.pk}"' not in page


def test_following_is_refused_where_the_site_does_not_allow_it(
    scene: Scene, settings: Any
) -> None:
    """The site's ``CAN_FOLLOW`` hook: here no user profiles and not the station."""
    user_model = type(scene.bob)
    settings.ACTRACK_DASHBOARD = {
        "CAN_FOLLOW": lambda user, obj: (
            obj != scene.station and obj is not user_model and not isinstance(obj, user_model)
        )
    }
    client = csrf_client(scene, "alice")
    before = snapshot(*STATE)
    for obj, object_id in ((scene.station, scene.station.pk), (scene.bob, scene.bob.pk)):
        for key in (object_id, ""):
            if obj == scene.station and key == "":
                continue  # the whole Station model stays allowed
            response = client.post(
                reverse("actrack_dashboard:track"),
                {"content_type_id": scene.ct(obj), "object_id": key, "csrfmiddlewaretoken": TOKEN},
            )
            assert response.status_code == 403, (obj, key)
        assert client.get(scene.object_url(obj)).status_code == 404
    assert snapshot(*STATE) == before
    # Unfollowing stays allowed (bob follows the station: he can stop).
    response = csrf_client(scene, "bob").post(
        reverse("actrack_dashboard:untrack"),
        {**form_of(scene, "untrack"), "csrfmiddlewaretoken": TOKEN},
    )
    assert response.status_code == 302
    assert not Tracker.objects.filter(pk=scene.bob_tracker.pk).exists()


# --- redirects never leave the site -----------------------------------------------------------

EVIL = [
    "//evil.example",
    "//evil.example/path",
    "https://evil.example",
    "http://evil.example/activity/",
    "\\\\evil",
    "\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    " //evil.example",
    "\t//evil.example",
    "///evil.example",
    "http://testserver@evil.example/",
    "//testserver.evil.example",
    "data:text/html,<script>alert(1)</script>",
]


def _stays_on_site(location: str, base: str = "/activity/") -> bool:
    """Where a browser goes: on this site (browsers read "\\" as "/": none allowed)."""
    resolved = urlsplit(urljoin(f"http://testserver{base}", location))
    return resolved.scheme == "http" and resolved.netloc == "testserver" and "\\" not in location


@pytest.mark.parametrize("name", POST_VIEWS)
@pytest.mark.parametrize("where", ["form", "query"])
def test_next_never_redirects_off_site(scene: Scene, name: str, where: str) -> None:
    client = csrf_client(scene, "alice")
    default = reverse(
        "actrack_dashboard:trackers" if name in ("track", "untrack") else "actrack_dashboard:feed"
    )
    for evil in EVIL:
        data = {**form_of(scene, name), "csrfmiddlewaretoken": TOKEN}
        url = url_of(scene, name)
        if where == "form":
            data["next"] = evil
        else:
            url = f"{url}?{urlencode({'next': evil})}"
        response = client.post(url, data)
        assert response.status_code == 302, evil
        location = response.headers["Location"]
        assert _stays_on_site(location, url), (evil, location)
        # Refused (the default), or harmless: "\\evil.example" is a relative path for
        # Django, sent percent-encoded ("%5Cevil.example"), which browsers do not unescape.
        assert location in (default, "%5Cevil.example"), (evil, location)
    # A path on the site is honoured.
    data = {**form_of(scene, name), "csrfmiddlewaretoken": TOKEN, "next": "/activity/?verb=x"}
    response = client.post(url_of(scene, name), data)
    assert response.headers["Location"] == "/activity/?verb=x"


def test_login_redirect_keeps_next_on_site(scene: Scene) -> None:
    client = Client()
    for evil in EVIL:
        response = client.get(reverse("actrack_dashboard:feed"), {"next": evil})
        assert response.status_code == 302
        assert _stays_on_site(response.headers["Location"])


# --- stored XSS -----------------------------------------------------------------------------

NAME = '"><script>alert(1)</script>'
VERB = "<img src=x onerror=alert(2)>"
DATA = "<b onmouseover=alert(3)>data</b>"
TRACKED_VERB = "<svg onload=alert(4)>"
RAW = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "<b onmouseover",
    "<svg onload",
)


@pytest.fixture
def hostile(scene: Scene) -> Scene:
    """Alice follows a train with a hostile name that did something with a hostile verb."""
    scene.train.name = NAME
    scene.train.save()
    scene.station.name = NAME + " station"
    scene.station.save()
    actrack.track(scene.alice, scene.train, verbs=[VERB, TRACKED_VERB], actor_only=False)
    actrack.track(scene.alice, scene.station, actor_only=False)
    Tracker.objects.update(created=timezone.now() - dt.timedelta(days=1))
    log(scene.train, VERB, targets=scene.station, note=DATA, html=DATA)
    return scene


def _assert_escaped(html: str, *expected: str) -> None:
    for raw in RAW:
        assert raw not in html, raw
    for text in expected:
        assert escape(text) in html, text


@pytest.mark.parametrize("htmx", [False, True])
def test_hostile_names_verbs_and_data_are_escaped_on_every_page(
    hostile: Scene, htmx: bool
) -> None:
    client = hostile.client_for(hostile.alice)
    headers = {"HX-Request": "true"} if htmx else {}
    feed = client.get(reverse("actrack_dashboard:feed"), headers=headers).content.decode()
    _assert_escaped(feed, NAME, VERB)
    page = client.get(hostile.object_url(hostile.train), headers=headers).content.decode()
    _assert_escaped(page, NAME, VERB)
    trackers = client.get(reverse("actrack_dashboard:trackers"), headers=headers).content.decode()
    _assert_escaped(trackers, NAME, TRACKED_VERB)
    badge = client.get(reverse("actrack_dashboard:unread_count"), headers=headers)
    _assert_escaped(badge.content.decode())
    assert badge.context["unread_count"] >= 1
    # The mark-read fragment and the follow button fragment.
    action = Action.objects.get(verb=VERB)
    client.cookies[settings.CSRF_COOKIE_NAME] = TOKEN
    marked = client.post(
        reverse("actrack_dashboard:mark_read", args=[action.pk]), headers={"HX-Request": "true"}
    )
    _assert_escaped(marked.content.decode(), NAME, VERB)
    follow = client.post(
        reverse("actrack_dashboard:track"),
        {"content_type_id": hostile.ct(hostile.train), "object_id": hostile.train.pk},
        headers={"HX-Request": "true", "HX-Target": "actrack-follow"},
    )
    _assert_escaped(follow.content.decode(), NAME)


def test_hostile_values_are_escaped_by_the_embedding_tags(hostile: Scene) -> None:
    home = hostile.client_for(hostile.alice).get("/").content.decode()
    _assert_escaped(home, NAME, VERB)


def test_hostile_values_in_the_feed_filter_form_are_escaped(hostile: Scene) -> None:
    client = hostile.client_for(hostile.alice)
    response = client.get(reverse("actrack_dashboard:feed"), {"verb": NAME})
    _assert_escaped(response.content.decode(), NAME, VERB)


# --- the admin ----------------------------------------------------------------------------

ADMIN_EXISTS = (Path(__file__).resolve().parents[2] / "actrack" / "admin.py").exists()
needs_admin = pytest.mark.skipif(not ADMIN_EXISTS, reason="actrack/admin.py is not written yet")


@needs_admin
@pytest.mark.parametrize("role", ROLES)
def test_admin_action_pages_by_role(scene: Scene, role: str) -> None:
    client = scene.client_for(user_of(scene, role))
    for url in (
        reverse("admin:actrack_action_changelist"),
        reverse("admin:actrack_action_change", args=[scene.shared.pk]),
    ):
        response = client.get(url)
        if role in ("anonymous", "alice", "bob"):
            assert response.status_code == 302
            assert response.headers["Location"].startswith(reverse("admin:login"))
        elif role == "staff":
            assert response.status_code == 403
        else:
            assert response.status_code == 200


@needs_admin
def test_admin_escapes_hostile_names_verbs_and_data(hostile: Scene) -> None:
    client = hostile.client_for(hostile.superuser)
    action = Action.objects.get(verb=VERB)
    changelist = client.get(reverse("admin:actrack_action_changelist")).content.decode()
    _assert_escaped(changelist, VERB)
    change = client.get(reverse("admin:actrack_action_change", args=[action.pk]))
    assert change.status_code == 200
    _assert_escaped(change.content.decode(), VERB)
    assert "&lt;b onmouseover=alert(3)&gt;data&lt;/b&gt;" in change.content.decode()
