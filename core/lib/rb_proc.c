#include "rb_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* For the code a child runs before its exec (see child_run). */
#define RB_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

struct timespec rb_time_after_ms(clockid_t clock, long long ms)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

long long rb_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *rb_proc_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended with wait status %d", status);
	return buf;
}

int rb_proc_which(const char *name, struct rb_buf *out)
{
	rb_buf_reset(out);
	if (strchr(name, '/')) {
		rb_buf_adds(out, name);
		return access(name, X_OK) == 0 ? 0 : -1;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		rb_buf_reset(out);
		rb_buf_add(out, path, n);
		rb_buf_addf(out, "/%s", name);
		if (n && access(out->data, X_OK) == 0)
			return 0;
		path += n + (colon ? 1 : 0);
	}
	rb_buf_reset(out);
	return -1;
}

/* Child-side failure report: errno value, then a NUL-terminated "what" tag. */
struct exec_report {
	int err;
	char what[120];
};

RB_NO_SANITIZE static void child_fail(int fd, int e, const char *what)
{
	struct exec_report r;
	memset(&r, 0, sizeof(r));
	r.err = e;
	size_t n = strlen(what);
	if (n >= sizeof(r.what))
		n = sizeof(r.what) - 1;
	memcpy(r.what, what, n);
	ssize_t w = write(fd, &r, sizeof(r));
	(void)w;
	_exit(127);
}

/*
 * Child side: mark every descriptor above 2 close-on-exec, so that no child inherits what the
 * hive holds (its listening socket, the home lock, other jobs' pipes and log files). Marked
 * rather than closed so that the exec-report pipe keeps working until the exec itself.
 * close_range(2) does it in one call (Linux 5.11); where it is missing (ENOSYS, or EINVAL from
 * a kernel without CLOSE_RANGE_CLOEXEC) every possible descriptor is marked one by one.
 * Async-signal-safe.
 */
RB_NO_SANITIZE static void cloexec_from_3(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	struct rlimit rl;
	long max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = (long)rl.rlim_cur;
	if (max > (1L << 20))
		max = 1L << 20;
	for (long fd = 3; fd < max; fd++) {
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

static int open_null(int flags)
{
	return open("/dev/null", flags | O_CLOEXEC);
}

/* What the child needs between its start and the exec; filled in before it starts. */
struct child_ctx {
	const struct rb_proc_opts *o;
	const char *prog;
	char *const *envp;
	pid_t parent;
	int rep, nullfd, outw, errw;
};

/*
 * The child, from its start to the exec: async-signal-safe calls only, no allocation and no
 * write to memory the hive uses (in clone_child it shares the hive's memory). Never returns.
 * Not instrumented: under ASan a child on clone_child's stack is one ASan does not know, and
 * child_fail's _exit would make it warn about that in the child's output.
 */
RB_NO_SANITIZE static void child_run(const struct child_ctx *c)
{
	const struct rb_proc_opts *o = c->o;
	/* Default handlers first, then unblock: no hive handler runs in the child. */
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (o->new_pgroup && setpgid(0, 0) != 0)
		child_fail(c->rep, errno, "setpgid");
	int fd_out = o->out == RB_PROC_IO_PIPE ? c->outw
		     : o->out == RB_PROC_IO_FD ? o->out_fd
					       : c->nullfd;
	int fd_err = o->err == RB_PROC_IO_PIPE ? c->errw
		     : o->err == RB_PROC_IO_FD ? o->err_fd
		     : o->err == RB_PROC_IO_MERGE ? fd_out
					       : c->nullfd;
	if (dup2(c->nullfd, 0) < 0 || dup2(fd_out, 1) < 0 || dup2(fd_err, 2) < 0)
		child_fail(c->rep, errno, "dup2");
	cloexec_from_3();
	if (o->cwd && chdir(o->cwd) != 0)
		child_fail(c->rep, errno, "chdir");
	if (o->child_setup) {
		int e = o->child_setup(o->child_arg);
		if (e)
			child_fail(c->rep, e, o->setup_what ? o->setup_what : "setup");
	}
	/* After child_setup: a change of credentials there (the build sandbox's setuid)
	 * clears the parent-death signal, so it is set last. */
	if (o->die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != c->parent)
			_exit(127);
	}
	execve(c->prog, (char *const *)o->argv, c->envp);
	child_fail(c->rep, errno, "exec");
}

/* fork(2): for a child_setup that needs a process of its own (unshare of a user namespace,
 * glibc's credential calls, which stop and signal every thread of the process they run in). */
static pid_t fork_child(const struct child_ctx *c)
{
	pid_t pid = fork();
	if (pid == 0)
		child_run(c);
	return pid;
}

RB_NO_SANITIZE static int clone_main(void *arg)
{
	child_run(arg);
	return 127;
}

/*
 * clone(CLONE_VM | CLONE_VFORK) on a stack of its own, as posix_spawn does: the child shares
 * the hive's memory until its exec, and this thread waits for that. A fork copies the page
 * tables of the whole daemon (threads, stream pools, caches) and the exec throws the copy away:
 * measured at about 4 ms of a worker's spawn on the 2-core VM, against about 0.3 ms this way.
 * Every signal is blocked around it, so no hive handler can run on the child's stack.
 */
static pid_t clone_child(const struct child_ctx *c)
{
	enum { STACK = 256 * 1024 };
	void *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
			   -1, 0);
	if (stack == MAP_FAILED)
		return fork_child(c);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(clone_main, (char *)stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD,
			  (void *)c);
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stack, STACK);
	errno = e;
	return pid;
}

