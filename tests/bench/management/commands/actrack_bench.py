"""``actrack_bench``: actrack against django-activity-stream 2.0.0, same data, same run.

Run it from the project root with the benchmark site's settings::

    DJANGO_SETTINGS_MODULE=tests.bench.settings .venv/bin/python manage.py actrack_bench \\
        --db both --size S --output docs/benchmarks.md

For each database: a fresh database (dropped and created again; its name must
contain ``bench``), migrations, the dataset of PERFORMANCE.md loaded into both
libraries (progress on stderr), ``ANALYZE``, then every operation timed
interleaved, user by user. The Markdown report is printed on stdout and, with
``--output``, written to (or updated in) that file.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tests.bench import database, dataset, growth, loading, machine, report
from tests.bench.scenarios import Runner

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/actrack_bench"
DEFAULT_SQLITE_PATH = Path(tempfile.gettempdir()) / "actrack_bench.sqlite3"


class Command(BaseCommand):
    help = "Benchmark actrack against django-activity-stream on one deterministic dataset."
    # The database is chosen (and created) by the command itself.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
        parser.add_argument(
            "--database-url",
            default=DEFAULT_POSTGRES_URL,
            help=f"PostgreSQL database, created if missing (default {DEFAULT_POSTGRES_URL}); "
            "a query string sets driver OPTIONS, e.g. "
            "?server_side_binding=true&prepare_threshold=5 for prepared statements.",
        )
        parser.add_argument(
            "--sqlite-path",
            default=str(DEFAULT_SQLITE_PATH),
            help=f"SQLite file, recreated (default {DEFAULT_SQLITE_PATH}).",
        )
        parser.add_argument(
            "--size",
            choices=list(dataset.SIZES),
            metavar="{S,M,L}",
            default="S",
            help="S = 100k, M = 1M, L = 5M actions.",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--compare",
            choices=["actstream"],
            default="actstream",
            help="The library to compare with (django-activity-stream 2.0.0).",
        )
        parser.add_argument("--output", type=Path, help="Write the Markdown report here too.")
        parser.add_argument(
            "--growth-from",
            type=Path,
            help="A report of a smaller size (e.g. docs/benchmarks-m.md): each database's "
            "medians are compared with its section there (the goal: L at most 2x M).",
        )
        parser.add_argument(
            "--users",
            type=int,
            help="Ordinary users to time, besides one user of each fixed type "
            "(default: 20; 2 at XS).",
        )
        parser.add_argument(
            "--repeat", type=int, default=5, help="Timed calls per user and operation."
        )
        parser.add_argument(
            "--budget-ms",
            type=float,
            default=3000.0,
            help="Upper bound of timed calls per user and operation (slow plans repeat less).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["users"] is not None and options["users"] < 0:
            raise CommandError("--users must be 0 or more.")
        urls = {"sqlite": options["sqlite_path"], "postgres": options["database_url"]}
        if not urls["postgres"].startswith(("postgres://", "postgresql://")):
            raise CommandError("--database-url must be a postgres:// URL.")
        chosen = ["postgres", "sqlite"] if options["db"] == "both" else [options["db"]]
        configs = {db: database.config_for(urls[db]) for db in chosen}
        references = {}
        if options["growth_from"] is not None:
            for db in chosen:  # before anything is emptied or loaded
                try:
                    references[db] = growth.read_reference(options["growth_from"], db)
                except growth.GrowthError as error:
                    raise CommandError(f"--growth-from: {error}.") from error
        for name, value in machine.machine_facts():
            self.stderr.write(f"{name}: {value}")
        sections = {}
        for db in chosen:
            sections[db] = self.run_one(db, configs[db], options, references.get(db))
            self.stdout.write(sections[db])
        if options["output"] is not None:
            report.write(options["output"], sections)
            self.stderr.write(f"Report written to {options['output']}")

    def run_one(
        self, db: str, config: dict[str, Any], options: Any, reference: growth.Reference | None
    ) -> str:
        facts = machine.machine_facts()  # the load average when this database's run starts
        started = time.perf_counter()
        self.stderr.write(f"==> {db}: preparing {config['NAME']}")
        database.recreate(config)
        database.use(config)
        database.migrate()
        self.stderr.write(f"Database: {database.version()}")
        size = dataset.SIZES[options["size"]]
        data = dataset.build(size, options["seed"], options["users"])
        progress = getattr(self.stderr, "_out", sys.stderr)  # raw stream: "\r" progress bars
        loaded = loading.load(data, progress)
        database.analyze()
        loaded_at = time.perf_counter()
        self.stderr.write(f"==> {db}: loaded in {loaded_at - started:.0f} s, timing")
        runner = Runner(
            data,
            loaded,
            repeat=options["repeat"],
            budget_ms=options["budget_ms"],
            stream=progress,
        )
        results = runner.run()
        ended = time.perf_counter()
        info = report.RunInfo(
            database=db,
            database_version=database.version(),
            command=_command_line(db, options),
            wall_seconds=ended - started,
            load_seconds=loaded_at - started,
            timing_seconds=ended - loaded_at,
        )
        self.stderr.write(f"==> {db}: done in {ended - started:.0f} s")
        grown = None if reference is None else growth.compare(reference, size.name, results)
        return report.section(info, facts, data, loaded, results, grown)


def _command_line(db: str, options: Any) -> str:
    parts = ["manage.py", "actrack_bench", "--db", db, "--size", options["size"]]
    parts += ["--seed", str(options["seed"])]
    if options["users"] is not None:
        parts += ["--users", str(options["users"])]
    if options["repeat"] != 5:
        parts += ["--repeat", str(options["repeat"])]
    if options.get("growth_from") is not None:
        parts += ["--growth-from", str(options["growth_from"])]
    url = urlsplit(options["database_url"])
    if db == "postgres" and url.query:
        # Driver options (e.g. prepared statements) change the figures: name them,
        # without the password.
        host = url.hostname or ""
        netloc = f"{url.username}@{host}" if url.username else host
        if url.port:
            netloc += f":{url.port}"
        parts += ["--database-url", urlunsplit(url._replace(netloc=netloc))]
    return "DJANGO_SETTINGS_MODULE=tests.bench.settings python " + shlex.join(parts)
