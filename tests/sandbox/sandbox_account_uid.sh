#!/bin/bash
# A build uid range that an account uses (here 'nobody', uid 65534): the hive still starts fast
# (it does not look up 256 uids through NSS on its start path), never kills the account's
# processes in its start-up clean-up, and refuses every build with the reason.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/sandbox/sandbox_lib.sh"
sandbox_catalog
acct=$(getent passwd 65534 | cut -d: -f1)
[ -n "$acct" ] || { echo "no account with uid 65534 here; skipping"; exit 77; }
# A process of that account, as if it were a build's leftover.
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 300 &
ACCT_PID=$!
track $ACCT_PID # stopped with the hive by lib.sh's clean-up (a trap of our own would replace it)
wait_for test "$(ps -o uid= -p "$ACCT_PID" | tr -d ' ')" = 65534 || fail "the account's process did not start"

export RBEE_BUILD_UIDS=65534-65534
start_hive --catalog "$cat"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive starts with a range an account uses"
sleep 0.5
kill -0 "$ACCT_PID" 2>/dev/null || fail "the start-up clean-up killed the process of account '$acct'"
ok "the start-up clean-up left the account's process alone"
assert_contains "$(cat "$HIVE_LOG")" "includes uid 65534, which is user '$acct'" "and the log says why"
assert_contains "$(cat "$HIVE_LOG")" "its processes are left alone" "and that it spared them"

out=$(install_stream rbee-test-worker)
assert_contains "$out" "[ERROR] build sandbox: RBEE_BUILD_UIDS includes uid 65534, which is user '$acct': choose a range no account uses" \
	"a build is refused with the reason"
assert_nothing_installed rbee-test-worker
kill -0 "$ACCT_PID" 2>/dev/null || fail "the refused build killed the account's process"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy"
pass
