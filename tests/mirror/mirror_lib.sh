# mirror_lib.sh - helpers for the source mirror tests; source after tests/lib.sh and
# tests/install/install_lib.sh.
#
#   make_repo DIR              a git repository: 'hello' says "v1" at tag v1 and on branch rel/1,
#                              "v2" one commit later (master); sets V1 and V2 (commit ids)
#   mirror_catalog             an empty test catalog in $cat (entries come from add_worker)
#   add_worker ID SOURCES SUMS a worker whose package() installs usr/bin/ID, a script printing
#                              what the sources held: "data=<data.txt> git=<src/hello>"
#   serve DIR                  python's http.server on a free port serving DIR; sets WWW_URL
#                              and WWW_PID
#   sha FILE                   its sha256
command -v git >/dev/null || { echo "git is not installed: skipping"; exit 0; }

make_repo() {
	local r=$1
	mkdir -p "$r"
	git -C "$r" init -q
	echo v1 >"$r/hello"
	git -C "$r" add hello
	git -C "$r" -c user.name=t -c user.email=t@t commit -qm v1
	git -C "$r" tag v1
	git -C "$r" branch rel/1
	V1=$(git -C "$r" rev-parse HEAD)
	echo v2 >"$r/hello"
	git -C "$r" -c user.name=t -c user.email=t@t commit -qam v2
	V2=$(git -C "$r" rev-parse HEAD)
}

mirror_catalog() {
	SOURCE_URL=http://127.0.0.1:9 SOURCE_PORT=9 make_test_catalog "$T/catalog"
	cat="$T/catalog"
}

add_worker() { # ID SOURCES SUMS
	entry "$1" "$1"
	pkgbuild "$1" "$2" "$3" "package() {
	install -d \"\$pkgdir/usr/bin\"
	d=\$(cat \"\$srcdir/data.txt\" 2>/dev/null || echo none)
	g=\$(cat \"\$srcdir/src/hello\" 2>/dev/null || echo none)
	printf '#!/bin/sh\\necho data=%s git=%s\\n' \"\$d\" \"\$g\" >\"\$pkgdir/usr/bin/$1\"
	chmod 755 \"\$pkgdir/usr/bin/$1\"
}"
}

serve() {
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" >"$T/www.log" 2>&1 &
	WWW_PID=$!
	track $WWW_PID
	WAIT_S=10 wait_for grep -q 'port [0-9]' "$T/www.log" || fail "http.server did not start"
	WWW_URL="http://127.0.0.1:$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$T/www.log" | head -1)"
}

# serve_repo: the test repository (make_repo) as a bare repository over dumb http and a file
# data.txt ("DATA1") beside it, served from $T/www; sets WWW_URL, WWW_PID and V1.
serve_repo() {
	make_repo "$T/repo"
	mkdir -p "$T/www"
	echo DATA1 >"$T/www/data.txt"
	git clone -q --bare "$T/repo" "$T/www/x.git"
	git -C "$T/www/x.git" update-server-info
	serve "$T/www"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# installed ID: what the installed worker prints.
installed() { "$RBEE_HOME/workers/$1/pkg/usr/bin/$1"; }
