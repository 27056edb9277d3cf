"""An L run compares its medians with the M report's, operation by operation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.benchrun import COUNT, DELETE, FEED, UNTIMED, run_bench, section
from tests.bench.growth import GrowthError, compare, goal, growth_table, read_reference
from tests.bench.results import Results, Row
from tests.bench.timing import Series


@pytest.fixture
def m_report(tmp_path: Path) -> Path:
    path = tmp_path / "benchmarks-m.md"
    path.write_text(
        "# Benchmarks\n\nintro\n\n"
        + section("postgres", "M", [FEED, COUNT, DELETE, UNTIMED])
        + "\n"
        + section("sqlite", "M", [FEED], title="SQLite")
        + "\n"
    )
    return path


def results(**p50s: tuple[float, float | None]) -> Results:
    """Results whose main rows have the given medians (actrack, actstream or None)."""
    run = Results()
    for operation, (ours, theirs) in p50s.items():
        name = operation.replace("_", " ")
        run.rows[(name, "all users")] = Row(
            name,
            "all users",
            actrack=Series(ms=[ours], queries=[1]),
            actstream=None if theirs is None else Series(ms=[theirs], queries=[1]),
        )
    run.rows[("feed page 1 (ids)", "dense")] = Row(
        "feed page 1 (ids)", "dense", actrack=Series(ms=[50.0], queries=[1])
    )
    return run


def test_the_reference_is_the_database_section_of_the_report(m_report: Path) -> None:
    reference = read_reference(m_report, "postgres")
    assert (reference.size, reference.generated, reference.commit) == (
        "M",
        "2026-11-29 06:36 UTC",
        "1e88107",
    )
    # Thousands separators read, "n/a" for what actstream does not have, untimed rows left out.
    assert reference.medians == {
        "feed page 1 (ids)": (2.27, 9.11),
        "unread count (cap 100)": (0.61, None),
        "delete an object with 10,000 references": (1081.0, 2827.0),
    }
    assert read_reference(m_report, "sqlite").medians == {"feed page 1 (ids)": (2.27, 9.11)}
    assert reference.label() == "size M (benchmarks-m.md, run of 2026-11-29 06:36 UTC at 1e88107)"


def test_an_unusable_reference_says_why(tmp_path: Path, m_report: Path) -> None:
    with pytest.raises(GrowthError, match=r"cannot read .*missing\.md"):
        read_reference(tmp_path / "missing.md", "postgres")
    only_sqlite = tmp_path / "sqlite-only.md"
    only_sqlite.write_text(section("sqlite", "M", [FEED], title="SQLite"))
    with pytest.raises(GrowthError, match="has no PostgreSQL section"):
        read_reference(only_sqlite, "postgres")
    empty = tmp_path / "empty.md"
    empty.write_text(section("postgres", "M", []))
    with pytest.raises(GrowthError, match="has no results"):
        read_reference(empty, "postgres")
    undated = tmp_path / "undated.md"
    undated.write_text(m_report.read_text().replace("Generated 2026", "Made 2026"))
    with pytest.raises(GrowthError, match="no size or date"):
        read_reference(undated, "postgres")


def test_an_l_run_meets_the_goal_when_every_operation_is_within_2x(m_report: Path) -> None:
    reference = read_reference(m_report, "postgres")
    run = results(
        **{
            "feed page 1 (ids)": (2.5, 12.0),
            "unread count (cap 100)": (1.2, None),
            "mark all read": (0.5, None),  # not in the reference: not compared
        }
    )
    growth = compare(reference, "L", run)
    assert [row[0] for row in growth.rows] == ["feed page 1 (ids)", "unread count (cap 100)"]
    name, measured, met = goal(growth)
    assert name == "growth: 5M vs 1M actions <= 2x slower"
    assert met is True
    assert "2 operations, the most grown unread count (cap 100) 1.97x" in measured
    table = growth_table(growth)
    assert "| feed page 1 (ids) | 2.27 | 2.50 | 1.10x | 9.11 | 12.0 | 1.32x |" in table
    assert "| unread count (cap 100) | 0.61 | 1.20 | 1.97x | n/a | n/a | n/a |" in table


def test_an_operation_over_2x_fails_the_goal_and_is_named(m_report: Path) -> None:
    growth = compare(
        read_reference(m_report, "postgres"),
        "L",
        results(**{"feed page 1 (ids)": (2.3, 9.0), "unread count (cap 100)": (1.3, None)}),
    )
    _name, measured, met = goal(growth)
    assert met is False
    assert measured.endswith("; over 2x: unread count (cap 100)")


def test_other_sizes_are_compared_but_not_judged(m_report: Path) -> None:
    growth = compare(
        read_reference(m_report, "postgres"), "M", results(**{"feed page 1 (ids)": (9.0, 9.0)})
    )
    _name, measured, met = goal(growth)
    assert met is None
    assert "over 2x: feed page 1 (ids)" in measured
    assert measured.endswith("(size M to M: not the goal's sizes)")
    nothing = compare(read_reference(m_report, "postgres"), "L", results())
    assert goal(nothing)[1:] == (
        "no operation timed in both this run and size M (benchmarks-m.md, run of "
        "2026-11-29 06:36 UTC at 1e88107)",
        None,
    )
    assert goal(None)[2] is None


def test_the_command_refuses_an_unusable_reference_before_touching_a_database(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bench.sqlite3"
    database.write_text("not emptied")
    done = run_bench(
        "--db",
        "sqlite",
        "--size",
        "XS",
        "--sqlite-path",
        str(database),
        "--growth-from",
        str(tmp_path / "missing.md"),
        timeout=120,
    )
    assert done.returncode != 0
    assert "--growth-from: cannot read" in done.stderr
    assert database.read_text() == "not emptied"
