/*
 * test_engine.c - the job engine without HTTP: event log, terminal events, bounded history,
 * resume, cancel (queued and running), listing, shutdown. Uses the test_sleep operation.
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
#include "rb_proc.h"
#include "rb_sse.h"

static struct rb_hive hive;
static char tmpdir[] = "/tmp/rbee-engine-XXXXXX";

struct events {
	int n, progress, data, narration;
	uint64_t ids[30000];
	struct rb_buf log; /* "type|data\n" per event */
	char last[256];
};

static int collect(void *arg, const struct rb_sse_event *ev)
{
	struct events *e = arg;
	if (e->n >= (int)(sizeof(e->ids) / sizeof(e->ids[0])))
		fail_msg("more than %zu events", sizeof(e->ids) / sizeof(e->ids[0]));
	e->ids[e->n++] = strtoull(ev->last_id, NULL, 10);
	if (!ev->has_id)
		fail_msg("event without an id: %s", ev->data);
	rb_buf_addf(&e->log, "%s|%s\n", ev->type, ev->data);
	e->progress += !strcmp(ev->type, "progress");
	e->data += !strcmp(ev->type, "data");
	e->narration += !strcmp(ev->type, "message");
	snprintf(e->last, sizeof(e->last), "%s", ev->data);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	memset(&hive, 0, sizeof(hive));
	snprintf(hive.cfg.hive_id, sizeof(hive.cfg.hive_id), "localhost");
	hive.cfg.max_jobs = 2;
	strcpy(tmpdir, "/tmp/rbee-engine-XXXXXX");
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
	assert_null(hive.jobs);
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
	assert_int_equal(strncmp(id, "job-", 4), 0);
	assert_int_equal(strlen(id), 40);
}

/* Read a job's events after `cursor` until its terminal (or `max_ms`), parsed into *e. */
static bool read_all(const char *id, uint64_t cursor, int max_ms, struct events *e)
{
	struct rb_job *job = rb_jobs_get(&hive, id);
	assert_non_null(job);
	struct rb_buf text = RB_BUF_INIT;
	bool ended = false;
	long long deadline = rb_now_ms() + max_ms;
	while (!ended && rb_now_ms() < deadline)
		rb_job_read_events(job, &cursor, 1 << 16, 100, &text, &ended);
	rb_job_unref(job);
	memset(e, 0, sizeof(*e));
	rb_buf_init(&e->log);
	struct rb_sse_parser p;
	rb_sse_parser_init(&p, collect, e);
	rb_sse_parser_feed(&p, text.data, text.len);
	rb_sse_parser_release(&p);
	rb_buf_release(&text);
	for (int i = 1; i < e->n; i++)
		if (e->ids[i] <= e->ids[i - 1])
			fail_msg("event ids not increasing: %llu after %llu", (unsigned long long)e->ids[i],
				 (unsigned long long)e->ids[i - 1]);
	return ended;
}

static void job_runs_to_done_with_narration_data_and_one_terminal(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	submit("{\"operation\":\"test_sleep\",\"seconds\":0,\"lines\":3}", id);
	struct events e;
	assert_true(read_all(id, 0, 10000, &e));
	assert_string_equal(e.last, "[DONE]");
	assert_non_null(strstr(e.log.data, "message|line 1 of 3\nmessage|line 2 of 3\nmessage|line 3 of 3\n"));
	assert_non_null(strstr(e.log.data, "data|{\"slept_s\":0,\"lines\":3}\n"));
	assert_int_equal(e.data, 1);
	assert_int_equal(e.ids[0], 1);
	assert_null(strstr(e.log.data, "[DONE]\nmessage")); /* nothing after the terminal */
	rb_buf_release(&e.log);
}

static void failing_job_ends_with_error_and_its_message(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	submit("{\"operation\":\"test_sleep\",\"seconds\":0,\"fail\":\"it broke\\nbadly\"}", id);
	struct events e;
	assert_true(read_all(id, 0, 10000, &e));
	assert_string_equal(e.last, "[ERROR] it broke badly"); /* one line */
	rb_buf_release(&e.log);
	struct json_object *list = rb_jobs_list_json(&hive), *jobs, *j;
	json_object_object_get_ex(list, "jobs", &jobs);
	j = json_object_array_get_idx(jobs, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(j, "state")), "failed");
	assert_string_equal(json_object_get_string(json_object_object_get(j, "error")), "it broke badly");
	assert_non_null(json_object_get_string(json_object_object_get(j, "finished_at")));
	json_object_put(list);
}

