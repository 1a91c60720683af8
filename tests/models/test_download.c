/* rb_download against the fake hub: whole files, resume, retries after drops and stalls,
 * servers that ignore Range, 416, hash checks, 404/401/403, cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hub_fixture.h"
#include "rb_download.h"
#include "rb_sha256.h"

#define BLOB_SIZE (3u << 20)

static char blob_sha[65];
static char part[600];

static int setup(void **state)
{
	(void)state;
	if (hub_start())
		return -1;
	hub_put("org/repo/blob.bin", NULL, BLOB_SIZE);
	char path[600];
	snprintf(path, sizeof(path), "%s/org/repo/blob.bin", hub.root);
	snprintf(part, sizeof(part), "%s/blob.part", hub.dir);
	return rb_sha256_file(path, blob_sha, NULL);
}

static int reset(void **state)
{
	(void)state;
	unlink(part);
	return hub_reset();
}

struct seen {
	int progress_calls;
	uint64_t last_done, last_total;
	int notes;
	int stop_after_progress; /* 0 = never stop */
};

static void on_progress(void *arg, uint64_t done, uint64_t total, double rate)
{
	struct seen *s = arg;
	(void)rate;
	s->progress_calls++;
	s->last_done = done;
	s->last_total = total;
}

static void on_note(void *arg, const char *line)
{
	struct seen *s = arg;
	(void)line;
	s->notes++;
}

static bool should_stop(void *arg)
{
	struct seen *s = arg;
	return s->stop_after_progress > 0 && s->progress_calls >= s->stop_after_progress;
}

static int fetch(const char *path, struct seen *s, struct rb_download_result *res,
		 struct rb_err *err)
{
	struct seen dummy = { 0 };
	if (!s)
		s = &dummy;
	char url[512];
	snprintf(url, sizeof(url), "%s/org/repo/resolve/main/%s", hub.url, path);
	static const char *const auth[] = { "Authorization: Bearer " HUB_TOKEN, NULL };
	struct rb_download_opts o = {
		.url = url,
		.part_path = part,
		.headers = s->stop_after_progress < 0 ? auth : NULL,
		.stall_timeout_s = 1,
		.max_retries = 3,
		.on_progress = on_progress,
		.should_stop = should_stop,
		.on_note = on_note,
		.arg = s,
		.sha256_from_etag = true,
		.backoff_ms = 100,
	};
	return rb_download(&o, res, err);
}

static void part_of(size_t n)
{
	char path[600];
	struct rb_buf b = RB_BUF_INIT;
	snprintf(path, sizeof(path), "%s/org/repo/blob.bin", hub.root);
	rb_fs_read_file(path, BLOB_SIZE, &b, NULL);
	rb_fs_write_atomic(part, b.data, n, 0644, NULL);
	rb_buf_release(&b);
}

static void whole_file_follows_the_redirect_and_checks_the_linked_etag(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(fetch("blob.bin", &s, &res, &err), 0);
	assert_int_equal(res.size, BLOB_SIZE);
	assert_string_equal(res.sha256, blob_sha);
	assert_string_equal(res.expected_sha256, blob_sha);
	assert_int_equal(res.resumed_from, 0);
	assert_int_equal(res.retries, 0);
	assert_true(s.progress_calls >= 1);
	assert_int_equal(s.last_done, BLOB_SIZE);
	assert_int_equal(s.last_total, BLOB_SIZE);
	assert_int_equal(hub_log_count("\"path\": \"/cdn/org/repo/blob.bin\""), 1);
}

static void resumes_from_the_part_asking_only_for_the_rest(void **state)
{
	(void)state;
	struct rb_download_result res;
	part_of(1000000);
	assert_int_equal(fetch("blob.bin", NULL, &res, NULL), 0);
	assert_int_equal(res.resumed_from, 1000000);
	assert_string_equal(res.sha256, blob_sha);
	assert_int_equal(hub_log_count("\"range\": \"bytes=1000000-\""), 2); /* resolve + cdn */
	assert_int_equal(hub_log_count("\"range\": null"), 0);
}

static void dropped_connection_is_retried_from_where_it_broke(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct rb_download_result res;
	assert_int_equal(hub_control("{\"drop_once\":{\"org/repo/blob.bin\":1048576}}"), 0);
	assert_int_equal(fetch("blob.bin", &s, &res, NULL), 0);
	assert_int_equal(res.retries, 1);
	assert_true(s.notes >= 1);
	assert_string_equal(res.sha256, blob_sha);
	assert_int_equal(hub_log_count("\"range\": \"bytes=1048576-\""), 2);
}

