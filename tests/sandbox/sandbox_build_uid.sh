#!/bin/bash
# Root from a catalog entry (issue 11, item 1): verify probes run as a build uid, never as the
# hive's; processes a build or probe leaves behind (setsid, double fork) are killed when the
# command ends; two builds cannot see or write each other's trees; PR_SET_NO_NEW_PRIVS; no
# descriptor of the hive reaches a build; a file:// source is read with the build user's rights
# (the sha256 of /etc/shadow never reaches a stream); build.log has a cap.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/sandbox/sandbox_lib.sh"
sandbox_catalog
export RBEE_BUILD_UIDS=64300-64309 RBEE_BUILD_LOG_MAX_MB=1
start_hive --catalog "$cat"

# 1. package() installs a script that verify runs: it reports its uid and leaves a daemon.
#    build() leaves one too, out of its process group and session.
entry rbee-sb-probe rbee-probe
pkgbuild rbee-sb-probe "" "" "build() {
	echo \"build: uid=\$(id -u) \$(grep NoNewPrivs /proc/self/status | tr -d ' \\t')\"
	echo \"build: fds=\$(ls /proc/\$\$/fd | tr '\\n' ' ')\"
	(setsid sh -c 'exec sleep 3022' >/dev/null 2>&1 </dev/null &)
}
$(script_package rbee-probe 'echo "probe: uid=$(id -u)"
(setsid sh -c "exec sleep 3021" >/dev/null 2>&1 </dev/null &)
exit 0')"
out=$(install_stream rbee-sb-probe)
assert_contains "$out" "data: [DONE]" "the probe worker installs"
build_uid=$(sed -n 's/^data: build: uid=\([0-9]*\).*/\1/p' <<<"$out" | head -1)
probe_uid=$(grep -o 'probe: uid=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
[ -n "$build_uid" ] && [ -n "$probe_uid" ] || fail "no uids reported: $out"
[ "$build_uid" -ge 64300 ] && [ "$build_uid" -le 64309 ] || fail "build uid $build_uid is not from RBEE_BUILD_UIDS"
ok "build() ran as uid $build_uid, from RBEE_BUILD_UIDS"
[ "$probe_uid" -ge 64300 ] && [ "$probe_uid" -le 64309 ] || fail "verify's probe ran as uid $probe_uid"
ok "verify's --version ran as build uid $probe_uid, not as root"
assert_contains "$out" "NoNewPrivs:1" "builds run with PR_SET_NO_NEW_PRIVS"
assert_contains "$out" "build: fds=0 1 2 " "a build inherits no descriptor of the hive"
assert_no_uid_procs 64300 64309 "the daemons build() and --version left are killed"

out=$(run_job '{"operation":"worker_verify","worker_id":"rbee-sb-probe"}')
uid=$(grep -o 'probe: uid=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
[ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" -ge 64300 ] || fail "worker_verify ran the probe as uid '$uid': $out"
ok "worker_verify runs the probe as build uid $uid"
assert_no_uid_procs 64300 64309 "and its daemon is killed"

# 2. A build that waits, and a second one that tries to read and write the first one's tree.
entry rbee-sb-victim true
pkgbuild rbee-sb-victim "" "" 'build() { echo "VICTIM=$startdir"; sleep 3023; }
package() { :; }'
job=$(submit '{"operation":"worker_install","worker_id":"rbee-sb-victim"}')
stream "$job" >"$T/victim.txt" &
track $!
WAIT_S=30 wait_for grep -q 'VICTIM=' "$T/victim.txt" || fail "the first build did not start"
victim=$(sed -n 's/^data: VICTIM=//p' "$T/victim.txt" | head -1)
entry rbee-sb-snoop true
pkgbuild rbee-sb-snoop "" "" "build() {
	if ls '$victim/src' >/dev/null 2>&1; then echo snoop: read=yes; else echo snoop: read=no; fi
	if touch '$victim/src/planted' 2>/dev/null; then echo snoop: write=yes; else echo snoop: write=no; fi
	if echo x >>'$victim/PKGBUILD' 2>/dev/null; then echo snoop: pkgbuild=yes; else echo snoop: pkgbuild=no; fi
}
package() { :; }"
out=$(install_stream rbee-sb-snoop)
assert_contains "$out" "snoop: read=no" "a build cannot list another build's tree"
assert_contains "$out" "snoop: write=no" "nor write into it"
assert_contains "$out" "snoop: pkgbuild=no" "nor change its PKGBUILD"
[ ! -e "$victim/src/planted" ] || fail "the second build planted a file in the first one's tree"
ok "nothing planted"
st=$(http DELETE "/v1/jobs/$job")
WAIT_S=15 wait_for grep -q '\[CANCELLED\]' "$T/victim.txt" || fail "the waiting build was not cancelled"
assert_no_uid_procs 64300 64309 "the cancelled build's processes are gone"

# 3. A file:// source naming a file only root may read.
shadow_sha=$(sha256sum /etc/shadow | cut -d' ' -f1)
entry rbee-sb-shadow true
pkgbuild rbee-sb-shadow '"file:///etc/shadow"' "'$shadow_sha'" 'package() { :; }'
out=$(install_stream rbee-sb-shadow)
assert_contains "$out" "[ERROR] cannot read source file '/etc/shadow' as the build user" \
	"a file:// source is read as the build user: /etc/shadow is refused"
assert_contains "$out" "Permission denied" "and says why"
assert_not_contains "$out" "sha256 $shadow_sha" "the sha256 of /etc/shadow is not in the stream"
assert_nothing_installed rbee-sb-shadow

# 4. A build that prints 1.5 MB (within the job's event history, so a slow stream still sees
#    every line): build.log stops at RBEE_BUILD_LOG_MAX_MB=1 and says so.
entry rbee-sb-noisy rbee-noisy
pkgbuild rbee-sb-noisy "" "" "build() { head -c 1500000 /dev/zero | tr '\\\\0' x | fold -w 99; }
$(script_package rbee-noisy 'echo noisy 1.0')"
STREAM_MAX_S=120 out=$(install_stream rbee-sb-noisy)
assert_contains "$out" "data: [DONE]" "a noisy build installs"
assert_contains "$out" "build.log reached its limit of 1 MiB" "the job says build.log hit its cap"
size=$(stat -c %s "$RBEE_HOME/workers/rbee-sb-noisy/build.log")
[ "$size" -le $((1024 * 1024 + 4096)) ] || fail "build.log is $size bytes, over its 1 MiB cap"
ok "build.log stays at its cap ($size bytes)"
grep -q "build.log reached its limit" "$RBEE_HOME/workers/rbee-sb-noisy/build.log" ||
	fail "build.log does not say it was cut"
ok "and says so at its end"

curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive stopped answering"
ok "the hive still answers /health"
assert_no_uid_procs 64300 64309 "no process of the build uids is left"
left=$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 | wc -l)
assert_eq "$left" 0 "staging is empty"
pass
