/*
 * test_entry.c - catalog entry validation (rb_catalog_entry_check) and reference rules: what a
 * catalog may contain, and the message an author gets for each mistake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rb_catalog_entry.h"
#include "rb_json.h"

static const char *const valid_json =
	"{\"id\":\"w-1\",\"implementation\":\"test\",\"worker_type\":\"cpu\",\"version\":\"1.0\","
	"\"platforms\":[\"linux\"],\"architectures\":[\"x86_64\",\"aarch64\"],\"name\":\"W\","
	"\"description\":\"\",\"license\":\"MIT\",\"build_system\":\"make\","
	"\"source\":{\"type\":\"git\",\"url\":\"https://x/y.git\"},\"build\":{},"
	"\"depends\":[],\"makedepends\":[\"make\"],\"binary_name\":\"w\","
	"\"install_path\":\"/usr/bin/w\",\"supported_formats\":[\"gguf\"],"
	"\"max_context_length\":4096,\"supports_streaming\":true,\"supports_batching\":false,"
	"\"launch\":{\"args\":[\"--model\",\"{model_path}\",\"--port={port}\"],"
	"\"health_path\":\"/health\",\"ready_timeout_s\":30},\"x_extra\":1}";

static struct json_object *valid(void)
{
	struct json_object *o = rb_json_parse(valid_json, strlen(valid_json), NULL);
	assert_non_null(o);
	return o;
}

/* Set `key` to the JSON `value_json` (NULL removes it). */
static struct json_object *with(const char *key, const char *value_json)
{
	struct json_object *o = valid();
	if (value_json) {
		/* json_tokener_parse: a bare number is a complete document here */
		struct json_object *v = json_tokener_parse(value_json);
		assert_true(v || !strcmp(value_json, "null"));
		json_object_object_add(o, key, v);
	}
	else
		json_object_object_del(o, key);
	return o;
}

/* The check fails with RB_EINVAL and a message containing `expect`. */
static void refused(struct json_object *o, const char *expect_id, const char *expect)
{
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_catalog_entry_check(o, expect_id, &err);
	json_object_put(o);
	assert_int_equal(rc, -RB_EINVAL);
	if (!strstr(err.msg, expect))
		fail_msg("message '%s' lacks '%s'", err.msg, expect);
}

static void accepted(struct json_object *o)
{
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_catalog_entry_check(o, NULL, &err);
	json_object_put(o);
	if (rc)
		fail_msg("refused: %s", err.msg);
}

static void complete_entry_passes_with_unknown_fields(void **s)
{
	(void)s;
	struct json_object *o = valid();
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_entry_check(o, "w-1", &err), 0);
	assert_int_equal(rb_catalog_pkgbuild_kind(o), RB_PKGBUILD_ROUTE);
	json_object_put(o);
}

static void every_required_field_is_named_when_missing(void **s)
{
	(void)s;
	static const char *const required[] = {
		"id", "implementation", "worker_type", "version", "platforms", "architectures",
		"name", "description", "license", "build_system", "source", "build", "depends",
		"makedepends", "binary_name", "install_path", "supported_formats",
		"supports_streaming", "supports_batching", NULL,
	};
	for (const char *const *k = required; *k; k++) {
		char expect[64];
		snprintf(expect, sizeof(expect), "field '%s' is missing", *k);
		refused(with(*k, NULL), NULL, expect);
		refused(with(*k, "null"), NULL, expect);
	}
}

static void optional_fields_may_be_left_out(void **s)
{
	(void)s;
	accepted(with("launch", NULL));
	accepted(with("max_context_length", NULL));
	accepted(with("pkgbuild_url", NULL));
}

static void entry_must_be_an_object(void **s)
{
	(void)s;
	refused(json_object_new_array(), NULL, "must be a JSON object");
}

