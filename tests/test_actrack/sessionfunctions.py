"""What the tests of actrack's PostgreSQL functions share (objectpage, pagefunction)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the function is PostgreSQL's"
)


def calls(log: Any, function: str) -> list[bool]:
    """For each statement of ``log``: whether it called ``function``."""
    return [f"{function}(" in sql for sql in log.statements]


def proconfig(signature: str) -> Any:
    """The settings and volatility of the function ``signature``, or None without it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proconfig, p.provolatile FROM pg_proc p WHERE p.oid = to_regprocedure(%s)",
            [signature],
        )
        return cursor.fetchone()
