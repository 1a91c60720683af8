#!/bin/bash
# Cancel mid-build: the build process is gone, nothing is installed. A second install of the
# same id while one runs is refused clearly.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"
start_hive --catalog "$T/catalog"

job=$(submit '{"operation":"worker_install","worker_id":"rbee-test-slowbuild"}')
stream "$job" >"$T/stream.txt" &
track $!
WAIT_S=30 wait_for grep -q 'BUILD_PID=' "$T/stream.txt" || fail "build() did not start"
pid=$(sed -n 's/^data: BUILD_PID=//p' "$T/stream.txt")
kill -0 "$pid" 2>/dev/null || fail "build process $pid is not running"
ok "build() runs as process $pid"

out=$(install_stream rbee-test-slowbuild)
assert_contains "$out" "[ERROR] worker 'rbee-test-slowbuild' is already being installed by job $job" \
	"a concurrent install of the same id is refused, naming the job"

st=$(http DELETE "/v1/jobs/$job")
assert_contains "$st" "cancelled" "cancel accepted"
WAIT_S=15 wait_for grep -q '\[CANCELLED\]' "$T/stream.txt" || fail "no [CANCELLED] in the stream"
ok "stream ends with [CANCELLED]"
WAIT_S=10 wait_for bash -c "! kill -0 $pid 2>/dev/null" || fail "build process $pid survived the cancel"
ok "build process is gone"
pgrep -f 'sleep 3599' >/dev/null && fail "the build's sleep survived the cancel"
ok "the build's children are gone"
assert_nothing_installed rbee-test-slowbuild

# the lock is released: the same id can be installed again (and cancelled again)
out=$(install_stream rbee-test-worker)
assert_contains "$out" "data: [DONE]" "another install works after the cancel"
pass
