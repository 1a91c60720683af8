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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "rb_buf.h"
#include "rb_log.h"
#include "rb_proc.h"

/* --- settings and the uid range --- */

/* 0x70000000 + 256: above Debian's statically and on-demand allocated ids (up to 64999, e.g.
 * libvirt-qemu's 64055), systemd's dynamic users (61184-65519) and its container ranges
 * (524288-1879048191), and below its foreign range (0x7FFE0000): ids no account, service or
 * container of a usual node runs as, so killing "every process of the uid" hits only builds. */
#define DEFAULT_UIDS "1879048192-1879048447"

static struct {
	pthread_once_t once, accounts_once;
	char error[400];         /* non-empty: the settings are invalid */
	char accounts_error[400]; /* non-empty: an account uses a uid or gid of the range */
	uid_t first;
	unsigned count;
	long cpu_s, nofile, nproc, timeout_s;
	long long fsize_mb, log_max_mb;
	pthread_mutex_t lock;
	int *lockfd;             /* per uid of the range: its lock while a build or verify here has it */
	unsigned next;           /* where the next search starts: uids are reused last */
	char lockdir[64];        /* where the per-uid locks live (shared by every hive on the node) */
} bcfg = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

/* A whole decimal number in [lo, hi] from `name`, or `def` when unset. */
static bool env_num(const char *name, long long def, long long lo, long long hi, const char *unit,
		    long long *out)
{
	const char *v = getenv(name);
	*out = def;
	if (!v || !*v)
		return true;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || end == v || n < lo || n > hi) {
		snprintf(bcfg.error, sizeof(bcfg.error), "%s='%.40s' is not a number of %s between "
			 "%lld and %lld", name, v, unit, lo, hi);
		return false;
	}
	*out = n;
	return true;
}

static bool parse_uids(void)
{
	const char *v = getenv("RBEE_BUILD_UIDS");
	if (!v || !*v)
		v = DEFAULT_UIDS;
	char *end;
	errno = 0;
	unsigned long long a = strtoull(v, &end, 10), b = 0;
	bool ok = !errno && end != v && *end == '-';
	if (ok) {
		const char *p = end + 1;
		b = strtoull(p, &end, 10);
		ok = !errno && end != p && !*end;
	}
	if (!ok || a < 1000 || b < a || b >= 0xfffffffeULL || b - a >= 65536) {
		snprintf(bcfg.error, sizeof(bcfg.error),
			 "RBEE_BUILD_UIDS='%.60s' is not a range FIRST-LAST of 1 to 65536 uids at or "
			 "above 1000 (for example %s)", v, DEFAULT_UIDS);
		return false;
	}
	bcfg.first = (uid_t)a;
	bcfg.count = (unsigned)(b - a + 1);
	return true;
}

/* Whether uid `u` (also a build's gid) belongs to an account: then it is no build uid, and its
 * processes are nobody's leftovers. Writes why into `why`. One lookup of each through NSS, which
 * can be slow (systemd-userdb, LDAP): so never for the whole range on the start path. */
static bool uid_has_account(uid_t u, char *why, size_t len)
{
	char buf[4096];
	struct passwd pw, *pres = NULL;
	struct group gr, *gres = NULL;
	if (u == geteuid() || (getpwuid_r(u, &pw, buf, sizeof(buf), &pres) == 0 && pres)) {
		snprintf(why, len, "RBEE_BUILD_UIDS includes uid %u, which is user '%.60s': choose "
			 "a range no account uses", (unsigned)u, pres ? pres->pw_name : "root");
		return true;
	}
	if (getgrgid_r(u, &gr, buf, sizeof(buf), &gres) == 0 && gres) {
		snprintf(why, len, "RBEE_BUILD_UIDS includes %u, which is the gid of group '%.60s' "
			 "(builds use their uid as gid): choose a range no group uses", (unsigned)u,
			 gres->gr_name);
		return true;
	}
	return false;
}

