# save_fail_lib.sh - the body of the workers_save_fail_* tests; the script that sources it sets
# MODE first:
#   rename  workers.json is made a non-empty directory, so the rename that puts a new registry
#           in place fails (EISDIR); freed by putting the directory away. Any user, no mount.
#   enospc  RBEE_HOME/state is a small tmpfs (root only; skipped with 77 otherwise), filled up
#           so writing the new registry fails (ENOSPC); freed by deleting the filler.
#
# Asserted: while the registry cannot be saved, a spawn fails with "cannot save the worker
# registry '<path>': <why>" instead of [DONE] and its worker is stopped; a stop is not
# reported done either (the worker is stopped all the same); the hive logs the path and the
# reason and keeps answering /health. Once space is back, the writer's retry saves what
# changed meanwhile without any new change, the next spawn and stop are on disk at their
# [DONE], and the hive has the same open files and threads as before.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

STATE="$RBEE_HOME/state"
REG="$STATE/workers.json"
if [ "$MODE" = enospc ]; then
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }
	mkdir -p "$STATE"
	mount -t tmpfs -o size=512k,mode=0700 rbee-test-state "$STATE" 2>/dev/null ||
		{ echo "SKIP: cannot mount a tmpfs here"; exit 77; }
	# Cleanup needs workers.json (the pids to kill) before the tmpfs goes.
	trap 'rc=$?; _spawn_cleanup_workers; stop_hive KILL; umount -l "$STATE" || true; _spawn_exit $rc' EXIT
fi

break_disk() {
	if [ "$MODE" = rename ]; then
		mv "$REG" "$T/workers.json.before"
		mkdir "$REG" && touch "$REG/keep"
	else
		dd if=/dev/zero of="$STATE/filler" bs=4k 2>/dev/null || true
		# tmpfs rounds to pages: what is left is less than one page for a new file.
		dd if=/dev/zero of="$STATE/filler2" bs=1 2>/dev/null || true
	fi
}
fix_disk() {
	if [ "$MODE" = rename ]; then
		rm -rf "$REG"
	else
		rm -f "$STATE/filler" "$STATE/filler2"
	fi
}
WHY=$([ "$MODE" = rename ] && echo "Is a directory" || echo "No space left on device")

on_disk() { jq -c '[.workers[] | {worker_id, state}]' "$REG"; }
listed() { curl -sf "$HIVE_URL/v1/workers" | jq -c '[.workers[] | .worker_id]'; }
# The hive's open files and threads (the job threads of the last spawn may still be ending).
fds() { ls "/proc/$HIVE_PID/fd" | wc -l; }
threads() { ls "/proc/$HIVE_PID/task" | wc -l; }
# Live test-worker processes of this test (their command line names this RBEE_HOME).
our_workers() {
	local n=0 p
	for p in /proc/[0-9]*; do
		grep -qa "$RBEE_HOME" "$p/cmdline" 2>/dev/null || continue
		grep -qa rbee-test-worker "$p/cmdline" 2>/dev/null || continue
		[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
		n=$((n + 1))
	done
	echo $n
}

make_spawn_catalog "$T/catalog"
start_fake_hub
export RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=2000
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"

# A spawn and a stop that work, so every thread and file the hive keeps exists already.
spawn_ok cpu
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
assert_contains "$out" "[DONE]" "a stop works while the disk is fine"
spawn_ok cpu
W1=$W_ID W1_PID=$W_PID
assert_eq "$(on_disk)" "[{\"worker_id\":\"$W1\",\"state\":\"ready\"}]" "the first worker is on disk"
sleep 0.5
FDS=$(fds) THREADS=$(threads)

# --- the registry cannot be saved -----------------------------------------------------------
break_disk
LOG_AT=$(wc -l <"$HIVE_LOG")
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-worker-local\",\"device\":0")
assert_not_contains "$out" "data: [DONE]" "a spawn whose worker cannot be saved is not acknowledged"
assert_contains "$out" "cannot save the worker registry '$REG': " "the spawn says the registry cannot be saved"
assert_contains "$out" "$WHY" "and why ($WHY)"
assert_contains "$out" "is not reported ready" "and what that means for the worker"
assert_eq "$(listed)" "[\"$W1\"]" "the failed spawn's worker is not listed"
one_worker() { [ "$(our_workers)" = 1 ]; }
wait_for one_worker || fail "the failed spawn's worker still runs ($(our_workers) workers)"
ok "the failed spawn's worker was stopped"
log=$(tail -n +"$((LOG_AT + 1))" "$HIVE_LOG")
assert_contains "$log" "cannot save the worker registry '$REG' (attempt 1 of 3, retrying): " \
	"the hive log says the path and that it retries"
assert_contains "$log" "(attempt 3 of 3): " "the retries are bounded"
assert_contains "$log" "$WHY" "the hive log says why"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive answers /health while its registry cannot be saved"

out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W1_PID}")
assert_not_contains "$out" "data: [DONE]" "a stop that cannot be saved is not acknowledged"
assert_contains "$out" "cannot save the worker registry '$REG': " "the stop says the registry cannot be saved"
assert_contains "$out" "worker '$W1' is stopped" "and that the worker is stopped all the same"
wait_for gone "$W1_PID" || [ "$(awk '{print $3}' "/proc/$W1_PID/stat" 2>/dev/null)" = Z ] ||
	fail "the worker still runs after the stop"
ok "its process ended"
assert_eq "$(listed)" "[]" "the hive no longer lists it"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive still answers /health"

# The writer retried meanwhile (every 2 s); a failure that stays the same is logged once.
sleep 2.5
assert_eq "$(tail -n +"$((LOG_AT + 1))" "$HIVE_LOG" | grep -c "(attempt 1 of 3, retrying)")" 1 \
	"a disk that stays full is logged once, not at every retry"

# --- space is back: the writer's retry saves everything, with no new change ------------------
fix_disk
saved_empty() { [ "$(on_disk 2>/dev/null)" = "[]" ]; }
WAIT_S=10 wait_for saved_empty || fail "the registry was not saved again: $(cat "$REG" 2>&1)"
ok "the writer's retry saved the registry once it could (the stopped worker is gone from it)"
assert_contains "$(tail -n +"$((LOG_AT + 1))" "$HIVE_LOG")" "the worker registry '$REG' is saved again" \
	"the hive log says it is saved again"
spawn_ok cpu
assert_eq "$(on_disk)" "[{\"worker_id\":\"$W_ID\",\"state\":\"ready\"}]" "a later spawn is on disk at its [DONE]"
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":$W_PID}")
assert_contains "$out" "[DONE]" "a later stop is acknowledged"
assert_eq "$(on_disk)" "[]" "and on disk at its [DONE]"

fds_back() { [ "$(fds)" -le "$FDS" ]; }
threads_back() { [ "$(threads)" -le "$THREADS" ]; }
WAIT_S=10 wait_for fds_back || fail "the hive holds $(fds) files, $FDS before: $(ls -l /proc/$HIVE_PID/fd)"
ok "the hive holds no more open files than before ($FDS)"
WAIT_S=10 wait_for threads_back || fail "the hive runs $(threads) threads, $THREADS before"
ok "the hive runs no more threads than before ($THREADS)"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive answers /health"
assert_eq "$(our_workers)" 0 "no worker is left running"
pass
