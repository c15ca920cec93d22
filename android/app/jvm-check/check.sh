#!/usr/bin/env bash
# Type-checks the app's Kotlin on the desktop JVM (there is no Android SDK on the project's
# machines) against hand-written stubs of the Android and Jetpack APIs it uses (stubs/).
#
#   android/app/jvm-check/check.sh
#
# Catches: names and types that do not match RepereClient or the generated bindings, Kotlin
# resolution mistakes (lambda receivers, nullability, smart casts), missing opt-ins.
# Does NOT show that the app builds: the stubs are only as faithful as their author, and the
# Compose compiler plugin, resources, manifest merging and R8 are not involved.
# Needs scripts/install-tools.sh and generated bindings (scripts/gen-bindings.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=../../../scripts/tools.env.sh
. "$root/scripts/tools.env.sh"
bindings="$root/build/bindings/fr"
[ -f "$bindings/repere/ffi/repere.kt" ] || { echo "jvm-check: no bindings in $bindings; run scripts/gen-bindings.sh" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$KOTLINC" -Werror -cp "$JNA_JAR:$KOTLINX_COROUTINES_JAR" -d "$out/app.jar" \
  "$here/stubs" "$bindings" "$root/android/repere-kotlin/src/main/kotlin" "$here/../src/main/kotlin"
echo "jvm-check: the app's Kotlin type-checks against the stubs"
