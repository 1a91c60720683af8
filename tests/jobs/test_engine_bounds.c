/*
 * test_engine_bounds.c - the job engine's memory stays bounded across jobs: finished jobs are
 * retired once their events together pass RB_JOBS_KEEP_BYTES, newest kept, not only after
 * RB_JOBS_KEEP_FINISHED of them (200 jobs of 4 MiB each would hold 800 MiB).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hive.h"
#include "hive_ops.h"
#include "jobs/jobs.h"
#include "rb_fs.h"

static struct rb_hive hive;
static char tmpdir[] = "/tmp/rbee-bounds-XXXXXX";

/* Enough jobs, each filling its own bound, to pass the engine-wide one. */
#define NJOBS ((int)(RB_JOBS_KEEP_BYTES / RB_JOB_MAX_EVENT_BYTES) + 4)

static int setup(void **state)
{
	(void)state;
	memset(&hive, 0, sizeof(hive));
	snprintf(hive.cfg.hive_id, sizeof(hive.cfg.hive_id), "localhost");
	hive.cfg.max_jobs = NJOBS;
	assert_non_null(mkdtemp(tmpdir));
	snprintf(hive.paths.home, sizeof(hive.paths.home), "%s", tmpdir);
	snprintf(hive.paths.state, sizeof(hive.paths.state), "%s/state", tmpdir);
	setenv("RBEE_ENABLE_TEST_OPS", "1", 1);
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_jobs_init(&hive, &err), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rb_jobs_shutdown(&hive);
	rb_jobs_free(&hive);
	rb_fs_rm_rf(tmpdir, NULL);
	return 0;
}

static void submit(const char *body, char id[RB_JOB_ID_MAX])
{
	const struct rb_op *op;
	struct json_object *req;
	struct rb_err err = RB_ERR_INIT;
	if (rb_jobs_parse_request(&hive, body, strlen(body), &op, &req, &err) ||
	    rb_jobs_submit(&hive, op, req, id, &err))
		fail_msg("submit %s: %s", body, err.msg);
}

/* Jobs listed, and how many of them are finished. */
static size_t listed(size_t *finished, bool *has_newest, const char *newest)
{
	struct json_object *list = rb_jobs_list_json(&hive), *jobs;
	json_object_object_get_ex(list, "jobs", &jobs);
	size_t n = json_object_array_length(jobs);
	*finished = 0;
	*has_newest = false;
	for (size_t i = 0; i < n; i++) {
		struct json_object *j = json_object_array_get_idx(jobs, i);
		const char *state = json_object_get_string(json_object_object_get(j, "state"));
		const char *id = json_object_get_string(json_object_object_get(j, "job_id"));
		*finished += strcmp(state, "queued") && strcmp(state, "running");
		*has_newest |= !strcmp(id, newest);
	}
	json_object_put(list);
	return n;
}

static void finished_jobs_are_retired_beyond_the_engine_byte_budget(void **state)
{
	(void)state;
	static char ids[NJOBS][RB_JOB_ID_MAX];
	char *line = malloc(8001);
	memset(line, 'x', 8000);
	line[8000] = '\0';
	for (int j = 0; j < NJOBS; j++)
		submit("{\"operation\":\"test_sleep\",\"seconds\":600}", ids[j]);
	/* Fill each job's own bound while it runs, then end it. */
	for (int j = 0; j < NJOBS; j++) {
		struct rb_job *job = rb_jobs_get(&hive, ids[j]);
		assert_non_null(job);
		for (unsigned k = 0; k < RB_JOB_MAX_EVENT_BYTES / 8000 + 8; k++)
			rb_job_say(job, "%s", line);
		rb_job_unref(job);
		assert_int_equal(rb_jobs_cancel(&hive, ids[j], NULL), 0);
	}
	free(line);
	size_t finished = 0, n = 0;
	bool newest = false;
	for (int i = 0; i < 300; i++) {
		n = listed(&finished, &newest, ids[NJOBS - 1]);
		if (finished == n && n < (size_t)NJOBS)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(finished, n);
	if (n >= (size_t)NJOBS)
		fail_msg("all %d finished jobs of ~%u bytes each are kept (budget %u bytes)", NJOBS,
			 RB_JOB_MAX_EVENT_BYTES, RB_JOBS_KEEP_BYTES);
	/* The budget holds at least this many full jobs: only what passes it goes. */
	assert_true(n >= RB_JOBS_KEEP_BYTES / RB_JOB_MAX_EVENT_BYTES);
	assert_true(newest);
}

int main(void)
{
	if (rb_hive_register_ops())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(finished_jobs_are_retired_beyond_the_engine_byte_budget,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
