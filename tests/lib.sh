# tests/lib.sh - shared helpers for integration tests. Source it first thing:
#
#   . "$RBEE_SRC/tests/lib.sh"
#   start_hive                      # temp RBEE_HOME, free port; sets HIVE_URL HIVE_PID
#   out=$(curl -sf "$HIVE_URL/health"); assert_eq "$out" ok "health answers ok"
#   pass                            # prints the summary; trap cleans up everything
#
# Every test runs in its own temporary directory ($T) that is removed at exit, together with
# every process the test started through these helpers.
set -euo pipefail

: "${RBEE_BUILD:?run through ctest (RBEE_BUILD unset)}"
: "${RBEE_SRC:?run through ctest (RBEE_SRC unset)}"
: "${RBEE_TEST_BIN:=$RBEE_BUILD/tests/bin}"
BIN="$RBEE_BUILD/bin"
T=$(mktemp -d "${TMPDIR:-/tmp}/rbee-test.XXXXXX")
# Searchable by others: workers run as uids of their own when the hive is root, and reach
# their binary and model through RBEE_HOME below here (nothing here is listable by them).
chmod 711 "$T"
export RBEE_HOME="$T/home"
mkdir -p "$RBEE_HOME"
export NO_COLOR=1
unset RBEE_HIVE_URL RBEE_API_TOKEN RBEE_CATALOG_URL RBEE_BACKEND_PATH HF_TOKEN || true
_pids=()
_checks=0
_test_name=$(basename "$0" .sh)

_cleanup() {
	local rc=$?
	for p in "${_pids[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	for p in "${_pids[@]:-}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null || true
	done
	if [ $rc -ne 0 ]; then
		echo "--- $_test_name failed (exit $rc); logs:" >&2
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "--- $f (last 40 lines)" >&2
			tail -n 40 "$f" >&2
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { _checks=$((_checks + 1)); echo "ok $_checks - $*"; }
assert_eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; ok "$3"; }
assert_ne() { [ "$1" != "$2" ] || fail "$3: did not expect '$2'"; ok "$3"; }
assert_contains() { [[ "$1" == *"$2"* ]] || fail "$3: '$2' not in: $1"; ok "$3"; }
assert_not_contains() { [[ "$1" != *"$2"* ]] || fail "$3: '$2' unexpectedly in: $1"; ok "$3"; }
pass() { echo "$_test_name: $_checks passed, 0 failed"; }

# Remember a background process for cleanup.
track() { _pids+=("$1"); }

# wait_for CMD... : retry a command for up to WAIT_S seconds (default 10).
wait_for() {
	local deadline=$((SECONDS + ${WAIT_S:-10}))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}

# wait_port_file FILE: wait until a program wrote its bound port into FILE, print it.
wait_port_file() {
	local f=$1
	WAIT_S=${WAIT_S:-15} wait_for test -s "$f" || fail "no port written to $f"
	cat "$f"
}

# start_hive [extra rbee-hive args...]: start the hive on a free port. Sets HIVE_URL, HIVE_PID,
# HIVE_PORT, HIVE_LOG. Environment for the hive can be set by the caller beforehand; a command
# in the array HIVE_LAUNCHER, when set, runs the hive (e.g. to start it under a ulimit).
# HIVE_BIN, when set, is the hive program: "$BIN/rbee-hive-test" for tests that need the
# test-only operations (test_sleep), which the production rbee-hive does not have.
start_hive() {
	HIVE_LOG="$T/hive.log"
	rm -f "$T/hive.port"
	${HIVE_LAUNCHER[@]+"${HIVE_LAUNCHER[@]}"} "${HIVE_BIN:-$BIN/rbee-hive}" --port 0 --port-file "$T/hive.port" \
		"$@" >>"$HIVE_LOG" 2>&1 &
	HIVE_PID=$!
	track $HIVE_PID
	HIVE_PORT=$(wait_port_file "$T/hive.port")
	HIVE_URL="http://127.0.0.1:$HIVE_PORT"
	export RBEE_HIVE_URL="$HIVE_URL"
	wait_for curl -sf "$HIVE_URL/health" || fail "hive did not become healthy"
}

