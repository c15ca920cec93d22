#!/usr/bin/env bash
# A load run: builds the release binaries, starts a throw-away repere-server, plays
# N simulated tablets against it with repere-load, and keeps the results.
#
#   scripts/load-test.sh [repere-load options]
#   e.g. TABLETS=1000 DURATION=120s SYNC_EVERY=60s SEED_RECORDS=500 scripts/load-test.sh --ramp-up 20s
#
# Environment (defaults in brackets):
#   BACKEND     sqlite: one server on a SQLite database in a temp dir [sqlite]
#               postgres: one server on a throwaway PostgreSQL database (scripts/postgres.sh)
#               postgres2: two servers on one throwaway PostgreSQL database, tablets split
#               between them
#   TABLETS [200]  TEAMS [TABLETS/10]  DURATION [60s]  SYNC_EVERY [30s]  SEED_RECORDS [200]
#   OUT         where results go [target/load/<backend>-<tablets>-<date>]
#   BUILD=0     use the binaries already built
# Other repere-load options pass through (not those set here: --tablets, --teams,
# --duration, --sync-every, --seed-records, --json, --chart).
# Results: OUT/report.md (the table), OUT/report.json, OUT/latency.svg, OUT/server.log.
# The server runs with its enrolment limit and connection limits raised: every tablet
# enrols and connects from this one address. repere-load's exit status is kept: 2 when
# there were errors or a tablet did not converge.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
backend="${BACKEND:-sqlite}"
tablets="${TABLETS:-200}"
teams="${TEAMS:-$(( tablets >= 10 ? tablets / 10 : 1 ))}"
duration="${DURATION:-60s}"
sync_every="${SYNC_EVERY:-30s}"
seed_records="${SEED_RECORDS:-200}"
out="${OUT:-target/load/$backend-$tablets-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

if [ "${BUILD:-1}" != 0 ]; then
  cargo build --release -j 2 -p repere-server -p repere-tests --bin repere-server --bin repere-load
fi
server_bin="$target/release/repere-server"
load_bin="$target/release/repere-load"

work="$(mktemp -d)"
keys="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$keys"
}
trap cleanup EXIT
"$server_bin" admin --data-dir "$work" new-key --to "$keys/server.key" >/dev/null 2>&1
export REPERE_KEY_FILE="$keys/server.key"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
limits=(--enrol-per-minute 1000000 --max-connections 20000 --max-connections-per-address 20000)

# One server; its address, pid and admin command line.
start_server() { # DATA_DIR PORT LOG [more serve flags]
  local data="$1" port="$2" log="$3"; shift 3
  RUST_LOG=warn "$server_bin" serve --data-dir "$data" --listen "127.0.0.1:$port" "${limits[@]}" "$@" 2>"$log" &
  pids+=("$!")
  for _ in $(seq 1 200); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "load-test: the server on port $port did not start (see $log)" >&2
  exit 1
}

case "$backend" in
  sqlite)
    port="$(free_port)"
    start_server "$work" "$port" "$out/server.log"
    servers="http://127.0.0.1:$port"
    admin_cmd="$server_bin admin --data-dir $work"
    watch=(--server-pid "${pids[0]}" --db-file "$work/repere.db")
    ;;
  postgres|postgres2)
    base="$(scripts/postgres.sh)"
    db="repere_load_$(date -u +%s)_$$"
    psql "$base" -qAtc "CREATE DATABASE $db"
    url="${base%/*}/$db"
    drop_db() { psql "$base" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
    trap 'cleanup; drop_db' EXIT
    n=1; [ "$backend" = postgres2 ] && n=2
    servers=""; pid_list=""
    for i in $(seq 1 "$n"); do
      port="$(free_port)"
      mkdir -p "$work/$i"
      start_server "$work/$i" "$port" "$out/server-$i.log" --database "$url"
      servers="${servers:+$servers,}http://127.0.0.1:$port"
      pid_list="${pid_list:+$pid_list,}${pids[-1]}"
    done
    admin_cmd="$server_bin admin --data-dir $work/1 --database $url"
    watch=(--server-pid "$pid_list")
    ;;
  *)
    echo "load-test: unknown BACKEND=$backend (sqlite, postgres, postgres2)" >&2
    exit 1
    ;;
esac

status=0
"$load_bin" --servers "$servers" --admin-cmd "$admin_cmd" \
  --tablets "$tablets" --teams "$teams" --duration "$duration" --sync-every "$sync_every" \
  --seed-records "$seed_records" "${watch[@]}" \
  --json "$out/report.json" --chart "$out/latency.svg" "$@" | tee "$out/report.md" || status=$?
echo "load-test: results in $out"
exit "$status"
