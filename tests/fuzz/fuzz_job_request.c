/*
 * fuzz_job_request.c - the body of POST /v1/jobs as the hive validates it at submit:
 * rb_jobs_parse_request (core/hive/jobs/jobs.c) = rb_json_parse, the envelope (operation, hive_id)
 * and the operation table's field checks and validators (core/hive/jobs/ops.c).
 *
 * Any body is either a validated request of a known operation, whose required fields are all
 * there with their types, or an RB_EINVAL with a message (a 400). Test operations are enabled,
 * so their validator is reached too.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hive.h"
#include "hive_ops.h"
#include "jobs/jobs.h"
#include "jobs/ops.h"
#include "rb_fs.h"

static struct rb_hive hive;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	rb_hive_register_ops();
	(void)argc;
	(void)argv;
	setenv("RBEE_ENABLE_TEST_OPS", "1", 1);
	strcpy(hive.cfg.hive_id, "localhost");
	return 0;
}

/* A string the hive will use as a C string: no NUL inside (issue 11: "\u0000" cut values). */
static void check_c_string(struct json_object *v)
{
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		abort();
}

/* What ops.c promised: every required field is present with its type. */
static void check_valid(const struct rb_op *op, struct json_object *req)
{
	if (!op || !json_object_is_type(req, json_type_object))
		abort();
	struct json_object *v;
	if (!json_object_object_get_ex(req, "operation", &v) || strcmp(json_object_get_string(v), op->name))
		abort();
	check_c_string(v);
	for (const struct rb_field *f = op->fields; f->name; f++) {
		if (!json_object_object_get_ex(req, f->name, &v) || json_object_is_type(v, json_type_null)) {
			if (f->required)
				abort();
			continue;
		}
		switch (f->type) {
		case RB_FIELD_U32:
			if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
			    json_object_get_int64(v) > UINT32_MAX)
				abort();
			break;
		case RB_FIELD_ID:
			if (!json_object_is_type(v, json_type_string) || !rb_id_valid(json_object_get_string(v)))
				abort();
			check_c_string(v);
			break;
		case RB_FIELD_STRING:
		case RB_FIELD_MODEL_ID:
			if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v))
				abort();
			check_c_string(v);
			break;
		case RB_FIELD_END:
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!hive.cfg.hive_id[0])
		LLVMFuzzerInitialize(NULL, NULL);
	const struct rb_op *op;
	struct json_object *req;
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_jobs_parse_request(&hive, (const char *)data, size, &op, &req, &err);
	if (rc == 0) {
		check_valid(op, req);
		json_object_put(req);
	} else if (op || req || !err.msg[0] || (rc != -RB_EINVAL && rc != -RB_ETOOBIG)) {
		abort(); /* a refusal is a 400 (or 413) with a message, and leaves nothing behind */
	}
	return 0;
}
