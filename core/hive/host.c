/*
 * host.c - the host-services table handed to plugins, and the objects they fill: build
 * environments, verify reports and launch plans.
 */
#include "host.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive.h"
#include "job.h"
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

/* ---- the host table -------------------------------------------------------------------- */

static void host_log(struct rbee_call *call, enum rbee_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void host_log(struct rbee_call *call, enum rbee_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (call->job && level >= RBEE_LOG_INFO)
		rb_job_say(call->job, "%s: %s", call->plugin_name ? call->plugin_name : "backend", line);
	else
		rb_log((enum rb_log_level)level, "backend %s: %s",
		       call->plugin_name ? call->plugin_name : "?", line);
}

static int host_fail(struct rbee_call *call, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int host_fail(struct rbee_call *call, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->err.msg, sizeof(call->err.msg), fmt, ap);
	va_end(ap);
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
	return call->hive ? call->hive->topology : NULL;
}

static const char *host_path(struct rbee_call *call, const char *which)
{
	struct rb_hive *h = call->hive;
	if (!h || !which)
		return NULL;
	if (!strcmp(which, "home"))
		return h->paths.home;
	if (!strcmp(which, "workers"))
		return h->paths.workers;
	if (!strcmp(which, "models"))
		return h->paths.models;
	if (!strcmp(which, "logs"))
		return h->paths.logs;
	if (!strcmp(which, "plugins"))
		return h->cfg.plugin_dir;
	return NULL;
}

static const char *host_getenv(struct rbee_call *call, const char *name)
{
	(void)call;
	return rb_secret_env_name(name) ? NULL : getenv(name);
}

static int host_device_add(struct rbee_call *call, const struct rbee_device *d)
{
	if (!d || d->struct_size < offsetof(struct rbee_device, pus) + sizeof(d->pus))
		return host_fail(call, RBEE_ERR_INVALID, "device record too small (struct_size %u)",
				 d ? d->struct_size : 0);
	if (call->ndevices == call->cap) {
		size_t cap = call->cap ? call->cap * 2 : 8;
		struct rbee_device *v = realloc(call->devices, cap * sizeof(*v));
		if (!v)
			return RBEE_ERR_NOMEM;
		call->devices = v;
		call->cap = cap;
	}
	struct rbee_device *dst = &call->devices[call->ndevices++];
	memset(dst, 0, sizeof(*dst));
	size_t n = d->struct_size < sizeof(*dst) ? d->struct_size : sizeof(*dst);
	memcpy(dst, d, n);
	dst->struct_size = sizeof(*dst);
	/* Never trust a plugin to terminate its strings. */
	dst->id[sizeof(dst->id) - 1] = dst->name[sizeof(dst->name) - 1] = '\0';
	dst->device_type[sizeof(dst->device_type) - 1] = dst->uuid[sizeof(dst->uuid) - 1] = '\0';
	dst->pci_bus_id[sizeof(dst->pci_bus_id) - 1] = '\0';
	dst->driver_version[sizeof(dst->driver_version) - 1] = '\0';
	dst->cpuset[sizeof(dst->cpuset) - 1] = dst->nodeset[sizeof(dst->nodeset) - 1] = '\0';
	return RBEE_OK;
}

static int host_env_set(struct rbee_env *env, const char *name, const char *value)
{
	if (!env || !name)
		return RBEE_ERR_INVALID;
	return rb_env_set((struct rb_env *)env, name, value) ? RBEE_ERR_INVALID : RBEE_OK;
}

static int host_report_check(struct rbee_report *report, const char *check, int ok, const char *detail)
{
	if (!report || !check)
		return RBEE_ERR_INVALID;
	rb_report_add((struct rb_report *)report, check, ok != 0, "%s", detail ? detail : "");
	return RBEE_OK;
}

static int host_plan_default_argv(struct rbee_plan *plan, const struct rbee_spawn_request *req)
{
	struct rb_err err = RB_ERR_INIT;
	if (!plan || !req)
		return RBEE_ERR_INVALID;
	if (rb_plan_default_argv((struct rb_plan *)plan, req, &err)) {
		rb_warn("launch plan: %s", err.msg);
		return RBEE_ERR_INVALID;
	}
	return RBEE_OK;
}

static int host_plan_arg(struct rbee_plan *plan, const char *arg)
{
	if (!plan || !arg)
		return RBEE_ERR_INVALID;
	return rb_plan_add_arg((struct rb_plan *)plan, arg) ? RBEE_ERR_NOMEM : RBEE_OK;
}

static int host_plan_env(struct rbee_plan *plan, const char *name, const char *value)
{
	if (!plan || !name)
		return RBEE_ERR_INVALID;
	return rb_env_set(&((struct rb_plan *)plan)->env, name, value) ? RBEE_ERR_INVALID : RBEE_OK;
}

static int copy_list(char *dst, size_t len, const char *src)
{
	if (!src || strlen(src) >= len || strspn(src, "0123456789,-") != strlen(src))
		return RBEE_ERR_INVALID;
	strcpy(dst, src);
	return RBEE_OK;
}

static int host_plan_bind_cpus(struct rbee_plan *plan, const char *list)
{
	struct rb_plan *p = (struct rb_plan *)plan;
	return p ? copy_list(p->cpuset, sizeof(p->cpuset), list) : RBEE_ERR_INVALID;
}

static int host_plan_bind_memory(struct rbee_plan *plan, const char *list)
{
	struct rb_plan *p = (struct rb_plan *)plan;
	return p ? copy_list(p->nodeset, sizeof(p->nodeset), list) : RBEE_ERR_INVALID;
}

static int host_run(struct rbee_call *call, const char *const argv[], int timeout_ms, char *out,
		    size_t outlen, int *status)
{
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
		snprintf(call->err.msg, sizeof(call->err.msg), "%s", err.msg);
		call->err.code = err.code;
		return rc == -RB_ENOTFOUND ? RBEE_ERR_NOT_FOUND : RBEE_ERR_FAILED;
	}
	return RBEE_OK;
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
}

void rb_call_release(struct rbee_call *call)
{
	free(call->devices);
	call->devices = NULL;
	call->ndevices = call->cap = 0;
}
