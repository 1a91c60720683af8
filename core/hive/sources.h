/*
 * sources.h - getting a PKGBUILD's sources into $srcdir: fetch, checksum, extract, clone.
 *
 * Fetching happens with network and, for downloads and local copies, in the hive itself
 * (http(s) through rb_download: resumable, progress-reporting, cancellable); git clones and
 * archive extraction run as child processes in the build sandbox (build.h), registered with
 * the job. Every file is checked against sha256sums before anything is extracted; `SKIP` is
 * accepted only for git sources. Like makepkg, every non-git source is linked into $srcdir and
 * archives (by file name, unless listed in noextract) are extracted there.
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
};

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
