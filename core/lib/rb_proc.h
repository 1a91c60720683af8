/*
 * rb_proc.h - child processes: start, stream their output, time-limit, stop.
 *
 * One way to start children for the whole hive (build phases, git, verify probes, the plugin
 * probe helper, workers): clone the child sharing the hive's memory until its exec (as
 * posix_spawn does; a fork where the set-up needs a process of its own), set it up with
 * async-signal-safe calls only, exec, and report an exec failure to the parent through a CLOEXEC pipe (libuv style), so the caller gets
 * "cannot execute '/x': No such file or directory" instead of a child that exits 127.
 *
 * Ownership rule: whoever starts a child waits for it. Nobody calls waitpid(-1).
 */
#ifndef RB_PROC_H
#define RB_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "rb_buf.h"
#include "rb_err.h"

/* How the child's stdout/stderr are connected. */
enum rb_proc_io {
	RB_PROC_IO_PIPE = 0,  /* a pipe the parent reads (rb_proc.out_fd / err_fd) */
	RB_PROC_IO_NULL = 1,  /* /dev/null */
	RB_PROC_IO_FD = 2,    /* the given file descriptor (e.g. a log file) */
	RB_PROC_IO_MERGE = 3, /* stderr only: into the same place as stdout */
};

struct rb_proc_opts {
	const char *const *argv;  /* argv[0] is searched in PATH unless it contains '/' */
	const char *const *envp;  /* the complete environment; NULL = the hive's environ */
	const char *cwd;          /* working directory, NULL = inherit */
	enum rb_proc_io out, err; /* default (0) is a pipe each */
	int out_fd, err_fd;       /* for RB_PROC_IO_FD */
	bool new_pgroup;          /* own process group (pgid = pid), so the group can be killed */
	bool die_with_parent;     /* PR_SET_PDEATHSIG SIGKILL: the child dies if the hive does */
	/* Runs in the child between fork and exec. Only async-signal-safe calls; return 0 to go
	 * on, or an errno value to fail the start (reported to the parent like an exec error,
	 * prefixed with `setup_what`). */
	int (*child_setup)(void *arg);
	void *child_arg;
	const char *setup_what;
	/* child_setup may run in a child that shares the hive's memory until its exec (the fast
	 * start, clone(CLONE_VM | CLONE_VFORK)): besides being async-signal-safe it writes no
	 * memory but its own stack and changes credentials with raw syscalls only, never with
	 * glibc's set*id()/setgroups() (those signal every thread of the process they think they
	 * run in: the hive's). Without it, a child with a child_setup is forked. */
	bool setup_shares_memory;
};

struct rb_proc {
	pid_t pid;
	bool group; /* started with new_pgroup: the group is killed with it */
	int out_fd; /* read end of the stdout pipe, or -1 */
	int err_fd; /* read end of the stderr pipe, or -1 */
};

/* Start a child. On failure nothing is left running and *err says why. */
int rb_proc_start(const struct rb_proc_opts *opts, struct rb_proc *proc, struct rb_err *err);

/* Called once per complete line of output (without the newline; a last partial line is
 * delivered at EOF). `is_err` tells stderr from stdout. */
typedef void (*rb_proc_line_fn)(void *arg, const char *line, size_t len, bool is_err);
/* Polled about every 100 ms while pumping; returning true stops the child (process group when
 * it has one) and makes rb_proc_pump return -RB_ECANCELLED. */
typedef bool (*rb_proc_stop_fn)(void *arg);

/* Read stdout and stderr together, line by line as they come, until both close, then wait for
 * the child to end, and reap it into *status. The time limit (timeout_ms <= 0: none) and `stop`
 * hold the whole time, pipes open or not: on time-out the child (its process group when it has
 * one) is stopped and -RB_ETIMEDOUT returned. When a child with its own process group ends by
 * itself, whatever is left in its group is SIGKILLed before it is reaped. Closes the pipe fds. */
int rb_proc_pump(struct rb_proc *proc, int timeout_ms, rb_proc_line_fn on_line, rb_proc_stop_fn stop,
		 void *arg, int *status, struct rb_err *err);

/* Count the live (not zombie) processes whose real or effective uid is in [first, first+count);
 * `seen` (count bytes, may be NULL) gets a 1 for each uid found. -1 when /proc is unreadable. */
int rb_proc_count_uids(uid_t first, unsigned count, unsigned char *seen);
/* SIGKILL every process of the uids [first, first+count) (the hive must be root; never uid 0),
 * whatever their process group or session, and wait until none is left. Returns how many there
 * were, -1 when they could not all be killed. */
int rb_proc_kill_uids(uid_t first, unsigned count);

/* Wait for pid up to timeout_ms (< 0: forever). Returns 0 and *status when it ended, 1 when it
 * still runs, negative on error. */
int rb_proc_wait(pid_t pid, int timeout_ms, int *status);

/* SIGTERM the process group `pgid` (or the single process when `group` is false), wait up to
 * `grace_ms` for `pid` to end, then SIGKILL. Reaps `pid` (when it is our child) into *status. */
int rb_proc_stop(pid_t pid, bool group, int grace_ms, int *status);

/* A line callback for rb_proc_pump that appends each line (and a newline) to `out` while it
 * stays under `max` bytes; arg is a struct rb_proc_capture. */
struct rb_proc_capture {
	struct rb_buf *out;
	size_t max;
};
void rb_proc_capture_line(void *arg, const char *line, size_t len, bool is_err);

/* Run to completion capturing stdout+stderr (at most `max_out` bytes kept). */
int rb_proc_run(const char *const *argv, const char *const *envp, const char *cwd, int timeout_ms,
		struct rb_buf *out, size_t max_out, int *status, struct rb_err *err);

/* "exited with status 2", "killed by signal 9 (Killed)". */
const char *rb_proc_status_str(int status, char *buf, size_t len);

/* Search PATH for an executable; returns 0 and the absolute path in *out. */
int rb_proc_which(const char *name, struct rb_buf *out);

/* Monotonic milliseconds. */
long long rb_now_ms(void);
/* The time `ms` milliseconds from now on `clock`: the deadline of a pthread_cond_timedwait on
 * a condition variable of that clock (CLOCK_MONOTONIC where pthread_condattr_setclock set it,
 * else CLOCK_REALTIME). */
struct timespec rb_time_after_ms(clockid_t clock, long long ms);

#endif