static void id_must_match_file_and_be_plain(void **s)
{
	(void)s;
	refused(valid(), "w-2", "field 'id' is 'w-1' but must be 'w-2'");
	refused(with("id", "\"../etc\""), NULL, "invalid worker id '../etc'");
	refused(with("id", "\"a/b\""), NULL, "invalid worker id");
	refused(with("id", "7"), NULL, "field 'id' must be a string");
}

static void worker_type_is_a_backend_name(void **s)
{
	(void)s;
	accepted(with("worker_type", "\"cuda\""));
	accepted(with("worker_type", "\"rocm\"")); /* a third party's backend */
	refused(with("worker_type", "\"CUDA\""), NULL, "field 'worker_type' 'CUDA' must be a backend name");
	refused(with("worker_type", "\"\""), NULL, "field 'worker_type' must not be empty");
}

static void platforms_and_architectures_use_known_names(void **s)
{
	(void)s;
	refused(with("platforms", "[]"), NULL, "field 'platforms' must not be empty");
	refused(with("platforms", "[\"beos\"]"), NULL,
		"field 'platforms' has unknown value 'beos' (use linux, macos or windows)");
	refused(with("platforms", "\"linux\""), NULL, "field 'platforms' must be an array of strings");
	refused(with("architectures", "[\"arm64\"]"), NULL,
		"field 'architectures' has unknown value 'arm64' (use x86_64 or aarch64)");
	refused(with("depends", "[1]"), NULL, "field 'depends' must be an array of non-empty strings");
}

static void pkgbuild_url_kinds(void **s)
{
	(void)s;
	struct json_object *o = with("pkgbuild_url", "\"pkgbuilds/other.PKGBUILD\"");
	assert_int_equal(rb_catalog_entry_check(o, NULL, NULL), 0);
	assert_int_equal(rb_catalog_pkgbuild_kind(o), RB_PKGBUILD_FILE);
	json_object_put(o);
	o = with("pkgbuild_url", "\"https://example.org/w.PKGBUILD\"");
	assert_int_equal(rb_catalog_entry_check(o, NULL, NULL), 0);
	assert_int_equal(rb_catalog_pkgbuild_kind(o), RB_PKGBUILD_URL);
	json_object_put(o);
	o = with("pkgbuild_url", "\"/workers/w-1/PKGBUILD\"");
	assert_int_equal(rb_catalog_entry_check(o, NULL, NULL), 0);
	assert_int_equal(rb_catalog_pkgbuild_kind(o), RB_PKGBUILD_ROUTE);
	json_object_put(o);
}

static void pkgbuild_url_cannot_leave_the_catalog(void **s)
{
	(void)s;
	refused(with("pkgbuild_url", "\"../../etc/passwd\""), NULL, "must not leave the catalog ('..')");
	refused(with("pkgbuild_url", "\"pkgbuilds/../../x\""), NULL, "must not leave the catalog");
	refused(with("pkgbuild_url", "\"/etc/passwd\""), NULL,
		"must be '/workers/w-1/PKGBUILD', an http(s) URL");
	refused(with("pkgbuild_url", "\"/workers/other/PKGBUILD\""), NULL, "must be '/workers/w-1/PKGBUILD'");
	refused(with("pkgbuild_url", "\"file:///etc/passwd\""), NULL, "must be an http(s) URL");
	refused(with("pkgbuild_url", "\"\""), NULL, "field 'pkgbuild_url' must not be empty");
	accepted(with("pkgbuild_url", "\"pkgbuilds/a..b.PKGBUILD\"")); /* '..' inside a name is fine */
}

static void binary_and_install_path_agree(void **s)
{
	(void)s;
	refused(with("binary_name", "\"bin/w\""), NULL, "field 'binary_name' 'bin/w' must be a plain file name");
	refused(with("install_path", "\"usr/bin/w\""), NULL, "must be an absolute path without '..'");
	refused(with("install_path", "\"/usr/../bin/w\""), NULL, "must be an absolute path without '..'");
	refused(with("install_path", "\"/usr/bin/other\""), NULL,
		"field 'install_path' '/usr/bin/other' must end in the binary_name 'w'");
}

