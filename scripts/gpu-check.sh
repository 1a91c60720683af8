#!/usr/bin/env bash
# gpu-check.sh - check the cuda backend against nvidia-smi on a real NVIDIA machine.
#
# Builds the project (Release, no tests), runs the hive's plugin probe on the cuda plugin
# (`rbee-hive --probe-plugin`, the same child process the daemon runs) and compares every GPU
# it reports with nvidia-smi and sysfs: count, index, name, UUID, total memory, compute
# capability, driver version, PCI bus id and NUMA node. Prints PASS/FAIL per field and exits 1
# when any field fails, 2 when it cannot run (no nvidia-smi, build failure).
#
#   scripts/gpu-check.sh                  # builds into ./build-gpucheck
#   BUILD_DIR=/tmp/b scripts/gpu-check.sh
#   SKIP_BUILD=1 BUILD_DIR=build scripts/gpu-check.sh
#
# With E2E=1 it then runs the whole product on CUDA, as root: a hive (temporary RBEE_HOME, the
# shipped catalog, --source-mirror $MIRROR) installs llama-cpp-server-cuda with --offline, the
# local hub (tests/models/fake_hub.py) serves $MODEL_GGUF and the hive downloads it, and on each
# GPU a worker is spawned, answers /completion and /v1/chat/completions, shows in nvidia-smi on
# that GPU (by UUID), and is deleted; then the worker and the model are removed. Figures (install
# time, ready time, tokens per second) are printed for docs/BACKENDS.md.
# On a machine without a registry or our -dev libraries, run it from scripts/gpu-bundle.sh's
# bundle:  cd BUNDLE && SKIP_BUILD=1 BUILD_DIR=$PWD E2E=1 MIRROR=$PWD/mirror \
#              MODEL_GGUF=$PWD/model/tiny-llama-f32.gguf scripts/gpu-check.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-gpucheck}
fails=0
checks=0

die() { echo "gpu-check: $*" >&2; exit 2; }
pass() { checks=$((checks + 1)); printf 'PASS  %-28s %s\n' "$1" "$2"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); printf 'FAIL  %-28s %s\n' "$1" "$2"; }
# same LABEL EXPECTED ACTUAL: compare two strings.
same() {
	if [ "$2" == "$3" ]; then pass "$1" "$3"; else fail "$1" "nvidia-smi/sysfs '$2', rbee '$3'"; fi
}
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: run this on a machine with the NVIDIA driver"
command -v jq >/dev/null || die "jq not found: install it (apt-get install jq)"
# Both sides must see every GPU.
unset CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER

