#!/bin/bash
# Build progress: the build tool's own "[ 42%]" (cmake/make), "[123/456]" (ninja) and cargo
# "Building [==>  ] 3/10" lines in build() become the job's "building" progress events, at most
# a few per second however fast the lines come, and `rbee worker install` draws them as counts.
. "$RBEE_SRC/tests/lib.sh"
. "$RBEE_SRC/tests/install/install_lib.sh"

start_source_server
make_test_catalog "$T/catalog"
cat="$T/catalog"

entry rbee-test-progress true
pkgbuild rbee-test-progress "" "" "$(cat <<'BODY'
build() {
	for p in 10 20 30 40 50 60 70 80 90 100; do
		printf '[%3d%%] Building C object step%d.o\n' "$p" "$p"
		sleep 0.3
	done
	# a burst far faster than anyone wants events: ninja counts, then cargo's bar
	for i in $(seq 1 3000); do echo "[$i/3000] Building CXX object f$i.o"; done
	echo "    Building [=====>    ] 7/9: serde, syn"
	echo "[ 999%] hostile: no progress"
	echo "[5/3] hostile: no progress"
}
package() {
	echo "[100%] Built target (package)"
	echo "[1/1] Installing (package)"
	install -Dm755 /bin/true "$pkgdir/usr/bin/true"
}
BODY
)"

start_hive --catalog "$cat"
t0=$(date +%s%N)
out=$(install_stream rbee-test-progress)
assert_contains "$out" "data: [DONE]" "the install succeeds"
progress=$(awk '/^event: progress$/{getline; sub(/^data: /,""); print}' <<<"$out")
building=$(jq -c 'select(.stage == "building")' <<<"$progress")

# every percentage of the slow part, in order, as done/100
pct=$(jq -r 'select(.bytes_total == 100) | .bytes_done' <<<"$building" | tr '\n' ' ')
assert_eq "$pct" "10 20 30 40 50 60 70 80 90 100 " \
	"each [ NN%] line of build() is a building progress event NN/100"

# the burst: 3000 lines, only a few events, and the last figures of it arrive
burst=$(jq -c 'select(.bytes_total == 3000)' <<<"$building" | wc -l)
[ "$burst" -ge 1 ] && [ "$burst" -le 8 ] ||
	fail "3000 ninja lines in a burst gave $burst progress events (expected 1 to 8)"
ok "3000 ninja lines in a burst are throttled to $burst progress events"
assert_contains "$building" '"bytes_done":7,"bytes_total":9' \
	"cargo's bar (the command's last figures) is reported when build() ends"
assert_not_contains "$building" '"bytes_total":3,' "a [5/3] line is no progress"
assert_not_contains "$building" '"bytes_done":999' "a [ 999%] line is no progress"

# in all, the build's events stay at a few per second
secs=$(( ($(date +%s%N) - t0) / 1000000000 + 1 ))
n=$(wc -l <<<"$building")
[ "$n" -le $((secs * 5 + 2)) ] || fail "$n building events in ${secs}s: not throttled"
ok "$n building progress events in ${secs}s"

# package() is its own stage: its "[100%]" and "[1/1]" lines are no building progress
after=$(awk '/"stage":"packaging"/{p=1} p' <<<"$progress")
assert_not_contains "$after" '"stage":"building"' "no building progress from package()"
# the lines themselves still reach the narration and build.log
assert_contains "$out" "data: [ 40%] Building C object step40.o" "the lines are narrated"
grep -q '^\[ 40%\] Building C object step40.o$' "$RBEE_HOME/workers/rbee-test-progress/build.log" ||
	fail "the line is not in build.log"
ok "the lines are in build.log"

# the CLI draws the building progress as counts, not bytes
cli=$("$BIN/rbee" worker install rbee-test-progress 2>&1) || fail "rbee worker install failed: $cli"
assert_contains "$cli" "building: 100%  100/100" "rbee worker install shows build progress as counts"
assert_not_contains "$cli" "100 B/100 B" "and not as bytes"
assert_eq "$(curl -sf "$HIVE_URL/health")" ok "the hive still answers /health"
pass
