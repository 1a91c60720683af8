/*
 * host.c - the host-services table handed to plugins, and the objects they fill: build
 * environments, verify reports and launch plans.
 */
#include "host.h"

#include <sched.h>

#include <hwloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive.h"
#include "jobs/jobs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"
#include "rb_secrets.h"
#include "topology.h"

extern char **environ;

/* ---- rb_env ---------------------------------------------------------------------------- */

void rb_env_init(struct rb_env *env)
{
	env->vars = NULL;
	env->n = env->cap = 0;
}

void rb_env_release(struct rb_env *env)
{
	for (size_t i = 0; i < env->n; i++)
		free(env->vars[i]);
	free(env->vars);
	rb_env_init(env);
}

static ssize_t env_find(const struct rb_env *env, const char *name, size_t nlen)
{
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->vars[i], name, nlen) && env->vars[i][nlen] == '=')
			return (ssize_t)i;
	return -1;
}

int rb_env_set(struct rb_env *env, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || strchr(name, '='))
		return -RB_EINVAL;
	ssize_t at = env_find(env, name, nlen);
	if (!value) {
		if (at >= 0) {
			free(env->vars[at]);
			memmove(&env->vars[at], &env->vars[at + 1],
				(env->n - (size_t)at - 1) * sizeof(char *));
			env->n--;
			env->vars[env->n] = NULL;
		}
		return 0;
	}
	struct rb_buf b = RB_BUF_INIT;
	rb_buf_addf(&b, "%s=%s", name, value);
	char *kv = rb_buf_detach(&b, NULL);
	if (at >= 0) {
		free(env->vars[at]);
		env->vars[at] = kv;
		return 0;
	}
	if (env->n + 2 > env->cap) {
		size_t cap = env->cap ? env->cap * 2 : 32;
		char **v = realloc(env->vars, cap * sizeof(char *));
		if (!v) {
			free(kv);
			return -RB_EINTERNAL;
		}
		env->vars = v;
		env->cap = cap;
	}
	env->vars[env->n++] = kv;
	env->vars[env->n] = NULL;
	return 0;
}

const char *rb_env_get(const struct rb_env *env, const char *name)
{
	ssize_t at = env_find(env, name, strlen(name));
	return at >= 0 ? env->vars[at] + strlen(name) + 1 : NULL;
}

const char *const *rb_env_envp(struct rb_env *env)
{
	static const char *const empty[] = { NULL };
	return env->n ? (const char *const *)env->vars : empty;
}

void rb_env_from_environ_scrubbed(struct rb_env *env)
{
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		char name[256];
		size_t n = (size_t)(eq - *e);
		if (n == 0 || n >= sizeof(name))
			continue;
		memcpy(name, *e, n);
		name[n] = '\0';
		if (!rb_secret_env_name(name)) /* the secret policy: rb_secrets.h */
			rb_env_set(env, name, eq + 1);
	}
}

/* ---- rb_report ------------------------------------------------------------------------- */

void rb_report_init(struct rb_report *r)
{
	r->checks = json_object_new_array();
	r->ok = true;
}

void rb_report_release(struct rb_report *r)
{
	json_object_put(r->checks);
	r->checks = NULL;
}

void rb_report_add(struct rb_report *r, const char *check, bool ok, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	struct json_object *c = json_object_new_object();
	rb_json_add_str(c, "check", check);
	rb_json_add_bool(c, "ok", ok);
	rb_json_add_str(c, "detail", detail);
	json_object_array_add(r->checks, c);
	if (!ok)
		r->ok = false;
}

/* ---- rb_plan --------------------------------------------------------------------------- */

void rb_plan_init(struct rb_plan *p)
{
	memset(p, 0, sizeof(*p));
	rb_env_init(&p->env);
}

