/*
 * test_plugin.c - purpose-built plugins for the loader tests, one .so per KIND_* macro:
 * each breaks exactly one rule of the ABI (or behaves badly in probe) so a test can show the
 * loader or the probe isolation catches it.
 */
#include <signal.h>
#include <stddef.h>
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

/* A device of id ID and index IDX with name NAME (copied with snprintf, so cut at 127 bytes). */
__attribute__((unused)) static int add_device(const struct rbee_host *host, const char *id,
					      unsigned idx, const char *name)
{
	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	d.index = idx;
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.device_type, sizeof(d.device_type), "cpu");
	d.memory_total = 1ull << 30;
	d.cc_major = d.cc_minor = -1;
	d.numa_node = -1;
	return host->device_add(host->call, &d);
}

/* KIND_UTF8: every string it hands over is ill-formed UTF-8, or valid UTF-8 that a copy into a
 * fixed field cuts in the middle of a character. */
#define E200 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define E_LONG E200 E200 E200 E200 E200 E200 E200 E200 E200 E200 E200 E200 E200 E200 E200

__attribute__((unused)) static int probe_utf8(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "ready \xfe\xff and \xc3\x28");
	return RBEE_OK;
}

__attribute__((unused)) static int enumerate_utf8(const struct rbee_host *host)
{
	int rc = add_device(host, "U8-\xff", 0, "Device \xe2\x82 cut");
	/* 2-byte characters: snprintf cuts the 128-byte name after the first byte of one. */
	return rc ? rc : add_device(host, "U8-1", 1, E_LONG);
}

/* KIND_LONGFAIL: a probe failing with a long, valid UTF-8 message the host must cut. */
__attribute__((unused)) static int probe_longfail(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)out;
	return host->fail(host->call, RBEE_ERR_FAILED, "%s", E_LONG);
}

/* KIND_PRINTS: prints on stdout from its constructor and its probe (as chatty libraries do),
 * and logs a warning through the host. */
__attribute__((unused)) __attribute__((constructor)) static void prints_ctor(void)
{
#if defined(KIND_PRINTS)
	printf("hello from the constructor\n");
#endif
}

__attribute__((unused)) static int probe_prints(const struct rbee_host *host, struct rbee_probe_result *out)
{
	printf("{ not the protocol\n");
	fflush(stdout);
	printf("rbee-probe: loaded\n");
	host->log(host->call, RBEE_LOG_WARN, "fan speed is low\non two lines");
	host->log(host->call, RBEE_LOG_DEBUG, "a debug line nobody sees by default");
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "printed and still fine");
	return RBEE_OK;
}

__attribute__((unused)) static int enumerate_prints(const struct rbee_host *host)
{
	printf("enumerating\n");
	return add_device(host, "PRINT-0", 0, "Chatty Device");
}

/* KIND_DUP: reports CPU-0 twice (ignoring what device_add answers), and says what the host
 * told it about the refusal. */
__attribute__((unused)) static int enumerate_dup(const struct rbee_host *host)
{
	add_device(host, "CPU-0", 0, "first");
	int rc = add_device(host, "CPU-0", 1, "second");
#if RBEE_BACKEND_ABI_MINOR >= 1 /* last_error came with ABI 1.1 */
	if (host->struct_size > offsetof(struct rbee_host, last_error))
		host->log(host->call, RBEE_LOG_WARN, "device_add answered %d: %s", rc,
			  host->last_error(host->call));
#else
	(void)rc;
#endif
	return RBEE_OK;
}

/* KIND_NOFREE: devices whose free memory is unknown (0): one large, one too small for any model. */
__attribute__((unused)) static int enumerate_nofree(const struct rbee_host *host)
{
	struct rbee_device d;
	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	snprintf(d.device_type, sizeof(d.device_type), "cpu");
	d.cc_major = d.cc_minor = -1;
	d.numa_node = -1;
	for (unsigned i = 0; i < 2; i++) {
		d.index = i;
		snprintf(d.id, sizeof(d.id), "NOFREE-%u", i);
		snprintf(d.name, sizeof(d.name), "Device without a free-memory figure");
		d.memory_total = i == 0 ? 8ull << 30 : 256ull << 20;
		d.memory_free = 0;
		int rc = host->device_add(host->call, &d);
		if (rc)
			return rc;
	}
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
#elif defined(KIND_UTF8)
RBEE_BACKEND_DEFINE(testutf8) = { RBEE_BACKEND_HEADER("testutf8"), .version = "1.\xff",
				  .description = "bad \xc3\x28 description",
				  .probe = probe_utf8, .enumerate = enumerate_utf8 };
#elif defined(KIND_LONGFAIL)
RBEE_BACKEND_DEFINE(testlongfail) = { RBEE_BACKEND_HEADER("testlongfail"), .probe = probe_longfail };
#elif defined(KIND_PRINTS)
RBEE_BACKEND_DEFINE(testprints) = { RBEE_BACKEND_HEADER("testprints"), .probe = probe_prints,
				    .enumerate = enumerate_prints };
#elif defined(KIND_DUP)
RBEE_BACKEND_DEFINE(testdup) = { RBEE_BACKEND_HEADER("testdup"), .probe = probe_ok,
				 .enumerate = enumerate_dup };
#elif defined(KIND_NOFREE)
RBEE_BACKEND_DEFINE(testnofree) = { RBEE_BACKEND_HEADER("testnofree"), .probe = probe_ok,
				    .enumerate = enumerate_nofree };
#else
#error "define one KIND_*"
#endif
