#!/usr/bin/env bash
# bench/install.sh - two modes.
#
# Overhead mode (default): `worker_install` of a PKGBUILD whose phases do nothing (`true`;
# package() installs one file) through a real hive, against running the same phases by hand in
# bash (mkdir, source the PKGBUILD and call each function under `bash -e`, copy the tree, sha256
# the binary, rename into place). Same PKGBUILD, same machine, same run; prints both figures
# (milliseconds per install, median of RUNS) and the ratio.
#
#   bench/install.sh [BUILD_DIR]          BUILD_DIR defaults to ./build (needs bin/rbee-hive)
#
# Environment: RUNS (20). Needs: curl, jq, sha256sum. What the pipeline adds over the hand run:
# the job engine and its SSE stream, the catalog lookup, the PKGBUILD reader, the sandbox (user
# switch and network namespace when the kernel allows), the lock, metadata.json, and the verify
# step (ldd, a --version probe, sha256, the backend's checks).
#
# Build mode (SRC set): a REAL build through the hive against `cmake --build -jN` of the same
# tree by hand, N being the hive's job count (CMAKE_BUILD_PARALLEL_LEVEL from the backend's
# build_env: the PUs the hive may use).
#
#   SRC=DIR|BUNDLE [TARGET=llama-server] bench/install.sh [BUILD_DIR]
#
# SRC is a CMake source tree, or a git bundle (e.g. the llama.cpp.tag-v0.4.0.bundle that
# scripts/offline-sources.sh writes; cloned first). The tree (without .git) is packed once into
# a tarball. The hive installs a worker from a local directory catalog whose PKGBUILD has that
# tarball as its source: build() configures the tree with CMAKE_FLAGS, then runs `cmake --build
# build --target TARGET` (the parallelism comes from the hive's build environment) and times
# that step alone; package() installs a small script (TARGET may be a library). The baseline
# extracts the same tarball into a fresh directory, configures it with the same flags and times
# `cmake --build build --target TARGET -jN` alone. Printed: both build times, the ratio
# baseline/hive (1.0: the sandbox costs nothing; >= 0.9 expected) and the whole install's time.
#   TARGET         the CMake target (llama-server; ggml-base is a small one)
#   CMAKE_FLAGS    the configure flags of both sides (default: Release, no ccache, no tests or
#                  examples, no OpenSSL, no web UI download: llama.cpp's, ignored elsewhere)
#   ROUNDS         builds of each side, alternating hive and baseline, median reported (1)
#   BENCH_TIMEOUT  seconds one install through the hive may take (7200)
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}

[ -x "$build/bin/rbee-hive" ] || die "no '$build/bin/rbee-hive': build first or pass the build directory"
for t in curl jq sha256sum; do command -v $t >/dev/null || die "'$t' is not installed"; done

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
# cpu_ms "U0 S0 U1 S1": CPU milliseconds between two `times` lines of children ("1m2.345s").
cpu_ms() {
	awk '{ for (i = 1; i <= 4; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); v[i] = p[1] * 60 + p[2] }
	       printf "%d\n", (v[3] + v[4] - v[1] - v[2]) * 1000 }' <<<"$1"
}
now_ms() { date +%s%3N; }

