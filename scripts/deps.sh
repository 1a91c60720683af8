#!/usr/bin/env bash
# Install what building, running and testing rbee needs on Debian, skipping what is present.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
	build-essential cmake pkg-config git ca-certificates
	libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev libhwloc-dev libssl-dev hwloc
	libcmocka-dev jq curl python3 procps iproute2 util-linux
	tar gzip xz-utils zstd bzip2 unzip
	wrk bc
)

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
