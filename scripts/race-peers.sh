#!/usr/bin/env bash
# Races Repère against the peers' sync benchmark on the same workload and prints one table
# per N: PouchDB ↔ express-pouchdb, automerge-repo and Repère, phase by phase, with ratios.
#
#   scripts/race-peers.sh [--smoke] [N ...]      default N: 10000
#
# Steps: copies the peers' harness (REPERE_PEERS_DIR, default ../shared/peers from the
# repository root; it may be read-only) into build/peers without its node_modules, out, data
# and tmp, runs `npm ci` there (skipped when its lock file is unchanged since the last
# install), then for each N: generates the workload (gen-workload.mjs), runs peer-pouch.mjs,
# and peer-automerge.mjs only when N <= RACE_AUTOMERGE_MAX, builds the workspace and runs
# repere-race on the same workload file with the peers' results.
#
# Environment (defaults in brackets):
#   REPS [3]                  repetitions of every system; the table shows medians
#   RACE_AUTOMERGE_MAX [1000] largest N at which automerge-repo runs: at 10,000 one rep
#                             takes more than 10 minutes and its phase (b) fails (find()
#                             times out, see the peers' RESULTS.md)
#   REPERE_PEERS_DIR          the peers' harness [../shared/peers]
#   RACE_SMOKE=1 or --smoke   CI mode: N=300, REPS=1, the debug build (the one
#                             `cargo build --workspace --all-targets` made); any failed
#                             peer run fails the script too
# Output: the tables on stdout, also in target/race/report-N.md with every figure in
# report-N.json; the peers' own output in build/peers/logs/. Exit status non-zero when
# a Repère phase fails or a record read back differs from the workload.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

smoke="${RACE_SMOKE:-0}"
ns=()
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *[!0-9]*|'') echo "race-peers: not a record count: $arg" >&2; exit 2 ;;
    *) ns+=("$arg") ;;
  esac
done
if [ "$smoke" = 1 ]; then
  [ ${#ns[@]} -gt 0 ] || ns=(300)
  reps="${REPS:-1}"
else
  [ ${#ns[@]} -gt 0 ] || ns=(10000)
  reps="${REPS:-3}"
fi
automerge_max="${RACE_AUTOMERGE_MAX:-1000}"

src="${REPERE_PEERS_DIR:-$root/../shared/peers}"
peers="$root/build/peers"
[ -f "$src/peer-pouch.mjs" ] || { echo "race-peers: no peers' harness in $src (set REPERE_PEERS_DIR)" >&2; exit 2; }
mkdir -p "$peers"
# A fresh copy of the sources; node_modules is kept for the lock file check below.
find "$peers" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
(cd "$src" && tar --exclude=node_modules --exclude=out --exclude=data --exclude=tmp -cf - .) | tar -xf - -C "$peers"
find "$peers" -path "$peers/node_modules" -prune -o -exec chmod u+w {} +
mkdir -p "$peers/logs" "$peers/out" "$peers/data" "$peers/tmp"
stamp="$peers/node_modules/.race-package-lock.json"
if ! cmp -s "$peers/package-lock.json" "$stamp"; then
  echo "== npm ci in build/peers" >&2
  (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error >"$peers/logs/npm-ci.log" 2>&1) \
    || { tail -20 "$peers/logs/npm-ci.log" >&2; exit 1; }
  cp "$peers/package-lock.json" "$stamp"
fi

# A peer run's figures go to out/ (one JSON per rep); its chatter to logs/.
peer_failed=0
run_peer() { # NAME SCRIPT N
  local name="$1" script="$2" n="$3"
  rm -f "$peers/out/$name-n$n-r"*.json
  echo "== $name, N=$n, $reps rep(s)" >&2
  if ! (cd "$peers" && node "$script" --n "$n" --reps "$reps" --outdir out --tmpdir tmp \
        >"logs/$name-$n.log" 2>&1); then
    echo "race-peers: $name N=$n: some runs failed (build/peers/logs/$name-$n.log; the table says which)" >&2
    peer_failed=1
  fi
}
for n in "${ns[@]}"; do
  (cd "$peers" && node gen-workload.mjs --n "$n" --out "data/contacts-$n.jsonl" >"logs/workload-$n.log")
  run_peer pouchdb peer-pouch.mjs "$n"
  if [ "$n" -le "$automerge_max" ]; then
    run_peer automerge peer-automerge.mjs "$n"
  else
    echo "== automerge-repo skipped at N=$n (> RACE_AUTOMERGE_MAX=$automerge_max)" >&2
  fi
done

# Always the whole workspace: a single package's build compiles shared crates with other
# features. The smoke uses the debug build that CI has just made (no release build there).
if [ "$smoke" = 1 ]; then
  cargo build --workspace --all-targets
  race="$target/debug/repere-race"
else
  cargo build --release --workspace
  race="$target/release/repere-race"
fi

reports=()
for n in "${ns[@]}"; do
  echo "== Repère, N=$n, $reps rep(s)" >&2
  "$race" --workload "$peers/data/contacts-$n.jsonl" --reps "$reps" \
    --peers-out "$peers/out" --out-dir "$target/race" >/dev/null
  reports+=("$target/race/report-$n.md")
done
echo
cat "${reports[@]}"
if [ "$peer_failed" = 1 ]; then
  if [ "$smoke" = 1 ]; then
    echo "race-peers: a peer run failed in smoke mode" >&2
    exit 1
  fi
  echo "race-peers: some peer runs failed; they are counted as such in the table" >&2
fi
