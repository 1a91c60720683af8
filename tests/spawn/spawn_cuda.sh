#!/usr/bin/env bash
# CUDA workers through the fake NVIDIA driver (tests/fake_cuda, three GPUs): the worker sees
# only the chosen GPU, by UUID (CUDA_VISIBLE_DEVICES), and a model that does not fit the GPU's
# free memory is refused before anything starts, with the numbers.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

# The fake NVIDIA driver with three GPUs, and a fake nvcc for the cuda workers' builds.
use_fake_cuda "$RBEE_SRC/tests/spawn/three-gpus.conf"

make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" rbee-test-cuda cuda 30
start_fake_hub
start_hive --catalog "$T/catalog"
caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(jq '[.devices[] | select(.backend == "cuda")] | length' <<<"$caps")" 3 "the fake driver shows three GPUs"
install rbee-test-cuda
download "$MODEL"

spawn_ok cuda 1
uuid=$(jq -r '.devices[] | select(.id == "GPU-1") | .uuid' <<<"$caps")
assert_eq "$(jq -r '.backend + " " + .device_id' <<<"$W_JSON")" "cuda GPU-1" "the worker runs on cuda GPU-1"
envs=$(tr '\0' '\n' <"/proc/$W_PID/environ")
assert_contains "$envs" "CUDA_VISIBLE_DEVICES=$uuid" "CUDA_VISIBLE_DEVICES is GPU-1's UUID"
assert_contains "$envs" "CUDA_DEVICE_ORDER=PCI_BUS_ID" "with PCI bus order"
assert_contains "$SPAWN_STREAM" "CUDA_VISIBLE_DEVICES=$uuid" "the spawn narrates the pinning"
assert_contains "$(head -n 3 "$(jq -r .log_path <<<"$W_JSON")")" "--backend cuda --device 1" \
	"the worker is told its backend and device"
assert_eq "$(curl -sf "http://127.0.0.1:$W_PORT/health")" ok "the CUDA worker is healthy"

out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-cuda\",\"device\":2")
assert_contains "$out" "[ERROR] model '$MODEL'" "a model too large for the GPU is refused"
assert_contains "$out" "does not fit on cuda device 2 (GPU-2)" "naming the device"
assert_contains "$out" "only 100.0 MiB of 22.5 GiB VRAM is free" "with the free memory"
assert_contains "$out" "+ 10% + 512 MiB margin" "and the margin"
assert_not_contains "$out" "starting '" "before anything starts"
assert_eq "$(worker_count)" 1 "only the first worker is registered"

run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
gone "$W_PID" || fail "the CUDA worker was not stopped"
ok "the CUDA worker stops"
pass
