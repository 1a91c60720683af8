#!/bin/bash
# install -> list -> get -> verify -> remove, with the catalog served by rbee-catalog and the
# worker's source tarball over local HTTP; checks the stream, the record, the files, the
# sandbox, and the CLI's commands for each step.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"
start_catalog "$T/catalog"
start_hive --catalog "$CATALOG_URL"
RBEE="$BIN/rbee"

out=$(install_stream rbee-test-worker)
assert_contains "$out" "data: [DONE]" "install finishes"
for stage in fetching verifying building packaging installing; do
	assert_contains "$out" "\"stage\":\"$stage\"" "progress stage '$stage' is reported"
done
assert_contains "$out" "build: compiled rbee-test-worker" "build() stderr is streamed"
assert_contains "$out" "rbee-test-worker 1.0" "check() output is streamed"
if [ "$(id -u)" = 0 ]; then
	assert_not_contains "$out" "build: uid=0" "build runs unprivileged when the hive is root"
fi
if [[ "$out" == *"run without network"* ]]; then
	assert_contains "$out" "build: network=no" "build() cannot reach the network"
fi
rec=$(job_data "$out")
assert_eq "$(jq -r .id <<<"$rec")" rbee-test-worker "record id"
assert_eq "$(jq -r .worker_type <<<"$rec")" cpu "record worker_type"
assert_eq "$(jq -r .version <<<"$rec")" 1.0-1 "record version"
bin=$(jq -r .binary_path <<<"$rec")
assert_eq "$bin" "$RBEE_HOME/workers/rbee-test-worker/pkg/usr/bin/rbee-test-worker" "binary path"
assert_eq "$(jq -r .sha256 <<<"$rec")" "$(sha256sum "$bin" | cut -d' ' -f1)" "binary sha256 recorded"
assert_eq "$(jq -r .size <<<"$rec")" "$(stat -c %s "$bin")" "binary size recorded"
assert_eq "$(jq -r .verify.ok <<<"$rec")" true "verify report is part of the result"
assert_eq "$(jq -r '.launch.health_path' <<<"$rec")" /health "launch template kept"
assert_eq "$("$bin" --version)" "rbee-test-worker 1.0" "installed binary runs"
[ "$(stat -c %u "$bin")" = "$(id -u)" ] || fail "installed files must belong to the hive's user"
ok "installed files belong to the hive's user"

dir="$RBEE_HOME/workers/rbee-test-worker"
cmp -s "$dir/PKGBUILD" "$T/catalog/pkgbuilds/rbee-test-worker.PKGBUILD" || fail "PKGBUILD not kept exactly"
ok "the exact PKGBUILD is kept"
(cd "$dir" && sha256sum -c --quiet PKGBUILD.sha256) || fail "PKGBUILD.sha256 does not check"
ok "PKGBUILD.sha256 checks with sha256sum -c"
assert_contains "$(cat "$dir/build.log")" "build: compiled rbee-test-worker" "build.log holds the output"
assert_eq "$(jq -r .id "$dir/metadata.json")" rbee-test-worker "metadata.json written"
assert_eq "$(ls "$RBEE_HOME/staging" | wc -l)" 0 "staging is empty after the install"

# list / get / verify, through the operations and the CLI
out=$(run_job '{"operation":"worker_list_installed"}')
assert_eq "$(job_data "$out" | jq -r '.workers | map(.id) | join(",")')" rbee-test-worker "list has it"
table=$("$RBEE" worker ls)
assert_contains "$table" "rbee-test-worker" "rbee worker ls shows it"
assert_contains "$table" "TYPE" "rbee worker ls prints a table"
assert_eq "$("$RBEE" worker list --json | jq -r '.workers[0].id')" rbee-test-worker "rbee worker list --json"
show=$("$RBEE" worker get rbee-test-worker)
assert_contains "$show" "installed" "rbee worker get shows the installed worker"
assert_contains "$show" "$bin" "rbee worker get shows the binary"
show=$("$RBEE" worker show rbee-test-failbuild)
assert_contains "$show" "not installed" "rbee worker get falls back to the catalog"
assert_eq "$("$RBEE" --json worker get rbee-test-worker | jq -r .sha256)" "$(jq -r .sha256 <<<"$rec")" \
	"rbee worker get --json"
out=$(run_job '{"operation":"worker_verify","worker_id":"rbee-test-worker"}')
rep=$(job_data "$out")
assert_eq "$(jq -r .ok <<<"$rep")" true "verify ok"
assert_eq "$(jq -r '[.checks[:5][].check] | join(",")' <<<"$rep")" "binary,elf,libraries,probe,sha256" \
	"verify runs the generic checks first, in order"
assert_ne "$(jq -r '.checks | length' <<<"$rep")" 5 "the cpu backend adds its own checks"
"$RBEE" worker verify rbee-test-worker >"$T/verify.out" || fail "rbee worker verify failed"
assert_contains "$(cat "$T/verify.out")" "can run on this node" "rbee worker verify"

# a binary that changed after the install fails verification, with exit status 1
cp "$bin" "$T/bin.saved"
echo >>"$bin"
set +e
"$RBEE" worker verify rbee-test-worker >"$T/verify.out" 2>&1
rc=$?
set -e
assert_eq "$rc" 1 "verify of a changed binary exits 1"
assert_contains "$(cat "$T/verify.out")" "the binary changed" "verify names the sha256 mismatch"
cp "$T/bin.saved" "$bin"

# remove
"$RBEE" worker rm rbee-test-worker >/dev/null || fail "rbee worker rm failed"
[ ! -e "$dir" ] || fail "worker directory still there after remove"
ok "remove deletes the worker"
out=$(run_job '{"operation":"worker_installed_get","worker_id":"rbee-test-worker"}')
assert_contains "$out" "[ERROR] worker 'rbee-test-worker' is not installed" "get after remove"
out=$(run_job '{"operation":"worker_remove","worker_id":"rbee-test-worker"}')
assert_contains "$out" "[ERROR] worker 'rbee-test-worker' is not installed" "remove twice"
assert_contains "$("$RBEE" worker ls)" "no workers installed" "empty list says so"
set +e
"$RBEE" worker install >/dev/null 2>&1; rc=$?
set -e
assert_eq "$rc" 2 "install without an id is a usage error"
assert_contains "$("$RBEE" worker install --help)" "usage: rbee worker download | install <id>" "help per command"
pass
