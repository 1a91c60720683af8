/*
 * hello.c - the smallest useful rbee backend, built out of tree against the installed SDK:
 *
 *   make                          (or: cc -shared -fPIC -fvisibility=hidden -Wl,-z,defs \
 *                                        $(pkg-config --cflags rbee-backend) hello.c \
 *                                        -o rbee_backend_hello.so)
 *   rbee-hive --probe-plugin ./rbee_backend_hello.so     (what the hive's probe child sees)
 *   RBEE_BACKEND_PATH=$PWD rbee-hive                      (load it; `rbee hive backends`)
 *
 * It reports HELLO_DEVICES pretend accelerators (default 1; 0 = "not on this node"), checks
 * that a worker has somewhere to run, and launches workers with the default argv plus one
 * variable naming their device. A real backend checks its driver in probe (dlopen()ing the
 * vendor library there, never linking it), lists real devices in enumerate, and adds its
 * environment and CPU/memory binding in spawn. The guide is PLUGIN-SDK.md beside this folder.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rbee/backend.h>

#define HELLO_MAX_DEVICES 8

/* How many devices this node pretends to have: HELLO_DEVICES from the hive's environment
 * (read through the host: plugins see the hive's environment without its secrets). */
static int hello_count(const struct rbee_host *host, int *count)
{
	const char *s = host->getenv(host->call, "HELLO_DEVICES");
	char *end;
	long n = s && *s ? strtol(s, &end, 10) : 1;
	if (s && *s && (*end || n < 0 || n > HELLO_MAX_DEVICES))
		return host->fail(host->call, RBEE_ERR_INVALID,
				  "HELLO_DEVICES='%.32s' is not a number from 0 to %d", s,
				  HELLO_MAX_DEVICES);
	*count = (int)n;
	return RBEE_OK;
}

/* Runs in a separate, time-limited process: a crash or a hang here costs a "broken" entry. */
static int hello_probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	int n;
	int rc = hello_count(host, &n);
	if (rc != RBEE_OK)
		return rc; /* broken: "probe failed: HELLO_DEVICES='x' is not a number ..." */
	if (n == 0) {
		out->state = RBEE_PROBE_UNAVAILABLE; /* a normal "not here", not an error */
		snprintf(out->reason, sizeof(out->reason), "no hello accelerator (HELLO_DEVICES=0)");
		return RBEE_OK;
	}
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 20; /* above cpu (10), below cuda (100) */
	snprintf(out->reason, sizeof(out->reason), "%d pretend accelerator%s", n, n == 1 ? "" : "s");
	host->log(host->call, RBEE_LOG_DEBUG, "probe found %d device(s)", n);
	return RBEE_OK;
}

/* The same process, only after probe answered available. */
static int hello_enumerate(const struct rbee_host *host)
{
	int n;
	int rc = hello_count(host, &n);
	for (int i = 0; rc == RBEE_OK && i < n; i++) {
		struct rbee_device d;
		memset(&d, 0, sizeof(d)); /* unknown strings "" */
		d.struct_size = sizeof(d); /* so the host copies what this plugin was built with */
		d.index = (uint32_t)i;     /* what `--device N` selects */
		snprintf(d.id, sizeof(d.id), "HELLO-%d", i);
		snprintf(d.name, sizeof(d.name), "Hello Accelerator");
		snprintf(d.device_type, sizeof(d.device_type), "gpu");
		d.memory_total = 8ull << 30;
		d.memory_free = 8ull << 30; /* 0 would mean "unknown": the fit check is then skipped */
		d.cc_major = d.cc_minor = -1; /* not CUDA */
		d.numa_node = -1;             /* unknown locality: workers are not bound */
		rc = host->device_add(host->call, &d); /* refuses a duplicate id or index, and says why */
	}
	return rc;
}

/* Runs in the daemon, maybe on several threads at once: reentrant, and no driver calls. */
static int hello_verify(const struct rbee_host *host, const struct rbee_worker_info *worker,
			const struct rbee_device *devices, size_t ndevices, struct rbee_report *report)
{
	char detail[160];
	snprintf(detail, sizeof(detail), "%zu hello device(s) for '%s'%s%s", ndevices,
		 worker->worker_id, ndevices ? ", first " : "", ndevices ? devices[0].id : "");
	return host->report_check(report, "hello devices", ndevices > 0, detail);
}

/* Also in the daemon: say how to start one worker; the hive forks, binds, execs, supervises. */
static int hello_spawn(const struct rbee_host *host, const struct rbee_spawn_request *req,
		       struct rbee_plan *plan)
{
	int rc = host->plan_default_argv(plan, req); /* the catalog's launch template, expanded */
	if (rc == RBEE_OK)
		rc = host->plan_env(plan, "HELLO_DEVICE", req->device->id);
	/* A refused service already carries its reason ("host service plan_env refused: ..."),
	 * which the hive reports when this returns it; an ABI 1.1 hive also lets us read it. */
	if (rc != RBEE_OK && host->struct_size > offsetof(struct rbee_host, last_error))
		host->log(host->call, RBEE_LOG_WARN, "cannot plan the launch: %s",
			  host->last_error(host->call));
	return rc;
}

RBEE_BACKEND_DEFINE(hello) = {
	RBEE_BACKEND_HEADER("hello"),
	.version = "1.0.0",
	.description = "example out-of-tree backend",
	.probe = hello_probe,
	.enumerate = hello_enumerate,
	.verify = hello_verify,
	.spawn = hello_spawn,
	/* build_env NULL: workers of this backend build with the host's default environment */
};
