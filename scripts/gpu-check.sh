#!/usr/bin/env bash
# gpu-check.sh - check the cuda backend against nvidia-smi on a real NVIDIA machine.
#
# Builds the project (Release, no tests), runs the hive's plugin probe on the cuda plugin
# (`rbee-hive --probe-plugin`, the same child process the daemon runs) and compares every GPU
# it reports with nvidia-smi and sysfs: count, index, name, UUID, total memory, compute
# capability, driver version, PCI bus id and NUMA node. Prints PASS/FAIL per field and exits 1
# when any field fails, 2 when it cannot run (no nvidia-smi, build failure).
#
#   scripts/gpu-check.sh                  # builds into ./build-gpucheck
#   BUILD_DIR=/tmp/b scripts/gpu-check.sh
#   SKIP_BUILD=1 BUILD_DIR=build scripts/gpu-check.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-gpucheck}
fails=0
checks=0

die() { echo "gpu-check: $*" >&2; exit 2; }
pass() { checks=$((checks + 1)); printf 'PASS  %-28s %s\n' "$1" "$2"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); printf 'FAIL  %-28s %s\n' "$1" "$2"; }
# same LABEL EXPECTED ACTUAL: compare two strings.
same() {
	if [ "$2" == "$3" ]; then pass "$1" "$3"; else fail "$1" "nvidia-smi/sysfs '$2', rbee '$3'"; fi
}
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: run this on a machine with the NVIDIA driver"
command -v jq >/dev/null || die "jq not found: install it (apt-get install jq)"
# Both sides must see every GPU.
unset CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER

if [ -z "${SKIP_BUILD:-}" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRBEE_TESTS=OFF >/dev/null ||
		die "cmake configure failed"
	cmake --build "$build" -j"$(nproc)" >/dev/null || die "build failed"
fi
hive="$build/bin/rbee-hive"
plugin="$build/lib/rbee/backends/rbee_backend_cuda.so"
[ -x "$hive" ] || die "\"$hive\" missing: build first or unset SKIP_BUILD"
[ -f "$plugin" ] || die "\"$plugin\" missing"

probe=$("$hive" --probe-plugin "$plugin") || die "\"$hive --probe-plugin\" failed"
state=$(jq -r '.state' <<<"$probe")
echo "cuda backend: $state: $(jq -r '.reason' <<<"$probe")"
if [ "$state" == "available" ]; then pass "probe state" "$state"; else fail "probe state" "$state"; fi

smi=$(nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,memory.total,compute_cap,driver_version \
	--format=csv,noheader,nounits) || die "nvidia-smi failed"
mapfile -t rows <<<"$smi"
same "gpu count" "${#rows[@]}" "$(jq '.devices | length' <<<"$probe")"

for row in "${rows[@]}"; do
	IFS=, read -r index name uuid bus mem cc driver <<<"$row"
	index=$(trim "$index") name=$(trim "$name") uuid=$(trim "$uuid") mem=$(trim "$mem")
	cc=$(trim "$cc") driver=$(trim "$driver")
	# nvidia-smi prints "00000000:41:00.0"; rbee keys devices by "0000:41:00.0".
	bus=$(trim "$bus" | tr '[:upper:]' '[:lower:]')
	bus=${bus: -12}
	dev=$(jq -c --arg bus "$bus" '.devices[] | select(.pci_bus_id == $bus)' <<<"$probe")
	echo "--- GPU $index ($bus)"
	if [ -z "$dev" ]; then
		fail "gpu $index pci bus id" "no rbee device at $bus"
		continue
	fi
	pass "gpu $index pci bus id" "$bus"
	same "gpu $index index" "$index" "$(jq -r '.index' <<<"$dev")"
	same "gpu $index name" "$name" "$(jq -r '.name' <<<"$dev")"
	same "gpu $index uuid" "$uuid" "$(jq -r '.uuid' <<<"$dev")"
	same "gpu $index compute capability" "$cc" "$(jq -r '.compute_capability' <<<"$dev")"
	same "gpu $index driver version" "$driver" "$(jq -r '.driver_version' <<<"$dev")"
	# Both read the framebuffer size; allow 1% for drivers that reserve some of it differently.
	rmem=$(( $(jq -r '.memory_total_bytes' <<<"$dev") / 1048576 ))
	if [ $(( (rmem > mem ? rmem - mem : mem - rmem) * 100 )) -le "$mem" ]; then
		pass "gpu $index memory total" "$rmem MiB (nvidia-smi $mem MiB)"
	else
		fail "gpu $index memory total" "nvidia-smi $mem MiB, rbee $rmem MiB"
	fi
	rfree=$(( $(jq -r '.memory_free_bytes' <<<"$dev") / 1048576 ))
	if [ "$rfree" -gt 0 ] && [ "$rfree" -le "$rmem" ]; then
		pass "gpu $index memory free" "$rfree MiB"
	else
		fail "gpu $index memory free" "$rfree MiB of $rmem MiB"
	fi
	numa=-1
	if [ -r "/sys/bus/pci/devices/$bus/numa_node" ]; then
		numa=$(cat "/sys/bus/pci/devices/$bus/numa_node")
	fi
	same "gpu $index numa node" "$numa" "$(jq -r '.numa_node // -1' <<<"$dev")"
	echo "      cpuset $(jq -r '.cpuset // "unknown"' <<<"$dev"), nodeset $(jq -r '.nodeset // "unknown"' <<<"$dev")"
done

echo "gpu-check: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
