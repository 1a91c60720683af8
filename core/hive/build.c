/*
 * build.c - the build sandbox (user, network namespace) and the PKGBUILD phase runner.
 */
#include "build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"
#include "rb_buf.h"
#include "rb_proc.h"

/* --- the sandbox --- */

/* Child side, between fork and exec: async-signal-safe calls only. */
struct sandbox_child {
	const struct rb_sandbox *sb;
	bool network;
};

static int write_file_once(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int e = n == (ssize_t)len ? 0 : (n < 0 ? errno : EIO);
	close(fd);
	return e;
}

static void child_note(const char *text)
{
	ssize_t n = write(2, text, strlen(text));
	(void)n;
}

/* Enter a new network namespace (and, for a non-root hive, the user namespace it needs). */
static int enter_netns(const struct rb_sandbox *sb)
{
	if (!sb->userns)
		return unshare(CLONE_NEWNET) == 0 ? 0 : errno;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
		return errno;
	int e = write_file_once("/proc/self/setgroups", "deny");
	if (!e)
		e = write_file_once("/proc/self/uid_map", sb->uid_map);
	if (!e)
		e = write_file_once("/proc/self/gid_map", sb->gid_map);
	return e;
}

static int sandbox_child_setup(void *arg)
{
	const struct sandbox_child *c = arg;
	const struct rb_sandbox *sb = c->sb;
	if (!c->network && sb->netns && enter_netns(sb) != 0)
		child_note("rbee: note: could not enter a network namespace; this step has network "
			   "access\n");
	if (sb->drop) {
		if (setgroups(0, NULL) != 0 || setgid(sb->gid) != 0 || setuid(sb->uid) != 0)
			return errno ? errno : EPERM;
		if (setuid(0) == 0)
			return EPERM; /* the drop did not stick */
	}
	umask(022);
	return 0;
}

/* Probe once whether a child can enter a network namespace here. */
static struct {
	pthread_once_t once;
	bool ok;
	char why[160];
	bool userns;
} netns_probe = { PTHREAD_ONCE_INIT, false, "", false };

