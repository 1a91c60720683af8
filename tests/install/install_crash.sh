#!/bin/bash
# A hive killed with SIGKILL mid-install: the next start finds the earlier install intact (or
# nothing), removes the staging leftovers, the build directory outside RBEE_HOME and the
# build's surviving processes - but a second hive started on the same home while the first one
# runs is refused and leaves the first one's work alone.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"
cat="$T/catalog"
id=rbee-test-worker
start_hive --catalog "$cat"
out=$(install_stream "$id")
assert_contains "$out" "data: [DONE]" "a first install of '$id'"
sha=$(jq -r .sha256 "$RBEE_HOME/workers/$id/metadata.json")

# Reinstall the same id from a PKGBUILD whose build() hangs.
sed -e "s/^pkgname=.*/pkgname=$id/" -e 's/sleep 3599/sleep 3597/' "$cat/pkgbuilds/rbee-test-slowbuild.PKGBUILD" \
	>"$cat/pkgbuilds/$id.PKGBUILD"
job=$(submit "{\"operation\":\"worker_install\",\"worker_id\":\"$id\"}")
stream "$job" >"$T/stream.txt" &
track $!
WAIT_S=30 wait_for grep -q 'BUILD_PID=' "$T/stream.txt" || fail "build() did not start"
[ -n "$(ls "$RBEE_HOME/staging")" ] || fail "the reinstall has no staging directory"
ok "the reinstall is building in staging"

# A second hive on the same home is refused before it touches anything, naming the holder.
first_pid=$HIVE_PID
rc=0
"$BIN/rbee-hive" --port 0 --catalog "$cat" >"$T/second.log" 2>&1 || rc=$?
assert_eq "$rc" 1 "a second hive on the same home exits with status 1"
assert_contains "$(cat "$T/second.log")" "another rbee-hive (pid $first_pid, port $HIVE_PORT) already uses RBEE_HOME '$RBEE_HOME'" \
	"and names the hive that holds the home"
[ -n "$(ls "$RBEE_HOME/staging")" ] || fail "the second hive removed the first one's staging"
ok "and leaves its staging alone"
pgrep -f 'sleep 359[7]' >/dev/null || fail "the second hive killed the first one's build"
ok "and its build"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the first hive stopped answering"
ok "the first hive still answers /health"

outside=$(find /var/tmp /tmp -maxdepth 1 -name "rbee-build-$id-*" 2>/dev/null | head -1)
kill -KILL "$HIVE_PID"
wait "$HIVE_PID" 2>/dev/null || true
pgrep -f 'sleep 359[7]' >/dev/null || fail "the build's sleep did not outlive the hive (nothing to test)"
ok "killed the hive mid-build; its build's children live on"

: >"$HIVE_LOG"
start_hive --catalog "$cat"
assert_contains "$(cat "$HIVE_LOG")" "removed 1 leftover" "the next start removes the leftover"
left=$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 | wc -l)
assert_eq "$left" 0 "staging is empty"
if [ -n "$outside" ]; then
	[ ! -e "$outside" ] || fail "the build directory '$outside' outside RBEE_HOME is left"
	ok "the build directory outside RBEE_HOME is gone"
fi
WAIT_S=5 wait_for bash -c "! pgrep -f 'sleep 359[7]'" || fail "the interrupted build's sleep still runs"
ok "the interrupted build's processes are gone"
assert_eq "$(jq -r .sha256 "$RBEE_HOME/workers/$id/metadata.json")" "$sha" \
	"the earlier install is intact"
out=$(run_job "{\"operation\":\"worker_verify\",\"worker_id\":\"$id\"}")
assert_contains "$out" "data: [DONE]" "and verifies"
pass