int rb_proc_start(const struct rb_proc_opts *o, struct rb_proc *proc, struct rb_err *err)
{
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, rep[2] = { -1, -1 };
	int nullfd = -1;
	struct rb_err local = RB_ERR_INIT;
	if (!err)
		err = &local;
	proc->pid = -1;
	proc->group = false;
	proc->out_fd = proc->err_fd = -1;
	if (!o->argv || !o->argv[0])
		return rb_err_set(err, RB_EINTERNAL, "no program to run");

	/* Resolve argv[0] before forking: PATH search allocates, which the child must not. */
	struct rb_buf prog = RB_BUF_INIT;
	if (o->cwd && o->argv[0][0] != '/' && strchr(o->argv[0], '/')) {
		/* "./name": relative to the child's working directory, which is where it is
		 * looked for (the sandbox runs binaries this way, from a directory whose
		 * ancestors it may not enter). */
		struct rb_buf full = RB_BUF_INIT;
		rb_buf_addf(&full, "%s/%s", o->cwd, o->argv[0]);
		int ok = access(full.data, X_OK);
		int e = errno;
		rb_buf_release(&full);
		if (ok != 0)
			return rb_err_set(err, RB_ENOTFOUND, "cannot execute '%s' in '%s': %s",
					  o->argv[0], o->cwd, strerror(e));
		rb_buf_adds(&prog, o->argv[0]);
	} else if (rb_proc_which(o->argv[0], &prog) != 0) {
		rb_buf_release(&prog);
		return rb_err_set(err, RB_ENOTFOUND, "cannot execute '%s': %s", o->argv[0],
				  strchr(o->argv[0], '/') ? strerror(errno) : "not found in PATH");
	}
	if ((o->out == RB_PROC_IO_PIPE && pipe2(outp, O_CLOEXEC) != 0) ||
	    (o->err == RB_PROC_IO_PIPE && pipe2(errp, O_CLOEXEC) != 0) || pipe2(rep, O_CLOEXEC) != 0 ||
	    (nullfd = open_null(O_RDWR)) < 0) {
		int e = errno;
		rb_err_set(err, RB_EIO, "cannot create pipes: %s", strerror(e));
		goto fail;
	}
	char *const *envp = (char *const *)(o->envp ? o->envp : (const char *const *)environ);
	struct child_ctx c = {
		.o = o, .prog = prog.data, .envp = envp, .parent = getpid(), .rep = rep[1],
		.nullfd = nullfd, .outw = outp[1], .errw = errp[1],
	};
	pid_t pid = o->child_setup && !o->setup_shares_memory ? fork_child(&c) : clone_child(&c);
	if (pid < 0) {
		rb_err_set(err, RB_EIO, "cannot fork: %s", strerror(errno));
		goto fail;
	}
	close(rep[1]);
	rep[1] = -1;
	struct exec_report r;
	ssize_t n;
	do
		n = read(rep[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	close(rep[0]);
	rep[0] = -1;
	if (n == (ssize_t)sizeof(r)) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		r.what[sizeof(r.what) - 1] = '\0';
		if (!strcmp(r.what, "exec"))
			rb_err_set(err, RB_EIO, "cannot execute '%s': %s", prog.data, strerror(r.err));
		else if (!strcmp(r.what, "chdir"))
			rb_err_set(err, RB_EIO, "cannot enter '%s' for '%s': %s", o->cwd, prog.data,
				   strerror(r.err));
		else
			rb_err_set(err, RB_EIO, "cannot start '%s': %s failed: %s", prog.data, r.what,
				   strerror(r.err));
		goto fail;
	}
	close(nullfd);
	if (outp[1] >= 0)
		close(outp[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	proc->pid = pid;
	proc->group = o->new_pgroup;
	proc->out_fd = outp[0];
	proc->err_fd = errp[0];
	rb_buf_release(&prog);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (rep[i] >= 0)
			close(rep[i]);
	}
	if (nullfd >= 0)
		close(nullfd);
	rb_buf_release(&prog);
	return -err->code;
}

int rb_proc_wait(pid_t pid, int timeout_ms, int *status)
{
	long long deadline = timeout_ms >= 0 ? rb_now_ms() + timeout_ms : 0;
	int delay_us = 1000;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (timeout_ms >= 0 && rb_now_ms() >= deadline)
			return 1;
		if (r == 0) {
			usleep((useconds_t)delay_us);
			if (delay_us < 20000)
				delay_us *= 2;
		}
	}
}

int rb_proc_stop(pid_t pid, bool group, int grace_ms, int *status)
{
	if (pid <= 0)
		return -1;
	kill(group ? -pid : pid, SIGTERM);
	int rc = rb_proc_wait(pid, grace_ms, status);
	if (rc == 0) {
		if (group)
			kill(-pid, SIGKILL); /* stragglers left in the group */
		return 0;
	}
	if (rc < 0) {
		/* Not our child (re-adopted worker): poll for its disappearance instead. */
		long long deadline = rb_now_ms() + grace_ms;
		while (kill(pid, 0) == 0 && rb_now_ms() < deadline)
			usleep(20000);
		if (kill(pid, 0) != 0)
			return 0;
	}
	kill(group ? -pid : pid, SIGKILL);
	if (rc > 0)
		return rb_proc_wait(pid, -1, status);
	return 0;
}

struct line_acc {
	struct rb_buf buf;
	bool is_err;
};

static void flush_lines(struct line_acc *a, rb_proc_line_fn fn, void *arg, bool eof)
{
	size_t start = 0;
	for (size_t i = 0; i < a->buf.len; i++) {
		if (a->buf.data[i] != '\n')
			continue;
		size_t end = i;
		if (end > start && a->buf.data[end - 1] == '\r')
			end--;
		a->buf.data[end] = '\0';
		if (fn)
			fn(arg, a->buf.data + start, end - start, a->is_err);
		start = i + 1;
	}
	if (eof && start < a->buf.len) {
		if (fn)
			fn(arg, a->buf.data + start, a->buf.len - start, a->is_err);
		start = a->buf.len;
	}
	if (start) {
		memmove(a->buf.data, a->buf.data + start, a->buf.len - start);
		rb_buf_truncate(&a->buf, a->buf.len - start);
	}
}

/* Whether pumping must end now: cancelled (-RB_ECANCELLED) or past the deadline
 * (-RB_ETIMEDOUT), with *err set; 0 to go on. */
static int pump_should_end(rb_proc_stop_fn stop, void *arg, long long deadline, int timeout_ms,
			   struct rb_err *err)
{
	if (stop && stop(arg))
		return rb_err_set(err, RB_ECANCELLED, "cancelled");
	if (deadline && rb_now_ms() >= deadline)
		return rb_err_set(err, RB_ETIMEDOUT, "timed out after %d ms", timeout_ms);
	return 0;
}

int rb_proc_pump(struct rb_proc *proc, int timeout_ms, rb_proc_line_fn on_line, rb_proc_stop_fn stop,
		 void *arg, int *status, struct rb_err *err)
{
	struct line_acc acc[2] = { { RB_BUF_INIT, false }, { RB_BUF_INIT, true } };
	int fds[2] = { proc->out_fd, proc->err_fd };
	long long deadline = timeout_ms > 0 ? rb_now_ms() + timeout_ms : 0;
	int rc = 0;
	for (;;) {
		struct pollfd pfd[2];
		int map[2], n = 0;
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0) {
				pfd[n].fd = fds[i];
				pfd[n].events = POLLIN;
				map[n++] = i;
			}
		if (n == 0)
			break;
		int pr = poll(pfd, (nfds_t)n, 100);
		if (pr < 0 && errno != EINTR) {
			rc = rb_err_set(err, RB_EIO, "poll: %s", strerror(errno));
			break;
		}
		for (int k = 0; pr > 0 && k < n; k++) {
			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int i = map[k];
			char chunk[8192];
			ssize_t r = read(fds[i], chunk, sizeof(chunk));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				flush_lines(&acc[i], on_line, arg, true);
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			rb_buf_add(&acc[i].buf, chunk, (size_t)r);
			flush_lines(&acc[i], on_line, arg, false);
			/* A line longer than 64 KiB is passed on in pieces rather than held forever. */
			if (acc[i].buf.len > 65536)
				flush_lines(&acc[i], on_line, arg, true);
		}
		if ((rc = pump_should_end(stop, arg, deadline, timeout_ms, err)))
			break;
	}
	for (int i = 0; i < 2; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		rb_buf_release(&acc[i].buf);
	}
	proc->out_fd = proc->err_fd = -1;
	/* The pipes are closed (or were never there), but the child may still run: one that
	 * closed or handed off its output (a daemon, `exec >/dev/null; sleep infinity`) is held
	 * to the same time limit and cancel as one that keeps writing. */
	int delay_ms = 1;
	while (!rc) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)proc->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
			if (errno == EINTR)
				continue;
			rc = rb_err_set(err, RB_EIO, "cannot wait for process %d: %s", (int)proc->pid,
					strerror(errno));
			break;
		}
		if (si.si_pid == proc->pid)
			break; /* ended; reaped below */
		if ((rc = pump_should_end(stop, arg, deadline, timeout_ms, err)))
			break;
		usleep((useconds_t)delay_ms * 1000);
		if (delay_ms < 50)
			delay_ms *= 2;
	}
	int st = 0;
	if (rc) {
		rb_proc_stop(proc->pid, proc->group, 2000, &st);
	} else if (!rc) {
		/* Whatever the child left in its process group goes with it: killed while the
		 * leader is still an unreaped zombie, so the group id cannot have been reused. */
		if (proc->group)
			kill(-proc->pid, SIGKILL);
		if (rb_proc_wait(proc->pid, -1, &st) != 0)
			rc = rb_err_set(err, RB_EIO, "cannot wait for process %d: %s", (int)proc->pid,
					strerror(errno));
	}
	if (status)
		*status = st;
	return rc;
}

