#!/bin/bash
# Fault injection (issue 11): kill -9 the hive during an install, a model download and a spawn;
# restart on the same home each time. The state must be consistent and nothing orphaned: no
# process of the build uids, no staging leftovers, no stale lock (the restart takes it), the
# worker registry right (a live worker re-adopted, the rest not running). A start that fails
# (its port is taken) never stops workers it did not start (issue 11, item 7).
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
. "$RBEE_SRC/tests/sandbox/sandbox_lib.sh"
need_root

cat="$T/catalog"
make_spawn_catalog "$cat"
start_fake_hub
mkdir -p "$T/hub/org/big-GGUF"
python3 "$RBEE_SRC/tests/models/make_gguf.py" "$T/hub/org/big-GGUF/big.Q4_K_M.gguf" --ftype 15 --pad-mib 8
hub_control() { curl -sf -X POST --data-binary "$1" "$HF_ENDPOINT/_control" >/dev/null; }
export RBEE_BUILD_UIDS=64320-64329 RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=2000
restart() {
	: >"$HIVE_LOG"
	start_hive --catalog "$cat"
	ok "the hive restarts on the same home (no stale lock)"
}
assert_clean() { # WHAT
	assert_no_uid_procs 64320 64329 "$1: no process of the build uids is left"
	local left
	left=$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	assert_eq "$left" 0 "$1: staging is empty"
	left=$(find /var/tmp /tmp -maxdepth 1 -name "rbee-build-rbee-crash-*" 2>/dev/null | wc -l)
	assert_eq "$left" 0 "$1: no build directory is left outside RBEE_HOME"
	curl -sf "$HIVE_URL/health" >/dev/null || fail "$1: the hive does not answer /health"
	ok "$1: the hive answers /health"
}

# --- 1. kill -9 mid-install: build() left a daemon out of its group and session ---
sed -e 's/^pkgname=.*/pkgname=rbee-crash-build/' \
    -e 's/^\(\s*\)sleep 3599/\1(setsid sh -c "exec sleep 3042" >\/dev\/null 2>\&1 <\/dev\/null \&)\n\1sleep 3041/' \
    -e "s|^source=.*|$(grep '^source=' "$cat/pkgbuilds/rbee-test-worker-local.PKGBUILD")|" \
    "$cat/pkgbuilds/rbee-test-slowbuild.PKGBUILD" >"$cat/pkgbuilds/rbee-crash-build.PKGBUILD"
jq '.id = "rbee-crash-build"' "$cat/workers/rbee-test-slowbuild.json" >"$cat/workers/rbee-crash-build.json"
start_hive --catalog "$cat"
job=$(submit '{"operation":"worker_install","worker_id":"rbee-crash-build"}')
stream "$job" >"$T/install.txt" &
WAIT_S=30 wait_for grep -q 'BUILD_PID=' "$T/install.txt" || fail "build() did not start"
WAIT_S=10 wait_for pgrep -f 'sleep 304[2]' || fail "build()'s daemon did not start"
stop_hive KILL
[ -n "$(uid_procs 64320 64329)" ] || fail "nothing of the build outlived the hive (nothing to test)"
ok "killed the hive mid-install; build processes outlive it"
restart
assert_contains "$(cat "$HIVE_LOG")" "left by interrupted builds" "the restart kills the build uids' processes"
assert_clean "after a crash mid-install"
[ ! -e "$RBEE_HOME/workers/rbee-crash-build" ] || fail "a half-built worker is installed"
ok "nothing half-installed"

# --- 2. kill -9 mid-download ---
hub_control '{"stall_once":{"org/big-GGUF/big.Q4_K_M.gguf":[3000000,30]}}'
job=$(submit '{"operation":"model_download","model":"org/big-GGUF"}')
stream "$job" >"$T/download.txt" &
WAIT_S=30 wait_for bash -c "find '$RBEE_HOME/models' -name '*.part' -size +1M | grep -q ." ||
	fail "the download did not start"
stop_hive KILL
ok "killed the hive mid-download"
restart
assert_clean "after a crash mid-download"
out=$(run_job '{"operation":"model_list"}')
assert_contains "$out" "data: [DONE]" "the model store reads back after the crash"
download org/big-GGUF
ok "downloading it again completes"
got=$(job_data "$(run_job '{"operation":"model_list"}')" | jq -r '[.models[].id | select(startswith("org/big-GGUF"))] | length')
assert_ne "$got" 0 "and the model is listed"
left=$(find "$RBEE_HOME/models" -name '*.part' | wc -l)
assert_eq "$left" 0 "no partial file is left"

# --- 3. kill -9 mid-spawn (the worker is slow to become ready) ---
install rbee-test-worker-local
add_variant "$cat" rbee-crash-slow cpu 30 --slow-start-ms 8000
install rbee-crash-slow
download "$MODEL"
job=$(submit "{\"operation\":\"worker_spawn\",\"model\":\"$MODEL\",\"worker\":\"rbee-crash-slow\",\"device\":0}")
stream "$job" >"$T/spawn.txt" &
track $!
WAIT_S=30 wait_for grep -q "starting 'rbee-crash-slow-" "$T/spawn.txt" || fail "the spawn did not start: $(cat "$T/spawn.txt")"
WAIT_S=10 wait_for bash -c "jq -e '.workers[] | select(.pid > 0)' '$RBEE_HOME/state/workers.json'" ||
	fail "the worker was not recorded"
wpid=$(jq -r '.workers[] | select(.pid > 0) | .pid' "$RBEE_HOME/state/workers.json" | head -1)
stop_hive KILL
kill -0 "$wpid" || fail "the worker died with the hive"
ok "killed the hive mid-spawn; the worker (pid $wpid) lives on"

# A second start whose port is taken fails, and must leave that worker alone.
hub_port=${HF_ENDPOINT##*:}
rc=0
"$BIN/rbee-hive" --port "$hub_port" --catalog "$cat" >"$T/failed.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a hive on a taken port started"
ok "a start on a taken port fails"
sleep 0.5
kill -0 "$wpid" 2>/dev/null || fail "the failed start stopped worker $wpid it did not start: $(cat "$T/failed.log")"
ok "and leaves the worker it did not start running"

restart
assert_clean "after a crash mid-spawn"
WAIT_S=20 wait_for bash -c "curl -sf '$HIVE_URL/v1/workers' | jq -e '.workers[] | select(.pid == $wpid and .state == \"ready\")'" ||
	fail "worker $wpid is not re-adopted as ready: $(curl -sf "$HIVE_URL/v1/workers")"
ok "the worker started before the crash is re-adopted and ready"
bad=$(curl -sf "$HIVE_URL/v1/workers" | jq -r '.workers[] | "\(.pid) \(.state)"' | while read -r p s; do
	case $s in
	starting|ready|stopping) [ -e "/proc/$p" ] || echo "$p $s" ;;
	esac
done)
assert_eq "$bad" "" "every worker the registry lists as live is running"
stop_hive
WAIT_S=10 wait_for gone "$wpid" || fail "worker $wpid survived the hive's stop"
ok "a clean stop stops it"
pass
