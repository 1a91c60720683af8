#!/bin/bash
# A directory catalog works the same as the server: the same entry installs to the same record,
# and a relative source resolves against the catalog directory.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"

fields='{id,worker_type,version,pkgname,binary_name,sha256,size,pkgbuild_sha256,launch,verify_ok:.verify.ok}'
start_catalog "$T/catalog"
start_hive --catalog "$CATALOG_URL"
via_server=$(job_data "$(install_stream rbee-test-worker)" | jq -S "$fields")
stop_hive
rm -rf "$RBEE_HOME/workers/rbee-test-worker"

start_hive --catalog "$T/catalog"
out=$(install_stream rbee-test-worker)
assert_contains "$out" "data: [DONE]" "install from a directory catalog"
via_dir=$(job_data "$out" | jq -S "$fields")
assert_eq "$via_dir" "$via_server" "directory and server catalogs give the same record"

out=$(install_stream rbee-test-worker-local)
assert_contains "$out" "data: [DONE]" "relative source resolved against the catalog directory"
assert_contains "$out" "$T/catalog/rbee-test-worker-1.0.tar.gz" "it is read from the catalog directory"

stop_hive # one hive per home
start_hive --catalog "file://$T/catalog"
out=$(run_job '{"operation":"worker_list_installed"}')
assert_eq "$(job_data "$out" | jq -r '[.workers[].id] | join(",")')" "rbee-test-worker,rbee-test-worker-local" \
	"both installs listed (file:// catalog)"
pass
