/*
 * test_host.c - the test implementation of struct rbee_host (see test_host.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_host.h"

static void copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Set name=value in a list (replacing an earlier setting). */
static int kv_set(struct th_kv *list, size_t *n, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < *n && strcmp(list[i].name, name) != 0; i++)
		;
	if (i == TH_MAX)
		return RBEE_ERR_NOMEM;
	if (i == *n)
		(*n)++;
	copy(list[i].name, sizeof(list[i].name), name);
	copy(list[i].value, sizeof(list[i].value), value ? value : "");
	list[i].unset = value == NULL;
	return RBEE_OK;
}

static const struct th_kv *kv_get(const struct th_kv *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	return NULL;
}

static void vappend_log(struct rbee_call *call, const char *prefix, const char *fmt, va_list ap)
{
	size_t used = strlen(call->log);
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "[plugin %s] %s\n", prefix, line);
	if (used < sizeof(call->log))
		snprintf(call->log + used, sizeof(call->log) - used, "%s: %s\n", prefix, line);
}

static void h_log(struct rbee_call *call, enum rbee_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	va_list ap;

	va_start(ap, fmt);
	vappend_log(call, names[level & 3], fmt, ap);
	va_end(ap);
}

static int h_fail(struct rbee_call *call, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call->failure, sizeof(call->failure), fmt, ap);
	va_end(ap);
	call->fail_status = status;
	fprintf(stderr, "[plugin fail %d] %s\n", status, call->failure);
	return status;
}

static void *h_topology(struct rbee_call *call)
{
	return call->topo;
}

static const char *h_path(struct rbee_call *call, const char *which)
{
	(void)call;
	(void)which;
	return NULL;
}

static const char *h_getenv(struct rbee_call *call, const char *name)
{
	const struct th_kv *kv = kv_get(call->getenv_over, call->ngetenv, name);

	if (kv)
		return kv->unset ? NULL : kv->value;
	return getenv(name);
}

static int h_device_add(struct rbee_call *call, const struct rbee_device *device)
{
	struct rbee_device *d;

	if (call->ndevices == TH_MAX)
		return RBEE_ERR_NOMEM;
	assert_int_equal(device->struct_size, sizeof(struct rbee_device));
	d = &call->devices[call->ndevices++];
	memcpy(d, device, sizeof(*d));
	return RBEE_OK;
}

static int h_env_set(struct rbee_env *env, const char *name, const char *value)
{
	return kv_set(env->vars, &env->n, name, value);
}

static int h_report_check(struct rbee_report *report, const char *check, int ok,
			  const char *detail)
{
	struct th_check *c;

	if (report->n == TH_MAX)
		return RBEE_ERR_NOMEM;
	c = &report->checks[report->n++];
	copy(c->check, sizeof(c->check), check);
	copy(c->detail, sizeof(c->detail), detail ? detail : "");
	c->ok = ok;
	return RBEE_OK;
}

static int h_plan_arg(struct rbee_plan *plan, const char *arg)
{
	if (plan->argc == TH_MAX)
		return RBEE_ERR_NOMEM;
	copy(plan->argv[plan->argc++], sizeof(plan->argv[0]), arg);
	return RBEE_OK;
}

/* The rbee worker contract, in short: enough to see the plugin called it. */
static int h_plan_default_argv(struct rbee_plan *plan, const struct rbee_spawn_request *req)
{
	char port[16];

	snprintf(port, sizeof(port), "%u", (unsigned)req->port);
	if (h_plan_arg(plan, req->worker->binary_path) || h_plan_arg(plan, "--model") ||
	    h_plan_arg(plan, req->model_path) || h_plan_arg(plan, "--port") ||
	    h_plan_arg(plan, port))
		return RBEE_ERR_NOMEM;
	return RBEE_OK;
}

static int h_plan_env(struct rbee_plan *plan, const char *name, const char *value)
{
	return kv_set(plan->env, &plan->nenv, name, value);
}

static int h_plan_bind_cpus(struct rbee_plan *plan, const char *cpuset_list)
{
	copy(plan->cpus, sizeof(plan->cpus), cpuset_list);
	return RBEE_OK;
}

