/*
 * op_hive_check.c - the `hive_check` operation: a narrated self-test of this node.
 *
 * It reports each backend plugin's state (an unavailable backend is normal: no NVIDIA driver on
 * a CPU box), proves the cache directory is writable by creating and deleting a file in it,
 * and asks the catalog source for its entries. Only an unwritable cache fails the check:
 * without it nothing can be installed or downloaded. A missing catalog is a warning, since
 * installed workers still run without one. The result is one `event: data` summary.
 */
#include "hive_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backends/backends.h"
#include "hive.h"
#include "install/install.h"
#include "jobs/jobs.h"
#include "rb_fs.h"
#include "rb_json.h"

/* Narrate every backend; returns the summary array and counts the available ones. */
static struct json_object *check_backends(struct rb_job *job, size_t *navailable)
{
	struct rb_hive *hive = rb_job_hive(job);
	struct rb_backend_info *list = NULL;
	if (!rb_backends_wait_ready(hive, -1))
		rb_job_say(job, "warning: the first probe round after start has not finished yet");
	size_t n = rb_backends_list(hive, &list);
	struct json_object *arr = json_object_new_array();
	*navailable = 0;
	if (n == 0)
		rb_job_say(job, "warning: no backend plugins were found (plugin directory '%s', plus "
				"RBEE_BACKEND_PATH): this hive cannot run workers",
			   hive->cfg.plugin_dir);
	for (size_t i = 0; i < n; i++) {
		const struct rb_backend_info *b = &list[i];
		if (b->state == RB_BACKEND_AVAILABLE) {
			(*navailable)++;
			rb_job_say(job, "backend '%s' %s: available, %zu device%s", b->name,
				   b->version, b->ndevices, b->ndevices == 1 ? "" : "s");
		} else {
			rb_job_say(job, "backend '%s' %s: %s: %s", b->name, b->version,
				   b->state == RB_BACKEND_UNAVAILABLE ? "not available here"
									 : rb_backend_state_name(b->state),
				   b->reason[0] ? b->reason : "no reason given");
		}
		struct json_object *o = json_object_new_object();
		rb_json_add_str(o, "name", b->name);
		rb_json_add_str(o, "version", b->version);
		rb_json_add_str(o, "state", rb_backend_state_name(b->state));
		rb_json_add_str(o, "reason", b->reason[0] ? b->reason : NULL);
		rb_json_add_int(o, "devices", (int64_t)b->ndevices);
		json_object_array_add(arr, o);
	}
	rb_backends_list_free(list, n);
	return arr;
}

/* Create, write and delete a file in the cache root: what an install or a download needs
 * first. Not synced: an fsync forced a journal commit that made this 3 ms of a 3.3 ms check,
 * and a disk that fails writes has its file system remounted read-only, which the create
 * sees; downloads and installs sync what they keep and report errors there. */
static int probe_writable(const char *dir, struct rb_err *err)
{
	char path[PATH_MAX];
	if (rb_fs_temp_template(path, sizeof(path), dir, ".hive-check-"))
		return rb_err_set(err, RB_EIO, "cache directory path '%s' is too long", dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return rb_err_set(err, RB_EIO,
				  "cache directory '%s' is not writable: %s (fix its permissions, or "
				  "point RBEE_HOME at a writable directory)",
				  dir, strerror(errno));
	int rc = 0;
	if (write(fd, "rbee\n", 5) != 5)
		rc = rb_err_set(err, RB_EIO, "cannot write to the cache directory '%s': %s (is the disk full?)",
				dir, strerror(errno));
	close(fd);
	if (unlink(path) != 0 && !rc)
		rc = rb_err_set(err, RB_EIO, "cannot delete '%s' from the cache directory: %s", path,
				strerror(errno));
	return rc;
}

static struct json_object *check_cache(struct rb_job *job, bool *ok)
{
	struct rb_hive *hive = rb_job_hive(job);
	struct rb_err err = RB_ERR_INIT;
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "path", hive->paths.home);
	*ok = probe_writable(hive->paths.home, &err) == 0;
	rb_json_add_bool(o, "writable", *ok);
	rb_json_add_str(o, "error", *ok ? NULL : err.msg);
	struct statvfs vfs;
	if (*ok && statvfs(hive->paths.home, &vfs) == 0) {
		unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
		json_object_object_add(o, "free_bytes", json_object_new_uint64(avail));
		rb_job_say(job, "cache directory '%s': writable, %.1f GiB free", hive->paths.home,
			   (double)avail / (1024.0 * 1024 * 1024));
	} else if (*ok) {
		rb_job_say(job, "cache directory '%s': writable", hive->paths.home);
	} else {
		rb_job_say(job, "%s", err.msg);
	}
	return o;
}

static struct json_object *check_catalog(struct rb_job *job)
{
	struct rb_hive *hive = rb_job_hive(job);
	struct rb_err err = RB_ERR_INIT;
	struct json_object *entries = NULL;
	struct json_object *o = json_object_new_object();
	const char *source = rb_catalog_source(hive);
	rb_json_add_str(o, "source", source);
	int rc = rb_catalog_list(hive, &entries, &err);
	rb_json_add_bool(o, "reachable", rc == 0);
	if (rc == 0) {
		size_t n = json_object_array_length(entries);
		rb_json_add_int(o, "workers", (int64_t)n);
		rb_job_say(job, "catalog %s: reachable, %zu worker%s", source, n, n == 1 ? "" : "s");
	} else {
		rb_json_add_str(o, "error", err.msg);
		rb_job_say(job, "warning: catalog %s is not usable: %s (installed workers still run; "
				"fix --catalog / RBEE_CATALOG_URL to install new ones)",
			   source, err.msg);
	}
	json_object_put(entries);
	return o;
}

static int rb_op_hive_check(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	(void)req;
	struct rb_hive *hive = rb_job_hive(job);
	rb_job_say(job, "checking hive '%s' (rbee-hive %s) on '%s'", hive->cfg.hive_id,
		   RBEE_VERSION, hive->hostname);
	size_t navailable;
	bool cache_ok;
	struct json_object *summary = json_object_new_object();
	rb_json_add_str(summary, "hive_id", hive->cfg.hive_id);
	rb_json_add_str(summary, "version", RBEE_VERSION);
	json_object_object_add(summary, "backends", check_backends(job, &navailable));
	json_object_object_add(summary, "cache", check_cache(job, &cache_ok));
	json_object_object_add(summary, "catalog", check_catalog(job));
	rb_json_add_bool(summary, "ok", cache_ok);
	rb_job_data(job, summary);
	if (!cache_ok)
		return rb_err_set(err, RB_EIO,
				  "hive check failed: the cache directory '%s' is not writable",
				  hive->paths.home);
	rb_job_say(job, "hive check passed: %zu backend%s available", navailable,
		   navailable == 1 ? "" : "s");
	return 0;
}

const struct rb_op rb_hive_check_ops[] = {
	{ "hive_check", { { 0 } }, NULL, rb_op_hive_check,
	  "self-test: backends, cache directory, catalog" },
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};