/* Real and effective uid of a live (not zombie) process from /proc/<pid>/status; false when
 * it is gone or a zombie. */
static bool proc_uids(long pid, uid_t *ruid, uid_t *euid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool live = true, have = false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "State:", 6)) {
			const char *p = line + 6;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == 'Z' || *p == 'X')
				live = false;
		} else if (!strncmp(line, "Uid:", 4)) {
			unsigned long r, e;
			if (sscanf(line + 4, "%lu %lu", &r, &e) == 2) {
				*ruid = (uid_t)r;
				*euid = (uid_t)e;
				have = true;
			}
			break;
		}
	}
	fclose(f);
	return live && have;
}

int rb_proc_count_uids(uid_t first, unsigned count, unsigned char *seen)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		uid_t r, e;
		if (*end || pid <= 1 || !proc_uids(pid, &r, &e))
			continue;
		bool in_r = r >= first && r - first < count, in_e = e >= first && e - first < count;
		if (!in_r && !in_e)
			continue;
		n++;
		if (seen)
			seen[(in_r ? r : e) - first] = 1;
	}
	closedir(d);
	return n;
}

/* kill(-1, SIGKILL) from a child that is `uid`: the kernel delivers it to every process of
 * that uid in one pass (no fork can slip past), wherever their process group or session. */
