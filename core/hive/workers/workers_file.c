/*
 * workers_file.c - workers.json, the registry as the next hive finds it: entries to and from
 * disk. No lock and no state of its own (see workers_internal.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "workers_internal.h"

#define REGISTRY_VERSION 1

static int state_from_name(const char *name)
{
	for (int s = RB_WORKER_STARTING; name && s <= RB_WORKER_STOPPED; s++)
		if (!strcmp(rb_worker_state_name((enum rb_worker_state)s), name))
			return s;
	return -1;
}

static struct json_object *entry_to_disk(const struct rb_worker *w)
{
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "worker_id", w->id);
	rb_json_add_str(o, "installed_worker", w->installed_id);
	rb_json_add_str(o, "backend", w->backend);
	rb_json_add_int(o, "device", w->device);
	rb_json_add_str(o, "device_id", w->device_id);
	rb_json_add_str(o, "model", w->model);
	rb_json_add_int(o, "pid", w->pid);
	/* A string: start times are clock ticks and JSON readers may lose 64-bit integers. */
	char st[32];
	snprintf(st, sizeof(st), "%llu", w->start_time);
	rb_json_add_str(o, "start_time", st);
	rb_json_add_int(o, "port", w->port);
	rb_json_add_str(o, "url", w->url);
	rb_json_add_str(o, "health_path", w->health_path);
	rb_json_add_str(o, "log_path", w->log_path);
	rb_json_add_str(o, "state", rb_worker_state_name(w->state));
	rb_json_add_int(o, "started_at", (int64_t)w->started_at);
	rb_json_add_bool(o, "reaped", w->reaped);
	rb_json_add_int(o, "wait_status", w->wait_status);
	rb_json_add_str(o, "reason", w->reason);
	return o;
}

/* One persisted entry; false when it is not usable (it is then dropped with a warning). */
static bool entry_from_disk(struct json_object *o, struct rb_worker *w)
{
	memset(w, 0, sizeof(*w));
	rb_json_copy_str(w->id, sizeof(w->id), o, "worker_id");
	rb_json_copy_str(w->installed_id, sizeof(w->installed_id), o, "installed_worker");
	rb_json_copy_str(w->backend, sizeof(w->backend), o, "backend");
	rb_json_copy_str(w->device_id, sizeof(w->device_id), o, "device_id");
	rb_json_copy_str(w->model, sizeof(w->model), o, "model");
	rb_json_copy_str(w->url, sizeof(w->url), o, "url");
	rb_json_copy_str(w->health_path, sizeof(w->health_path), o, "health_path");
	rb_json_copy_str(w->log_path, sizeof(w->log_path), o, "log_path");
	rb_json_copy_str(w->reason, sizeof(w->reason), o, "reason");
	int state = state_from_name(rb_json_str(o, "state"));
	int64_t pid = rb_json_int(o, "pid", -1), port = rb_json_int(o, "port", -1);
	const char *st = rb_json_str(o, "start_time");
	if (!rb_id_valid(w->id) || state < 0 || pid < 0 || pid > 0x3fffffff || port < 0 ||
	    port > 65535 || !st)
		return false;
	w->state = (enum rb_worker_state)state;
	w->pid = (pid_t)pid;
	w->port = (uint16_t)port;
	w->start_time = strtoull(st, NULL, 10);
	w->device = (uint32_t)rb_json_int(o, "device", 0);
	w->started_at = (time_t)rb_json_int(o, "started_at", 0);
	w->reaped = rb_json_bool(o, "reaped", false);
	w->wait_status = (int)rb_json_int(o, "wait_status", 0);
	if (!w->health_path[0])
		snprintf(w->health_path, sizeof(w->health_path), "/health");
	return true;
}

int rb_workers_file_write(const char *path, const struct rb_worker *v, size_t n,
			  struct rb_err *err)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	rb_json_add_int(root, "version", REGISTRY_VERSION);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, entry_to_disk(&v[i]));
	json_object_object_add(root, "workers", arr);
	int rc = rb_json_write_file(path, root, err);
	json_object_put(root);
	return rc;
}

/* Move a registry file that cannot be read out of the way, keeping it for inspection. */
static void set_aside(const char *path, const char *why)
{
	char aside[PATH_MAX + 64];
	snprintf(aside, sizeof(aside), "%s.damaged-%lld", path, (long long)time(NULL));
	if (rename(path, aside) == 0)
		rb_error("worker registry '%s' is unreadable (%s); kept as '%s', starting with an "
			 "empty registry: workers it listed are not supervised", path, why, aside);
	else
		rb_error("worker registry '%s' is unreadable (%s) and cannot be moved aside: %s", path,
			 why, strerror(errno));
}

int rb_workers_file_read(const char *path, struct rb_worker **v, size_t *n)
{
	*v = NULL;
	*n = 0;
	struct rb_err err = RB_ERR_INIT;
	struct json_object *root = rb_json_read_file(path, &err), *arr;
	if (!root) {
		if (err.code != RB_ENOTFOUND)
			set_aside(path, err.msg);
		return 0;
	}
	if (!json_object_object_get_ex(root, "workers", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		json_object_put(root);
		set_aside(path, "no 'workers' array");
		return 0;
	}
	size_t len = json_object_array_length(arr);
	if (len && !(*v = calloc(len, sizeof(**v)))) {
		json_object_put(root);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (entry_from_disk(json_object_array_get_idx(arr, i), &(*v)[*n]))
			(*n)++;
		else
			rb_warn("worker registry '%s': entry %zu is damaged and was dropped", path, i);
	}
	json_object_put(root);
	return 0;
}
