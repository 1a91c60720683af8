/*
 * host.h - the core's side of the plugin ABI: the host-services table and the objects plugins
 * fill through it (build environment, verify report, launch plan).
 */
#ifndef RB_HOST_H
#define RB_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>
#include <rbee/backend.h>

#include "rb_buf.h"
#include "rb_err.h"

struct rb_hive;
struct rb_job;

/* A list of NAME=VALUE strings, the last setting of a name wins. */
struct rb_env {
	char **vars;
	size_t n, cap;
};
void rb_env_init(struct rb_env *env);
void rb_env_release(struct rb_env *env);
int rb_env_set(struct rb_env *env, const char *name, const char *value); /* value NULL: unset */
const char *rb_env_get(const struct rb_env *env, const char *name);
/* A NULL-terminated envp view (valid until the env changes). */
const char *const *rb_env_envp(struct rb_env *env);
/* Start from the hive's environment minus secrets (RBEE_API_TOKEN, HF_TOKEN, *_TOKEN,
 * *SECRET*, *PASSWORD*, *_API_KEY, AWS_*KEY*, SSH_AUTH_SOCK; names in any case: the policy is
 * rb_secret_env_name(), core/lib/rb_secrets.h). What builds,
 * verify probes, plugin tools and workers inherit. */
void rb_env_from_environ_scrubbed(struct rb_env *env);

/* Verify report: ordered checks, each ok or not, with detail. */
struct rb_report {
	struct json_object *checks; /* array of {"check","ok","detail"} */
	bool ok;                    /* all checks ok so far */
};
void rb_report_init(struct rb_report *r);
void rb_report_release(struct rb_report *r);
void rb_report_add(struct rb_report *r, const char *check, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Launch plan: what the core execs for a worker. */
struct rb_plan {
	char **argv; /* NULL-terminated */
	size_t argc, cap;
	struct rb_env env;       /* the child's complete environment */
	char cpuset[256];        /* hwloc list string to bind CPUs to, "" = no binding */
	char nodeset[64];        /* hwloc list string to bind memory to, "" = no binding */
	/* The launch template from the catalog entry: {"args":[...]} or NULL for the rbee worker
	 * contract. Not owned. */
	struct json_object *launch;
	/* Arguments whose template uses {threads}: expanded again by rb_plan_finish once the
	 * plugin has set the binding (plugins may bind after asking for the argv). */
	struct rb_plan_late {
		size_t idx;
		char *tmpl;
	} *late;
	size_t nlate;
};
void rb_plan_init(struct rb_plan *p);
void rb_plan_release(struct rb_plan *p);
int rb_plan_add_arg(struct rb_plan *p, const char *arg);
/* Fill argv from the launch template or the rbee worker contract. {threads} is provisionally the
 * CPU count of the device's cpuset (else the hive's own affinity) until rb_plan_finish. */
int rb_plan_default_argv(struct rb_plan *p, const struct rbee_spawn_request *req, struct rb_err *err);
/* After the plugin's spawn op: expand {threads} with the plan's binding, the number of online CPUs
 * in p->cpuset, or when the worker is not bound, the CPUs the hive itself may run on
 * (sched_getaffinity), which the worker inherits. */
int rb_plan_finish(struct rb_plan *p, const struct rbee_spawn_request *req, struct rb_err *err);
/* That number for a CPU list ("0-3,8"; "" or NULL: the hive's own affinity); at least 1. */
unsigned rb_plan_threads(const char *cpuset);

/* One fact a plugin attached to a device (host->device_attr, ABI 1.2). */
struct rb_device_attr {
	uint32_t device;                        /* index into the device array it goes with */
	char key[RBEE_DEVICE_ATTR_KEY_MAX];
	char value[RBEE_DEVICE_ATTR_VALUE_MAX];
};
/* Check a fact against the ABI's rules (key syntax and length, value UTF-8, no control
 * characters, length); the message names the rule broken. */
int rb_device_attr_check(const char *key, const char *value, struct rb_err *err);
/* Check, then add the fact to device `device` in *v (or replace the value of its key); refused
 * past RBEE_DEVICE_ATTR_MAX facts for that device. */
int rb_device_attr_set(struct rb_device_attr **v, size_t *n, size_t *cap, uint32_t device,
		       const char *key, const char *value, struct rb_err *err);

/* One call into a plugin: build the host table for it. */
struct rbee_call {
	struct rb_hive *hive;
	struct rb_job *job;     /* narration target, may be NULL */
	struct rb_err err;      /* last host->fail() message */
	/* Only one of these is set, depending on the operation. */
	struct rb_env *env;
	struct rb_report *report;
	struct rb_plan *plan;
	/* enumerate: collected devices. */
	struct rbee_device *devices;
	size_t ndevices, cap;
	bool device_refused;    /* device_add refused one (duplicate, empty id...): see call.err */
	bool enumerating;       /* device_add and device_attr are allowed */
	struct rb_device_attr *attrs; /* enumerate: facts of the collected devices */
	size_t nattrs, attrs_cap;
	void *plugin_state;     /* what the plugin's init stored (host->plugin_state) */
	const char *plugin_name;
	/* The probe child: host->log lines go here as RB_PROBE_LOG_MARK lines for the daemon. */
	FILE *relay;
};
/* "rbee-probe: log LEVEL TEXT": a plugin's log line relayed by the probe child. */
#define RB_PROBE_LOG_MARK "rbee-probe: log"
/* Build the host table for one call; the call is the thread's current one (the services taking
 * an env, report or plan handle report refusals into it) until rb_call_release. */
void rb_host_init(struct rbee_host *host, struct rbee_call *call);
void rb_call_release(struct rbee_call *call);

/* Copy a plugin string into dst[size] (dst may be src) as well-formed UTF-8: ill-formed
 * sequences become U+FFFD, and a cut never splits a character. */
void rb_host_clean_str(char *dst, size_t size, const char *src);
/* Terminate and clean every string of a device record in place. */
void rb_device_clean(struct rbee_device *d);

#endif
