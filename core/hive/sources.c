/*
 * sources.c - fetch, verify and extract a PKGBUILD's sources (see sources.h).
 */
#include "sources.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "job.h"
#include "rb_buf.h"
#include "rb_download.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_sha256.h"

static void on_progress(void *arg, uint64_t done, uint64_t total, double rate)
{
	rb_job_progress(arg, "fetching", done, total, rate);
}

static bool stop_requested(void *arg)
{
	return rb_job_cancelled(arg);
}

/* Download url into dst via dst.part; *sha receives the file's sha256. */
static int fetch_http(const struct rb_sources_ctx *ctx, const char *url, const char *dst,
		      char sha[65], struct rb_err *err)
{
	char part[PATH_MAX];
	snprintf(part, sizeof(part), "%s.part", dst);
	struct rb_download_opts o = { .url = url, .part_path = part, .stall_timeout_s = 30,
				      .max_retries = 3 };
	if (ctx->job) {
		o.on_progress = on_progress;
		o.should_stop = stop_requested;
		o.arg = ctx->job;
	}
	struct rb_download_result res;
	memset(&res, 0, sizeof(res));
	int rc = rb_download(&o, &res, err);
	if (rc) {
		unlink(part);
		return rc == -RB_ECANCELLED ? rc : rb_err_prefix(err, "fetching '%s'", url);
	}
	if (rename(part, dst) != 0) {
		int e = errno;
		unlink(part);
		return rb_err_set(err, RB_EIO, "cannot move the download into '%s': %s", dst, strerror(e));
	}
	memcpy(sha, res.sha256, 65);
	rb_build_log_say(ctx->log, "  downloaded %llu bytes from '%s'", (unsigned long long)res.size, url);
	return 0;
}

/* A file:// source, read as the build user (so it names only what that user may read) into
 * dst, which is then hashed as the hive. */
static int copy_as_build_user(const struct rb_sources_ctx *ctx, const char *path, const char *dst,
			      char sha[65], struct rb_err *err)
{
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0)
		return rb_err_set(err, RB_EIO, "cannot create '%s': %s", dst, strerror(errno));
	int rc = rb_sandbox_read_file(ctx->sb, ctx->job, path, out, err);
	if (close(out) != 0 && !rc)
		rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", dst, strerror(errno));
	if (!rc)
		rc = rb_sha256_file(dst, sha, err);
	if (rc)
		unlink(dst);
	return rc;
}

/* Copy a local file into dst, hashing it on the way: a file:// source as the build user, a
 * file of the catalog directory itself as the hive. */
static int copy_local(const struct rb_sources_ctx *ctx, const char *path, bool file_url,
		      const char *dst, char sha[65], struct rb_err *err)
{
	if (file_url && ctx->sb->drop)
		return copy_as_build_user(ctx, path, dst, sha, err);
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO,
				  "cannot open source file '%s': %s", path, strerror(errno));
	struct stat st;
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return rb_err_set(err, RB_EINVAL, "source '%s' is not a regular file", path);
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = errno;
		close(in);
		return rb_err_set(err, RB_EIO, "cannot create '%s': %s", dst, strerror(e));
	}
	struct rb_sha256 *h = rb_sha256_new();
	char buf[65536];
	uint64_t done = 0;
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rb_err_set(err, RB_EIO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		rb_sha256_update(h, buf, (size_t)n);
		if (write(out, buf, (size_t)n) != n) {
			rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", dst, strerror(errno));
			break;
		}
		done += (uint64_t)n;
		if (ctx->job) {
			rb_job_progress(ctx->job, "fetching", done, (uint64_t)st.st_size, 0);
			if (rb_job_cancelled(ctx->job)) {
				rc = rb_err_set(err, RB_ECANCELLED, "cancelled while copying '%s'", path);
				break;
			}
		}
	}
	close(in);
	if (close(out) != 0 && !rc)
		rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", dst, strerror(errno));
	if (rc) {
		rb_sha256_free(h);
		unlink(dst);
		return rc;
	}
	rb_sha256_final_hex(h, sha);
	return 0;
}

