#!/usr/bin/env bash
# Run the test suite once, on the database DATABASE_URL selects (unset:
# SQLite), from the repository root:
#
#     .ci/pytest.sh [PYTEST ARG...]
#
# ACTRACK_TEST_DB_OPTIONS adds driver options to DATABASE_URL's query string (see
# database_from_url in tests/demo/settings.py), e.g.
# ACTRACK_TEST_DB_OPTIONS='server_side_binding=true&prepare_threshold=2'.
#
# Uses the `python` on PATH (the Makefile puts the venv's bin first). First
# prints the database the demo settings resolve to, then runs pytest. Any
# failure is a non-zero exit, and so is pytest's exit code 5 (no tests
# collected): a leg that ran nothing must not pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${ACTRACK_TEST_DB_OPTIONS:-}" ]; then
    case "${DATABASE_URL:-}" in
        postgres://* | postgresql://*) ;;
        *) echo "ACTRACK_TEST_DB_OPTIONS needs a postgres:// DATABASE_URL" >&2; exit 2 ;;
    esac
    case "$DATABASE_URL" in
        *\?*) DATABASE_URL="$DATABASE_URL&$ACTRACK_TEST_DB_OPTIONS" ;;
        *) DATABASE_URL="$DATABASE_URL?$ACTRACK_TEST_DB_OPTIONS" ;;
    esac
    export DATABASE_URL
fi

python - <<'PY' || echo "==> pytest: could not read the Django settings (pytest will say why)"
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.demo.settings")
from django.conf import settings

db = settings.DATABASES["default"]
engine = db["ENGINE"].rsplit(".", 1)[-1]
where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 'default port'}/{db['NAME']}"
if engine == "sqlite3":
    where = f"test database {db.get('TEST', {}).get('NAME') or 'in memory'}"
if db.get("OPTIONS"):
    where += f", OPTIONS {db['OPTIONS']}"
print(
    f"==> pytest on {engine} ({where}); Django {django.get_version()}, "
    f"Python {sys.version.split()[0]}",
    flush=True,
)
PY

set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "==> pytest collected no tests: failing this leg" >&2
    exit 1
fi
exit "$rc"
