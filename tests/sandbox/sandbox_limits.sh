#!/bin/bash
# Resource and time limits of the build sandbox, and time limits and cancel that hold whatever
# a child does with its pipes (issue 11, items 1 and 4): a CPU-bound build(), one writing a file
# over RLIMIT_FSIZE, one that closes its output and sleeps past RBEE_BUILD_TIMEOUT_S, a worker
# whose --version detaches from its pipes (verify's 5 s limit holds), and a cancel of a build
# that closed its pipes. Each ends with a clear error, the hive answers, nothing is left.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/sandbox/sandbox_lib.sh"
sandbox_catalog
export RBEE_BUILD_UIDS=64310-64319 RBEE_BUILD_CPU_S=1 RBEE_BUILD_FSIZE_MB=1 RBEE_BUILD_TIMEOUT_S=4
start_hive --catalog "$cat"

entry rbee-sb-cpu true
pkgbuild rbee-sb-cpu "" "" 'build() { while :; do :; done; }
package() { :; }'
out=$(install_stream rbee-sb-cpu)
assert_contains "$out" "[ERROR] build() failed (exceeded the CPU-time limit (RLIMIT_CPU 1 s, RBEE_BUILD_CPU_S)" \
	"a CPU-bound build() stops at RLIMIT_CPU, and says so"
assert_nothing_installed rbee-sb-cpu

entry rbee-sb-fsize true
pkgbuild rbee-sb-fsize "" "" 'build() { head -c 3000000 /dev/zero >big; }
package() { :; }'
out=$(install_stream rbee-sb-fsize)
assert_contains "$out" "[ERROR] build() failed (exceeded the file-size limit (RLIMIT_FSIZE 1 MiB, RBEE_BUILD_FSIZE_MB)" \
	"a file over RLIMIT_FSIZE stops the build, and says so"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive died (SIGXFSZ?)"
ok "the hive is not hurt by its child's SIGXFSZ"

entry rbee-sb-quiet true
pkgbuild rbee-sb-quiet "" "" 'build() { exec >/dev/null 2>&1; sleep 3031; }
package() { :; }'
t0=$SECONDS
out=$(install_stream rbee-sb-quiet)
assert_contains "$out" "[ERROR] build() did not finish within 4 s (RBEE_BUILD_TIMEOUT_S) and was stopped" \
	"a build that closed its output is still held to its time limit"
[ $((SECONDS - t0)) -lt 20 ] || fail "it took $((SECONDS - t0)) s"
ok "and it ended in $((SECONDS - t0)) s"
pgrep -f 'sleep 303[1]' >/dev/null && fail "its sleep survived"
ok "its sleep is gone"

# verify runs `<binary> --version` (then --help) with a 5 s limit: a binary that detaches from
# its pipes made the install wait forever.
entry rbee-sb-detach rbee-detach
pkgbuild rbee-sb-detach "" "" "$(script_package rbee-detach 'exec >/dev/null 2>&1 </dev/null
exec sleep 3033')"
t0=$SECONDS
out=$(install_stream rbee-sb-detach)
assert_contains "$out" "[ERROR] the built worker 'rbee-sb-detach' fails verification: probe: 'usr/bin/rbee-detach --version' did not finish within 5 s" \
	"verify's time limit holds for a probe that detached from its pipes"
[ $((SECONDS - t0)) -lt 40 ] || fail "it took $((SECONDS - t0)) s"
ok "and the install ended in $((SECONDS - t0)) s"
assert_nothing_installed rbee-sb-detach
assert_no_uid_procs 64310 64319 "no process of the build uids is left"
stop_hive

# Cancel (DELETE /v1/jobs/ID) of a build that closed its pipes: the job slot and the install
# lock come back.
unset RBEE_BUILD_TIMEOUT_S
start_hive --catalog "$cat"
job=$(submit '{"operation":"worker_install","worker_id":"rbee-sb-quiet"}')
stream "$job" >"$T/quiet.txt" &
track $!
WAIT_S=30 wait_for grep -q 'running build()' "$T/quiet.txt" || fail "build() did not start"
WAIT_S=10 wait_for pgrep -f 'sleep 303[1]' || fail "the build's sleep did not start"
st=$(http DELETE "/v1/jobs/$job")
assert_contains "$st" "cancelled" "cancel accepted"
WAIT_S=15 wait_for grep -q '\[CANCELLED\]' "$T/quiet.txt" || fail "no [CANCELLED]: cancel did not hold"
ok "the cancel holds for a build that closed its pipes"
pgrep -f 'sleep 303[1]' >/dev/null && fail "its sleep survived the cancel"
ok "its sleep is gone"
out=$(install_stream rbee-test-worker)
assert_contains "$out" "data: [DONE]" "the next install runs (slot and lock are free)"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive stopped answering"
ok "the hive still answers /health"
assert_no_uid_procs 64310 64319 "no process of the build uids is left"
pass