/* The environment for git and tar: the scrubbed build environment, never prompting. */
static void tool_env(const struct rb_sources_ctx *ctx, struct rb_env *env)
{
	rb_env_init(env);
	for (size_t i = 0; i < ctx->env->n; i++) {
		const char *eq = strchr(ctx->env->vars[i], '=');
		char name[256];
		size_t n = eq ? (size_t)(eq - ctx->env->vars[i]) : 0;
		if (!eq || n >= sizeof(name))
			continue;
		memcpy(name, ctx->env->vars[i], n);
		name[n] = '\0';
		rb_env_set(env, name, eq + 1);
	}
	rb_env_set(env, "GIT_TERMINAL_PROMPT", "0");
	rb_env_set(env, "GIT_ASKPASS", "true");
	if (ctx->dirs->home)
		rb_env_set(env, "HOME", ctx->dirs->home);
}

/* Clone a git source into $srcdir/<name> at its tag, branch or commit. */
static int fetch_git(const struct rb_sources_ctx *ctx, const struct rb_source *src,
		     struct rb_err *err)
{
	char dir[PATH_MAX], what[300];
	snprintf(dir, sizeof(dir), "%s/%s", ctx->dirs->srcdir, src->name);
	snprintf(what, sizeof(what), "git clone of '%.240s'", src->url);
	if (!strncmp(src->url, "file://", 7) && !ctx->local_catalog)
		return rb_err_set(err, RB_EDENIED,
				  "source '%s' is a git+file:// URL, which is accepted only from a local "
				  "catalog directory (this catalog is '%s')", src->url,
				  rb_catalog_source(ctx->hive));
	struct rb_env env;
	tool_env(ctx, &env);
	/* Only the transports rb_source_parse accepts, whatever the user's git config allows:
	 * no ext:: (runs commands), no fd::, and nothing a redirect or submodule could add. */
	rb_env_set(&env, "GIT_ALLOW_PROTOCOL",
		   ctx->local_catalog ? "https:http:git:ssh:file" : "https:http:git:ssh");
	bool by_name = !strcmp(src->ref_kind, "tag") || !strcmp(src->ref_kind, "branch");
	const char *clone[] = { "git", "-c", "advice.detachedHead=false", "clone", "--quiet",
				by_name ? "--branch" : "--", by_name ? src->ref : src->url,
				by_name ? "--" : dir, by_name ? src->url : NULL, by_name ? dir : NULL,
				NULL };
	if (src->ref_kind[0])
		rb_build_log_say(ctx->log, "cloning '%s' at %s '%s'", src->url, src->ref_kind, src->ref);
	else
		rb_build_log_say(ctx->log, "cloning '%s' (default branch)", src->url);
	int rc = rb_build_run(ctx->log, ctx->sb, true, clone, rb_env_envp(&env), ctx->dirs->srcdir,
			      what, err);
	if (!rc && !strcmp(src->ref_kind, "commit")) {
		const char *co[] = { "git", "-c", "advice.detachedHead=false", "-C", dir, "checkout",
				     "--quiet", src->ref, "--", NULL };
		snprintf(what, sizeof(what), "git checkout of commit '%s'", src->ref);
		rc = rb_build_run(ctx->log, ctx->sb, true, co, rb_env_envp(&env), ctx->dirs->srcdir,
				  what, err);
	}
	rb_env_release(&env);
	return rc;
}

/* Fetch one non-git source into $startdir/<name>; *sha receives its sha256. */
static int fetch_file(const struct rb_sources_ctx *ctx, const struct rb_source *src, char sha[65],
		      struct rb_err *err)
{
	char dst[PATH_MAX];
	snprintf(dst, sizeof(dst), "%s/%s", ctx->dirs->startdir, src->name);
	struct stat st;
	if (lstat(dst, &st) == 0)
		return rb_err_set(err, RB_EINVAL, "two sources are named '%s': rename one with "
				  "'name::url'", src->name);
	struct rb_buf where = RB_BUF_INIT;
	int rc = 0;
	if (src->kind == RB_SOURCE_LOCAL) {
		rc = rb_catalog_resolve(ctx->hive, src->url, &where, err);
	} else if (src->kind == RB_SOURCE_FILE_URL) {
		if (!ctx->local_catalog)
			rc = rb_err_set(err, RB_EDENIED,
					"source '%s' is a file:// URL, which is accepted only from a "
					"local catalog directory (this catalog is '%s')", src->url,
					rb_catalog_source(ctx->hive));
		rb_buf_adds(&where, src->url);
	} else {
		rb_buf_adds(&where, src->url);
	}
	if (!rc) {
		const char *path = rb_http_file_url_path(where.data);
		bool http = !strncmp(where.data, "http://", 7) || !strncmp(where.data, "https://", 8);
		rb_build_log_say(ctx->log, "fetching '%s' from '%s'", src->name, where.data);
		rc = http ? fetch_http(ctx, where.data, dst, sha, err)
			  : copy_local(ctx, path ? path : where.data, src->kind == RB_SOURCE_FILE_URL,
				       dst, sha, err);
	}
	rb_buf_release(&where);
	return rc;
}

