/*
 * hello.c - the smallest useful rbee backend, built out of tree:
 *
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags rbee-backend) hello.c \
 *      -o rbee_backend_hello.so
 *   RBEE_BACKEND_PATH=$PWD rbee-hive
 *
 * It reports one pretend accelerator and launches workers with the default argv, bound to
 * nothing. A real backend checks its driver in probe, lists real devices in enumerate, and
 * adds its environment and binding in spawn.
 */
#include <stdio.h>
#include <string.h>

#include <rbee/backend.h>

static int hello_probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "1 pretend accelerator");
	return RBEE_OK;
}

static int hello_enumerate(const struct rbee_host *host)
{
	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	d.index = 0;
	snprintf(d.id, sizeof(d.id), "HELLO-0");
	snprintf(d.name, sizeof(d.name), "Hello Accelerator");
	snprintf(d.device_type, sizeof(d.device_type), "gpu");
	d.memory_total = 8ull << 30;
	d.memory_free = 8ull << 30;
	d.cc_major = d.cc_minor = -1;
	d.numa_node = -1;
	return host->device_add(host->call, &d);
}

static int hello_spawn(const struct rbee_host *host, const struct rbee_spawn_request *req,
		       struct rbee_plan *plan)
{
	int rc = host->plan_default_argv(plan, req);
	if (rc != RBEE_OK)
		return rc;
	return host->plan_env(plan, "HELLO_DEVICE", req->device->id);
}

RBEE_BACKEND_DEFINE(hello) = {
	RBEE_BACKEND_HEADER("hello"),
	.version = "1.0.0",
	.description = "example out-of-tree backend",
	.probe = hello_probe,
	.enumerate = hello_enumerate,
	.spawn = hello_spawn,
};
