/*
 * backends.h - the backend plugin registry: loading, probing, devices, and calls into plugins.
 *
 * At start the hive loads every rbee_backend_<name>.so from the plugin path (RBEE_BACKEND_PATH
 * entries first, then the compiled-in directory; the first plugin of a name wins), skipping
 * names in RBEE_BACKEND_BLOCKLIST (comma-separated). Each load failure is kept with its reason.
 * probe + enumerate run in a child process (`rbee-hive --probe-plugin PATH`) with a time limit,
 * so a driver that hangs or crashes costs a "broken: probe timed out" entry, not the daemon.
 * Results are cached; rb_backends_refresh() re-probes when they are older than asked.
 */
#ifndef RB_BACKENDS_H
#define RB_BACKENDS_H

#include <limits.h>
#include <stddef.h>

#include <json-c/json.h>
#include <rbee/backend.h>

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
};

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
	long long probed_ms;         /* monotonic time of the probe */
};

void rb_backend_info_release(struct rb_backend_info *info);

/* Load all plugins and probe them. Never fails for a bad plugin (that is recorded); fails only
 * when the registry itself cannot be created. */
int rb_backends_init(struct rb_hive *hive, struct rb_err *err);
void rb_backends_free(struct rb_hive *hive);

/* Re-probe every loaded backend whose result is older than max_age_ms (0 = always). */
void rb_backends_refresh(struct rb_hive *hive, int max_age_ms);

/* Copy one backend's state by name; RB_ENOTFOUND when no such plugin was found. */
int rb_backends_get(struct rb_hive *hive, const char *name, struct rb_backend_info *out,
		    struct rb_err *err);
/* Copy all; free with rb_backends_list_free. */
size_t rb_backends_list(struct rb_hive *hive, struct rb_backend_info **out);
void rb_backends_list_free(struct rb_backend_info *list, size_t n);

/* JSON views used by /v1/backends, /v1/capabilities and hive_check. */
struct json_object *rb_backend_info_json(const struct rb_backend_info *info);
struct json_object *rb_device_json(const char *backend, const struct rbee_device *d);

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

/* The hidden `rbee-hive --probe-plugin PATH` mode: load, check, probe, enumerate, print JSON
 * on stdout. Returns the process exit status. */
int rb_backends_probe_main(const char *path);

#endif
