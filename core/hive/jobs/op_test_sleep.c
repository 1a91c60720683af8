/*
 * op_test_sleep.c - `test_sleep`, a slow operation for testing the job engine: cancel, child
 * process groups, concurrency, long event logs, failures.
 *
 * Never part of rbee-hive: this file is not in the hive library. It is linked only into the
 * tests' build of the daemon (rbee-hive-test, core/CMakeLists.txt) and into unit tests, where a
 * constructor adds its row to the operation table (rb_ops_add). Even there it exists
 * only when the hive runs with RBEE_ENABLE_TEST_OPS=1 (rb_jobs_op_available refuses it
 * otherwise, and so does its validator, for any other caller). Fields:
 *   seconds (u32, required, at most 3600)  how long its `sleep` child runs
 *   lines   (u32, optional, at most 1e6)   narration lines "line N of M" to emit first
 *   fail    (string, optional)             end with [ERROR] <fail> instead of [DONE]
 *   stubborn (u32, optional)               1: the child ignores SIGTERM, so a cancel must
 *                                          escalate to SIGKILL
 * It keeps a scratch file under the state directory while it runs and removes it on every
 * outcome, like an operation that stages partial files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hive.h"
#include "jobs.h"
#include "ops.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_proc.h"

static int test_validate(struct rb_hive *hive, struct json_object *req, struct rb_err *err)
{
	if (!rb_jobs_test_ops_enabled(hive))
		return rb_err_set(err, RB_EINVAL,
				  "unknown operation '%s' (test operations need RBEE_ENABLE_TEST_OPS=1)",
				  rb_json_str(req, "operation"));
	if (rb_json_int(req, "seconds", 0) > 3600)
		return rb_err_set(err, RB_EINVAL, "field 'seconds' must be at most 3600");
	if (rb_json_int(req, "lines", 0) > 1000000)
		return rb_err_set(err, RB_EINVAL, "field 'lines' must be at most 1000000");
	return 0;
}

/* Wait for the sleep child, reporting progress, until it ends or the job is cancelled. */
static int wait_child(struct rb_job *job, pid_t pid, uint32_t seconds, struct rb_err *err)
{
	long long start = rb_now_ms(), total = (long long)seconds * 1000;
	int status = 0;
	for (;;) {
		int rc = rb_proc_wait(pid, 100, &status);
		if (rc < 0)
			return rb_err_set(err, RB_EIO, "cannot wait for 'sleep' (pid %d): %s", (int)pid,
					  strerror(errno));
		if (rc == 0)
			break;
		if (rb_job_cancelled(job)) {
			/* The engine already sent SIGTERM to the group; make sure and reap. */
			rb_proc_stop(pid, true, RB_JOB_KILL_GRACE_MS, &status);
			break;
		}
		long long done = rb_now_ms() - start;
		rb_job_progress(job, "sleeping", (uint64_t)(done < total ? done : total), (uint64_t)total,
				1000.0);
	}
	rb_job_remove_child(job, pid);
	char how[96];
	if (rb_job_cancelled(job)) {
		/* Tests read this line to tell a SIGTERM stop from a SIGKILL after the grace. */
		rb_job_say(job, "'sleep' (pid %d) %s", (int)pid,
			   rb_proc_status_str(status, how, sizeof(how)));
		return -RB_ECANCELLED;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return rb_err_set(err, RB_EIO, "'sleep' (pid %d) %s", (int)pid,
				  rb_proc_status_str(status, how, sizeof(how)));
	rb_job_progress(job, "sleeping", (uint64_t)total, (uint64_t)total, 1000.0);
	return 0;
}

static int run_sleep(struct rb_job *job, uint32_t seconds, bool stubborn, struct rb_err *err)
{
	char arg[16];
	snprintf(arg, sizeof(arg), "%u", seconds);
	/* An ignored signal stays ignored across exec, so this sleep shrugs off SIGTERM. */
	const char *plain[] = { "sleep", arg, NULL };
	const char *deaf[] = { "sh", "-c", "trap '' TERM; exec sleep \"$0\"", arg, NULL };
	const char *const *argv = stubborn ? deaf : plain;
	struct rb_proc_opts o = { .argv = argv, .out = RB_PROC_IO_NULL, .err = RB_PROC_IO_NULL,
				  .new_pgroup = true, .die_with_parent = true };
	struct rb_proc p;
	if (rb_proc_start(&o, &p, err))
		return -err->code;
	rb_job_add_child(job, p.pid);
	rb_job_say(job, "started 'sleep %u' with pid %d%s", seconds, (int)p.pid,
		   stubborn ? " (ignoring SIGTERM)" : "");
	return wait_child(job, p.pid, seconds, err);
}

static int test_sleep(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_hive *hive = rb_job_hive(job);
	uint32_t seconds = (uint32_t)rb_json_int(req, "seconds", 0);
	uint32_t lines = (uint32_t)rb_json_int(req, "lines", 0);
	const char *fail = rb_json_str(req, "fail");
	bool stubborn = rb_json_int(req, "stubborn", 0) != 0;
	char scratch[PATH_MAX];
	if (snprintf(scratch, sizeof(scratch), "%s/%s.scratch", hive->paths.state, rb_job_id(job)) >=
	    (int)sizeof(scratch))
		return rb_err_set(err, RB_EIO, "state directory path '%s' is too long", hive->paths.state);
	if (rb_fs_mkdir_p(hive->paths.state, 0755, err) ||
	    rb_fs_write_atomic(scratch, "partial\n", 8, 0644, err))
		return -err->code;
	rb_job_say(job, "scratch file '%s'", scratch);
	for (uint32_t i = 1; i <= lines && !rb_job_cancelled(job); i++)
		rb_job_say(job, "line %u of %u", i, lines);
	int rc = rb_job_cancelled(job) ? -RB_ECANCELLED : run_sleep(job, seconds, stubborn, err);
	if (unlink(scratch) == 0)
		rb_job_say(job, "removed scratch file '%s'", scratch);
	if (rc)
		return rc;
	if (fail)
		return rb_err_set(err, RB_EIO, "%s", fail);
	struct json_object *o = json_object_new_object();
	rb_json_add_int(o, "slept_s", seconds);
	rb_json_add_int(o, "lines", lines);
	rb_job_data(job, o);
	return 0;
}

static const struct rb_op test_sleep_ops[] = {
	{ "test_sleep",
	  { { "seconds", RB_FIELD_U32, 1, NULL }, { "lines", RB_FIELD_U32, 0, NULL },
	    { "fail", RB_FIELD_STRING, 0, NULL }, { "stubborn", RB_FIELD_U32, 0, NULL } },
	  test_validate, test_sleep, "test only: run a 'sleep' child, narrating" },
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};

/* Runs before main(), so the row is in the table before any thread looks. */
__attribute__((constructor)) static void register_test_ops(void)
{
	if (rb_ops_add(test_sleep_ops)) {
		fputs("op_test_sleep.c: cannot register test_sleep in the operation table\n", stderr);
		abort();
	}
}
