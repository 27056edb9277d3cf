"""Shared settings and builders of the reliability suite.

Hypothesis runs derandomized by default (the same inputs on every run, so CI
is stable); set ``HYPOTHESIS_PROFILE=explore`` for fresh random inputs and
``ACTRACK_HYPOTHESIS_EXAMPLES=N`` for more of them.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings

#: Examples per property-based test.
MAX_EXAMPLES = int(os.environ.get("ACTRACK_HYPOTHESIS_EXAMPLES", "60"))

settings.register_profile(
    "actrack-reliability",
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    # The scene fixture is built once per test and shared by its examples on purpose.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
settings.register_profile(
    "explore",
    parent=settings.get_profile("actrack-reliability"),
    derandomize=False,
)

#: The profile the reliability tests use (``@RELIABLE`` on each ``@given`` test).
RELIABLE = settings(
    settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "actrack-reliability"))
)

#: Inputs tried per test (examples hypothesis ran), printed by each test.
TRIED: Counter[str] = Counter()
#: Status codes answered per test, printed by each test.
STATUSES: dict[str, Counter[int]] = {}


def tried(name: str) -> None:
    TRIED[name] += 1


def answered(name: str, status: int) -> None:
    STATUSES.setdefault(name, Counter())[status] += 1


def report(name: str, minimum: int) -> int:
    """Print and check how many inputs a property-based test tried."""
    count = TRIED[name]
    statuses = dict(sorted(STATUSES.get(name, Counter()).items()))
    # Shown with -rP; the numbers go to docs/security.md.
    print(f"{name}: {count} inputs tried; statuses {statuses}")
    assert count >= minimum, f"{name} tried only {count} inputs"
    return count


def snapshot(*models: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``models`` (small tables), to compare before/after a request."""
    return {
        model._meta.label: sorted(
            (tuple(repr(value) for value in row) for row in model.objects.values_list()),
        )
        for model in models
    }
