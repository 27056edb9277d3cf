"""Growth with the data: this run's medians against a report of a smaller size.

PERFORMANCE.md asks that 5M actions be at most 2x slower than 1M. One run
holds one size, so a run at L (``--growth-from docs/benchmarks-m.md``) reads
the same database's section of the M report and compares the medians of the
operations both timed. The two runs are different moments of a shared
machine: django-activity-stream's medians, whose cost does not depend on
actrack, are compared alongside, to show how far the machine itself moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.formatting import ms, table
from tests.bench.results import MAIN_GROUPS, Results

#: The goal's sizes: it is judged when a run at ``LARGER`` reads a report at ``SMALLER``.
SMALLER, LARGER = "M", "L"
#: At most this many times slower on the larger data.
MAX_GROWTH = 2.0

SECTION_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


class GrowthError(ValueError):
    """The reference report cannot be used (missing, no section, no results)."""


@dataclass
class Reference:
    """A report's section for one database: what a larger run is compared with."""

    path: Path
    database: str
    size: str
    generated: str  # "2026-11-29 06:36 UTC"
    commit: str  # the git description in its machine table, or "" when absent
    #: operation -> (actrack p50, actstream p50 or None), the main rows.
    medians: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def label(self) -> str:
        at = f" at {self.commit}" if self.commit else ""
        return f"size {self.size} ({self.path.name}, run of {self.generated}{at})"


def read_reference(path: Path, database: str) -> Reference:
    """The section of ``database`` in the report at ``path``; GrowthError if unusable."""
    try:
        text = path.read_text()
    except OSError as error:
        raise GrowthError(f"cannot read {path}: {error.strerror or error}") from error
    match = re.search(
        rf"<!-- actrack-bench:{database}:begin -->(.*?)<!-- actrack-bench:{database}:end -->",
        text,
        re.S,
    )
    if match is None:
        raise GrowthError(f"{path} has no {SECTION_TITLES[database]} section")
    body = match.group(1)
    size = re.search(r"^## \w+: size (\w+) ", body, re.M)
    generated = re.search(r"^Generated (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", body, re.M)
    if size is None or generated is None:
        raise GrowthError(f"the {SECTION_TITLES[database]} section of {path} has no size or date")
    commit = re.search(r"^\| django-actrack \| [^|(]*\(git ([^)]+)\) \|", body, re.M)
    reference = Reference(
        path=path,
        database=database,
        size=size.group(1),
        generated=generated.group(1),
        commit=commit.group(1) if commit else "",
        medians=_results_medians(body),
    )
    if not reference.medians:
        raise GrowthError(f"the {SECTION_TITLES[database]} section of {path} has no results")
    return reference


def _results_medians(body: str) -> dict[str, tuple[float, float | None]]:
    """The p50 columns of the results table: operation -> (actrack, actstream or None)."""
    parts = body.split("### Results", 1)
    if len(parts) < 2:
        return {}
    block = parts[1].split("\n### ", 1)[0]
    medians: dict[str, tuple[float, float | None]] = {}
    for line in block.splitlines():
        if not line.startswith("| ") or line.startswith("| ---"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 7 or cells[0] == "operation":
            continue
        actrack = _number(cells[2])
        if actrack is None or actrack <= 0:
            continue  # not timed (too short a feed, say)
        medians[cells[0]] = (actrack, _number(cells[6]))
    return medians


def _number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        return None


@dataclass
class Growth:
    """Per operation timed in both runs: (operation, before, now, actstream before, now)."""

    reference: Reference
    size: str
    rows: list[tuple[str, float, float, float | None, float | None]]

    def judged(self) -> bool:
        """Whether the goal's sizes are the two compared (M, then L)."""
        return (self.reference.size, self.size) == (SMALLER, LARGER)

    def worst(self) -> tuple[str, float] | None:
        factors = [(operation, now / before) for operation, before, now, _b, _n in self.rows]
        return max(factors, key=lambda item: item[1]) if factors else None


def compare(reference: Reference, size: str, results: Results) -> Growth:
    """This run's main rows (``size``) against ``reference``, in this run's order."""
    rows = []
    for row in results.rows.values():
        if row.group not in MAIN_GROUPS or not row.actrack.ms:
            continue
        before = reference.medians.get(row.operation)
        if before is None:
            continue
        theirs = row.actstream.p50 if row.actstream is not None and row.actstream.ms else None
        rows.append((row.operation, before[0], row.actrack.p50, before[1], theirs))
    return Growth(reference, size, rows)


def goal(growth: Growth | None) -> tuple[str, str, bool | None]:
    """The goals table's row: judged only for an L run read against an M report."""
    name = "growth: 5M vs 1M actions <= 2x slower"
    if growth is None:
        return name, "compare the M and L runs (an L run with `--growth-from`)", None
    worst = growth.worst()
    if worst is None:
        return name, f"no operation timed in both this run and {growth.reference.label()}", None
    over = [op for op, before, now, _b, _n in growth.rows if now > MAX_GROWTH * before]
    measured = (
        f"vs {growth.reference.label()}: {len(growth.rows)} operations, "
        f"the most grown {worst[0]} {worst[1]:.2f}x"
    )
    if over:
        measured += "; over 2x: " + "; ".join(over)
    if not growth.judged():
        measured += f" (size {growth.reference.size} to {growth.size}: not the goal's sizes)"
        return name, measured, None
    return name, measured, not over


def growth_table(growth: Growth) -> str:
    """Each operation's median before and now, for both libraries."""
    before, now = growth.reference.size, growth.size
    rows = []
    for operation, ours_before, ours_now, theirs_before, theirs_now in growth.rows:
        theirs = ["n/a", "n/a", "n/a"]
        if theirs_before is not None and theirs_now is not None and theirs_before > 0:
            theirs = [ms(theirs_before), ms(theirs_now), f"{theirs_now / theirs_before:.2f}x"]
        rows.append(
            [operation, ms(ours_before), ms(ours_now), f"{ours_now / ours_before:.2f}x", *theirs]
        )
    header = [
        "operation",
        f"actrack p50 at {before}",
        f"at {now}",
        "growth",
        f"actstream p50 at {before}",
        f"at {now}",
        "growth",
    ]
    return table(header, rows)
