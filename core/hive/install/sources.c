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
#include <sys/wait.h>
#include <unistd.h>

#include "catalog.h"
#include "hive.h"
#include "jobs/jobs.h"
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

/* Clone a git source into $srcdir/<name> at its tag, branch or commit: from its URL, or (when
 * `bundle` is set) from that git bundle, a local file, with only the file transport allowed. */
static int fetch_git(const struct rb_sources_ctx *ctx, const struct rb_source *src,
		     const char *bundle, struct rb_err *err)
{
	char dir[PATH_MAX], what[300];
	const char *url = bundle ? bundle : src->url;
	snprintf(dir, sizeof(dir), "%s/%s", ctx->dirs->srcdir, src->name);
	snprintf(what, sizeof(what), "git clone of '%.240s'", url);
	if (!bundle && !strncmp(src->url, "file://", 7) && !ctx->local_catalog)
		return rb_err_set(err, RB_EDENIED,
				  "source '%s' is a git+file:// URL, which is accepted only from a local "
				  "catalog directory (this catalog is '%s')", src->url,
				  rb_catalog_source(ctx->hive));
	struct rb_env env;
	tool_env(ctx, &env);
	/* Only the transports rb_source_parse accepts, whatever the user's git config allows:
	 * no ext:: (runs commands), no fd::, and nothing a redirect or submodule could add. A
	 * bundle is a local file: that clone may read files and nothing else. */
	rb_env_set(&env, "GIT_ALLOW_PROTOCOL",
		   bundle ? "file" : ctx->local_catalog ? "https:http:git:ssh:file" : "https:http:git:ssh");
	bool by_name = !strcmp(src->ref_kind, "tag") || !strcmp(src->ref_kind, "branch");
	const char *clone[] = { "git", "-c", "advice.detachedHead=false", "clone", "--quiet",
				by_name ? "--branch" : "--", by_name ? src->ref : url,
				by_name ? "--" : dir, by_name ? url : NULL, by_name ? dir : NULL,
				NULL };
	if (src->ref_kind[0])
		rb_build_log_say(ctx->log, "cloning '%s' at %s '%s'", url, src->ref_kind, src->ref);
	else
		rb_build_log_say(ctx->log, "cloning '%s' (default branch)", url);
	int rc = rb_build_run(ctx->log, ctx->sb, !bundle, clone, rb_env_envp(&env),
			      ctx->dirs->srcdir, what, err);
	if (!rc && !strcmp(src->ref_kind, "commit")) {
		const char *co[] = { "git", "-c", "advice.detachedHead=false", "-C", dir, "checkout",
				     "--quiet", src->ref, "--", NULL };
		snprintf(what, sizeof(what), "git checkout of commit '%s'", src->ref);
		rc = rb_build_run(ctx->log, ctx->sb, !bundle, co, rb_env_envp(&env),
				  ctx->dirs->srcdir, what, err);
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

/* --- the source mirror and the node cache (docs/MIRROR.md) --- */

/* Where a source came from. */
enum origin { FROM_LOCAL, FROM_NETWORK, FROM_MIRROR, FROM_CACHE };

static bool ref_byte_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

int rb_sources_mirror_name(const struct rb_source *src, char *out, size_t len, struct rb_err *err)
{
	struct rb_buf b = RB_BUF_INIT;
	rb_buf_adds(&b, src->name);
	if (rb_source_is_vcs(src)) {
		if (src->ref_kind[0]) {
			rb_buf_addf(&b, ".%s-", src->ref_kind);
			for (const unsigned char *p = (const unsigned char *)src->ref; *p; p++) {
				if (ref_byte_ok(*p))
					rb_buf_add(&b, p, 1);
				else
					rb_buf_addf(&b, "%%%02X", *p);
			}
		}
		rb_buf_adds(&b, ".bundle");
	}
	int rc = 0;
	if (b.len > NAME_MAX || b.len >= len)
		rc = rb_err_set(err, RB_EINVAL, "source '%s': its file name in a source mirror "
				"('%.100s...') would be longer than %d bytes: give it a shorter name "
				"with 'name::url'", src->name, b.data, NAME_MAX);
	else
		memcpy(out, b.data, b.len + 1);
	rb_buf_release(&b);
	return rc;
}

bool rb_sources_from_network(const struct rb_sources_ctx *ctx, const struct rb_source *src)
{
	switch (src->kind) {
	case RB_SOURCE_HTTP:
		return true;
	case RB_SOURCE_LOCAL:
		return !ctx->local_catalog; /* a file below an HTTP catalog */
	case RB_SOURCE_GIT:
		return strncmp(src->url, "file://", 7) != 0;
	case RB_SOURCE_FILE_URL:
		break;
	}
	return false;
}

static const char *mirror_dir(const struct rb_sources_ctx *ctx)
{
	return !ctx->fill && ctx->hive->cfg.source_mirror[0] ? ctx->hive->cfg.source_mirror : NULL;
}

static const char *cache_dir(const struct rb_sources_ctx *ctx)
{
	return !ctx->fill && ctx->hive->paths.sources[0] ? ctx->hive->paths.sources : NULL;
}

/* True when dir/name is a regular file (a mirror may hold symlinks to one); its path in out. */
static bool in_dir(const char *dir, const char *name, char *out, size_t len)
{
	struct stat st;
	return (size_t)snprintf(out, len, "%s/%s", dir, name) < len && stat(out, &st) == 0 &&
	       S_ISREG(st.st_mode);
}

/* Copy `from` (never through a symlink: it may be a file of the build user's) into dir/name:
 * written under a temporary name, 0644, then renamed into place in one step. `sha` (may be
 * NULL) receives the copy's sha256. */
static int store_copy(const char *from, const char *dir, const char *name, char *sha,
		      struct rb_err *err)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst) ||
	    rb_fs_temp_template(tmp, sizeof(tmp), dir, ".rbee-tmp-"))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s/%s'", dir, name);
	int rc = rb_fs_mkdir_p(dir, 0755, err);
	if (rc)
		return rc;
	int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return rb_err_set(err, RB_EIO, "cannot open '%s': %s", from, strerror(errno));
	struct stat st;
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return rb_err_set(err, RB_EINVAL, "'%s' is not a regular file", from);
	}
	int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0) {
		int e = errno;
		close(in);
		return rb_err_set(err, RB_EIO, "cannot create a file in '%s': %s", dir, strerror(e));
	}
	char buf[65536];
	struct rb_sha256 *h = rb_sha256_new();
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rb_err_set(err, RB_EIO, "cannot read '%s': %s", from, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		rb_sha256_update(h, buf, (size_t)n);
		if (write(out, buf, (size_t)n) != n) {
			rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", tmp, strerror(errno));
			break;
		}
	}
	close(in);
	char hex[65];
	rb_sha256_final_hex(h, hex);
	if (sha)
		memcpy(sha, hex, 65);
	if (!rc && (fchmod(out, 0644) != 0 || fsync(out) != 0))
		rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", tmp, strerror(errno));
	if (close(out) != 0 && !rc)
		rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", tmp, strerror(errno));
	if (!rc && rename(tmp, dst) != 0)
		rc = rb_err_set(err, RB_EIO, "cannot move '%s' to '%s': %s", tmp, dst, strerror(errno));
	if (rc)
		unlink(tmp);
	else
		rb_fs_sync_dir(dir);
	return rc;
}

