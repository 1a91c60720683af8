/*
 * test_plugin.c - purpose-built plugins for the loader tests, one .so per KIND_* macro:
 * each breaks exactly one rule of the ABI (or behaves badly in probe) so a test can show the
 * loader or the probe isolation catches it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rbee/backend.h>

__attribute__((unused)) static int probe_ok(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 5;
	snprintf(out->reason, sizeof(out->reason), "test plugin ready");
	return RBEE_OK;
}

__attribute__((unused)) static int enumerate_one(const struct rbee_host *host)
{
	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	d.index = 0;
	snprintf(d.id, sizeof(d.id), "TEST-0");
	snprintf(d.name, sizeof(d.name), "Test Device");
	snprintf(d.device_type, sizeof(d.device_type), "gpu");
	d.memory_total = 1ull << 30;
	d.memory_free = 1ull << 29;
	d.cc_major = d.cc_minor = -1;
	d.numa_node = -1;
	return host->device_add(host->call, &d);
}

__attribute__((unused)) static int probe_unavailable(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_UNAVAILABLE;
	snprintf(out->reason, sizeof(out->reason), "needs hardware this node lacks");
	return RBEE_OK;
}

__attribute__((unused)) static int probe_crash(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	(void)out;
	raise(SIGSEGV);
	return RBEE_OK;
}

__attribute__((unused)) static int probe_hang(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	(void)out;
	for (;;)
		pause();
	return RBEE_OK;
}

#if defined(KIND_GOOD)
RBEE_BACKEND_DEFINE(testgood) = { RBEE_BACKEND_HEADER("testgood"), .version = "1.0",
				  .description = "loader test: a good plugin",
				  .probe = probe_ok, .enumerate = enumerate_one };
#elif defined(KIND_ABI)
RBEE_BACKEND_DEFINE(badabi) = { .abi_major = RBEE_BACKEND_ABI_MAJOR + 1, .abi_minor = 0,
				.struct_size = sizeof(struct rbee_backend), .name = "badabi",
				.probe = probe_ok };
#elif defined(KIND_SIZE)
RBEE_BACKEND_DEFINE(badsize) = { .abi_major = RBEE_BACKEND_ABI_MAJOR, .abi_minor = 0,
				 .struct_size = 16, .name = "badsize", .probe = probe_ok };
#elif defined(KIND_FLAGS)
RBEE_BACKEND_DEFINE(badflags) = { .abi_major = RBEE_BACKEND_ABI_MAJOR, .abi_minor = 0,
				  .struct_size = sizeof(struct rbee_backend), .flags = 1,
				  .name = "badflags", .probe = probe_ok };
#elif defined(KIND_NAME)
RBEE_BACKEND_DEFINE(badname) = { RBEE_BACKEND_HEADER("somethingelse"), .probe = probe_ok };
#elif defined(KIND_NOSYM)
RBEE_BACKEND_DEFINE(wrongsymbol) = { RBEE_BACKEND_HEADER("nosym"), .probe = probe_ok };
#elif defined(KIND_UNAVAILABLE)
RBEE_BACKEND_DEFINE(testunavail) = { RBEE_BACKEND_HEADER("testunavail"), .version = "1.0",
				     .probe = probe_unavailable };
#elif defined(KIND_CRASH)
RBEE_BACKEND_DEFINE(testcrash) = { RBEE_BACKEND_HEADER("testcrash"), .probe = probe_crash };
#elif defined(KIND_HANG)
RBEE_BACKEND_DEFINE(testhang) = { RBEE_BACKEND_HEADER("testhang"), .probe = probe_hang };
#else
#error "define one KIND_*"
#endif