int rb_sources_fetch(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
		     struct rb_err *err)
{
	for (size_t i = 0; i < pb->source.n; i++) {
		struct rb_source src;
		char sha[65] = "";
		int rc = rb_source_parse(pb->source.v[i], &src, err);
		/* Judge the checksum entry's form before fetching anything. */
		const char *sum = pb->sha256sums.v[i];
		if (!rc && (rb_source_is_vcs(&src) || !strcmp(sum, "SKIP") || !rb_sha256_is_hex(sum)))
			rc = rb_source_check_sha256(&src, sum, NULL, err);
		if (!rc && ctx->job && rb_job_cancelled(ctx->job))
			rc = rb_err_set(err, RB_ECANCELLED, "cancelled");
		if (!rc)
			rc = rb_source_is_vcs(&src) ? fetch_git(ctx, &src, err)
						    : fetch_file(ctx, &src, sha, err);
		if (rc)
			return rc;
		if (ctx->job)
			rb_job_progress(ctx->job, "verifying", 0, 0, 0);
		if (rb_source_is_vcs(&src))
			continue;
		rc = rb_source_check_sha256(&src, pb->sha256sums.v[i], sha, err);
		if (rc)
			return rc;
		rb_build_log_say(ctx->log, "  '%s': sha256 %s ok", src.name, sha);
		if (ctx->sb->drop) {
			char dst[PATH_MAX];
			snprintf(dst, sizeof(dst), "%s/%s", ctx->dirs->startdir, src.name);
			if (lchown(dst, ctx->sb->uid, ctx->sb->gid) != 0)
				return rb_err_set(err, RB_EIO, "cannot hand '%s' to the build user: %s",
						  dst, strerror(errno));
		}
	}
	return 0;
}

static bool listed(const struct rb_strv *sv, const char *name)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], name))
			return true;
	return false;
}

/*
 * Move every entry of `from` into `to` without following a symlink on either side: a
 * directory present in both (real directories, by lstat) is merged, a file or symlink already
 * in `to` is replaced by the entry itself, and a directory meeting a non-directory is refused.
 * Extraction goes through this so that no archive writes through a symlink that an earlier
 * source (another archive, a git checkout) left in $srcdir: tar and unzip only guard against
 * the symlinks of the archive they are extracting.
 */
static int merge_tree(const char *from, const char *to, const char *archive, struct rb_err *err)
{
	DIR *d = opendir(from);
	if (!d)
		return rb_err_set(err, RB_EIO, "cannot read '%s': %s", from, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char src[PATH_MAX], dst[PATH_MAX];
		struct stat s, t;
		if ((size_t)snprintf(src, sizeof(src), "%s/%s", from, de->d_name) >= sizeof(src) ||
		    (size_t)snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name) >= sizeof(dst)) {
			rc = rb_err_set(err, RB_EINVAL, "archive '%s' holds a path that is too long: "
					"'%.200s...'", archive, dst);
			break;
		}
		if (lstat(src, &s) != 0) {
			rc = rb_err_set(err, RB_EIO, "cannot read '%s': %s", src, strerror(errno));
			break;
		}
		bool exists = lstat(dst, &t) == 0;
		if (exists && S_ISDIR(s.st_mode) && S_ISDIR(t.st_mode))
			rc = merge_tree(src, dst, archive, err);
		else if (exists && (S_ISDIR(s.st_mode) || S_ISDIR(t.st_mode)))
			rc = rb_err_set(err, RB_EINVAL,
					"archive '%s' holds '%s' as a %s, but $srcdir already has a %s "
					"there (from an earlier source): rename one of the sources",
					archive, de->d_name, S_ISDIR(s.st_mode) ? "directory" : "file",
					S_ISDIR(t.st_mode) ? "directory" : S_ISLNK(t.st_mode) ? "symlink"
												: "file");
		else if (rename(src, dst) != 0)
			rc = rb_err_set(err, RB_EIO, "cannot move '%s' into '%s': %s", src, to,
					strerror(errno));
	}
	closedir(d);
	return rc;
}

