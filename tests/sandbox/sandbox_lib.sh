# sandbox_lib.sh - helpers for the sandbox tests; source after tests/lib.sh and
# tests/install/install_lib.sh. Every test uses a uid range of its own (RBEE_BUILD_UIDS), so that
# "no process of the build uids is left" is about this test's hive only.
need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "not root: the build sandbox drops privileges only as root; skipping"
		exit 77
	fi
}

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

# Processes of the uids FIRST..LAST (not zombies).
uid_procs() {
	ps -eo uid=,stat=,pid=,args= | awk -v a="$1" -v b="$2" '$1>=a && $1<=b && $2 !~ /^Z/'
}
assert_no_uid_procs() { # FIRST LAST WHAT
	local left
	WAIT_S=5 wait_for test -z "$(uid_procs "$1" "$2")" || true
	left=$(uid_procs "$1" "$2")
	[ -z "$left" ] || fail "$3: processes of the build uids are left: $left"
	ok "$3"
}
