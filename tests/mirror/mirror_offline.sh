#!/bin/bash
# --offline (worker_install "offline": true, `rbee worker install ID --offline`): with sources
# missing from both the mirror and the cache the install fails before any build directory
# exists, with one error naming every missing source and the paths it was looked for at; a
# PKGBUILD whose prepare() asks for the network is refused up front; "offline" must be a
# boolean.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/mirror/mirror_lib.sh"

mirror_catalog
m="$T/mirror"
mkdir -p "$m"
echo DATA1 >"$m/data.txt"
echo other >"$T/other.txt"
add_worker offl "\"data.txt::http://127.0.0.1:9/data.txt\" \
	\"other.txt::http://127.0.0.1:9/other.txt\" \
	\"src::git+https://example.invalid/x.git#tag=v1\" \
	\"br::git+https://example.invalid/y.git#branch=a/b\"" "$(sha "$m/data.txt") $(sha "$T/other.txt") SKIP SKIP"
add_worker needsnet '"data.txt::http://127.0.0.1:9/data.txt"' "$(sha "$m/data.txt")"
echo 'rbee_options=(network)' >>"$cat/pkgbuilds/needsnet.PKGBUILD"
echo 'prepare() { :; }' >>"$cat/pkgbuilds/needsnet.PKGBUILD"
start_hive --catalog "$cat" --source-mirror "$m"
c="$RBEE_HOME/cache/sources"

out=$(run_job '{"operation":"worker_install","worker_id":"offl","offline":true}')
assert_contains "$out" "[ERROR] --offline: 3 sources are in neither the source mirror nor the node cache: 'other.txt' (looked for $m/other.txt and $c/other.txt); 'src' (looked for $m/src.tag-v1.bundle and $c/src.tag-v1.bundle); 'br' (looked for $m/br.branch-a%2Fb.bundle and $c/br.branch-a%2Fb.bundle)" \
	"one error names every missing source and where it was looked for"
assert_not_contains "$out" "'data.txt' (looked" "the source the mirror has is not listed"
assert_not_contains "$out" "progress" "it fails before fetching anything"
assert_not_contains "$out" "build commands run as" "and before the build sandbox is set up"
assert_nothing_installed offl

# The same through the CLI flag.
set +e
cli=$("$BIN/rbee" worker install offl --offline 2>&1)
rc=$?
set -e
assert_ne "$rc" 0 "rbee worker install --offline fails"
assert_contains "$cli" "3 sources are in neither the source mirror nor the node cache" "the CLI sends offline"
assert_nothing_installed offl

out=$(run_job '{"operation":"worker_install","worker_id":"needsnet","offline":true}')
assert_contains "$out" "[ERROR] --offline: this PKGBUILD asks for the network in prepare() (rbee_options=(network))" \
	"a PKGBUILD whose prepare() needs the network is refused offline"
assert_nothing_installed needsnet

r=$(http POST /v1/jobs '{"operation":"worker_install","worker_id":"offl","offline":"yes"}')
assert_contains "$r" "400 " "a non-boolean offline is a 400"
assert_contains "$r" "field 'offline' of worker_install must be true or false" "naming the field"

set +e
bad=$("$BIN/rbee-hive" --port 0 --source-mirror "$T/no-such-dir" 2>&1)
rc=$?
set -e
assert_eq "$rc" 2 "a hive with a missing mirror directory does not start"
assert_contains "$bad" "source mirror '$T/no-such-dir' (--source-mirror or RBEE_SOURCE_MIRROR) is not a directory" \
	"saying why"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers /health"
pass
