/*
 * op_workers.c - the installed-worker operations of POST /v1/jobs: worker_install,
 * worker_list_installed, worker_installed_get, worker_remove, worker_verify.
 * Requests arrive validated (worker_id is a plain id, see ops.c).
 */
#include <stdio.h>
#include <string.h>

#include "install.h"
#include "installed.h"
#include "jobs/jobs.h"
#include "rb_json.h"
#include "verify.h"

static int rb_op_worker_install(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct json_object *result = NULL;
	int rc = rb_install_worker(job, rb_json_str(req, "worker_id"),
				   rb_json_bool(req, "offline", false), &result, err);
	if (!rc)
		rb_job_data(job, result);
	return rc;
}

static int rb_op_worker_install_validate(struct rb_hive *hive, struct json_object *req,
				  struct rb_err *err)
{
	(void)hive;
	struct json_object *v;
	if (json_object_object_get_ex(req, "offline", &v) && !json_object_is_type(v, json_type_null) &&
	    !json_object_is_type(v, json_type_boolean))
		return rb_err_set(err, RB_EINVAL, "field 'offline' of worker_install must be true or "
				  "false");
	return 0;
}

static int rb_op_worker_list_installed(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	(void)req;
	struct json_object *list = NULL;
	int rc = rb_installed_list(rb_job_hive(job), &list, err);
	if (rc)
		return rc;
	size_t n = json_object_array_length(list);
	rb_job_say(job, "%zu worker%s installed", n, n == 1 ? "" : "s");
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "workers", list);
	rb_job_data(job, out);
	return 0;
}

static int rb_op_worker_installed_get(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_installed w;
	int rc = rb_installed_get(rb_job_hive(job), rb_json_str(req, "worker_id"), &w, err);
	if (rc)
		return rc;
	rb_job_data(job, json_object_get(w.meta));
	rb_installed_release(&w);
	return 0;
}

static int rb_op_worker_remove(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	const char *id = rb_json_str(req, "worker_id");
	int rc = rb_installed_remove(rb_job_hive(job), id, err);
	if (rc)
		return rc;
	rb_job_say(job, "removed worker '%s'", id);
	struct json_object *out = json_object_new_object();
	rb_json_add_str(out, "worker_id", id);
	rb_json_add_bool(out, "removed", true);
	rb_job_data(job, out);
	return 0;
}

/* The first failed check of a report, as "check: detail". */
static void first_failure(struct json_object *report, char *out, size_t len)
{
	struct json_object *checks = json_object_object_get(report, "checks");
	out[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(checks); i++) {
		struct json_object *c = json_object_array_get_idx(checks, i);
		if (!rb_json_bool(c, "ok", false)) {
			snprintf(out, len, "%s: %s", rb_json_str(c, "check"), rb_json_str(c, "detail"));
			return;
		}
	}
}

static int rb_op_worker_verify(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	const char *id = rb_json_str(req, "worker_id");
	struct rb_installed w;
	int rc = rb_installed_get(rb_job_hive(job), id, &w, err);
	if (rc)
		return rc;
	struct json_object *report = NULL;
	bool generic_ok;
	rc = rb_verify_worker(rb_job_hive(job), job, &w, &report, &generic_ok, err);
	rb_installed_release(&w);
	if (rc)
		return rc;
	struct json_object *checks = json_object_object_get(report, "checks");
	for (size_t i = 0; i < json_object_array_length(checks); i++) {
		struct json_object *c = json_object_array_get_idx(checks, i);
		rb_job_say(job, "%s %s: %s", rb_json_bool(c, "ok", false) ? "ok    " : "FAILED",
			   rb_json_str(c, "check"), rb_json_str(c, "detail"));
	}
	bool ok = rb_json_bool(report, "ok", false);
	char why[800];
	first_failure(report, why, sizeof(why));
	rb_job_data(job, report);
	if (!ok)
		return rb_err_set(err, RB_EIO, "worker '%s' fails verification: %s", id, why);
	rb_job_say(job, "worker '%s' can run on this node", id);
	return 0;
}

#define ID(name) { name, RB_FIELD_ID, 1, NULL }

const struct rb_op rb_install_ops[] = {
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
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};
