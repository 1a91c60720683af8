/*
 * test_loader.c - the loader refuses every broken plugin before running any of its code, and
 * says why; a good plugin's descriptor is found by its file name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends.h"

static char plugin_dir[4096];

static int open_plugin(const char *file, const struct rbee_backend **desc, struct rb_err *err)
{
	char path[4200], name[64];
	void *dl = NULL;
	snprintf(path, sizeof(path), "%s/%s", plugin_dir, file);
	int rc = rb_backend_open(path, &dl, desc, name, sizeof(name), err);
	if (rc == 0)
		assert_non_null(dl);
	else
		assert_null(dl);
	return rc;
}

static void expect_refused(const char *file, const char *reason)
{
	const struct rbee_backend *d = NULL;
	struct rb_err err = RB_ERR_INIT;
	assert_int_not_equal(open_plugin(file, &d, &err), 0);
	assert_null(d);
	if (!strstr(err.msg, reason))
		fail_msg("%s: expected '%s' in '%s'", file, reason, err.msg);
}

static void test_good_plugin_loads(void **state)
{
	(void)state;
	const struct rbee_backend *d = NULL;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(open_plugin("rbee_backend_testgood.so", &d, &err), 0);
	assert_string_equal(d->name, "testgood");
	assert_string_equal(d->version, "1.0");
}

static void test_wrong_abi_major_is_refused(void **state)
{
	(void)state;
	expect_refused("rbee_backend_badabi.so", "built for backend ABI 2");
}

static void test_too_small_descriptor_is_refused(void **state)
{
	(void)state;
	expect_refused("rbee_backend_badsize.so", "descriptor size 16 is smaller");
}

static void test_nonzero_flags_are_refused(void **state)
{
	(void)state;
	expect_refused("rbee_backend_badflags.so", "reserved flags field is 0x1");
}

static void test_name_mismatch_is_refused(void **state)
{
	(void)state;
	expect_refused("rbee_backend_badname.so", "descriptor names backend 'somethingelse'");
}

static void test_missing_symbol_is_refused(void **state)
{
	(void)state;
	expect_refused("rbee_backend_nosym.so", "no exported symbol 'rbee_backend_nosym_descriptor'");
}

static void test_file_name_outside_convention_is_refused(void **state)
{
	(void)state;
	expect_refused("libsomething.so", "is not named rbee_backend_<name>.so");
}

static void test_unloadable_file_is_refused(void **state)
{
	(void)state;
	expect_refused("rbee_backend_missing.so", "cannot load");
}

static void test_check_accepts_larger_descriptor_of_newer_minor(void **state)
{
	(void)state;
	/* A plugin built against a later 1.x header has a bigger struct: still accepted. */
	struct rbee_backend d = { RBEE_BACKEND_HEADER("future") };
	d.abi_minor = RBEE_BACKEND_ABI_MINOR + 3;
	d.struct_size = sizeof(d) + 64;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_backend_check(&d, "future", &err), 0);
}

int main(void)
{
	const char *build = getenv("RBEE_BUILD");
	snprintf(plugin_dir, sizeof(plugin_dir), "%s/tests/loader/plugins", build ? build : ".");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_plugin_loads),
		cmocka_unit_test(test_wrong_abi_major_is_refused),
		cmocka_unit_test(test_too_small_descriptor_is_refused),
		cmocka_unit_test(test_nonzero_flags_are_refused),
		cmocka_unit_test(test_name_mismatch_is_refused),
		cmocka_unit_test(test_missing_symbol_is_refused),
		cmocka_unit_test(test_file_name_outside_convention_is_refused),
		cmocka_unit_test(test_unloadable_file_is_refused),
		cmocka_unit_test(test_check_accepts_larger_descriptor_of_newer_minor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