static void stall_is_detected_and_retried(void **state)
{
	(void)state;
	struct rb_download_result res;
	assert_int_equal(hub_control("{\"stall_once\":{\"org/repo/blob.bin\":[500000,4]}}"), 0);
	assert_int_equal(fetch("blob.bin", &(struct seen){ 0 }, &res, NULL), 0);
	assert_int_equal(res.retries, 1);
	assert_string_equal(res.sha256, blob_sha);
	assert_int_equal(hub_log_count("\"range\": \"bytes=500000-\""), 2);
}

static void server_ignoring_range_restarts_the_file(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct rb_download_result res;
	part_of(12345);
	assert_int_equal(hub_control("{\"ignore_range\":true}"), 0);
	assert_int_equal(fetch("blob.bin", &s, &res, NULL), 0);
	assert_int_equal(res.size, BLOB_SIZE);
	assert_string_equal(res.sha256, blob_sha);
	assert_true(s.notes >= 1);
}

static void complete_part_is_done_on_416(void **state)
{
	(void)state;
	struct rb_download_result res;
	part_of(BLOB_SIZE);
	assert_int_equal(fetch("blob.bin", NULL, &res, NULL), 0);
	assert_int_equal(res.http_status, 416);
	assert_string_equal(res.sha256, blob_sha);
}

static void wrong_hash_fails_and_removes_the_part(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(hub_control("{\"wrong_hash\":[\"org/repo/blob.bin\"]}"), 0);
	assert_int_equal(fetch("blob.bin", NULL, &res, &err), -RB_EIO);
	assert_non_null(strstr(err.msg, blob_sha));
	assert_false(rb_fs_exists(part));
}

static void no_announced_hash_is_not_checked(void **state)
{
	(void)state;
	struct rb_download_result res;
	assert_int_equal(hub_control("{\"no_sha\":true}"), 0);
	assert_int_equal(fetch("blob.bin", NULL, &res, NULL), 0);
	assert_string_equal(res.expected_sha256, "");
	assert_string_equal(res.sha256, blob_sha);
}

static void not_found_and_denied_are_distinct(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(fetch("missing.bin", NULL, &res, &err), -RB_ENOTFOUND);
	assert_int_equal(hub_control("{\"private\":[\"org/repo\"]}"), 0);
	assert_int_equal(fetch("blob.bin", NULL, &res, &err), -RB_EDENIED);
	assert_int_equal(res.http_status, 401);
	struct seen with_token = { .stop_after_progress = -1 };
	assert_int_equal(fetch("blob.bin", &with_token, &res, &err), 0);
}

static void cancel_keeps_the_part(void **state)
{
	(void)state;
	struct seen s = { .stop_after_progress = 1 };
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(hub_control("{\"stall_once\":{\"org/repo/blob.bin\":[200000,3]}}"), 0);
	assert_int_equal(fetch("blob.bin", &s, &res, &err), -RB_ECANCELLED);
	assert_true(rb_fs_exists(part));
	/* ... and the next download resumes it. */
	assert_int_equal(fetch("blob.bin", NULL, &res, NULL), 0);
	assert_true(res.resumed_from > 0);
	assert_string_equal(res.sha256, blob_sha);
}

static void unreachable_server_gives_up_after_the_retries(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	struct rb_download_opts o = {
		.url = "http://127.0.0.1:9/x", .part_path = part, .max_retries = 2,
		.backoff_ms = 10,
	};
	assert_int_equal(rb_download(&o, &res, &err), -RB_EUNAVAIL);
	assert_non_null(strstr(err.msg, "after 3 attempts"));
	assert_int_equal(res.retries, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(whole_file_follows_the_redirect_and_checks_the_linked_etag, reset),
		cmocka_unit_test_setup(resumes_from_the_part_asking_only_for_the_rest, reset),
		cmocka_unit_test_setup(dropped_connection_is_retried_from_where_it_broke, reset),
		cmocka_unit_test_setup(stall_is_detected_and_retried, reset),
		cmocka_unit_test_setup(server_ignoring_range_restarts_the_file, reset),
		cmocka_unit_test_setup(complete_part_is_done_on_416, reset),
		cmocka_unit_test_setup(wrong_hash_fails_and_removes_the_part, reset),
		cmocka_unit_test_setup(no_announced_hash_is_not_checked, reset),
		cmocka_unit_test_setup(not_found_and_denied_are_distinct, reset),
		cmocka_unit_test_setup(cancel_keeps_the_part, reset),
		cmocka_unit_test_setup(unreachable_server_gives_up_after_the_retries, reset),
	};
	return cmocka_run_group_tests(tests, setup, hub_teardown);
}
