#!/usr/bin/env bash
# bench/install.sh - the install pipeline's overhead: `worker_install` of a PKGBUILD whose phases
# do nothing (`true`; package() installs one file) through a real hive, against running the same
# phases by hand in bash (mkdir, source the PKGBUILD and call each function under `bash -e`, copy
# the tree, sha256 the binary, rename into place). Same PKGBUILD, same machine, same run; prints
# both figures (milliseconds per install, median of RUNS) and the ratio.
#
#   bench/install.sh [BUILD_DIR]          BUILD_DIR defaults to ./build (needs bin/rbee-hive)
#
# Environment: RUNS (20). Needs: curl, jq, sha256sum. What the pipeline adds over the hand run:
# the job engine and its SSE stream, the catalog lookup, the PKGBUILD reader, the sandbox (user
# switch and network namespace when the kernel allows), the lock, metadata.json, and the verify
# step (ldd, a --version probe, sha256, the backend's checks).
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}

[ -x "$build/bin/rbee-hive" ] || die "no '$build/bin/rbee-hive': build first or pass the build directory"
for t in curl jq sha256sum; do command -v $t >/dev/null || die "'$t' is not installed"; done


# The catalog: one entry whose PKGBUILD has no sources and phases that do nothing.
arch=$(uname -m)
mkdir -p "$tmp/cat/workers" "$tmp/cat/pkgbuilds"
cat >"$tmp/cat/workers/bench-true.json" <<EOF
{"id":"bench-true","implementation":"bench","worker_type":"cpu","version":"1.0",
 "platforms":["linux"],"architectures":["x86_64","aarch64"],"name":"bench","description":"phases are true",
 "license":"MIT","build_system":"none","source":{"type":"none","url":"none"},"build":{},"depends":[],"makedepends":[],
 "binary_name":"bench-true","install_path":"/usr/bin/bench-true","supported_formats":["gguf"],
 "supports_streaming":false,"supports_batching":false}
EOF
cat >"$tmp/cat/pkgbuilds/bench-true.PKGBUILD" <<'EOF'
pkgname=bench-true
pkgver=1.0
pkgrel=1
arch=('x86_64' 'aarch64')
prepare() { true; }
build() { true; }
check() { true; }
package() { install -Dm755 /bin/true "$pkgdir/usr/bin/bench-true"; }
EOF

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
now_ms() { date +%s%3N; }

# --- the hive ---
export RBEE_HOME="$tmp/home"
"$build/bin/rbee-hive" --port 0 --port-file "$tmp/port" --catalog "$tmp/cat" >"$tmp/hive.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
[ -s "$tmp/port" ] || die "the hive did not start (see its log: $(tail -3 "$tmp/hive.log"))"
url="http://127.0.0.1:$(cat "$tmp/port")"
for _ in $(seq 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.05; done

install_once() {
	local job out
	job=$(curl -sf -X POST -H 'Content-Type: application/json' \
		--data-binary '{"operation":"worker_install","worker_id":"bench-true"}' "$url/v1/jobs" | jq -r .job_id)
	out=$(curl -sN --max-time 60 "$url/v1/jobs/$job/stream")
	[[ "$out" == *"[DONE]"* ]] || die "install failed: $(grep -a '\[ERROR\]' <<<"$out")"
}
install_once # warm-up (first netns probe, page cache)
hive_ms=$(for _ in $(seq "$RUNS"); do
	t0=$(now_ms); install_once; echo $(( $(now_ms) - t0 ))
done | median)

# --- by hand ---
by_hand_once() {
	local s="$tmp/hand/stage" w="$tmp/hand/worker"
	rm -rf "$tmp/hand"
	mkdir -p "$s/src" "$s/pkg" "$s/final"
	cp "$tmp/cat/pkgbuilds/bench-true.PKGBUILD" "$s/PKGBUILD"
	for fn in prepare build check package; do
		startdir=$s srcdir=$s/src pkgdir=$s/pkg pkgname=bench-true pkgver=1.0 pkgrel=1 \
			bash --noprofile --norc -e -c "source \"\$startdir/PKGBUILD\"; cd \"\$srcdir\"; $fn"
	done
	mv "$s/pkg" "$s/final/pkg"
	cp "$s/PKGBUILD" "$s/final/"
	sha256sum "$s/final/pkg/usr/bin/bench-true" >"$s/final/sha256"
	mv "$s/final" "$w"
}
by_hand_once
hand_ms=$(for _ in $(seq "$RUNS"); do
	t0=$(now_ms); by_hand_once; echo $(( $(now_ms) - t0 ))
done | median)

ratio=$(awk -v a="$hive_ms" -v b="$hand_ms" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
echo "install of a PKGBUILD whose phases are 'true' ($RUNS runs each, median, $arch, $(nproc) CPUs)"
printf '  rbee-hive worker_install   %6s ms\n' "$hive_ms"
printf '  the phases by hand in bash %6s ms\n' "$hand_ms"
echo "  ratio: ${ratio}x"
