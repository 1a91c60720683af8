/*
 * ops.c - the operation table of POST /v1/jobs (SPEC section 4), and request validation.
 *
 * Every operation the wire format names is listed here, with the fields checked at submit and
 * the handler that runs in the job.
 */
#include "ops.h"

#include <string.h>

#include "install/catalog.h"
#include "hive.h"
#include "install/install.h"
#include "install/installed.h"
#include "models/models.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "workers/spawn.h"
#include "install/verify.h"

/* Handlers are declared by the modules that implement them (included above). */

#define ID(name) { name, RB_FIELD_ID, 1 }
#define MODEL(name) { name, RB_FIELD_MODEL_ID, 1 }

static const struct rb_op builtin[] = {
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
	{ "worker_spawn", { MODEL("model"), { "worker", RB_FIELD_ID, 0 }, { "device", RB_FIELD_U32, 0 } },
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
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};

#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]) - 1)

/* The production table is `builtin`. Only a test build of the hive adds rows (the test-only
 * operations, registered by tests' own objects, never linked into rbee-hive). */
static struct rb_op extended[NBUILTIN + RB_OP_MAX_EXTRA + 1];
static const struct rb_op *ops = builtin;

int rb_op_register_extra(const struct rb_op *op)
{
	if (ops == builtin)
		memcpy(extended, builtin, sizeof(builtin));
	size_t n = NBUILTIN;
	while (extended[n].name)
		n++;
	if (!op || !op->name || !op->run || rb_op_find(op->name) || n >= NBUILTIN + RB_OP_MAX_EXTRA)
		return -RB_EINVAL;
	extended[n] = *op;
	ops = extended;
	return 0;
}

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
		struct rb_model_ref ref;
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
			/* The model store's own parser: a model id accepted here is one the store
			 * takes, and a refused one gets the store's message. */
			if (!rc && f->type == RB_FIELD_MODEL_ID)
				rc = rb_model_id_parse(s, &ref, err);
			break;
		case RB_FIELD_END:
			break;
		}
		if (rc)
			return rc;
	}
	return op->validate ? op->validate(hive, req, err) : 0;
}
