"""The feed page: page and fragment, filters, cursor pages, read state left alone."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

import actrack
from actrack import readstate
from actrack.models import Action
from tests.conftest import make_station, make_train, make_user
from tests.test_dashboard.conftest import Scene, follow, hx, log

pytestmark = pytest.mark.django_db

FEED = reverse("actrack_dashboard:feed")


def action_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article id="action-(\d+)"', html)]


def unread_ids(html: str) -> list[int]:
    return [
        int(pk)
        for pk in re.findall(r'<article id="action-(\d+)" class="[^"]*\bunread\b[^"]*"', html)
    ]


def test_full_page_lists_the_feed_newest_first_unread(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(FEED)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'id="actrack-feed"' in html
    expected = [a.pk for a in reversed(scene.alice_actions)]
    assert action_ids(html) == expected
    assert unread_ids(html) == expected
    assert "Seagull departed" in html
    assert "HX-Request" in response["Vary"]


def test_htmx_request_gets_the_feed_fragment(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(FEED, headers=hx(target="actrack-feed"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.startswith('<div id="actrack-feed"')
    assert action_ids(html) == [a.pk for a in reversed(scene.alice_actions)]
    assert response["HX-Push-Url"] == FEED
    assert "HX-Request" in response["Vary"]


def test_history_restore_gets_the_whole_page(scene: Scene, alice_client: Client) -> None:
    headers = hx(**{"HX-History-Restore-Request": "true"})
    assert "<html" in alice_client.get(FEED, headers=headers).content.decode()


def test_anonymous_is_sent_to_login(scene: Scene, client: Client) -> None:
    response = client.get(FEED + "?verb=departed")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=/activity/%3Fverb%3Ddeparted" in response["Location"]


def test_anonymous_htmx_request_is_refused_with_a_redirect_header(
    scene: Scene, client: Client
) -> None:
    response = client.get(FEED, headers=hx(**{"HX-Current-URL": "http://testserver/"}))
    assert response.status_code == 403
    assert response["HX-Redirect"].startswith(reverse("login"))
    assert "Seagull" not in response.content.decode()


def test_other_users_actions_are_never_shown(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(FEED).content.decode()
    assert scene.bob_actions[0].pk not in action_ids(html)
    assert "Ashbury" not in html


def test_showing_the_feed_marks_nothing_read(
    scene: Scene, alice_client: Client, count_queries: Any
) -> None:
    before = readstate.unread_count(scene.alice)
    with count_queries() as queries:
        alice_client.get(FEED)
        alice_client.get(FEED, headers=hx())
    assert readstate.unread_count(scene.alice) == before == 3
    assert [sql for sql in queries.writes() if "actrack" in sql] == []


@override_settings(ACTRACK_DASHBOARD={"MARK_READ_ON_VIEW": True})
def test_mark_read_on_view_marks_the_shown_items(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(FEED, headers=hx())
    # Shown highlighted this once, read afterwards; the badge is told to refresh.
    assert len(unread_ids(response.content.decode())) == 3
    assert "actrackUnreadChanged" in response["HX-Trigger"]
    assert readstate.unread_count(scene.alice) == 0
    assert unread_ids(alice_client.get(FEED).content.decode()) == []


@override_settings(ACTRACK={"AUTO_READ": True})
def test_auto_read_does_not_mark_on_view(scene: Scene, alice_client: Client) -> None:
    alice_client.get(FEED)
    assert readstate.unread_count(scene.alice) == 3


def test_post_is_not_allowed(scene: Scene, alice_client: Client) -> None:
    assert alice_client.post(FEED).status_code == 405


# --- filters -------------------------------------------------------------------------


def test_filter_by_verb(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(FEED, {"verb": "arrived"}).content.decode()
    assert action_ids(html) == [scene.alice_actions[2].pk]
    assert '<option value="arrived" selected>' in html


def test_filter_by_several_verbs(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(FEED, {"verb": ["arrived", "departed"]}).content.decode()
    assert action_ids(html) == [scene.alice_actions[2].pk, scene.alice_actions[0].pk]


def test_unknown_but_well_formed_verb_matches_nothing(scene: Scene, alice_client: Client) -> None:
    response = alice_client.get(FEED, {"verb": "teleported"})
    assert response.status_code == 200
    assert action_ids(response.content.decode()) == []
    assert "Nothing matches these filters." in response.content.decode()


def test_filter_by_level(scene: Scene, alice_client: Client) -> None:
    html = alice_client.get(FEED, {"level": "WARNING"}).content.decode()
    assert action_ids(html) == [scene.alice_actions[1].pk]


def test_levels_below_the_readable_level_are_not_offered(
    scene: Scene, alice_client: Client
) -> None:
    html = alice_client.get(FEED).content.decode()
    assert 'value="WARNING"' in html
    assert 'value="DEBUG"' not in html
    assert alice_client.get(FEED, {"level": "DEBUG"}).status_code == 400


def test_filter_by_model(scene: Scene, alice_client: Client) -> None:
    station = make_station("Redcliffe")
    at_station = log(scene.train, "stopped", targets=station)
    html = alice_client.get(FEED, {"model": "demo.station"}).content.decode()
    assert action_ids(html) == [at_station.pk]


def test_filter_unread_only(scene: Scene, alice_client: Client) -> None:
    scene.alice_actions[2].mark_read_for(scene.alice, force=True)
    html = alice_client.get(FEED, {"unread": "on"}).content.decode()
    assert action_ids(html) == [scene.alice_actions[1].pk, scene.alice_actions[0].pk]
    html = alice_client.get(FEED, {"unread": "false"}).content.decode()
    assert len(action_ids(html)) == 3


def test_filter_by_date_range(scene: Scene, alice_client: Client) -> None:
    old = log(scene.train, "departed", timestamp=timezone.now() - dt.timedelta(days=10))
    today = timezone.localdate()
    ten_days_ago = (today - dt.timedelta(days=10)).isoformat()
    html = alice_client.get(FEED, {"until": ten_days_ago}).content.decode()
    assert action_ids(html) == [old.pk]
    html = alice_client.get(FEED, {"since": today.isoformat()}).content.decode()
    assert old.pk not in action_ids(html)
    assert len(action_ids(html)) == 3
    html = alice_client.get(FEED, {"since": ten_days_ago, "until": ten_days_ago}).content.decode()
    assert action_ids(html) == [old.pk]


def test_filters_combine_and_keep_their_values_in_the_pages(
    scene: Scene, alice_client: Client
) -> None:
    response = alice_client.get(
        FEED, {"verb": "departed", "level": "INFO", "since": "", "model": ""}, headers=hx()
    )
    assert action_ids(response.content.decode()) == [scene.alice_actions[0].pk]
    # The pushed URL drops empty values.
    assert response["HX-Push-Url"] == f"{FEED}?verb=departed&level=INFO"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"level": "LOUD"}, "Level"),
        ({"level": "30"}, "Level"),
        ({"model": "demo.note"}, "About"),
        ({"model": "nope"}, "About"),
        ({"since": "yesterday"}, "From"),
        ({"until": "2024-02-30"}, "To"),
        ({"since": "2024-03-02", "until": "2024-03-01"}, "start date is after the end date"),
        ({"verb": "x" * 256}, "Verb"),
        ({"verb": "a\x00b"}, "Verb"),
        ({"verb": [f"v{i}" for i in range(21)]}, "at most 20 verbs"),
        ({"unread": "banana"}, "Unread only"),
        ({"since": "99999-01-01"}, "From"),
    ],
)
def test_invalid_filters_are_a_400_with_a_message(
    scene: Scene, alice_client: Client, params: dict[str, Any], message: str
) -> None:
    response = alice_client.get(FEED, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Invalid filter" in html
    assert message in html
    assert readstate.unread_count(scene.alice) == 3


def test_invalid_filter_in_htmx_goes_to_the_messages_area(
    scene: Scene, alice_client: Client
) -> None:
    response = alice_client.get(FEED, {"level": "LOUD"}, headers=hx())
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#actrack-messages"
    assert response["HX-Reswap"] == "innerHTML"
    assert response.content.decode().startswith('<div id="actrack-error"')


def test_until_the_last_day_there_is(scene: Scene, alice_client: Client) -> None:
    assert alice_client.get(FEED, {"until": "9999-12-31"}).status_code == 200


# --- cursor pages --------------------------------------------------------------------


@override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 2})
def test_load_more_walks_the_pages_without_gaps(scene: Scene, alice_client: Client) -> None:
    extra = [log(scene.train, f"passed signal {i}") for i in range(3)]
    expected = [a.pk for a in reversed(scene.alice_actions + extra)]
    html = alice_client.get(FEED).content.decode()
    seen = action_ids(html)
    while 'id="actrack-load-more"' in html:
        next_url = re.search(r'id="actrack-load-more".*?href="([^"]+)"', html, re.S)
        assert next_url is not None
        url = next_url.group(1).replace("&amp;", "&")
        response = alice_client.get(url, headers=hx(target="actrack-load-more"))
        html = response.content.decode()
        assert html.startswith('<div id="actrack-page-')
        assert response["HX-Push-Url"] == url
        seen += action_ids(html)
    assert seen == expected


@override_settings(ACTRACK_DASHBOARD={"PAGE_SIZE": 2})
def test_a_cursor_page_keeps_the_filters(scene: Scene, alice_client: Client) -> None:
    for i in range(3):
        log(scene.train, "departed", note=i)
    html = alice_client.get(FEED, {"verb": "departed"}).content.decode()
    match = re.search(r'id="actrack-load-more".*?href="([^"]+)"', html, re.S)
    assert match is not None
    url = match.group(1).replace("&amp;", "&")
    assert "verb=departed" in url
    page = alice_client.get(url).content.decode()
    assert "<html" in page
    assert "Back to the newest" in page
    assert all(Action.objects.get(pk=pk).verb == "departed" for pk in action_ids(page))


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "x" * 300,
        base64.urlsafe_b64encode(b"not-a-date|5").decode(),
        base64.urlsafe_b64encode(b"2024-01-01T00:00:00+00:00|0").decode(),
        # A naive timestamp: decodes, but would compare naive with aware datetimes.
        base64.urlsafe_b64encode(b"2024-01-01T00:00:00|5").decode().rstrip("="),
    ],
)
def test_malformed_cursor_is_a_400(scene: Scene, alice_client: Client, cursor: str) -> None:
    response = alice_client.get(FEED, {"cursor": cursor})
    assert response.status_code == 400
    assert "malformed cursor" in response.content.decode()


def test_empty_feed_explains_how_to_follow(db: Any) -> None:
    client = Client()
    client.force_login(make_user())
    html = client.get(FEED).content.decode()
    assert "Nothing in your feed yet" in html
    assert reverse("actrack_dashboard:trackers") in html


def test_own_actions_are_left_out(scene: Scene, alice_client: Client) -> None:
    own = log(scene.alice, "boarded", targets=scene.train)
    assert own.pk not in action_ids(alice_client.get(FEED).content.decode())


def test_rendering_goes_through_the_handlers(scene: Scene, alice_client: Client) -> None:
    class Departed(actrack.ActionHandler):
        verb = "dashboard test departed"

        def render(self, context: dict[str, Any]) -> str:
            return f"<b>custom</b> {context['unread']}"

    train = make_train()
    follow(scene.alice, train)
    log(train, "dashboard test departed")
    html = alice_client.get(FEED).content.decode()
    assert "<b>custom</b> True" in html


def test_object_names_are_escaped(scene: Scene, alice_client: Client) -> None:
    scene.train.name = "<script>alert(1)</script>"
    scene.train.save()
    html = alice_client.get(FEED).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@override_settings(ACTRACK={"TRACK_UNREAD": False})
def test_without_read_state_nothing_is_unread(scene: Scene, alice_client: Client) -> None:
    class Echo(actrack.ActionHandler):
        verb = "dashboard test echo"

        def render(self, context: dict[str, Any]) -> str:
            return f"echo unread={context.get('unread')!r}"

    log(scene.train, "dashboard test echo")
    html = alice_client.get(FEED).content.decode()
    assert len(action_ids(html)) == 4
    assert unread_ids(html) == []
    assert "echo unread=None" in html
    assert '<span class="actrack-badge-count">0</span>' in html
