#!/usr/bin/env bash
# The {threads} launch placeholder is the number of CPUs the worker is bound to: a CPU worker
# gets its NUMA node's cpuset and {threads} counts it; a worker left unbound (a GPU whose NUMA
# node is unknown, here the fake driver's) inherits the hive's own affinity and {threads} counts
# that. The hive runs under `taskset -c 0`, so the unbound count is 1 whatever the machine.
# (llama-server ignores CPU binding and OMP_NUM_THREADS: it must be told --threads.)
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
command -v taskset >/dev/null || { echo "SKIP: no taskset"; exit 0; }

# The fake NVIDIA driver with three GPUs, and a fake nvcc for the cuda workers' builds.
use_fake_cuda "$RBEE_SRC/tests/spawn/three-gpus.conf"

# The test worker's --slow-start-ms takes a number: it carries {threads} to /proc/PID/cmdline.
make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" rbee-test-threads cpu 30 --slow-start-ms "{threads}"
add_variant "$T/catalog" rbee-test-threads-cuda cuda 30 --slow-start-ms "{threads}"
start_fake_hub
HIVE_LAUNCHER=(taskset -c 0)
start_hive --catalog "$T/catalog"
install rbee-test-threads
install rbee-test-threads-cuda
download "$MODEL"

count() { # CPUs in a list such as 0-3,8
	local n=0 r IFS=,
	for r in $1; do n=$((n + ${r#*-} - ${r%-*} + 1)); done
	echo "$n"
}
affinity() { awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$1/status"; }
threads_of() { tr '\0' '\n' <"/proc/$1/cmdline" | grep -x -A1 -- --slow-start-ms | tail -n 1; }
caps=$(curl -sf "$HIVE_URL/v1/capabilities")
cpuset() { jq -r --arg id "$1" '.devices[] | select(.id == $id) | .cpuset // ""' <<<"$caps"; }
hive_aff=$(affinity "$HIVE_PID")
assert_eq "$hive_aff" 0 "the hive runs on CPU 0 only (taskset)"

# --- bound: CPU device 0, its NUMA node's cpuset ---
spawn_ok rbee-test-threads 0
cpu0=$(cpuset CPU-0)
assert_ne "$cpu0" "" "CPU-0 has a cpuset"
assert_eq "$(affinity "$W_PID")" "$cpu0" "the CPU worker is bound to CPU-0's cpuset"
assert_eq "$(threads_of "$W_PID")" "$(count "$cpu0")" "{threads} is the size of that cpuset"
assert_contains "$(head -n 2 "$(jq -r .log_path <<<"$W_JSON")")" "--slow-start-ms $(count "$cpu0")" \
	"as the log's start header shows"
"$BIN/rbee" worker process delete "$W_PID" >/dev/null

# --- unbound: a GPU whose NUMA node is unknown ---
assert_eq "$(cpuset GPU-0)" "" "the fake GPU-0 has no known CPUs (so its worker is not bound)"
spawn_ok rbee-test-threads-cuda 0
assert_not_contains "$SPAWN_STREAM" ", CPUs " "the spawn binds no CPUs"
assert_eq "$(affinity "$W_PID")" "$hive_aff" "the unbound worker inherits the hive's affinity"
assert_eq "$(threads_of "$W_PID")" "$(count "$hive_aff")" "{threads} is the hive's CPU count (1)"
"$BIN/rbee" worker process delete "$W_PID" >/dev/null
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health"
assert_eq "$(worker_count)" 0 "no worker is left"
stop_hive

# --- a topology read from a file (16 CPUs, 8 per node) names CPUs this machine may not have:
# {threads} counts those the worker really gets (the online ones), as its affinity shows ---
HWLOC_XMLFILE="$RBEE_SRC/tests/plugins/two-numa-two-gpu.xml" HWLOC_THISSYSTEM=0 \
	start_hive --catalog "$T/catalog"
caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(cpuset CPU-0)" 0-7 "CPU-0 is the file's node 0, CPUs 0-7"
spawn_ok rbee-test-threads 0
aff=$(affinity "$W_PID")
assert_eq "$(threads_of "$W_PID")" "$(count "$aff")" "{threads} is the number of CPUs the worker runs on ($aff)"
"$BIN/rbee" worker process delete "$W_PID" >/dev/null
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health"
pass
