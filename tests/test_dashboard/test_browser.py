"""What a person clicks through, in Chromium (Playwright), against a live server.

Screenshots of the feed, the trackers page and the home page land in
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import Page, expect

import actrack
from actrack import readstate
from actrack.models import Tracker
from tests.conftest import make_line, make_station, make_train, settled
from tests.demo.models import Station, Train
from tests.test_dashboard.conftest import follow, log

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def make_alice() -> Any:
    user = get_user_model().objects.create_user(
        "alice", password="demo", first_name="Alice", last_name="Martin"
    )
    return user


def history(user: Any) -> dict[str, Any]:
    """A small railway: the user follows a train and every station closure."""
    line = make_line("Coastal Line")
    seagull, flyer = make_train("Seagull", line=line), make_train("Harbour Flyer", line=line)
    ashbury, redcliffe = make_station("Ashbury"), make_station("Redcliffe")
    follow(user, seagull)
    follow(user, Station, verbs=["closed"])
    actions = [
        log(seagull, "departed", targets=ashbury, related=line, platform=2),
        log(seagull, "was delayed", related=line, minutes=8, level=actrack.level.WARNING),
        log(seagull, "arrived", targets=redcliffe, related=line),
        log(None, "closed", targets=redcliffe, level=actrack.level.ERROR, reason="flooding"),
        log(flyer, "departed", targets=ashbury),  # not followed
    ]
    return {"line": line, "seagull": seagull, "ashbury": ashbury, "actions": actions}


def sign_in(page: Page, live_server: Any, user: Any) -> None:
    """Sign in without the form (the form has its own test): a session cookie."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )


def badge(page: Page) -> Any:
    return page.locator("#actrack-unread-badge .actrack-badge-count")


def test_sign_in_read_the_feed_mark_one_then_all_read(page: Page, live_server: Any) -> None:
    alice = make_alice()
    world = history(alice)
    page.goto(f"{live_server.url}/activity/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/activity/"))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit].login-submit")
    expect(page).to_have_url(f"{live_server.url}/activity/")

    items = page.locator("article.actrack-action")
    expect(items).to_have_count(4)
    expect(page.locator("article.actrack-action.unread")).to_have_count(4)
    expect(badge(page)).to_have_text("4")
    expect(page.locator("#actrack-feed")).to_contain_text("Seagull was delayed")
    screenshot(page, "feed")

    # One item, inline: no page load, the item loses its highlight, the badge follows.
    page.evaluate("window.stillTheSamePage = true")
    arrived = world["actions"][2]
    item = page.locator(f"#action-{arrived.pk}")
    item.get_by_role("button", name="Mark read").click()
    expect(item).not_to_have_class(re.compile(r"\bunread\b"))
    expect(badge(page)).to_have_text("3")
    assert page.evaluate("window.stillTheSamePage") is True
    assert not arrived.is_unread_for(alice)

    settled(page)
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("article.actrack-action.unread")).to_have_count(0)
    expect(items).to_have_count(4)
    expect(badge(page)).to_have_text("0")
    assert page.evaluate("window.stillTheSamePage") is True
    assert readstate.unread_count(alice) == 0


def test_filter_and_load_more(page: Page, live_server: Any, settings: Any) -> None:
    settings.ACTRACK_DASHBOARD = {"PAGE_SIZE": 2}
    alice = make_alice()
    world = history(alice)
    for minutes in (3, 5):
        log(world["seagull"], "departed", related=world["line"], minutes=minutes)
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/activity/")
    expect(page.locator("article.actrack-action")).to_have_count(2)

    page.evaluate("window.stillTheSamePage = true")
    page.select_option("select[name=verb]", "departed")
    expect(page).to_have_url(re.compile(r"/activity/\?verb=departed$"))
    expect(page.locator("article.actrack-action")).to_have_count(2)
    settled(page)
    page.get_by_role("link", name="Load more").click()
    expect(page.locator("article.actrack-action")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"verb=departed&cursor="))
    expect(page.get_by_role("link", name="Load more")).to_have_count(0)
    texts = page.locator("article.actrack-action .actrack-action-text").all_inner_texts()
    assert all("departed" in text for text in texts)

    settled(page)
    page.locator("input[name=level][value=ERROR]").check()  # a change: the form is sent
    expect(page.locator("#actrack-feed .actrack-empty")).to_contain_text("Nothing matches")
    settled(page)
    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(f"{live_server.url}/activity/")
    settled(page)
    page.locator("input[name=unread]").check()
    expect(page).to_have_url(re.compile(r"unread=on"))
    expect(page.locator("article.actrack-action")).to_have_count(2)
    assert page.evaluate("window.stillTheSamePage") is True

    page.go_back()  # history restores the previous filters
    expect(page).to_have_url(f"{live_server.url}/activity/")


