#!/usr/bin/env bash
# A device whose free memory is unknown (0, as the ABI says) is not "full": the spawn skips the
# free-memory check and says so, and refuses only a model larger than the device's total.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

mkdir -p "$T/plugins"
cp "$RBEE_BUILD/tests/loader/plugins/rbee_backend_testnofree.so" "$T/plugins/"
export RBEE_BACKEND_PATH="$T/plugins"
make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" rbee-test-nofree testnofree 30
start_fake_hub
start_hive --catalog "$T/catalog"
caps=$(curl -sf "$HIVE_URL/v1/capabilities")
assert_eq "$(jq '[.devices[] | select(.backend == "testnofree" and .memory_free_bytes == 0)] | length' <<<"$caps")" 2 \
	"the plugin's two devices report free memory 0 (unknown)"
install rbee-test-nofree
download "$MODEL"

spawn_ok rbee-test-nofree 0
assert_eq "$(jq -r '.backend + " " + .device_id' <<<"$W_JSON")" "testnofree NOFREE-0" \
	"a worker starts on the device whose free memory is unknown"
assert_contains "$SPAWN_STREAM" "device NOFREE-0 reports its free memory as unknown; skipping the free-memory check" \
	"the spawn says it skipped the free-memory check"
assert_not_contains "$SPAWN_STREAM" "does not fit" "it is not refused"

out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-nofree\",\"device\":1")
assert_contains "$out" "[ERROR] model '$MODEL'" "a model larger than the device's total is refused"
assert_contains "$out" "does not fit on testnofree device 1 (NOFREE-1)" "naming the device"
assert_contains "$out" "but the device has only 256.0 MiB of memory in all" "with its total"
assert_eq "$(worker_count)" 1 "only the first worker is registered"

run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}" >/dev/null
gone "$W_PID" || fail "the worker was not stopped"
ok "the worker stops"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
