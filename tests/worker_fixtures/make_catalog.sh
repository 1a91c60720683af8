#!/bin/bash
# make_catalog.sh DIR SOURCE_BASE_URL [HTTP_PORT]
#
# Write the test catalog into DIR (workers/*.json, pkgbuilds/*.PKGBUILD) from the templates
# beside this script, with the test worker's tarball copied in (for relative, directory-mode
# sources) and these placeholders filled in:
#   @SOURCE_URL@  SOURCE_BASE_URL/rbee-test-worker-1.0.tar.gz (served over local HTTP by the test)
#   @SHA256@      the tarball's sha256, computed now
#   @NODE_ARCH@   this machine's architecture; @OTHER_ARCH@ the other one of x86_64/aarch64
#   @HTTP_PORT@   the port of that HTTP server (build() checks it cannot reach it)
set -euo pipefail
dir=$1 base=$2 port=${3:-0}
here=$(cd "$(dirname "$0")" && pwd)
tarball="${RBEE_TEST_BIN:?}/rbee-test-worker-1.0.tar.gz"
[ -f "$tarball" ] || { echo "make_catalog.sh: no '$tarball': build the tests first" >&2; exit 1; }
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
arch=$(uname -m)
[ "$arch" = arm64 ] && arch=aarch64
other=aarch64
[ "$arch" = aarch64 ] && other=x86_64
mkdir -p "$dir/workers" "$dir/pkgbuilds"
cp "$tarball" "$dir/"
for f in "$here"/catalog/workers/*.json "$here"/catalog/pkgbuilds/*.PKGBUILD; do
	rel=${f#"$here/catalog/"}
	sed -e "s|@SOURCE_URL@|$base/rbee-test-worker-1.0.tar.gz|g" -e "s|@SHA256@|$sha|g" \
	    -e "s|@NODE_ARCH@|$arch|g" -e "s|@OTHER_ARCH@|$other|g" -e "s|@HTTP_PORT@|$port|g" \
	    "$f" >"$dir/$rel"
done