/* A directory of the build user's in $startdir, for bundles on their way in or out. */
static int user_tmpdir(const struct rb_sources_ctx *ctx, char *out, size_t len, struct rb_err *err)
{
	if (rb_fs_temp_template(out, len, ctx->dirs->startdir, ".bundle-"))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s'", ctx->dirs->startdir);
	if (!mkdtemp(out))
		return rb_err_set(err, RB_EIO, "cannot create a directory in '%s': %s",
				  ctx->dirs->startdir, strerror(errno));
	if (ctx->sb->drop && lchown(out, ctx->sb->uid, ctx->sb->gid) != 0)
		return rb_err_set(err, RB_EIO, "cannot hand '%s' to the build user: %s", out,
				  strerror(errno));
	return 0;
}

static void remove_quietly(const char *path)
{
	struct rb_err e = RB_ERR_INIT;
	rb_fs_rm_rf(path, &e);
}

/* The ref a tag or branch source needs in a bundle: "refs/tags/T", "refs/heads/B". */
static bool bundle_ref(const struct rb_source *src, char *out, size_t len)
{
	const char *pre = !strcmp(src->ref_kind, "tag") ? "refs/tags/"
			  : !strcmp(src->ref_kind, "branch") ? "refs/heads/" : NULL;
	return pre && (size_t)snprintf(out, len, "%s%s", pre, src->ref) < len;
}

