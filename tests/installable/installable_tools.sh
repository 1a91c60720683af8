#!/usr/bin/env bash
# Whether a worker can be installed here, asked of a real hive with a local catalog whose PATH
# is made for the test: every command of the usual PATH except cargo. `rbee worker available`
# (worker_catalog_list) says which entries can be installed and why not (platform, backend,
# build tools of makedepends); worker_install refuses the same up front, before fetching
# anything, and also when the catalog's version is not the PKGBUILD's pkgver. Once cargo is on
# the PATH, the same entry is installable and installs.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"
RBEE="$BIN/rbee"

cat="$T/catalog"
bash "$FIXTURES/make_catalog.sh" "$cat" "http://127.0.0.1:9" 9 >/dev/null
# variant ID JQ_FILTER SED_SCRIPT: a copy of rbee-test-worker-local (relative source, builds with
# cc) with its entry and PKGBUILD changed.
variant() {
	jq --arg id "$1" ".id = \$id | $2" "$cat/workers/rbee-test-worker-local.json" >"$cat/workers/$1.json"
	sed -e "s/^pkgname=.*/pkgname=$1/" -e "$3" "$cat/pkgbuilds/rbee-test-worker-local.PKGBUILD" \
		>"$cat/pkgbuilds/$1.PKGBUILD"
}
variant rbee-test-needs-cargo '.makedepends += ["cargo", "gcc-libs", "openssl"]' \
	"s/^makedepends=.*/makedepends=('gcc' 'cargo' 'gcc-libs')/"
variant rbee-test-pkgbuild-cargo '.' "s/^makedepends=.*/makedepends=('gcc' 'rust')/"
variant rbee-test-badversion '.version = "2.0"' ''

# The hive's PATH: a directory of links to every command of ours, without cargo and rustc.
bin="$T/bin"
mkdir -m 755 "$bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
	for f in "$d"/*; do
		n=${f##*/}
		case "$n" in cargo | rustc) continue ;; esac
		[ -x "$f" ] && [ ! -d "$f" ] && [ ! -e "$bin/$n" ] && ln -s "$f" "$bin/$n"
	done
done
[ ! -e "$bin/cargo" ] || fail "cargo is still in $bin"
PATH="$bin" start_hive --catalog "$cat"

# --- rbee worker available ---
list=$(job_data "$(run_job '{"operation":"worker_catalog_list"}')")
e() { jq -c --arg id "$1" '.workers[] | select(.id == $id)' <<<"$list"; }
need_cargo="worker 'rbee-test-needs-cargo' needs 'cargo' to build, which is not on this node's PATH ($bin): install it (Debian: apt-get install cargo)"
assert_eq "$(e rbee-test-needs-cargo | jq -r .installable)" false "an entry needing cargo is not installable"
assert_eq "$(e rbee-test-needs-cargo | jq -r .not_installable_because)" "$need_cargo" \
	"because cargo is not on the PATH (gcc is, gcc-libs and openssl are not checked)"
assert_eq "$(e rbee-test-worker-local | jq -c '[.installable, .not_installable_because]')" '[true,null]' \
	"an entry whose tools are all here is installable"
arch=$(uname -m)
assert_eq "$(e rbee-test-wrongarch | jq -r .not_installable_because)" \
	"worker 'rbee-test-wrongarch' supports linux on $(e rbee-test-wrongarch | jq -r '.architectures[0]'); this node is linux $arch" \
	"an entry for another architecture is not, with install's platform check"
assert_contains "$(e rbee-test-nobackend | jq -r .not_installable_because)" \
	"backend 'nosuchbackend' is not available on this node" "nor one whose backend is missing"
assert_eq "$(e rbee-test-needs-cargo | jq -S 'del(.installable, .not_installable_because, .pkgbuild_url)')" \
	"$(jq -S . "$cat/workers/rbee-test-needs-cargo.json")" "the entry's own fields are unchanged"
got=$(job_data "$(run_job '{"operation":"worker_catalog_get","worker_id":"rbee-test-needs-cargo"}')")
assert_eq "$(jq -c '[.installable, .not_installable_because]' <<<"$got")" "[false,$(jq -Rc . <<<"$need_cargo")]" \
	"worker_catalog_get says the same"

table=$("$RBEE" worker available)
assert_contains "$(grep -m1 '^ID ' <<<"$table")" " OK? " "rbee worker available has an OK? (installable) column"
assert_eq "$(grep '^rbee-test-needs-cargo ' <<<"$table" | grep -cw no)" 1 "saying no for the cargo entry"
assert_eq "$(grep '^rbee-test-worker-local ' <<<"$table" | grep -cw yes)" 1 "and yes for an installable one"
assert_contains "$table" "NOT INSTALLABLE HERE BECAUSE" "with a table of reasons below"
assert_eq "$(grep -c "^rbee-test-needs-cargo  *$(sed 's/[][\.*^$]/\\&/g' <<<"$need_cargo")\$" <<<"$table")" 1 \
	"naming the missing tool (one line when piped)"
narrow=$(COLUMNS=70 "$RBEE" worker available 2>/dev/null)
reasons=$(sed -n '/NOT INSTALLABLE HERE BECAUSE/,$p' <<<"$narrow")
assert_eq "$(awk '{ if (length($0) > 70) n++ } END { print n + 0 }' <<<"$reasons")" 0 \
	"with COLUMNS=70 the table of reasons wraps to fit"
assert_contains "$(tr -s ' \n' ' ' <<<"$reasons")" "apt-get install cargo)" "losing no word"
assert_eq "$("$RBEE" --json worker available | jq -r '.workers[] | select(.id == "rbee-test-needs-cargo") | .installable')" \
	false "--json carries the field"

# --- worker_install refuses up front ---
out=$(install_stream rbee-test-needs-cargo)
assert_contains "$out" "data: [ERROR] $need_cargo" "install refuses a worker whose build tool is missing"
assert_not_contains "$out" '"stage":"fetching"' "before fetching anything"
assert_nothing_installed rbee-test-needs-cargo

out=$(install_stream rbee-test-pkgbuild-cargo)
assert_contains "$out" "data: [ERROR] worker 'rbee-test-pkgbuild-cargo' needs 'rustc' to build, which is not on this node's PATH ($bin): install it (Debian: apt-get install rustc)" \
	"the PKGBUILD's own makedepends are checked too (rust -> rustc)"
assert_not_contains "$out" '"stage":"fetching"' "also before fetching"

assert_eq "$(e rbee-test-badversion | jq -r .installable)" true "a version mismatch needs the PKGBUILD, so the list cannot see it"
out=$(install_stream rbee-test-badversion)
assert_contains "$out" "data: [ERROR] catalog entry 'rbee-test-badversion' says version 2.0 but its PKGBUILD's pkgver is 1.0: fix the catalog" \
	"install refuses an entry whose version is not its PKGBUILD's pkgver"
assert_not_contains "$out" '"stage":"fetching"' "before fetching anything"
assert_nothing_installed rbee-test-badversion
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health after the refusals"

# --- with cargo on the PATH, the same entry is installable and installs ---
printf '#!/bin/sh\necho "cargo 1.0 (test)"\n' >"$bin/cargo"
chmod 755 "$bin/cargo"
list=$(job_data "$(run_job '{"operation":"worker_catalog_list"}')")
assert_eq "$(e rbee-test-needs-cargo | jq -c '[.installable, .not_installable_because]')" '[true,null]' \
	"once cargo is on the PATH the entry is installable (nothing is cached)"
out=$(install_stream rbee-test-needs-cargo)
assert_contains "$out" "data: [DONE]" "and it installs"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive answers /health"
pass