static void narration_is_cleaned_and_cannot_fake_a_terminal(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	struct events e;
	submit("{\"operation\":\"test_sleep\",\"seconds\":2}", id);
	struct rb_job *job = rb_jobs_get(&hive, id);
	usleep(200000);
	rb_job_say(job, "\x1b[1;32mgreen\x1b[0m and \x1b]0;title\x07plain\tline\r\ncarriage\rreturn\n[DONE]");
	rb_jobs_cancel(&hive, id, NULL);
	rb_job_unref(job);
	assert_true(read_all(id, 0, 10000, &e));
	assert_non_null(strstr(e.log.data, "message|green and plain\tline\nmessage|return\nmessage|(DONE)\n"));
	assert_string_equal(e.last, "[CANCELLED]");
	rb_buf_release(&e.log);
}

/* Wait until the job is no longer queued or running. */
static void wait_finished(const char *id)
{
	for (int i = 0; i < 300; i++) {
		struct json_object *list = rb_jobs_list_json(&hive), *jobs;
		json_object_object_get_ex(list, "jobs", &jobs);
		bool done = false;
		for (size_t k = 0; k < json_object_array_length(jobs); k++) {
			struct json_object *j = json_object_array_get_idx(jobs, k);
			const char *state = json_object_get_string(json_object_object_get(j, "state"));
			if (!strcmp(json_object_get_string(json_object_object_get(j, "job_id")), id))
				done = strcmp(state, "queued") && strcmp(state, "running");
		}
		json_object_put(list);
		if (done)
			return;
		usleep(100000);
	}
	fail_msg("job %s did not finish", id);
}

static void long_history_is_bounded_with_a_marker_and_keeps_first_and_last(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	submit("{\"operation\":\"test_sleep\",\"seconds\":0,\"lines\":25000}", id);
	/* A stream following live gets every line; one that comes late gets the bounded log. */
	wait_finished(id);
	struct events e;
	assert_true(read_all(id, 0, 30000, &e));
	assert_true(e.n <= RB_JOB_MAX_EVENTS);
	assert_non_null(strstr(e.log.data, "message|line 1 of 25000\n"));
	assert_non_null(strstr(e.log.data, "message|line 25000 of 25000\n"));
	assert_non_null(strstr(e.log.data, " earlier lines dropped ...\n"));
	char *marker = strstr(e.log.data, "message|... ");
	assert_non_null(marker);
	assert_null(strstr(marker + 1, "message|... ")); /* exactly one marker */
	assert_string_equal(e.last, "[DONE]");
	rb_buf_release(&e.log);
}

static void resume_after_an_id_sends_only_later_events(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	submit("{\"operation\":\"test_sleep\",\"seconds\":0,\"lines\":5}", id);
	struct events all, tail;
	assert_true(read_all(id, 0, 10000, &all));
	assert_true(read_all(id, all.ids[2], 10000, &tail));
	assert_int_equal(tail.n, all.n - 3);
	assert_int_equal(tail.ids[0], all.ids[3]);
	assert_string_equal(tail.last, "[DONE]");
	/* Resuming after the terminal: nothing, and the stream ends. */
	struct events none;
	assert_true(read_all(id, all.ids[all.n - 1], 1000, &none));
	assert_int_equal(none.n, 0);
	rb_buf_release(&all.log);
	rb_buf_release(&tail.log);
	rb_buf_release(&none.log);
}

static void progress_events_are_coalesced(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	/* test_sleep reports progress every 100 ms; at most one per 200 ms may go out. */
	submit("{\"operation\":\"test_sleep\",\"seconds\":1}", id);
	struct events e;
	assert_true(read_all(id, 0, 10000, &e));
	assert_true(e.progress >= 2);
	assert_true(e.progress <= 7);
	assert_non_null(strstr(e.log.data, "progress|{\"stage\":\"sleeping\",\"bytes_done\":"));
	rb_buf_release(&e.log);
}

