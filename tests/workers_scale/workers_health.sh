#!/usr/bin/env bash
# Health checks run concurrently: with six wedged workers (SIGSTOPped: the kernel accepts their
# connections, nobody answers) a worker that dies is seen within a monitor tick, the wedged
# ones turn unhealthy within three rounds of one timeout each (not three rounds of six), and a
# healthy one stays ready. The state changes of a round, or of exits seen in one tick, reach
# the registry file in one write: far fewer writes than changes (the debug log counts them).
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

WEDGED=6
HEALTH_TIMEOUT_S=2          # HEALTH_TIMEOUT_MS in workers_monitor.c
make_spawn_catalog "$T/catalog"
start_fake_hub
export RBEE_HEALTH_INTERVAL_MS=300 RBEE_STOP_GRACE_MS=1000 RBEE_LOG=debug
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
state_of() { curl -sf "$HIVE_URL/v1/workers" | jq -r --arg id "$1" '.workers[] | select(.worker_id == $id) | .state'; }
# "WRITES CHANGES": the registry's write counter and change counter, from its last debug line.
counters() {
	grep 'worker registry: write ' "$HIVE_LOG" | tail -n 1 |
		sed -E 's/.*write ([0-9]+) of .* holds [0-9]+ change\(s\), ([0-9]+) in all.*/\1 \2/'
}
# wait_states SECONDS STATE ID...: until every ID is in STATE; prints the ms it took.
wait_states() {
	local limit=$1 want=$2 t0 id
	shift 2
	t0=$(now_ms)
	for id in "$@"; do
		until [ "$(state_of "$id")" = "$want" ]; do
			[ $(($(now_ms) - t0)) -lt $((limit * 1000)) ] ||
				fail "worker '$id' is $(state_of "$id"), not $want, after $limit s"
			sleep 0.05
		done
	done
	echo $(($(now_ms) - t0))
}

ids=() pids=()
for _ in $(seq $((WEDGED + 2))); do
	spawn_ok cpu
	ids+=("$W_ID") pids+=("$W_PID")
done
healthy_id=${ids[WEDGED]} dies_id=${ids[WEDGED + 1]} dies_pid=${pids[WEDGED + 1]}
wedged_ids=("${ids[@]:0:WEDGED}") wedged_pids=("${pids[@]:0:WEDGED}")
read -r writes0 changes0 <<<"$(counters)"
[ -n "$writes0" ] || fail "the hive logs no registry write at debug level"

# --- six wedged workers ---
kill -STOP "${wedged_pids[@]}"
sleep 1 # a round is now waiting for them
t0=$(now_ms)
kill -KILL "$dies_pid"
ms=$(wait_states 20 exited "$dies_id")
echo "# a worker that died was seen after $ms ms, beside $WEDGED wedged ones"
[ "$ms" -lt 2500 ] || fail "a dead worker was seen only after $ms ms: exits wait for health checks"
ok "a worker that dies is seen within a monitor tick, however many workers are wedged"
wait_states 60 unhealthy "${wedged_ids[@]}" >/dev/null
ms=$(($(now_ms) - t0 + 1000))
echo "# $WEDGED wedged workers were unhealthy after $ms ms"
# Three failed rounds: each one timeout plus the interval, concurrent. One after another they
# would take 3 x 6 timeouts (36 s).
[ "$ms" -lt $((3 * (HEALTH_TIMEOUT_S + 1) * 1000 + 4000)) ] ||
	fail "$WEDGED wedged workers took $ms ms to be unhealthy: the checks wait for each other"
ok "wedged workers turn unhealthy within three rounds of one timeout each"
assert_eq "$(state_of "$healthy_id")" ready "the healthy worker stays ready meanwhile"
assert_contains "$(curl -sf "$HIVE_URL/v1/workers" | jq -r --arg id "${wedged_ids[0]}" \
	'.workers[] | select(.worker_id == $id) | .reason')" "did not answer within 2000 ms" \
	"the reason names the timeout"

# --- they recover together, then end together ---
kill -CONT "${wedged_pids[@]}"
wait_states 20 ready "${wedged_ids[@]}" >/dev/null
ok "SIGCONTed workers are healthy again"
kill -KILL "${wedged_pids[@]}"
wait_states 20 exited "${wedged_ids[@]}" >/dev/null
ok "workers killed together are all seen as exited"
sleep 0.5 # the last batch is written
read -r writes1 changes1 <<<"$(counters)"
writes=$((writes1 - writes0)) changes=$((changes1 - changes0))
echo "# $changes state changes, $writes registry writes"
[ "$changes" -ge $((3 * WEDGED + 1)) ] || fail "only $changes changes counted"
[ $((writes * 3)) -le "$changes" ] ||
	fail "$writes registry writes for $changes changes: they are not batched"
ok "$changes state changes took $writes registry writes"

curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive still answers /health"
out=$(run_job "{\"operation\":\"worker_process_delete\",\"pid\":${pids[WEDGED]}}")
assert_contains "$out" "[DONE]" "the healthy worker is stopped"
pass