/* Refuse a bundle that lacks the tag or branch a source names, naming both (as the build
 * user: `git bundle list-heads FILE REF` prints the ref when the bundle holds it). */
static int bundle_check_ref(const struct rb_sources_ctx *ctx, const struct rb_source *src,
			    const char *shown, const char *copy, struct rb_err *err)
{
	char ref[300];
	if (!bundle_ref(src, ref, sizeof(ref)))
		return 0;
	struct rb_env env;
	tool_env(ctx, &env);
	const char *argv[] = { "git", "bundle", "list-heads", copy, ref, NULL };
	struct rb_buf out = RB_BUF_INIT;
	int status = 0;
	int rc = rb_sandbox_capture(ctx->sb, false, argv, rb_env_envp(&env), ctx->dirs->srcdir,
				    60000, &out, 65536, &status, err);
	rb_env_release(&env);
	while (out.len && out.data[out.len - 1] == '\n')
		rb_buf_truncate(&out, out.len - 1);
	char line_end[310];
	snprintf(line_end, sizeof(line_end), " %s", ref);
	bool found = false;
	for (const char *l = out.data; !rc && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t n = strcspn(l, "\n"), m = strlen(line_end);
		if (n >= m && !strncmp(l + n - m, line_end, m))
			found = true;
	}
	if (rc)
		rc = rb_err_prefix(err, "reading the git bundle '%s'", shown);
	else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = rb_err_set(err, RB_EINVAL, "'%s' is not a readable git bundle: %s", shown,
				out.len ? out.data : "git bundle list-heads failed");
	else if (!found)
		rc = rb_err_set(err, RB_EINVAL, "the git bundle '%s' does not hold the %s '%s' (%s) "
				"that source '%s' needs: make it with `git bundle create FILE %s` in "
				"a clone that has it", shown, src->ref_kind, src->ref, ref, src->name, ref);
	rb_buf_release(&out);
	return rc;
}

/* Clone a git source from the bundle `bundle` (in the mirror or the cache): the hive copies it
 * into $startdir, since the build user may not be able to read the mirror or RBEE_HOME, and
 * the build user clones from the copy without network, then checks out the ref. */
static int clone_bundle(const struct rb_sources_ctx *ctx, const struct rb_source *src,
			const char *bundle, const char *want_sha, struct rb_err *err)
{
	char tmp[PATH_MAX] = "", copy[PATH_MAX], sha[65];
	int rc = user_tmpdir(ctx, tmp, sizeof(tmp), err);
	if (!rc && (size_t)snprintf(copy, sizeof(copy), "%s/%s.bundle", tmp, src->name) >= sizeof(copy))
		rc = rb_err_set(err, RB_EINVAL, "path too long: '%s/%s.bundle'", tmp, src->name);
	if (!rc)
		rc = copy_local(ctx, bundle, false, copy, sha, err);
	if (!rc && want_sha && strcasecmp(sha, want_sha) != 0)
		rc = rb_err_set(err, RB_EIO, "'%s' has sha256 %s, not the %s its record says", bundle,
				sha, want_sha);
	if (!rc)
		rc = bundle_check_ref(ctx, src, bundle, copy, err);
	if (!rc) {
		rc = fetch_git(ctx, src, copy, err);
		if (rc && rc != -RB_ECANCELLED && !strcmp(src->ref_kind, "commit") &&
		    !strncmp(err->msg, "git checkout of commit", 22))
			rc = rb_err_prefix(err, "the git bundle '%s' does not hold commit '%s' that "
					   "source '%s' needs", bundle, src->ref, src->name);
		else if (rc && rc != -RB_ECANCELLED)
			rc = rb_err_prefix(err, "cloning from the git bundle '%s'", bundle);
	}
	if (tmp[0])
		remove_quietly(tmp);
	return rc;
}

