"""What the report says of the code it measured."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bench.machine import _git


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmarks-m.md").write_text("report\n")
    (tmp_path / "actrack.py").write_text("code\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return tmp_path


def test_a_report_written_by_an_earlier_run_is_not_a_local_change(repo: Path) -> None:
    commit = git(repo, "rev-parse", "--short", "HEAD")
    assert _git(repo) == f"git {commit}"
    (repo / "docs" / "benchmarks-m.md").write_text("another run\n")
    assert _git(repo) == f"git {commit}"
    (repo / "actrack.py").write_text("changed code\n")
    assert _git(repo) == f"git {commit} with local changes"


def test_outside_a_repository_it_says_so(tmp_path: Path) -> None:
    assert _git(tmp_path) == "no git"
