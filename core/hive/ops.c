/*
 * ops.c - the operation table of POST /v1/jobs (SPEC section 4), and request validation.
 *
 * Every operation the wire format names is listed here, with the fields checked at submit and
 * the handler that runs in the job.
 */
#include "ops.h"

#include <string.h>

#include "catalog.h"
#include "hive.h"
#include "install.h"
#include "installed.h"
#include "jobs.h"
#include "models.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "spawn.h"
#include "verify.h"

/* Handlers are declared by the modules that implement them (included above). */

#define ID(name) { name, RB_FIELD_ID, 1 }
#define MODEL(name) { name, RB_FIELD_MODEL_ID, 1 }

static const struct rb_op ops[] = {
	{ "hive_check", { { 0 } }, NULL, rb_op_hive_check,
	  "self-test: backends, cache directory, catalog" },
	{ "worker_catalog_list", { { 0 } }, NULL, rb_op_worker_catalog_list,
	  "list the catalog's workers" },
	{ "worker_catalog_get", { ID("worker_id") }, NULL, rb_op_worker_catalog_get,
	  "show one catalog entry" },
	{ "worker_install", { ID("worker_id") }, rb_op_worker_install_validate, rb_op_worker_install,
	  "build and install a worker from its PKGBUILD" },
	{ "worker_list_installed", { { 0 } }, NULL, rb_op_worker_list_installed,
	  "list installed workers" },
	{ "worker_installed_get", { ID("worker_id") }, NULL, rb_op_worker_installed_get,
	  "show one installed worker" },
	{ "worker_remove", { ID("worker_id") }, NULL, rb_op_worker_remove,
	  "remove an installed worker" },
	{ "worker_verify", { ID("worker_id") }, NULL, rb_op_worker_verify,
	  "check an installed worker can run here" },
	{ "worker_spawn", { MODEL("model"), ID("worker"), { "device", RB_FIELD_U32, 0 } },
	  NULL, rb_op_worker_spawn, "start a worker with a model on a device" },
	{ "worker_process_list", { { 0 } }, NULL, rb_op_worker_process_list, "list running workers" },
	{ "worker_process_get", { { "pid", RB_FIELD_U32, 1 } }, rb_op_worker_pid_validate,
	  rb_op_worker_process_get, "show one running worker" },
	{ "worker_process_delete", { { "pid", RB_FIELD_U32, 1 } }, rb_op_worker_pid_validate,
	  rb_op_worker_process_delete, "stop a running worker" },
	{ "model_download", { MODEL("model") }, NULL, rb_op_model_download,
	  "download a model from the hub" },
	{ "model_list", { { 0 } }, NULL, rb_op_model_list, "list downloaded models" },
	{ "model_get", { MODEL("id") }, NULL, rb_op_model_get, "show one model" },
	{ "model_delete", { MODEL("id") }, NULL, rb_op_model_delete, "delete a model" },
	/* Exists only with RBEE_ENABLE_TEST_OPS=1 (see jobs.h). */
	{ "test_sleep",
	  { { "seconds", RB_FIELD_U32, 1 }, { "lines", RB_FIELD_U32, 0 }, { "fail", RB_FIELD_STRING, 0 },
	    { "stubborn", RB_FIELD_U32, 0 } },
	  rb_op_test_validate, rb_op_test_sleep, "test only: run a 'sleep' child, narrating" },
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};

const struct rb_op *rb_op_table(void)
{
	return ops;
}

const struct rb_op *rb_op_find(const char *name)
{
	for (const struct rb_op *op = ops; name && op->name; op++)
		if (!strcmp(op->name, name))
			return op;
	return NULL;
}

/* org/repo or org/repo:file, each part a plain id. */
static bool model_id_valid(const char *id)
{
	const char *slash = strchr(id, '/');
	if (!slash || strchr(slash + 1, '/'))
		return false;
	char org[129], repo[129], file[129] = "x";
	size_t olen = (size_t)(slash - id);
	const char *colon = strchr(slash + 1, ':');
	size_t rlen = colon ? (size_t)(colon - slash - 1) : strlen(slash + 1);
	if (olen == 0 || olen > 128 || rlen == 0 || rlen > 128)
		return false;
	memcpy(org, id, olen);
	org[olen] = '\0';
	memcpy(repo, slash + 1, rlen);
	repo[rlen] = '\0';
	if (colon) {
		if (strlen(colon + 1) > 128 || strchr(colon + 1, ':'))
			return false;
		strcpy(file, colon + 1);
	}
	return rb_id_valid(org) && rb_id_valid(repo) && rb_id_valid(file);
}

int rb_op_validate(struct rb_hive *hive, const struct rb_op *op, struct json_object *req,
		   struct rb_err *err)
{
	for (const struct rb_field *f = op->fields; f->name; f++) {
		struct json_object *v;
		if (!json_object_object_get_ex(req, f->name, &v) || json_object_is_type(v, json_type_null)) {
			if (f->required)
				return rb_err_set(err, RB_EINVAL, "operation '%s' needs field '%s'",
						  op->name, f->name);
			continue;
		}
		const char *s;
		uint32_t u;
		int rc = 0;
		switch (f->type) {
		case RB_FIELD_U32:
			rc = rb_json_req_u32(req, f->name, &u, err);
			break;
		case RB_FIELD_STRING:
		case RB_FIELD_ID:
		case RB_FIELD_MODEL_ID:
			rc = rb_json_req_str(req, f->name, &s, err);
			if (!rc && f->type == RB_FIELD_ID)
				rc = rb_id_check(f->name, s, err);
			if (!rc && f->type == RB_FIELD_MODEL_ID && !model_id_valid(s))
				rc = rb_err_set(err, RB_EINVAL,
						"invalid model id '%s': use 'org/repo' or "
						"'org/repo:file.gguf' (a Hugging Face repository, not a URL)",
						s);
			break;
		case RB_FIELD_END:
			break;
		}
		if (rc)
			return rc;
	}
	return op->validate ? op->validate(hive, req, err) : 0;
}