static void cancel_stops_running_and_queued_jobs(void **state)
{
	(void)state;
	char a[RB_JOB_ID_MAX], b[RB_JOB_ID_MAX], c[RB_JOB_ID_MAX];
	struct rb_err err = RB_ERR_INIT;
	/* Two slots: a and b run, c waits. */
	submit("{\"operation\":\"test_sleep\",\"seconds\":60}", a);
	submit("{\"operation\":\"test_sleep\",\"seconds\":60}", b);
	submit("{\"operation\":\"test_sleep\",\"seconds\":60}", c);
	usleep(300000);
	long long t0 = rb_now_ms();
	assert_int_equal(rb_jobs_cancel(&hive, c, &err), 0);
	struct events e;
	assert_true(read_all(c, 0, 1000, &e));
	assert_string_equal(e.last, "[CANCELLED]");
	assert_non_null(strstr(e.log.data, "queued: all 2 job slots are busy"));
	assert_null(strstr(e.log.data, "started 'sleep")); /* it never ran */
	rb_buf_release(&e.log);

	assert_int_equal(rb_jobs_cancel(&hive, a, &err), 0);
	assert_true(read_all(a, 0, 5000, &e));
	assert_string_equal(e.last, "[CANCELLED]");
	assert_non_null(strstr(e.log.data, "removed scratch file"));
	rb_buf_release(&e.log);
	assert_true(rb_now_ms() - t0 < 3000);

	assert_int_equal(rb_jobs_cancel(&hive, a, &err), -RB_ECONFLICT);
	assert_non_null(strstr(err.msg, "already finished (cancelled)"));
	assert_int_equal(rb_jobs_cancel(&hive, "job-nope", &err), -RB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no job 'job-nope'"));
	assert_null(rb_jobs_get(&hive, "job-nope"));
	/* b is still running; shutdown (in teardown) cancels it. */
}

static void shutdown_cancels_running_jobs_and_ends_their_streams(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	submit("{\"operation\":\"test_sleep\",\"seconds\":60}", id);
	usleep(200000);
	struct rb_job *job = rb_jobs_get(&hive, id);
	long long t0 = rb_now_ms();
	rb_jobs_shutdown(&hive);
	assert_true(rb_now_ms() - t0 < 5000);
	struct rb_err err = RB_ERR_INIT;
	char other[RB_JOB_ID_MAX];
	const struct rb_op *op = rb_op_find("hive_check");
	assert_int_equal(rb_jobs_submit(&hive, op, json_object_new_object(), other, &err), -RB_EUNAVAIL);
	/* The stream's reference keeps the job readable even after the engine is gone. */
	rb_jobs_free(&hive);
	uint64_t cursor = 0;
	bool ended = false;
	struct rb_buf text = RB_BUF_INIT;
	rb_job_read_events(job, &cursor, 1 << 20, 0, &text, &ended);
	assert_true(ended);
	assert_non_null(strstr(text.data, "data: [CANCELLED]\n\n"));
	rb_buf_release(&text);
	rb_job_unref(job);
}

/* A stream takes exactly what its connection has room for, events cut where that ends, and
 * keeps no copy of the rest: the pieces, put together, are the whole history. */
static void polled_in_small_pieces_the_history_is_exact(void **state)
{
	(void)state;
	char id[RB_JOB_ID_MAX];
	submit("{\"operation\":\"hive_check\"}", id);
	wait_finished(id);
	struct rb_job *job = rb_jobs_get(&hive, id);
	assert_non_null(job);
	struct rb_buf whole = RB_BUF_INIT, pieces = RB_BUF_INIT, one = RB_BUF_INIT;
	uint64_t cursor = 0;
	bool ended = false;
	rb_job_read_events(job, &cursor, 1 << 20, 0, &whole, &ended);
	assert_true(ended);
	assert_true(whole.len > 300); /* several events, some longer than a piece */
	cursor = 0;
	size_t skip = 0, calls = 0;
	long long due;
	for (ended = false; !ended; calls++) {
		rb_buf_reset(&one);
		rb_job_poll_events(job, &cursor, &skip, 37, &one, &ended, &due);
		assert_true(one.len <= 37);
		assert_true(one.len > 0 || ended);
		rb_buf_add(&pieces, one.data, one.len);
		assert_true(calls < whole.len);
	}
	assert_int_equal(pieces.len, whole.len);
	assert_memory_equal(pieces.data, whole.data, whole.len);
	assert_int_equal(skip, 0);
	rb_buf_release(&whole);
	rb_buf_release(&pieces);
	rb_buf_release(&one);
	rb_job_unref(job);
}

int main(void)
{
	if (rb_hive_register_ops())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(job_runs_to_done_with_narration_data_and_one_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(failing_job_ends_with_error_and_its_message, setup, teardown),
		cmocka_unit_test_setup_teardown(narration_is_cleaned_and_cannot_fake_a_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(long_history_is_bounded_with_a_marker_and_keeps_first_and_last, setup, teardown),
		cmocka_unit_test_setup_teardown(resume_after_an_id_sends_only_later_events, setup, teardown),
		cmocka_unit_test_setup_teardown(progress_events_are_coalesced, setup, teardown),
		cmocka_unit_test_setup_teardown(cancel_stops_running_and_queued_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_cancels_running_jobs_and_ends_their_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(polled_in_small_pieces_the_history_is_exact, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
