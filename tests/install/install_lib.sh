# install_lib.sh - helpers for the install tests; source after tests/lib.sh.
#
#   start_source_server             python's http.server on a free port serving $T/www, which
#                                   holds the test worker's tarball; sets SOURCE_URL, SOURCE_PORT
#   make_test_catalog DIR           the test catalog (tests/worker_fixtures) written into DIR
#   install_stream ID               run worker_install for ID, print the whole stream
#   assert_nothing_installed ID     no workers/ID, and nothing left in staging
#   entry ID BINARY / pkgbuild ID SOURCES SUMS BODY / script_package NAME BODY
#                                   workers of a test's own, written into the catalog at $cat
FIXTURES="$RBEE_SRC/tests/worker_fixtures"

start_source_server() {
	mkdir -p "$T/www"
	cp "$RBEE_TEST_BIN/rbee-test-worker-1.0.tar.gz" "$T/www/"
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www" >"$T/www.log" 2>&1 &
	track $!
	WAIT_S=10 wait_for grep -q 'port [0-9]' "$T/www.log" || fail "http.server did not start"
	SOURCE_PORT=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$T/www.log" | head -1)
	SOURCE_URL="http://127.0.0.1:$SOURCE_PORT"
	wait_for curl -sf "$SOURCE_URL/rbee-test-worker-1.0.tar.gz" -o /dev/null ||
		fail "http.server does not serve the tarball"
}

make_test_catalog() {
	bash "$FIXTURES/make_catalog.sh" "$1" "$SOURCE_URL" "$SOURCE_PORT"
}

install_stream() {
	run_job "{\"operation\":\"worker_install\",\"worker_id\":\"$1\"}"
}

assert_nothing_installed() {
	[ ! -e "$RBEE_HOME/workers/$1" ] || fail "'workers/$1' exists after a failed install"
	ok "nothing installed for $1"
	local left
	left=$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	assert_eq "$left" 0 "staging is empty after the failed install of $1"
	# Build directories are looked for machine-wide, where another test's install of the same
	# fixture may be building at this moment (ctest -j): such a directory goes when that
	# build ends, a leaked one stays.
	WAIT_S=60 wait_for no_build_dirs_of "$1" || true
	assert_eq "$(build_dirs_of "$1")" 0 "no build directory of $1 left outside staging"
}
build_dirs_of() { find /var/tmp /tmp -maxdepth 1 -name "rbee-build-$1-*" 2>/dev/null | wc -l; }
no_build_dirs_of() { [ "$(build_dirs_of "$1")" = 0 ]; }

# Entries written into the catalog directory $cat, for tests that make their own workers.
# entry ID BINARY: a catalog entry for ID (the test worker's, with another binary name).
entry() {
	jq --arg id "$1" --arg bin "$2" \
		'.id = $id | .binary_name = $bin | .install_path = "/usr/bin/" + $bin | del(.launch)' \
		"$cat/workers/rbee-test-worker-local.json" >"$cat/workers/$1.json"
}
# pkgbuild ID SOURCES SUMS BODY: a PKGBUILD for ID with those arrays and functions.
pkgbuild() {
	printf 'pkgname=%s\npkgver=1.0\npkgrel=1\narch=(any)\nsource=(%s)\nsha256sums=(%s)\n%s\n' \
		"$1" "$2" "$3" "$4" >"$cat/pkgbuilds/$1.PKGBUILD"
}
# A package() installing the script BODY as usr/bin/NAME.
script_package() { # NAME BODY
	printf 'package() {\n\tinstall -d "$pkgdir/usr/bin"\n\tcat >"$pkgdir/usr/bin/%s" <<'"'"'SCRIPT'"'"'\n#!/bin/sh\n%s\nSCRIPT\n\tchmod 755 "$pkgdir/usr/bin/%s"\n}\n' "$1" "$2" "$1"
}