/* After a clone: `git bundle create` of the source's ref (a tag, a branch, the checked-out
 * commit as HEAD, or HEAD and the default branch), written by the build user into a directory
 * of its own, then copied by the hive into dir/name. */
static int bundle_store(const struct rb_sources_ctx *ctx, const struct rb_source *src,
			const char *name, const char *dir, char *sha, struct rb_err *err)
{
	char tmp[PATH_MAX] = "", out[PATH_MAX], clone[PATH_MAX], ref[300], what[300];
	snprintf(clone, sizeof(clone), "%s/%s", ctx->dirs->srcdir, src->name);
	int rc = user_tmpdir(ctx, tmp, sizeof(tmp), err);
	if (!rc && (size_t)snprintf(out, sizeof(out), "%s/%s", tmp, name) >= sizeof(out))
		rc = rb_err_set(err, RB_EINVAL, "path too long: '%s/%s'", tmp, name);
	if (!rc) {
		bool named = bundle_ref(src, ref, sizeof(ref));
		bool head_only = !strcmp(src->ref_kind, "commit");
		const char *argv[] = { "git", "bundle", "create", "--quiet", out,
				       named ? ref : "HEAD", named || head_only ? NULL : "--branches",
				       NULL };
		struct rb_env env;
		tool_env(ctx, &env);
		snprintf(what, sizeof(what), "git bundle create of '%s'", src->name);
		rc = rb_build_run(ctx->log, ctx->sb, false, argv, rb_env_envp(&env), clone, what, err);
		rb_env_release(&env);
	}
	if (!rc)
		rc = store_copy(out, dir, name, sha, err);
	if (tmp[0])
		remove_quietly(tmp);
	return rc;
}

/*
 * A bundle in the node cache has a record beside it, N....bundle.origin: "url <URL>\nsha256
 * <hex>\n", written after the bundle. The file name says only the source's name and ref, and a
 * tag is just a name: without the record one PKGBUILD could leave a bundle of its own
 * ("src::git+https://evil.example/x.git#tag=v1") that another's "src" at tag v1 from another
 * URL would then build from. A bundle is used only for the URL its record names and only while
 * its sha256 is the recorded one (which also catches a bundle and record of two different
 * writers). Mirror bundles need no record: the mirror is the operator's.
 */
static int origin_write(const char *dir, const char *name, const struct rb_source *src,
			const char *sha, struct rb_err *err)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.origin", dir, name) >= sizeof(path))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s/%s.origin'", dir, name);
	struct rb_buf b = RB_BUF_INIT;
	rb_buf_addf(&b, "url %s\nsha256 %s\n", src->url, sha);
	int rc = rb_fs_write_atomic(path, b.data, b.len, 0644, err);
	rb_buf_release(&b);
	return rc;
}

/* True when the cached bundle `path` was made from src's URL; *sha gets its recorded sha256. */
static bool origin_ok(const char *path, const struct rb_source *src, char sha[65])
{
	char rec[PATH_MAX + 8];
	snprintf(rec, sizeof(rec), "%s.origin", path);
	struct rb_buf b = RB_BUF_INIT;
	struct rb_err e = RB_ERR_INIT;
	bool ok = false;
	if (rb_fs_read_file(rec, sizeof(src->url) + 100, &b, &e) == 0) {
		size_t n = strlen(src->url);
		const char *s = b.data;
		if (!strncmp(s, "url ", 4) && !strncmp(s + 4, src->url, n) && s[4 + n] == '\n' &&
		    !strncmp(s + 5 + n, "sha256 ", 7) && strlen(s + 12 + n) == 65 &&
		    s[12 + n + 64] == '\n') {
			memcpy(sha, s + 12 + n, 64);
			sha[64] = '\0';
			ok = rb_sha256_is_hex(sha);
		}
	}
	rb_buf_release(&b);
	return ok;
}

/* A network source fetched now is kept in the node cache (best effort: a failure is said, not
 * fatal). Branches and default branches move, so they are not kept. */
