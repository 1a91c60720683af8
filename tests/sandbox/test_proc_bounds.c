/*
 * test_proc_bounds.c - every child of the hive is bounded: rb_proc_pump holds its time limit and
 * its cancel after the child closed its pipes, kills what the child left in its process group,
 * children inherit no descriptor above 2, rb_proc_kill_uids takes processes that left their
 * group and session, and rb_fs_rm_rf removes a tree deeper than the open-files limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rb_fs.h"
#include "rb_proc.h"

/* True while a process whose command line contains `marker` runs (pgrep -f). */
static bool running(const char *marker)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "pgrep -f '%s' >/dev/null", marker);
	return system(cmd) == 0;
}

static void kill_marker(const char *marker)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "pkill -KILL -f '%s' >/dev/null 2>&1", marker);
	if (system(cmd) < 0)
		return;
}

static int pump(const char *script, int timeout_ms, rb_proc_stop_fn stop, struct rb_buf *out,
		int *status, struct rb_err *err)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	struct rb_proc_opts o = { .argv = argv, .err = RB_PROC_IO_MERGE, .new_pgroup = true,
				  .die_with_parent = true };
	struct rb_proc p;
	int rc = rb_proc_start(&o, &p, err);
	if (rc)
		return rc;
	struct rb_proc_capture c = { out, 65536 };
	return rb_proc_pump(&p, timeout_ms, rb_proc_capture_line, stop, &c, status, err);
}

/* A child that closes its output and sleeps: the 500 ms limit holds (it ran 3 s and more). */
static void deadline_holds_after_pipes_close(void **state)
{
	(void)state;
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	int status = 0;
	long long t0 = rb_now_ms();
	int rc = pump("exec >/dev/null 2>&1; exec sleep 3011", 500, NULL, &out, &status, &err);
	long long took = rb_now_ms() - t0;
	assert_int_equal(rc, -RB_ETIMEDOUT);
	assert_non_null(strstr(err.msg, "timed out after 500 ms"));
	assert_true(took < 2500);
	assert_false(running("sleep 301[1]"));
	rb_buf_release(&out);
}

static long long stop_at;
static bool stop_after(void *arg)
{
	(void)arg;
	return rb_now_ms() >= stop_at;
}

/* Cancel holds too, pipes closed or not. */
static void cancel_holds_after_pipes_close(void **state)
{
	(void)state;
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	int status = 0;
	stop_at = rb_now_ms() + 300;
	long long t0 = rb_now_ms();
	int rc = pump("exec >/dev/null 2>&1; exec sleep 3012", 0, stop_after, &out, &status, &err);
	assert_int_equal(rc, -RB_ECANCELLED);
	assert_true(rb_now_ms() - t0 < 2500);
	assert_false(running("sleep 301[2]"));
	rb_buf_release(&out);
}

/* What a child leaves in its process group dies with it. */
static void group_is_killed_when_the_child_ends(void **state)
{
	(void)state;
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	int status = 0;
	int rc = pump("sleep 3013 >/dev/null 2>&1 & echo started", 5000, NULL, &out, &status, &err);
	assert_int_equal(rc, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	usleep(100 * 1000);
	bool left = running("sleep 301[3]");
	kill_marker("sleep 301[3]");
	assert_false(left);
	rb_buf_release(&out);
}

/* No descriptor of the parent above 2 reaches a child, CLOEXEC or not. */
static void children_inherit_no_descriptors(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
	assert_true(fd > 2);
	int hi = dup2(fd, 200);
	assert_int_equal(hi, 200);
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	int status = 0;
	/* The shell's own descriptors, listed by another process: 0 1 2 only. */
	int rc = pump("ls /proc/$$/fd | tr '\\n' ' '", 5000, NULL, &out, &status, &err);
	close(fd);
	close(hi);
	assert_int_equal(rc, 0);
	assert_string_equal(out.data, "0 1 2 \n");
	rb_buf_release(&out);
}

/* A process that left its group and session (setsid, double fork) still dies with its uid. */
static void kill_uids_takes_escaped_processes(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	const uid_t uid = 64999;
	rb_proc_kill_uids(uid, 1); /* an earlier run's, if any */
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
			_exit(20);
		if (fork() == 0) {
			setsid();
			if (fork() == 0) {
				execlp("sleep", "sleep", "3014", (char *)NULL);
				_exit(21);
			}
			_exit(0);
		}
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 500 && !running("sleep 301[4]"); i++)
		usleep(10000);
	assert_true(running("sleep 301[4]"));
	assert_int_equal(rb_proc_count_uids(uid, 1, NULL), 1);
	assert_int_equal(rb_proc_kill_uids(uid, 1), 1);
	assert_int_equal(rb_proc_count_uids(uid, 1, NULL), 0);
	assert_false(running("sleep 301[4]"));
}

/* 2500 levels under a 1024 open-files limit: removed (the recursive removal ran out at 1024). */
static void deep_tree_is_removed(void **state)
{
	(void)state;
	char top[] = "/tmp/rbee-deep-XXXXXX";
	assert_non_null(mkdtemp(top));
	int fd = open(top, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	for (int i = 0; i < 2500; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		int f = openat(fd, "f", O_WRONLY | O_CREAT, 0644);
		assert_true(f >= 0);
		close(f);
		int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		assert_true(nfd >= 0);
		close(fd);
		fd = nfd;
	}
	assert_int_equal(mkdirat(fd, "readonly", 0500), 0);
	close(fd);
	struct rlimit old, rl;
	getrlimit(RLIMIT_NOFILE, &old);
	rl = old;
	rl.rlim_cur = 1024;
	setrlimit(RLIMIT_NOFILE, &rl);
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_fs_rm_rf(top, &err);
	setrlimit(RLIMIT_NOFILE, &old);
	if (rc)
		fprintf(stderr, "rb_fs_rm_rf: %s\n", err.msg);
	assert_int_equal(rc, 0);
	assert_false(rb_fs_exists(top));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deadline_holds_after_pipes_close),
		cmocka_unit_test(cancel_holds_after_pipes_close),
		cmocka_unit_test(group_is_killed_when_the_child_ends),
		cmocka_unit_test(children_inherit_no_descriptors),
		cmocka_unit_test(kill_uids_takes_escaped_processes),
		cmocka_unit_test(deep_tree_is_removed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