static int h_plan_bind_memory(struct rbee_plan *plan, const char *nodeset_list)
{
	copy(plan->nodes, sizeof(plan->nodes), nodeset_list);
	return RBEE_OK;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the child's output until EOF or the deadline. Returns 0, or -1 on timeout. */
static int collect(int fd, long long deadline, char *out, size_t outlen)
{
	size_t used = 0;
	char sink[256];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if (used + 1 < outlen)
			n = read(fd, out + used, outlen - 1 - used);
		else
			n = read(fd, sink, sizeof(sink));
		if (n <= 0)
			return 0;
		if (used + 1 < outlen)
			used += (size_t)n;
		out[used] = '\0';
	}
}

static int h_run(struct rbee_call *call, const char *const argv[], int timeout_ms, char *out,
		 size_t outlen, int *status)
{
	int fds[2], rc;
	pid_t pid;

	(void)call;
	if (outlen)
		out[0] = '\0';
	if (pipe(fds) != 0)
		return RBEE_ERR_FAILED;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return RBEE_ERR_FAILED;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	rc = collect(fds[0], now_ms() + timeout_ms, out, outlen);
	close(fds[0]);
	if (rc != 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	if (rc != 0)
		return RBEE_ERR_FAILED;
	return WIFEXITED(*status) && WEXITSTATUS(*status) == 127 ? RBEE_ERR_NOT_FOUND : RBEE_OK;
}

static void load_topology(struct th *th, enum th_topology kind, const char *arg)
{
	char path[4096];

	if (kind == TH_TOPO_NONE)
		return;
	/* hwloc's libpciaccess-based "pci" component leaks about 1 KiB per load (LeakSanitizer
	 * reports it from an unloaded module). On Linux the "linux" component finds the same PCI
	 * devices through sysfs, so do without it; a caller's own choice is kept. */
	setenv("HWLOC_COMPONENTS", "-pci", 0);
	assert_int_equal(hwloc_topology_init(&th->call.topo), 0);
	assert_int_equal(hwloc_topology_set_io_types_filter(th->call.topo,
							    HWLOC_TYPE_FILTER_KEEP_IMPORTANT), 0);
	if (kind == TH_TOPO_SYNTHETIC)
		assert_int_equal(hwloc_topology_set_synthetic(th->call.topo, arg), 0);
	if (kind == TH_TOPO_XML)
		assert_int_equal(hwloc_topology_set_xml(th->call.topo,
							th_src_file(arg, path, sizeof(path))), 0);
	assert_int_equal(hwloc_topology_load(th->call.topo), 0);
}

static void load_plugin(struct th *th, const char *name)
{
	const char *build = getenv("RBEE_BUILD");
	char path[4096], sym[128];

	assert_non_null(build);
	snprintf(path, sizeof(path), "%s/lib/rbee/backends/rbee_backend_%s.so", build, name);
	th->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!th->dl)
		fail_msg("cannot load \"%s\": %s", path, dlerror());
	snprintf(sym, sizeof(sym), RBEE_BACKEND_SYMBOL_PREFIX "%s" RBEE_BACKEND_SYMBOL_SUFFIX, name);
	th->be = dlsym(th->dl, sym);
	assert_non_null(th->be);
	/* The loader's checks, in its order. */
	assert_int_equal(th->be->abi_major, RBEE_BACKEND_ABI_MAJOR);
	assert_true(th->be->struct_size >= sizeof(struct rbee_backend));
	assert_int_equal(th->be->flags, 0);
	assert_string_equal(th->be->name, name);
	assert_non_null(th->be->version);
	assert_non_null(th->be->description);
	assert_non_null(th->be->probe);
}

struct th *th_new(const char *name, enum th_topology topo, const char *arg)
{
	struct th *th = calloc(1, sizeof(*th));

