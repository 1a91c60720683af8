#!/usr/bin/env bash
# The preflight remembers the installed binary's sha256 by the file's identity (device, inode,
# size, mtime, ctime) instead of hashing it at every spawn; a binary changed in place, even
# with its size and mtime put back, is still refused.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"

make_spawn_catalog "$T/catalog"
start_fake_hub
export RBEE_LOG=debug
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"
bin=$(jq -r .binary_path "$RBEE_HOME/workers/rbee-test-worker-local/metadata.json")
digests() { grep -c "sha256 of '$bin': $1" "$HIVE_LOG" || true; }
stop() { run_job "{\"operation\":\"worker_process_delete\",\"pid\":$1}" | grep -q '\[DONE\]' || fail "stop of $1"; }
# A file changed within 2 s of its hashing is not remembered (coarse timestamps): let the
# install's ctime age.
sleep 3

spawn_ok cpu
stop "$W_PID"
assert_eq "$(digests computed)" 1 "the first spawn hashes the binary"
spawn_ok cpu
stop "$W_PID"
spawn_ok cpu
stop "$W_PID"
assert_eq "$(digests computed)" 1 "later spawns do not hash it again"
assert_eq "$(digests remembered)" 2 "they reuse the digest"

# Change one byte in place: same size, mtime put back (ctime moves; nobody can set it).
size=$(stat -c %s "$bin")
cp -p "$bin" "$T/ref"
printf '\xff' | dd of="$bin" bs=1 seek=$((size - 1)) conv=notrunc status=none
touch -r "$T/ref" "$bin"
assert_eq "$(stat -c '%s %Y' "$bin")" "$(stat -c '%s %Y' "$T/ref")" "the changed binary keeps size and mtime"
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"cpu\"")
assert_contains "$out" "[ERROR] installed worker 'rbee-test-worker-local' was modified" \
	"a binary changed in place is refused"
assert_eq "$(digests computed)" 2 "it was hashed again"
assert_eq "$(worker_count)" 0 "nothing was started"

# Put back: accepted again.
cp -p "$T/ref" "$bin"
spawn_ok cpu
stop "$W_PID"
ok "the original binary spawns again"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive does not answer /health"
ok "the hive still answers /health"
pass