/* Each uid of the range is also the build's gid: neither may belong to anybody. Checked once,
 * at the first build (256 uids cost 40-150 ms of NSS lookups on a systemd host, which the start
 * of the hive does not pay); the start-up clean-up checks each uid it would kill instead. */
static void check_accounts(void)
{
	if (geteuid() != 0)
		return;
	for (unsigned i = 0; i < bcfg.count; i++)
		if (uid_has_account(bcfg.first + i, bcfg.accounts_error, sizeof(bcfg.accounts_error)))
			return;
}

/*
 * The build uids are shared by every hive on the node (each with its own RBEE_HOME), so a uid is
 * taken with an flock on <lockdir>/<uid>.lock, held while a build uses it: no hive ever kills the
 * processes of a uid another live hive's build holds. The kernel drops the lock of a hive that
 * dies, so a crashed hive's uids are free (and their processes killed) at once. The directory is
 * root's, mode 0700: /run/rbee-build-uids, else /var/tmp/rbee-build-uids.
 */
static void find_lockdir(void)
{
	static const char *const dirs[] = { "/run/rbee-build-uids", "/var/tmp/rbee-build-uids" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct stat st;
		if (mkdir(dirs[i], 0700) != 0 && errno != EEXIST)
			continue;
		if (lstat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
		    (st.st_mode & 077))
			continue; /* not ours (someone made it first): never trust it */
		snprintf(bcfg.lockdir, sizeof(bcfg.lockdir), "%s", dirs[i]);
		return;
	}
	snprintf(bcfg.error, sizeof(bcfg.error), "cannot create a private directory for the build "
		 "uid locks (/run/rbee-build-uids or /var/tmp/rbee-build-uids, root's, mode 0700)");
}

/* The lock of uid u, or -1 when another hive holds it (or it cannot be taken). */
static int lock_uid(uid_t u)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%u.lock", bcfg.lockdir, (unsigned)u);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void load_settings(void)
{
	long long cpu, fsize, nofile, nproc, timeout, logmax;
	if (!parse_uids() ||
	    !env_num("RBEE_BUILD_CPU_S", 3600, 1, 1000000000LL, "seconds", &cpu) ||
	    !env_num("RBEE_BUILD_FSIZE_MB", 16384, 1, 1LL << 32, "MiB", &fsize) ||
	    !env_num("RBEE_BUILD_NOFILE", 4096, 64, 1 << 20, "descriptors", &nofile) ||
	    !env_num("RBEE_BUILD_NPROC", 4096, 16, 1 << 22, "processes", &nproc) ||
	    !env_num("RBEE_BUILD_TIMEOUT_S", 14400, 1, 1000000, "seconds", &timeout) ||
	    !env_num("RBEE_BUILD_LOG_MAX_MB", 64, 1, 1 << 20, "MiB", &logmax))
		return;
	bcfg.cpu_s = (long)cpu;
	bcfg.fsize_mb = fsize;
	bcfg.nofile = (long)nofile;
	bcfg.nproc = (long)nproc;
	bcfg.timeout_s = (long)timeout;
	bcfg.log_max_mb = logmax;
	bcfg.lockfd = malloc(bcfg.count * sizeof(int));
	if (!bcfg.lockfd) {
		snprintf(bcfg.error, sizeof(bcfg.error), "out of memory");
		return;
	}
	for (unsigned i = 0; i < bcfg.count; i++)
		bcfg.lockfd[i] = -1;
	if (geteuid() == 0)
		find_lockdir();
	const char *user = getenv("RBEE_BUILD_USER");
	if (user && *user)
		rb_warn("RBEE_BUILD_USER is no longer used: builds run as uids of their own from "
			"RBEE_BUILD_UIDS (%u-%u)", (unsigned)bcfg.first,
			(unsigned)(bcfg.first + bcfg.count - 1));
}

static int settings(struct rb_err *err)
{
	pthread_once(&bcfg.once, load_settings);
	if (bcfg.error[0])
		return rb_err_set(err, RB_EUNAVAIL, "build sandbox: %s", bcfg.error);
	return 0;
}

