#!/usr/bin/env bash
# Hostile PKGBUILDs in a directory catalog against the real hive: 800 KB of `a=1 a=1 ...` on
# one line (the reader recursed per assignment: SIGSEGV), 26 lines of a="$a$a" (expansion asked
# for 1 GiB and aborted), 600 KB of nested $( in a function (skip_shell recursed: SIGSEGV).
# Each install fails with a clear error naming the line, the hive still answers /health, and
# nothing is installed or left in staging; an honest install still works afterwards.
. "$RBEE_SRC/tests/lib.sh"
CAT="$T/catalog"
mkdir -p "$CAT/workers" "$CAT/pkgbuilds"
arch=$(uname -m)
[ "$arch" = arm64 ] && arch=aarch64

# entry ID: a catalog entry whose PKGBUILD the test writes itself.
entry() {
	jq -n --arg id "$1" --arg arch "$arch" '{
		id: $id, implementation: "hostile", worker_type: "cpu", version: "1.0",
		platforms: ["linux"], architectures: [$arch], name: $id,
		description: "a hostile PKGBUILD", license: "MIT", build_system: "cc",
		source: { type: "tarball", url: "https://example.invalid/x.tar.gz" }, build: { bin: "hostile" },
		depends: [], makedepends: [], binary_name: "hostile",
		install_path: "/usr/bin/hostile", supported_formats: ["gguf"],
		max_context_length: 4096, supports_streaming: false, supports_batching: false }' \
		>"$CAT/workers/$1.json"
}

# 1. 800 KB of a=1 on one line, and nothing else (so no pkgname).
entry hostile-deep
python3 -c 'import sys; sys.stdout.write("a=1 " * (800 * 1024 // 4) + "\n")' \
	>"$CAT/pkgbuilds/hostile-deep.PKGBUILD"
# 2. 26 lines of a="$a$a" after the fields: 2^26 times the first value.
entry hostile-double
{
	printf 'pkgname=hostile-double\npkgver=1.0\npkgrel=1\narch=(any)\na=0123456789abcdef\n'
	for _ in $(seq 26); do printf 'a="$a$a"\n'; done
} >"$CAT/pkgbuilds/hostile-double.PKGBUILD"
# 3. 600 KB of nested $( in a function body.
entry hostile-nested
python3 -c '
import sys
sys.stdout.write("pkgname=hostile-nested\npkgver=1.0\npkgrel=1\narch=(any)\nbuild() {\n  x=")
sys.stdout.write("$(" * (300 * 1024) + "true" + ")" * (300 * 1024) + "\n}\n")' \
	>"$CAT/pkgbuilds/hostile-nested.PKGBUILD"
# 4. an honest PKGBUILD (its function does nothing; it must still get past the reader)
entry hostile-honest
printf 'pkgname=hostile-honest\npkgver=1.0\npkgrel=1\narch=(any)\nbuild() {\n  echo "$(echo "$(true)")"\n}\n' \
	>"$CAT/pkgbuilds/hostile-honest.PKGBUILD"

start_hive --catalog "$CAT"

# refused ID NEEDLE WHAT: the install of ID fails with NEEDLE in its error; the hive lives on.
refused() {
	local out
	out=$(STREAM_MAX_S=60 run_job "{\"operation\":\"worker_install\",\"worker_id\":\"$1\"}")
	assert_contains "$out" "[ERROR]" "$3: the install fails"
	assert_contains "$out" "$2" "$3: with a clear error"
	assert_eq "$(curl -sf --max-time 5 "$HIVE_URL/health" || echo down)" ok "$3: the hive still answers /health"
	kill -0 "$HIVE_PID" 2>/dev/null || fail "$3: the hive process is gone"
	[ ! -e "$RBEE_HOME/workers/$1" ] || fail "$3: workers/$1 exists"
	assert_eq "$(find "$RBEE_HOME/staging" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" 0 \
		"$3: nothing is left in staging"
}

refused hostile-deep "PKGBUILD does not set 'pkgname'" "800 KB of a=1 on one line"
refused hostile-double "variable expansions produce more than 1024 KiB" "26 lines of a=\"\$a\$a\""
refused hostile-nested "more than 64 levels deep" "600 KB of nested \$( in a function"

# The reader is iterative, not merely luckier: the hive's own error names the line.
out=$(run_job '{"operation":"worker_install","worker_id":"hostile-double"}')
assert_contains "$out" "PKGBUILD line " "the budget error names the line"

# An honest PKGBUILD still gets past the reader (it fails later: it has no sources to build).
out=$(run_job '{"operation":"worker_install","worker_id":"hostile-honest"}')
assert_not_contains "$out" "PKGBUILD line" "nesting within the budget is read"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive is healthy at the end"
pass
