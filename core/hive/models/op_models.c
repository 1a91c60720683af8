/*
 * op_models.c - the model operations of POST /v1/jobs: model_download, model_list, model_get,
 * model_delete (SPEC sections 4 and 6). The work is in the model store (models.c); this file
 * connects it to the job: narration, progress, cancel, result.
 */
#include "models.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs.h"
#include "rb_json.h"

static void job_say(void *job, const char *line)
{
	rb_job_say(job, "%s", line);
}

static void job_progress(void *job, const char *stage, uint64_t done, uint64_t total,
			 double rate_bps)
{
	rb_job_progress(job, stage, done, total, rate_bps);
}

static int rb_op_model_download(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	const char *id = rb_json_str(req, "model");
	struct rb_model_events ev = { job_say, job_progress, rb_job_should_stop, job };
	struct rb_model_record *rec = malloc(sizeof(*rec));
	if (!rec)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	int rc = rb_models_download(rb_job_hive(job), id, &ev, rec, err);
	if (!rc)
		rb_job_data(job, rb_model_record_json(rec));
	free(rec);
	return rc;
}

static int rb_op_model_list(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	(void)req;
	struct json_object *result;
	int rc = rb_models_list(rb_job_hive(job), &result, err);
	if (rc)
		return rc;
	struct json_object *models = json_object_object_get(result, "models");
	size_t n = json_object_array_length(models), partial = 0;
	for (size_t i = 0; i < n; i++) {
		const char *st = rb_json_str(json_object_array_get_idx(models, i), "status");
		partial += st && !strcmp(st, "partial");
	}
	if (partial)
		rb_job_say(job, "%zu %s, %zu of them not fully downloaded", n,
			   n == 1 ? "model" : "models", partial);
	else
		rb_job_say(job, "%zu %s", n, n == 1 ? "model" : "models");
	rb_job_data(job, result);
	return 0;
}

static int rb_op_model_get(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_model_record *rec = malloc(sizeof(*rec));
	if (!rec)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	int rc = rb_models_get(rb_job_hive(job), rb_json_str(req, "id"), rec, err);
	if (!rc) {
		struct json_object *o = rb_model_record_json(rec);
		rb_json_add_str(o, "status", "ready");
		rb_job_data(job, o);
	}
	free(rec);
	return rc;
}

static int rb_op_model_delete(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	const char *id = rb_json_str(req, "id");
	uint64_t freed = 0;
	int rc = rb_models_delete(rb_job_hive(job), id, &freed, err);
	if (rc)
		return rc;
	rb_job_say(job, "deleted model '%s' (%.1f MiB freed)", id, (double)freed / (1 << 20));
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "id", id);
	rb_json_add_bool(o, "deleted", true);
	rb_json_add_int(o, "freed_bytes", (int64_t)freed);
	rb_job_data(job, o);
	return 0;
}

#define MODEL(name) { name, RB_FIELD_MODEL_ID, 1, rb_model_id_check }

const struct rb_op rb_model_ops[] = {
	{ "model_download", { MODEL("model") }, NULL, rb_op_model_download,
	  "download a model from the hub" },
	{ "model_list", { { 0 } }, NULL, rb_op_model_list, "list downloaded models" },
	{ "model_get", { MODEL("id") }, NULL, rb_op_model_get, "show one model" },
	{ "model_delete", { MODEL("id") }, NULL, rb_op_model_delete, "delete a model" },
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};