/* Extract archive `file` into a fresh, empty directory of the build user, then merge it into
 * $srcdir (see merge_tree). */
static int extract_archive(const struct rb_sources_ctx *ctx, const struct rb_source *src,
			   int type, const char *file, struct rb_env *env, struct rb_err *err)
{
	char tmp[PATH_MAX];
	if (rb_fs_temp_template(tmp, sizeof(tmp), ctx->dirs->startdir, ".extract-"))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s'", ctx->dirs->startdir);
	if (!mkdtemp(tmp))
		return rb_err_set(err, RB_EIO, "cannot create a directory in '%s': %s",
				  ctx->dirs->startdir, strerror(errno));
	int rc = 0;
	if (ctx->sb->drop && lchown(tmp, ctx->sb->uid, ctx->sb->gid) != 0)
		rc = rb_err_set(err, RB_EIO, "cannot hand '%s' to the build user: %s", tmp,
				strerror(errno));
	rb_build_log_say(ctx->log, "extracting '%s'", src->name);
	char what[300];
	snprintf(what, sizeof(what), "extracting '%s'", src->name);
	const char *tar[] = { "tar", "-xf", file, "-C", tmp, "--no-same-owner", NULL };
	const char *unzip[] = { "unzip", "-q", "-o", file, "-d", tmp, NULL };
	if (!rc)
		rc = rb_build_run(ctx->log, ctx->sb, false, type == 'z' ? unzip : tar,
				  rb_env_envp(env), ctx->dirs->srcdir, what, err);
	if (!rc)
		rc = merge_tree(tmp, ctx->dirs->srcdir, src->name, err);
	struct rb_err e2 = RB_ERR_INIT;
	if (rb_fs_rm_rf(tmp, &e2) != 0 && !rc)
		rc = rb_err_set(err, RB_EIO, "%s", e2.msg);
	return rc;
}

/* Link $startdir/<name> into $srcdir, then extract it there when it is an archive. */
static int extract_one(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
		       const struct rb_source *src, struct rb_env *env, struct rb_err *err)
{
	char file[PATH_MAX], link[PATH_MAX];
	snprintf(file, sizeof(file), "%s/%s", ctx->dirs->startdir, src->name);
	snprintf(link, sizeof(link), "%s/%s", ctx->dirs->srcdir, src->name);
	if (symlink(file, link) != 0)
		return rb_err_set(err, RB_EIO, "cannot link '%s' into '%s': %s", src->name,
				  ctx->dirs->srcdir, strerror(errno));
	if (ctx->sb->drop && lchown(link, ctx->sb->uid, ctx->sb->gid) != 0)
		return rb_err_set(err, RB_EIO, "cannot hand '%s' to the build user: %s", link,
				  strerror(errno));
	int type = rb_source_archive_type(src->name);
	if (!type || listed(&pb->noextract, src->name))
		return 0;
	return extract_archive(ctx, src, type, file, env, err);
}

int rb_sources_extract(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
		       struct rb_err *err)
{
	struct rb_env env;
	tool_env(ctx, &env);
	int rc = 0;
	for (size_t i = 0; !rc && i < pb->source.n; i++) {
		struct rb_source src;
		rc = rb_source_parse(pb->source.v[i], &src, err);
		if (!rc && !rb_source_is_vcs(&src))
			rc = extract_one(ctx, pb, &src, &env, err);
	}
	rb_env_release(&env);
	return rc;
}
