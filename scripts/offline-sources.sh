#!/usr/bin/env bash
# scripts/offline-sources.sh DIR - fill a source mirror (docs/MIRROR.md) with everything the
# shipped llama-cpp-server-{cpu,cuda,metal} entries need, from the npm registry only.
#
# The npm package node-llama-cpp@3.21.1 ships llama.cpp's source as a git bundle
# (llama/gitRelease.bundle, one squashed commit) and names its release in
# llama/binariesGithubRelease.json. This script fetches the package with `npm pack` (so npm's own
# registry configuration applies: no address is written here), checks that the release is the
# one the shipped PKGBUILDs pin (their pkgver, tag v$pkgver), and writes
#
#   DIR/llama.cpp.tag-v<pkgver>.bundle    a git bundle holding refs/tags/v<pkgver>
#
# which the hive takes instead of cloning github.com when started with --source-mirror DIR
# (or RBEE_SOURCE_MIRROR=DIR). The bundle's commit is npm's squashed one, not upstream's: the
# PKGBUILDs pin a tag, not a commit, so the same PKGBUILD builds from either.
# Needs: npm, git, tar, jq (scripts/deps.sh real). Nothing else is fetched.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "offline-sources: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/offline-sources.sh DIR"
dir=$1
for t in npm git tar jq; do
	command -v "$t" >/dev/null || die "'$t' is not installed (scripts/deps.sh real installs it)"
done
package=node-llama-cpp@3.21.1

# The release the shipped PKGBUILDs want, from the PKGBUILDs themselves.
want=""
for kind in cpu cuda metal; do
	pkg="$here/packaging/catalog/pkgbuilds/llama-cpp-server-$kind.PKGBUILD"
	v=$(sed -n 's/^pkgver=//p' "$pkg")
	grep -q '#tag=v$pkgver' "$pkg" || die "$pkg no longer pins the tag v\$pkgver: update this script"
	[ -z "$want" ] || [ "$want" = "v$v" ] || die "the llama-cpp-server PKGBUILDs pin different releases"
	want="v$v"
done

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Node.js trusts its own CA list unless told otherwise; the system's may hold more (a site's
# TLS-inspecting proxy, say), so add it.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
	export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
echo "offline-sources: fetching $package with npm pack"
(cd "$tmp" && npm pack --loglevel=error "$package" >npm.out 2>npm.err) ||
	die "npm pack $package failed: $(grep -v '^npm ERR! *$' "$tmp/npm.err" | head -5)"
tgz="$tmp/$(tail -1 "$tmp/npm.out")"
[ -f "$tgz" ] || die "npm pack did not produce the package it named ('$(tail -1 "$tmp/npm.out")')"
tar -xzf "$tgz" -C "$tmp" package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json ||
	die "$package does not ship llama/gitRelease.bundle and llama/binariesGithubRelease.json"

release=$(jq -r '.release // empty' "$tmp/package/llama/binariesGithubRelease.json")
[ "$release" = "$want" ] ||
	die "$package ships llama.cpp release '$release', but the shipped PKGBUILDs pin '$want'"

# Tag the bundle's commit as the release and bundle exactly that tag.
git init -q --bare "$tmp/repo.git"
git -C "$tmp/repo.git" fetch -q "$tmp/package/llama/gitRelease.bundle" "HEAD:refs/tags/$want" ||
	die "the bundle in $package is not a valid git bundle with a HEAD"
out="$dir/llama.cpp.tag-$want.bundle"
git -C "$tmp/repo.git" bundle create -q "$out.tmp" "refs/tags/$want" ||
	die "cannot write '$out.tmp'"
git -C "$tmp/repo.git" bundle verify -q "$out.tmp" >/dev/null 2>&1 || die "'$out.tmp' does not verify"
chmod 0644 "$out.tmp"
mv -f "$out.tmp" "$out"
echo "offline-sources: $out ($(du -h "$out" | cut -f1), commit $(git -C "$tmp/repo.git" rev-parse "refs/tags/$want^{commit}"))"