static void probe_netns(void)
{
	struct rb_sandbox sb;
	memset(&sb, 0, sizeof(sb));
	sb.netns = true;
	sb.userns = geteuid() != 0;
	snprintf(sb.uid_map, sizeof(sb.uid_map), "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
	snprintf(sb.gid_map, sizeof(sb.gid_map), "%u %u 1\n", (unsigned)getegid(), (unsigned)getegid());
	struct sandbox_child c = { &sb, false };
	const char *argv[] = { "true", NULL };
	struct rb_proc_opts o = { .argv = argv, .out = RB_PROC_IO_NULL, .err = RB_PROC_IO_PIPE,
				  .new_pgroup = true, .die_with_parent = true,
				  .child_setup = NULL, .child_arg = &c, .setup_what = "unshare" };
	/* A child that fails the unshare reports it on stderr (child_note); read it back. */
	o.child_setup = sandbox_child_setup;
	struct rb_proc p;
	struct rb_err err = RB_ERR_INIT;
	struct rb_buf out = RB_BUF_INIT;
	int status = 0;
	netns_probe.userns = sb.userns;
	if (rb_proc_start(&o, &p, &err) != 0) {
		snprintf(netns_probe.why, sizeof(netns_probe.why), "%.150s", err.msg);
		return;
	}
	char buf[512];
	ssize_t n;
	while ((n = read(p.err_fd, buf, sizeof(buf))) > 0)
		rb_buf_add(&out, buf, (size_t)n);
	close(p.err_fd);
	rb_proc_wait(p.pid, -1, &status);
	netns_probe.ok = out.len == 0 && status == 0;
	if (!netns_probe.ok)
		snprintf(netns_probe.why, sizeof(netns_probe.why), "%s",
			 sb.userns ? "unprivileged user namespaces are not allowed here"
				   : "creating a network namespace is not permitted here");
	rb_buf_release(&out);
}

int rb_sandbox_init(struct rb_sandbox *sb, struct rb_err *err)
{
	memset(sb, 0, sizeof(*sb));
	if (geteuid() == 0) {
		const char *name = getenv("RBEE_BUILD_USER");
		if (!name || !*name)
			name = "nobody";
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
			return rb_err_set(err, RB_EUNAVAIL,
					  "the hive runs as root but build user '%s' does not exist: "
					  "create it or set RBEE_BUILD_USER to an unprivileged user", name);
		sb->drop = pw.pw_uid != 0;
		sb->uid = pw.pw_uid;
		sb->gid = pw.pw_gid;
		snprintf(sb->user, sizeof(sb->user), "%s", name);
	} else {
		struct passwd pw, *res = NULL;
		char buf[4096];
		sb->uid = geteuid();
		sb->gid = getegid();
		if (getpwuid_r(sb->uid, &pw, buf, sizeof(buf), &res) == 0 && res)
			snprintf(sb->user, sizeof(sb->user), "%s", pw.pw_name);
		else
			snprintf(sb->user, sizeof(sb->user), "uid %u", (unsigned)sb->uid);
	}
	pthread_once(&netns_probe.once, probe_netns);
	sb->netns = netns_probe.ok;
	sb->userns = netns_probe.userns;
	snprintf(sb->uid_map, sizeof(sb->uid_map), "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
	snprintf(sb->gid_map, sizeof(sb->gid_map), "%u %u 1\n", (unsigned)getegid(), (unsigned)getegid());
	snprintf(sb->no_netns_why, sizeof(sb->no_netns_why), "%s", netns_probe.why);
	return 0;
}

/* Permission bits `want` (r=4 w=2 x=1) for uid/gid on a stat. */
static bool may(const struct stat *st, uid_t uid, gid_t gid, unsigned want)
{
	unsigned bits = st->st_uid == uid ? (st->st_mode >> 6) & 7
			: st->st_gid == gid ? (st->st_mode >> 3) & 7
					    : st->st_mode & 7;
	return (bits & want) == want;
}

bool rb_sandbox_can_reach(const struct rb_sandbox *sb, const char *dir)
{
	if (!sb->drop)
		return true;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	struct stat st;
	if (stat(path, &st) != 0 || !may(&st, sb->uid, sb->gid, 7))
		return false;
	for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
		*slash = '\0';
		if (stat(path[0] ? path : "/", &st) != 0 || !may(&st, sb->uid, sb->gid, 1))
			return false;
	}
	return true;
}

static int chown_at(int parent, const char *name, const char *top, uid_t uid, gid_t gid,
		    struct rb_err *err)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return rb_err_set(err, RB_EIO, "cannot stat in '%s': %s", top, strerror(errno));
	if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
		return rb_err_set(err, RB_EIO, "cannot change the owner of files in '%s': %s", top,
				  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return 0;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return rb_err_set(err, RB_EIO, "cannot read '%s': %s", top, strerror(errno));
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = chown_at(dirfd(d), de->d_name, top, uid, gid, err);
	closedir(d);
	return rc;
}

int rb_sandbox_chown_r(const char *path, uid_t uid, gid_t gid, struct rb_err *err)
{
	return chown_at(AT_FDCWD, path, path, uid, gid, err);
}

/* --- output --- */

void rb_build_log_init(struct rb_build_log *log, struct rb_job *job, int fd)
{
	memset(log, 0, sizeof(*log));
	log->job = job;
	log->fd = fd;
}

static void log_write(struct rb_build_log *log, const char *text, size_t len)
{
	if (log->fd < 0)
		return;
	while (len) {
		ssize_t n = write(log->fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

void rb_build_log_line(struct rb_build_log *log, const char *line, size_t len)
{
	if (log->job)
		rb_job_say_raw(log->job, line, len);
	log_write(log, line, len);
	log_write(log, "\n", 1);
	if (len == 0)
		return;
	snprintf(log->tail[log->next], sizeof(log->tail[0]), "%.*s", (int)len, line);
	log->next = (log->next + 1) % RB_BUILD_TAIL_LINES;
	if (log->ntail < RB_BUILD_TAIL_LINES)
		log->ntail++;
}

void rb_build_log_say(struct rb_build_log *log, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
	if (log->job)
		rb_job_say_raw(log->job, text, len);
	log_write(log, "==> ", 4);
	log_write(log, text, len);
	log_write(log, "\n", 1);
}

void rb_build_log_tail(const struct rb_build_log *log, char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < log->ntail && used + 1 < outlen; i++) {
		int k = (log->next - log->ntail + i + RB_BUILD_TAIL_LINES) % RB_BUILD_TAIL_LINES;
		int n = snprintf(out + used, outlen - used, "%s%s", i ? " | " : "", log->tail[k]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

void rb_build_log_reset_tail(struct rb_build_log *log)
{
	log->ntail = log->next = 0;
}

/* --- running --- */

static void on_line(void *arg, const char *line, size_t len, bool is_err)
{
	(void)is_err;
	rb_build_log_line(arg, line, len);
}

static bool should_stop(void *arg)
{
	struct rb_build_log *log = arg;
	return log->job && rb_job_cancelled(log->job);
}

/* envp, or the hive's scrubbed environment (kept in *scrubbed) when the caller named none:
 * no sandboxed child ever sees the hive's secrets. */
static const char *const *sandbox_envp(const char *const *envp, struct rb_env *scrubbed)
{
	rb_env_init(scrubbed);
	if (envp)
		return envp;
	rb_env_from_environ_scrubbed(scrubbed);
	return rb_env_envp(scrubbed);
}

int rb_build_run(struct rb_build_log *log, const struct rb_sandbox *sb, bool network,
		 const char *const *argv, const char *const *envp, const char *cwd, const char *what,
		 struct rb_err *err)
{
	struct sandbox_child child = { sb, network };
	struct rb_env scrubbed;
	struct rb_proc_opts o = { .argv = argv, .envp = sandbox_envp(envp, &scrubbed), .cwd = cwd, .out = RB_PROC_IO_PIPE,
				  .err = RB_PROC_IO_MERGE, .new_pgroup = true, .die_with_parent = true,
				  .child_setup = sandbox_child_setup, .child_arg = &child,
				  .setup_what = "dropping privileges" };
	struct rb_proc p;
	rb_build_log_reset_tail(log);
	int rc = rb_proc_start(&o, &p, err);
	rb_env_release(&scrubbed);
	if (rc)
		return rc;
	if (log->job)
		rb_job_add_child(log->job, p.pid);
	int status = 0;
	rc = rb_proc_pump(&p, 0, on_line, should_stop, log, &status, err);
	if (log->job)
		rb_job_remove_child(log->job, p.pid);
	if (rc == -RB_ECANCELLED)
		return rb_err_set(err, RB_ECANCELLED, "%s was cancelled", what);
	if (rc)
		return rb_err_prefix(err, "%s", what);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char st[96], tail[700];
	rb_proc_status_str(status, st, sizeof(st));
	rb_build_log_tail(log, tail, sizeof(tail));
	return rb_err_set(err, RB_EIO, "%s failed (%s)%s%s", what, st, tail[0] ? "; last output: " : "",
			  tail);
}

int rb_sandbox_capture(const struct rb_sandbox *sb, bool network, const char *const *argv,
		       const char *const *envp, int timeout_ms, struct rb_buf *out, size_t max,
		       int *status, struct rb_err *err)
{
	struct sandbox_child child = { sb, network };
	struct rb_env scrubbed;
	struct rb_proc_opts o = { .argv = argv, .envp = sandbox_envp(envp, &scrubbed),
				  .out = RB_PROC_IO_PIPE, .err = RB_PROC_IO_MERGE, .new_pgroup = true,
				  .die_with_parent = true, .child_setup = sandbox_child_setup,
				  .child_arg = &child, .setup_what = "entering the sandbox" };
	struct rb_proc p;
	int rc = rb_proc_start(&o, &p, err);
	rb_env_release(&scrubbed);
	if (rc)
		return rc;
	struct rb_proc_capture c = { out, max };
	return rb_proc_pump(&p, timeout_ms, rb_proc_capture_line, NULL, &c, status, err);
}

/* Copy every NAME=VALUE of src into dst. */
static void env_copy(struct rb_env *dst, const struct rb_env *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const char *eq = strchr(src->vars[i], '=');
		if (!eq)
			continue;
		char name[256];
		size_t n = (size_t)(eq - src->vars[i]);
		if (n >= sizeof(name))
			continue;
		memcpy(name, src->vars[i], n);
		name[n] = '\0';
		rb_env_set(dst, name, eq + 1);
	}
}

int rb_build_phase(struct rb_build_log *log, const struct rb_sandbox *sb, const struct rb_env *env,
		   const struct rb_build_dirs *dirs, const struct rb_pkgbuild *pb, enum rb_pkg_fn fn,
		   struct rb_err *err)
{
	const char *name = rb_pkg_fn_name(fn);
	struct rb_env e;
	rb_env_init(&e);
	env_copy(&e, env);
	rb_env_set(&e, "startdir", dirs->startdir);
	rb_env_set(&e, "srcdir", dirs->srcdir);
	rb_env_set(&e, "pkgdir", dirs->pkgdir);
	rb_env_set(&e, "pkgname", pb->pkgname);
	rb_env_set(&e, "pkgver", pb->pkgver);
	rb_env_set(&e, "pkgrel", pb->pkgrel);
	rb_env_set(&e, "epoch", pb->epoch);
	rb_env_set(&e, "CARCH", pb->carch);
	if (dirs->home) {
		rb_env_set(&e, "HOME", dirs->home);
		rb_env_set(&e, "USER", sb->user);
		rb_env_set(&e, "LOGNAME", sb->user);
	}
	struct rb_buf script = RB_BUF_INIT;
	/* makepkg's contract: the PKGBUILD is sourced afresh for each function, under set -e. */
	rb_buf_addf(&script, "source \"$startdir/PKGBUILD\"\ncd \"$srcdir\"\n%s\n", name);
	char argv0[32], what[32];
	snprintf(argv0, sizeof(argv0), "rbee-%s", name);
	snprintf(what, sizeof(what), "%s()", name);
	const char *argv[] = { "bash", "--noprofile", "--norc", "-e", "-c", script.data, argv0, NULL };
	bool network = fn == RB_PKG_FN_PREPARE;
	int rc = rb_build_run(log, sb, network, argv, rb_env_envp(&e), dirs->srcdir, what, err);
	rb_buf_release(&script);
	rb_env_release(&e);
	return rc;
}
