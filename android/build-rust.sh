#!/usr/bin/env bash
# Builds the Rust core for Android and the Kotlin bindings that match it:
#   * librepere_ffi.so for arm64-v8a, armeabi-v7a and x86_64 (cargo-ndk) into
#     android/app/src/main/jniLibs/<abi>/ (where the Android Gradle plugin packages it);
#   * the Kotlin bindings, with the workspace's uniffi-bindgen, into build/bindings/
#     (the source directory android/repere-kotlin/build.gradle.kts compiles).
#
#   android/build-rust.sh [release|debug]        (default: release)
#
# Needs: the Android NDK (ANDROID_NDK_HOME, r27 or newer), `cargo install cargo-ndk`, and
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# NOT RUN on the project's machines (no NDK there): written and reviewed, never executed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="${1:-release}"
flags=()
[ "$profile" = release ] && flags=(--release)
cd "$root"

: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an installed Android NDK}"
command -v cargo-ndk >/dev/null || { echo "build-rust: cargo install cargo-ndk" >&2; exit 1; }

# 16 KB memory pages (required by Google Play for apps targeting Android 15+): align the
# 64-bit libraries' segments. The 32-bit ABI does not need it.
export CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS="-C link-arg=-Wl,-z,max-page-size=16384"
export CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS="-C link-arg=-Wl,-z,max-page-size=16384"

# -P 26: the app's minSdk. cargo-ndk sets the NDK's clang for each target, which also
# builds the vendored OpenSSL and SQLCipher.
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -P 26 \
  -o "$here/app/src/main/jniLibs" build -p repere-ffi "${flags[@]}"

# The workspace's uniffi-bindgen is a host binary; build the whole workspace (TOOLCHAIN.md:
# per-package builds recompile shared crates with other features). Bindings are read from
# the arm64 library (library mode: every target's build carries the same metadata), which
# works on Linux and macOS hosts alike.
cargo build --workspace "${flags[@]}"
mkdir -p build/bindings
"target/$profile/uniffi-bindgen" generate "target/aarch64-linux-android/$profile/librepere_ffi.so" \
  --language kotlin --out-dir build/bindings --no-format

echo "build-rust: libraries in $here/app/src/main/jniLibs, Kotlin bindings in $root/build/bindings" >&2
