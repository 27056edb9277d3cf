"""Driving Django's real ASGI handler from tests, on an event loop in its own thread.

Playwright may hold an event loop in the main thread, so the loop runs in a
fresh thread with ``asyncio.run`` (never ``async_to_sync`` in the main thread).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.asgi import get_asgi_application

T = TypeVar("T")


async def asgi_get(url: str) -> tuple[int, bytes]:
    """One GET through ``get_asgi_application()``: (status, body)."""
    parts = urlsplit(url)
    application = get_asgi_application()
    done = asyncio.Event()
    sent_body = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await application(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


def run_in_loop_thread(coroutine_function: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
    """Run a coroutine on a fresh event loop in its own thread, like an ASGI server."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(coroutine_function()))  # type: ignore[arg-type]
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=timeout)
    assert not thread.is_alive(), "the ASGI requests did not finish in time"
    if errors:
        raise errors[0]
    return results[0]
