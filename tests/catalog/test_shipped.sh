# The catalog that ships in packaging/catalog loads cleanly: every entry valid, ids match their
# files, every PKGBUILD present, valid bash, and consistent with its entry. Nothing is built
# (that needs the internet); rbee-catalog's default directory is the shipped one.
. "$RBEE_SRC/tests/lib.sh"

SHIPPED="$RBEE_SRC/packaging/catalog"
start_catalog "$SHIPPED"
assert_not_contains "$(cat "$T/catalog.log")" "skipping" "no shipped entry is skipped"

files=$(cd "$SHIPPED/workers" && ls *.json | sed 's/\.json$//' | sort | paste -sd,)
served=$(curl -sf "$CATALOG_URL/workers" | jq -r '[.workers[].id] | join(",")')
assert_eq "$served" "$files" "every workers/*.json is served"
assert_eq "$served" \
	"llama-cpp-server-cpu,llama-cpp-server-cuda,llama-cpp-server-metal,llm-worker-rbee-cpu,llm-worker-rbee-cuda,llm-worker-rbee-metal" \
	"the shipped workers are the rbee workers and llama-server builds"

fields='id implementation worker_type version platforms architectures name description license
	pkgbuild_url build_system source build depends makedepends binary_name install_path
	supported_formats max_context_length supports_streaming supports_batching launch'
arch_ok() { # arch_ok PKGBUILD_ARCH... -- ENTRY_ARCH...: every entry arch is in the PKGBUILD's
	local p=" $1 "
	for a in $2; do [[ "$p" == *" $a "* ]] || return 1; done
}
for f in "$SHIPPED"/workers/*.json; do
	id=$(basename "$f" .json)
	entry=$(curl -sf "$CATALOG_URL/workers/$id")
	missing=$(jq -r --arg f "$fields" '. as $e | [$f | splits("[ \t\n]+") | select(. != "")
		| . as $k | select($e | has($k) | not)] | join(" ")' <<<"$entry")
	assert_eq "$missing" "" "$id has every SPEC field and launch"
	assert_eq "$(jq -r .worker_type <<<"$entry")" "${id##*-}" "$id worker_type matches its name"

	pkg="$SHIPPED/pkgbuilds/$id.PKGBUILD"
	curl -sf "$CATALOG_URL/workers/$id/PKGBUILD" >"$T/p" || fail "$id PKGBUILD not served"
	cmp -s "$T/p" "$pkg" || fail "$id PKGBUILD differs"
	bash -n "$pkg" || fail "$id PKGBUILD is not valid bash"
	ok "$id PKGBUILD served and valid bash"
	# The metadata assignments only (no functions run); this is our own file.
	meta=$(bash -c 'source "$1"; echo "$pkgname|$pkgver|${arch[*]}|$(declare -F build >/dev/null && echo build)|$(declare -F package >/dev/null && echo package)|${#source[@]}|${#sha256sums[@]}|${pkgrel}"' _ "$pkg")
	IFS='|' read -r pkgname pkgver parch has_build has_package nsrc nsum pkgrel <<<"$meta"
	assert_eq "$pkgname" "$id" "$id pkgname is the id"
	assert_eq "$pkgver" "$(jq -r .version <<<"$entry")" "$id pkgver is the entry's version"
	assert_ne "$pkgrel" "" "$id has a pkgrel"
	arch_ok "$parch" "$(jq -r '.architectures | join(" ")' <<<"$entry")" ||
		fail "$id: PKGBUILD arch ($parch) lacks an entry architecture"
	ok "$id PKGBUILD arch covers the entry's architectures"
	assert_eq "$has_build $has_package" "build package" "$id has build() and package()"
	assert_eq "$nsrc" "$nsum" "$id has one checksum per source"
	bin=$(jq -r .binary_name <<<"$entry")
	assert_contains "$(cat "$pkg")" "\"\$pkgdir$(jq -r .install_path <<<"$entry" | sed "s|$bin\$||")" \
		"$id package() installs into the entry's install_path"
done

# Every git source is pinned: a tag or a commit, never a moving branch.
assert_eq "$(grep -l '#branch=\|git+[^"]*\.git")' "$SHIPPED"/pkgbuilds/*.PKGBUILD)" "" \
	"no shipped PKGBUILD follows a branch"

# The rbee workers build their own feature's binary from the workspace's target directory.
for kind in cpu cuda metal; do
	pkg="$SHIPPED/pkgbuilds/llm-worker-rbee-$kind.PKGBUILD"
	assert_contains "$(cat "$pkg")" "_feature=$kind" "llm-worker-rbee-$kind builds feature $kind"
	grep -Eq '^_commit=[0-9a-f]{40}$' "$pkg" || fail "llm-worker-rbee-$kind is not pinned to a commit"
	assert_contains "$(cat "$pkg")" '#commit=$_commit")' "llm-worker-rbee-$kind builds its pinned commit"
	assert_eq "$(jq -r .source.commit "$SHIPPED/workers/llm-worker-rbee-$kind.json")" \
		"$(sed -n 's/^_commit=//p' "$pkg")" "llm-worker-rbee-$kind entry names the same commit"
	assert_contains " $(bash -c 'source "$1"; echo "${makedepends[*]}"' _ "$pkg") " " cargo " \
		"llm-worker-rbee-$kind declares cargo"
	assert_contains "$(cat "$pkg")" '--no-default-features --features "$_feature" --bin "$pkgname"' \
		"llm-worker-rbee-$kind builds only its binary"
done
# llama-server is pinned to a release tag and built without shared libraries.
for kind in cpu cuda metal; do
	pkg="$SHIPPED/pkgbuilds/llama-cpp-server-$kind.PKGBUILD"
	assert_contains "$(cat "$pkg")" '#tag=v$pkgver' "llama-cpp-server-$kind is pinned to its tag"
	assert_contains "$(cat "$pkg")" "-DBUILD_SHARED_LIBS=OFF" "llama-cpp-server-$kind is self-contained"
	# Offline and lean: no web-UI download at configure time, no HTTPS client, no tests/examples.
	for flag in -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
		-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF; do
		assert_contains "$(cat "$pkg")" "$flag" "llama-cpp-server-$kind sets $flag"
	done
	assert_eq "$(jq -c '[.launch.args | index("--threads"), index("--threads-batch")] | map(. != null)' \
		"$SHIPPED/workers/llama-cpp-server-$kind.json")" '[true,true]' \
		"llama-cpp-server-$kind passes --threads and --threads-batch"
	assert_eq "$(jq -r '.launch.args as $a | [$a | index("--threads"), index("--threads-batch")]
		| map($a[. + 1]) | join(" ")' "$SHIPPED/workers/llama-cpp-server-$kind.json")" \
		"{threads} {threads}" "llama-cpp-server-$kind threads come from the placement"
done

# Without --dir, rbee-catalog serves the copy in the build tree's share/rbee/catalog.
stop_default() { kill "$DEFAULT_PID" 2>/dev/null || true; }
"$BIN/rbee-catalog" --port 0 --port-file "$T/default.port" >"$T/default.log" 2>&1 &
DEFAULT_PID=$!
track $DEFAULT_PID
url="http://127.0.0.1:$(wait_port_file "$T/default.port")"
wait_for curl -sf "$url/health" || fail "default catalog server not healthy"
assert_eq "$(curl -sf "$url/workers" | jq -r '[.workers[].id] | join(",")')" "$served" \
	"the default directory is the shipped catalog"
assert_contains "$(cat "$T/default.log")" "share/rbee/catalog" "the log names the directory served"
stop_default
pass
