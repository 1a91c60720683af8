/*
 * test_request.c - what POST /v1/jobs accepts: the envelope (rb_jobs_parse_request) and the
 * per-operation fields (rb_op_validate). Every refusal is RB_EINVAL with a message naming
 * what was wrong, and creates nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hive.h"
#include "hive_ops.h"
#include "jobs/jobs.h"
#include "jobs/ops.h"

static struct rb_hive hive;

static int setup(void **state)
{
	(void)state;
	memset(&hive, 0, sizeof(hive));
	snprintf(hive.cfg.hive_id, sizeof(hive.cfg.hive_id), "localhost");
	unsetenv("RBEE_ENABLE_TEST_OPS");
	return 0;
}

/* Parse `body`; expect a refusal whose message holds `needle`. */
static void refused(const char *body, const char *needle)
{
	const struct rb_op *op = (const struct rb_op *)1;
	struct json_object *req = (struct json_object *)1;
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_jobs_parse_request(&hive, body, strlen(body), &op, &req, &err);
	if (rc != -RB_EINVAL)
		fail_msg("body %s: expected RB_EINVAL, got %d (%s)", body, rc, err.msg);
	assert_int_equal(err.code, RB_EINVAL);
	assert_null(op);
	assert_null(req);
	if (!strstr(err.msg, needle))
		fail_msg("body %s: message '%s' lacks '%s'", body, err.msg, needle);
}

static const struct rb_op *accepted(const char *body)
{
	const struct rb_op *op;
	struct json_object *req;
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_jobs_parse_request(&hive, body, strlen(body), &op, &req, &err);
	if (rc)
		fail_msg("body %s refused: %s", body, err.msg);
	assert_non_null(req);
	json_object_put(req);
	return op;
}

static void empty_body_is_refused(void **state)
{
	(void)state;
	refused("", "empty request body");
	refused(" \r\n\t", "empty request body");
}

static void malformed_json_is_refused(void **state)
{
	(void)state;
	refused("{", "not valid JSON");
	refused("{\"operation\":}", "not valid JSON");
	refused("{\"operation\":\"hive_check\"} trailing", "not valid JSON");
	refused("{'operation':'hive_check'}", "not valid JSON");
}

static void non_objects_are_refused(void **state)
{
	(void)state;
	refused("[]", "must be a JSON object");
	refused("[{\"operation\":\"hive_check\"}]", "not an array");
	refused("\"hive_check\"", "not a string");
	/* A bare literal at the very end leaves json-c waiting for more input: either message
	 * ("not valid JSON" or "must be a JSON object") is a right answer. */
	refused("42", "JSON");
	refused("null", "JSON");
	refused("true", "JSON");
	refused("42 ", "field, not a number");
	refused("null\n", "field, not null");
}

static void operation_must_be_present_and_a_string(void **state)
{
	(void)state;
	refused("{}", "missing field 'operation'");
	refused("{\"hive_id\":\"localhost\"}", "missing field 'operation'");
	refused("{\"operation\":null}", "missing field 'operation'");
	refused("{\"operation\":7}", "field 'operation' must be a string");
	refused("{\"operation\":[\"hive_check\"]}", "field 'operation' must be a string");
}

static void unknown_operation_is_refused_with_the_known_ones(void **state)
{
	(void)state;
	refused("{\"operation\":\"nope\"}", "unknown operation 'nope'");
	refused("{\"operation\":\"nope\"}", "hive_check");
	refused("{\"operation\":\"HiveCheck\"}", "unknown operation 'HiveCheck'");
	refused("{\"operation\":\"\"}", "unknown operation ''");
}