static void keep_in_cache(const struct rb_sources_ctx *ctx, const struct rb_source *src)
{
	const char *dir = cache_dir(ctx);
	if (!dir || (rb_source_is_vcs(src) && strcmp(src->ref_kind, "tag") &&
		     strcmp(src->ref_kind, "commit")))
		return;
	char name[NAME_MAX + 1], file[PATH_MAX];
	struct rb_err e = RB_ERR_INIT;
	int rc = rb_sources_mirror_name(src, name, sizeof(name), &e);
	if (!rc && rb_source_is_vcs(src)) {
		char sha[65];
		rc = bundle_store(ctx, src, name, dir, sha, &e);
		if (!rc)
			rc = origin_write(dir, name, src, sha, &e);
	} else if (!rc) {
		snprintf(file, sizeof(file), "%s/%s", ctx->dirs->startdir, src->name);
		rc = store_copy(file, dir, name, NULL, &e);
	}
	if (rc)
		rb_build_log_say(ctx->log, "note: '%s' is not kept in the node cache: %s", src->name,
				 e.msg);
	else
		rb_build_log_say(ctx->log, "kept '%s' in the node cache: %s/%s", src->name, dir, name);
}

static int offline_missing(const struct rb_source *src, const char *name, struct rb_err *err)
{
	return rb_err_set(err, RB_EUNAVAIL, "--offline: source '%s' (%s) is in neither the source "
			  "mirror nor the node cache, and an offline install never uses the network",
			  src->name, name);
}

/* A non-git source: a network one from the mirror, else the cache, else the network. */
static int get_file(const struct rb_sources_ctx *ctx, const struct rb_source *src,
		    const char *sum, char sha[65], enum origin *from, struct rb_err *err)
{
	*from = FROM_LOCAL;
	if (!rb_sources_from_network(ctx, src))
		return fetch_file(ctx, src, sha, err);
	char name[NAME_MAX + 1], path[PATH_MAX], dst[PATH_MAX];
	int rc = rb_sources_mirror_name(src, name, sizeof(name), err);
	if (rc)
		return rc;
	snprintf(dst, sizeof(dst), "%s/%s", ctx->dirs->startdir, src->name);
	struct stat st;
	bool dup = lstat(dst, &st) == 0;
	const char *m = mirror_dir(ctx), *c = cache_dir(ctx);
	if (!dup && m && in_dir(m, name, path, sizeof(path))) {
		rb_build_log_say(ctx->log, "'%s' from the source mirror: %s", src->name, path);
		if ((rc = copy_local(ctx, path, false, dst, sha, err)))
			return rc;
		if (strcasecmp(sha, sum) != 0) {
			unlink(dst);
			return rb_err_set(err, RB_EIO, "source '%s' in the source mirror does not match "
					  "the PKGBUILD: '%s' has sha256 %s, the PKGBUILD expects %s "
					  "(replace the file in the mirror, or fix the PKGBUILD)",
					  src->name, path, sha, sum);
		}
		*from = FROM_MIRROR;
		return 0;
	}
	if (!dup && c && in_dir(c, name, path, sizeof(path))) {
		rc = copy_local(ctx, path, false, dst, sha, err);
		if (rc == -RB_ECANCELLED)
			return rc;
		if (!rc && !strcasecmp(sha, sum)) {
			rb_build_log_say(ctx->log, "'%s' from the node cache: %s", src->name, path);
			*from = FROM_CACHE;
			return 0;
		}
		char why[RB_ERR_MSG_MAX + 100];
		if (rc)
			snprintf(why, sizeof(why), "cannot be read (%s)", err->msg);
		else
			snprintf(why, sizeof(why), "has sha256 %s, the PKGBUILD expects %s", sha, sum);
		unlink(dst);
		unlink(path);
		rb_err_clear(err);
		if (ctx->offline)
			return rb_err_set(err, RB_EUNAVAIL, "--offline: the node cache's '%s' %s; it was "
					  "removed, and an offline install never fetches it again",
					  path, why);
		rb_build_log_say(ctx->log, "the node cache's '%s' %s: fetching it again", path, why);
	}
	if (!dup && ctx->offline)
		return offline_missing(src, name, err);
	*from = FROM_NETWORK;
	return fetch_file(ctx, src, sha, err);
}

