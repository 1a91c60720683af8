#!/usr/bin/env bash
# With the fake NVIDIA driver found through LD_LIBRARY_PATH and a two-NUMA topology, the hive's
# cuda backend lists both GPUs with identity, memory, compute capability and NUMA locality, and
# a driver that hangs or crashes costs a "broken" backend, never the hive.
. "$RBEE_SRC/tests/lib.sh"

fake_env() {
	export LD_LIBRARY_PATH="$RBEE_BUILD/tests/fake_cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export RBEE_FAKE_GPUS="$RBEE_SRC/tests/plugins/two-gpus.conf"
	export HWLOC_XMLFILE="$RBEE_SRC/tests/plugins/two-numa-two-gpu.xml" HWLOC_THISSYSTEM=0
}
fake_env
start_hive

caps=$(curl -sf "$HIVE_URL/v1/capabilities")
gpu() { jq -r --arg id "$1" --arg f "$2" '.devices[] | select(.id == $id) | .[$f]' <<<"$caps"; }
assert_eq "$(jq -r '[.devices[] | select(.device_type == "gpu")] | length' <<<"$caps")" 2 "two GPUs are listed"
assert_eq "$(gpu GPU-0 backend)" cuda "from the cuda backend"
assert_eq "$(gpu GPU-0 pci_bus_id)" 0000:17:00.0 "GPU-0 is the first GPU in PCI order"
assert_eq "$(gpu GPU-1 pci_bus_id)" 0000:b1:00.0 "bus ids are lower-case"
assert_eq "$(gpu GPU-1 uuid)" GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 "UUIDs are printed as nvidia-smi does"
assert_eq "$(gpu GPU-1 name)" "NVIDIA H100 80GB HBM3" "with the driver's name"
assert_eq "$(gpu GPU-1 memory_total_bytes)" $((81559 * 1024 * 1024)) "and total memory in bytes"
assert_eq "$(gpu GPU-1 memory_free_bytes)" $((80000 * 1024 * 1024)) "and free memory from NVML"
assert_eq "$(gpu GPU-1 compute_capability)" 9.0 "and the compute capability"
assert_eq "$(gpu GPU-0 numa_node)" 0 "GPU-0 is local to NUMA node 0"
assert_eq "$(gpu GPU-1 numa_node)" 1 "GPU-1 is local to NUMA node 1"
assert_ne "$(gpu GPU-0 cpuset)" "$(gpu GPU-1 cpuset)" "each with its node's CPUs"
assert_eq "$(gpu GPU-0 driver_version)" 550.54.15 "the driver version comes from NVML"
assert_eq "$(jq -r '[.devices[] | select(.device_type == "cpu")] | length' <<<"$caps")" 2 \
	"the cpu backend sees both NUMA nodes of the topology"
out=$("$BIN/rbee" hive devices)
assert_contains "$out" "GPU-1" "rbee hive devices shows the GPUs"
stop_hive

RBEE_FAKE_CUDA_FAIL=100 start_hive
assert_eq "$(curl -sf "$HIVE_URL/v1/backends" | jq -r '.backends[] | select(.name=="cuda") | .state')" \
	unavailable "a driver without devices makes cuda unavailable, not broken"
stop_hive

RBEE_FAKE_CUDA_CRASH=1 start_hive
b=$(curl -sf "$HIVE_URL/v1/backends" | jq -c '.backends[] | select(.name=="cuda")')
assert_eq "$(jq -r .state <<<"$b")" broken "a driver that crashes makes cuda broken"
assert_contains "$(jq -r .reason <<<"$b")" "probe crashed" "and says so"
stop_hive

RBEE_PROBE_TIMEOUT_MS=3000 RBEE_FAKE_CUDA_HANG=1 start_hive
b=$(curl -sf "$HIVE_URL/v1/backends" | jq -c '.backends[] | select(.name=="cuda")')
assert_eq "$(jq -r .state <<<"$b")" broken "a driver that hangs makes cuda broken"
assert_contains "$(jq -r .reason <<<"$b")" "timed out" "after the probe's time limit"
assert_eq "$(jq -r '.backends[] | select(.name=="cpu") | .state' <<<"$(curl -sf "$HIVE_URL/v1/backends")")" \
	available "the other backends are unaffected"
pass
