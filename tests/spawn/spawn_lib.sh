# spawn_lib.sh - helpers for the worker spawn tests; source after tests/lib.sh.
#
# Workers and models reach the hive the way an operator's do: the test worker is installed
# with worker_install from the test catalog (tests/worker_fixtures, directory mode), the model
# with model_download from the fake hub (tests/models/fake_hub.py).
#
#   make_spawn_catalog DIR          the test catalog written into DIR
#   add_variant DIR ID TYPE TIMEOUT [ARGS...]
#                                   a copy of rbee-test-worker-local named ID, of worker_type
#                                   TYPE, ready_timeout_s TIMEOUT, launched with ARGS appended
#                                   (the test worker's switches: --crash-on-start ...)
#   start_fake_hub                  the fake hub with org/tiny-GGUF; exports HF_ENDPOINT
#   install ID / download MODEL     run the operation, fail the test unless it succeeds
#   spawn JSON_FIELDS               run worker_spawn ('"model":..,"worker":..'), print the stream
#   spawn_ok WORKER [DEVICE]        spawn $MODEL on WORKER; sets W_JSON W_ID W_PID W_PORT
#   gone PID                        true once PID does not exist at all (not even a zombie)
#   worker_count                    entries in GET /v1/workers
FIXTURES="$RBEE_SRC/tests/worker_fixtures"
MODEL="org/tiny-GGUF"
# A block of 100 worker ports of its own (below the kernel's ephemeral range), so tests running
# side by side rarely meet; when they do, the hive's probing and retry handle it.
_port_lo=$((20000 + (RANDOM % 120) * 100))
export RBEE_WORKER_PORTS="$_port_lo-$((_port_lo + 99))"

make_spawn_catalog() {
	bash "$FIXTURES/make_catalog.sh" "$1" "http://127.0.0.1:9" 9 >/dev/null
}

add_variant() {
	local dir=$1 id=$2 type=$3 timeout=$4 extra='[]'
	shift 4
	[ $# -gt 0 ] && extra=$(printf '%s\n' "$@" | jq -R . | jq -s .)
	jq --arg id "$id" --arg type "$type" --argjson t "$timeout" --argjson extra "$extra" \
		'.id = $id | .worker_type = $type | .name = "rbee test worker (" + $id + ")"
		 | .launch.args += $extra | .launch.ready_timeout_s = $t' \
		"$dir/workers/rbee-test-worker-local.json" >"$dir/workers/$id.json"
	sed "s/^pkgname=.*/pkgname=$id/" "$dir/pkgbuilds/rbee-test-worker-local.PKGBUILD" \
		>"$dir/pkgbuilds/$id.PKGBUILD"
}

start_fake_hub() {
	mkdir -p "$T/hub/org/tiny-GGUF"
	python3 "$RBEE_SRC/tests/models/make_gguf.py" "$T/hub/org/tiny-GGUF/tiny.Q4_K_M.gguf" --ftype 15
	python3 "$RBEE_SRC/tests/models/fake_hub.py" --root "$T/hub" --port-file "$T/hub.port" \
		>>"$T/hub.log" 2>&1 &
	track $!
	export HF_ENDPOINT="http://127.0.0.1:$(wait_port_file "$T/hub.port")"
}

install() {
	local out
	out=$(run_job "{\"operation\":\"worker_install\",\"worker_id\":\"$1\"}")
	[[ "$out" == *"data: [DONE]"* ]] || fail "installing '$1' failed: $(tail -n 5 <<<"$out")"
}

download() {
	local out
	out=$(run_job "{\"operation\":\"model_download\",\"model\":\"$1\"}")
	[[ "$out" == *"data: [DONE]"* ]] || fail "downloading '$1' failed: $(tail -n 5 <<<"$out")"
}

spawn() {
	run_job "{\"operation\":\"worker_spawn\",$1}"
}

spawn_ok() {
	local out
	out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"$1\",\"device\":${2:-0}")
	[[ "$out" == *"data: [DONE]"* ]] || fail "spawning '$1' failed: $(grep -v '^$' <<<"$out" | tail -n 8)"
	W_JSON=$(job_data "$out")
	W_ID=$(jq -r .worker_id <<<"$W_JSON")
	W_PID=$(jq -r .pid <<<"$W_JSON")
	W_PORT=$(jq -r .port <<<"$W_JSON")
	SPAWN_STREAM=$out
}

gone() {
	[ ! -e "/proc/$1" ]
}

worker_count() {
	curl -sf "$HIVE_URL/v1/workers" | jq '.workers | length'
}

# Stop every worker process the test may have left (by the pids the registry knows), so a
# failing test does not leak processes into the next one.
_spawn_cleanup_workers() {
	local f="$RBEE_HOME/state/workers.json" p
	[ -f "$f" ] || return 0
	for p in $(jq -r '.workers[].pid' "$f" 2>/dev/null); do
		[ "$p" -gt 0 ] 2>/dev/null || continue
		grep -qa rbee-test-worker "/proc/$p/cmdline" 2>/dev/null || continue
		kill -KILL -- "-$p" 2>/dev/null || true
	done
}
# (set -e holds inside traps too: _cleanup must be entered with the test's status in $?.)
_spawn_exit() {
	local rc=$1
	_spawn_cleanup_workers
	if [ "$rc" -eq 0 ]; then _cleanup; else (exit "$rc") || _cleanup; fi
}
trap '_spawn_exit $?' EXIT
