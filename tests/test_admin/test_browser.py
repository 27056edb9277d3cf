"""A staff member in a real browser: sign in, filter the Actions list, open the dashboard."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

import actrack
from tests.conftest import make_station, make_train, make_user, settled
from tests.test_admin.conftest import log

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def railway_history() -> dict[str, int]:
    """Three weeks of activity by trains, stations and passengers; returns counts."""
    passengers = [make_user(name) for name in ("alice", "bob", "emma")]
    trains = [make_train(name) for name in ("Seagull", "Night Owl", "Old Faithful")]
    stations = [make_station(name) for name in ("Ashbury", "Redcliffe", "Fairmoor")]
    now = timezone.now()
    counts = {"warning": 0, "error": 0, "by_trains": 0}
    for day in range(21):
        for n in range((day * 7) % 5 + 2):
            when = now - dt.timedelta(days=day, hours=n * 2)
            train, station = trains[(day + n) % 3], stations[n % 3]
            if n % 3 == 0:
                log(train, "departed", targets=station, timestamp=when)
                counts["by_trains"] += 1
            elif n % 3 == 1:
                log(passengers[day % 3], "boarded", targets=train, related=station, timestamp=when)
            else:
                log(train, "was delayed", level=actrack.level.WARNING, minutes=n, timestamp=when)
                counts["warning"] += 1
                counts["by_trains"] += 1
        if day % 6 == 0:
            log(
                None,
                "closed",
                targets=stations[day % 3],
                level=actrack.level.ERROR,
                reason="flooding",
                timestamp=now - dt.timedelta(days=day, hours=9),
            )
            counts["error"] += 1
    trains[2].delete()  # Old Faithful retires: its actions keep a deleted item
    return counts


def test_staff_filters_actions_and_opens_the_dashboard(live_server: Any, page: Page) -> None:
    make_user("ada", is_staff=True, is_superuser=True)  # password "pw"
    counts = railway_history()
    page.set_viewport_size({"width": 1440, "height": 1000})
    ARTIFACTS.mkdir(exist_ok=True)

    # Signing in through the admin's own login form.
    page.goto(f"{live_server.url}/admin/actrack/action/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/actrack/action/$"))
    rows = page.locator("#result_list tbody tr")
    expect(rows.first).to_be_visible()

    # Filtering by level, then by actor type.
    page.locator('details[data-filter-title="level"]').get_by_role(
        "link", name="WARNING", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"level=40"))
    expect(rows).to_have_count(counts["warning"])
    expect(page.locator("#result_list td.field-level_name").first).to_have_text("WARNING")
    page.locator('details[data-filter-title="actor type"]').get_by_role(
        "link", name="Train", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"actor_type=\d+"))
    expect(page).to_have_url(re.compile(r"level=40"))
    # Old Faithful's actions now have a deleted item as actor.
    warnings_by_live_trains = page.locator("#result_list tbody tr")
    expect(warnings_by_live_trains.first).to_be_visible()
    assert 0 < warnings_by_live_trains.count() <= counts["warning"]
    page.locator('details[data-filter-title="level"]').get_by_role(
        "link", name="All", exact=True
    ).click()
    expect(page).not_to_have_url(re.compile(r"level="))
    page.screenshot(path=str(ARTIFACTS / "admin-actions.png"), full_page=False)

    # The dashboard, from the changelist's object tools.
    page.get_by_role("link", name="Activity dashboard").first.click()
    expect(page).to_have_url(re.compile(r"/admin/activity/"))
    expect(page.locator("svg.actrack-chart")).to_be_visible()
    expect(page.locator("svg.actrack-chart rect.actrack-bar")).to_have_count(28)
    expect(page.locator("#actrack-staff-deleted")).to_contain_text("Old Faithful")
    # htmx binds the form's change trigger once the document is loaded: a change
    # made before that would be an ordinary event, with nothing listening.
    page.wait_for_function("() => !!window.htmx && document.readyState === 'complete'")

    # Filters swap the results through htmx and push the URL.
    page.select_option("#id_level", label="ERROR")
    expect(page).to_have_url(re.compile(r"level=50"))
    items = page.locator("#actrack-staff-timeline li.actrack-item")
    expect(items).to_have_count(counts["error"])
    settled(page)
    page.select_option("#id_level", label="All levels")
    expect(page).not_to_have_url(re.compile(r"level=50"))

    # Paging through htmx replaces the timeline.
    settled(page)
    first_item = items.first.get_attribute("id")
    page.get_by_role("link", name="Older »").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(items.first).not_to_have_id(first_item or "")
    settled(page)
    page.get_by_role("link", name="« Newest").click()
    expect(items.first).to_have_id(first_item or "")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)
