/*
 * test_host.h - a small, self-contained implementation of `struct rbee_host` for testing the
 * backend plugins exactly as the hive loads them: dlopen of the built
 * $RBEE_BUILD/lib/rbee/backends/rbee_backend_<name>.so, the ABI checks, then direct calls.
 * Everything a plugin hands to the host is recorded here for the tests to inspect.
 */
#ifndef RBEE_TEST_HOST_H
#define RBEE_TEST_HOST_H

#include <stddef.h>

#include <hwloc.h>
#include <rbee/backend.h>

#define TH_MAX 64

struct th_kv {
	char name[64];
	char value[4096];
	int unset; /* getenv overrides: hide the variable */
};

/* The opaque handles of the ABI, made concrete for tests. */
struct rbee_env {
	struct th_kv vars[TH_MAX];
	size_t n;
};

struct rbee_plan {
	char argv[TH_MAX][512];
	size_t argc;
	struct th_kv env[TH_MAX];
	size_t nenv;
	char cpus[256];
	char nodes[64];
};

struct th_check {
	char check[64];
	int ok;
	char detail[512];
};

struct rbee_report {
	struct th_check checks[TH_MAX];
	size_t n;
};

struct rbee_call {
	hwloc_topology_t topo;
	struct rbee_device devices[TH_MAX];
	size_t ndevices;
	char failure[1024];   /* the last host->fail() message */
	int fail_status;
	char log[16384];      /* every host->log() line */
	struct th_kv getenv_over[TH_MAX];
	size_t ngetenv;
};

/* Where the topology comes from. */
enum th_topology {
	TH_TOPO_SYSTEM,    /* this machine, I/O devices included */
	TH_TOPO_SYNTHETIC, /* arg: an hwloc synthetic description */
	TH_TOPO_XML,       /* arg: a file under $RBEE_SRC/tests/plugins/ */
	TH_TOPO_NONE,      /* host->topology() answers NULL */
};

struct th {
	struct rbee_host host;
	struct rbee_call call;
	struct rbee_env env;
	struct rbee_plan plan;
	struct rbee_report report;
	void *dl;
	const struct rbee_backend *be;
};

/* Load plugin `name` and a topology; fails the current test on any error. */
struct th *th_new(const char *name, enum th_topology topo, const char *arg);
void th_free(struct th *th);

/* What host->getenv answers for `name`: `value`, or nothing when value is NULL. Variables not
 * overridden come from the test's own environment. */
void th_setenv(struct th *th, const char *name, const char *value);

/* The operations, with the recorded state reset first. Return the plugin's status. */
int th_probe(struct th *th, struct rbee_probe_result *out);
int th_enumerate(struct th *th);
int th_build_env(struct th *th);
int th_verify(struct th *th, const char *binary, const char *worker_type);
int th_spawn(struct th *th, size_t device);

/* Lookups into the recorded state; NULL when absent. */
const char *th_env(const struct th *th, const char *name);
const char *th_plan_env(const struct th *th, const char *name);
const struct th_check *th_check(const struct th *th, const char *check);

/* $RBEE_SRC/tests/plugins/<file> into buf. */
const char *th_src_file(const char *file, char *buf, size_t len);
/* A fresh temporary directory (removed by the caller with th_rmtree). */
char *th_tmpdir(char *buf, size_t len);
void th_rmtree(const char *dir);
/* Write `text` to `path` with `mode`. */
void th_write_file(const char *path, const char *text, unsigned mode);

#endif