/* settings(), and no account uses a uid of the range: what a build needs. */
static int build_settings(struct rb_err *err)
{
	int rc = settings(err);
	if (rc)
		return rc;
	pthread_once(&bcfg.accounts_once, check_accounts);
	if (bcfg.accounts_error[0])
		return rb_err_set(err, RB_EUNAVAIL, "build sandbox: %s", bcfg.accounts_error);
	return 0;
}

int rb_sandbox_startup(struct rb_err *err)
{
	int rc = settings(err);
	if (rc)
		return rc;
	if (geteuid() != 0)
		return 0;
	unsigned char *seen = calloc(bcfg.count, 1);
	if (!seen)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	int n = rb_proc_count_uids(bcfg.first, bcfg.count, seen), spared = 0;
	for (unsigned i = 0; n > 0 && i < bcfg.count; i++) {
		if (!seen[i])
			continue;
		/* Only uids no live hive holds: another hive's running build is left alone. */
		pthread_mutex_lock(&bcfg.lock);
		int fd = bcfg.lockfd[i] < 0 ? lock_uid(bcfg.first + i) : -1;
		pthread_mutex_unlock(&bcfg.lock);
		if (fd < 0)
			continue;
		char why[400];
		if (uid_has_account(bcfg.first + i, why, sizeof(why))) {
			/* Not a build's leftover: never kill an account's processes. */
			rb_warn("build sandbox: %s; its processes are left alone", why);
			spared++;
		} else if (rb_proc_kill_uids(bcfg.first + i, 1) < 0) {
			n = -1;
		}
		close(fd);
	}
	free(seen);
	if (n > 0 && spared)
		rb_info("killed the processes left by interrupted builds (uids %u-%u), but for those "
			"of %d uid%s an account uses", (unsigned)bcfg.first,
			(unsigned)(bcfg.first + bcfg.count - 1), spared, spared == 1 ? "" : "s");
	else if (n > 0)
		rb_info("killed %d process%s left by interrupted builds (uids %u-%u)", n,
			n == 1 ? "" : "es", (unsigned)bcfg.first, (unsigned)(bcfg.first + bcfg.count - 1));
	else if (n < 0)
		rb_warn("could not kill every process of the build uids %u-%u",
			(unsigned)bcfg.first, (unsigned)(bcfg.first + bcfg.count - 1));
	return n > 0 ? n : 0;
}

static int take_uid(uid_t *out, struct rb_err *err)
{
	pthread_mutex_lock(&bcfg.lock);
	for (unsigned k = 0; k < bcfg.count; k++) {
		unsigned i = (bcfg.next + k) % bcfg.count;
		if (bcfg.lockfd[i] >= 0 || (bcfg.lockfd[i] = lock_uid(bcfg.first + i)) < 0)
			continue;
		bcfg.next = (i + 1) % bcfg.count;
		pthread_mutex_unlock(&bcfg.lock);
		*out = bcfg.first + i;
		/* Nothing of an earlier user of this uid may still run. */
		rb_proc_kill_uids(*out, 1);
		return 0;
	}
	pthread_mutex_unlock(&bcfg.lock);
	return rb_err_set(err, RB_EUNAVAIL, "all %u build uids of RBEE_BUILD_UIDS (%u-%u) are in use "
			  "by running builds (of this or another hive): wait for one to end or widen "
			  "the range", bcfg.count,
			  (unsigned)bcfg.first, (unsigned)(bcfg.first + bcfg.count - 1));
}

