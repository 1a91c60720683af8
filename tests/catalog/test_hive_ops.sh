# The hive's catalog operations (worker_catalog_list, worker_catalog_get) against every kind of
# source: an rbee-catalog server, a directory, a file:// URL. All give identical data; a catalog
# that is down, missing or answers garbage fails the job with a clear [ERROR].
. "$RBEE_SRC/tests/lib.sh"

FIX="$RBEE_SRC/tests/catalog/fixtures/catalog"
start_catalog "$FIX"

# list_data [hive args...]: start a hive with those args, run worker_catalog_list, keep the stream.
run_with() {
	local op=$1
	shift
	start_hive "$@"
	STREAM=$(run_job "$op")
	stop_hive
}

run_with '{"operation":"worker_catalog_list"}' --catalog "$CATALOG_URL"
from_server=$(job_data "$STREAM" | jq -S .)
assert_contains "$STREAM" "data: [DONE]" "list from the server succeeds"
assert_contains "$STREAM" "data: 3 workers in catalog '$CATALOG_URL'" "narration counts the workers"
assert_eq "$(jq -r '[.workers[].id] | join(",")' <<<"$from_server")" \
	"test-worker-a,test-worker-b,test-worker-remote" "the server's entries"

run_with '{"operation":"worker_catalog_list"}' --catalog "$FIX"
from_dir=$(job_data "$STREAM" | jq -S .)
assert_contains "$STREAM" "data: 3 workers in catalog directory '$FIX'" "narration names the directory"
assert_contains "$STREAM" "data: warning: skipping '" "skipped entries are narrated"
assert_eq "$from_dir" "$from_server" "directory mode gives the server's data"

run_with '{"operation":"worker_catalog_list"}' --catalog "file://$FIX"
assert_eq "$(job_data "$STREAM" | jq -S .)" "$from_server" "file:// mode gives the server's data"

export RBEE_CATALOG_URL="$CATALOG_URL"
run_with '{"operation":"worker_catalog_list"}'
assert_eq "$(job_data "$STREAM" | jq -S .)" "$from_server" "RBEE_CATALOG_URL selects the source"
unset RBEE_CATALOG_URL

# --- worker_catalog_get, both modes
get='{"operation":"worker_catalog_get","worker_id":"test-worker-b"}'
run_with "$get" --catalog "$CATALOG_URL"
entry_server=$(job_data "$STREAM" | jq -S .)
assert_eq "$(jq -r .name <<<"$entry_server")" "Test worker B" "get from the server"
run_with "$get" --catalog "$FIX"
assert_eq "$(job_data "$STREAM" | jq -S .)" "$entry_server" "get from the directory is the same entry"
assert_eq "$entry_server" "$(jq -S '.workers[] | select(.id == "test-worker-b")' <<<"$from_server")" \
	"get returns the entry the list shows"

for src in "$CATALOG_URL" "$FIX"; do
	run_with '{"operation":"worker_catalog_get","worker_id":"nope"}' --catalog "$src"
	assert_contains "$STREAM" "data: [ERROR] worker 'nope' not found in catalog '$src'" \
		"unknown id from $src"
done
run_with '{"operation":"worker_catalog_get","worker_id":"missing-field"}' --catalog "$FIX"
assert_contains "$STREAM" "missing-field.json' is malformed: field 'platforms' is missing (fix or remove the file)" \
	"a malformed entry is named with its fault"

start_hive --catalog "$FIX"
out=$(http POST /v1/jobs '{"operation":"worker_catalog_get"}')
assert_eq "${out%% *}" "400" "get without worker_id is refused at submit"
out=$(http POST /v1/jobs '{"operation":"worker_catalog_get","worker_id":"../x"}')
assert_eq "${out%% *}" "400" "a path trick in worker_id is refused at submit"
stop_hive

# --- failures
run_with '{"operation":"worker_catalog_list"}' --catalog "$T/none"
assert_contains "$STREAM" "data: [ERROR] cannot read the worker catalog directory '$T/none'" \
	"a missing directory fails clearly"

# A server that answers, but not with a catalog.
mkdir -p "$T/garbage"
echo "this is not JSON" >"$T/garbage/workers"
python3 - "$T/garbage" "$T/garbage.port" >"$T/garbage.log" 2>&1 <<'EOF' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
open(sys.argv[2], "w").write(str(srv.server_address[1]))
srv.serve_forever()
EOF
track $!
GARBAGE_URL="http://127.0.0.1:$(wait_port_file "$T/garbage.port")"
run_with '{"operation":"worker_catalog_list"}' --catalog "$GARBAGE_URL"
assert_contains "$STREAM" "data: [ERROR] the worker catalog at '$GARBAGE_URL' answered garbage: malformed JSON" \
	"a non-JSON answer is garbage"
echo '{"items":[]}' >"$T/garbage/workers"
run_with '{"operation":"worker_catalog_list"}' --catalog "$GARBAGE_URL"
assert_contains "$STREAM" "answered garbage: expected {\"workers\":[...]} from GET /workers" \
	"a JSON answer of the wrong shape is garbage"
run_with '{"operation":"worker_catalog_get","worker_id":"x"}' --catalog "$GARBAGE_URL/"
assert_contains "$STREAM" "data: [ERROR] worker 'x' not found in catalog '$GARBAGE_URL'" \
	"a 404 for an entry is not found"

# The catalog server goes away.
kill "$CATALOG_PID"
wait "$CATALOG_PID" 2>/dev/null || true
run_with '{"operation":"worker_catalog_list"}' --catalog "$CATALOG_URL"
assert_contains "$STREAM" "data: [ERROR] cannot reach the worker catalog at '$CATALOG_URL': " \
	"catalog server down: the job fails clearly"
assert_contains "$STREAM" "check --catalog / RBEE_CATALOG_URL" "and says what to check"
pass
