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

#include "backends/backends.h"
#include "backends/host.h"

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

/* Every host service that refuses its input says why, in a message the plugin reads with
 * host->last_error (ABI 1.1), naming the service. */
static void expect_last_error(const struct rbee_host *host, const char *service, const char *why)
{
	const char *msg = host->last_error(host->call);
	char want[128];
	snprintf(want, sizeof(want), "host service %s refused: ", service);
	if (!strstr(msg, want) || !strstr(msg, why))
		fail_msg("expected '%s' and '%s' in '%s'", want, why, msg);
}

static void test_host_services_refuse_with_a_reason(void **state)
{
	(void)state;
	struct rbee_call call = { .plugin_name = "unit" };
	struct rbee_host host;
	rb_host_init(&host, &call);
	assert_true(host.struct_size > offsetof(struct rbee_host, last_error));
	assert_int_equal(host.abi_minor, RBEE_BACKEND_ABI_MINOR);
	assert_string_equal(host.last_error(host.call), "");

	struct rb_env env;
	rb_env_init(&env);
	assert_int_equal(host.env_set((struct rbee_env *)&env, "A=B", "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "env_set", "'A=B' is empty or contains '='");
	assert_int_equal(host.env_set((struct rbee_env *)&env, NULL, "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "env_set", "the variable name is NULL");
	assert_int_equal(host.env_set((struct rbee_env *)&env, "GOOD", "x"), RBEE_OK);
	rb_env_release(&env);

	struct rb_plan plan;
	rb_plan_init(&plan);
	assert_int_equal(host.plan_bind_cpus((struct rbee_plan *)&plan, "0-3;rm"), RBEE_ERR_INVALID);
	expect_last_error(&host, "plan_bind_cpus", "'0-3;rm' is not an hwloc list string");
	assert_int_equal(host.plan_bind_memory((struct rbee_plan *)&plan, NULL), RBEE_ERR_INVALID);
	expect_last_error(&host, "plan_bind_memory", "the list is NULL");
	assert_int_equal(host.plan_env((struct rbee_plan *)&plan, "", "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "plan_env", "is empty or contains '='");
	assert_int_equal(host.plan_arg((struct rbee_plan *)&plan, NULL), RBEE_ERR_INVALID);
	expect_last_error(&host, "plan_arg", "the argument is NULL");
	assert_int_equal(host.plan_default_argv((struct rbee_plan *)&plan, NULL), RBEE_ERR_INVALID);
	expect_last_error(&host, "plan_default_argv", "the spawn request is NULL");
	rb_plan_release(&plan);

	assert_int_equal(host.report_check(NULL, "x", 1, ""), RBEE_ERR_INVALID);
	expect_last_error(&host, "report_check", "the report handle is NULL");

	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = 8;
	assert_int_equal(host.device_add(host.call, &d), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_add", "device record too small (struct_size 8");
	d.struct_size = sizeof(d);
	assert_int_equal(host.device_add(host.call, &d), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_add", "device 0 has an empty id");
	snprintf(d.id, sizeof(d.id), "GPU-0");
	assert_int_equal(host.device_add(host.call, &d), RBEE_OK);
	snprintf(d.id, sizeof(d.id), "GPU-1");
	assert_int_equal(host.device_add(host.call, &d), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_add", "duplicate device index: 0 was already reported (now with id 'GPU-1')");
	assert_int_equal(call.ndevices, 1);
	assert_true(call.device_refused);

	assert_null(host.path(host.call, "nonsense"));
	if (!strstr(host.last_error(host.call), "host service path: unknown name 'nonsense'"))
		fail_msg("path: '%s'", host.last_error(host.call));
	assert_null(host.getenv(host.call, "HF_TOKEN"));
	if (!strstr(host.last_error(host.call), "'HF_TOKEN' is withheld from plugins"))
		fail_msg("getenv: '%s'", host.last_error(host.call));
	assert_null(host.topology(host.call));
	if (!strstr(host.last_error(host.call), "host service topology: hwloc could not load"))
		fail_msg("topology: '%s'", host.last_error(host.call));
	assert_int_equal(host.run(host.call, NULL, 1000, NULL, 0, NULL), RBEE_ERR_INVALID);
	if (!strstr(host.last_error(host.call), "host service run: argv is NULL or empty"))
		fail_msg("run: '%s'", host.last_error(host.call));
	rb_call_release(&call);
}

/* host->device_attr (ABI 1.2): facts of a reported device, each rule refused with its reason. */
static void test_device_attr_rules(void **state)
{
	(void)state;
	struct rbee_call call = { .plugin_name = "unit" };
	struct rbee_host host;
	rb_host_init(&host, &call);
	assert_true(host.struct_size > offsetof(struct rbee_host, plugin_state));
	assert_int_equal(host.hwloc_api_version >> 16, RBEE_BACKEND_HWLOC_API_MAJOR);
	assert_int_equal(host.device_attr(host.call, "GPU-0", "gfx_target", "gfx90a"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "only allowed during enumerate");
	call.enumerating = true;
	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	snprintf(d.id, sizeof(d.id), "GPU-0");
	assert_int_equal(host.device_add(host.call, &d), RBEE_OK);
	assert_int_equal(host.device_attr(host.call, "GPU-0", "gfx_target", "gfx90a"), RBEE_OK);
	assert_int_equal(host.device_attr(host.call, "GPU-0", "gfx_target", "gfx942"), RBEE_OK);
	assert_int_equal(call.nattrs, 1); /* replaced, not added */
	assert_string_equal(call.attrs[0].value, "gfx942");
	assert_int_equal(host.device_attr(host.call, "GPU-9", "a", "b"), RBEE_ERR_NOT_FOUND);
	expect_last_error(&host, "device_attr", "no device 'GPU-9' was reported");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "Gfx", "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "key 'Gfx' is not a-z 0-9 . _ - starting with a letter");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "1x", "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "starting with a letter");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "", "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "key of 0 characters");
	char key[80];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(host.device_attr(host.call, "GPU-0", key, "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "key of 79 characters: give 1 to 63");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "k", "bad \xc3\x28"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "value of key 'k' is not well-formed UTF-8");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "k", "a\nb"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "contains control character 0x0a at byte 1");
	char val[300];
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	assert_int_equal(host.device_attr(host.call, "GPU-0", "k", val), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "has 299 bytes, more than the 255 allowed");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "k", NULL), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "the value is NULL");
	for (int i = 1; i < RBEE_DEVICE_ATTR_MAX; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(host.device_attr(host.call, "GPU-0", key, "\xc3\xa9t\xc3\xa9"), RBEE_OK);
	}
	assert_int_equal(call.nattrs, RBEE_DEVICE_ATTR_MAX);
	assert_int_equal(host.device_attr(host.call, "GPU-0", "one_more", "x"), RBEE_ERR_INVALID);
	expect_last_error(&host, "device_attr", "already has the 16 facts allowed");
	assert_int_equal(host.device_attr(host.call, "GPU-0", "k1", "changed"), RBEE_OK);
	assert_false(call.device_refused); /* a refused fact costs only the fact */
	assert_null(host.plugin_state(host.call));
	rb_call_release(&call);
}

/* Plugin text enters the hive as well-formed UTF-8, cut only between characters. */
static void test_plugin_strings_are_cleaned(void **state)
{
	(void)state;
	char out[8];
	rb_host_clean_str(out, sizeof(out), "a\xff" "b");
	assert_string_equal(out, "a\xef\xbf\xbd" "b");
	rb_host_clean_str(out, sizeof(out), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* 8 bytes into 7 */
	assert_string_equal(out, "\xc3\xa9\xc3\xa9\xc3\xa9");
	rb_host_clean_str(out, sizeof(out), NULL);
	assert_string_equal(out, "");
	char in_place[16] = "ok \xe2\x82";
	rb_host_clean_str(in_place, sizeof(in_place), in_place);
	assert_string_equal(in_place, "ok \xef\xbf\xbd\xef\xbf\xbd");
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
		cmocka_unit_test(test_host_services_refuse_with_a_reason),
		cmocka_unit_test(test_plugin_strings_are_cleaned),
		cmocka_unit_test(test_device_attr_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