void rb_plan_release(struct rb_plan *p)
{
	for (size_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	for (size_t i = 0; i < p->nlate; i++)
		free(p->late[i].tmpl);
	free(p->late);
	rb_env_release(&p->env);
	rb_plan_init(p);
}

int rb_plan_add_arg(struct rb_plan *p, const char *arg)
{
	if (p->argc + 2 > p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **v = realloc(p->argv, cap * sizeof(char *));
		if (!v)
			return -RB_EINTERNAL;
		p->argv = v;
		p->cap = cap;
	}
	p->argv[p->argc] = strdup(arg);
	if (!p->argv[p->argc])
		return -RB_EINTERNAL;
	p->argc++;
	p->argv[p->argc] = NULL;
	return 0;
}

/* ---- {threads} ---- */

#define MAX_CPUS 65536 /* as spawn.c: CPU numbers beyond are refused */

/* The online CPUs (/sys/devices/system/cpu/online) into mask; false when unknown. */
static bool online_cpus(unsigned long *mask)
{
	char line[4096];
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	bool ok = f && fgets(line, sizeof(line), f);
	if (f)
		fclose(f);
	if (!ok)
		return false;
	line[strcspn(line, "\n")] = '\0';
	int max;
	struct rb_err err = RB_ERR_INIT;
	return rb_topology_parse_list(line, mask, MAX_CPUS, &max, &err) == 0;
}

/* CPUs of `list` the kernel would give a process bound to it: those online (a topology read from
 * a file may name CPUs this machine does not have). 0 when the list is empty or invalid. */
static unsigned list_cpus(const char *list)
{
	const size_t words = MAX_CPUS / (8 * sizeof(unsigned long));
	unsigned long *m = calloc(words, sizeof(*m)), *on = calloc(words, sizeof(*on));
	unsigned n = 0;
	int max;
	struct rb_err err = RB_ERR_INIT;
	if (m && on && rb_topology_parse_list(list, m, MAX_CPUS, &max, &err) == 0) {
		bool known = online_cpus(on);
		for (size_t i = 0; i < words; i++)
			n += (unsigned)__builtin_popcountl(known ? m[i] & on[i] : m[i]);
	}
	free(m);
	free(on);
	return n;
}

/* The CPUs this process may run on, which an unbound child inherits. */
static unsigned own_cpus(void)
{
	for (size_t ncpu = 1024; ncpu <= MAX_CPUS; ncpu *= 4) {
		cpu_set_t *set = CPU_ALLOC(ncpu);
		if (!set)
			break;
		size_t size = CPU_ALLOC_SIZE(ncpu);
		CPU_ZERO_S(size, set);
		int rc = sched_getaffinity(0, size, set);
		int n = rc == 0 ? CPU_COUNT_S(size, set) : 0;
		CPU_FREE(set);
		if (rc == 0 && n > 0)
			return (unsigned)n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

unsigned rb_plan_threads(const char *cpuset)
{
	unsigned n = cpuset && *cpuset ? list_cpus(cpuset) : 0;
	return n ? n : own_cpus();
}

/* Substitute {placeholders} of a launch template argument. Unknown placeholders are an error:
 * a typo in a catalog entry must not reach the worker as a literal "{modle_path}". `threads` is
 * the value of {threads}; *late (may be NULL) is set when the template uses it. */
static int expand_arg(const char *tmpl, const struct rbee_spawn_request *req, unsigned threads,
		      bool *late, struct rb_buf *out, struct rb_err *err)
{
	char num[32];
	rb_buf_reset(out);
	for (const char *p = tmpl; *p;) {
		if (*p != '{') {
			rb_buf_addch(out, *p++);
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end)
			return rb_err_set(err, RB_EINVAL, "unterminated placeholder in launch argument '%s'",
					  tmpl);
		size_t n = (size_t)(end - p - 1);
		const char *val = NULL;
#define IS(name) (n == strlen(name) && !strncmp(p + 1, name, n))
		if (IS("worker_id"))
			val = req->instance_id;
		else if (IS("model_path"))
			val = req->model_path;
		else if (IS("model_id"))
			val = req->model_id;
		else if (IS("backend"))
			val = req->worker->worker_type;
		else if (IS("device"))
			snprintf(num, sizeof(num), "%u", req->device->index), val = num;
		else if (IS("port"))
			snprintf(num, sizeof(num), "%u", req->port), val = num;
		else if (IS("hive_url"))
			val = req->hive_url;
		else if (IS("threads")) {
			snprintf(num, sizeof(num), "%u", threads), val = num;
			if (late)
				*late = true;
		} else
			return rb_err_set(err, RB_EINVAL,
					  "unknown placeholder '%.*s' in launch argument '%s' (known: "
					  "{worker_id} {model_path} {model_id} {backend} {device} "
					  "{port} {hive_url} {threads})",
					  (int)n + 2, p, tmpl);
#undef IS
		rb_buf_adds(out, val ? val : "");
		p = end + 1;
	}
	return 0;
}

int rb_plan_default_argv(struct rb_plan *p, const struct rbee_spawn_request *req, struct rb_err *err)
{
	static const char *const contract[] = {
		"--worker-id", "{worker_id}", "--model",  "{model_path}", "--model-ref",
		"{model_id}",  "--backend",   "{backend}", "--device",    "{device}",
		"--port",      "{port}",      "--hive-url", "{hive_url}", NULL,
	};
	struct json_object *args = NULL;
	if (p->launch && !json_object_object_get_ex(p->launch, "args", &args))
		args = NULL;
	if (args && !json_object_is_type(args, json_type_array))
		return rb_err_set(err, RB_EINVAL, "launch 'args' of worker '%s' is not an array",
				  req->worker->worker_id);
	if (p->argc == 0 && rb_plan_add_arg(p, req->worker->binary_path))
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	struct rb_buf b = RB_BUF_INIT;
	size_t n = args ? json_object_array_length(args) : sizeof(contract) / sizeof(contract[0]) - 1;
	/* Provisional: the plugin usually binds the worker to its device's cpuset only after this. */
	unsigned threads = rb_plan_threads(req->device ? req->device->cpuset : NULL);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *t;
		if (args) {
			struct json_object *a = json_object_array_get_idx(args, i);
			if (!json_object_is_type(a, json_type_string)) {
				rc = rb_err_set(err, RB_EINVAL,
						"launch argument %zu of worker '%s' is not a string", i,
						req->worker->worker_id);
				break;
			}
			t = json_object_get_string(a);
		} else {
			t = contract[i];
		}
		bool late = false;
		rc = expand_arg(t, req, threads, &late, &b, err);
		if (!rc && rb_plan_add_arg(p, b.data))
			rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
		if (!rc && late) {
			struct rb_plan_late *v = realloc(p->late, (p->nlate + 1) * sizeof(*v));
			char *copy = strdup(t);
			if (v)
				p->late = v;
			if (!v || !copy) {
				free(copy);
				rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
				break;
			}
			p->late[p->nlate++] = (struct rb_plan_late){ p->argc - 1, copy };
		}
	}
	rb_buf_release(&b);
	return rc;
}

int rb_plan_finish(struct rb_plan *p, const struct rbee_spawn_request *req, struct rb_err *err)
{
	if (!p->nlate)
		return 0;
	unsigned threads = rb_plan_threads(p->cpuset);
	struct rb_buf b = RB_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < p->nlate && !rc; i++) {
		size_t idx = p->late[i].idx;
		if (idx >= p->argc)
			continue;
		rc = expand_arg(p->late[i].tmpl, req, threads, NULL, &b, err);
		char *arg = rc ? NULL : strdup(b.data);
		if (!rc && !arg)
			rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
		if (arg) {
			free(p->argv[idx]);
			p->argv[idx] = arg;
		}
	}
	rb_buf_release(&b);
	return rc;
}

/* ---- plugin strings ------------------------------------------------------------------ */

void rb_host_clean_str(char *dst, size_t size, const char *src)
{
	if (!size)
		return;
	struct rb_buf b = RB_BUF_INIT;
	rb_utf8_sanitize(src ? src : "", src ? strlen(src) : 0, &b);
	size_t n = b.len;
	if (n > size - 1) {
		/* Cut at a character boundary: the text is well-formed, so back off continuation bytes. */
		n = size - 1;
		while (n > 0 && ((unsigned char)b.data[n] & 0xC0) == 0x80)
			n--;
	}
	memmove(dst, b.data, n);
	dst[n] = '\0';
	rb_buf_release(&b);
}

/* ---- the host table -------------------------------------------------------------------- */

/* The call the services taking a handle (env, report, plan) belong to: set by rb_host_init on
 * the thread that then calls the plugin, cleared by rb_call_release. */
static _Thread_local struct rbee_call *current_call;

static int host_fail(struct rbee_call *call, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A host service refuses what the plugin asked. The message becomes the call's error (the plugin
 * reads it with host->last_error; the hive reports it when the operation then fails) and is
 * logged with the plugin's and the service's names. */
static int refuse(struct rbee_call *call, const char *service, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(struct rbee_call *call, const char *service, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (call)
		host_fail(call, status, "host service %s refused: %s", service, msg);
	char clean[sizeof(msg)];
	rb_host_clean_str(clean, sizeof(clean), msg);
	rb_warn("backend %s: host service %s refused: %s",
		call && call->plugin_name ? call->plugin_name : "?", service, clean);
	return status;
}

static void host_log(struct rbee_call *call, enum rbee_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void host_log(struct rbee_call *call, enum rbee_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	rb_host_clean_str(line, sizeof(line), line);
	if ((int)level < RBEE_LOG_DEBUG || level > RBEE_LOG_ERROR)
		level = RBEE_LOG_WARN;
	if (call->relay) {
		/* The probe child: the daemon logs it under the plugin's name (one line). */
		for (char *c = line; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		fprintf(call->relay, "%s %d %s\n", RB_PROBE_LOG_MARK, (int)level, line);
		fflush(call->relay);
		return;
	}
	if (call->job && level >= RBEE_LOG_INFO)
		rb_job_say(call->job, "%s: %s", call->plugin_name ? call->plugin_name : "backend", line);
	else
		rb_log((enum rb_log_level)level, "backend %s: %s",
		       call->plugin_name ? call->plugin_name : "?", line);
}

static int host_fail(struct rbee_call *call, int status, const char *fmt, ...)
{
	if (!call)
		return status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->err.msg, sizeof(call->err.msg), fmt, ap);
	va_end(ap);
	rb_host_clean_str(call->err.msg, sizeof(call->err.msg), call->err.msg);
	switch (status) {
	case RBEE_ERR_INVALID: call->err.code = RB_EINVAL; break;
	case RBEE_ERR_NOT_FOUND: call->err.code = RB_ENOTFOUND; break;
	case RBEE_ERR_UNAVAILABLE: call->err.code = RB_EUNAVAIL; break;
	case RBEE_ERR_NOMEM: call->err.code = RB_EINTERNAL; break;
	default: call->err.code = RB_EIO; break;
	}
	return status;
}

static void *host_topology(struct rbee_call *call)
{
	void *t = call->hive ? call->hive->topology : NULL;
	if (!t)
		host_fail(call, RBEE_ERR_UNAVAILABLE,
			  "host service topology: hwloc could not load this node's topology (see the "
			  "hive's log)");
	return t;
}

static const char *host_path(struct rbee_call *call, const char *which)
{
	struct rb_hive *h = call->hive;
	const char *p = NULL;
	if (!which) {
		host_fail(call, RBEE_ERR_INVALID, "host service path: no name given");
		return NULL;
	}
	if (!strcmp(which, "home"))
		p = h ? h->paths.home : NULL;
	else if (!strcmp(which, "workers"))
		p = h ? h->paths.workers : NULL;
	else if (!strcmp(which, "models"))
		p = h ? h->paths.models : NULL;
	else if (!strcmp(which, "logs"))
		p = h ? h->paths.logs : NULL;
	else if (!strcmp(which, "plugins"))
		p = h ? h->cfg.plugin_dir : NULL;
	else {
		host_fail(call, RBEE_ERR_INVALID, "host service path: unknown name '%.64s' (known: home "
			  "workers models logs plugins)", which);
		return NULL;
	}
	if (!p || !*p) {
		host_fail(call, RBEE_ERR_NOT_FOUND, "host service path: '%s' is not known here", which);
		return NULL;
	}
	return p;
}

static const char *host_getenv(struct rbee_call *call, const char *name)
{
	if (!name) {
		host_fail(call, RBEE_ERR_INVALID, "host service getenv: no name given");
		return NULL;
	}
	if (rb_secret_env_name(name)) {
		/* Not an error for the plugin to ask; last_error says why it got nothing. */
		host_fail(call, RBEE_ERR_UNAVAILABLE, "host service getenv: '%.64s' is withheld from "
			  "plugins (the hive's secret policy)", name);
		return NULL;
	}
	return getenv(name);
}

static int host_device_add(struct rbee_call *call, const struct rbee_device *d)
{
	int rc;
	if (!d || d->struct_size < offsetof(struct rbee_device, pus) + sizeof(d->pus)) {
		rc = refuse(call, "device_add", RBEE_ERR_INVALID,
			    "device record too small (struct_size %u, an ABI 1.0 device has %zu bytes)",
			    d ? d->struct_size : 0, offsetof(struct rbee_device, pus) + sizeof(d->pus));
		call->device_refused = true;
		return rc;
	}
	struct rbee_device dev;
	memset(&dev, 0, sizeof(dev));
	size_t n = d->struct_size < sizeof(dev) ? d->struct_size : sizeof(dev);
	memcpy(&dev, d, n);
	dev.struct_size = sizeof(dev);
	/* Never trust a plugin to terminate its strings, nor to write UTF-8. */
	dev.id[sizeof(dev.id) - 1] = dev.name[sizeof(dev.name) - 1] = '\0';
	dev.device_type[sizeof(dev.device_type) - 1] = dev.uuid[sizeof(dev.uuid) - 1] = '\0';
	dev.pci_bus_id[sizeof(dev.pci_bus_id) - 1] = '\0';
	dev.driver_version[sizeof(dev.driver_version) - 1] = '\0';
	dev.cpuset[sizeof(dev.cpuset) - 1] = dev.nodeset[sizeof(dev.nodeset) - 1] = '\0';
	rb_device_clean(&dev);
	/* Ids and indexes select devices ("--device N", the API's id): two of a kind would make
	 * the choice ambiguous, so the whole list is refused (rb_backends_probe_main). */
	const char *dup = NULL;
	for (size_t i = 0; i < call->ndevices && !dup; i++) {
		if (!strcmp(call->devices[i].id, dev.id))
			dup = "id";
		else if (call->devices[i].index == dev.index)
			dup = "index";
	}
	if (!dev.id[0] || dup) {
		call->device_refused = true;
		if (!dev.id[0])
			return refuse(call, "device_add", RBEE_ERR_INVALID,
				      "device %u has an empty id", dev.index);
		if (!strcmp(dup, "id"))
			return refuse(call, "device_add", RBEE_ERR_INVALID,
				      "duplicate device id: '%s' was already reported (now with index %u)",
				      dev.id, dev.index);
		return refuse(call, "device_add", RBEE_ERR_INVALID,
			      "duplicate device index: %u was already reported (now with id '%s')",
			      dev.index, dev.id);
	}
	if (call->ndevices == call->cap) {
		size_t cap = call->cap ? call->cap * 2 : 8;
		struct rbee_device *v = realloc(call->devices, cap * sizeof(*v));
		if (!v) {
			call->device_refused = true;
			return refuse(call, "device_add", RBEE_ERR_NOMEM, "out of memory");
		}
		call->devices = v;
		call->cap = cap;
	}
	call->devices[call->ndevices++] = dev;
	return RBEE_OK;
}

void rb_device_clean(struct rbee_device *d)
{
	rb_host_clean_str(d->id, sizeof(d->id), d->id);
	rb_host_clean_str(d->name, sizeof(d->name), d->name);
	rb_host_clean_str(d->device_type, sizeof(d->device_type), d->device_type);
	rb_host_clean_str(d->uuid, sizeof(d->uuid), d->uuid);
	rb_host_clean_str(d->pci_bus_id, sizeof(d->pci_bus_id), d->pci_bus_id);
	rb_host_clean_str(d->driver_version, sizeof(d->driver_version), d->driver_version);
	rb_host_clean_str(d->cpuset, sizeof(d->cpuset), d->cpuset);
	rb_host_clean_str(d->nodeset, sizeof(d->nodeset), d->nodeset);
}

int rb_device_attr_check(const char *key, const char *value, struct rb_err *err)
{
	if (!key || !value)
		return rb_err_set(err, RB_EINVAL, "%s is NULL", !key ? "the key" : "the value");
	size_t kl = strlen(key);
	if (kl == 0 || kl >= RBEE_DEVICE_ATTR_KEY_MAX)
		return rb_err_set(err, RB_EINVAL, "key of %zu characters: give 1 to %d", kl,
				  RBEE_DEVICE_ATTR_KEY_MAX - 1);
	if (!(key[0] >= 'a' && key[0] <= 'z') ||
	    strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789._-") != kl) {
		char clean[RBEE_DEVICE_ATTR_KEY_MAX];
		rb_host_clean_str(clean, sizeof(clean), key);
		return rb_err_set(err, RB_EINVAL, "key '%s' is not a-z 0-9 . _ - starting with a letter",
				  clean);
	}
	size_t vl = strlen(value);
	if (vl >= RBEE_DEVICE_ATTR_VALUE_MAX)
		return rb_err_set(err, RB_EINVAL, "value of key '%s' has %zu bytes, more than the %d "
				  "allowed", key, vl, RBEE_DEVICE_ATTR_VALUE_MAX - 1);
	if (!rb_utf8_valid(value, vl))
		return rb_err_set(err, RB_EINVAL, "value of key '%s' is not well-formed UTF-8", key);
	for (size_t i = 0; i < vl; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return rb_err_set(err, RB_EINVAL, "value of key '%s' contains control character "
					  "0x%02x at byte %zu", key, (unsigned char)value[i], i);
	return 0;
}

int rb_device_attr_set(struct rb_device_attr **v, size_t *n, size_t *cap, uint32_t device,
		       const char *key, const char *value, struct rb_err *err)
{
	int rc = rb_device_attr_check(key, value, err);
	if (rc)
		return rc;
	size_t count = 0;
	for (size_t i = 0; i < *n; i++) {
		if ((*v)[i].device != device)
			continue;
		if (!strcmp((*v)[i].key, key)) {
			snprintf((*v)[i].value, sizeof((*v)[i].value), "%s", value);
			return 0;
		}
		count++;
	}
	if (count >= RBEE_DEVICE_ATTR_MAX)
		return rb_err_set(err, RB_EINVAL, "key '%s': the device already has the %d facts "
				  "allowed", key, RBEE_DEVICE_ATTR_MAX);
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct rb_device_attr *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return rb_err_set(err, RB_EINTERNAL, "out of memory");
		*v = nv;
		*cap = c;
	}
	struct rb_device_attr *a = &(*v)[(*n)++];
	memset(a, 0, sizeof(*a));
	a->device = device;
	snprintf(a->key, sizeof(a->key), "%s", key);
	snprintf(a->value, sizeof(a->value), "%s", value);
	return 0;
}

static int host_device_attr(struct rbee_call *call, const char *device_id, const char *key,
			    const char *value)
{
	if (!call || !call->enumerating)
		return refuse(call, "device_attr", RBEE_ERR_INVALID,
			      "only allowed during enumerate (the daemon's copy of a device is fixed)");
	if (!device_id)
		return refuse(call, "device_attr", RBEE_ERR_INVALID, "the device id is NULL");
	size_t at = call->ndevices;
	for (size_t i = 0; i < call->ndevices && at == call->ndevices; i++)
		if (!strcmp(call->devices[i].id, device_id))
			at = i;
	if (at == call->ndevices) {
		char clean[64];
		rb_host_clean_str(clean, sizeof(clean), device_id);
		return refuse(call, "device_attr", RBEE_ERR_NOT_FOUND,
			      "no device '%s' was reported with device_add", clean);
	}
	struct rb_err err = RB_ERR_INIT;
	if (rb_device_attr_set(&call->attrs, &call->nattrs, &call->attrs_cap, (uint32_t)at, key,
			       value, &err))
		return refuse(call, "device_attr",
			      err.code == RB_EINTERNAL ? RBEE_ERR_NOMEM : RBEE_ERR_INVALID,
			      "device '%s': %s", call->devices[at].id, err.msg);
	return RBEE_OK;
}

static void *host_plugin_state(struct rbee_call *call)
{
	return call ? call->plugin_state : NULL;
}

static int host_env_set(struct rbee_env *env, const char *name, const char *value)
{
	struct rbee_call *call = current_call;
	if (!env || !name)
		return refuse(call, "env_set", RBEE_ERR_INVALID, "%s is NULL",
			      !env ? "the environment handle" : "the variable name");
	int rc = rb_env_set((struct rb_env *)env, name, value);
	if (rc == -RB_EINVAL)
		return refuse(call, "env_set", RBEE_ERR_INVALID,
			      "variable name '%.64s' is empty or contains '='", name);
	if (rc)
		return refuse(call, "env_set", RBEE_ERR_NOMEM, "out of memory setting '%.64s'", name);
	return RBEE_OK;
}

static int host_report_check(struct rbee_report *report, const char *check, int ok, const char *detail)
{
	if (!report || !check)
		return refuse(current_call, "report_check", RBEE_ERR_INVALID, "%s is NULL",
			      !report ? "the report handle" : "the check name");
	char c[256], dt[1024];
	rb_host_clean_str(c, sizeof(c), check);
	rb_host_clean_str(dt, sizeof(dt), detail ? detail : "");
	rb_report_add((struct rb_report *)report, c, ok != 0, "%s", dt);
	return RBEE_OK;
}

static int host_plan_default_argv(struct rbee_plan *plan, const struct rbee_spawn_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	if (!plan || !req)
		return refuse(current_call, "plan_default_argv", RBEE_ERR_INVALID, "%s is NULL",
			      !plan ? "the plan handle" : "the spawn request");
	if (rb_plan_default_argv((struct rb_plan *)plan, req, &err))
		return refuse(current_call, "plan_default_argv",
			      err.code == RB_EINTERNAL ? RBEE_ERR_NOMEM : RBEE_ERR_INVALID, "%s", err.msg);
	return RBEE_OK;
}

static int host_plan_arg(struct rbee_plan *plan, const char *arg)
{
	if (!plan || !arg)
		return refuse(current_call, "plan_arg", RBEE_ERR_INVALID, "%s is NULL",
			      !plan ? "the plan handle" : "the argument");
	if (rb_plan_add_arg((struct rb_plan *)plan, arg))
		return refuse(current_call, "plan_arg", RBEE_ERR_NOMEM, "out of memory");
	return RBEE_OK;
}

static int host_plan_env(struct rbee_plan *plan, const char *name, const char *value)
{
	if (!plan || !name)
		return refuse(current_call, "plan_env", RBEE_ERR_INVALID, "%s is NULL",
			      !plan ? "the plan handle" : "the variable name");
	int rc = rb_env_set(&((struct rb_plan *)plan)->env, name, value);
	if (rc == -RB_EINVAL)
		return refuse(current_call, "plan_env", RBEE_ERR_INVALID,
			      "variable name '%.64s' is empty or contains '='", name);
	if (rc)
		return refuse(current_call, "plan_env", RBEE_ERR_NOMEM, "out of memory setting '%.64s'",
			      name);
	return RBEE_OK;
}

static int copy_list(const char *service, char *dst, size_t len, const char *src)
{
	if (!src)
		return refuse(current_call, service, RBEE_ERR_INVALID, "the list is NULL");
	if (strlen(src) >= len)
		return refuse(current_call, service, RBEE_ERR_INVALID,
			      "list of %zu characters is longer than the %zu allowed", strlen(src), len - 1);
	if (strspn(src, "0123456789,-") != strlen(src))
		return refuse(current_call, service, RBEE_ERR_INVALID,
			      "'%.64s' is not an hwloc list string (digits, ',' and '-' only: \"0-7,16\")",
			      src);
	strcpy(dst, src);
	return RBEE_OK;
}

static int host_plan_bind_cpus(struct rbee_plan *plan, const char *list)
{
	struct rb_plan *p = (struct rb_plan *)plan;
	return p ? copy_list("plan_bind_cpus", p->cpuset, sizeof(p->cpuset), list)
		 : refuse(current_call, "plan_bind_cpus", RBEE_ERR_INVALID, "the plan handle is NULL");
}

static int host_plan_bind_memory(struct rbee_plan *plan, const char *list)
{
	struct rb_plan *p = (struct rb_plan *)plan;
	return p ? copy_list("plan_bind_memory", p->nodeset, sizeof(p->nodeset), list)
		 : refuse(current_call, "plan_bind_memory", RBEE_ERR_INVALID, "the plan handle is NULL");
}

static int host_run(struct rbee_call *call, const char *const argv[], int timeout_ms, char *out,
		    size_t outlen, int *status)
{
	if (!argv || !argv[0] || !argv[0][0] || (outlen && !out))
		return host_fail(call, RBEE_ERR_INVALID, "host service run: %s",
				 !argv || !argv[0] ? "argv is NULL or empty"
				 : !argv[0][0]   ? "argv[0] is an empty string"
						 : "out is NULL but outlen is not 0");
	struct rb_buf b = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	int st = 0;
	/* Plugins run tools (nvcc, nvidia-smi...): they get the environment builds get. */
	struct rb_env env;
	rb_env_init(&env);
	rb_env_from_environ_scrubbed(&env);
	int rc = rb_proc_run(argv, rb_env_envp(&env), NULL, timeout_ms, &b, outlen ? outlen : 1, &st,
			     &err);
	rb_env_release(&env);
	if (out && outlen) {
		snprintf(out, outlen, "%s", b.data);
	}
	rb_buf_release(&b);
	if (status)
		*status = st;
	if (rc) {
		snprintf(call->err.msg, sizeof(call->err.msg), "host service run: %s", err.msg);
		rb_host_clean_str(call->err.msg, sizeof(call->err.msg), call->err.msg);
		call->err.code = err.code;
		return rc == -RB_ENOTFOUND ? RBEE_ERR_NOT_FOUND : RBEE_ERR_FAILED;
	}
	return RBEE_OK;
}

static const char *host_last_error(struct rbee_call *call)
{
	return call ? call->err.msg : "";
}

void rb_host_init(struct rbee_host *host, struct rbee_call *call)
{
	memset(host, 0, sizeof(*host));
	host->struct_size = sizeof(*host);
	host->abi_minor = RBEE_BACKEND_ABI_MINOR;
	host->call = call;
	host->log = host_log;
	host->fail = host_fail;
	host->topology = host_topology;
	host->path = host_path;
	host->getenv = host_getenv;
	host->device_add = host_device_add;
	host->env_set = host_env_set;
	host->report_check = host_report_check;
	host->plan_default_argv = host_plan_default_argv;
	host->plan_arg = host_plan_arg;
	host->plan_env = host_plan_env;
	host->plan_bind_cpus = host_plan_bind_cpus;
	host->plan_bind_memory = host_plan_bind_memory;
	host->run = host_run;
	host->last_error = host_last_error;
	host->hwloc_api_version = HWLOC_API_VERSION;
	host->device_attr = host_device_attr;
	host->plugin_state = host_plugin_state;
	current_call = call;
}

void rb_call_release(struct rbee_call *call)
{
	if (current_call == call)
		current_call = NULL;
	free(call->devices);
	call->devices = NULL;
	call->ndevices = call->cap = 0;
	free(call->attrs);
	call->attrs = NULL;
	call->nattrs = call->attrs_cap = 0;
}
