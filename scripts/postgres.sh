#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust authentication for
# the user postgres and a database `test` (what the two-backend tests and the load test
# expect), starting it if it is installed but stopped, installing Debian's package if it is
# missing. Idempotent: about a second when the server is already up. Prints the base URL.
# Run as root on Debian. REPERE_PG_URL overrides the whole check (a server of your own).
set -euo pipefail

if [ -n "${REPERE_PG_URL:-}" ]; then echo "$REPERE_PG_URL"; exit 0; fi
url="postgres://postgres@127.0.0.1:5432/test"

answers() { psql -h 127.0.0.1 -p 5432 -U postgres -d "${1:-postgres}" -Atqc 'SELECT 1' >/dev/null 2>&1; }

if ! answers; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres: installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    log="$(mktemp)"
    { apt-get install -y --no-install-recommends postgresql >"$log" 2>&1 \
      || { apt-get update >>"$log" 2>&1 && apt-get install -y --no-install-recommends postgresql >>"$log" 2>&1; }; } \
      || { cat "$log" >&2; exit 1; }
    rm -f "$log"
  fi
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  [ -d "/etc/postgresql/$version/main" ] || pg_createcluster "$version" main >/dev/null
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  # Local test server: trust on the loopback and the socket (as on this machine kind).
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '/^[^#]/d' "$hba"
    printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' >>"$hba"
  fi
  conf="/etc/postgresql/$version/main/postgresql.conf"
  grep -q "^listen_addresses = 'localhost'" "$conf" || echo "listen_addresses = 'localhost'" >>"$conf"
  grep -q "^port = 5432" "$conf" || echo "port = 5432" >>"$conf"
  echo "postgres: starting cluster $version/main" >&2
  pg_ctlcluster "$version" main restart >/dev/null 2>&1 || pg_ctlcluster "$version" main start
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
  answers || { echo "postgres: the server does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi
answers test || psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null
echo "$url"
