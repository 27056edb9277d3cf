"""The benchmark command runs end to end at a tiny size and measures real work.

It runs ``actrack_bench`` in a subprocess (the benchmark site has its own
settings, with django-activity-stream installed) on a throwaway SQLite file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.benchrun import COUNT, FEED, ROOT, run_bench, section

pytest.importorskip(
    "actstream",
    reason="django-activity-stream is not installed (it is in the test and bench groups)",
)

SECTIONS = [
    "## SQLite: size XS (2,000 actions)",
    "### Machine",
    "### Dataset and loading",
    "### Results",
    "### Feed page 1 per user type",
    "### Queries for a rendered feed page (dense user)",
    "### Goals",
    "### Where actrack loses",
    "### Notes",
]
OPERATIONS = [
    "feed page 1 (ids)",
    "feed page 1 (ids), first page in the process",
    "feed page 1 rendered",
    "feed page 10 (cursor; actstream OFFSET 180)",
    "feed page 50 (cursor; actstream OFFSET 980)",
    "object stream page 1 (ids)",
    "unread count (cap 100)",
    "unread count, trackers a year old (cap 100)",
    "unread count, trackers a year old, first count (cap 100)",
    "mark all read",
    "log() one action (outside a batch)",
    "log() one action, one target and one related (outside a batch)",
    "track one object",
    "untrack one object",
    "delete an object with 200 references",
]
USER_TYPES = ["dense", "sparse", "quiet", "heavy", "whole-model", "verb-filtered", "none"]


def table_rows(report: str, heading: str) -> dict[str, list[str]]:
    """The rows of the table under ``heading``, by first cell."""
    block = report.split(heading, 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.bench
def test_bench_command_reports_every_operation(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    # A report of another run to compare medians with (see test_growth).
    reference = tmp_path / "benchmarks-s.md"
    reference.write_text(
        section("sqlite", "S", [FEED, COUNT], title="SQLite")
        + section("postgres", "S", [FEED], title="PostgreSQL")
    )
    done = run_bench(
        "--db",
        "sqlite",
        "--size",
        "XS",
        "--users",
        "1",
        "--repeat",
        "1",
        "--sqlite-path",
        str(tmp_path / "smoke_bench.sqlite3"),
        "--output",
        str(output),
        "--growth-from",
        str(reference),
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = output.read_text()
    assert report.startswith("# Benchmarks: actrack and django-activity-stream")
    assert done.stdout.strip() in report
    positions = [report.find(section) for section in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)

    machine = table_rows(report, "### Machine")
    for fact in ("CPU", "RAM", "Python", "Django", "django-activity-stream", "Database"):
        assert machine[fact][1], fact

    results = table_rows(report, "### Results")
    for operation in OPERATIONS:
        assert operation in results, operation
        row = results[operation]
        assert re.fullmatch(r"[\d.,]+", row[2]), row  # actrack p50, in ms
        assert row[5] not in ("", "-"), row  # actrack queries
    # a ratio against actstream, bold when actrack is slower
    assert re.fullmatch(r"(\*\*)?[\d.,]+x(\*\*)?", results["feed page 1 (ids)"][10])
    assert results["unread count (cap 100)"][6] == "n/a"  # actstream has no read state

    feeds = table_rows(report, "### Feed page 1 per user type")
    assert set(USER_TYPES) | {"ordinary"} <= set(feeds)
    dense_items = feeds["dense"][3]  # "actrack / actstream" items on page 1
    actrack_items, actstream_items = (int(n) for n in dense_items.split(" / "))
    assert actrack_items == 20 and actstream_items == 20
    assert feeds["none"][3] == "0 / 0"

    goals = table_rows(report, "### Goals")
    assert any(goal.startswith("bulk logging") for goal in goals)
    deep = next(cells for goal, cells in goals.items() if goal.startswith("page 50 costs"))
    assert re.fullmatch(r"(\w+ \d+\.\d\dx)(, \w+ \d+\.\d\dx)*", deep[1]), deep
    # The goal's turns are not cut to --repeat 1: a median of a few calls is noise.
    turns = re.search(r"in turns \((\d+) calls of each", report)
    assert turns is not None and int(turns.group(1)) >= 25, report[-2000:]

    # The SQLite section of the reference, before the goals: this run's medians beside it.
    assert report.find("### Growth") < report.find("### Goals")
    growth = table_rows(report, "### Growth")
    assert growth["feed page 1 (ids)"][1:2] == ["2.27"]
    assert re.fullmatch(r"[\d.,]+", growth["feed page 1 (ids)"][2])
    assert growth["unread count (cap 100)"][4:] == ["n/a", "n/a", "n/a"]
    assert len(growth) == 3  # the header and the two operations of the reference
    row = next(cells for goal, cells in goals.items() if goal.startswith("growth: 5M vs 1M"))
    assert row[1].startswith("vs size S (benchmarks-s.md, run of 2026-11-29 06:36 UTC at 1e88107)")
    assert row[1].endswith("(size S to XS: not the goal's sizes)") and row[2] == "-"
    assert "--growth-from" in report.split("### Machine", 1)[0]


def test_report_command_names_driver_options_without_the_password() -> None:
    """Prepared statements change the figures: a report run with them says so."""
    script = (
        "import django, json, sys; django.setup()\n"
        "from tests.bench.management.commands.actrack_bench import _command_line\n"
        "options = json.loads(sys.argv[1])\n"
        "print(_command_line('postgres', options))\n"
        "print(_command_line('sqlite', options))\n"
        "options['database_url'] = 'postgres://u:secret@h/actrack_bench'\n"
        "print(_command_line('postgres', options))\n"
    )
    url = "postgres://u:secret@h:5433/actrack_bench?server_side_binding=true&prepare_threshold=5"
    options = {"size": "S", "seed": 1, "users": None, "repeat": 5, "database_url": url}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.bench.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(options)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    postgres, sqlite, plain = done.stdout.splitlines()
    assert "secret" not in done.stdout
    assert postgres.endswith(
        "--database-url 'postgres://u@h:5433/actrack_bench?server_side_binding=true"
        "&prepare_threshold=5'"
    )
    assert "--database-url" not in sqlite
    assert "--database-url" not in plain
