/*
 * staging.c - claiming RBEE_HOME/staging and removing an interrupted hive's leftovers (see
 * staging.h).
 */
#include "staging.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "build.h"
#include "hive.h"
#include "rb_fs.h"
#include "rb_log.h"

/* state/hive.lock, held (exclusive) for the life of the process; closing it would drop the
 * claim. Close-on-exec, and no child inherits it (rb_proc_start). */
static int claim_fd = -1;

/* SIGKILL every process whose working directory is `dir` or below it: the build commands of
 * an interrupted install. A build's shell dies with the hive (PR_SET_PDEATHSIG), but what it
 * started (make, cc, sleep) lives on in its process group; the directory it works in is what
 * surely marks it as ours, whatever pids were reused since. */
static void kill_processes_in(const char *dir)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return;
	size_t n = strlen(real);
	DIR *proc = opendir("/proc");
	if (!proc)
		return;
	pid_t victims[256];
	size_t nv = 0;
	struct dirent *de;
	while ((de = readdir(proc)) && nv < sizeof(victims) / sizeof(victims[0])) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == getpid())
			continue;
		char link[64], cwd[PATH_MAX];
		snprintf(link, sizeof(link), "/proc/%ld/cwd", pid);
		ssize_t len = readlink(link, cwd, sizeof(cwd) - 1);
		if (len <= 0)
			continue;
		cwd[len] = '\0';
		if (!strncmp(cwd, real, n) && (cwd[n] == '/' || cwd[n] == '\0') &&
		    kill((pid_t)pid, SIGKILL) == 0)
			victims[nv++] = (pid_t)pid;
	}
	closedir(proc);
	if (nv)
		rb_info("stopped %zu process%s of an interrupted build in '%s'", nv,
			nv == 1 ? "" : "es", real);
	/* Let them go before their directory does (SIGKILL is not instant). */
	for (int tries = 0; tries < 50; tries++) {
		size_t alive = 0;
		for (size_t i = 0; i < nv; i++)
			alive += kill(victims[i], 0) == 0;
		if (!alive)
			break;
		usleep(20 * 1000);
	}
}

/* An install's build directory outside RBEE_HOME, if its stage names one: only directories
 * the install pipeline creates (/var/tmp or /tmp, "rbee-build-...") are ever removed. */
static void remove_outside(const char *stage)
{
	char link[PATH_MAX], target[PATH_MAX];
	if ((size_t)snprintf(link, sizeof(link), "%s/%s", stage, RB_STAGING_OUTSIDE_LINK) >=
	    sizeof(link))
		return;
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	bool ours = base && !strncmp(base + 1, "rbee-build-", 11) && !strstr(target, "/../") &&
		    ((base - target == 8 && !strncmp(target, "/var/tmp", 8)) ||
		     (base - target == 4 && !strncmp(target, "/tmp", 4)));
	if (!ours)
		return;
	kill_processes_in(target);
	struct rb_err err = RB_ERR_INIT;
	if (rb_fs_rm_rf(target, &err) != 0)
		rb_warn("cannot remove the build directory '%s' of an interrupted install: %s", target,
			err.msg);
}

/* Remove the entries of `dir` whose names start with `prefix` ("" = all but dot files when
 * `dots` is false). Returns how many were removed. */
static int remove_entries(const char *dir, const char *prefix, bool dots)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int removed = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if ((!dots && name[0] == '.') || strncmp(name, prefix, strlen(prefix)))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
			continue;
		remove_outside(path);
		kill_processes_in(path);
		struct rb_err err = RB_ERR_INIT;
		if (rb_fs_rm_rf(path, &err) != 0)
			rb_warn("cannot remove '%s', left by an interrupted hive: %s", path, err.msg);
		else
			removed++;
	}
	closedir(d);
	return removed;
}

/* What the lock file says about its holder: "pid 123 port 7835", for the refusal. */
static void read_holder(int fd, char *out, size_t len)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	long pid = 0, port = 0;
	const char *p = strstr(buf, "pid ");
	if (p)
		pid = strtol(p + 4, NULL, 10);
	p = strstr(buf, "port ");
	if (p)
		port = strtol(p + 5, NULL, 10);
	if (pid > 0 && port > 0)
		snprintf(out, len, "pid %ld, port %ld", pid, port);
	else if (pid > 0)
		snprintf(out, len, "pid %ld, still starting: no port yet", pid);
	else
		snprintf(out, len, "pid unknown");
}

static void write_holder(unsigned port)
{
	char buf[64];
	int n = port ? snprintf(buf, sizeof(buf), "pid %d port %u\n", (int)getpid(), port)
		     : snprintf(buf, sizeof(buf), "pid %d\n", (int)getpid());
	/* In place: the lock belongs to this inode, a rename would drop it. */
	if (ftruncate(claim_fd, 0) != 0 || pwrite(claim_fd, buf, (size_t)n, 0) != n)
		rb_warn("cannot write the hive lock: %s", strerror(errno));
}

int rb_staging_claim(struct rb_hive *hive, struct rb_err *err)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/hive.lock", hive->paths.state) >= sizeof(path))
		return rb_err_set(err, RB_EINVAL, "state directory path too long: '%s'",
				  hive->paths.state);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return rb_err_set(err, RB_EIO, "cannot open the hive lock '%s': %s", path,
				  strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char holder[128];
		read_holder(fd, holder, sizeof(holder));
		close(fd);
		if (e == EWOULDBLOCK)
			return rb_err_set(err, RB_ECONFLICT,
					  "another rbee-hive (%s) already uses RBEE_HOME '%s': stop it "
					  "first, or give this hive another RBEE_HOME", holder,
					  hive->paths.home);
		return rb_err_set(err, RB_EIO, "cannot lock '%s': %s", path, strerror(e));
	}
	if (claim_fd >= 0)
		close(claim_fd);
	claim_fd = fd;
	write_holder(0);
	/* No other hive works in this home: what is in staging, and every process of the build
	 * uids, is an interrupted hive's. The processes go first. */
	int rc = rb_sandbox_startup(err);
	if (rc < 0)
		return rc;
	int removed = remove_entries(hive->paths.staging, "", true) +
		      remove_entries(hive->paths.models, ".deleting-", true);
	if (removed)
		rb_info("removed %d leftover%s of an interrupted install, removal or delete "
			"from '%s'", removed, removed == 1 ? "" : "s", hive->paths.home);
	return 0;
}

void rb_staging_note_port(unsigned port)
{
	if (claim_fd >= 0)
		write_holder(port);
}
