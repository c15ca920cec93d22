#!/usr/bin/env bash
# Kotlin tests of the bindings and of android/repere-kotlin on the desktop JVM, against the
# library built from this workspace and a live repere-server. Expects a built workspace
# and generated bindings (scripts/test-all.sh does both).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests enrol more tablets from 127.0.0.1 than the server's default of 10 a minute.
REPERE_ENROL_PER_MINUTE=1000 scripts/with-test-server.sh scripts/run-kotlin-tests.sh --name repere-kotlin-tests \
  build/bindings/fr android/repere-kotlin/src/main/kotlin android/repere-kotlin/src/test/kotlin \
  -- fr.repere.client.RepereClientTestKt