static void hive_id_must_be_this_hive(void **state)
{
	(void)state;
	refused("{\"operation\":\"hive_check\",\"hive_id\":\"gpu-7\"}", "this is hive 'localhost', not 'gpu-7'");
	refused("{\"operation\":\"hive_check\",\"hive_id\":1}", "field 'hive_id' must be a string");
	refused("{\"operation\":\"hive_check\",\"hive_id\":\"\"}", "not ''");
	assert_string_equal(accepted("{\"operation\":\"hive_check\",\"hive_id\":\"localhost\"}")->name,
			    "hive_check");
	assert_string_equal(accepted("{\"operation\":\"hive_check\"}")->name, "hive_check");
	assert_string_equal(accepted("{\"operation\":\"hive_check\",\"hive_id\":null}")->name,
			    "hive_check");
	snprintf(hive.cfg.hive_id, sizeof(hive.cfg.hive_id), "gpu-7");
	accepted("{\"operation\":\"hive_check\",\"hive_id\":\"gpu-7\"}");
	refused("{\"operation\":\"hive_check\",\"hive_id\":\"localhost\"}", "this is hive 'gpu-7'");
}

static void missing_fields_are_refused(void **state)
{
	(void)state;
	refused("{\"operation\":\"worker_install\"}", "needs field 'worker_id'");
	refused("{\"operation\":\"worker_install\",\"worker_id\":null}", "needs field 'worker_id'");
	refused("{\"operation\":\"worker_spawn\",\"worker\":\"cpu\"}", "needs field 'model'");
	/* worker is optional: the best-scoring backend is chosen (backends docs, "Scores") */
	refused("{\"operation\":\"worker_spawn\",\"model\":\"a/b\",\"worker\":\"../x\"}", "worker");
	refused("{\"operation\":\"worker_process_get\"}", "needs field 'pid'");
	refused("{\"operation\":\"model_get\"}", "needs field 'id'");
}

static void mistyped_fields_are_refused(void **state)
{
	(void)state;
	refused("{\"operation\":\"worker_install\",\"worker_id\":5}", "'worker_id' must be a string");
	refused("{\"operation\":\"worker_install\",\"worker_id\":\"\"}", "'worker_id' must not be empty");
	refused("{\"operation\":\"worker_install\",\"worker_id\":\"../etc\"}", "invalid worker_id '../etc'");
	refused("{\"operation\":\"worker_install\",\"worker_id\":\"a/b\"}", "invalid worker_id");
	refused("{\"operation\":\"worker_process_get\",\"pid\":\"12\"}", "'pid' must be an integer");
	refused("{\"operation\":\"worker_process_get\",\"pid\":1.5}", "'pid' must be an integer");
	refused("{\"operation\":\"worker_process_get\",\"pid\":-1}", "'pid' must be between 0 and");
	refused("{\"operation\":\"worker_process_get\",\"pid\":4294967296}", "'pid' must be between");
	refused("{\"operation\":\"worker_spawn\",\"model\":\"a/b\",\"worker\":\"cpu\",\"device\":\"0\"}",
		"'device' must be an integer");
	refused("{\"operation\":\"worker_spawn\",\"model\":\"https://x.org/m.gguf\",\"worker\":\"cpu\"}",
		"invalid model id");
	refused("{\"operation\":\"worker_spawn\",\"model\":\"noslash\",\"worker\":\"cpu\"}",
		"invalid model id");
	refused("{\"operation\":\"model_get\",\"id\":\"a/b/c\"}", "invalid model id");
	refused("{\"operation\":\"model_get\",\"id\":\"a/..:x\"}", "invalid model id");
}

static void optional_fields_may_be_left_out(void **state)
{
	(void)state;
	accepted("{\"operation\":\"worker_spawn\",\"model\":\"org/repo:m.gguf\",\"worker\":\"cpu\"}");
	accepted("{\"operation\":\"worker_spawn\",\"model\":\"org/repo\"}");
	accepted("{\"operation\":\"worker_spawn\",\"model\":\"org/repo\",\"worker\":\"cuda\",\"device\":3}");
	accepted("{\"operation\":\"worker_spawn\",\"model\":\"org/repo\",\"worker\":\"cpu\",\"device\":null}");
	/* Unknown extra fields are ignored, for clients newer than this hive. */
	accepted("{\"operation\":\"hive_check\",\"verbose\":true}");
}

