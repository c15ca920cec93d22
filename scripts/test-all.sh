#!/usr/bin/env bash
# Runs every test of the project, installing on a fresh machine what it lacks
# (JDK, JNA, clang, kotlinc and tree-sitter from npm, Chromium for the browser tests,
# PostgreSQL for the second backend: scripts/postgres.sh).
# Long randomized runs are opt-in: REPERE_SOAK=1; long fuzzing: REPERE_FUZZ_SECONDS=N.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage prints the seconds the previous one took, so a slow CI run shows where.
stage_start=$SECONDS
stage() {
  [ -z "${stage_name:-}" ] || echo "-- $stage_name: $((SECONDS - stage_start)) s"
  stage_name="$1"; stage_start=$SECONDS
  echo "== $1"
}

stage "tools"
scripts/install-tools.sh

stage "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

stage "build"
cargo build --workspace --all-targets

stage "Rust tests: unit, property, integration, end-to-end against the real server"
cargo nextest run --workspace --no-fail-fast

stage "the same hub and end-to-end tests on PostgreSQL (a throwaway database per test), with three instances on one"
pg_url="$(scripts/postgres.sh)"
REPERE_TEST_DATABASE_URL="$pg_url" cargo nextest run -p repere-server -p repere-tests --no-fail-fast
stage "benchmarks in smoke mode (the measuring run: cargo bench, see docs/BENCHMARKS.md)"
cargo test --workspace --benches

stage "race against the peers in smoke mode: PouchDB, automerge-repo and Repère on 300 records (the measuring run: scripts/race-peers.sh)"
RACE_SMOKE=1 scripts/race-peers.sh

stage "bindings: generate, Kotlin tests on the JVM against a live server, Swift checks"
scripts/gen-bindings.sh
scripts/kotlin-tests.sh
scripts/check-swift.sh --header build/bindings/RepereFFIC.h build/bindings ios
android/app/jvm-check/check.sh

stage "browser tests: coordinators' pages in headless Chromium against a real server"
scripts/browser-tests.sh

stage "fuzz smoke: the untrusted-input parsers under libFuzzer (REPERE_FUZZ_SECONDS for longer)"
scripts/fuzz.sh
stage "done"