static void source_and_build_are_objects(void **s)
{
	(void)s;
	refused(with("source", "\"https://x\""), NULL, "field 'source' must be an object");
	refused(with("source", "{\"type\":\"git\"}"), NULL, "field 'source': field 'url' is missing");
	refused(with("build", "[]"), NULL, "field 'build' must be an object");
}

static void capabilities_are_typed(void **s)
{
	(void)s;
	refused(with("supports_streaming", "\"yes\""), NULL, "field 'supports_streaming' must be true or false");
	refused(with("max_context_length", "-1"), NULL, "field 'max_context_length' must be a non-negative integer");
	refused(with("max_context_length", "\"4k\""), NULL, "must be a non-negative integer");
	refused(with("supported_formats", "{}"), NULL, "field 'supported_formats' must be an array");
}

static void launch_template_is_checked(void **s)
{
	(void)s;
	refused(with("launch", "[]"), NULL, "field 'launch' must be an object");
	refused(with("launch", "{\"args\":[]}"), NULL, "field 'launch.args' must be a non-empty array");
	refused(with("launch", "{\"args\":[\"--model\",\"{modle_path}\"]}"), NULL,
		"launch.args[1] '{modle_path}' uses unknown placeholder '{modle_path}'");
	refused(with("launch", "{\"args\":[\"--x={port\"]}"), NULL, "has an unclosed '{'");
	refused(with("launch", "{\"args\":[3]}"), NULL, "launch.args[0] must be a string");
	refused(with("launch", "{\"args\":[\"x\"],\"health_path\":\"health\"}"), NULL,
		"field 'launch.health_path' must be a path starting with '/'");
	refused(with("launch", "{\"args\":[\"x\"],\"ready_timeout_s\":0}"), NULL,
		"field 'launch.ready_timeout_s' must be an integer from 1 to 86400");
	accepted(with("launch", "{\"args\":[\"{worker_id}\",\"{model_path}\",\"{model_id}\",\"{backend}\","
				"\"{device}\",\"{port}\",\"{hive_url}\",\"plain\"]}"));
}

static void references_are_relative_and_stay_inside(void **s)
{
	(void)s;
	struct rb_err err = RB_ERR_INIT;
	assert_int_equal(rb_catalog_ref_check("path", "sources/a.tar.gz", &err), 0);
	assert_int_equal(rb_catalog_ref_check("path", "..", &err), -RB_EINVAL);
	assert_int_equal(rb_catalog_ref_check("path", "a/../../b", &err), -RB_EINVAL);
	assert_int_equal(rb_catalog_ref_check("path", "/abs", &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "is an absolute path"));
	assert_int_equal(rb_catalog_ref_check("path", "a\\..\\b", &err), -RB_EINVAL);
	assert_int_equal(rb_catalog_ref_check("path", "", &err), -RB_EINVAL);
	assert_true(rb_catalog_ref_is_url("https://x/y"));
	assert_true(rb_catalog_ref_is_url("git+https://x/y.git#tag=1"));
	assert_false(rb_catalog_ref_is_url("sources/x:y"));
	assert_false(rb_catalog_ref_is_url("c:/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(complete_entry_passes_with_unknown_fields),
		cmocka_unit_test(every_required_field_is_named_when_missing),
		cmocka_unit_test(optional_fields_may_be_left_out),
		cmocka_unit_test(entry_must_be_an_object),
		cmocka_unit_test(id_must_match_file_and_be_plain),
		cmocka_unit_test(worker_type_is_a_backend_name),
		cmocka_unit_test(platforms_and_architectures_use_known_names),
		cmocka_unit_test(pkgbuild_url_kinds),
		cmocka_unit_test(pkgbuild_url_cannot_leave_the_catalog),
		cmocka_unit_test(binary_and_install_path_agree),
		cmocka_unit_test(source_and_build_are_objects),
		cmocka_unit_test(capabilities_are_typed),
		cmocka_unit_test(launch_template_is_checked),
		cmocka_unit_test(references_are_relative_and_stay_inside),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
