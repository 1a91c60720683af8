/* rb_download's write path against the fake hub: the hashing thread (and the same result when it
 * cannot start), writeback started while downloading, a writeback error, a file system without
 * sync_file_range, a resume whose existing part spans many hashing slots, odd sizes.
 *
 * pthread_create and sync_file_range are wrapped at link time (-Wl,--wrap, see CMakeLists.txt):
 * the wrappers count the calls and fail them on request, and otherwise call the real ones. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hub_fixture.h"
#include "rb_download.h"
#include "rb_sha256.h"

/* Large enough for several writeback windows (16 MiB each), and not a multiple of anything. */
#define BIG_SIZE ((40u << 20) + 12345)
#define SMALL_SIZE ((1u << 20) * 3 + 777)

static char big_sha[65], small_sha[65];
static char part[600];

/* --- the wrapped calls ------------------------------------------------------------------- */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg);
int __real_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags);
int __wrap_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags);

static struct {
	int threads_started, threads_refused;
	bool refuse_threads;
	int writes, waits;       /* sync_file_range calls that start writeback / wait for it */
	off64_t first_at;        /* start of the first range whose writeback was started */
	off64_t written_to;      /* end of the last one */
	bool gap;                /* a started range did not begin where the one before ended */
	int fail_errno;          /* 0, or fail every call with this */
	int failed;
} io;

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg)
{
	if (io.refuse_threads) {
		io.threads_refused++;
		return EAGAIN;
	}
	io.threads_started++;
	return __real_pthread_create(t, a, f, arg);
}

int __wrap_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
	if (io.fail_errno) {
		io.failed++;
		errno = io.fail_errno;
		return -1;
	}
	if (flags & SYNC_FILE_RANGE_WAIT_BEFORE) {
		io.waits++;
	} else if (flags & SYNC_FILE_RANGE_WRITE) {
		if (io.writes++ == 0)
			io.first_at = off;
		else
			io.gap |= off != io.written_to;
		io.written_to = off + n;
	}
	return __real_sync_file_range(fd, off, n, flags);
}

/* --- fixture ----------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	if (hub_start())
		return -1;
	hub_put("org/repo/big.bin", NULL, BIG_SIZE);
	hub_put("org/repo/small.bin", NULL, SMALL_SIZE);
	char path[600];
	snprintf(part, sizeof(part), "%s/blob.part", hub.dir);
	snprintf(path, sizeof(path), "%s/org/repo/big.bin", hub.root);
	if (rb_sha256_file(path, big_sha, NULL))
		return -1;
	snprintf(path, sizeof(path), "%s/org/repo/small.bin", hub.root);
	return rb_sha256_file(path, small_sha, NULL);
}

static int reset(void **state)
{
	(void)state;
	unlink(part);
	memset(&io, 0, sizeof(io));
	return hub_reset();
}

static bool stop_at_once(void *arg)
{
	(void)arg;
	return true;
}

static int fetch(const char *file, bool (*should_stop)(void *), struct rb_download_result *res,
		 struct rb_err *err)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/org/repo/resolve/main/%s", hub.url, file);
	struct rb_download_opts o = {
		.url = url, .part_path = part, .stall_timeout_s = 2, .max_retries = 2,
		.backoff_ms = 50, .sha256_from_etag = true, .should_stop = should_stop,
	};
	return rb_download(&o, res, err);
}

/* Copy the first `n` bytes of the hub's `file` to the part file, as an earlier attempt would. */
static void part_of(const char *file, size_t n)
{
	char path[600];
	struct rb_buf b = RB_BUF_INIT;
	snprintf(path, sizeof(path), "%s/org/repo/%s", hub.root, file);
	assert_int_equal(rb_fs_read_file(path, BIG_SIZE, &b, NULL), 0);
	assert_int_equal(rb_fs_write_atomic(part, b.data, n, 0644, NULL), 0);
	rb_buf_release(&b);
}

static off_t part_size(void)
{
	struct stat st;
	return stat(part, &st) == 0 ? st.st_size : -1;
}

/* --- tests ------------------------------------------------------------------------------- */

static void a_large_file_is_hashed_on_a_thread_with_writeback_started_on_the_way(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(fetch("big.bin", NULL, &res, &err), 0);
	assert_int_equal(res.size, BIG_SIZE);
	assert_int_equal(part_size(), BIG_SIZE);
	assert_string_equal(res.sha256, big_sha);
	assert_string_equal(res.expected_sha256, big_sha);
	assert_int_equal(io.threads_started, 1);
	/* 40 MiB: windows [0,16) and [16,32) MiB started in order, the first waited for. */
	assert_int_equal(io.writes, 2);
	assert_int_equal(io.waits, 1);
	assert_int_equal(io.first_at, 0);
	assert_false(io.gap);
	assert_int_equal(io.written_to, 32 << 20);
}

