#!/bin/bash
# prepare() gets no more than it needs (issue 11, item 1): no network unless the PKGBUILD asks
# for it with rbee_options=(network) (the hive fetches the sources itself), and never the hive's
# token: no build phase sees RBEE_API_TOKEN. build() never has network, whatever it asks.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
. "$RBEE_SRC/tests/sandbox/sandbox_lib.sh"
sandbox_catalog
export RBEE_BUILD_UIDS=64330-64339
RBEE_API_TOKEN=tok-$$-secret start_hive --catalog "$cat"
HIVE_TOKEN=tok-$$-secret

probe() { # PHASE: a function that says whether it reaches the test's HTTP server, and the token
	printf '%s() {\n\tif (exec 3<>/dev/tcp/127.0.0.1/%s) 2>/dev/null; then echo "%s: network=yes"; else echo "%s: network=no"; fi\n\techo "%s: token=${RBEE_API_TOKEN:-none}"\n}\n' \
		"$1" "$SOURCE_PORT" "$1" "$1" "$1"
}

entry rbee-net-quiet rbee-net
pkgbuild rbee-net-quiet "" "" "$(probe prepare)
$(probe build)
$(script_package rbee-net 'echo rbee-net 1.0')"
out=$(install_stream rbee-net-quiet)
if [[ "$out" == *"the build keeps network access"* ]]; then
	echo "no network namespace can be made here; skipping"
	exit 77
fi
assert_contains "$out" "prepare(), build(), check() and package() run without network" \
	"the install says prepare() runs without network"
assert_contains "$out" "prepare: network=no" "prepare() without rbee_options=(network) cannot reach the network"
assert_contains "$out" "build: network=no" "build() cannot either"
assert_contains "$out" "prepare: token=none" "prepare() does not see the hive's token"
assert_contains "$out" "build: token=none" "build() does not see it"

entry rbee-net-asks rbee-net
pkgbuild rbee-net-asks "" "" "rbee_options=(network)
$(probe prepare)
$(probe build)
$(script_package rbee-net 'echo rbee-net 1.0')"
out=$(install_stream rbee-net-asks)
assert_contains "$out" "data: [DONE]" "the entry that asks for the network installs"
assert_contains "$out" "build(), check() and package() run without network" "the install says which phases are offline"
assert_contains "$out" "prepare: network=yes" "prepare() with rbee_options=(network) reaches the network"
assert_contains "$out" "build: network=no" "build() still cannot"
assert_contains "$out" "prepare: token=none" "and the token stays out of reach"

assert_no_uid_procs 64330 64339 "nothing of the builds is left running"
curl -sf "$HIVE_URL/health" >/dev/null || fail "the hive stopped answering"
ok "the hive still answers /health"
pass
