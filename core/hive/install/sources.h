/*
 * sources.h - getting a PKGBUILD's sources into $srcdir: fetch, checksum, extract, clone.
 *
 * Fetching happens with network and, for downloads and local copies, in the hive itself
 * (http(s) through rb_download: resumable, progress-reporting, cancellable); git clones and
 * archive extraction run as child processes in the build sandbox (build.h), registered with
 * the job. Every file is checked against sha256sums before anything is extracted; `SKIP` is
 * accepted only for git sources. Like makepkg, every non-git source is linked into $srcdir and
 * archives (by file name, unless listed in noextract) are extracted there.
 *
 * Sources that would come from the network (http(s) files, files below an HTTP catalog, git
 * URLs other than file://) are first looked up in the source mirror (--source-mirror,
 * RBEE_SOURCE_MIRROR) and then in the node cache ($RBEE_HOME/cache/sources), both laid out as
 * rb_sources_mirror_name() says (docs/MIRROR.md). A file from the mirror must match its sha256
 * (a mismatch is an error); one from the cache that does not is fetched again and replaced.
 * After a network fetch, files (verified) and git clones pinned to a tag or commit (as a
 * `git bundle` written by the build user right after the clone) are stored in the cache; a
 * cached bundle is used only for the URL and sha256 of the `.origin` record beside it.
 */
#ifndef RB_SOURCES_H
#define RB_SOURCES_H

#include "build.h"
#include "pkgbuild.h"
#include "rb_err.h"

struct rb_hive;
struct rb_job;

struct rb_sources_ctx {
	struct rb_hive *hive;
	struct rb_job *job;              /* progress, cancel; may be NULL */
	struct rb_build_log *log;        /* narration and build.log */
	const struct rb_sandbox *sb;
	const struct rb_env *env;        /* environment for git and tar (scrubbed) */
	const struct rb_build_dirs *dirs;
	bool local_catalog;              /* file:// sources are accepted only from a local catalog */
	bool offline;                    /* --offline: mirror and cache only, never the network */
	/* Set by rb_sources_fill only: */
	const char *store;               /* where network fetches are stored (else the node cache) */
	bool fill;                       /* filling a mirror: no lookups, branches bundled too */
};

/*
 * The file name of a source in a mirror or the node cache: a file source's name N as is; a git
 * source N.tag-T.bundle, N.commit-C.bundle, N.branch-B.bundle, or N.bundle (default branch),
 * where every byte of the ref outside [A-Za-z0-9._+-] is written %XX (release/1.0 ->
 * release%2F1.0). RB_EINVAL when the name would be longer than NAME_MAX.
 */
int rb_sources_mirror_name(const struct rb_source *src, char *out, size_t len, struct rb_err *err);

/* True when fetching `src` would use the network (http(s), a file below an HTTP catalog, a git
 * URL other than file://): the sources a mirror or the cache can stand in for. */
bool rb_sources_from_network(const struct rb_sources_ctx *ctx, const struct rb_source *src);

/*
 * For --offline, before any build directory exists: refuses a PKGBUILD whose prepare() asks for
 * the network (rbee_options=(network)), and checks every network source is in the mirror or
 * the cache. One error names every missing source and the paths it was looked for at.
 */
int rb_sources_check_offline(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
			     struct rb_err *err);

/*
 * Filling a mirror (rbee-hive --fill-mirror): put source `i` of `pb` into `dir` in the layout
 * above, fetching it from the network into ctx->dirs first (files verified against sha256sums,
 * git sources cloned and bundled at their ref, all git commands as the build user). `what`
 * receives one line saying what happened ("llama.cpp.tag-v1.bundle: cloned and bundled").
 */
int rb_sources_fill(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb, size_t i,
		    const char *dir, char *what, size_t what_len, struct rb_err *err);

/*
 * Fetch every source of `pb` into dirs->startdir (git sources are cloned into $srcdir),
 * checking each file's sha256 ("fetching" then "verifying" progress), then link and extract
 * the files into $srcdir. On failure the caller removes the directories; partial downloads
 * never reach their final names.
 */
int rb_sources_fetch(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
		     struct rb_err *err);

/* Extract (or link) the fetched, verified files into $srcdir, in the sandbox without network. */
int rb_sources_extract(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
		       struct rb_err *err);

#endif
