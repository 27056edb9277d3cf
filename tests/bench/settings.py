"""Settings of the benchmark site: the demo site plus django-activity-stream.

The database comes from ``ACTRACK_BENCH_DATABASE_URL`` (``sqlite:///path`` or
``postgres://user@host:port/name``); ``actrack_bench --db/--database-url``
switch it at run time. ``DEBUG`` is off: queries are counted with
``CaptureQueriesContext``, never by the debug cursor while timing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.demo.settings import *  # noqa: F403
from tests.demo.settings import INSTALLED_APPS, database_from_url

DEBUG = False

INSTALLED_APPS = [*INSTALLED_APPS, "actstream", "tests.bench"]

DEFAULT_SQLITE_URL = f"sqlite:///{Path(tempfile.gettempdir()) / 'actrack_bench.sqlite3'}"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/actrack_bench"

DATABASES = {
    "default": database_from_url(os.environ.get("ACTRACK_BENCH_DATABASE_URL", DEFAULT_SQLITE_URL))
}

ACTSTREAM_SETTINGS = {"FETCH_RELATIONS": True, "USE_JSONFIELD": False}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
