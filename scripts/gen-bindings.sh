#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings from the built library into build/bindings/.
# Generated at build time, not committed: they always match the Rust of this checkout.
# Usage: scripts/gen-bindings.sh [debug|release]   (default: debug; builds the workspace first)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
flag=""
[ "$profile" = release ] && flag="--release"
cargo build --workspace $flag
# The built library may live in a shared target directory (CARGO_TARGET_DIR).
target="${CARGO_TARGET_DIR:-target}"
out=build/bindings
rm -rf "$out"
mkdir -p "$out"
"$target/$profile/uniffi-bindgen" generate "$target/$profile/librepere_ffi.so" \
  --language kotlin --language swift --out-dir "$out" --no-format
echo "bindings in $out:" >&2
find "$out" -type f | sort >&2