def test_follow_and_unfollow_an_object_and_a_model(page: Page, live_server: Any) -> None:
    alice = make_alice()
    world = history(alice)
    ashbury = world["ashbury"]
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Open your feed").wait_for()
    page.goto(f"{live_server.url}/activity/following/")
    page.get_by_role("link", name="Seagull").click()
    expect(page.locator("h1")).to_have_text("Seagull")

    # An object: from its activity page.
    page.goto(f"{live_server.url}{object_url(ashbury)}")
    follow_box = page.locator(".actrack-object-follow .actrack-follow").first
    follow_box.get_by_role("button", name="Follow").click()
    expect(follow_box).to_have_class(re.compile(r"is-following"))
    assert Tracker.objects.owned_by(alice).exactly(ashbury).get().actor_only is False
    settled(page)
    follow_box.get_by_role("button").click()  # "Following", "Unfollow" on hover
    expect(follow_box).not_to_have_class(re.compile(r"is-following"))
    assert not Tracker.objects.owned_by(alice).exactly(ashbury).exists()

    # A model: from the trackers page's form, then unfollowed from its row.
    page.goto(f"{live_server.url}/activity/following/")
    page.select_option("select[name=content_type_id]", label="Trains")
    page.fill("#actrack-follow-model-verbs", "departed, arrived")
    page.get_by_role("button", name="Follow", exact=True).click()
    row = page.locator("li.actrack-tracker", has_text="Trains")
    expect(row).to_have_count(1)
    expect(row.locator("input[name=verbs]")).to_have_value("arrived, departed")
    assert sorted(Tracker.objects.owned_by(alice).exactly(Train).get().verbs) == [
        "arrived",
        "departed",
    ]
    settled(page)
    row.locator("input[name=verbs]").fill("")
    row.locator("input[name=actor_only][value=true]").check()
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".actrack-tracker-summary")).to_contain_text("all verbs")
    screenshot(page, "trackers")
    settled(page)
    row.get_by_role("button", name="Unfollow").click()
    expect(page.locator("li.actrack-tracker", has_text="Trains")).to_have_count(0)
    assert not Tracker.objects.owned_by(alice).exactly(Train).exists()


def test_home_page_embeds_the_feed_and_follow_buttons(page: Page, live_server: Any) -> None:
    alice = make_alice()
    world = history(alice)
    sign_in(page, live_server, alice)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/")
    embedded = page.locator("#actrack-embedded-feed")
    expect(embedded.locator("article.actrack-action")).to_have_count(4)
    expect(badge(page)).to_have_text("4")
    screenshot(page, "home")

    first = embedded.locator("article.actrack-action.unread").first
    first.get_by_role("button", name="Mark read").click()
    expect(embedded.locator("article.actrack-action.unread")).to_have_count(3)
    expect(badge(page)).to_have_text("3")

    trains = page.locator("section", has=page.locator("#trains-title"))
    settled(page)
    trains.get_by_role("button", name="Follow all trains").click()
    expect(trains.locator(".actrack-follow.is-following").first).to_contain_text("all trains")
    assert Tracker.objects.owned_by(alice).exactly(Train).exists()
    assert world["seagull"] in {t.tracked for t in Tracker.objects.owned_by(alice)}

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/activity/")
    screenshot(page, "feed-mobile")


def object_url(obj: Any) -> str:
    from actrack_dashboard.objects import object_actions_url

    return object_actions_url(obj)
