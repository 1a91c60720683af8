/*
 * A registry save whose fsync fails (EIO) reports it and leaks no file descriptor: the hive
 * retries a failed save every 2 s for as long as the disk fails, so one fd per try would end
 * in EMFILE (rb_fs_write_atomic, core/lib/rb_fs.c). fsync is interposed here.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rb_fs.h"

static int fsync_fails;

int fsync(int fd)
{
	(void)fd;
	if (fsync_fails) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void failed_fsync_leaks_no_fd(void **state)
{
	(void)state;
	char dir[] = "/tmp/rbee-fsync-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/workers.json", dir);
	fsync_fails = 1;
	int before = open_fds();
	for (int i = 0; i < 20; i++) {
		struct rb_err err = RB_ERR_INIT;
		assert_int_equal(rb_fs_write_atomic(path, "{}", 2, 0644, &err), -RB_EIO);
		assert_non_null(strstr(err.msg, "Input/output error"));
	}
	assert_int_equal(open_fds(), before);
	assert_int_equal(access(path, F_OK), -1); /* nothing half-written left in place ... */
	DIR *d = opendir(dir);
	int entries = 0;
	while (readdir(d))
		entries++;
	closedir(d);
	assert_int_equal(entries, 2); /* ... nor a temporary file: only . and .. */
	fsync_fails = 0;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_fs_write_atomic(path, "{}", 2, 0644, &err), 0);
	assert_int_equal(open_fds(), before);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(failed_fsync_leaks_no_fd) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