# adopt_worker ID: a live worker for log follows, which the hive re-adopts from its registry
# when it starts (call before start_hive): a `sleep` leading its own process group, as a spawned
# worker does (W_PID), logging to $RBEE_HOME/logs/ID.log (made empty).
adopt_worker() {
	local id=$1
	setsid sleep 300 &
	W_PID=$!
	track $W_PID
	mkdir -p "$RBEE_HOME/state" "$RBEE_HOME/logs"
	cat >"$RBEE_HOME/state/workers.json" <<JSON
{"version":1,"workers":[{"worker_id":"$id","installed_worker":"cpu","backend":"cpu","device":0,
 "device_id":"CPU-0","model":"m","pid":$W_PID,"start_time":"0","port":0,"url":"",
 "health_path":"/health","log_path":"$RBEE_HOME/logs/$id.log","state":"ready",
 "started_at":0,"reaped":false,"wait_status":0,"reason":""}]}
JSON
	: >"$RBEE_HOME/logs/$id.log"
}

# assert_adopted: the started hive lists the adopt_worker worker as ready.
assert_adopted() {
	assert_eq "$(curl -s "$HIVE_URL/v1/workers" | jq -r '.workers[0].state')" ready "the worker is adopted"
}

# stop_hive [signal]: stop it and wait (default TERM).
stop_hive() {
	kill -"${1:-TERM}" "$HIVE_PID" 2>/dev/null || true
	wait "$HIVE_PID" 2>/dev/null || true
}

# start_catalog DIR: run rbee-catalog on a free port serving DIR. Sets CATALOG_URL.
start_catalog() {
	rm -f "$T/catalog.port"
	"$BIN/rbee-catalog" --dir "$1" --port 0 --port-file "$T/catalog.port" >>"$T/catalog.log" 2>&1 &
	CATALOG_PID=$!
	track $CATALOG_PID
	CATALOG_URL="http://127.0.0.1:$(wait_port_file "$T/catalog.port")"
	wait_for curl -sf "$CATALOG_URL/health" || fail "catalog did not become healthy"
}

# The bearer token the helpers below send, when the test started the hive with one.
HIVE_TOKEN=${HIVE_TOKEN:-}

# http METHOD PATH [BODY]: request against the hive; prints "STATUS BODY".
http() {
	local method=$1 path=$2 body=${3:-}
	local args=(-s -o "$T/http.body" -w '%{http_code}' -X "$method")
	[ -z "$HIVE_TOKEN" ] || args+=(-H "Authorization: Bearer $HIVE_TOKEN")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	local code
	code=$(curl "${args[@]}" "$HIVE_URL$path") || true
	echo "$code $(cat "$T/http.body" 2>/dev/null)"
}

# submit JSON: POST /v1/jobs, print the job id.
submit() {
	curl -sf -X POST -H 'Content-Type: application/json' ${HIVE_TOKEN:+-H "Authorization: Bearer $HIVE_TOKEN"} \
		--data-binary "$1" "$HIVE_URL/v1/jobs" | jq -r .job_id
}

# stream JOB_ID: print the job's whole SSE stream (returns when the hive closes it).
stream() {
	curl -sN --max-time "${STREAM_MAX_S:-60}" ${HIVE_TOKEN:+-H "Authorization: Bearer $HIVE_TOKEN"} \
		"$HIVE_URL/v1/jobs/$1/stream"
}

# run_job JSON: submit and print the stream.
run_job() {
	local id
	id=$(submit "$1") || fail "submit failed: $1"
	stream "$id"
}

# job_data STREAM_TEXT: the JSON of the last `event: data` in a captured stream.
job_data() {
	awk '/^event: data$/{getline; sub(/^data: /,""); last=$0} END{print last}' <<<"$1"
}

# use_fake_cuda GPUS_CONF: the cuda backend sees the fake NVIDIA driver (tests/fake_cuda) with
# the GPUs of GPUS_CONF, and a worker build finds a fake CUDA toolkit: an `nvcc` under
# $T/cuda/bin (CUDA_HOME) that knows release 12.4 and the targets compute_70 to compute_90,
# which is all the cuda backend's build_env asks of it.
use_fake_cuda() {
	export LD_LIBRARY_PATH="$RBEE_BUILD/tests/fake_cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export RBEE_FAKE_GPUS="$1"
	mkdir -p "$T/cuda/bin"
	cat >"$T/cuda/bin/nvcc" <<'NVCC'
#!/bin/sh
case "$1" in
--version) echo 'Cuda compilation tools, release 12.4, V12.4.131' ;;
--list-gpu-arch) for a in 70 75 80 86 89 90; do echo "compute_$a"; done ;;
*) exit 2 ;;
esac
NVCC
	chmod 755 "$T/cuda/bin/nvcc"
	export CUDA_HOME="$T/cuda"
}