void rb_sandbox_release(struct rb_sandbox *sb)
{
	if (!sb->owns_uid)
		return;
	if (rb_proc_kill_uids(sb->uid, 1) < 0)
		rb_warn("could not kill every process of build uid %u", (unsigned)sb->uid);
	pthread_mutex_lock(&bcfg.lock);
	close(bcfg.lockfd[sb->uid - bcfg.first]);
	bcfg.lockfd[sb->uid - bcfg.first] = -1;
	pthread_mutex_unlock(&bcfg.lock);
	sb->owns_uid = false;
}

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
		if (setgroups(0, NULL) != 0 || setresgid(sb->gid, sb->gid, sb->gid) != 0 ||
		    setresuid(sb->uid, sb->uid, sb->uid) != 0)
			return errno ? errno : EPERM;
		if (setuid(0) == 0)
			return EPERM; /* the drop did not stick */
	}
	/* No setuid binary or file capability gives anything back from here on. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return errno;
	struct rlimit rl;
	if (sb->cpu_s > 0) {
		rl.rlim_cur = (rlim_t)sb->cpu_s;
		rl.rlim_max = (rlim_t)sb->cpu_s + 5; /* SIGXCPU first, then SIGKILL */
		if (setrlimit(RLIMIT_CPU, &rl) != 0)
			return errno;
	}
	if (sb->fsize > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sb->fsize;
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			return errno;
	}
	if (sb->nofile > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sb->nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return errno;
	}
	if (sb->nproc > 0 && sb->owns_uid) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sb->nproc;
		if (setrlimit(RLIMIT_NPROC, &rl) != 0)
			return errno;
	}
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
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
	int rc = build_settings(err);
	if (rc)
		return rc;
	sb->cpu_s = bcfg.cpu_s;
	sb->fsize = bcfg.fsize_mb * 1024 * 1024;
	sb->nofile = bcfg.nofile;
	sb->nproc = bcfg.nproc;
	sb->timeout_s = (int)bcfg.timeout_s;
	if (geteuid() == 0) {
		uid_t uid = 0;
		if ((rc = take_uid(&uid, err)))
			return rc;
		sb->drop = true;
		sb->owns_uid = true;
		sb->uid = uid;
		sb->gid = (gid_t)uid;
		snprintf(sb->user, sizeof(sb->user), "rbee-build-%u", (unsigned)uid);
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
	pthread_once(&bcfg.once, load_settings);
	log->max = (unsigned long long)(bcfg.log_max_mb > 0 ? bcfg.log_max_mb : 64) * 1024 * 1024;
}

static void log_write_raw(struct rb_build_log *log, const char *text, size_t len)
{
	while (len) {
		ssize_t n = write(log->fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
		log->written += (unsigned long long)n;
	}
}

/* Everything into build.log goes through here: once it holds `max` bytes, one last line says
 * so (in the log and the job) and later output reaches the job's narration only. */
static void log_write(struct rb_build_log *log, const char *text, size_t len)
{
	if (log->fd < 0 || log->capped)
		return;
	if (log->max && log->written + len > log->max) {
		char note[200];
		int n = snprintf(note, sizeof(note),
				 "\n==> build.log reached its limit of %llu MiB (RBEE_BUILD_LOG_MAX_MB); "
				 "later output is not logged\n", log->max / (1024 * 1024));
		log_write_raw(log, note, (size_t)n);
		log->capped = true;
		if (log->job)
			rb_job_say(log->job, "note: build.log reached its limit of %llu MiB "
				   "(RBEE_BUILD_LOG_MAX_MB); later build output is not logged",
				   log->max / (1024 * 1024));
		return;
	}
	log_write_raw(log, text, len);
}

/* --- build progress --- */

/* Blanks and colour escapes (CSI: ESC [ ... final byte) at s[i..n). */
static size_t skip_lead(const char *s, size_t i, size_t n)
{
	for (;;) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i + 1 < n && s[i] == 0x1b && s[i + 1] == '[') {
			i += 2;
			while (i < n && !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
				i++;
			if (i < n)
				i++;
			continue;
		}
		return i;
	}
}

/* A decimal number of 1 to 10 digits at s[*i], at most RB_BUILD_PROGRESS_MAX. */
static bool number_at(const char *s, size_t *i, size_t n, uint64_t *out)
{
	size_t start = *i;
	uint64_t v = 0;
	for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
		if (*i - start >= 10)
			return false;
		v = v * 10 + (uint64_t)(s[*i] - '0');
	}
	if (*i == start || v > RB_BUILD_PROGRESS_MAX)
		return false;
	*out = v;
	return true;
}

