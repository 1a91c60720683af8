/*
 * workers.c - the process registry's entries: registration, persistence and re-adoption,
 * queries and their JSON (see workers.h). Reaping, stopping and the monitor thread are in
 * workers_monitor.c.
 */
#include "workers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_procfs.h"
#include "workers_internal.h"

#define DEFAULT_PORT_LO 9300
#define DEFAULT_PORT_HI 9999
#define DEFAULT_HEALTH_MS 5000
#define REGISTRY_FILE "workers.json"
#define REGISTRY_VERSION 1

static const char *const state_names[] = { "starting", "ready", "unhealthy", "exited", "stopped" };

const char *rb_worker_state_name(enum rb_worker_state state)
{
	return (unsigned)state < sizeof(state_names) / sizeof(state_names[0]) ? state_names[state]
									       : "unknown";
}

bool rb_worker_state_live(enum rb_worker_state state)
{
	return state == RB_WORKER_STARTING || state == RB_WORKER_READY ||
	       state == RB_WORKER_UNHEALTHY;
}

static int state_from_name(const char *name)
{
	for (size_t i = 0; name && i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (!strcmp(state_names[i], name))
			return (int)i;
	return -1;
}

/* ---- configuration ----------------------------------------------------------------------- */

/* An integer environment variable within [lo, hi]; `def` when unset. */
static int env_int(const char *name, int def, int lo, int hi, int *out, struct rb_err *err)
{
	const char *v = getenv(name);
	*out = def;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return rb_err_set(err, RB_EINVAL, "invalid %s '%s': give a whole number from %d to %d",
				  name, v, lo, hi);
	*out = (int)x;
	return 0;
}

static int parse_port_range(struct rb_workers *ws, struct rb_err *err)
{
	const char *v = getenv("RBEE_WORKER_PORTS");
	ws->port_lo = DEFAULT_PORT_LO;
	ws->port_hi = DEFAULT_PORT_HI;
	if (!v || !*v)
		return 0;
	unsigned lo, hi;
	char tail;
	if (sscanf(v, "%u-%u%c", &lo, &hi, &tail) != 2 || lo == 0 || lo > hi || hi > 65535)
		return rb_err_set(err, RB_EINVAL,
				  "invalid RBEE_WORKER_PORTS '%s': give a port range 'LO-HI' with "
				  "1 <= LO <= HI <= 65535, e.g. '9300-9999'", v);
	ws->port_lo = (uint16_t)lo;
	ws->port_hi = (uint16_t)hi;
	return 0;
}

int rb_workers_grace_ms(struct rb_hive *hive)
{
	return hive->workers ? hive->workers->grace_ms : RB_WORKER_STOP_GRACE_MS;
}

void rb_workers_port_range(struct rb_hive *hive, uint16_t *lo, uint16_t *hi)
{
	*lo = hive->workers->port_lo;
	*hi = hive->workers->port_hi;
}

/* ---- persistence ------------------------------------------------------------------------- */

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

void rb_workers_save_locked(struct rb_workers *ws)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	rb_json_add_int(root, "version", REGISTRY_VERSION);
	for (size_t i = 0; i < ws->n; i++)
		json_object_array_add(arr, entry_to_disk(&ws->v[i]));
	json_object_object_add(root, "workers", arr);
	struct rb_err err = RB_ERR_INIT;
	if (rb_json_write_file(ws->path, root, &err))
		rb_error("the worker registry could not be saved, so a restarted hive would not find "
			 "its workers: %s", err.msg);
	json_object_put(root);
}

static int push_entry(struct rb_workers *ws, const struct rb_worker *w)
{
	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 16;
		struct rb_worker *v = realloc(ws->v, cap * sizeof(*v));
		if (!v)
			return -1;
		ws->v = v;
		ws->cap = cap;
	}
	ws->v[ws->n++] = *w;
	return 0;
}

