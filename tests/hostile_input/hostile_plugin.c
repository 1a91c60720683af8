/*
 * hostile_plugin.c - backend plugins that attack the hive while being loaded or probed, one .so
 * per KIND_* macro:
 *   ctorcrash  an ELF constructor that segfaults: it runs at dlopen, before any descriptor check
 *   ctorhang   an ELF constructor that never returns
 *   slowprobe  a good plugin whose probe takes HOSTILE_PROBE_SLEEP_MS (default 1500) and counts
 *              its probes in the file HOSTILE_PROBE_COUNT (one line each)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rbee/backend.h>

#if defined(KIND_CTORCRASH)
/* An unmapped address the compiler cannot reason about (a NULL store it may drop as UB). */
volatile int *hostile_fault_address = (volatile int *)16;

__attribute__((constructor)) static void crash_at_load(void)
{
	*hostile_fault_address = 1; /* SIGSEGV while the loader maps the library */
}
#elif defined(KIND_CTORHANG)
__attribute__((constructor)) static void hang_at_load(void)
{
	for (;;)
		pause();
}
#endif

static int probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
#if defined(KIND_SLOWPROBE)
	const char *ms = getenv("HOSTILE_PROBE_SLEEP_MS");
	long n = ms ? atol(ms) : 1500;
	struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	const char *count = getenv("HOSTILE_PROBE_COUNT");
	FILE *f = count ? fopen(count, "a") : NULL;
	if (f) {
		fputs("probe\n", f);
		fclose(f);
	}
#endif
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = 1;
	snprintf(out->reason, sizeof(out->reason), "hostile test plugin probed");
	return RBEE_OK;
}

#if defined(KIND_CTORCRASH)
RBEE_BACKEND_DEFINE(ctorcrash) = { RBEE_BACKEND_HEADER("ctorcrash"), .version = "1.0", .probe = probe };
#elif defined(KIND_CTORHANG)
RBEE_BACKEND_DEFINE(ctorhang) = { RBEE_BACKEND_HEADER("ctorhang"), .version = "1.0", .probe = probe };
#elif defined(KIND_SLOWPROBE)
RBEE_BACKEND_DEFINE(slowprobe) = { RBEE_BACKEND_HEADER("slowprobe"), .version = "1.0", .probe = probe };
#else
#error "define one KIND_*"
#endif
