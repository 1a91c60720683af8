/*
 * backends.h - the backend plugin registry: loading, probing, devices, and calls into plugins.
 *
 * At start the hive loads every rbee_backend_<name>.so from the plugin path (RBEE_BACKEND_PATH
 * entries first, then the compiled-in directory; the first plugin of a name wins), skipping
 * names in RBEE_BACKEND_BLOCKLIST (comma-separated). Each load failure is kept with its reason.
 * probe + enumerate run in a child process (`rbee-hive --probe-plugin PATH`) with a time limit,
 * so a driver that hangs or crashes costs a "broken: probe timed out" entry, not the daemon.
 * Probes run only on the registry's refresher thread, which also loads the hwloc topology: the
 * first round starts at once, so the hive answers /health before it lands; until then every
 * backend is "probing". Readers get the last result at once, with its age; rb_backends_get
 * (what jobs use) waits for the first round, bounded. rb_backends_refresh() only asks.
 */
#ifndef RB_BACKENDS_H
#define RB_BACKENDS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <json-c/json.h>
#include <rbee/backend.h>

#include "host.h"
#include "rb_err.h"

/* The parts of this subsystem the rest of the hive uses besides the registry below. */
#include "host.h"     /* host services, build environment, verify, launch plan */
#include "topology.h" /* the hwloc topology, loaded once */

struct rb_hive;
struct rb_job;

enum rb_backend_state {
	RB_BACKEND_AVAILABLE = RBEE_PROBE_AVAILABLE,
	RB_BACKEND_UNAVAILABLE = RBEE_PROBE_UNAVAILABLE,
	RB_BACKEND_BROKEN = RBEE_PROBE_BROKEN, /* includes "could not be loaded" */
	RB_BACKEND_PROBING = 3, /* the first probe round has not answered yet */
};

/* "available", "unavailable", "broken", "probing". */
const char *rb_backend_state_name(enum rb_backend_state s);

/* A copy of one backend's state, safe to keep after the registry changes. */
struct rb_backend_info {
	char name[64];
	char version[64];
	char description[256];
	char path[PATH_MAX];
	enum rb_backend_state state;
	int score;
	char reason[RBEE_REASON_MAX];
	struct rbee_device *devices; /* malloc'd array */
	size_t ndevices;
	struct rb_device_attr *attrs; /* malloc'd: the devices' facts (host->device_attr) */
	size_t nattrs;
	long long probed_ms;         /* monotonic time of the probe, 0 = never probed */
	time_t probed_at;            /* wall clock of the same, for the API */
	bool changed_on_disk;        /* the file at `path` is no longer the loaded one */
};

void rb_backend_info_release(struct rb_backend_info *info);

/* Find the plugins (nothing of them runs yet). Never fails for a bad plugin (that is recorded);
 * fails only when the registry itself cannot be created. */
int rb_backends_init(struct rb_hive *hive, struct rb_err *err);
/* Start the refresher thread: hwloc topology, then the first probe round, then re-probes.
 * main() calls it once the server listens, so start-up never waits for (nor competes with)
 * plugins; until the first round lands readers see "probing" or wait for it. */
void rb_backends_start(struct rb_hive *hive);
void rb_backends_free(struct rb_hive *hive);

/* Ask the refresher to re-probe every loaded backend whose result is older than max_age_ms
 * (0 = every backend, those that failed to load too: SIGHUP). Never waits for the probes. */
void rb_backends_refresh(struct rb_hive *hive, int max_age_ms);

/* Whether the first probe round has landed (false while every backend is "probing"). */
bool rb_backends_ready(struct rb_hive *hive);
/* Wait for the first probe round, at most timeout_ms (< 0: the probe time limit plus 5 s).
 * Returns whether it landed. */
bool rb_backends_wait_ready(struct rb_hive *hive, int timeout_ms);
/* How long rb_backends_wait_ready(hive, -1) waits at most, in ms. */
int rb_backends_ready_limit_ms(struct rb_hive *hive);

/* Copy one backend's state by name; RB_ENOTFOUND when no such plugin was found. Waits for the
 * first probe round first (rb_backends_wait_ready(hive, -1)). */
int rb_backends_get(struct rb_hive *hive, const char *name, struct rb_backend_info *out,
		    struct rb_err *err);
/* Copy all; free with rb_backends_list_free. */
size_t rb_backends_list(struct rb_hive *hive, struct rb_backend_info **out);
void rb_backends_list_free(struct rb_backend_info *list, size_t n);

/* JSON views used by /v1/backends, /v1/capabilities and hive_check. */
struct json_object *rb_backend_info_json(const struct rb_backend_info *info);
struct json_object *rb_device_json(const char *backend, const struct rbee_device *d);
/* Device `i` of a backend, with its "attributes" object (the plugin's facts, {} when none). */
struct json_object *rb_backend_device_json(const struct rb_backend_info *info, size_t i);
/* "probed_at" (ISO 8601 UTC, null when never) and "probe_age_ms" (null when never) into o. */
void rb_backend_probed_json(struct json_object *o, long long probed_ms, time_t probed_at);

/* Calls into a plugin's operations (in the daemon; see rbee/backend.h for the rules).
 * `job` may be NULL; when set, plugin log lines go into the job's narration. */
struct rb_env;  /* build environment: see host.h */
struct rb_plan; /* launch plan: see host.h */
struct rb_report;
int rb_backend_build_env(struct rb_hive *hive, const char *backend, struct rb_job *job,
			 struct rb_env *env, struct rb_err *err);
int rb_backend_verify(struct rb_hive *hive, const char *backend, struct rb_job *job,
		      const struct rbee_worker_info *worker, struct rb_report *report,
		      struct rb_err *err);
int rb_backend_spawn(struct rb_hive *hive, const char *backend, struct rb_job *job,
		     const struct rbee_spawn_request *req, struct rb_plan *plan, struct rb_err *err);

/* Check a descriptor as the loader does (ABI major, size, flags, name). */
int rb_backend_check(const struct rbee_backend *desc, const char *expected_name, struct rb_err *err);
/* dlopen a plugin file, find its descriptor and check it; nothing of the plugin runs. `name`
 * receives the backend name taken from the file name. */
int rb_backend_open(const char *path, void **dl, const struct rbee_backend **desc, char *name,
		    size_t name_len, struct rb_err *err);

/* The hidden `rbee-hive [--plugin-dir DIR] --probe-plugin PATH` mode: load, check, init,
 * probe, enumerate, print JSON on stdout. `cfg` gives host->path("plugins"), RBEE_HOME the
 * rest. Returns the process exit status. */
struct rb_config;
int rb_backends_probe_main(const struct rb_config *cfg, const char *path);

#endif
