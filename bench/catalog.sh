#!/usr/bin/env bash
# bench/catalog.sh - requests/second of rbee-catalog for GET /workers with a generated catalog
# of ENTRIES entries, against a bare libmicrohttpd server (bench/mhd_static.c) answering the very
# same bytes from memory with the same threading. Same load tool (wrk), same machine, same run;
# prints both figures and the ratio.
#
#   bench/catalog.sh [BUILD_DIR]          BUILD_DIR defaults to ./build (needs bin/rbee-catalog)
#
# Environment: ENTRIES (500), DURATION seconds per run (10), CONNECTIONS (64), ROUNDS (2; each
# server is measured ROUNDS times, alternating which goes first, and its best run is kept).
# With taskset and 2+ CPUs the servers run on the first half of the CPUs (one thread each) and
# wrk on the other half, so the load generator does not steal the servers' cores.
# Needs: wrk (Debian: apt-get install wrk), cc, pkg-config, libmicrohttpd-dev, curl.
. "$(dirname "$0")/lib.sh"
ENTRIES=${ENTRIES:-500}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
ncpu=$(nproc)
half=$((ncpu / 2))
if command -v taskset >/dev/null && [ "$half" -ge 1 ]; then
	SERVER_PIN=(taskset -c "0-$((half - 1))")
	CLIENT_PIN=(taskset -c "$half-$((ncpu - 1))")
	SERVER_THREADS=$half
	WRK_THREADS=$((ncpu - half))
else
	SERVER_PIN=()
	CLIENT_PIN=()
	SERVER_THREADS=$ncpu
	WRK_THREADS=$ncpu
fi

[ -x "$build/bin/rbee-catalog" ] || die "no '$build/bin/rbee-catalog': build first or pass the build directory"
command -v wrk >/dev/null || die "wrk is not installed (Debian/Ubuntu: apt-get install wrk)"
command -v pkg-config >/dev/null || die "pkg-config is not installed"


# A catalog of ENTRIES copies of the test fixture's entry, each with its own id and PKGBUILD.
fixture=$src/tests/catalog/fixtures/catalog
mkdir -p "$tmp/cat/workers" "$tmp/cat/pkgbuilds"
for i in $(seq -w 1 "$ENTRIES"); do
	sed "s/test-worker-a/bench-worker-$i/g" "$fixture/workers/test-worker-a.json" \
		>"$tmp/cat/workers/bench-worker-$i.json"
	sed "s/test-worker-a/bench-worker-$i/g" "$fixture/pkgbuilds/test-worker-a.PKGBUILD" \
		>"$tmp/cat/pkgbuilds/bench-worker-$i.PKGBUILD"
done

cc -O2 -o "$tmp/mhd_static" "$here/mhd_static.c" $(pkg-config --cflags --libs libmicrohttpd) -lpthread

wait_port() {
	for _ in $(seq 1 200); do
		[ -s "$1" ] && { cat "$1"; return; }
		sleep 0.05
	done
	die "no port written to $1"
}

"${SERVER_PIN[@]}" "$build/bin/rbee-catalog" --dir "$tmp/cat" --port 0 --port-file "$tmp/cat.port" \
	--threads "$SERVER_THREADS" 2>"$tmp/cat.log" &
pids+=($!)
cat_url="http://127.0.0.1:$(wait_port "$tmp/cat.port")/workers"
curl -sf -o "$tmp/workers.json" "$cat_url" || die "rbee-catalog did not answer GET /workers"
n=$(grep -o '"id":"bench-worker-' "$tmp/workers.json" | wc -l)
[ "$n" -eq "$ENTRIES" ] || die "rbee-catalog serves $n entries, expected $ENTRIES (see $tmp/cat.log)"

"${SERVER_PIN[@]}" "$tmp/mhd_static" "$tmp/workers.json" "$tmp/base.port" "$SERVER_THREADS" &
pids+=($!)
base_url="http://127.0.0.1:$(wait_port "$tmp/base.port")/workers"
curl -sf -o "$tmp/base.json" "$base_url"
cmp -s "$tmp/workers.json" "$tmp/base.json" || die "the baseline does not answer the same bytes"

# rps URL: one wrk run, prints requests/second.
rps() {
	"${CLIENT_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$1" |
		awk '/^Requests\/sec:/ {print $2} /Non-2xx/ {print "non-2xx answers" > "/dev/stderr"; exit 1}'
}
best() { printf '%s\n' "$@" | sort -g | tail -1; }

body=$(wc -c <"$tmp/workers.json")
echo "GET /workers: $ENTRIES entries, $body bytes; wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s," \
	"$ROUNDS rounds, best kept; $ncpu CPUs, servers on ${SERVER_PIN[*]:-any} with $SERVER_THREADS threads"
wrk -t1 -c4 -d1s "$cat_url" >/dev/null
wrk -t1 -c4 -d1s "$base_url" >/dev/null
cat_runs=() base_runs=()
for round in $(seq 1 "$ROUNDS"); do
	# Alternate which server goes first, so a drift in machine load favours neither.
	if [ $((round % 2)) -eq 1 ]; then
		base_runs+=("$(rps "$base_url")")
		cat_runs+=("$(rps "$cat_url")")
	else
		cat_runs+=("$(rps "$cat_url")")
		base_runs+=("$(rps "$base_url")")
	fi
done
c=$(best "${cat_runs[@]}")
b=$(best "${base_runs[@]}")
printf '%-34s %12s req/s   (runs: %s)\n' "bare libmicrohttpd (mhd_static)" "$b" "${base_runs[*]}"
printf '%-34s %12s req/s   (runs: %s)\n' "rbee-catalog" "$c" "${cat_runs[*]}"
awk -v c="$c" -v b="$b" 'BEGIN { printf "ratio rbee-catalog / baseline: %.3f\n", c / b }'