	assert_non_null(th);
	th->host = (struct rbee_host){
		.struct_size = sizeof(struct rbee_host),
		.abi_minor = RBEE_BACKEND_ABI_MINOR,
		.call = &th->call,
		.log = h_log,
		.fail = h_fail,
		.topology = h_topology,
		.path = h_path,
		.getenv = h_getenv,
		.device_add = h_device_add,
		.env_set = h_env_set,
		.report_check = h_report_check,
		.plan_default_argv = h_plan_default_argv,
		.plan_arg = h_plan_arg,
		.plan_env = h_plan_env,
		.plan_bind_cpus = h_plan_bind_cpus,
		.plan_bind_memory = h_plan_bind_memory,
		.run = h_run,
	};
	load_topology(th, topo, arg);
	load_plugin(th, name);
	return th;
}

void th_free(struct th *th)
{
	if (!th)
		return;
	if (th->call.topo)
		hwloc_topology_destroy(th->call.topo);
	if (th->dl)
		dlclose(th->dl);
	free(th);
}

void th_setenv(struct th *th, const char *name, const char *value)
{
	assert_int_equal(kv_set(th->call.getenv_over, &th->call.ngetenv, name, value), RBEE_OK);
}

static void reset_call(struct th *th)
{
	th->call.failure[0] = '\0';
	th->call.fail_status = 0;
	th->call.log[0] = '\0';
}

int th_probe(struct th *th, struct rbee_probe_result *out)
{
	reset_call(th);
	memset(out, 0, sizeof(*out));
	return th->be->probe(&th->host, out);
}

int th_enumerate(struct th *th)
{
	reset_call(th);
	th->call.ndevices = 0;
	assert_non_null(th->be->enumerate);
	return th->be->enumerate(&th->host);
}

int th_build_env(struct th *th)
{
	reset_call(th);
	memset(&th->env, 0, sizeof(th->env));
	assert_non_null(th->be->build_env);
	return th->be->build_env(&th->host, th->call.devices, th->call.ndevices, &th->env);
}

int th_verify(struct th *th, const char *binary, const char *worker_type)
{
	struct rbee_worker_info w = {
		.worker_id = "test-worker", .binary_path = binary, .install_dir = "/nonexistent",
		.worker_type = worker_type,
	};

	reset_call(th);
	memset(&th->report, 0, sizeof(th->report));
	assert_non_null(th->be->verify);
	return th->be->verify(&th->host, &w, th->call.devices, th->call.ndevices, &th->report);
}

int th_spawn(struct th *th, size_t device)
{
	const struct rbee_worker_info worker = { .worker_id = "test-worker",
						 .binary_path = "/opt/worker/bin/worker",
						 .install_dir = "/opt/worker",
						 .worker_type = th->be->name };
	struct rbee_spawn_request req = {
		.struct_size = sizeof(req),
		.worker = &worker,
		.device = &th->call.devices[device],
		.instance_id = "test-worker-1",
		.model_id = "org/repo:model.gguf",
		.model_path = "/models/model.gguf",
		.port = 9123,
		.hive_url = "http://127.0.0.1:7835",
	};

	assert_true(device < th->call.ndevices);
	reset_call(th);
	memset(&th->plan, 0, sizeof(th->plan));
	assert_non_null(th->be->spawn);
	return th->be->spawn(&th->host, &req, &th->plan);
}

const char *th_env(const struct th *th, const char *name)
{
	const struct th_kv *kv = kv_get(th->env.vars, th->env.n, name);

	return kv && !kv->unset ? kv->value : NULL;
}

const char *th_plan_env(const struct th *th, const char *name)
{
	const struct th_kv *kv = kv_get(th->plan.env, th->plan.nenv, name);

	return kv && !kv->unset ? kv->value : NULL;
}

const struct th_check *th_check(const struct th *th, const char *check)
{
	for (size_t i = 0; i < th->report.n; i++)
		if (strcmp(th->report.checks[i].check, check) == 0)
			return &th->report.checks[i];
	return NULL;
}

const char *th_src_file(const char *file, char *buf, size_t len)
{
	const char *src = getenv("RBEE_SRC");

	assert_non_null(src);
	snprintf(buf, len, "%s/tests/plugins/%s", src, file);
	return buf;
}

char *th_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "%s/rbee-plugin-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(buf));
	return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void th_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void th_write_file(const char *path, const char *text, unsigned mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, (mode_t)mode), 0);
}
