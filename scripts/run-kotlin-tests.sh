#!/usr/bin/env bash
# Compiles Kotlin sources on the desktop JVM and runs a main class (the Kotlin
# tests of the generated uniffi bindings and of the Android shell's plain
# Kotlin logic; no Android SDK here).
#
#   scripts/run-kotlin-tests.sh [OPTIONS] SRC... -- MAIN_CLASS [ARGS...]
#
#   SRC         .kt files or directories (searched recursively for *.kt), e.g.
#               the generated bindings dir, a library dir and a tests dir; all
#               are compiled together into build/kotlin/NAME.jar.
#   MAIN_CLASS  class to run, e.g. `repere.tests.MainKt` (file Main.kt in
#               package repere.tests); ARGS are passed to it. Its exit status
#               is the script's (an uncaught exception or a failed kotlin.test
#               assertion exits non-zero).
#   OPTIONS
#     --name NAME      jar name (default: MAIN_CLASS lower-cased, dots -> '-')
#     --lib-dir DIR    native libraries for JNA (-Djna.library.path), default
#                      target/debug (where cargo puts libNAME.so)
#     --no-werror      do not compile with -Werror (default: warnings are
#                      errors; the generated bindings compile warning-free)
#     --compile-only   compile (or reuse) the jar, do not run it
#     --jvm-opt OPT    extra JVM option (repeatable), e.g. -Xmx512m or
#                      -Duniffi.component.NAME.libraryOverride=/abs/libNAME.so
#
# Classpath, for both compiling and running: kotlin-stdlib, kotlinx-coroutines-
# core-jvm, kotlin-test (from npm kotlin-compiler's lib/) and Debian's JNA (see
# scripts/tools.env.sh; install with scripts/install-tools.sh).
#
# A Kotlin compile takes ~15 s, so the jar is reused when nothing changed: the
# key is a SHA-256 of every source file (path and content), the compiler
# options, the classpath jars and the compiler version, stored next to the jar
# (build/kotlin/NAME.jar.inputs.sha256). Set REPERE_KOTLIN_REBUILD=1 to force
# a compile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/tools.env.sh
. "$here/tools.env.sh"

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

name=""
lib_dir="${CARGO_TARGET_DIR:-$REPERE_ROOT/target}/debug"
werror=1
run=1
jvm_opts=()
srcs=()
main_class=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --lib-dir) lib_dir="$2"; shift 2 ;;
    --no-werror) werror=0; shift ;;
    --compile-only) run=0; shift ;;
    --jvm-opt) jvm_opts+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    --) shift; [ $# -ge 1 ] || usage; main_class="$1"; shift; args=("$@"); break ;;
    -*) echo "run-kotlin-tests: unknown option $1" >&2; usage ;;
    *) srcs+=("$1"); shift ;;
  esac
done
if [ -z "$main_class" ] || [ "${#srcs[@]}" -eq 0 ]; then usage; fi
[ -n "$name" ] || name="$(tr 'A-Z.' 'a-z-' <<<"$main_class")"

for v in KOTLINC KOTLIN_STDLIB_JAR KOTLIN_TEST_JAR KOTLINX_COROUTINES_JAR JNA_JAR; do
  if [ -z "${!v}" ] || [ ! -e "${!v}" ]; then
    echo "run-kotlin-tests: $v not found (${!v:-unresolved}); run scripts/install-tools.sh" >&2
    exit 2
  fi
done

# Sources: every .kt file under the arguments, in a stable order.
files=()
for s in "${srcs[@]}"; do
  if [ -d "$s" ]; then
    while IFS= read -r -d '' f; do files+=("$f"); done \
      < <(find "$s" -type f -name '*.kt' -print0 | LC_ALL=C sort -z)
  elif [ -f "$s" ]; then
    files+=("$s")
  else
    echo "run-kotlin-tests: no such file or directory: $s" >&2
    exit 2
  fi
done
if [ "${#files[@]}" -eq 0 ]; then
  echo "run-kotlin-tests: no .kt files in ${srcs[*]}" >&2
  exit 2
fi

out_dir="$REPERE_ROOT/build/kotlin"
jar="$out_dir/$name.jar"
stamp="$jar.inputs.sha256"
mkdir -p "$out_dir"

classpath="$KOTLIN_STDLIB_JAR:$KOTLINX_COROUTINES_JAR:$KOTLIN_TEST_JAR:$JNA_JAR"
kotlinc_opts=(-jvm-target 17)
[ "$werror" = 1 ] && kotlinc_opts+=(-Werror)

inputs_hash() {
  {
    printf 'opts %s\n' "${kotlinc_opts[*]}"
    printf 'kotlinc %s\n' "$(readlink -f "$KOTLINC")"
    cat "$NODE_TOOLS/node_modules/kotlin-compiler/package.json"
    for j in ${classpath//:/ }; do printf 'cp %s %s\n' "$(readlink -f "$j")" "$(stat -L -c '%s %Y' "$j")"; done
    for f in "${files[@]}"; do
      printf 'src %s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
    done
  } | sha256sum | cut -d' ' -f1
}
hash="$(inputs_hash)"

if [ "${REPERE_KOTLIN_REBUILD:-0}" != 1 ] && [ -f "$jar" ] && [ -f "$stamp" ] \
  && [ "$(cat "$stamp")" = "$hash" ]; then
  echo "run-kotlin-tests: $name.jar up to date (${#files[@]} source files unchanged)"
else
  echo "run-kotlin-tests: compiling ${#files[@]} Kotlin file(s) -> build/kotlin/$name.jar"
  rm -f "$stamp"
  tmp_jar="$out_dir/.$name.$$.tmp.jar" # kotlinc writes a jar only if -d ends in .jar
  trap 'rm -f "$tmp_jar"' EXIT
  start=$(date +%s)
  "$KOTLINC" "${kotlinc_opts[@]}" -cp "$classpath" -d "$tmp_jar" "${files[@]}"
  mv -f "$tmp_jar" "$jar"
  printf '%s\n' "$hash" >"$stamp"
  echo "run-kotlin-tests: compiled in $(( $(date +%s) - start )) s"
fi

[ "$run" = 1 ] || exit 0

# JNA finds the Rust cdylib (libNAME.so) through jna.library.path; Debian's
# JNA finds its own native part (libjna-jni) by itself.
if [ -d "$lib_dir" ]; then
  lib_dir_abs="$(cd "$lib_dir" && pwd)"
else
  echo "run-kotlin-tests: warning: native library dir $lib_dir does not exist" >&2
  lib_dir_abs="$lib_dir"
fi
echo "run-kotlin-tests: java $main_class (jna.library.path=$lib_dir_abs)"
exec java -Djna.library.path="$lib_dir_abs" ${jvm_opts[@]+"${jvm_opts[@]}"} \
  -cp "$jar:$classpath" "$main_class" ${args[@]+"${args[@]}"}