void rb_workers_remove_locked(struct rb_workers *ws, struct rb_worker *w)
{
	size_t i = (size_t)(w - ws->v);
	memmove(&ws->v[i], &ws->v[i + 1], (ws->n - i - 1) * sizeof(*w));
	ws->n--;
}

/* Keep at most RB_WORKERS_KEEP_EXITED exited entries: the oldest go first. */
static void prune_locked(struct rb_workers *ws)
{
	size_t exited = 0;
	for (size_t i = 0; i < ws->n; i++)
		exited += !rb_worker_state_live(ws->v[i].state);
	for (size_t i = 0; i < ws->n && exited > RB_WORKERS_KEEP_EXITED;) {
		if (!rb_worker_state_live(ws->v[i].state)) {
			rb_workers_remove_locked(ws, &ws->v[i]);
			exited--;
		} else {
			i++;
		}
	}
}

/* Re-adopt one persisted entry: true when its process still runs and it stays in the registry.
 * Every other entry is reported once here and dropped: a worker that ended (by itself, or
 * stopped, before or while the hive was down) is not listed by the next hive; its log stays. */
static bool adopt(struct rb_worker *w)
{
	if (!rb_worker_state_live(w->state)) {
		char st[96];
		if (w->state == RB_WORKER_EXITED)
			rb_info("worker '%s' (pid %d, model '%s') had %s before the last hive stopped: "
				"dropped from the registry; its log: '%s'", w->id, (int)w->pid, w->model,
				w->reaped ? rb_proc_status_str(w->wait_status, st, sizeof(st))
					  : w->reason[0] ? w->reason : "ended",
				w->log_path);
		return false;
	}
	if (w->pid > 0 && rb_procfs_alive(w->pid, w->start_time)) {
		w->adopted = true;
		w->health_failures = 0;
		rb_info("re-adopted worker '%s' (pid %d, port %u, %s device %u %s, model '%s'): %s",
			w->id, (int)w->pid, w->port, w->backend, w->device, w->device_id, w->model,
			rb_worker_state_name(w->state));
		return true;
	}
	rb_warn("worker '%s' (pid %d, port %u, model '%s') ended while the hive was not running "
		"(exit status unknown): dropped from the registry; its log: '%s'", w->id, (int)w->pid,
		w->port, w->model, w->log_path);
	return false;
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

static int load(struct rb_workers *ws)
{
	struct rb_err err = RB_ERR_INIT;
	struct json_object *root = rb_json_read_file(ws->path, &err), *arr;
	if (!root) {
		if (err.code != RB_ENOTFOUND)
			set_aside(ws->path, err.msg);
		return 0;
	}
	if (!json_object_object_get_ex(root, "workers", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		json_object_put(root);
		set_aside(ws->path, "no 'workers' array");
		return 0;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct rb_worker w;
		if (!entry_from_disk(json_object_array_get_idx(arr, i), &w)) {
			rb_warn("worker registry '%s': entry %zu is damaged and was dropped", ws->path, i);
			continue;
		}
		if (w.pid == 0 && rb_worker_state_live(w.state))
			continue; /* registered, never started: the spawn died with the hive */
		if (!adopt(&w))
			continue;
		if (push_entry(ws, &w)) {
			json_object_put(root);
			return -1;
		}
	}
	json_object_put(root);
	return 0;
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void workers_free(struct rb_workers *ws)
{
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->wake);
	free(ws->v);
	free(ws);
}

static int configure(struct rb_workers *ws, struct rb_err *err)
{
	int rc = env_int("RBEE_STOP_GRACE_MS", RB_WORKER_STOP_GRACE_MS, 0, 600000, &ws->grace_ms,
			 err);
	if (!rc)
		rc = env_int("RBEE_HEALTH_INTERVAL_MS", DEFAULT_HEALTH_MS, 100, 3600000,
			     &ws->health_ms, err);
	if (!rc)
		rc = parse_port_range(ws, err);
	if (!rc && (size_t)snprintf(ws->path, sizeof(ws->path), "%s/%s", ws->hive->paths.state,
				    REGISTRY_FILE) >= sizeof(ws->path))
		rc = rb_err_set(err, RB_EINVAL, "state directory path too long: '%s'",
				ws->hive->paths.state);
	ws->port_next = ws->port_lo;
	return rc;
}

int rb_workers_init(struct rb_hive *hive, struct rb_err *err)
{
	struct rb_workers *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	ws->hive = hive;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->wake, &ca);
	pthread_condattr_destroy(&ca);
	int rc = configure(ws, err);
	if (!rc)
		rc = rb_fs_mkdir_p(hive->paths.state, 0755, err);
	if (!rc)
		rc = rb_fs_mkdir_p(hive->paths.logs, 0755, err);
	if (!rc && load(ws))
		rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
	if (rc) {
		workers_free(ws);
		return rc;
	}
	prune_locked(ws);
	rb_workers_save_locked(ws);
	if ((rc = rb_workers_monitor_start(ws, err))) {
		workers_free(ws);
		return rc;
	}
	hive->workers = ws;
	return 0;
}

void rb_workers_shutdown(struct rb_hive *hive)
{
	struct rb_workers *ws = hive->workers;
	if (!ws)
		return;
	rb_workers_monitor_stop(ws);
	pthread_mutex_lock(&ws->lock);
	size_t live = 0;
	for (size_t i = 0; i < ws->n; i++)
		live += rb_worker_state_live(ws->v[i].state);
	pthread_mutex_unlock(&ws->lock);
	if (live && hive->cfg.keep_workers)
		rb_info("--keep-workers: leaving %zu worker(s) running; the next hive re-adopts them",
			live);
	else if (live)
		rb_workers_stop_all(ws);
	pthread_mutex_lock(&ws->lock);
	/* Only running workers are handed to the next hive: the stopped and exited ones were each
	 * logged when they ended, and nothing would ever remove them from a later listing. */
	for (size_t i = 0; i < ws->n;) {
		if (rb_worker_state_live(ws->v[i].state))
			i++;
		else
			rb_workers_remove_locked(ws, &ws->v[i]);
	}
	rb_workers_save_locked(ws);
	pthread_mutex_unlock(&ws->lock);
	hive->workers = NULL;
	workers_free(ws);
}

/* ---- entries ----------------------------------------------------------------------------- */

struct rb_worker *rb_workers_find_locked(struct rb_workers *ws, const char *id)
{
	for (size_t i = 0; i < ws->n; i++)
		if (!strcmp(ws->v[i].id, id))
			return &ws->v[i];
	return NULL;
}

static struct rb_worker *find_pid_locked(struct rb_workers *ws, pid_t pid)
{
	/* Newest first: an exited entry may share its pid with a newer, live one. */
	for (size_t i = ws->n; i-- > 0;)
		if (ws->v[i].pid == pid)
			return &ws->v[i];
	return NULL;
}

static int not_registered(const char *id, struct rb_err *err)
{
	return rb_err_set(err, RB_ENOTFOUND, "worker '%s' is not in this hive's registry", id);
}

int rb_workers_add(struct rb_hive *hive, const struct rb_worker *w, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	int rc = 0;
	pthread_mutex_lock(&ws->lock);
	if (ws->stopping)
		rc = rb_err_set(err, RB_EUNAVAIL, "the hive is shutting down: no new workers");
	else if (rb_workers_find_locked(ws, w->id))
		rc = rb_err_set(err, RB_ECONFLICT, "worker id '%s' is already taken", w->id);
	else {
		/* Pruned here, where no caller holds a pointer into the entries. */
		prune_locked(ws);
		if (push_entry(ws, w))
			rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
		else
			rb_workers_save_locked(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int rb_workers_claim_port(struct rb_hive *hive, const char *id, uint16_t port, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	int rc = 0;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = rb_workers_find_locked(ws, id);
	for (size_t i = 0; w && i < ws->n && !rc; i++)
		if (&ws->v[i] != w && ws->v[i].port == port && rb_worker_state_live(ws->v[i].state))
			rc = rb_err_set(err, RB_ECONFLICT, "port %u is held by worker '%s'", port,
					ws->v[i].id);
	if (!w) {
		rc = not_registered(id, err);
	} else if (!rc) {
		w->port = port;
		snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u", port);
		rb_workers_save_locked(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

uint16_t rb_workers_next_port_hint(struct rb_hive *hive)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	uint16_t p = ws->port_next;
	ws->port_next = p >= ws->port_hi ? ws->port_lo : (uint16_t)(p + 1);
	pthread_mutex_unlock(&ws->lock);
	return p;
}

int rb_workers_set_started(struct rb_hive *hive, const char *id, pid_t pid,
			   unsigned long long start_time, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = rb_workers_find_locked(ws, id);
	if (w) {
		w->pid = pid;
		w->start_time = start_time;
		w->reaped = false;
		w->wait_status = 0;
		w->reason[0] = '\0';
		w->state = RB_WORKER_STARTING;
		rb_info("spawned worker '%s' (pid %d, port %u, %s device %u %s, model '%s', "
			"installed worker '%s'); its log: '%s'", w->id, (int)pid, w->port, w->backend,
			w->device, w->device_id, w->model, w->installed_id, w->log_path);
		rb_workers_save_locked(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return w ? 0 : not_registered(id, err);
}

int rb_workers_set_ready(struct rb_hive *hive, const char *id, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	int rc = 0;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = rb_workers_find_locked(ws, id);
	if (!w) {
		rc = not_registered(id, err);
	} else if (rb_workers_reap_locked(ws, w)) {
		rc = rb_err_set(err, RB_EIO, "worker '%s' ended just as it became ready: %s", id,
				w->reason);
	} else {
		w->state = RB_WORKER_READY;
		w->health_failures = 0;
		rb_info("worker '%s' (pid %d, port %u) is ready", w->id, (int)w->pid, w->port);
		rb_workers_save_locked(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int rb_workers_poll(struct rb_hive *hive, const char *id, struct rb_worker *out,
		    struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = rb_workers_find_locked(ws, id);
	if (w) {
		rb_workers_reap_locked(ws, w);
		*out = *w;
	}
	pthread_mutex_unlock(&ws->lock);
	return w ? 0 : not_registered(id, err);
}

int rb_workers_get_pid(struct rb_hive *hive, pid_t pid, struct rb_worker *out, struct rb_err *err)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *w = pid > 0 ? find_pid_locked(ws, pid) : NULL;
	if (w) {
		rb_workers_reap_locked(ws, w);
		*out = *w;
	}
	pthread_mutex_unlock(&ws->lock);
	if (!w)
		return rb_err_set(err, RB_ENOTFOUND,
				  "pid %d is not a worker spawned by this hive: only pids listed by "
				  "'rbee worker process list' can be inspected or stopped", (int)pid);
	return 0;
}

int rb_workers_stop_pid(struct rb_hive *hive, pid_t pid, int grace_ms, struct rb_worker *out,
			struct rb_err *err)
{
	struct rb_worker w;
	int rc = rb_workers_get_pid(hive, pid, &w, err);
	return rc ? rc : rb_workers_stop(hive, w.id, grace_ms, out, err);
}

/* True when a live worker's installed-worker id (use_model false) or model id matches `id`. */
static bool any_live_uses(struct rb_hive *hive, bool use_model, const char *id)
{
	struct rb_workers *ws = hive ? hive->workers : NULL;
	bool used = false;
	if (!ws)
		return false;
	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < ws->n && !used; i++)
		used = rb_worker_state_live(ws->v[i].state) &&
		       !strcmp(use_model ? ws->v[i].model : ws->v[i].installed_id, id);
	pthread_mutex_unlock(&ws->lock);
	return used;
}

bool rb_workers_uses_installed(struct rb_hive *hive, const char *installed_id)
{
	return any_live_uses(hive, false, installed_id);
}

bool rb_workers_uses_model(struct rb_hive *hive, const char *model_id)
{
	return any_live_uses(hive, true, model_id);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void add_time(struct json_object *o, const char *key, time_t t)
{
	char buf[32];
	struct tm tm;
	if (!t || !gmtime_r(&t, &tm)) {
		json_object_object_add(o, key, NULL);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rb_json_add_str(o, key, buf);
}

struct json_object *rb_worker_json(const struct rb_worker *w)
{
	struct json_object *o = json_object_new_object();
	bool live = rb_worker_state_live(w->state);
	rb_json_add_str(o, "worker_id", w->id);
	rb_json_add_str(o, "state", rb_worker_state_name(w->state));
	json_object_object_add(o, "pid", w->pid > 0 ? json_object_new_int(w->pid) : NULL);
	json_object_object_add(o, "port", w->port ? json_object_new_int(w->port) : NULL);
	rb_json_add_str(o, "url", w->url[0] ? w->url : NULL);
	rb_json_add_str(o, "model", w->model);
	rb_json_add_str(o, "backend", w->backend);
	rb_json_add_int(o, "device", w->device);
	rb_json_add_str(o, "device_id", w->device_id);
	rb_json_add_str(o, "installed_worker", w->installed_id);
	add_time(o, "started_at", w->started_at);
	json_object_object_add(o, "uptime_s", live && w->started_at
			       ? json_object_new_int64((int64_t)(time(NULL) - w->started_at)) : NULL);
	uint64_t rss;
	json_object_object_add(o, "rss_bytes", live && rb_procfs_rss(w->pid, &rss) == 0
			       ? json_object_new_int64((int64_t)rss) : NULL);
	/* No backend reports per-process device memory yet (NVML could; the plugin ABI has no
	 * call for it), so say "unknown" rather than guess. */
	json_object_object_add(o, "vram_bytes", NULL);
	char st[96];
	rb_json_add_str(o, "exit", w->reaped ? rb_proc_status_str(w->wait_status, st, sizeof(st))
					     : NULL);
	rb_json_add_str(o, "reason", w->reason[0] ? w->reason : NULL);
	rb_json_add_int(o, "health_failures", w->health_failures);
	rb_json_add_bool(o, "adopted", w->adopted);
	rb_json_add_str(o, "log_path", w->log_path);
	return o;
}

/* A copy of every entry, so JSON (which reads /proc) is built without the lock. */
static struct rb_worker *snapshot(struct rb_hive *hive, size_t *n)
{
	struct rb_workers *ws = hive->workers;
	pthread_mutex_lock(&ws->lock);
	struct rb_worker *v = malloc((ws->n ? ws->n : 1) * sizeof(*v));
	*n = 0;
	if (v && ws->n) {
		memcpy(v, ws->v, ws->n * sizeof(*v));
		*n = ws->n;
	}
	pthread_mutex_unlock(&ws->lock);
	return v;
}

struct json_object *rb_workers_list_json(struct rb_hive *hive)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	size_t n = 0;
	struct rb_worker *v = hive->workers ? snapshot(hive, &n) : NULL;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, rb_worker_json(&v[i]));
	free(v);
	json_object_object_add(root, "workers", arr);
	return root;
}

struct json_object *rb_workers_counts_json(struct rb_hive *hive)
{
	int counts[5] = { 0 };
	size_t n = 0;
	struct rb_worker *v = hive->workers ? snapshot(hive, &n) : NULL;
	for (size_t i = 0; i < n; i++)
		counts[v[i].state]++;
	free(v);
	struct json_object *o = json_object_new_object();
	rb_json_add_int(o, "total", (int64_t)n);
	for (int s = 0; s < 5; s++)
		rb_json_add_int(o, state_names[s], counts[s]);
	return o;
}
