/*
 * op_catalog.c - the catalog operations of POST /v1/jobs: worker_catalog_list and
 * worker_catalog_get (SPEC sections 4 and 5).
 */
#include "catalog.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "install.h"
#include "installable.h"
#include "rb_json.h"
#include "rb_log.h"

/* "catalog directory '/x'" or "catalog 'http://...'", for narration. */
static const char *catalog_words(struct rb_hive *hive, char *buf, size_t len)
{
	const char *src = rb_catalog_source(hive);
	snprintf(buf, len, strncmp(src, "directory '", 11) ? "catalog '%s'" : "catalog %s", src);
	return buf;
}

/* A skipped entry is worth telling both the operator (narration) and the log. */
static void narrate_warning(void *job, const char *msg)
{
	rb_warn("%s", msg);
	rb_job_say(job, "warning: %s", msg);
}

static int rb_op_worker_catalog_list(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	(void)req;
	struct rb_hive *hive = rb_job_hive(job);
	char words[PATH_MAX + 32];
	struct json_object *workers;
	rb_job_say(job, "reading the worker %s", catalog_words(hive, words, sizeof(words)));
	int rc = rb_catalog_list_warn(hive, &workers, narrate_warning, job, err);
	if (rc)
		return rc;
	size_t n = json_object_array_length(workers);
	rb_job_say(job, "%zu worker%s in %s", n, n == 1 ? "" : "s", words);
	/* Whether each can be installed here, and why not: the checks worker_install makes
	 * before it fetches anything (installable.h). */
	rb_installable_annotate(hive, workers);
	struct json_object *result = json_object_new_object();
	json_object_object_add(result, "workers", workers);
	rb_job_data(job, result);
	return 0;
}

static int rb_op_worker_catalog_get(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_hive *hive = rb_job_hive(job);
	const char *id = rb_json_str(req, "worker_id");
	char words[PATH_MAX + 32];
	struct json_object *entry;
	int rc = rb_catalog_get(hive, id, &entry, err);
	if (rc)
		return rc;
	rb_job_say(job, "worker '%s' (%s, %s %s) from the %s", id, rb_json_str(entry, "name"),
		   rb_json_str(entry, "implementation"), rb_json_str(entry, "version"),
		   catalog_words(hive, words, sizeof(words)));
	rb_installable_annotate_one(hive, entry); /* as the list shows it */
	rb_job_data(job, entry);
	return 0;
}

#define ID(name) { name, RB_FIELD_ID, 1, NULL }

const struct rb_op rb_catalog_ops[] = {
	{ "worker_catalog_list", { { 0 } }, NULL, rb_op_worker_catalog_list,
	  "list the catalog's workers" },
	{ "worker_catalog_get", { ID("worker_id") }, NULL, rb_op_worker_catalog_get,
	  "show one catalog entry" },
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};
