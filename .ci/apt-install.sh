#!/usr/bin/env bash
# Install Debian packages non-interactively: .ci/apt-install.sh PACKAGE...
#
# Runs `apt-get update` first (a fresh machine may have no package lists).
# Runs as is when root, through sudo when not root and sudo exists, and fails
# with a message otherwise. Package daemons are not started: a temporary
# policy-rc.d (exit 101) is put in place while apt-get runs, unless one
# already exists (then it is left alone).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "apt-install: need root (or sudo) to install: $*" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
    if [ "$added_policy" -eq 1 ]; then
        "${as_root[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    added_policy=1
fi

echo "==> apt-get install $*"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@"
