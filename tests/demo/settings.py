"""Settings of the demo site, shared by the test suite.

SQLite by default. Set ``DATABASE_URL`` (``postgres://user:pass@host:port/name``
or ``sqlite:///path``) to run on another database.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "actrack-demo-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "gm2m",
    "django_filters",
    "django_htmx",
    "actrack",
    "actrack_dashboard",
    "tests.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "tests.demo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "tests.demo.wsgi.application"
ASGI_APPLICATION = "tests.demo.asgi.application"


def _option(value: str) -> object:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return int(value) if value.lstrip("-").isdigit() else value


def database_from_url(url: str) -> dict[str, object]:
    """A ``DATABASES`` entry from a ``postgres://`` or ``sqlite:///`` URL.

    A PostgreSQL URL's query string sets driver ``OPTIONS``, for instance
    ``?server_side_binding=true&prepare_threshold=0`` (integers and
    ``true``/``false`` are converted).
    """
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        config: dict[str, object] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
        options = {name: _option(value) for name, value in parse_qsl(parts.query)}
        if options:
            config["OPTIONS"] = options
        return config
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path) or ":memory:"}
    raise ValueError(f"Unsupported DATABASE_URL scheme {parts.scheme!r}")


DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'demo.sqlite3'}")
    )
}
# A second database for the multi-database tests (tests/reliability/test_multidb.py)
# only: pytest-django creates test databases just for the aliases collected tests ask
# for, and the demo never uses it. SQLite: in memory. PostgreSQL: its own test database
# (test_<name>_other) on the same server; outside tests it names the default database,
# so that anything opening every alias finds a database there.
DATABASES["other"] = (
    {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else {**DATABASES["default"], "TEST": {"NAME": f"test_{DATABASES['default']['NAME']}_other"}}
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".staticfiles"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

ACTRACK = {
    "GROUPING_DELAY": 0,
}

ACTRACK_DASHBOARD: dict[str, object] = {}
