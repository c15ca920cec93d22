#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read untrusted bytes (docs/SECURITY.md,
# "Fuzzing"): cargo-fuzz and libFuzzer on the machine's stable toolchain. RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its instrumentation flags; no sanitizer (-Zsanitizer needs a nightly
# standard library), so the targets catch panics, hangs (-timeout) and memory blow-ups
# (-rss_limit_mb), which is what the server must survive.
#
# REPERE_FUZZ_SECONDS per target: 10 by default (the smoke run of the test command); set it
# higher for a real run. New inputs go to build/fuzz-corpus/, the seeds in fuzz/corpus/ stay
# as committed. Prints the executions of each target.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${REPERE_FUZZ_SECONDS:-10}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
(cd fuzz && cargo fuzz build -s none -O)
total=0
for target in protocol received_document record_fields login_form; do
  mkdir -p "build/fuzz-corpus/$target"
  log="build/fuzz-$target.log"
  if ! (cd fuzz && cargo fuzz run -s none -O "$target" "../build/fuzz-corpus/$target" "corpus/$target" -- \
      -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) >"$log" 2>&1; then
    echo "fuzz target $target failed: see $log and fuzz/artifacts/$target/"
    tail -30 "$log"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  total=$((total + runs))
  echo "fuzz $target: $runs executions in ${secs}s, no crash"
done
echo "fuzz: $total executions in all"
