/*
 * test_install_leftovers.c - what a build leaves behind can always be removed: a staging tree
 * with directories the build made read-only or unreadable (Go's module cache is 0555) is
 * removed by rb_fs_rm_rf as their owner. Runs as 'nobody' when started as root, since root
 * ignores permissions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rb_fs.h"

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		_exit(10);
	fputs("x\n", f);
	fclose(f);
}

/* In the child, as the tree's owner: build the tree, lock it down, remove it. */
static int child(const char *top)
{
	char p[512];
	if (mkdir(top, 0755) != 0)
		return 11;
	snprintf(p, sizeof(p), "%s/modcache", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/modcache/pkg@v1", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/modcache/pkg@v1/go.mod", top);
	touch(p);
	snprintf(p, sizeof(p), "%s/modcache/pkg@v1", top);
	chmod(p, 0555);
	snprintf(p, sizeof(p), "%s/modcache", top);
	chmod(p, 0555);
	snprintf(p, sizeof(p), "%s/secret", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/secret/f", top);
	touch(p);
	snprintf(p, sizeof(p), "%s/secret", top);
	chmod(p, 0);
	struct rb_err err = RB_ERR_INIT;
	if (rb_fs_rm_rf(top, &err) != 0) {
		fprintf(stderr, "rb_fs_rm_rf: %s\n", err.msg);
		return 12;
	}
	return rb_fs_exists(top) ? 13 : 0;
}

static void read_only_build_trees_are_removed(void **state)
{
	(void)state;
	char dir[] = "/tmp/rbee-leftovers-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct passwd *pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
	if (geteuid() == 0 && !pw)
		skip();
	if (pw)
		assert_int_equal(chown(dir, pw->pw_uid, pw->pw_gid), 0);
	char top[600];
	snprintf(top, sizeof(top), "%s/stage", dir);
	pid_t pid = fork();
	if (pid == 0) {
		if (pw && (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)))
			_exit(20);
		_exit(child(top));
	}
	int status = 0;
	waitpid(pid, &status, 0);
	rb_fs_rm_rf(dir, NULL);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(read_only_build_trees_are_removed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