/* What may follow a marker: the end of the part, a blank, a colour escape or a colon. */
static bool marker_end(const char *s, size_t i, size_t n)
{
	return i == n || s[i] == ' ' || s[i] == '\t' || s[i] == 0x1b || s[i] == ':';
}

static bool counts_ok(uint64_t done, uint64_t total)
{
	return total > 0 && done <= total;
}

/* One "\r"-free part of a line. */
static bool parse_part(const char *s, size_t n, uint64_t *done, uint64_t *total)
{
	size_t i = skip_lead(s, 0, n), j;
	uint64_t a, b;
	if (i < n && s[i] == '[') { /* "[ 42%]" (cmake, make) or "[123/456]" (ninja) */
		for (j = ++i; j < n && s[j] == ' '; j++)
			;
		bool padded = j > i;
		i = j;
		if (!number_at(s, &i, n, &a))
			return false;
		if (i < n && s[i] == '%') {
			if (i + 1 >= n || s[i + 1] != ']' || a > 100 || !marker_end(s, i + 2, n))
				return false;
			*done = a;
			*total = 100;
			return true;
		}
		if (padded || i >= n || s[i] != '/')
			return false;
		i++;
		if (!number_at(s, &i, n, &b) || i >= n || s[i] != ']' || !counts_ok(a, b) ||
		    !marker_end(s, i + 1, n))
			return false;
		*done = a;
		*total = b;
		return true;
	}
	static const char kw[] = "Building"; /* cargo: "Building [====>    ] 123/456: crates" */
	if (n - i < sizeof(kw) - 1 || memcmp(s + i, kw, sizeof(kw) - 1) != 0)
		return false;
	i += sizeof(kw) - 1;
	for (j = i; j < n && s[j] == ' '; j++)
		;
	if (j == i || j >= n || s[j] != '[')
		return false;
	for (i = j + 1; i < n && (s[i] == '=' || s[i] == '>' || s[i] == ' '); i++)
		;
	if (i >= n || s[i] != ']')
		return false;
	for (j = ++i; j < n && s[j] == ' '; j++)
		;
	if (j == i)
		return false;
	i = j;
	if (!number_at(s, &i, n, &a) || i >= n || s[i] != '/')
		return false;
	i++;
	if (!number_at(s, &i, n, &b) || !counts_ok(a, b) || !marker_end(s, i, n))
		return false;
	*done = a;
	*total = b;
	return true;
}

bool rb_build_progress_parse(const char *line, size_t len, uint64_t *done, uint64_t *total)
{
	bool found = false;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != '\r')
			continue;
		uint64_t d, t;
		if (parse_part(line + start, i - start, &d, &t)) { /* the last part that has one wins */
			*done = d;
			*total = t;
			found = true;
		}
		start = i + 1;
	}
	return found;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send the pending figures when `force` or when the last event is old enough. */
static void progress_send(struct rb_build_log *log, bool force)
{
	if (!log->pending || !log->progress_stage || !log->job)
		return;
	long long now = mono_ms();
	if (!force && log->sent_ms && now - log->sent_ms < RB_BUILD_PROGRESS_MS)
		return;
	log->pending = false;
	if (log->sent_ms && log->pend_done == log->sent_done && log->pend_total == log->sent_total)
		return; /* nothing new */
	rb_job_progress(log->job, log->progress_stage, log->pend_done, log->pend_total, 0);
	log->sent_done = log->pend_done;
	log->sent_total = log->pend_total;
	log->sent_ms = now > 0 ? now : 1;
}

static void progress_line(struct rb_build_log *log, const char *line, size_t len)
{
	uint64_t done, total;
	if (!log->progress_stage || !log->job)
		return;
	if (rb_build_progress_parse(line, len, &done, &total)) {
		log->pend_done = done;
		log->pend_total = total;
		log->pending = true;
	}
	progress_send(log, false);
}

