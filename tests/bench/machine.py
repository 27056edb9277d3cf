"""Facts about the machine and the versions a run measured."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import django


def machine_facts() -> list[tuple[str, str]]:
    facts = [
        ("CPU", f"{_cpu_model()} ({os.cpu_count()} logical cores)"),
        ("RAM", _memory()),
        ("Load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0]),
        ("Django", django.get_version()),
        ("django-actrack", f"{_version('django-actrack')} ({_git()})"),
        ("django-activity-stream", _version("django-activity-stream")),
    ]
    import sqlite3

    facts.append(("SQLite library", sqlite3.sqlite_version))
    try:
        import psycopg

        facts.append(("psycopg", psycopg.__version__))
    except ImportError:
        pass
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


#: Files the command itself writes: changed, they are not changes to what is measured.
REPORTS = ":(exclude)docs/benchmarks*.md"


def _git(root: Path | None = None) -> str:
    """The commit measured, and whether files other than reports differ from it."""
    root = root or Path(__file__).resolve().parent.parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", REPORTS],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "no git"
    return f"git {commit}{' with local changes' if dirty else ''}"


# -- formatting --------------------------------------------------------------------------
