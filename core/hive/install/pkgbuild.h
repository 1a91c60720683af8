/*
 * pkgbuild.h - reading a PKGBUILD's metadata without running it, and naming its sources.
 *
 * The reader understands the subset of bash that real PKGBUILDs use for metadata: assignments
 * (`a=b`, `a+=b`, `a=(x y)`, `a+=(z)`, `export a=b`), single and double quotes, backslash
 * escapes and line continuations, comments, multi-line arrays, and `$name` / `${name}` /
 * `${name[@]}` / `${name[N]}` expansion of variables assigned earlier in the file (plus CARCH).
 * Function definitions are recognised by name and their bodies skipped unread. Anything that
 * would need running code (command substitution, `if`, plain commands, `${x%y}` operators) is
 * refused with the line number - or, when it only feeds a variable rbee never reads, remembered
 * and reported only if a field rbee reads depends on it.
 *
 * The reader never recurses on input and works within budgets, so no PKGBUILD can crash, hang
 * or exhaust the hive: function bodies may nest $(...), ${...} and quotes at most
 * RB_PKGBUILD_MAX_DEPTH levels; all variable expansions (and scalar `+=` copies) together may
 * produce at most RB_PKGBUILD_MAX_EXPANSION bytes (each array element costs at least one); at
 * most RB_PKGBUILD_MAX_VARS variables may be assigned. Past a budget the parse fails with
 * RB_EINVAL naming the line; running out of memory fails with RB_EINTERNAL (never abort()).
 *
 * Arch-specific arrays follow makepkg: for CARCH=x86_64, `source_x86_64` is appended to
 * `source`, `sha256sums_x86_64` to `sha256sums`, and likewise for depends and makedepends.
 */
#ifndef RB_PKGBUILD_H
#define RB_PKGBUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "rb_err.h"

#define RB_PKGBUILD_MAX_DEPTH 64
#define RB_PKGBUILD_MAX_EXPANSION (1u << 20)
#define RB_PKGBUILD_MAX_VARS 1024

/* A growable NULL-terminated array of malloc'd strings. */
struct rb_strv {
	char **v; /* v[n] == NULL once anything was pushed */
	size_t n, cap;
};
#define RB_STRV_INIT { NULL, 0, 0 }
/* Append a copy of s: 0, or -1 when out of memory (sv unchanged). */
int rb_strv_push(struct rb_strv *sv, const char *s);
void rb_strv_release(struct rb_strv *sv);

/* The build functions a PKGBUILD may define, in the order they run. */
enum rb_pkg_fn {
	RB_PKG_FN_PREPARE = 1 << 0,
	RB_PKG_FN_BUILD = 1 << 1,
	RB_PKG_FN_CHECK = 1 << 2,
	RB_PKG_FN_PACKAGE = 1 << 3,
};

struct rb_pkgbuild {
	char *pkgname, *pkgver, *pkgrel, *epoch, *pkgdesc, *url; /* NULL when not set (optional ones) */
	struct rb_strv arch, license, depends, makedepends;
	struct rb_strv source, sha256sums; /* common + _<CARCH> entries, parallel arrays */
	struct rb_strv noextract;
	struct rb_strv rbee_options;       /* rbee's own: "network" lets prepare() reach the network */
	unsigned functions;                /* enum rb_pkg_fn bits of the functions defined */
	char carch[32];                    /* the CARCH it was read for */
};

/*
 * Read `text` (a whole PKGBUILD) for architecture `carch` ("x86_64", "aarch64"). Fills *pb
 * (release it with rb_pkgbuild_release, also after a failure). Fails with RB_EINVAL and a
 * message naming the line for syntax rbee cannot read without running it, a missing required
 * field (pkgname, pkgver, pkgrel, arch), invalid values, or source/sha256sums counts that differ.
 * It does not judge whether `arch` includes carch: see rb_pkgbuild_supports_arch.
 */
int rb_pkgbuild_parse(const char *text, size_t len, const char *carch, struct rb_pkgbuild *pb,
		      struct rb_err *err);
void rb_pkgbuild_release(struct rb_pkgbuild *pb);

/* True when the PKGBUILD's `rbee_options` array lists `opt` (e.g. "network"). */
bool rb_pkgbuild_has_option(const struct rb_pkgbuild *pb, const char *opt);

/* True when `arch` lists carch or "any". */
bool rb_pkgbuild_supports_arch(const struct rb_pkgbuild *pb, const char *carch);
/* "prepare", "build", "check", "package". */
const char *rb_pkg_fn_name(enum rb_pkg_fn fn);

/* What kind of place a source entry names. */
enum rb_source_kind {
	RB_SOURCE_LOCAL = 0, /* a path, relative to the catalog (or absolute file:// URL) */
	RB_SOURCE_HTTP,      /* http:// or https:// */
	RB_SOURCE_FILE_URL,  /* file:///abs/path */
	RB_SOURCE_GIT,       /* git+<url>[#tag=|#branch=|#commit=] */
};

/* One source entry, taken apart. */
struct rb_source {
	enum rb_source_kind kind;
	char name[256];    /* the file (or clone directory) name in $srcdir: "name::" or basename */
	char url[4096];    /* without "name::", "git+", and (for git) the fragment */
	char ref_kind[8];  /* git: "tag", "branch", "commit" or "" (default branch) */
	char ref[256];     /* git: the ref's value */
};

/* Split `entry` ("name::git+https://x/y.git#tag=v1", "https://x/a.tar.gz", "patch.diff").
 * Refuses names that are not plain file names, unknown URL schemes and unknown fragments. */
int rb_source_parse(const char *entry, struct rb_source *src, struct rb_err *err);
/* True for VCS sources (their checksum may be SKIP). */
bool rb_source_is_vcs(const struct rb_source *src);

/*
 * Judge a computed sha256 against the PKGBUILD's entry for `src`. `expected` is the
 * sha256sums entry: 64 hex digits (any case), or "SKIP" (accepted for VCS sources only).
 * Mismatch: RB_EIO naming the file and both hashes. `actual` may be NULL for VCS sources.
 */
int rb_source_check_sha256(const struct rb_source *src, const char *expected, const char *actual,
			   struct rb_err *err);

/* The archive formats extracted into $srcdir: 0 = not an archive, 't' tar (any compression),
 * 'z' zip. Decided by the file name, as makepkg does. */
int rb_source_archive_type(const char *name);

#endif
