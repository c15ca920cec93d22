#!/usr/bin/env bash
# The load test side by side in one run: one SQLite server, one PostgreSQL instance, two
# instances on one PostgreSQL database, at each number of tablets given, and one table.
#
#   scripts/load-compare.sh [TABLETS...]          (default: 200 1000)
#   e.g. DURATION=120s SYNC_EVERY=5m scripts/load-compare.sh 200 1000
#
# Each run is scripts/load-test.sh (same environment: DURATION, SYNC_EVERY, SEED_RECORDS…;
# other arguments of repere-load via LOAD_ARGS). Results: target/load/compare-<date>/
# (one folder per run with its report, JSON and latency chart, and compare.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ "$#" -gt 0 ] || set -- 200 1000
out="target/load/compare-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
if [ "${BUILD:-1}" != 0 ]; then
  cargo build --release -j 2 -p repere-server -p repere-tests --bin repere-server --bin repere-load
fi
status=0
for tablets in "$@"; do
  for backend in sqlite postgres postgres2; do
    echo "== $backend, $tablets tablets" >&2
    # shellcheck disable=SC2086
    BUILD=0 BACKEND="$backend" TABLETS="$tablets" OUT="$out/$backend-$tablets" \
      scripts/load-test.sh ${LOAD_ARGS:-} >/dev/null || status=$?
  done
done
python3 - "$out" "$@" <<'PY' | tee "$out/compare.md"
import json, sys, os
out, tablets = sys.argv[1], sys.argv[2:]
names = {"sqlite": "SQLite, 1 instance", "postgres": "PostgreSQL, 1 instance",
         "postgres2": "PostgreSQL, 2 instances"}
print("| tablets | backend | syncs/s | incremental p50 / p95 / p99 ms | initial pull p50 / p99 ms "
      "| catch-up p99 ms | errors | converged | server peak RSS MiB | server CPU s | database MiB |")
print("|---:|---|---:|---|---|---:|---:|---|---:|---:|---:|")
for t in tablets:
    for b in ("sqlite", "postgres", "postgres2"):
        path = os.path.join(out, f"{b}-{t}", "report.json")
        if not os.path.exists(path):
            print(f"| {t} | {names[b]} | (no report) |||||||||")
            continue
        d = json.load(open(path))
        k = d["kinds"]
        def ms(kind, *qs):
            if kind not in k or not k[kind]["syncs"]:
                return "–"
            return " / ".join(f"{k[kind][q]:.0f}" for q in qs)
        rss = sum(s["rss_peak_bytes"] for s in d["servers"]) / 2**20
        cpu = sum(s["cpu_s"] for s in d["servers"])
        db = max((x["last_bytes"] for x in d["databases"]), default=0) / 2**20
        conv = d["convergence"]
        print(f"| {t} | {names[b]} | {d['run']['syncs_per_s']:.0f} "
              f"| {ms('incremental', 'p50_ms', 'p95_ms', 'p99_ms')} "
              f"| {ms('initial pull', 'p50_ms', 'p99_ms')} | {ms('catch-up after offline', 'p99_ms')} "
              f"| {d['error_count']} | {conv['converged']}/{conv['tablets']} | {rss:.0f} | {cpu:.1f} | {db:.1f} |")
PY
echo "load-compare: results in $out" >&2
exit "$status"