/* A git source: a network one from a bundle in the mirror, else in the cache, else cloned. */
static int get_git(const struct rb_sources_ctx *ctx, const struct rb_source *src,
		   enum origin *from, struct rb_err *err)
{
	*from = FROM_LOCAL;
	if (!rb_sources_from_network(ctx, src))
		return fetch_git(ctx, src, NULL, err);
	char name[NAME_MAX + 1], path[PATH_MAX];
	int rc = rb_sources_mirror_name(src, name, sizeof(name), err);
	if (rc)
		return rc;
	const char *m = mirror_dir(ctx), *c = cache_dir(ctx);
	if (m && in_dir(m, name, path, sizeof(path))) {
		rb_build_log_say(ctx->log, "'%s' from the source mirror: %s", src->name, path);
		*from = FROM_MIRROR;
		return clone_bundle(ctx, src, path, NULL, err);
	}
	char want[65];
	if (c && in_dir(c, name, path, sizeof(path)) && !origin_ok(path, src, want)) {
		rb_build_log_say(ctx->log, "the node cache's '%s' was not made from '%s'%s", path,
				 src->url, ctx->offline ? "" : ": cloning it");
	} else if (c && in_dir(c, name, path, sizeof(path))) {
		rb_build_log_say(ctx->log, "'%s' from the node cache: %s", src->name, path);
		*from = FROM_CACHE;
		rc = clone_bundle(ctx, src, path, want, err);
		if (!rc || rc == -RB_ECANCELLED || ctx->offline)
			return rc;
		rb_build_log_say(ctx->log, "the node cache's '%s' cannot be used (%s): cloning again",
				 path, err->msg);
		rb_err_clear(err);
		unlink(path);
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", ctx->dirs->srcdir, src->name);
		remove_quietly(dir);
	}
	if (ctx->offline)
		return offline_missing(src, name, err);
	*from = FROM_NETWORK;
	return fetch_git(ctx, src, NULL, err);
}

int rb_sources_check_offline(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
			     struct rb_err *err)
{
	if (rb_pkgbuild_has_option(pb, "network"))
		return rb_err_set(err, RB_EUNAVAIL,
				  "--offline: this PKGBUILD asks for the network in prepare() "
				  "(rbee_options=(network)) to fetch what its build needs, which an "
				  "offline install cannot give it; install it with the network");
	const char *m = mirror_dir(ctx), *c = cache_dir(ctx);
	struct rb_buf miss = RB_BUF_INIT;
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < pb->source.n; i++) {
		struct rb_source src;
		char name[NAME_MAX + 1], path[PATH_MAX], path2[PATH_MAX];
		if ((rc = rb_source_parse(pb->source.v[i], &src, err)) ||
		    (rc = rb_sources_mirror_name(&src, name, sizeof(name), err)))
			break;
		char want[65];
		if (!rb_sources_from_network(ctx, &src) || (m && in_dir(m, name, path, sizeof(path))) ||
		    (c && in_dir(c, name, path2, sizeof(path2)) &&
		     (!rb_source_is_vcs(&src) || origin_ok(path2, &src, want))))
			continue;
		rb_buf_addf(&miss, "%s'%s' (looked for %s%s%s%s%s)", n++ ? "; " : "", src.name,
			    m ? path : "", m && c ? " and " : "", c ? path2 : "",
			    !m && !c ? "nothing: no source mirror is configured" : "",
			    !m && c ? "; no source mirror is configured" : "");
		rb_build_log_say(ctx->log, "--offline: source '%s' is missing: looked for %s%s%s",
				 src.name, m ? path : "", m && c ? " and " : "", c ? path2 : "");
	}
	if (!rc && n)
		rc = rb_err_set(err, RB_EUNAVAIL, "--offline: %zu source%s %s in neither the source "
				"mirror nor the node cache: %s. Fill a mirror where there is network "
				"(rbee-hive --fill-mirror DIR WORKER_ID) and start this hive with "
				"--source-mirror DIR", n, n == 1 ? "" : "s", n == 1 ? "is" : "are",
				miss.data);
	rb_buf_release(&miss);
	return rc;
}

