#!/usr/bin/env bash
# Syntax check of Swift sources and C headers (no Swift compiler here).
#
#   scripts/check-swift.sh [--header FILE.h]... [FILE_OR_DIR]...
#
# * FILE_OR_DIR: .swift files, or directories searched recursively for them
#   (see scripts/check-swift.mjs: tree-sitter-swift, `#if` resolution, known
#   false positives). Each error is printed as file:line:col.
# * --header FILE.h: `clang -fsyntax-only -x c FILE.h` (the uniffi generated
#   NAMEFFI.h); may be repeated.
# Before that, a self-test proves the Swift check can both fail and pass: a
# deliberately broken snippet must be flagged and a valid one must pass.
# Exit status: 0 if everything is clean, non-zero otherwise (also when the
# self-test fails, a file or directory is missing, or no .swift file is found
# in the Swift arguments). Needs scripts/install-tools.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/tools.env.sh
. "$here/tools.env.sh"

headers=()
swift_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --header) [ $# -ge 2 ] || { echo "check-swift: --header needs a file" >&2; exit 2; }
              headers+=("$2"); shift 2 ;;
    --header=*) headers+=("${1#--header=}"); shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; swift_args+=("$@"); break ;;
    *) swift_args+=("$1"); shift ;;
  esac
done
if [ "${#headers[@]}" -eq 0 ] && [ "${#swift_args[@]}" -eq 0 ]; then
  echo "usage: $0 [--header FILE.h]... [FILE_OR_DIR]..." >&2
  exit 2
fi

checker=(env REPERE_NODE_TOOLS="$NODE_TOOLS" node "$here/check-swift.mjs")
status=0

# ---- self-test ---------------------------------------------------------------
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/Valid.swift" <<'SWIFT'
import Foundation
#if canImport(SwiftUI)
import SwiftUI
#endif

#if swift(>=5.8)
@_documentation(visibility: private)
#endif
public actor Counter {
    private var value = 0
    public func next() async -> Int { value += 1; return value }
}

struct CounterView: View {
    @State private var count = 0
    var body: some View {
        Button("Count \(count)") {
            Task { count = await Counter().next() }
        }
    }
}

let writeReturn = { () }
SWIFT
cat >"$tmp/Broken.swift" <<'SWIFT'
import Foundation

public actor Counter {
    private var value = 0
    public func next() async -> Int {
        value += 1
        return value
    // missing closing brace
}

let x = foo(1, 2
SWIFT
if ! out="$("${checker[@]}" "$tmp/Valid.swift" 2>&1)"; then
  echo "check-swift: SELF-TEST FAILED: a valid Swift snippet was rejected:" >&2
  echo "$out" >&2
  exit 1
fi
if out="$("${checker[@]}" "$tmp/Broken.swift" 2>&1)"; then
  echo "check-swift: SELF-TEST FAILED: a broken Swift snippet was accepted:" >&2
  echo "$out" >&2
  exit 1
fi
if ! grep -q 'Broken.swift:[0-9]*:[0-9]*:' <<<"$out"; then
  echo "check-swift: SELF-TEST FAILED: the broken snippet failed without a file:line:col report:" >&2
  echo "$out" >&2
  exit 1
fi
echo "check-swift: self-test ok (broken snippet flagged, valid snippet passed)"

# ---- Swift -------------------------------------------------------------------
if [ "${#swift_args[@]}" -gt 0 ]; then
  "${checker[@]}" "${swift_args[@]}" || status=1
fi

# ---- C headers -----------------------------------------------------------------
for h in ${headers[@]+"${headers[@]}"}; do
  if [ ! -f "$h" ]; then
    echo "check-swift: no such header: $h" >&2
    status=1
    continue
  fi
  # Errors fail the check; warnings are shown only (the generated header uses
  # `#pragma once`, which clang notes when the header is the main file).
  if "$CLANG" -fsyntax-only -Wno-pragma-once-outside-header -x c "$h"; then
    echo "check-swift: header ok: $h"
  else
    echo "check-swift: header has errors: $h" >&2
    status=1
  fi
done
exit "$status"
