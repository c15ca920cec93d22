#!/usr/bin/env bash
# Regenerate core/data/communes.tsv and core/data/epci.tsv from the
# @etalab/decoupage-administratif npm package (pinned version below).
# Needs: npm, python3. Runnable from any directory.
set -euo pipefail

PKG_NAME="@etalab/decoupage-administratif"
PKG_VERSION="6.0.0"   # millésime 2026 (COG INSEE 2026, EPCI DGCL 2026)
PKG_INTEGRITY="sha512-XavYsFlbcM/prKr8hNHPKER94IHw/dsxNM4nxjWMYk6PLFACpEedvn/7wK8Baozm0dCYhWWcf+7bcWpA5pmCaQ=="

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
OUT_DIR="$REPO_ROOT/core/data"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/repere-communes.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "Fetching $PKG_NAME@$PKG_VERSION ..."
(cd "$WORK" && npm pack --silent "$PKG_NAME@$PKG_VERSION" >/dev/null)
TARBALL="$(ls "$WORK"/*.tgz)"

ACTUAL="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$TARBALL")"
if [[ "$ACTUAL" != "$PKG_INTEGRITY" ]]; then
  echo "integrity mismatch for $TARBALL: $ACTUAL" >&2
  exit 1
fi

tar -xzf "$TARBALL" -C "$WORK"   # unpacks into $WORK/package
python3 "$SCRIPT_DIR/communes_to_tsv.py" "$WORK/package" "$OUT_DIR"
