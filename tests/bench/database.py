"""Pointing the ``default`` database at a fresh benchmark database.

The benchmark empties its database, so it only accepts a database (or SQLite
file) whose name contains ``bench``. PostgreSQL databases are dropped and
created again through the server's ``postgres`` maintenance database; SQLite
files are deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tests.demo.settings import database_from_url

#: WAL journal, fsync at checkpoints only (a crash may lose the last commits, never
#: corrupt the file).
SQLITE_INIT_COMMAND = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"


def config_for(url: str) -> dict[str, Any]:
    """A ``DATABASES`` entry from a ``postgres://`` URL or an SQLite file path."""
    if not url.startswith(("postgres://", "postgresql://")):
        config = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(Path(url).resolve()),
            # How SQLite is run in production, for both libraries: without it each
            # commit waits for two fsyncs of the rollback journal.
            "OPTIONS": {"init_command": SQLITE_INIT_COMMAND},
        }
    else:
        config = database_from_url(url)
    name = str(config["NAME"])
    if "bench" not in Path(name).name:
        raise CommandError(
            f"The benchmark empties its database: refusing {name!r}, whose name does not "
            "contain 'bench'."
        )
    return config


def recreate(config: dict[str, Any]) -> None:
    """Drop and create the database (PostgreSQL) or delete the file (SQLite)."""
    if config["ENGINE"].endswith("sqlite3"):
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{config['NAME']}{suffix}").unlink(missing_ok=True)
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        return
    import psycopg
    from psycopg import sql

    params = {
        "dbname": "postgres",
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
    }
    try:
        maintenance = psycopg.connect(
            **{k: v for k, v in params.items() if v is not None}, autocommit=True
        )
    except psycopg.Error as exc:
        raise CommandError(f"Cannot reach PostgreSQL: {exc}") from exc
    name = sql.Identifier(config["NAME"])
    with maintenance:
        maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        maintenance.execute(sql.SQL("CREATE DATABASE {}").format(name))


def use(config: dict[str, Any]) -> None:
    """Make ``config`` the ``default`` database of this process, from now on."""
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType

    for conn in connections.all(initialized_only=True):
        conn.close()
    entry = connections.configure_settings({"default": dict(config)})["default"]
    settings.DATABASES["default"] = entry
    connections.settings["default"] = entry
    connections["default"] = connections.create_connection("default")
    ContentType.objects.clear_cache()


def migrate() -> None:
    call_command("migrate", verbosity=0, interactive=False)


def analyze() -> None:
    """The steady state of a live database: planner statistics, and on PostgreSQL the
    visibility map that autovacuum sets on insert-only tables (index-only scans)."""
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def version() -> str:
    connection = connections["default"]
    if connection.vendor == "sqlite":
        import sqlite3

        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            journal = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous")
            synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cursor.fetchone()[0]]
        return (
            f"SQLite {sqlite3.sqlite_version} (journal_mode={journal}, synchronous={synchronous})"
        )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
    return f"PostgreSQL {server.split()[0]} (shared_buffers={buffers})"
