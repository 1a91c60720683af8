# sandbox_lib.sh - helpers for the sandbox tests; source after tests/lib.sh and
# tests/install/install_lib.sh. Every test uses a uid range of its own (RBEE_BUILD_UIDS), so that
# "no process of the build uids is left" is about this test's hive only.
# sandbox_catalog: as root (else skip), the test worker's tarball served and the test catalog
# written into $cat, for the entry/pkgbuild helpers of install_lib.sh.
sandbox_catalog() {
	need_root
	start_source_server
	make_test_catalog "$T/catalog"
	cat="$T/catalog"
}

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "not root: the build sandbox drops privileges only as root; skipping"
		exit 77
	fi
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
