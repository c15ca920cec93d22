# shellcheck shell=bash disable=SC2034  # variables are for the sourcing script
# Fixed locations of the non-Rust test tools installed by scripts/install-tools.sh.
# Source it (". scripts/tools.env.sh"); it only sets shell variables (nothing is
# exported) and works from any current directory.
#   REPERE_ROOT   repository root
#   NODE_TOOLS    npm prefix holding node_modules (git-ignored build/tools)
#   KOTLINC       kotlinc-jvm from npm kotlin-compiler
#   KOTLIN_LIB    its lib/ dir
#   KOTLIN_STDLIB_JAR, KOTLIN_TEST_JAR, KOTLINX_COROUTINES_JAR  jars in KOTLIN_LIB
#                 (resolved by glob: the names may or may not carry a version)
#   JNA_JAR       Debian libjna-java jar (dpkg -L libjna-java; fixed path)
#   CLANG         clang used for the C header syntax check
REPERE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_TOOLS="$REPERE_ROOT/build/tools"
KOTLINC="$NODE_TOOLS/node_modules/kotlin-compiler/bin/kotlinc-jvm"
KOTLIN_LIB="$NODE_TOOLS/node_modules/kotlin-compiler/lib"
JNA_JAR="/usr/share/java/jna.jar"
CLANG="clang"

# First existing match of KOTLIN_LIB/<stem>.jar or KOTLIN_LIB/<stem>-<version>.jar
# (sources/javadoc jars excluded); prints nothing if absent.
_repere_kotlin_jar() {
  local f
  for f in "$KOTLIN_LIB/$1.jar" "$KOTLIN_LIB/$1"-[0-9]*.jar; do
    case "$f" in *-sources.jar|*-javadoc.jar) continue ;; esac
    if [ -f "$f" ]; then printf '%s\n' "$f"; return 0; fi
  done
  return 0
}
KOTLIN_STDLIB_JAR="$(_repere_kotlin_jar kotlin-stdlib)"
KOTLIN_TEST_JAR="$(_repere_kotlin_jar kotlin-test)"
KOTLINX_COROUTINES_JAR="$(_repere_kotlin_jar kotlinx-coroutines-core-jvm)"
unset -f _repere_kotlin_jar