int rb_sources_fetch(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb,
		     struct rb_err *err)
{
	for (size_t i = 0; i < pb->source.n; i++) {
		struct rb_source src;
		char sha[65] = "";
		enum origin from = FROM_LOCAL;
		int rc = rb_source_parse(pb->source.v[i], &src, err);
		/* Judge the checksum entry's form before fetching anything. */
		const char *sum = pb->sha256sums.v[i];
		if (!rc && (rb_source_is_vcs(&src) || !strcmp(sum, "SKIP") || !rb_sha256_is_hex(sum)))
			rc = rb_source_check_sha256(&src, sum, NULL, err);
		if (!rc && ctx->job && rb_job_cancelled(ctx->job))
			rc = rb_err_set(err, RB_ECANCELLED, "cancelled");
		if (!rc)
			rc = rb_source_is_vcs(&src) ? get_git(ctx, &src, &from, err)
						    : get_file(ctx, &src, sum, sha, &from, err);
		if (rc)
			return rc;
		if (ctx->job)
			rb_job_progress(ctx->job, "verifying", 0, 0, 0);
		if (rb_source_is_vcs(&src)) {
			if (from == FROM_NETWORK)
				keep_in_cache(ctx, &src);
			continue;
		}
		rc = rb_source_check_sha256(&src, pb->sha256sums.v[i], sha, err);
		if (rc)
			return rc;
		rb_build_log_say(ctx->log, "  '%s': sha256 %s ok", src.name, sha);
		if (from == FROM_NETWORK)
			keep_in_cache(ctx, &src);
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

int rb_sources_fill(const struct rb_sources_ctx *ctx, const struct rb_pkgbuild *pb, size_t i,
		    const char *dir, char *what, size_t what_len, struct rb_err *err)
{
	struct rb_sources_ctx c = *ctx;
	c.fill = true;
	c.offline = false;
	c.store = dir;
	struct rb_source src;
	char name[NAME_MAX + 1], path[PATH_MAX], sha[65] = "", tmp[PATH_MAX];
	const char *sum = pb->sha256sums.v[i];
	int rc = rb_source_parse(pb->source.v[i], &src, err);
	if (!rc && (rb_source_is_vcs(&src) || !strcmp(sum, "SKIP") || !rb_sha256_is_hex(sum)))
		rc = rb_source_check_sha256(&src, sum, NULL, err);
	if (!rc)
		rc = rb_sources_mirror_name(&src, name, sizeof(name), err);
	if (rc)
		return rc;
	snprintf(what, what_len, "%s: ", name);
	size_t at = strlen(what);
	if (!rb_sources_from_network(&c, &src)) {
		snprintf(what + at, what_len - at, "skipped: '%s' needs no network (%s)", src.name,
			 src.kind == RB_SOURCE_LOCAL ? "a file of the catalog directory" : "a file:// URL");
		return 0;
	}
	if (rb_source_is_vcs(&src)) {
		if (in_dir(dir, name, path, sizeof(path))) {
			snprintf(what + at, what_len - at, "already in the mirror");
			return 0;
		}
		snprintf(tmp, sizeof(tmp), "%s/%s", c.dirs->srcdir, src.name);
		rc = fetch_git(&c, &src, NULL, err);
		if (!rc)
			rc = bundle_store(&c, &src, name, dir, NULL, err);
		remove_quietly(tmp);
		if (!rc && src.ref_kind[0])
			snprintf(what + at, what_len - at, "cloned '%s' at %s '%s' and bundled it",
				 src.url, src.ref_kind, src.ref);
		else if (!rc)
			snprintf(what + at, what_len - at, "cloned '%s' (default branch) and bundled it",
				 src.url);
		return rc;
	}
	if (in_dir(dir, name, path, sizeof(path))) {
		if ((rc = rb_sha256_file(path, sha, err)))
			return rc;
		if (!strcasecmp(sha, sum)) {
			snprintf(what + at, what_len - at, "already in the mirror (sha256 %s ok)", sha);
			return 0;
		}
	}
	snprintf(tmp, sizeof(tmp), "%s/%s", c.dirs->startdir, src.name);
	rc = fetch_file(&c, &src, sha, err);
	if (!rc)
		rc = rb_source_check_sha256(&src, sum, sha, err);
	if (!rc)
		rc = store_copy(tmp, dir, name, NULL, err);
	unlink(tmp);
	if (!rc)
		snprintf(what + at, what_len - at, "downloaded '%s' (sha256 %s ok)", src.url, sha);
	return rc;
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
