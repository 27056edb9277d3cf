#!/usr/bin/env bash
# Run a command with DATABASE_URL pointing at a PostgreSQL database:
#
#     .ci/postgres.sh COMMAND [ARG...]
#
# The database, first match wins:
#   1. $DATABASE_URL, when it is a postgres:// (or postgresql://) URL: used as is.
#   2. A server answering on 127.0.0.1:5432 that lets user `postgres` in:
#      postgres://postgres@127.0.0.1:5432/actrack (database created if missing).
#   3. A throwaway cluster: initdb into a fresh directory /tmp/actrack-pg.XXXXXX
#      (as the `postgres` OS user when run as root), trust auth, durability
#      off, listening on 127.0.0.1 on the first free port from 55432 (or
#      $ACTRACK_PG_PORT), socket in that directory. On exit, success or
#      failure or Ctrl-C, it is stopped and the directory deleted; nothing
#      else is touched.
#
# ACTRACK_PG_THROWAWAY=1 forces 3 even when 1 or 2 would apply (to test this
# path, or to keep runs off a shared server).
#
# Server binaries are looked for in /usr/lib/postgresql/*/bin (newest first),
# then on PATH; when there are none, Debian's `postgresql` is installed with
# apt-get, without starting its own cluster.
#
# Exits with the command's exit status.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

log() { echo "==> postgres: $*" >&2; }

# Hide a password in a URL before printing it.
redact() { sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

bindir=""
find_bindir() {
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            bindir=$dir
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        bindir=$(dirname "$(readlink -f "$(command -v initdb)")")
        return 0
    fi
    return 1
}

ensure_bindir() {
    find_bindir && return 0
    log "no PostgreSQL server binaries found; installing Debian's postgresql"
    bash "$here/apt-install.sh" postgresql
    find_bindir || { log "still no initdb/pg_ctl after installing postgresql"; exit 1; }
}

# A client program: from the server's bin directory when known, else PATH.
pg() {
    local name=$1
    shift
    if [ -n "$bindir" ] && [ -x "$bindir/$name" ]; then
        "$bindir/$name" "$@"
    else
        "$name" "$@"
    fi
}

is_postgres_url() {
    case "$1" in
        postgres://* | postgresql://* | pgsql://*) return 0 ;;
        *) return 1 ;;
    esac
}

# --- 2: the machine's server on 5432 -----------------------------------------
use_local_server() {
    find_bindir || true
    command -v pg_isready >/dev/null 2>&1 || [ -n "$bindir" ] || return 1
    pg pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || return 1
    if ! pg psql -X -q -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'select 1' \
        >/dev/null 2>&1; then
        log "127.0.0.1:5432 is up but does not let user postgres in; using a throwaway cluster"
        return 1
    fi
    local exists
    exists=$(pg psql -X -q -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc \
        "select 1 from pg_database where datname = 'actrack'")
    if [ "$exists" != 1 ]; then
        pg createdb -h 127.0.0.1 -p 5432 -U postgres actrack || return 1
    fi
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/actrack
    log "using the server on 127.0.0.1:5432: $DATABASE_URL"
}

# --- 3: a throwaway cluster --------------------------------------------------
pg_tmp=""
pg_started=0

# Run a command as the cluster's owner (the postgres OS user when root).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$pg_tmp" && runuser -u postgres -- "$@")
    else
        (cd "$pg_tmp" && "$@")
    fi
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    set +e
    if [ "$pg_started" -eq 1 ]; then
        log "stopping the throwaway cluster"
        as_owner "$bindir/pg_ctl" -D "$pg_tmp/data" -m immediate -w stop >/dev/null 2>&1
    fi
    case "$pg_tmp" in
        /tmp/actrack-pg.?*)
            rm -rf -- "$pg_tmp"
            log "removed $pg_tmp"
            ;;
    esac
}

port_in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_throwaway() {
    ensure_bindir
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        log "running as root, but there is no postgres OS user to run the cluster"
        exit 1
    fi

    local port=${ACTRACK_PG_PORT:-55432} last
    last=$((port + 100))
    while port_in_use "$port"; do
        port=$((port + 1))
        if [ "$port" -ge "$last" ]; then
            log "no free port found"
            exit 1
        fi
    done

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    pg_tmp=$(mktemp -d /tmp/actrack-pg.XXXXXX)
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$pg_tmp"
    fi

    log "initdb $pg_tmp/data ($("$bindir/postgres" --version))"
    as_owner "$bindir/initdb" -D "$pg_tmp/data" -U postgres --auth=trust -E UTF8 \
        --locale=C --no-sync >"$pg_tmp/initdb.log" 2>&1 || {
        cat "$pg_tmp/initdb.log" >&2
        exit 1
    }

    pg_started=1
    as_owner "$bindir/pg_ctl" -D "$pg_tmp/data" -l "$pg_tmp/postgres.log" -w -t 60 \
        -o "-p $port -k $pg_tmp -c listen_addresses=127.0.0.1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off" start >/dev/null || {
        log "the throwaway cluster did not start; its log:"
        cat "$pg_tmp/postgres.log" >&2
        exit 1
    }
    local tries=0
    until pg pg_isready -q -h 127.0.0.1 -p "$port"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            log "the throwaway cluster is not ready after 30 s"
            exit 1
        fi
        sleep 0.5
    done

    pg createdb -h 127.0.0.1 -p "$port" -U postgres actrack
    DATABASE_URL=postgres://postgres@127.0.0.1:$port/actrack
    log "using a throwaway cluster in $pg_tmp: $DATABASE_URL"
}

# --- choose ------------------------------------------------------------------
if [ "${ACTRACK_PG_THROWAWAY:-0}" = 1 ]; then
    start_throwaway
elif is_postgres_url "${DATABASE_URL:-}"; then
    log "using \$DATABASE_URL: $(redact "$DATABASE_URL")"
else
    if [ -n "${DATABASE_URL:-}" ]; then
        log "ignoring \$DATABASE_URL: not a postgres:// URL"
    fi
    if ! use_local_server; then
        start_throwaway
    fi
fi
export DATABASE_URL

# Run the command as a child and wait for it, so that a TERM or INT sent to
# this script is passed on at once (bash runs traps only between commands)
# and the EXIT trap still cleans up after it. The child keeps the caller's
# stdin and the default SIGINT handling (bash would ignore INT in a
# background child, and Ctrl-C would no longer stop pytest).
(
    trap - INT QUIT
    exec "$@"
) <&0 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM
trap 'kill -INT "$child" 2>/dev/null || true' INT
set +e
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    rc=$?
done
set -e
exit "$rc"
