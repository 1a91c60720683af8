/* The model store against hostile ids and hubs, and an unlucky disk: model files named like the
 * store's own files, a file longer than the hub announced, a disk that fills mid-download. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "hub_fixture.h"
#include "models/models.h"
#include "rb_download.h"

#define BLOB_SIZE (2u << 20)

static char part[600];

static int setup(void **state)
{
	(void)state;
	if (hub_start())
		return -1;
	hub_put("org/repo/blob.bin", NULL, BLOB_SIZE);
	snprintf(part, sizeof(part), "%s/blob.part", hub.dir);
	return 0;
}

static void model_files_named_like_the_store_files_are_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"org/repo:metadata.json", "org/repo:download.json", "org/repo:model.gguf.part",
		"org/repo:x.part", NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		struct rb_model_ref r;
		struct rb_err err = RB_ERR_INIT;
		if (rb_model_id_parse(bad[i], &r, &err) != -RB_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(strstr(err.msg, "a name the model store uses itself"));
		char dir[RB_MODEL_ID_MAX + 8];
		assert_int_equal(rb_model_id_to_dirname(bad[i], dir, sizeof(dir)), -1);
	}
	struct rb_model_ref r;
	assert_int_equal(rb_model_id_parse("org/repo:metadata.json.gguf", &r, NULL), 0);
	assert_int_equal(rb_model_id_parse("org/repo:part.gguf", &r, NULL), 0);
}

static void on_progress(void *arg, uint64_t done, uint64_t total, double rate)
{
	(void)total, (void)rate;
	uint64_t *max = arg;
	if (done > *max)
		*max = done;
}

static int fetch_capped(uint64_t expect_size, uint64_t max_size, uint64_t *max_done,
			struct rb_err *err)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/org/repo/resolve/main/blob.bin", hub.url);
	struct rb_download_opts o = {
		.url = url, .part_path = part, .stall_timeout_s = 2, .max_retries = 1,
		.backoff_ms = 100, .expect_size = expect_size, .on_progress = on_progress,
		.arg = max_done, .max_size = max_size,
	};
	struct rb_download_result res;
	return rb_download(&o, &res, err);
}

static int fetch(uint64_t expect_size, uint64_t *max_done, struct rb_err *err)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/org/repo/resolve/main/blob.bin", hub.url);
	struct rb_download_opts o = {
		.url = url, .part_path = part, .stall_timeout_s = 2, .max_retries = 1,
		.backoff_ms = 100, .expect_size = expect_size, .on_progress = on_progress,
		.arg = max_done,
	};
	struct rb_download_result res;
	return rb_download(&o, &res, err);
}

static void a_file_longer_than_announced_is_stopped_not_downloaded_whole(void **state)
{
	(void)state;
	unlink(part);
	assert_int_equal(hub_control("{\"ignore_range\":false}"), 0);
	hub_log_reset();
	uint64_t max_done = 0;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(fetch(100000, &max_done, &err), -RB_EIO);
	assert_non_null(strstr(err.msg, "sends more than the 100000 bytes expected"));
	assert_true(max_done <= 100000);
	assert_false(rb_fs_exists(part));
	/* Not retried: the file can never become right. */
	assert_int_equal(hub_log_count("\"path\": \"/cdn/org/repo/blob.bin\""), 1);
}

static void a_full_disk_keeps_the_part_and_says_what_to_do(void **state)
{
	(void)state;
	unlink(part);
	/* RLIMIT_FSIZE fails writes past the limit with EFBIG (SIGXFSZ ignored, as rbee-hive
	 * ignores it), as a full disk fails them with ENOSPC: the part is kept for a resume. */
	struct rlimit old, lim = { 512 * 1024, 512 * 1024 };
	getrlimit(RLIMIT_FSIZE, &old);
	lim.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	uint64_t max_done = 0;
	struct rb_err err = RB_ERR_INIT;
	int rc = fetch(0, &max_done, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -RB_EIO);
	assert_non_null(strstr(err.msg, "cannot write"));
	/* EFBIG is the file size limit, not the disk: the message names the limit to raise */
	assert_non_null(strstr(err.msg, "File too large after 512.0 KiB: the file size limit of this "
				  "process (ulimit -f"));
	assert_non_null(strstr(err.msg, "the partial file is kept"));
	struct stat st;
	assert_int_equal(stat(part, &st), 0);
	assert_int_equal(st.st_size, 512 * 1024);
	/* With room again, the download resumes from the kept part. */
	assert_int_equal(fetch(0, &max_done, &err), 0);
	assert_int_equal(stat(part, &st), 0);
	assert_int_equal(st.st_size, BLOB_SIZE);
}

/* No size announced and a body without end (no Content-Length): max_size stops it there. */
static void an_endless_body_is_stopped_at_max_size(void **state)
{
	(void)state;
	unlink(part);
	assert_int_equal(hub_control("{\"endless\":{\"org/repo/blob.bin\":67108864}}"), 0);
	hub_log_reset();
	uint64_t max_done = 0;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(fetch_capped(0, 3u << 20, &max_done, &err), -RB_ETOOBIG);
	assert_non_null(strstr(err.msg, "is larger than 3145728 bytes (3.0 MiB), the most this "
				  "download may take; stopped and removed the partial file"));
	assert_true(max_done <= 3u << 20);
	assert_false(rb_fs_exists(part));
	assert_int_equal(hub_log_count("\"path\": \"/cdn/org/repo/blob.bin\""), 1); /* not retried */
	assert_int_equal(hub_control("{\"endless\":{}}"), 0);
	/* A Content-Length past the cap is refused before a byte reaches the part file. */
	max_done = 0;
	assert_int_equal(fetch_capped(0, 1u << 20, &max_done, &err), -RB_ETOOBIG);
	assert_int_equal(max_done, 0);
	assert_false(rb_fs_exists(part));
	/* An existing part already past the cap is removed too; under the cap all is well. */
	FILE *f = fopen(part, "w");
	assert_non_null(f);
	for (int i = 0; i < 3000; i++)
		fputc('x', f);
	fclose(f);
	assert_int_equal(fetch_capped(0, 2000, &max_done, &err), -RB_ETOOBIG);
	assert_false(rb_fs_exists(part));
	assert_int_equal(fetch_capped(0, BLOB_SIZE, &max_done, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_files_named_like_the_store_files_are_refused),
		cmocka_unit_test(a_file_longer_than_announced_is_stopped_not_downloaded_whole),
		cmocka_unit_test(a_full_disk_keeps_the_part_and_says_what_to_do),
		cmocka_unit_test(an_endless_body_is_stopped_at_max_size),
	};
	return cmocka_run_group_tests(tests, setup, hub_teardown);
}
