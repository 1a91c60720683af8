#!/usr/bin/env bash
# scripts/gpu-bundle.sh OUT - a relocatable bundle for a GPU machine that has no package registry
# and none of rbee's -dev libraries (the project's device machine: nvcc, cmake, gcc, python3).
#
# OUT/ gets the Release build's tree as it runs from the build directory:
#   bin/rbee-hive bin/rbee bin/rbee-catalog      RPATH $ORIGIN/../lib
#   lib/rbee/backends/rbee_backend_*.so          RPATH $ORIGIN/../..
#   lib/*.so.*                                   every shared library they need that is not glibc's
#   share/rbee/catalog/                          the shipped catalog
#   scripts/gpu-check.sh, tests/models/fake_hub.py, packaging/catalog  (for the end-to-end check)
# and, when given, MIRROR=DIR (scripts/offline-sources.sh) as OUT/mirror and MODEL=FILE.gguf as
# OUT/model/ (a GGUF for the end-to-end check; tests/real/make_tiny_llama.py makes one).
# Nothing in it replaces anything on the target: it runs from where it is unpacked.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "gpu-bundle: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: [MIRROR=DIR] [MODEL=FILE.gguf] scripts/gpu-bundle.sh OUT"
out=$1
build=${BUILD_DIR:-$root/build-bundle}

# $ORIGIN-relative search paths, so the binaries find the bundled libraries wherever OUT lands.
# DT_RPATH (--disable-new-dtags), not RUNPATH: RUNPATH is not searched for the dependencies of
# dependencies (libcurl's libnghttp2...), RPATH is.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRBEE_TESTS=OFF \
	-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON -DCMAKE_SKIP_BUILD_RPATH=ON \
	'-DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib' \
	'-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags,-rpath,$ORIGIN/../..' \
	'-DCMAKE_MODULE_LINKER_FLAGS=-Wl,--disable-new-dtags,-rpath,$ORIGIN/../..' >/dev/null ||
	die "cmake configure failed"
cmake --build "$build" -j"$(nproc)" >/dev/null || die "build failed"

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib/rbee/backends" "$out/share/rbee" "$out/scripts" "$out/tests/models" \
	"$out/tests/real" "$out/packaging"
cp "$build"/bin/rbee-hive "$build"/bin/rbee "$build"/bin/rbee-catalog "$out/bin/"
cp "$build"/lib/rbee/backends/*.so "$out/lib/rbee/backends/"
cp -r "$root/packaging/catalog" "$out/share/rbee/catalog"
cp -r "$root/packaging/catalog" "$out/packaging/catalog"
cp "$root/scripts/gpu-check.sh" "$out/scripts/"
cp "$root/tests/models/fake_hub.py" "$out/tests/models/"
cp "$root/tests/real/make_tiny_llama.py" "$out/tests/real/"

# Every non-glibc library any bundled ELF needs, resolved here. glibc's own (libc, libm,
# libpthread, libdl, librt, ld-linux, libresolv) stay the target's: they must match its loader.
glibc='^(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux[^ ]*|linux-vdso)\.so'
# libcurl and libcrypto are loaded at first use (core/lib/rb_libs.c), so ldd of the programs
# does not name them: they and what they need are added by hand.
lazy=$(for l in libcurl.so.4 libcrypto.so.3; do ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ {print $NF; exit}'; done)
for f in "$out"/bin/* "$out"/lib/rbee/backends/*.so $lazy; do
	ldd "$f" | awk '$3 ~ /^\// {print $1, $3}'
	case "$f" in /*/lib*.so.*) echo "$(basename "$f") $f" ;; esac
done | sort -u | while read -r name path; do
	[[ "$name" =~ $glibc ]] && continue
	cp -L "$path" "$out/lib/$name"
done
# Proof of relocation: every library outside glibc now resolves inside the bundle.
for f in "$out"/bin/* "$out"/lib/rbee/backends/*.so; do
	outside=$(LD_LIBRARY_PATH= ldd "$f" | awk '$3 ~ /^\// {print $1, $3}' |
		while read -r name path; do
			[[ "$name" =~ $glibc ]] || [[ "$(readlink -f "$path")" == "$(readlink -f "$out")"/* ]] ||
				echo "$name=$path"
		done)
	[ -z "$outside" ] || die "$f still loads from outside the bundle: $outside"
done

if [ -n "${MIRROR:-}" ]; then
	cp -r "$MIRROR" "$out/mirror"
fi
if [ -n "${MODEL:-}" ]; then
	mkdir -p "$out/model"
	cp "$MODEL" "$out/model/"
fi
echo "gpu-bundle: $out ($(du -sh "$out" | cut -f1)): $(ls "$out/lib" | grep -c '\.so') libraries"
