#!/bin/bash
# Installs that must fail cleanly: wrong sha256, failing build(), wrong architecture, missing
# backend, a failed reinstall over a working install, and an unreachable catalog server.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"
start_hive --catalog "$T/catalog"

# wrong sha256: stops before building, names both hashes, leaves nothing
out=$(install_stream rbee-test-badsum)
good=$(sha256sum "$RBEE_TEST_BIN/rbee-test-worker-1.0.tar.gz" | cut -d' ' -f1)
assert_contains "$out" "[ERROR] sha256 mismatch for source 'rbee-test-worker-1.0.tar.gz'" "wrong sha256 fails"
assert_contains "$out" "0000000000000000000000000000000000000000000000000000000000000000" "expected hash named"
assert_contains "$out" "$good" "actual hash named"
assert_not_contains "$out" "must never run" "build() does not run after a checksum mismatch"
assert_nothing_installed rbee-test-badsum

# failing build(): its output in the stream and in the error
out=$(install_stream rbee-test-failbuild)
assert_contains "$out" "data: compiling widget.c" "build() stdout streamed"
assert_contains "$out" "data: widget.c:3: error: expected ';'" "build() stderr streamed"
err=$(grep '^data: \[ERROR\]' <<<"$out")
assert_contains "$err" "build() failed (exited with status 1)" "error names the phase and status"
assert_contains "$err" "widget.c:3: error" "error carries the last output"
assert_not_contains "$out" "must not get here" "build() stops at the first failure (set -e)"
assert_nothing_installed rbee-test-failbuild

# refused before anything is fetched
hits=$(grep -c GET "$T/www.log")
out=$(install_stream rbee-test-wrongarch)
assert_contains "$out" "[ERROR] worker 'rbee-test-wrongarch' supports linux on" "wrong arch refused"
assert_contains "$out" "this node is linux $(uname -m)" "wrong arch message names this node"
out=$(install_stream rbee-test-nobackend)
assert_contains "$out" "[ERROR] backend 'nosuchbackend' is not available on this node:" "missing backend refused"
assert_eq "$(grep -c GET "$T/www.log")" "$hits" "nothing fetched for refused installs"
assert_nothing_installed rbee-test-wrongarch

# an earlier install survives a failed reinstall (directory catalogs are read afresh)
out=$(install_stream rbee-test-worker)
assert_contains "$out" "data: [DONE]" "first install works"
dir="$RBEE_HOME/workers/rbee-test-worker"
before=$(cat "$dir/metadata.json")
sed -i 's/^\tcc -O2.*/\techo "reinstall breaks"; exit 7/' "$T/catalog/pkgbuilds/rbee-test-worker.PKGBUILD"
out=$(install_stream rbee-test-worker)
assert_contains "$out" "[ERROR] build() failed (exited with status 7)" "reinstall fails"
assert_eq "$(cat "$dir/metadata.json")" "$before" "earlier record untouched"
assert_eq "$("$dir/pkg/usr/bin/rbee-test-worker" --version)" "rbee-test-worker 1.0" "earlier binary untouched"
out=$(run_job '{"operation":"worker_verify","worker_id":"rbee-test-worker"}')
assert_contains "$out" "data: [DONE]" "earlier install still verifies"
assert_eq "$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 | wc -l)" 0 "staging empty after failed reinstall"

# ids are validated at submit
st=$(http POST /v1/jobs '{"operation":"worker_install","worker_id":"../etc"}')
assert_contains "$st" "400" "path tricks in worker_id are a 400"

# catalog server down: a clear error, nothing fetched
stop_hive
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_hive --catalog "http://127.0.0.1:$port"
out=$(install_stream rbee-test-worker)
assert_contains "$out" "[ERROR]" "install with the catalog down fails"
assert_contains "$out" "127.0.0.1:$port" "the error names the catalog"
assert_eq "$(cat "$dir/metadata.json")" "$before" "earlier install untouched by the catalog failure"
pass
