#!/usr/bin/env bash
# bench/models.sh - model download throughput of the hive (libcurl into a .part file with
# writeback started on the way, sha256 computed on a second thread while streaming, fsync,
# rename, GGUF header read, metadata) as a ratio to `curl -o` of the very same file from the very
# same server, plus the hive's peak RSS during it.
#
#   bench/models.sh [BUILD_DIR]          BUILD_DIR defaults to ./build (needs bin/rbee-hive)
#
# The server is tests/models/fake_hub.py, which sends file bodies with sendfile(2), so it is not
# the bottleneck (compare with the curl figure). The file is SIZE_MIB of random data behind a
# GGUF header, in the page cache for both runs. Each side runs ROUNDS times, alternating, and
# its best run is kept; every run starts right after the previous run's file was deleted.
# Environment: SIZE_MIB (1024), ROUNDS (2). Needs: python3, curl, jq.
. "$(dirname "$0")/lib.sh"
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-2}

[ -x "$build/bin/rbee-hive" ] || die "no '$build/bin/rbee-hive': build first or pass the build directory"
for t in python3 curl jq; do command -v $t >/dev/null || die "$t is not installed"; done

now() { date +%s.%N; }
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; die "no $1"; }

mkdir -p "$tmp/hub/bench/big-GGUF"
file=$tmp/hub/bench/big-GGUF/big.Q4_K_M.gguf
python3 "$src/tests/models/make_gguf.py" "$file" --pad-mib "$SIZE_MIB"
bytes=$(stat -c %s "$file")
python3 "$src/tests/models/fake_hub.py" --root "$tmp/hub" --port-file "$tmp/hub.port" &
pids+=($!)
wait_file "$tmp/hub.port"
hub="http://127.0.0.1:$(cat "$tmp/hub.port")"
# Warm the page cache and the hub's sha256 cache, so neither run pays for them; the unmeasured
# download gives the first measured run a file to delete (see fresh).
cat "$file" >/dev/null
curl -sf "$hub/api/models/bench/big-GGUF?blobs=true" >/dev/null
curl -sf -L -o "$tmp/curl.out" "$hub/bench/big-GGUF/resolve/main/big.Q4_K_M.gguf"

# fresh: delete what earlier runs downloaded and flush the disk, so that every run starts alike,
# right after a file of the same size left the page cache. This matters on VMs that hand freed
# memory back to the host (free page reporting, as on the development VM): memory freed seconds
# ago costs several times more to fill again than memory freed just now, and a run that follows
# another tool's run and deletes nothing would pay that while the others do not.
fresh() {
	rm -rf "$tmp/curl.out" "$tmp"/home-*
	sync
}

# run_curl [sync]: curl -o, and with "sync" also fsync the file as the hive does before rename.
run_curl() {
	fresh
	local t0 t1
	t0=$(now)
	curl -sf -L -o "$tmp/curl.out" "$hub/bench/big-GGUF/resolve/main/big.Q4_K_M.gguf"
	[ "${1:-}" = sync ] && sync "$tmp/curl.out"
	t1=$(now)
	[ "$(stat -c %s "$tmp/curl.out")" = "$bytes" ] || die "curl fetched a short file"
	echo "$t1 - $t0" | bc -l
}

run_hive() {
	local home=$tmp/home-$1 t0 t1 job out
	fresh
	mkdir -p "$home"
	RBEE_HOME=$home HF_ENDPOINT=$hub "$build/bin/rbee-hive" --port 0 --port-file "$tmp/hive.port" \
		>"$tmp/hive.log" 2>&1 &
	local pid=$!
	pids+=($pid)
	wait_file "$tmp/hive.port"
	local url="http://127.0.0.1:$(cat "$tmp/hive.port")"
	t0=$(now)
	job=$(curl -sf -X POST --data-binary '{"operation":"model_download","model":"bench/big-GGUF"}' \
		"$url/v1/jobs" | jq -r .job_id)
	out=$(curl -sN "$url/v1/jobs/$job/stream")
	t1=$(now)
	grep -q '\[DONE\]' <<<"$out" || die "the hive's download failed: $(tail -3 <<<"$out")"
	grep -q "matches the hub's" <<<"$out" || die "the hive did not verify the sha256"
	local hwm
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$tmp/hive.port"
	echo "$(echo "$t1 - $t0" | bc -l) $hwm"
}

best_curl=999999 best_sync=999999 best_hive=999999 hwm_max=0
for r in $(seq "$ROUNDS"); do
	c=$(run_curl)
	cs=$(run_curl sync)
	read -r h hwm <<<"$(run_hive "$r")"
	printf 'round %d: curl -o %.2f s, curl -o + fsync %.2f s, hive %.2f s, hive peak RSS %d KiB\n' \
		"$r" "$c" "$cs" "$h" "$hwm"
	best_curl=$(echo "if ($c < $best_curl) $c else $best_curl" | bc -l)
	best_sync=$(echo "if ($cs < $best_sync) $cs else $best_sync" | bc -l)
	best_hive=$(echo "if ($h < $best_hive) $h else $best_hive" | bc -l)
	[ "$hwm" -gt "$hwm_max" ] && hwm_max=$hwm
done
mib=$(echo "$bytes / 1048576" | bc -l)
printf '\nfile: %.0f MiB (%d bytes)\n' "$mib" "$bytes"
printf 'curl -o:            %.2f s  %.0f MiB/s\n' "$best_curl" "$(echo "$mib / $best_curl" | bc -l)"
printf 'curl -o + fsync:    %.2f s  %.0f MiB/s\n' "$best_sync" "$(echo "$mib / $best_sync" | bc -l)"
printf 'hive model_download %.2f s  %.0f MiB/s (sha256 beside the transfer, fsync, verify, GGUF, metadata)\n' \
	"$best_hive" "$(echo "$mib / $best_hive" | bc -l)"
printf 'throughput ratio hive/curl: %.2f\n' "$(echo "$best_curl / $best_hive" | bc -l)"
printf 'throughput ratio hive/(curl + fsync): %.2f\n' "$(echo "$best_sync / $best_hive" | bc -l)"
printf 'hive peak RSS (VmHWM): %d KiB\n' "$hwm_max"