static void without_a_thread_the_hash_is_computed_inline_and_is_the_same(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	io.refuse_threads = true;
	assert_int_equal(fetch("big.bin", NULL, &res, &err), 0);
	assert_true(io.threads_refused >= 1);
	assert_int_equal(io.threads_started, 0);
	assert_string_equal(res.sha256, big_sha);
	/* ... resuming too. */
	part_of("small.bin", (2u << 20) + 5);
	assert_int_equal(fetch("small.bin", NULL, &res, &err), 0);
	assert_int_equal(res.resumed_from, (2u << 20) + 5);
	assert_string_equal(res.sha256, small_sha);
}

static void a_resume_hashes_a_part_of_many_slots_then_the_rest(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	size_t have = (21u << 20) + 4097; /* past a writeback window, odd offset */
	part_of("big.bin", have);
	assert_int_equal(fetch("big.bin", NULL, &res, &err), 0);
	assert_int_equal(res.resumed_from, have);
	assert_int_equal(res.size, BIG_SIZE);
	assert_string_equal(res.sha256, big_sha);
	/* Writeback starts where this run began writing. */
	assert_int_equal(io.writes, 1);
	assert_int_equal(io.first_at, have);
}

static void a_writeback_error_fails_the_download_and_keeps_the_part(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	io.fail_errno = EIO;
	assert_int_equal(fetch("big.bin", NULL, &res, &err), -RB_EIO);
	char want[700];
	snprintf(want, sizeof(want), "cannot write '%s': %s", part, strerror(EIO));
	assert_string_equal(err.msg, want);
	/* Not retried: the disk failed, not the network. */
	assert_int_equal(io.failed, 1);
	assert_int_equal(hub_log_count("\"path\": \"/cdn/org/repo/big.bin\""), 1);
	off_t kept = part_size();
	assert_true(kept >= 16 << 20 && kept < BIG_SIZE);
	/* The next download resumes the part and verifies the whole file. */
	io.fail_errno = 0;
	assert_int_equal(fetch("big.bin", NULL, &res, &err), 0);
	assert_int_equal(res.resumed_from, kept);
	assert_string_equal(res.sha256, big_sha);
}

static void a_file_system_without_sync_file_range_leaves_it_to_the_fsync(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	io.fail_errno = EINVAL;
	assert_int_equal(fetch("big.bin", NULL, &res, &err), 0);
	assert_int_equal(io.failed, 1); /* tried once, then not again */
	assert_int_equal(part_size(), BIG_SIZE);
	assert_string_equal(res.sha256, big_sha);
}

static void cancel_while_checking_the_existing_part_keeps_it_untouched(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	part_of("big.bin", 5u << 20);
	assert_int_equal(fetch("big.bin", stop_at_once, &res, &err), -RB_ECANCELLED);
	assert_non_null(strstr(err.msg, "cancelled"));
	assert_int_equal(part_size(), 5u << 20);
	assert_int_equal(fetch("big.bin", NULL, &res, &err), 0);
	assert_string_equal(res.sha256, big_sha);
}

static void a_file_of_odd_size_after_a_dropped_connection_verifies(void **state)
{
	(void)state;
	struct rb_download_result res;
	struct rb_err err = RB_ERR_INIT;
	/* The drop leaves the part at an offset that is not a multiple of any block size. */
	assert_int_equal(hub_control("{\"drop_once\":{\"org/repo/small.bin\":1234567}}"), 0);
	assert_int_equal(fetch("small.bin", NULL, &res, &err), 0);
	assert_int_equal(res.retries, 1);
	assert_int_equal(res.size, SMALL_SIZE);
	assert_string_equal(res.sha256, small_sha);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(a_large_file_is_hashed_on_a_thread_with_writeback_started_on_the_way,
				       reset),
		cmocka_unit_test_setup(without_a_thread_the_hash_is_computed_inline_and_is_the_same,
				       reset),
		cmocka_unit_test_setup(a_resume_hashes_a_part_of_many_slots_then_the_rest, reset),
		cmocka_unit_test_setup(a_writeback_error_fails_the_download_and_keeps_the_part, reset),
		cmocka_unit_test_setup(a_file_system_without_sync_file_range_leaves_it_to_the_fsync,
				       reset),
		cmocka_unit_test_setup(cancel_while_checking_the_existing_part_keeps_it_untouched,
				       reset),
		cmocka_unit_test_setup(a_file_of_odd_size_after_a_dropped_connection_verifies, reset),
	};
	return cmocka_run_group_tests(tests, setup, hub_teardown);
}