if [ -z "${SKIP_BUILD:-}" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRBEE_TESTS=OFF >/dev/null ||
		die "cmake configure failed"
	cmake --build "$build" -j"$(nproc)" >/dev/null || die "build failed"
fi
hive="$build/bin/rbee-hive"
plugin="$build/lib/rbee/backends/rbee_backend_cuda.so"
[ -x "$hive" ] || die "\"$hive\" missing: build first or unset SKIP_BUILD"
[ -f "$plugin" ] || die "\"$plugin\" missing"

probe=$("$hive" --probe-plugin "$plugin") || die "\"$hive --probe-plugin\" failed"
state=$(jq -r '.state' <<<"$probe")
echo "cuda backend: $state: $(jq -r '.reason' <<<"$probe")"
if [ "$state" == "available" ]; then pass "probe state" "$state"; else fail "probe state" "$state"; fi

smi=$(nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,memory.total,compute_cap,driver_version \
	--format=csv,noheader,nounits) || die "nvidia-smi failed"
mapfile -t rows <<<"$smi"
same "gpu count" "${#rows[@]}" "$(jq '.devices | length' <<<"$probe")"

for row in "${rows[@]}"; do
	IFS=, read -r index name uuid bus mem cc driver <<<"$row"
	index=$(trim "$index") name=$(trim "$name") uuid=$(trim "$uuid") mem=$(trim "$mem")
	cc=$(trim "$cc") driver=$(trim "$driver")
	# nvidia-smi prints "00000000:41:00.0"; rbee keys devices by "0000:41:00.0".
	bus=$(trim "$bus" | tr '[:upper:]' '[:lower:]')
	bus=${bus: -12}
	dev=$(jq -c --arg bus "$bus" '.devices[] | select(.pci_bus_id == $bus)' <<<"$probe")
	echo "--- GPU $index ($bus)"
	if [ -z "$dev" ]; then
		fail "gpu $index pci bus id" "no rbee device at $bus"
		continue
	fi
	pass "gpu $index pci bus id" "$bus"
	same "gpu $index index" "$index" "$(jq -r '.index' <<<"$dev")"
	same "gpu $index name" "$name" "$(jq -r '.name' <<<"$dev")"
	same "gpu $index uuid" "$uuid" "$(jq -r '.uuid' <<<"$dev")"
	same "gpu $index compute capability" "$cc" "$(jq -r '.compute_capability' <<<"$dev")"
	same "gpu $index driver version" "$driver" "$(jq -r '.driver_version' <<<"$dev")"
	# Both read the framebuffer size; allow 1% for drivers that reserve some of it differently.
	rmem=$(( $(jq -r '.memory_total_bytes' <<<"$dev") / 1048576 ))
	if [ $(( (rmem > mem ? rmem - mem : mem - rmem) * 100 )) -le "$mem" ]; then
		pass "gpu $index memory total" "$rmem MiB (nvidia-smi $mem MiB)"
	else
		fail "gpu $index memory total" "nvidia-smi $mem MiB, rbee $rmem MiB"
	fi
	rfree=$(( $(jq -r '.memory_free_bytes' <<<"$dev") / 1048576 ))
	if [ "$rfree" -gt 0 ] && [ "$rfree" -le "$rmem" ]; then
		pass "gpu $index memory free" "$rfree MiB"
	else
		fail "gpu $index memory free" "$rfree MiB of $rmem MiB"
	fi
	numa=-1
	if [ -r "/sys/bus/pci/devices/$bus/numa_node" ]; then
		numa=$(cat "/sys/bus/pci/devices/$bus/numa_node")
	fi
	same "gpu $index numa node" "$numa" "$(jq -r '.numa_node // -1' <<<"$dev")"
	echo "      cpuset $(jq -r '.cpuset // "unknown"' <<<"$dev"), nodeset $(jq -r '.nodeset // "unknown"' <<<"$dev")"
done

if [ "${E2E:-0}" = 1 ]; then
	e2e() {
		[ "$(id -u)" -eq 0 ] || die "E2E needs root (builds and workers run as uids of their own)"
		[ -d "${MIRROR:-}" ] || die "E2E needs MIRROR=DIR (scripts/offline-sources.sh DIR)"
		[ -f "${MODEL_GGUF:-}" ] || die "E2E needs MODEL_GGUF=FILE.gguf (tests/real/make_tiny_llama.py)"
		local t rbee="$build/bin/rbee" id=llama-cpp-server-cuda model=rbee/tiny-llama-GGUF
		t=$(mktemp -d /tmp/rbee-gpucheck.XXXXXX)
		chmod 711 "$t"
		local pids=()
		trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$t"' RETURN
		mkdir -p "$t/hub/$model"
		cp "$MODEL_GGUF" "$t/hub/$model/"
		python3 "$root/tests/models/fake_hub.py" --root "$t/hub" --port-file "$t/hub.port" >"$t/hub.log" 2>&1 &
		pids+=($!)
		export RBEE_HOME="$t/home" HF_ENDPOINT NO_COLOR=1
		for _ in $(seq 100); do [ -s "$t/hub.port" ] && break; sleep 0.1; done
		HF_ENDPOINT="http://127.0.0.1:$(cat "$t/hub.port")"
		"$build/bin/rbee-hive" --port 0 --port-file "$t/hive.port" --source-mirror "$MIRROR" \
			>"$t/hive.log" 2>&1 &
		pids+=($!)
		for _ in $(seq 100); do [ -s "$t/hive.port" ] && break; sleep 0.1; done
		export RBEE_HIVE_URL="http://127.0.0.1:$(cat "$t/hive.port")"
		local s0=$SECONDS
		if "$rbee" worker install "$id" --offline >"$t/install.log" 2>&1; then
			pass "install $id" "$((SECONDS - s0)) s, offline from the mirror"
		else
			fail "install $id" "$(tail -n 5 "$t/install.log")"
			cp "$t"/*.log "${OUT:-/tmp}/" 2>/dev/null || true
			return
		fi
		"$rbee" model download "$model" >"$t/download.log" 2>&1 && pass "model download" "$model" ||
			{ fail "model download" "$(tail -n 3 "$t/download.log")"; return; }
		local i uuid out w pid port c tps
		for row in "${rows[@]}"; do
			IFS=, read -r i _ uuid _ <<<"$row"
			i=$(trim "$i") uuid=$(trim "$uuid")
			s0=$SECONDS
			out=$(curl -sN --max-time 600 -X POST -H 'Content-Type: application/json' --data-binary \
				"{\"operation\":\"worker_spawn\",\"model\":\"$model\",\"worker\":\"$id\",\"device\":$i}" \
				"$RBEE_HIVE_URL/v1/jobs" | jq -r .job_id)
			out=$(curl -sN --max-time 600 "$RBEE_HIVE_URL/v1/jobs/$out/stream")
			w=$(awk '/^event: data$/{getline; sub(/^data: /,""); last=$0} END{print last}' <<<"$out")
			pid=$(jq -r '.pid // empty' <<<"$w" 2>/dev/null || true)
			port=$(jq -r '.port // empty' <<<"$w" 2>/dev/null || true)
			if [ -z "$pid" ]; then
				fail "gpu $i spawn" "$(grep -a ERROR <<<"$out" | tail -n 2)"
				continue
			fi
			pass "gpu $i spawn" "pid $pid, ready in $((SECONDS - s0)) s"
			c=$(curl -sf --max-time 120 -H 'Content-Type: application/json' --data-binary \
				'{"prompt":"Once upon a time","n_predict":64,"ignore_eos":true}' \
				"http://127.0.0.1:$port/completion" || true)
			if [ "$(jq -r .tokens_predicted <<<"$c" 2>/dev/null)" = 64 ]; then
				tps=$(jq -r '.timings.predicted_per_second // "?"' <<<"$c")
				pass "gpu $i /completion" "64 tokens, $tps tokens/s"
			else
				fail "gpu $i /completion" "${c:0:200}"
			fi
			c=$(curl -sf --max-time 120 -H 'Content-Type: application/json' --data-binary \
				'{"messages":[{"role":"user","content":"Hello"}],"max_tokens":8,"ignore_eos":true}' \
				"http://127.0.0.1:$port/v1/chat/completions" || true)
			same "gpu $i chat tokens" 8 "$(jq -r .usage.completion_tokens <<<"$c" 2>/dev/null)"
			same "gpu $i nvidia-smi" "$uuid" "$(nvidia-smi --query-compute-apps=pid,gpu_uuid \
				--format=csv,noheader | awk -F', ' -v p="$pid" '$1 == p {print $2}')"
			"$rbee" worker process delete "$pid" >/dev/null 2>&1 && [ ! -e "/proc/$pid" ] &&
				pass "gpu $i delete" "pid $pid gone" || fail "gpu $i delete" "pid $pid remains"
		done
		"$rbee" model delete "$model" >/dev/null 2>&1 && pass "model delete" "$model" ||
			fail "model delete" "$model"
		"$rbee" worker remove "$id" >/dev/null 2>&1 && pass "worker remove" "$id" ||
			fail "worker remove" "$id"
		cp "$t"/*.log "${OUT:-/tmp}/" 2>/dev/null || true
	}
	e2e
fi

echo "gpu-check: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
