/*
 * install.c - the worker_install pipeline (see install.h).
 */
#include "install.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "build.h"
#include "catalog.h"
#include "hive.h"
#include "backends/backends.h"
#include "installable.h"
#include "installed.h"
#include "jobs/jobs.h"
#include "pkgbuild.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_sha256.h"
#include "sources.h"
#include "staging.h"
#include "verify.h"

#define PKGBUILD_MAX (1u << 20)

struct install {
	struct rb_job *job;
	struct rb_hive *hive;
	const char *id;
	struct json_object *entry;   /* the catalog entry */
	struct rb_buf text;          /* the PKGBUILD, exactly as fetched */
	char pkgbuild_sha[65];
	struct rb_pkgbuild pb;
	struct rb_sandbox sb;
	struct rb_env env;           /* scrubbed environment + the backend's build variables */
	char stage[PATH_MAX];        /* paths.staging/install-<id>-<job>: removed at the end */
	char final[PATH_MAX];        /* stage/final: becomes workers/<id> */
	char work[PATH_MAX];         /* $startdir: stage/work, or outside (see make_workdir) */
	bool work_outside;
	bool offline;                /* worker_install "offline": mirror and cache only (sources.h) */
	char srcdir[PATH_MAX], pkgdir[PATH_MAX], home[PATH_MAX];
	struct rb_build_dirs dirs;
	struct rb_build_log log;
	int log_fd, lock_fd;
	long long started_ms;
};

static bool cancelled(struct install *in, struct rb_err *err)
{
	if (!rb_job_cancelled(in->job))
		return false;
	rb_err_set(err, RB_ECANCELLED, "install of '%s' cancelled", in->id);
	return true;
}

/* --- step 1: the catalog entry and whether this node can take it --- */

static int load_entry(struct install *in, struct rb_err *err)
{
	rb_job_say(in->job, "looking up '%s' in %s", in->id, rb_catalog_source(in->hive));
	int rc = rb_catalog_get(in->hive, in->id, &in->entry, err);
	if (rc)
		return rc;
	/* The checks 'rbee worker available' shows (installable.h): worker_type, platform,
	 * backend, and the build tools of the entry's makedepends on the PATH builds inherit. */
	if ((rc = rb_installable_entry(in->hive, in->entry, getenv("PATH"), err)))
		return rc;
	const char *type = rb_json_str(in->entry, "worker_type");
	rb_job_say(in->job, "'%s' %s (%s backend) can be installed on this %s %s node", in->id,
		   rb_json_str(in->entry, "version") ? rb_json_str(in->entry, "version") : "",
		   type, rb_node_os(), rb_node_arch());
	return 0;
}

/* --- step 2: the PKGBUILD --- */

static int load_pkgbuild(struct install *in, struct rb_err *err)
{
	int rc = rb_catalog_pkgbuild(in->hive, in->id, &in->text, err);
	if (rc)
		return rc;
	if (in->text.len > PKGBUILD_MAX)
		return rb_err_set(err, RB_ETOOBIG, "the PKGBUILD of '%s' is larger than %u bytes",
				  in->id, PKGBUILD_MAX);
	rb_sha256_hex(in->text.data, in->text.len, in->pkgbuild_sha);
	rc = rb_pkgbuild_parse(in->text.data, in->text.len, rb_node_arch(), &in->pb, err);
	if (rc)
		return rb_err_prefix(err, "the PKGBUILD of '%s'", in->id);
	if (!rb_pkgbuild_supports_arch(&in->pb, rb_node_arch()))
		return rb_err_set(err, RB_EUNAVAIL, "the PKGBUILD of '%s' does not build for %s "
				  "(its arch is '%s')", in->id, rb_node_arch(), in->pb.arch.v[0]);
	if (!(in->pb.functions & RB_PKG_FN_PACKAGE))
		return rb_err_set(err, RB_EINVAL, "the PKGBUILD of '%s' defines no package() "
				  "function, so it installs nothing", in->id);
	/* Before anything is fetched: the entry describes this PKGBUILD, and what it builds
	 * with is here (its own makedepends, which may name more than the entry's). */
	if ((rc = rb_installable_version(in->entry, in->id, in->pb.pkgver, err)) ||
	    (rc = rb_installable_tools(in->id, (const char *const *)in->pb.makedepends.v,
				       in->pb.makedepends.n, getenv("PATH"), err)))
		return rc;
	rb_job_say(in->job, "PKGBUILD %s %s-%s: %zu source%s, sha256 %s", in->pb.pkgname,
		   in->pb.pkgver, in->pb.pkgrel, in->pb.source.n, in->pb.source.n == 1 ? "" : "s",
		   in->pkgbuild_sha);
	return 0;
}

