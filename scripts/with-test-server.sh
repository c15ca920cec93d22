#!/usr/bin/env bash
# Starts a throw-away repere-server (built in target/debug) on a free loopback port with a
# fresh data directory, one organisation, one team and enrolment codes, runs the given
# command with the server's details in the environment, then stops the server.
#   scripts/with-test-server.sh COMMAND [ARGS...]
# Environment given to COMMAND: REPERE_SERVER_URL, REPERE_SERVER_BIN, REPERE_DATA_DIR,
# REPERE_ORG_ID, REPERE_TEAM_ID, REPERE_OTHER_TEAM_ID, REPERE_CODE_A, REPERE_CODE_B,
# REPERE_CODE_REVOKE, REPERE_CODE_REVIEW, REPERE_CODE_OTHER (a code of the other team),
# REPERE_COORDINATOR_LOGIN and REPERE_COORDINATOR_PASSWORD (a coordinator of the organisation).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/repere-server"
[ -x "$bin" ] || { echo "build the workspace first ($bin missing)" >&2; exit 1; }
data="$(mktemp -d)"
# The server key lives apart from the data, as in service.
keys="$(mktemp -d)"
"$bin" admin --data-dir "$data" new-key --to "$keys/server.key" >/dev/null 2>&1
export REPERE_KEY_FILE="$keys/server.key"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin() { "$bin" admin --data-dir "$data" "$@"; }
org="$(admin create-org --name "Organisation de test")"
team="$(admin create-team --org "$org" --name "Binôme test")"
other="$(admin create-team --org "$org" --name "Autre binôme")"
coordinator_password="mot-de-passe-des-tests-$$"
admin create-user --org "$org" --name "Coordination test" --role coordinator --login coordination@test >/dev/null
REPERE_PASSWORD="$coordinator_password" admin set-password --user coordination@test >/dev/null
"$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" 2>"$data/server.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data" "$keys"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
REPERE_SERVER_URL="http://127.0.0.1:$port" REPERE_SERVER_BIN="$bin" REPERE_DATA_DIR="$data" \
REPERE_ORG_ID="$org" REPERE_TEAM_ID="$team" REPERE_OTHER_TEAM_ID="$other" \
REPERE_CODE_A="$(admin issue-code --team "$team")" REPERE_CODE_B="$(admin issue-code --team "$team")" \
REPERE_CODE_REVOKE="$(admin issue-code --team "$team")" REPERE_CODE_REVIEW="$(admin issue-code --team "$team")" \
REPERE_CODE_OTHER="$(admin issue-code --team "$other")" \
REPERE_COORDINATOR_LOGIN=coordination@test REPERE_COORDINATOR_PASSWORD="$coordinator_password" \
  "$@"
