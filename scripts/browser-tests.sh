#!/usr/bin/env bash
# Browser tests of the coordinators' pages (tests/browser/*.test.mjs, node:test +
# playwright-core driving Debian's /usr/bin/chromium; nothing is downloaded).
#
#   scripts/browser-tests.sh [node --test options] [test files]
#   e.g. scripts/browser-tests.sh tests/browser/scope.test.mjs
#        scripts/browser-tests.sh --test-name-pattern=CSV     (options in the --opt=value form)
# Without files: every tests/browser/*.test.mjs, one file at a time (each file its own node
# process and Chromium; the files do not depend on each other's order). About 45 s; the
# whole node run is cut at 300 s. Exit status: node's (non-zero if any test failed).
#
# Needs the debug binaries (cargo build --workspace): target/debug/repere-server and
# target/debug/repere-device. Starts a throw-away `repere-server serve --demo` on a free
# loopback port with a fresh data directory and a fixed demo password, reads the teams and
# enrolment codes it prints, runs the tests one file at a time, then stops the server.
# Screenshots go to build/browser-screenshots/ (git-ignored).
#
# Environment given to the tests:
#   REPERE_URL             http://127.0.0.1:PORT
#   REPERE_DEMO_PASSWORD   the coordinators' password (both demo organisations)
#   REPERE_DEMO_TEAMS      JSON [{"name":"Binôme Stenay","id":"<uuid>","codes":["XXXX-XXXX-XX",…]},…]
#   REPERE_DEVICE_BIN      target/debug/repere-device (a scripted tablet)
#   REPERE_DEVICE_DIR      a temp dir for the tablets' stores (and the code claims)
#   REPERE_SERVER_BIN, REPERE_DATA_DIR   to issue more codes with `admin issue-code`
#   REPERE_SCREENSHOT_DIR  build/browser-screenshots
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

scripts/install-tools.sh >/dev/null

server_bin="${CARGO_TARGET_DIR:-$root/target}/debug/repere-server"
device_bin="${CARGO_TARGET_DIR:-$root/target}/debug/repere-device"
for b in "$server_bin" "$device_bin"; do
  [ -x "$b" ] || { echo "browser-tests: $b missing; build first: cargo build --workspace" >&2; exit 1; }
done
[ -x /usr/bin/chromium ] || { echo "browser-tests: /usr/bin/chromium missing (scripts/install-tools.sh)" >&2; exit 1; }

# Fixed test password (12 characters at least, as the server requires).
password='Repere-tests-navigateur-2025'
work="$(mktemp -d "${TMPDIR:-/tmp}/repere-browser.XXXXXX")"
data="$work/data"
devices="$work/devices"
mkdir -p "$data" "$devices"
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$work/server.err" ]; then
    echo "browser-tests: last lines of the server's log:" >&2
    tail -n 30 "$work/server.err" >&2 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
url="http://127.0.0.1:$port"

# Every scripted tablet enrols from 127.0.0.1: the suite enrols more than the default 10 a
# minute from one address (the limit itself is tested in sync-server/tests/server/http.rs).
"$server_bin" serve --demo --insecure-http --demo-password "$password" --listen "127.0.0.1:$port" \
  --enrol-per-minute 120 --data-dir "$data" >"$work/server.out" 2>"$work/server.err" &
pid=$!

# /healthz answers once the server listens; the demo text is printed before that.
ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "browser-tests: repere-server exited early" >&2; cat "$work/server.err" >&2; exit 1
  fi
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$url/healthz" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "browser-tests: $url/healthz never answered" >&2; exit 1; }

# The demo's printed text (sync-server/src/demo.rs `instructions`):
#   Équipe / team « Binôme Stenay » (<uuid>)
#       Codes d'enrôlement / enrolment codes:
#         XXXX-XXXX-XX   (one per line)
#   … identifiant / login coordination@demo   mot de passe / password <password>
teams_json="$(node - "$work/server.out" "$password" <<'NODE'
const fs = require('fs');
const [file, password] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
const teams = [];
let current = null;
for (const line of text.split('\n')) {
  const t = line.match(/team « (.+) » \(([0-9a-f-]{36})\)/);
  if (t) { current = { name: t[1], id: t[2], codes: [] }; teams.push(current); continue; }
  const c = line.match(/^\s+([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})\s*$/);
  if (c && current) { current.codes.push(c[1]); continue; }
  if (line.trim() === '') current = null;
}
const logins = [...text.matchAll(/login (\S+)\s+mot de passe \/ password (\S+)/g)];
const bad = (m) => { console.error('browser-tests: ' + m + '\n' + text); process.exit(1); };
if (teams.length < 2 || teams.some((t) => t.codes.length === 0)) bad('no teams/codes in the demo output');
if (logins.length < 2) bad('no logins in the demo output');
for (const [, login, pw] of logins) if (pw !== password) bad(`login ${login} was not given the fixed password`);
process.stdout.write(JSON.stringify(teams));
NODE
)"

mkdir -p "$root/build/browser-screenshots"
echo "browser-tests: server $url (pid $pid), demo teams: $(node -p 'JSON.parse(process.argv[1]).map(t=>t.name+" ("+t.codes.length+" codes)").join(", ")' "$teams_json")"

opts=(); files=()
for a in "$@"; do
  case "$a" in -*) opts+=("$a") ;; *) files+=("$a") ;; esac
done
[ "${#files[@]}" -gt 0 ] || files=(tests/browser/)

set +e
REPERE_URL="$url" \
REPERE_DEMO_PASSWORD="$password" \
REPERE_DEMO_TEAMS="$teams_json" \
REPERE_DEVICE_BIN="$device_bin" \
REPERE_DEVICE_DIR="$devices" \
REPERE_SERVER_BIN="$server_bin" \
REPERE_DATA_DIR="$data" \
REPERE_SCREENSHOT_DIR="$root/build/browser-screenshots" \
  timeout --foreground --kill-after=10 300 node --test --test-concurrency=1 --test-force-exit --test-reporter=spec \
    ${opts[@]+"${opts[@]}"} "${files[@]}"
rc=$?
set -e
exit "$rc"
