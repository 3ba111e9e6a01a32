#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests that need one (tests/tuning/test_postgres.py).
#   bash .ci/postgres.sh start   prints the URL of a new server on 127.0.0.1 (exit 1: none)
#   bash .ci/postgres.sh restart restarts it (the tests' database outage)
#   bash .ci/postgres.sh stop    stops it and removes its data
# Uses Debian's postgresql package, installing it if missing; the tests skip without a URL.
set -euo pipefail
DIR=/tmp/lrens-ci-postgres
PORT=55432
find_bin() {
    local name=$1
    command -v "$name" 2>/dev/null && return
    ls /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1
}
run_as_postgres() {
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
case "${1:-start}" in
start)
    if [ -z "$(find_bin initdb)" ] && command -v apt-get >/dev/null; then
        (apt-get install -y -qq postgresql >/dev/null 2>&1 ||
            (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq postgresql >/dev/null 2>&1)) || true
    fi
    INITDB=$(find_bin initdb); PG_CTL=$(find_bin pg_ctl)
    [ -n "$INITDB" ] && [ -n "$PG_CTL" ] || exit 1
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    run_as_postgres "'$INITDB' -D '$DIR/data' -U postgres --auth=trust >/dev/null"
    run_as_postgres "'$PG_CTL' -D '$DIR/data' -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1\" -l '$DIR/log' -w start >/dev/null"
    echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
    ;;
restart)
    PG_CTL=$(find_bin pg_ctl)
    run_as_postgres "'$PG_CTL' -D '$DIR/data' -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1\" -l '$DIR/log' -m fast -w restart >/dev/null"
    ;;
stop)
    PG_CTL=$(find_bin pg_ctl)
    [ -n "$PG_CTL" ] && [ -d "$DIR/data" ] && run_as_postgres "'$PG_CTL' -D '$DIR/data' -m fast -w stop >/dev/null" || true
    rm -rf "$DIR"
    ;;
esac