/* --- step 3: directories --- */

static int path_fmt(char *out, size_t len, struct rb_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int path_fmt(char *out, size_t len, struct rb_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return rb_err_set(err, RB_EINVAL, "path too long: '%.200s...'", out);
	return 0;
}

/*
 * $startdir lives in the staging directory when the build user can reach it. When the hive is
 * root and RBEE_HOME sits below directories only root may enter (/root/.cache/rbee), it is a
 * private directory under /var/tmp instead, owned by the build user; the package tree is moved
 * (or copied) back into staging after package().
 */
static int make_workdir(struct install *in, struct rb_err *err)
{
	int rc = path_fmt(in->work, sizeof(in->work), err, "%s/work", in->stage);
	if (!rc)
		rc = rb_fs_mkdir_p(in->work, 0755, err);
	if (rc)
		return rc;
	if (in->sb.drop && in->sb.uid != geteuid() &&
	    (lchown(in->work, in->sb.uid, in->sb.gid) != 0 || !rb_sandbox_can_reach(&in->sb, in->work))) {
		const char *tmp = rb_fs_is_dir("/var/tmp") ? "/var/tmp" : "/tmp";
		char prefix[160];
		snprintf(prefix, sizeof(prefix), "rbee-build-%s-", in->id);
		if (rb_fs_temp_template(in->work, sizeof(in->work), tmp, prefix))
			return rb_err_set(err, RB_EINVAL, "path too long: '%s/%s'", tmp, prefix);
		if (!mkdtemp(in->work))
			return rb_err_set(err, RB_EIO, "cannot create a build directory in '%s': %s",
					  tmp, strerror(errno));
		in->work_outside = true;
		/* Named in the stage, so a hive killed mid-build still finds it (staging.h). */
		char link[PATH_MAX];
		if ((rc = path_fmt(link, sizeof(link), err, "%s/%s", in->stage,
				   RB_STAGING_OUTSIDE_LINK)))
			return rc;
		if (symlink(in->work, link) != 0)
			return rb_err_set(err, RB_EIO, "cannot create '%s': %s", link, strerror(errno));
		rb_build_log_say(&in->log, "building in '%s': build user '%s' cannot enter '%s'",
				 in->work, in->sb.user, in->hive->paths.staging);
	}
	if ((rc = path_fmt(in->srcdir, sizeof(in->srcdir), err, "%s/src", in->work)) ||
	    (rc = path_fmt(in->pkgdir, sizeof(in->pkgdir), err, "%s/pkg", in->work)) ||
	    (rc = path_fmt(in->home, sizeof(in->home), err, "%s/.home", in->work)) ||
	    (rc = rb_fs_mkdir_p(in->srcdir, 0755, err)) || (rc = rb_fs_mkdir_p(in->pkgdir, 0755, err)))
		return rc;
	if (in->sb.drop && (rc = rb_fs_mkdir_p(in->home, 0700, err)))
		return rc;
	/* git refuses a local repository owned by another user ("dubious ownership"), which a
	 * git+file:// source is for the build uid, unless a global config allows it: written here,
	 * before anything runs as the build uid, into its HOME. */
	char gitconfig[PATH_MAX];
	static const char safe[] = "[safe]\n\tdirectory = *\n";
	if (in->sb.drop &&
	    ((rc = path_fmt(gitconfig, sizeof(gitconfig), err, "%s/.gitconfig", in->home)) ||
	     (rc = rb_fs_write_atomic(gitconfig, safe, sizeof(safe) - 1, 0644, err))))
		return rc;
	char pkgbuild[PATH_MAX];
	if ((rc = path_fmt(pkgbuild, sizeof(pkgbuild), err, "%s/PKGBUILD", in->work)) ||
	    (rc = rb_fs_write_atomic(pkgbuild, in->text.data, in->text.len, 0644, err)))
		return rc;
	if (in->sb.drop && (rc = rb_sandbox_chown_r(in->work, in->sb.uid, in->sb.gid, err)))
		return rc;
	in->dirs = (struct rb_build_dirs){ in->work, in->srcdir, in->pkgdir,
					   in->sb.drop ? in->home : NULL };
	return 0;
}

static int make_dirs(struct install *in, struct rb_err *err)
{
	int rc;
	char log[PATH_MAX];
	if ((rc = rb_fs_mkdir_p(in->hive->paths.staging, 0700, err)) ||
	    (rc = rb_fs_mkdir_p(in->hive->paths.workers, 0755, err)) ||
	    (rc = path_fmt(in->stage, sizeof(in->stage), err, "%s/install-%s-%s",
			   in->hive->paths.staging, in->id, rb_job_id(in->job))) ||
	    (rc = rb_fs_rm_rf(in->stage, err)) || (rc = rb_fs_mkdir_p(in->stage, 0755, err)) ||
	    (rc = path_fmt(in->final, sizeof(in->final), err, "%s/final", in->stage)) ||
	    (rc = rb_fs_mkdir_p(in->final, 0755, err)) ||
	    (rc = path_fmt(log, sizeof(log), err, "%s/build.log", in->final)))
		return rc;
	in->log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (in->log_fd < 0)
		return rb_err_set(err, RB_EIO, "cannot create '%s': %s", log, strerror(errno));
	in->log.fd = in->log_fd;
	return make_workdir(in, err);
}

/* --- step 4: environment and sandbox --- */

static int prepare_env(struct install *in, struct rb_err *err)
{
	int rc = rb_sandbox_init(&in->sb, err);
	if (rc)
		return rc;
	rb_env_from_environ_scrubbed(&in->env);
	const char *backend = rb_json_str(in->entry, "worker_type");
	rc = rb_backend_build_env(in->hive, backend, in->job, &in->env, err);
	if (rc)
		return rc;
	if (in->sb.drop)
		rb_job_say(in->job, "build commands run as uid %u, a build uid of their own (no "
			   "privileges, no supplementary groups)", (unsigned)in->sb.uid);
	if (in->sb.netns)
		rb_job_say(in->job, "%s run without network",
			   rb_pkgbuild_has_option(&in->pb, "network")
				   ? "build(), check() and package()"
				   : "prepare(), build(), check() and package()");
	else
		rb_job_say(in->job, "note: the build keeps network access: %s", in->sb.no_netns_why);
	return 0;
}

/* --- step 5: the phases --- */

static int run_phases(struct install *in, struct rb_err *err)
{
	static const enum rb_pkg_fn order[] = { RB_PKG_FN_PREPARE, RB_PKG_FN_BUILD, RB_PKG_FN_CHECK,
						RB_PKG_FN_PACKAGE };
	unsigned total = 0, done = 0;
	for (size_t i = 0; i < 3; i++)
		total += (in->pb.functions & order[i]) ? 1 : 0;
	for (size_t i = 0; i < 4; i++) {
		if (!(in->pb.functions & order[i]))
			continue;
		if (cancelled(in, err))
			return -RB_ECANCELLED;
		bool pkg = order[i] == RB_PKG_FN_PACKAGE;
		/* Stage changes only: bytes_done/bytes_total are about bytes, not phases. */
		if (pkg || done == 0)
			rb_job_progress(in->job, pkg ? "packaging" : "building", 0, 0, 0);
		rb_build_log_say(&in->log, "running %s()", rb_pkg_fn_name(order[i]));
		int rc = rb_build_phase(&in->log, &in->sb, &in->env, &in->dirs, &in->pb, order[i], err);
		if (rc)
			return rc;
		if (!pkg)
			rb_build_log_say(&in->log, "%s() done (%u of %u build phases)",
					 rb_pkg_fn_name(order[i]), ++done, total);
	}
	return 0;
}

/* --- step 6: the package tree, the binary and the record --- */

/* Move $pkgdir to final/pkg (rename, or cp -a across filesystems) owned by the hive. */
static int take_package(struct install *in, char *root, size_t len, struct rb_err *err)
{
	int rc = path_fmt(root, len, err, "%s/pkg", in->final);
	if (rc)
		return rc;
	if (in->sb.drop && (rc = rb_sandbox_chown_r(in->pkgdir, geteuid(), getegid(), err)))
		return rc;
	if (rename(in->pkgdir, root) == 0)
		return 0;
	if (errno != EXDEV)
		return rb_err_set(err, RB_EIO, "cannot move the package tree into '%s': %s", root,
				  strerror(errno));
	const char *cp[] = { "cp", "-a", "--", in->pkgdir, root, NULL };
	struct rb_buf out = RB_BUF_INIT;
	int status = 0;
	rc = rb_proc_run(cp, rb_env_envp(&in->env), NULL, 0, &out, 4096, &status, err);
	if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = rb_err_set(err, RB_EIO, "cannot copy the package tree into '%s': %s", root, out.data);
	rb_buf_release(&out);
	return rc;
}

static bool is_exec_file(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* Depth-first search for an executable regular file called `name` under dir. */
static bool search_binary(const char *dir, const char *name, int depth, char *out, size_t len)
{
	DIR *d = depth < 12 ? opendir(dir) : NULL;
	if (!d)
		return false;
	struct dirent *de;
	bool found = false;
	while (!found && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		struct stat st;
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			found = search_binary(path, name, depth + 1, out, len);
		else if (!strcmp(de->d_name, name) && is_exec_file(path))
			found = (size_t)snprintf(out, len, "%s", path) < len;
	}
	closedir(d);
	return found;
}

/* The binary's path in the tree: the entry's install_path, the usual bin directories, else a
 * search. */
static int find_binary_path(struct install *in, const char *root, const char *name, char *out,
			    size_t len, struct rb_err *err)
{
	const char *ip = rb_json_str(in->entry, "install_path");
	const char *cands[] = { "usr/bin", "usr/local/bin", "bin", "opt/bin" };
	if (ip && *ip && !strstr(ip, "..")) {
		while (*ip == '/')
			ip++;
		if (snprintf(out, len, "%s/%s", root, ip) < (int)len && is_exec_file(out))
			return 0;
	}
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (snprintf(out, len, "%s/%s/%s", root, cands[i], name) < (int)len && is_exec_file(out))
			return 0;
	if (search_binary(root, name, 0, out, len))
		return 0;
	return rb_err_set(err, RB_EIO,
			  "package() did not install an executable named '%s' (looked for the "
			  "entry's install_path, usr/bin, usr/local/bin, bin, and anywhere in the "
			  "package tree): fix the PKGBUILD or the entry's binary_name", name);
}

/* The binary found must be a file of the package tree: a directory symlink in $pkgdir
 * (usr -> /usr) would otherwise make the hive record, hash and later run a file outside the
 * install, one that anybody able to write there could swap. */
static int check_inside(const char *root, const char *bin, struct rb_err *err)
{
	char real_root[PATH_MAX], real_bin[PATH_MAX];
	if (!realpath(root, real_root) || !realpath(bin, real_bin))
		return rb_err_set(err, RB_EIO, "cannot resolve '%s': %s", bin, strerror(errno));
	size_t n = strlen(real_root);
	if (!strncmp(real_root, real_bin, n) && real_bin[n] == '/')
		return 0;
	return rb_err_set(err, RB_EINVAL,
			  "the worker binary '%s' resolves to '%s', outside the package tree "
			  "(a symlink in $pkgdir leads out of it): package() must install the binary "
			  "itself into $pkgdir", bin + strlen(root) + 1, real_bin);
}

/* The installed binary: the entry's install_path, the usual bin directories, else a search. */
static int find_binary(struct install *in, const char *root, const char *name, char *out,
		       size_t len, struct rb_err *err)
{
	int rc = find_binary_path(in, root, name, out, len, err);
	return rc ? rc : check_inside(root, out, err);
}

static void iso_now(char *out, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void copy_entry_field(struct json_object *meta, struct json_object *entry, const char *key)
{
	struct json_object *v;
	if (json_object_object_get_ex(entry, key, &v))
		json_object_object_add(meta, key, json_object_get(v));
	else
		json_object_object_add(meta, key, NULL);
}

/* Build metadata.json's object; the binary path is where it will be once installed. */
static struct json_object *make_record(struct install *in, const char *binary_rel,
				       uint64_t size, const char *sha)
{
	char dir[PATH_MAX + 130], bin[2 * PATH_MAX + 140], when[32];
	snprintf(dir, sizeof(dir), "%s/%s", in->hive->paths.workers, in->id);
	snprintf(bin, sizeof(bin), "%s/pkg/%s", dir, binary_rel);
	iso_now(when, sizeof(when));
	struct json_object *m = json_object_new_object();
	rb_json_add_str(m, "id", in->id);
	rb_json_add_str(m, "worker_type", rb_json_str(in->entry, "worker_type"));
	copy_entry_field(m, in->entry, "name");
	copy_entry_field(m, in->entry, "implementation");
	copy_entry_field(m, in->entry, "description");
	char version[256];
	snprintf(version, sizeof(version), "%s%s%s-%s", in->pb.epoch ? in->pb.epoch : "",
		 in->pb.epoch ? ":" : "", in->pb.pkgver, in->pb.pkgrel);
	rb_json_add_str(m, "version", version);
	rb_json_add_str(m, "pkgname", in->pb.pkgname);
	rb_json_add_str(m, "pkgver", in->pb.pkgver);
	rb_json_add_str(m, "pkgrel", in->pb.pkgrel);
	rb_json_add_str(m, "binary_name", strrchr(binary_rel, '/') ? strrchr(binary_rel, '/') + 1
								   : binary_rel);
	rb_json_add_str(m, "binary_path", bin);
	rb_json_add_str(m, "install_dir", dir);
	rb_json_add_int(m, "size", (int64_t)size);
	rb_json_add_str(m, "sha256", sha);
	rb_json_add_str(m, "installed_at", when);
	rb_json_add_str(m, "catalog_source", rb_catalog_source(in->hive));
	rb_json_add_str(m, "pkgbuild_sha256", in->pkgbuild_sha);
	rb_json_add_int(m, "build_ms", rb_now_ms() - in->started_ms);
	copy_entry_field(m, in->entry, "launch");
	return m;
}

static int write_files(struct install *in, struct json_object *meta, struct rb_err *err)
{
	char path[PATH_MAX + 32], line[128];
	int rc;
	snprintf(line, sizeof(line), "%s  PKGBUILD\n", in->pkgbuild_sha);
	if ((rc = path_fmt(path, sizeof(path), err, "%s/PKGBUILD", in->final)) ||
	    (rc = rb_fs_write_atomic(path, in->text.data, in->text.len, 0644, err)) ||
	    (rc = path_fmt(path, sizeof(path), err, "%s/PKGBUILD.sha256", in->final)) ||
	    (rc = rb_fs_write_atomic(path, line, strlen(line), 0644, err)) ||
	    (rc = path_fmt(path, sizeof(path), err, "%s/metadata.json", in->final)))
		return rc;
	return rb_json_write_file(path, meta, err);
}

/* Package tree -> binary -> record files -> verify in staging. *meta gets the record. */
static int assemble(struct install *in, struct json_object **meta, struct json_object **report,
		    struct rb_err *err)
{
	char root[PATH_MAX], bin[PATH_MAX], sha[65];
	const char *name = rb_json_str(in->entry, "binary_name");
	if (!name || !*name || strchr(name, '/'))
		name = in->pb.pkgname;
	int rc = take_package(in, root, sizeof(root), err);
	if (!rc)
		rc = find_binary(in, root, name, bin, sizeof(bin), err);
	if (!rc)
		rc = rb_sha256_file(bin, sha, err);
	if (rc)
		return rc;
	struct stat st;
	stat(bin, &st);
	*meta = make_record(in, bin + strlen(root) + 1, (uint64_t)st.st_size, sha);
	if ((rc = write_files(in, *meta, err)))
		return rc;
	rb_build_log_say(&in->log, "binary '%s' (%lld bytes, sha256 %s)", bin + strlen(root) + 1,
			 (long long)st.st_size, sha);
	/* Verify the staged tree: a build that cannot run never replaces a working install. */
	struct rb_installed w;
	if ((rc = rb_installed_from_json(*meta, in->final, &w, err)))
		return rc;
	snprintf(w.binary_path, sizeof(w.binary_path), "%s", bin);
	bool generic_ok = false;
	rb_job_progress(in->job, "verifying", 0, 0, 0);
	rc = rb_verify_worker(in->hive, in->job, &w, report, &generic_ok, err);
	rb_installed_release(&w);
	if (rc)
		return rc;
	struct json_object *checks = json_object_object_get(*report, "checks");
	for (size_t i = 0; i < json_object_array_length(checks); i++) {
		struct json_object *c = json_object_array_get_idx(checks, i);
		rb_build_log_say(&in->log, "verify %s: %s - %s", rb_json_str(c, "check"),
				 rb_json_bool(c, "ok", false) ? "ok" : "FAILED", rb_json_str(c, "detail"));
		if (!generic_ok && !rb_json_bool(c, "ok", false))
			return rb_err_set(err, RB_EIO, "the built worker '%s' fails verification: %s: %s",
					  in->id, rb_json_str(c, "check"), rb_json_str(c, "detail"));
	}
	return 0;
}

/* --- step 7: into place --- */

/* A running worker spawned from this id pins it: checked before anything is fetched (so a
 * reinstall does not build for nothing) and again at the swap, under the short lock, since a
 * spawn may start while the build runs. */
static int refuse_in_use(struct install *in, struct rb_err *err)
{
	if (!rb_installed_in_use(in->hive, in->id))
		return 0;
	return rb_err_set(err, RB_ECONFLICT, "worker '%s' is in use by a running worker; stop "
			  "it before reinstalling ('rbee worker process list')", in->id);
}

/* Swap final into workers/<id>, replacing an earlier install only here, at the very end. */
static int commit_locked(struct install *in, struct rb_err *err)
{
	char dst[PATH_MAX], old[PATH_MAX];
	int rc;
	if ((rc = path_fmt(dst, sizeof(dst), err, "%s/%s", in->hive->paths.workers, in->id)) ||
	    (rc = path_fmt(old, sizeof(old), err, "%s/old", in->stage)))
		return rc;
	if ((rc = refuse_in_use(in, err)))
		return rc;
	rb_job_progress(in->job, "installing", 0, 0, 0);
	if (close(in->log_fd) != 0)
		rb_warn("closing the build log of '%s': %s", in->id, strerror(errno));
	in->log_fd = -1;
	in->log.fd = -1;
	if (rb_fs_is_dir(dst)) {
		if (renameat2(AT_FDCWD, in->final, AT_FDCWD, dst, RENAME_EXCHANGE) != 0) {
			if (errno != EINVAL && errno != ENOSYS)
				return rb_err_set(err, RB_EIO, "cannot replace '%s': %s", dst, strerror(errno));
			/* No atomic exchange on this filesystem: move the old one aside first. */
			if (rename(dst, old) != 0)
				return rb_err_set(err, RB_EIO, "cannot move '%s' aside: %s", dst,
						  strerror(errno));
			if (rename(in->final, dst) != 0) {
				int e = errno;
				rename(old, dst);
				return rb_err_set(err, RB_EIO, "cannot install '%s': %s", dst, strerror(e));
			}
		}
	} else if (rename(in->final, dst) != 0) {
		return rb_err_set(err, RB_EIO, "cannot install '%s': %s", dst, strerror(errno));
	}
	rb_fs_sync_dir(in->hive->paths.workers);
	rb_job_say(in->job, "installed '%s' into '%s'", in->id, dst);
	return 0;
}

/* The swap under the short lock: a spawn registering its worker waits for it, or went first
 * and is seen by refuse_in_use. */
static int commit(struct install *in, struct rb_err *err)
{
	int lock;
	int rc = rb_installed_lock(in->hive, in->id, &lock, err);
	if (rc)
		return rc;
	rc = commit_locked(in, err);
	rb_installed_unlock(lock);
	return rc;
}

/* --- the pipeline --- */

static void cleanup(struct install *in)
{
	struct rb_err e = RB_ERR_INIT;
	/* The build uid's processes go first, so none of them writes while its tree is removed. */
	rb_sandbox_release(&in->sb);
	if (in->log_fd >= 0)
		close(in->log_fd);
	if (in->work_outside && rb_fs_rm_rf(in->work, &e) != 0)
		rb_warn("install of '%s': %s", in->id, e.msg);
	if (in->stage[0] && rb_fs_rm_rf(in->stage, &e) != 0)
		rb_warn("install of '%s': %s", in->id, e.msg);
	rb_installed_unlock(in->lock_fd);
	json_object_put(in->entry);
	rb_buf_release(&in->text);
	rb_pkgbuild_release(&in->pb);
	rb_env_release(&in->env);
}

static int run(struct install *in, struct json_object **result, struct rb_err *err)
{
	struct json_object *meta = NULL, *report = NULL;
	struct rb_sources_ctx sc = { .hive = in->hive, .job = in->job, .log = &in->log, .sb = &in->sb,
				     .env = &in->env, .dirs = &in->dirs };
	const char *src = rb_catalog_source(in->hive);
	sc.local_catalog = strncmp(src, "http://", 7) != 0 && strncmp(src, "https://", 8) != 0;
	sc.offline = in->offline;
	int rc;
	if ((rc = rb_installed_install_lock(in->hive, in->id, rb_job_id(in->job), &in->lock_fd,
					    err)) || (rc = refuse_in_use(in, err)) ||
	    (rc = load_entry(in, err)) || (rc = load_pkgbuild(in, err)) ||
	    (in->offline && (rc = rb_sources_check_offline(&sc, &in->pb, err))) ||
	    (rc = prepare_env(in, err)) || (rc = make_dirs(in, err)))
		return rc;
	rb_job_progress(in->job, "fetching", 0, 0, 0);
	if ((rc = rb_sources_fetch(&sc, &in->pb, err)) || (cancelled(in, err) && (rc = -RB_ECANCELLED)) ||
	    (rc = rb_sources_extract(&sc, &in->pb, err)) || (rc = run_phases(in, err)) ||
	    (cancelled(in, err) && (rc = -RB_ECANCELLED)) || (rc = assemble(in, &meta, &report, err)) ||
	    (cancelled(in, err) && (rc = -RB_ECANCELLED)) || (rc = commit(in, err))) {
		json_object_put(meta);
		json_object_put(report);
		if (rc != -RB_ECANCELLED)
			rb_build_log_say(&in->log, "install failed: %s", err->msg);
		return rc;
	}
	if (!rb_json_bool(report, "ok", false))
		rb_job_say(in->job, "warning: '%s' is installed but the %s backend's checks failed on "
			   "this node (see the verify report)", in->id, rb_json_str(meta, "worker_type"));
	json_object_object_add(meta, "verify", report);
	*result = meta;
	return 0;
}

int rb_install_worker(struct rb_job *job, const char *id, bool offline,
		      struct json_object **result, struct rb_err *err)
{
	struct install in;
	memset(&in, 0, sizeof(in));
	in.job = job;
	in.offline = offline;
	in.hive = rb_job_hive(job);
	in.id = id;
	in.log_fd = in.lock_fd = -1;
	in.started_ms = rb_now_ms();
	rb_buf_init(&in.text);
	rb_env_init(&in.env);
	rb_build_log_init(&in.log, job, -1);
	*result = NULL;
	int rc = rb_id_check("worker_id", id, err);
	if (!rc)
		rc = run(&in, result, err);
	cleanup(&in);
	return rc;
}