# start_hive CATALOG: a hive on a free port, RBEE_HOME in $tmp; sets url.
start_hive() {
	export RBEE_HOME="$tmp/home"
	"$build/bin/rbee-hive" --port 0 --port-file "$tmp/port" --catalog "$1" >"$tmp/hive.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
	[ -s "$tmp/port" ] || die "the hive did not start (see its log: $(tail -3 "$tmp/hive.log"))"
	url="http://127.0.0.1:$(cat "$tmp/port")"
	for _ in $(seq 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.05; done
}

# install_stream ID [MAX_S]: worker_install through the hive; prints the whole stream.
install_stream() {
	local job
	job=$(curl -sf -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"operation\":\"worker_install\",\"worker_id\":\"$1\"}" "$url/v1/jobs" | jq -r .job_id)
	curl -sN --max-time "${2:-60}" "$url/v1/jobs/$job/stream"
}

arch=$(uname -m)

# ---------------------------------------------------------------------------- build mode ---
if [ -n "${SRC:-}" ]; then
	TARGET=${TARGET:-llama-server}
	ROUNDS=${ROUNDS:-1}
	CMAKE_FLAGS=${CMAKE_FLAGS:--DCMAKE_BUILD_TYPE=Release -DGGML_CCACHE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF}
	[[ "$TARGET" =~ ^[A-Za-z0-9_.+-]+$ ]] || die "TARGET='$TARGET' is not a CMake target name"
	[[ "$CMAKE_FLAGS" =~ ^[-A-Za-z0-9_=.,:/+\ ]*$ ]] ||
		die "CMAKE_FLAGS may hold only -A-Za-z0-9_=.,:/+ and blanks (it is written into a PKGBUILD)"
	[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS='$ROUNDS' is not a positive number"
	command -v cmake >/dev/null || die "'cmake' is not installed"
	# The hive's parallelism is what is measured: nothing of the caller's may override it.
	unset MAKEFLAGS CMAKE_BUILD_PARALLEL_LEVEL CARGO_BUILD_JOBS CMAKE_GENERATOR || true
	tree=$SRC
	if [ -f "$SRC" ]; then
		git clone -q "$SRC" "$tmp/tree" || die "cannot clone the bundle '$SRC'"
		tree=$tmp/tree
	fi
	[ -f "$tree/CMakeLists.txt" ] || die "SRC='$SRC' is not a CMake source tree (no CMakeLists.txt)"
	cat=$tmp/cat
	mkdir -p "$cat/workers" "$cat/pkgbuilds"
	tar -C "$tree" --exclude=.git --transform 's,^\.,tree,' -cf "$cat/bench-src.tar" . ||
		die "cannot pack '$tree'"
	sum=$(sha256sum "$cat/bench-src.tar" | cut -d' ' -f1)
	cat >"$cat/workers/bench-build.json" <<EOF
{"id":"bench-build","implementation":"bench","worker_type":"cpu","version":"1.0",
 "platforms":["linux"],"architectures":["x86_64","aarch64"],"name":"bench build",
 "description":"builds $TARGET of a CMake tree","license":"MIT","build_system":"cmake",
 "source":{"type":"tarball","url":"bench-src.tar"},"build":{},"depends":[],"makedepends":["cmake"],
 "binary_name":"bench-build","install_path":"/usr/bin/bench-build","supported_formats":["gguf"],
 "supports_streaming":false,"supports_batching":false}
EOF
	# build() reports the parallelism it got and the build step's own time.
	{
		printf 'pkgname=bench-build\npkgver=1.0\npkgrel=1\narch=(x86_64 aarch64)\n'
		printf 'source=("bench-src.tar")\nsha256sums=(%s)\n' "$sum"
		printf 'build() {\n\tcd "$srcdir/tree"\n'
		printf '\techo "BENCH_JOBS=${CMAKE_BUILD_PARALLEL_LEVEL:-unset}"\n'
		printf '\tcmake -S . -B build %s >/dev/null\n' "$CMAKE_FLAGS"
		printf '\ttimes >../times0; local t0=$(date +%%s%%3N)\n'
		printf '\tcmake --build build --target %s\n' "$TARGET"
		printf '\techo "BENCH_BUILD_MS=$(( $(date +%%s%%3N) - t0 ))"\n'
		printf '\ttimes >../times1\n'
		printf '\techo "BENCH_CPU=$(tail -1 ../times0) $(tail -1 ../times1)"\n}\n'
		printf 'package() {\n\tinstall -d "$pkgdir/usr/bin"\n'
		printf '\tprintf "#!/bin/sh\\necho bench-build 1.0\\n" >"$pkgdir/usr/bin/bench-build"\n'
		printf '\tchmod 755 "$pkgdir/usr/bin/bench-build"\n}\n'
	} >"$cat/pkgbuilds/bench-build.PKGBUILD"
	start_hive "$cat"
	# The baseline builds where the hive does: below /var/tmp when the hive is root (its build
	# user cannot enter $tmp, so it builds there), else beside the hive's home.
	base_parent=$tmp
	[ "$(id -u)" = 0 ] && base_parent=/var/tmp
	jobs_n=
	hive_once() {
		local out t0
		t0=$(now_ms)
		out=$(install_stream bench-build "${BENCH_TIMEOUT:-7200}")
		[[ "$out" == *"data: [DONE]"* ]] ||
			die "the hive's install failed: $(grep -a -v '^$' <<<"$out" | tail -n 5)"
		echo "$(( $(now_ms) - t0 ))" >>"$tmp/hive_total"
		jobs_n=$(sed -n 's/^data: BENCH_JOBS=//p' <<<"$out" | tail -1)
		sed -n 's/^data: BENCH_BUILD_MS=//p' <<<"$out" | tail -1 >>"$tmp/hive_build"
		cpu_ms "$(sed -n 's/^data: BENCH_CPU=//p' <<<"$out" | tail -1)" >>"$tmp/hive_cpu"
		grep -c '"stage":"building","bytes_done":[0-9]*,"bytes_total":[1-9]' <<<"$out" \
			>"$tmp/progress_events" || true
		[[ "$jobs_n" =~ ^[0-9]+$ ]] ||
			die "the hive's build environment sets no CMAKE_BUILD_PARALLEL_LEVEL ('$jobs_n')"
	}
	base_once() {
		local d t0
		d=$(mktemp -d "$base_parent/rbee-bench-base.XXXXXX")
		tar -C "$d" -xf "$cat/bench-src.tar"
		# shellcheck disable=SC2086 # CMAKE_FLAGS is a list of words
		(cd "$d/tree" && cmake -S . -B build $CMAKE_FLAGS >"$tmp/base-configure.log" 2>&1) ||
			{ rm -rf "$d"; die "the baseline's configure failed: $(tail -n 5 "$tmp/base-configure.log")"; }
		times >"$tmp/times0" # (not in a subshell: it would count its own children only)
		t0=$(now_ms)
		cmake --build "$d/tree/build" --target "$TARGET" -j "$jobs_n" >"$tmp/base.log" 2>&1 ||
			{ rm -rf "$d"; die "the baseline's build failed: $(tail -n 5 "$tmp/base.log")"; }
		echo "$(( $(now_ms) - t0 ))" >>"$tmp/base_build"
		times >"$tmp/times1"
		cpu_ms "$(tail -1 "$tmp/times0") $(tail -1 "$tmp/times1")" >>"$tmp/base_cpu"
		rm -rf "$d"
	}
	# The hive goes first in odd rounds and second in even ones (it must go first once: the
	# baseline takes its -j from it), so neither side always gets the warmer caches.
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then hive_once; base_once; else base_once; hive_once; fi
	done
	hive_ms=$(median <"$tmp/hive_build")
	base_ms=$(median <"$tmp/base_build")
	total_ms=$(median <"$tmp/hive_total")
	hive_cpu=$(median <"$tmp/hive_cpu")
	base_cpu=$(median <"$tmp/base_cpu")
	ratio=$(awk -v a="$base_ms" -v b="$hive_ms" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	echo "build of CMake target '$TARGET' ($ROUNDS round(s) each, median, $arch, $(nproc) CPUs, -j$jobs_n)"
	printf '  cmake --build by hand               %8s ms  (CPU %s ms)\n' "$base_ms" "$base_cpu"
	printf "  cmake --build in the hive's build() %8s ms  (CPU %s ms; whole install %s ms, %s building progress events)\n" \
		"$hive_ms" "$hive_cpu" "$total_ms" "$(cat "$tmp/progress_events")"
	echo "  ratio baseline/hive: ${ratio} (wall clock of the build step)"
	exit 0
fi

# ------------------------------------------------------------------------- overhead mode ---
# The catalog: one entry whose PKGBUILD has no sources and phases that do nothing.
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

# --- the hive ---
start_hive "$tmp/cat"

install_once() {
	local out
	out=$(install_stream bench-true 60)
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
