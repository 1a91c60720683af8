/*
 * test_one_validator.c - the model-id validator (rb_model_id_parse) with good and bad ids, and
 * the submit-time check of every operation with a model-id field giving exactly its verdict
 * and message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hive.h"
#include "hive_ops.h"
#include "jobs/jobs.h"
#include "models/models.h"
#include "jobs/ops.h"

static const char *const good[] = {
	"TheBloke/Llama-2-7B-GGUF", "org/repo", "org/repo:model.Q4_K_M.gguf", "a/b:c",
	"Org_1/Repo-2.x:file-3_q8_0.gguf", "org/repo:metadata.json.gguf", "org/repo:part.gguf",
	NULL,
};

static const char *const bad[] = {
	/* names the store keeps in a model's directory: passed submit before, failed later */
	"org/repo:metadata.json", "org/repo:download.json", "org/repo:model.gguf.part",
	"org/repo:.part", "org/repo:x.part",
	/* the rest of the rule */
	"", "llama", "https://huggingface.co/org/repo", "hf.co/org/repo", "huggingface.co/o/r",
	"org/repo/extra", "org/", "/repo", "org/repo:", "../etc/passwd", "org/..", "org/.hidden",
	"org/repo:a:b", "org/repo:dir/file.gguf", "org name/repo", "org/repo:file gguf",
	"org/repo:..", "org/repo:.x", NULL,
};

static void the_validator_accepts_good_ids(void **state)
{
	(void)state;
	for (size_t i = 0; good[i]; i++) {
		struct rb_model_ref r;
		struct rb_err err = RB_ERR_INIT;
		if (rb_model_id_parse(good[i], &r, &err))
			fail_msg("'%s' refused: %s", good[i], err.msg);
	}
}

static void the_validator_refuses_bad_ids(void **state)
{
	(void)state;
	for (size_t i = 0; bad[i]; i++) {
		struct rb_model_ref r;
		struct rb_err err = RB_ERR_INIT;
		if (rb_model_id_parse(bad[i], &r, &err) != -RB_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(err.msg, "'org/repo' or 'org/repo:file.gguf'"));
	}
	struct rb_model_ref r;
	struct rb_err err = RB_ERR_INIT;
	rb_model_id_parse("org/repo:metadata.json", &r, &err);
	assert_non_null(strstr(err.msg, "a name the model store uses itself"));
}

/* The request for `op` with `id` in its model field (and the other required fields). */
static struct json_object *request(const struct rb_op *op, const char *id)
{
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "operation", json_object_new_string(op->name));
	for (const struct rb_field *f = op->fields; f->name; f++)
		if (f->type == RB_FIELD_MODEL_ID)
			json_object_object_add(req, f->name, json_object_new_string(id));
		else if (f->required && f->type == RB_FIELD_U32)
			json_object_object_add(req, f->name, json_object_new_int(1));
		else if (f->required)
			json_object_object_add(req, f->name, json_object_new_string("cpu"));
	return req;
}

static void submit_gives_the_validators_verdict_and_message(void **state)
{
	(void)state;
	struct rb_hive hive;
	memset(&hive, 0, sizeof(hive));
	snprintf(hive.cfg.hive_id, sizeof(hive.cfg.hive_id), "localhost");
	size_t nops = 0;
	for (const struct rb_op *op = rb_op_table(); op->name; op++) {
		bool has_model = false;
		for (const struct rb_field *f = op->fields; f->name; f++)
			has_model |= f->type == RB_FIELD_MODEL_ID;
		/* Extra validators may consult hive state this test does not build. */
		if (!has_model || op->validate)
			continue;
		nops++;
		for (int pass = 0; pass < 2; pass++) {
			const char *const *ids = pass ? bad : good;
			for (size_t i = 0; ids[i]; i++) {
				if (!*ids[i])
					continue; /* "" is a string field's "must not be empty" first */
				struct rb_model_ref r;
				struct rb_err want = RB_ERR_INIT, got = RB_ERR_INIT;
				int wrc = rb_model_id_parse(ids[i], &r, &want);
				struct json_object *req = request(op, ids[i]);
				int grc = rb_op_validate(&hive, op, req, &got);
				json_object_put(req);
				if (grc != wrc || strcmp(got.msg, want.msg))
					fail_msg("%s '%s': submit said %d '%s', the store %d '%s'", op->name,
						 ids[i], grc, got.msg, wrc, want.msg);
			}
		}
	}
	assert_true(nops >= 4); /* model_download, model_get, model_delete, worker_spawn */
}

int main(void)
{
	if (rb_hive_register_ops())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_validator_accepts_good_ids),
		cmocka_unit_test(the_validator_refuses_bad_ids),
		cmocka_unit_test(submit_gives_the_validators_verdict_and_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
