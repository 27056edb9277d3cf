#!/usr/bin/env bash
# Run the test suite once, on the database DATABASE_URL selects (unset:
# SQLite), from the repository root:
#
#     .ci/pytest.sh [PYTEST ARG...]
#
# Uses the `python` on PATH (the Makefile puts the venv's bin first). First
# prints the database the demo settings resolve to, then runs pytest. Any
# failure is a non-zero exit, and so is pytest's exit code 5 (no tests
# collected): a leg that ran nothing must not pass.
set -euo pipefail
cd "$(dirname "$0")/.."

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