/* A valid value for each field type, to build a minimal request for any operation. */
static const char *sample(enum rb_field_type t)
{
	switch (t) {
	case RB_FIELD_U32:
		return "1";
	case RB_FIELD_MODEL_ID:
		return "\"org/repo:model.gguf\"";
	case RB_FIELD_STRING:
	case RB_FIELD_ID:
	case RB_FIELD_END:
		break;
	}
	return "\"cpu\"";
}

static void every_operation_accepts_its_required_fields(void **state)
{
	(void)state;
	setenv("RBEE_ENABLE_TEST_OPS", "1", 1);
	int n = 0;
	for (const struct rb_op *op = rb_op_table(); op->name; op++, n++) {
		/* Extra validators may consult hive state this test does not build. */
		if (op->validate && strcmp(op->name, "test_sleep") != 0)
			continue;
		char body[512];
		int len = snprintf(body, sizeof(body), "{\"operation\":\"%s\",\"hive_id\":\"localhost\"",
				   op->name);
		for (const struct rb_field *f = op->fields; f->name; f++)
			if (f->required)
				len += snprintf(body + len, sizeof(body) - (size_t)len, ",\"%s\":%s",
						f->name, sample(f->type));
		snprintf(body + len, sizeof(body) - (size_t)len, "}");
		assert_ptr_equal(accepted(body), op);
		assert_non_null(op->run);
		assert_non_null(op->summary);
	}
	assert_true(n >= 16); /* SPEC section 4 names 16 operations */
}

static void test_operations_exist_only_when_enabled(void **state)
{
	(void)state;
	const char *body = "{\"operation\":\"test_sleep\",\"seconds\":1}";
	refused(body, "unknown operation 'test_sleep'");
	refused("{\"operation\":\"nope\"}", "hive_check"); /* and are not listed as known */
	const struct rb_op *op = rb_op_find("test_sleep");
	assert_non_null(op);
	struct rb_err err = RB_ERR_INIT;
	struct json_object *req = json_tokener_parse(body);
	/* The validator refuses too, for any caller that skips the engine's check. */
	assert_int_equal(rb_op_validate(&hive, op, req, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "RBEE_ENABLE_TEST_OPS=1"));
	json_object_put(req);
	setenv("RBEE_ENABLE_TEST_OPS", "1", 1);
	assert_ptr_equal(accepted(body), op);
	refused("{\"operation\":\"test_sleep\"}", "needs field 'seconds'");
	refused("{\"operation\":\"test_sleep\",\"seconds\":3601}", "at most 3600");
	refused("{\"operation\":\"test_sleep\",\"seconds\":1,\"fail\":2}", "'fail' must be a string");
	setenv("RBEE_ENABLE_TEST_OPS", "yes", 1); /* only "1" enables them */
	refused(body, "unknown operation 'test_sleep'");
}

int main(void)
{
	if (rb_hive_register_ops())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(empty_body_is_refused, setup),
		cmocka_unit_test_setup(malformed_json_is_refused, setup),
		cmocka_unit_test_setup(non_objects_are_refused, setup),
		cmocka_unit_test_setup(operation_must_be_present_and_a_string, setup),
		cmocka_unit_test_setup(unknown_operation_is_refused_with_the_known_ones, setup),
		cmocka_unit_test_setup(hive_id_must_be_this_hive, setup),
		cmocka_unit_test_setup(missing_fields_are_refused, setup),
		cmocka_unit_test_setup(mistyped_fields_are_refused, setup),
		cmocka_unit_test_setup(optional_fields_may_be_left_out, setup),
		cmocka_unit_test_setup(every_operation_accepts_its_required_fields, setup),
		cmocka_unit_test_setup(test_operations_exist_only_when_enabled, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
