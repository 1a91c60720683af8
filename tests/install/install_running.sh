#!/bin/bash
# Installs against running workers (issue 12):
#  - a reinstall of a worker that runs is refused at once, before anything is fetched or built;
#  - an install holds only the long "install in progress" lock while it builds: a second install
#    of the id is refused naming the job, a spawn of the id succeeds with the version installed
#    now, and the install's commit then refuses (the worker is in use) and leaves it alone.
# build() of the gated worker waits until the test creates $T/gate/open, so the test decides
# when the build ends.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/spawn/spawn_lib.sh"
RBEE="$BIN/rbee"
ID=rbee-test-gated
install_stream() { run_job "{\"operation\":\"worker_install\",\"worker_id\":\"$1\"}"; }

make_spawn_catalog "$T/catalog"
add_variant "$T/catalog" "$ID" cpu 30
mkdir -p "$T/gate"
chmod 755 "$T/gate"
gate="$T/gate/open"
sed -i "s|^build() {|build() {\n\techo \"GATED: build() waits for $gate\"\n\twhile [ ! -e \"$gate\" ]; do sleep 0.1; done|" \
	"$T/catalog/pkgbuilds/$ID.PKGBUILD"
grep -q 'GATED' "$T/catalog/pkgbuilds/$ID.PKGBUILD" || fail "the gate is not in the PKGBUILD"
start_fake_hub
start_hive --catalog "$T/catalog"
touch "$gate"
install "$ID"
download "$MODEL"
meta_before=$(cat "$RBEE_HOME/workers/$ID/metadata.json")
rm -f "$gate"

# --- 1. a reinstall while a worker of it runs: refused before fetching ---
spawn_ok "$ID" 0
W1_PID=$W_PID W1_PORT=$W_PORT
t0=$(date +%s%N)
out=$(STREAM_MAX_S=20 install_stream "$ID")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_contains "$out" "[ERROR] worker '$ID' is in use by a running worker; stop it before reinstalling" \
	"a reinstall of a running worker is refused with the in-use message"
assert_not_contains "$out" '"stage":"fetching"' "nothing is fetched"
assert_not_contains "$out" '"stage":"building"' "nothing is built"
assert_not_contains "$out" "GATED" "build() never started"
[ "$ms" -lt 3000 ] || fail "the refusal took $ms ms"
ok "the refusal is immediate ($ms ms)"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health"
kill -0 "$W1_PID" || fail "the running worker was stopped"
assert_eq "$(curl -sf "http://127.0.0.1:$W1_PORT/health")" ok "the running worker still answers"
assert_eq "$(cat "$RBEE_HOME/workers/$ID/metadata.json")" "$meta_before" "the install is unchanged"
out=$("$RBEE" worker process delete "$W1_PID")
assert_contains "$out" "stopped" "the worker is stopped"

# --- 2. an install in progress ---
job=$(submit "{\"operation\":\"worker_install\",\"worker_id\":\"$ID\"}")
stream "$job" >"$T/install.txt" &
track $!
WAIT_S=60 wait_for grep -q 'GATED' "$T/install.txt" || fail "build() did not start"
ok "the install ($job) is building"

out=$(install_stream "$ID")
assert_contains "$out" "[ERROR] worker '$ID' is already being installed by job $job: wait for it to finish, or cancel it (DELETE /v1/jobs/$job)" \
	"a second install of the id is refused naming the job"
out=$(run_job "{\"operation\":\"worker_remove\",\"worker_id\":\"$ID\"}")
assert_contains "$out" "[ERROR] worker '$ID' is already being installed by job $job" \
	"so is a removal"

t0=$(date +%s%N)
spawn_ok "$ID" 0
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "a spawn of the id during the install succeeds ($ms ms)"
W2_PID=$W_PID W2_PORT=$W_PORT
assert_eq "$(curl -sf "http://127.0.0.1:$W2_PORT/health")" ok "the spawned worker answers"
bin=$(jq -r .binary_path <<<"$meta_before")
assert_eq "$(readlink -f "/proc/$W2_PID/exe")" "$(readlink -f "$bin")" "it runs the installed binary"
assert_eq "$(sha256sum <"/proc/$W2_PID/exe" | cut -d' ' -f1)" "$(jq -r .sha256 <<<"$meta_before")" \
	"of the version installed before the install started"
grep -q 'data: \[' "$T/install.txt" && fail "the install ended early: $(tail -3 "$T/install.txt")"
ok "the install is still running"

touch "$gate"
WAIT_S=60 wait_for grep -q '^data: \[ERROR\]' "$T/install.txt" || fail "the install did not fail: $(tail -5 "$T/install.txt")"
out=$(cat "$T/install.txt")
assert_contains "$out" '"stage":"building"' "the install built"
assert_contains "$out" "[ERROR] worker '$ID' is in use by a running worker; stop it before reinstalling" \
	"its commit refuses: a worker of the id runs"
assert_eq "$(cat "$RBEE_HOME/workers/$ID/metadata.json")" "$meta_before" "the install is unchanged"
kill -0 "$W2_PID" || fail "the worker spawned during the install was stopped"
assert_eq "$(curl -sf "http://127.0.0.1:$W2_PORT/health")" ok "and it still answers"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health"
left=$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 | wc -l)
assert_eq "$left" 0 "staging is empty"
left=$(find /var/tmp /tmp -maxdepth 1 -name "rbee-build-$ID-*" 2>/dev/null | wc -l)
assert_eq "$left" 0 "no build directory is left"

# --- 3. once the worker stops, the reinstall goes through ---
out=$("$RBEE" worker process delete "$W2_PID")
assert_contains "$out" "stopped" "the worker is stopped"
out=$(install_stream "$ID")
assert_contains "$out" "data: [DONE]" "the reinstall succeeds"
assert_ne "$(jq -r .installed_at "$RBEE_HOME/workers/$ID/metadata.json")$(jq -r .build_ms "$RBEE_HOME/workers/$ID/metadata.json")" \
	"$(jq -r .installed_at <<<"$meta_before")$(jq -r .build_ms <<<"$meta_before")" "and replaces the install"
pass