void rb_build_log_line(struct rb_build_log *log, const char *line, size_t len)
{
	if (log->job)
		rb_job_say_raw(log->job, line, len);
	progress_line(log, line, len);
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

/* Polled about every 100 ms: also where held-back progress goes out when no line follows (a
 * long link step after "[ 99%]"). */
static bool should_stop(void *arg)
{
	struct rb_build_log *log = arg;
	progress_send(log, false);
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

/* A failed command's status, with what a resource limit means when one was hit: the shell's
 * child killed by SIGXCPU exits 128+24. */
static void describe_status(const struct rb_sandbox *sb, int status, const char *tail, char *out,
			    size_t len)
{
	char st[96];
	rb_proc_status_str(status, st, sizeof(st));
	int sig = WIFSIGNALED(status) ? WTERMSIG(status)
		  : WIFEXITED(status) && WEXITSTATUS(status) > 128 ? WEXITSTATUS(status) - 128 : 0;
	if (sig == SIGXCPU && sb->cpu_s > 0)
		snprintf(out, len, "exceeded the CPU-time limit (RLIMIT_CPU %ld s, RBEE_BUILD_CPU_S): %s",
			 sb->cpu_s, st);
	else if (sig == SIGXFSZ && sb->fsize > 0)
		snprintf(out, len, "exceeded the file-size limit (RLIMIT_FSIZE %lld MiB, "
			 "RBEE_BUILD_FSIZE_MB): %s", sb->fsize / (1024 * 1024), st);
	else if (strstr(tail, "Resource temporarily unavailable") && sb->nproc > 0 && sb->owns_uid)
		snprintf(out, len, "%s; it may have hit the process limit (RLIMIT_NPROC %ld, "
			 "RBEE_BUILD_NPROC)", st, sb->nproc);
	else if (strstr(tail, "Too many open files") && sb->nofile > 0)
		snprintf(out, len, "%s; it hit the open-files limit (RLIMIT_NOFILE %ld, "
			 "RBEE_BUILD_NOFILE)", st, sb->nofile);
	else
		snprintf(out, len, "%s", st);
}

/* Nothing a sandboxed command started outlives it: its process group went with it in
 * rb_proc_pump; this also takes what left the group (setsid, double fork). */
static void kill_leftovers(const struct rb_sandbox *sb)
{
	if (sb->owns_uid && rb_proc_kill_uids(sb->uid, 1) < 0)
		rb_warn("could not kill every process of build uid %u", (unsigned)sb->uid);
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
	int limit_ms = sb->timeout_s > 0 ? sb->timeout_s * 1000 : 0;
	rc = rb_proc_pump(&p, limit_ms, on_line, should_stop, log, &status, err);
	progress_send(log, true); /* the command's last figures */
	if (log->job)
		rb_job_remove_child(log->job, p.pid);
	kill_leftovers(sb);
	if (rc == -RB_ECANCELLED)
		return rb_err_set(err, RB_ECANCELLED, "%s was cancelled", what);
	if (rc == -RB_ETIMEDOUT)
		return rb_err_set(err, RB_ETIMEDOUT, "%s did not finish within %d s "
				  "(RBEE_BUILD_TIMEOUT_S) and was stopped", what, sb->timeout_s);
	if (rc)
		return rb_err_prefix(err, "%s", what);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char st[300], tail[700];
	rb_build_log_tail(log, tail, sizeof(tail));
	describe_status(sb, status, tail, st, sizeof(st));
	return rb_err_set(err, RB_EIO, "%s failed (%s)%s%s", what, st, tail[0] ? "; last output: " : "",
			  tail);
}

int rb_sandbox_capture(const struct rb_sandbox *sb, bool network, const char *const *argv,
		       const char *const *envp, const char *cwd, int timeout_ms, struct rb_buf *out,
		       size_t max, int *status, struct rb_err *err)
{
	struct sandbox_child child = { sb, network };
	struct rb_env scrubbed;
	struct rb_proc_opts o = { .argv = argv, .envp = sandbox_envp(envp, &scrubbed), .cwd = cwd,
				  .out = RB_PROC_IO_PIPE, .err = RB_PROC_IO_MERGE, .new_pgroup = true,
				  .die_with_parent = true, .child_setup = sandbox_child_setup,
				  .child_arg = &child, .setup_what = "entering the sandbox" };
	struct rb_proc p;
	int rc = rb_proc_start(&o, &p, err);
	rb_env_release(&scrubbed);
	if (rc)
		return rc;
	struct rb_proc_capture c = { out, max };
	rc = rb_proc_pump(&p, timeout_ms, rb_proc_capture_line, NULL, &c, status, err);
	kill_leftovers(sb);
	return rc;
}

struct read_ctx {
	struct rb_proc_capture cap;
	struct rb_job *job;
};

static void read_line(void *arg, const char *line, size_t len, bool is_err)
{
	rb_proc_capture_line(&((struct read_ctx *)arg)->cap, line, len, is_err);
}

static bool read_stop(void *arg)
{
	struct read_ctx *c = arg;
	return c->job && rb_job_cancelled(c->job);
}

int rb_sandbox_read_file(const struct rb_sandbox *sb, struct rb_job *job, const char *path,
			 int out_fd, struct rb_err *err)
{
	struct sandbox_child child = { sb, false };
	struct rb_env env;
	const char *argv[] = { "cat", "--", path, NULL };
	struct rb_proc_opts o = { .argv = argv, .envp = sandbox_envp(NULL, &env), .cwd = "/",
				  .out = RB_PROC_IO_FD, .out_fd = out_fd, .err = RB_PROC_IO_PIPE,
				  .new_pgroup = true, .die_with_parent = true,
				  .child_setup = sandbox_child_setup, .child_arg = &child,
				  .setup_what = "entering the sandbox" };
	struct rb_proc p;
	int rc = rb_proc_start(&o, &p, err);
	rb_env_release(&env);
	if (rc)
		return rc;
	if (job)
		rb_job_add_child(job, p.pid);
	struct rb_buf msg = RB_BUF_INIT;
	struct read_ctx rc_ctx = { { &msg, 1024 }, job };
	int status = 0;
	int limit_ms = sb->timeout_s > 0 ? sb->timeout_s * 1000 : 0;
	rc = rb_proc_pump(&p, limit_ms, read_line, read_stop, &rc_ctx, &status, err);
	if (job)
		rb_job_remove_child(job, p.pid);
	kill_leftovers(sb);
	if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		while (msg.len && msg.data[msg.len - 1] == '\n')
			rb_buf_truncate(&msg, msg.len - 1);
		char st[96];
		rc = rb_err_set(err, RB_EDENIED, "cannot read source file '%s' as the build user "
				"(%s): %s", path, sb->user,
				msg.len ? msg.data : rb_proc_status_str(status, st, sizeof(st)));
	}
	rb_buf_release(&msg);
	return rc;
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
	/* Only prepare() may have the network, and only when the PKGBUILD asks for it: sources are
	 * fetched by the hive, so an honest build needs none (cargo fetch is the usual exception). */
	bool network = fn == RB_PKG_FN_PREPARE && rb_pkgbuild_has_option(pb, "network");
	/* The build tool's own progress ([ 42%], [123/456], cargo's bar) is the job's "building"
	 * progress; package() is a stage of its own, where a `make install` says "[100%]" again. */
	const char *stage = log->progress_stage;
	log->progress_stage = fn == RB_PKG_FN_PACKAGE ? NULL : "building";
	int rc = rb_build_run(log, sb, network, argv, rb_env_envp(&e), dirs->srcdir, what, err);
	log->progress_stage = stage;
	rb_buf_release(&script);
	rb_env_release(&e);
	return rc;
}
