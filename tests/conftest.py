"""Shared fixtures and small builders for the whole suite."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.demo.models import Journey, Line, Note, Station, Ticket, Train

_counter = itertools.count(1)

# Browser tests (tests/*/test_browser.py). Playwright's sync API runs an event
# loop in the test thread, and live_server tests touch the database from it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True, scope="session")
def _patient_browser_expectations() -> None:
    """CI runs two test workers on two cores: give pages time before failing."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Drive Debian's Chromium (installed by make test); never a downloaded browser."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# htmx classes present from a request's start until the new content is live.
# Swapped-in links and forms get their hx-* behaviour when the swap settles
# (htmx's settle delay, 20 ms): a click before then is a plain browser request.
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"


def settled(page: Any) -> None:
    """Wait until htmx has finished every swap on the page, before the next click."""
    from playwright.sync_api import expect

    expect(page.locator(HTMX_BUSY)).to_have_count(0)


@pytest.fixture(autouse=True)
def _fresh_count_memo() -> Iterator[None]:
    """Each test starts with no user remembered as needing the count's fan-out or
    the whole page statement, no unread actions kept to check again and no
    tracker rows kept (test databases reuse ids), and its database session as
    one that has sent no count or object page (``actrack.sessionuse``)."""
    from actrack import countfunction, feedengine, objectpage, readstate, trackercache
    from actrack.sessionuse import SessionUses

    memos = (readstate._FAN_OUT_USERS, readstate._WITNESSES, feedengine._WHOLE_STATEMENT_FEEDS)
    for memo in memos:
        memo.clear()
    trackercache.forget_all()
    countfunction._SESSIONS = SessionUses()
    objectpage.OBJECT_PAGE.sessions = SessionUses()
    yield
    for memo in memos:
        memo.clear()
    trackercache.forget_all()


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """Replaces pytest-playwright's fallback ``base_url`` fixture.

    Without pytest-base-url, pytest-playwright 0.10 defines it as a method of a
    plugin class, which pytest 9 deprecates with a warning (an error under
    ``-W error``). The tests build full URLs from ``live_server.url``.
    """
    return None


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """The demo keeps Django's default hasher; tests need no key stretching."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def all_page_ids(queryset_factory: Any, size: int) -> list[int]:
    """The ids of every page of ``queryset_factory()``, following the cursors."""
    ids: list[int] = []
    cursor = None
    while True:
        page = queryset_factory().page(cursor=cursor, size=size)
        ids.extend(a.pk for a in page.actions)
        cursor = page.next_cursor
        if cursor is None:
            return ids


def make_user(username: str | None = None, **kwargs: Any) -> Any:
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password="pw", **kwargs)


def make_station(name: str | None = None) -> Station:
    return Station.objects.create(name=name or f"Station {next(_counter)}")


def make_train(name: str | None = None, line: Line | None = None) -> Train:
    return Train.objects.create(name=name or f"Train {next(_counter)}", line=line)


def make_line(name: str | None = None) -> Line:
    return Line.objects.create(name=name or f"Line {next(_counter)}")


def make_journey(train: Train | None = None) -> Journey:
    return Journey.objects.create(
        train=train or make_train(), origin=make_station(), destination=make_station()
    )


def make_ticket(code: str | None = None) -> Ticket:
    return Ticket.objects.create(code=code or f"T{next(_counter)}")


def make_note(text: str | None = None) -> Note:
    return Note.objects.create(text=text or f"note {next(_counter)}")


def log(actor: Any, verb: str = "did", **kwargs: Any) -> Any:
    """Log at once (no grouping unless asked) and return the saved action."""
    import actrack

    kwargs.setdefault("grouping_delay", -1)
    action = actrack.log(actor, verb, **kwargs)
    assert action is not None
    return action


class QueryLog:
    """Queries captured on the default connection, without transaction statements."""

    def __init__(self, context: CaptureQueriesContext) -> None:
        self.context = context

    @property
    def statements(self) -> list[str]:
        skip = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
        return [
            q["sql"] or ""
            for q in self.context.captured_queries
            if not (q["sql"] or "").upper().startswith(skip)
        ]

    def __len__(self) -> int:
        return len(self.statements)

    def writes(self) -> list[str]:
        """Statements that write, including ``WITH ... INSERT`` (data-modifying CTEs)."""
        writing = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM)\b", re.I)
        return [
            sql
            for sql in self.statements
            if sql.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
            or (sql.split()[0].upper() == "WITH" and writing.search(sql))
        ]


@pytest.fixture
def queries() -> Iterator[QueryLog]:
    """``with`` nothing: everything run during the test after the fixture starts."""
    with CaptureQueriesContext(connection) as context:
        yield QueryLog(context)


@pytest.fixture
def count_queries() -> Any:
    """``with count_queries() as log: ...`` then ``len(log)``."""

    class _Counter:
        def __call__(self) -> Any:
            return _Capture()

    class _Capture:
        def __enter__(self) -> QueryLog:
            self.context = CaptureQueriesContext(connection)
            self.context.__enter__()
            return QueryLog(self.context)

        def __exit__(self, *exc: Any) -> None:
            self.context.__exit__(*exc)

    return _Counter()
