#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the Playwright
# browser tests (they never download a browser of their own). Does nothing
# when it is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "==> chromium: /usr/bin/chromium is present"
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium fonts-liberation
/usr/bin/chromium --version
