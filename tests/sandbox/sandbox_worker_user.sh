#!/bin/bash
# A worker is a program a catalog built: with the hive as root it never runs as root (issue 11,
# item 1). It runs as RBEE_WORKER_UIDS' first + (port - first port), with no other groups than
# video/render and PR_SET_NO_NEW_PRIVS; a worker that could not reach its model as that uid is
# refused before it starts, saying why; RBEE_WORKER_UIDS=none is the operator's explicit way
# back to root, and says so.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
. "$RBEE_SRC/tests/sandbox/sandbox_lib.sh"
need_root

make_spawn_catalog "$T/catalog"
start_fake_hub
export RBEE_WORKER_UIDS=64400-64599
start_hive --catalog "$T/catalog"
install rbee-test-worker-local
download "$MODEL"

spawn_ok cpu 0
lo=${RBEE_WORKER_PORTS%-*}
want=$((64400 + W_PORT - lo))
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$W_PID/status")
assert_eq "$uids" "$want $want $want $want" "the worker runs as uid $want (real, effective, saved, fs), from its port"
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$W_PID/status")
assert_eq "$gids" "$want $want $want $want" "and as gid $want"
assert_eq "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$W_PID/status")" 1 "with PR_SET_NO_NEW_PRIVS"
groups=$(awk '/^Groups:/ {$1=""; print}' "/proc/$W_PID/status" | xargs -n1 | sort -n | xargs)
allowed=$({ getent group video || true; getent group render || true; } | cut -d: -f3 | sort -n | xargs)
assert_eq "$groups" "$allowed" "its only supplementary groups are video and render"
assert_contains "$SPAWN_STREAM" "runs as uid $want (RBEE_WORKER_UIDS), never as root" "the spawn says whom it runs as"
assert_eq "$(curl -sf "http://127.0.0.1:$W_PORT/health")" ok "the worker serves as that uid"
out=$("$BIN/rbee" worker process delete "$W_PID")
assert_contains "$out" "stopped" "the hive (root) stops it"
WAIT_S=10 wait_for gone "$W_PID" || fail "the worker outlived its stop"
ok "and it is gone"

# A model the worker's uid cannot read: refused before anything starts, with the reason.
model_file=$(find "$RBEE_HOME/models" -name '*.gguf' | head -1)
[ -n "$model_file" ] || fail "no model file in the store"
chmod 600 "$model_file"
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"cpu\",\"device\":0")
assert_contains "$out" "which cannot read the model '$model_file': '$model_file' has mode 0600" \
	"a model the worker's uid cannot read is refused, saying why"
assert_eq "$(worker_count)" 0 "nothing is left registered"
chmod 644 "$model_file"

# An RBEE_HOME others cannot search: refused, pointing at the fix.
chmod 700 "$RBEE_HOME"
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"cpu\",\"device\":0")
assert_contains "$out" "directory '$RBEE_HOME' (mode 0700) cannot be searched by others" \
	"an RBEE_HOME the worker's uid cannot search is refused, saying which directory"
chmod 755 "$RBEE_HOME"
stop_hive

# The operator's explicit opt-out.
RBEE_WORKER_UIDS=none start_hive --catalog "$T/catalog"
spawn_ok cpu 0
assert_eq "$(awk '/^Uid:/ {print $2}' "/proc/$W_PID/status")" 0 "RBEE_WORKER_UIDS=none runs the worker as the hive's user"
assert_contains "$SPAWN_STREAM" "warning: the worker runs as root (RBEE_WORKER_UIDS=none)" "and the spawn warns about it"
"$BIN/rbee" worker process delete "$W_PID" >/dev/null
stop_hive

# A range smaller than the port range is refused with the numbers.
RBEE_WORKER_UIDS=64400-64409 start_hive --catalog "$T/catalog"
out=$(spawn "\"model\":\"$MODEL\",\"worker\":\"cpu\",\"device\":0")
assert_contains "$out" "RBEE_WORKER_UIDS holds 10 uids but RBEE_WORKER_PORTS 100 ports" "a too small uid range is refused"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive stopped answering"
ok "the hive still answers /health"
pass
