#!/usr/bin/env bash
# Builds ios/RepereKit/RepereFFIC.xcframework (the Rust core as a static library, with the
# uniffi C header and module map) and copies the generated RepereFFI.swift into the package.
#
#   ios/build-xcframework.sh
#
# macOS with Xcode and rustup only. NOT RUN on the project's Linux machines (no Apple
# toolchain there): written and reviewed, never executed. See ios/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
pkg="$here/RepereKit"
out="$root/build/ios"
lib=librepere_ffi.a
cd "$root"

[ "$(uname -s)" = Darwin ] || { echo "build-xcframework: needs macOS with Xcode" >&2; exit 1; }

# Device, both simulators, and macOS (so `swift build` / `swift test` of RepereKit work on a Mac).
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
export IPHONEOS_DEPLOYMENT_TARGET=16.0 MACOSX_DEPLOYMENT_TARGET=13.0

# repere-ffi is a cdylib (Android, JVM tests); Apple apps link a static library instead.
for t in "${targets[@]}"; do
  cargo rustc -p repere-ffi --lib --release --target "$t" --crate-type staticlib
done

rm -rf "$out"
mkdir -p "$out/ios-sim" "$out/macos" "$out/headers" "$out/bindings"
# One xcframework slice per platform: the two simulator architectures (and the two macOS
# ones) are merged into fat libraries.
lipo -create "target/aarch64-apple-ios-sim/release/$lib" "target/x86_64-apple-ios/release/$lib" \
  -output "$out/ios-sim/$lib"
lipo -create "target/aarch64-apple-darwin/release/$lib" "target/x86_64-apple-darwin/release/$lib" \
  -output "$out/macos/$lib"

# Swift bindings with the workspace's uniffi-bindgen, read from the host library (library
# mode: every target's build carries the same metadata).
cargo build --workspace --release
"target/release/uniffi-bindgen" generate "target/release/librepere_ffi.dylib" \
  --language swift --out-dir "$out/bindings" --no-format

# The header and the module map ("module RepereFFIC"), under the name the compiler looks for.
cp "$out/bindings/RepereFFIC.h" "$out/headers/"
cp "$out/bindings/RepereFFIC.modulemap" "$out/headers/module.modulemap"

rm -rf "$pkg/RepereFFIC.xcframework"
xcodebuild -create-xcframework \
  -library "target/aarch64-apple-ios/release/$lib" -headers "$out/headers" \
  -library "$out/ios-sim/$lib" -headers "$out/headers" \
  -library "$out/macos/$lib" -headers "$out/headers" \
  -output "$pkg/RepereFFIC.xcframework"

mkdir -p "$pkg/Sources/RepereFFI"
cp "$out/bindings/RepereFFI.swift" "$pkg/Sources/RepereFFI/RepereFFI.swift"
echo "build-xcframework: $pkg/RepereFFIC.xcframework and Sources/RepereFFI/RepereFFI.swift are up to date" >&2
