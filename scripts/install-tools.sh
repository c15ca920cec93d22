#!/usr/bin/env bash
# Installs the non-Rust test toolchains (idempotent; a no-op taking about a
# second when everything is present). Run as root on Debian.
#   apt:  default-jdk-headless (only if javac is missing), libjna-java +
#         libjna-jni (JNA jar + its native dispatch library), clang (C header
#         check), nodejs + npm (only if node/npm are missing)
#   npm:  into the git-ignored prefix build/tools (build/tools/node_modules):
#         kotlin-compiler@2.4.20, tree-sitter@0.22.4 + tree-sitter-swift@0.7.1
#         (--ignore-scripts: their install scripts would download from outside;
#         the native addons ship prebuilt), playwright-core (drives Debian's
#         chromium, also installed here, for the browser tests)
# Paths are defined in scripts/tools.env.sh; this script exports nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.env.sh
. scripts/tools.env.sh

KOTLIN_COMPILER_VERSION=2.4.20
TREE_SITTER_VERSION=0.22.4
TREE_SITTER_SWIFT_VERSION=0.7.1
PLAYWRIGHT_CORE_VERSION=1.64.1

# ---- Debian packages --------------------------------------------------------
apt_missing=()
command -v javac >/dev/null 2>&1 || apt_missing+=(default-jdk-headless)
for pkg in libjna-java libjna-jni clang chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
    || apt_missing+=("$pkg")
done
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } \
  || apt_missing+=(nodejs npm)

if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "install-tools: apt-get install ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  need_update=0
  # Update only if the package lists are missing or lack one of the packages.
  for pkg in "${apt_missing[@]}"; do
    cand="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; break; fi
  done
  apt_log="$(mktemp)"
  trap 'rm -f "$apt_log"' EXIT
  apt_quiet() { "$@" >>"$apt_log" 2>&1 || { cat "$apt_log" >&2; return 1; }; }
  if [ "$need_update" = 1 ]; then apt_quiet apt-get update; fi
  if ! apt_quiet apt-get install -y --no-install-recommends "${apt_missing[@]}"; then
    # Stale lists (e.g. a removed .deb version): refresh once and retry.
    echo "install-tools: retrying after apt-get update" >&2
    apt_quiet apt-get update
    apt_quiet apt-get install -y --no-install-recommends "${apt_missing[@]}"
  fi
fi

# JNA_JAR in tools.env.sh is a fixed path; make sure the package still ships it.
if [ ! -f "$JNA_JAR" ]; then
  echo "install-tools: $JNA_JAR not found; libjna-java ships:" >&2
  dpkg -L libjna-java | grep '\.jar$' >&2 || true
  exit 1
fi

# ---- npm packages (project-local, git-ignored) ------------------------------
# Installed version of an npm package in NODE_TOOLS, or empty.
npm_version() {
  local pj="$NODE_TOOLS/node_modules/$1/package.json"
  if [ -f "$pj" ]; then node -p "require(process.argv[1]).version" "$pj" 2>/dev/null || true; fi
}
mkdir -p "$NODE_TOOLS"
if [ "$(npm_version kotlin-compiler)" != "$KOTLIN_COMPILER_VERSION" ] || [ ! -x "$KOTLINC" ]; then
  echo "install-tools: npm install kotlin-compiler@$KOTLIN_COMPILER_VERSION"
  npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --loglevel=error --save-exact \
    "kotlin-compiler@$KOTLIN_COMPILER_VERSION"
fi
if [ "$(npm_version tree-sitter)" != "$TREE_SITTER_VERSION" ] \
  || [ "$(npm_version tree-sitter-swift)" != "$TREE_SITTER_SWIFT_VERSION" ]; then
  echo "install-tools: npm install tree-sitter@$TREE_SITTER_VERSION tree-sitter-swift@$TREE_SITTER_SWIFT_VERSION"
  npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --loglevel=error --save-exact --ignore-scripts \
    "tree-sitter@$TREE_SITTER_VERSION" "tree-sitter-swift@$TREE_SITTER_SWIFT_VERSION"
fi

# playwright-core drives the system Chromium (browser tests); it downloads nothing.
if [ "$(npm_version playwright-core)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
  echo "install-tools: npm install playwright-core@$PLAYWRIGHT_CORE_VERSION"
  npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --loglevel=error --save-exact \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION"
fi

# ---- verify and report --------------------------------------------------------
. scripts/tools.env.sh   # re-resolve jar names now that the package is present
fail=0
for v in KOTLINC KOTLIN_STDLIB_JAR KOTLIN_TEST_JAR KOTLINX_COROUTINES_JAR JNA_JAR; do
  if [ -z "${!v}" ] || [ ! -e "${!v}" ]; then
    echo "install-tools: $v missing (${!v:-unresolved})" >&2; fail=1
  fi
done
# Debian's JNA loads its native part from libjna-jni (libjnidispatch.system.so).
dpkg -L libjna-jni 2>/dev/null | grep -q 'libjnidispatch.*\.so$' \
  || { echo "install-tools: libjnidispatch.so (libjna-jni) missing" >&2; fail=1; }
command -v "$CLANG" >/dev/null || { echo "install-tools: clang missing" >&2; fail=1; }
(cd "$NODE_TOOLS" && node -e 'const P=require("tree-sitter");new P().setLanguage(require("tree-sitter-swift"))') \
  || { echo "install-tools: tree-sitter-swift does not load" >&2; fail=1; }
[ "$fail" = 0 ] || exit 1

cat <<REPORT
install-tools: ready
  java        $(command -v java)  ($(java -version 2>&1 | head -n1))
  javac       $(command -v javac)
  kotlinc     $KOTLINC
  kotlin lib  $KOTLIN_LIB
    stdlib      $KOTLIN_STDLIB_JAR
    test        $KOTLIN_TEST_JAR
    coroutines  $KOTLINX_COROUTINES_JAR
  jna         $JNA_JAR (native: libjna-jni)
  clang       $(command -v "$CLANG")
  node tools  $NODE_TOOLS/node_modules (tree-sitter $(npm_version tree-sitter), tree-sitter-swift $(npm_version tree-sitter-swift))
REPORT
