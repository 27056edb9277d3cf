"""Running the benchmark command in a subprocess, and report text for its tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``manage.py actrack_bench *args`` with the benchmark site's settings."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.bench.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", "actrack_bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def section(database: str, size: str, rows: list[str], *, title: str = "PostgreSQL") -> str:
    """A report section as ``report.section`` writes it, cut to what growth reads."""
    return "\n\n".join(
        [
            f"<!-- actrack-bench:{database}:begin -->",
            f"## {title}: size {size} (1,000,000 actions)",
            "Generated 2026-11-29 06:36 UTC by `python manage.py actrack_bench`; wall time 5 min.",
            "### Machine",
            "|  |  |\n| --- | --- |\n| django-actrack | 2.0.0.dev0 (git 1e88107) |",
            "### Results",
            "| operation | samples | actrack p50 | p95 | max | queries | actstream p50 | p95 "
            "| max | queries | ratio p50 | ratio max |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
            + "\n".join(rows),
            "### Feed page 1 per user type",
            "| user type | ids p50 actrack |\n| --- | --- |\n| dense | 99.0 |",
            f"<!-- actrack-bench:{database}:end -->",
        ]
    )


FEED = (
    "| feed page 1 (ids) | 135 | 2.27 | 5.92 | 9.88 | 1 | 9.11 | 38.5 | 454.3 | 1-3 | 4.0x | 46x |"
)
COUNT = "| unread count (cap 100) | 135 | 0.61 | 1.45 | 3.73 | 1 | n/a |  |  | n/a | n/a | n/a |"
DELETE = (
    "| delete an object with 10,000 references | 2 | 1,081 | 1,100 | 1,100 | 8 | 2,827 "
    "| 3,353 | 3,353 | 105 | 2.6x | 3.0x |"
)
UNTIMED = (
    "| feed page 10 (cursor; actstream OFFSET 180) | 0 | - | - | - | 1 | - | - | - | 1 "
    "| n/a | n/a |"
)