static void kill_as(uid_t uid)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			_exit(1);
		kill(-1, SIGKILL);
		_exit(0);
	}
	if (pid > 0)
		rb_proc_wait(pid, -1, NULL);
}

int rb_proc_kill_uids(uid_t first, unsigned count)
{
	if (first == 0 || count == 0 || geteuid() != 0)
		return 0;
	unsigned char *seen = calloc(count, 1);
	if (!seen)
		return -1;
	int total = -1;
	for (int round = 0; round < 100; round++) {
		memset(seen, 0, count);
		int n = rb_proc_count_uids(first, count, seen);
		if (n < 0)
			break;
		if (total < 0)
			total = n;
		if (n == 0) {
			free(seen);
			return total;
		}
		for (unsigned i = 0; i < count; i++)
			if (seen[i])
				kill_as(first + i);
		usleep(round < 10 ? 2000 : 20000); /* SIGKILL takes effect asynchronously */
	}
	free(seen);
	return -1;
}

void rb_proc_capture_line(void *arg, const char *line, size_t len, bool is_err)
{
	(void)is_err;
	struct rb_proc_capture *c = arg;
	if (c->out->len + len + 1 > c->max)
		return;
	rb_buf_add(c->out, line, len);
	rb_buf_addch(c->out, '\n');
}

int rb_proc_run(const char *const *argv, const char *const *envp, const char *cwd, int timeout_ms,
		struct rb_buf *out, size_t max_out, int *status, struct rb_err *err)
{
	struct rb_proc_opts o = { .argv = argv, .envp = envp, .cwd = cwd, .err = RB_PROC_IO_MERGE,
				  .new_pgroup = true, .die_with_parent = true };
	struct rb_proc p;
	int rc = rb_proc_start(&o, &p, err);
	if (rc)
		return rc;
	struct rb_buf scratch = RB_BUF_INIT;
	struct rb_proc_capture c = { out ? out : &scratch, max_out ? max_out : 65536 };
	rc = rb_proc_pump(&p, timeout_ms, rb_proc_capture_line, NULL, &c, status, err);
	rb_buf_release(&scratch);
	return rc;
}
