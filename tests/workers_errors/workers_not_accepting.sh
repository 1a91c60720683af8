#!/usr/bin/env bash
# A worker that listens but never accepts (its backlog full, so the kernel drops every SYN)
# cannot hold a spawn past its ready timeout nor past a cancel: readiness probes its port with
# a non-blocking connect (spawn.c port_accepts), where a blocking one waits for SYN retries,
# a minute and more. Asserted: the spawn fails in about RBEE_READY_TIMEOUT_S with "did not
# become ready" and the worker is stopped; without the timeout, a cancel during loading ends
# the spawn within a few seconds, worker stopped; the hive answers /health all along.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
. "$RBEE_SRC/tests/workers_errors/deaf_lib.sh"

make_spawn_catalog "$T/catalog"
add_deaf "$T/catalog" rbee-test-deaf 120
start_fake_hub
export RBEE_STOP_GRACE_MS=700 RBEE_HEALTH_INTERVAL_MS=300 RBEE_READY_TIMEOUT_S=3
start_hive --catalog "$T/catalog"
install rbee-test-deaf
download "$MODEL"
started_id() { sed -n "s/^data: starting '\([^']*\)'.*/\1/p" <<<"$1" | tail -n 1; }
# The live process of worker ID (its command line has "--worker-id ID"), not a zombie.
runs() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "--worker-id $1 " || continue
		[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
		return 0
	done
	return 1
}
ended() { ! runs "$1"; }

# --- the ready timeout holds -----------------------------------------------------------------
t0=$(date +%s%N)
out=$(STREAM_MAX_S=30 spawn "\"model\":\"$MODEL\",\"worker\":\"rbee-test-deaf\"") || true
[[ "$out" == *"[ERROR]"* ]] || fail "the spawn of a worker that never accepts did not end within 30 s: $(tail -n 5 <<<"$out")"
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
id=$(started_id "$out")
assert_contains "$out" "did not become ready within 3 s" "the spawn fails at the ready timeout"
assert_contains "$out" "so it was stopped" "and says the worker was stopped"
assert_contains "$out" "backlog full, never accepting" "the worker did listen (its log is quoted)"
[ "$elapsed_ms" -ge 3000 ] && [ "$elapsed_ms" -lt 9000 ] ||
	fail "the spawn took ${elapsed_ms} ms, not about 3 s"
ok "in about the ready timeout (${elapsed_ms} ms)"
[ -n "$id" ] || fail "no worker id in the spawn's stream"
wait_for ended "$id" || fail "worker '$id' still runs after its ready timeout"
ok "its process is gone"
assert_eq "$(worker_count)" 0 "and it is not listed"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive answers /health"

# --- a cancel while it does not accept (the catalog's 120 s ready timeout) --------------------
stop_hive
unset RBEE_READY_TIMEOUT_S
start_hive --catalog "$T/catalog"
job=$(submit "{\"operation\":\"worker_spawn\",\"model\":\"$MODEL\",\"worker\":\"rbee-test-deaf\"}")
stream "$job" >"$T/cancel.txt" &
track $!
WAIT_S=10 wait_for grep -q '"stage":"loading"' "$T/cancel.txt" || fail "the deaf worker never started loading"
id=$(started_id "$(cat "$T/cancel.txt")")
WAIT_S=10 wait_for grep -q "backlog full" "$RBEE_HOME"/logs/"$id"*.log || fail "the deaf worker did not listen"
sleep 1 # readiness is now probing a port that drops its SYNs
t0=$(date +%s%N)
http DELETE "/v1/jobs/$job" >/dev/null
WAIT_S=10 wait_for grep -q '\[CANCELLED\]' "$T/cancel.txt" || fail "the spawn was not cancelled within 10 s: $(tail -n 5 "$T/cancel.txt")"
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$elapsed_ms" -lt 5000 ] || fail "the cancel took ${elapsed_ms} ms"
ok "a spawn waiting for a worker that never accepts is cancelled promptly (${elapsed_ms} ms)"
wait_for ended "$id" || fail "worker '$id' survived the cancel"
ok "the cancelled worker's process is gone"
assert_eq "$(worker_count)" 0 "and it is not listed"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive still answers /health"
pass
