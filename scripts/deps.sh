#!/usr/bin/env bash
# Install what building, running and testing rbee needs on Debian, skipping what is present.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail

# What building, running and testing need, and nothing more (a fresh Debian 12 with
# --no-install-recommends is the reference; .ci/run is proven there with
# ../shared/tools/fresh-machine.sh). `scripts/deps.sh bench` adds what bench/ uses.
packages=(
	# build
	build-essential cmake pkg-config
	libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev libhwloc-dev libssl-dev
	# the hive at run time: git sources, archive extraction, process tools, TLS roots
	git ca-certificates tar gzip xz-utils zstd bzip2 unzip procps
	# the tests
	libcmocka-dev jq curl python3
	# scripts/fuzz.sh (run by scripts/test.sh): clang; libFuzzer and clang's ASan/UBSan
	# runtimes (libclang_rt.*.a: only recommended by clang-14); llvm-symbolizer, which clang's
	# sanitizers run to put file:line in their reports
	clang libclang-rt-14-dev llvm
)
if [ "${1:-}" = real ]; then
	# the real-worker stage: npm fetches llama.cpp's source (scripts/offline-sources.sh);
	# llama.cpp's gguf-py needs numpy and yaml to write the test model; the build needs g++
	# (build-essential) and cmake, already above
	packages+=(python3-numpy python3-yaml)
	# npm: any will do. Where Node.js comes from elsewhere (NodeSource's nodejs ships npm), Debian's
	# npm package would fight it, so it is only installed when there is no npm at all.
	command -v npm >/dev/null || packages+=(npm)
fi
if [ "${1:-}" = bench ]; then
	packages+=(hwloc wrk bc) # lstopo, the HTTP load generator, arithmetic in the scripts
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
