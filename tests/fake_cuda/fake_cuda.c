/*
 * fake_cuda.c - a fake libcuda.so.1 for tests: the CUDA driver API entry points the cuda plugin
 * resolves, answering from the RBEE_FAKE_GPUS device list (see fake_gpus.h).
 *
 * Failure modes for loader tests, read by cuInit:
 *   RBEE_FAKE_CUDA_FAIL=<code>  cuInit returns that CUresult (100: no device, 999: unknown)
 *   RBEE_FAKE_CUDA_HANG=1       cuInit never returns
 *   RBEE_FAKE_CUDA_CRASH=1      cuInit dies of SIGSEGV (default action, even under ASan)
 * Error codes follow the real driver: 3 not initialized, 100 no device, 101 invalid device,
 * 1 invalid value, 999 unknown.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fake_gpus.h"

#define EXPORT __attribute__((visibility("default")))

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_NO_DEVICE = 100,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_UNKNOWN = 999,
};

typedef struct { unsigned char bytes[16]; } fake_uuid;
typedef struct fake_ctx { int device; } *fake_context;

EXPORT int cuInit(unsigned int flags);
EXPORT int cuDriverGetVersion(int *version);
EXPORT int cuDeviceGetCount(int *count);
EXPORT int cuDeviceGet(int *device, int ordinal);
EXPORT int cuDeviceGetName(char *name, int len, int device);
EXPORT int cuDeviceTotalMem_v2(size_t *bytes, int device);
EXPORT int cuDeviceGetAttribute(int *value, int attribute, int device);
EXPORT int cuDeviceGetUuid(fake_uuid *uuid, int device);
EXPORT int cuCtxCreate_v2(fake_context *ctx, unsigned int flags, int device);
EXPORT int cuCtxDestroy_v2(fake_context ctx);
EXPORT int cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes);
EXPORT int cuGetErrorName(int error, const char **name);

static struct fake_system sys;
static int initialized;
static struct fake_ctx contexts[FAKE_MAX_GPUS];
static fake_context current;

int cuInit(unsigned int flags)
{
	int fail = fake_env_int("RBEE_FAKE_CUDA_FAIL", 0);

	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (fake_env_int("RBEE_FAKE_CUDA_CRASH", 0)) {
		signal(SIGSEGV, SIG_DFL); /* a real crash, not a sanitizer report */
		raise(SIGSEGV);
	}
	while (fake_env_int("RBEE_FAKE_CUDA_HANG", 0))
		pause();
	if (fail)
		return fail;
	if (fake_system_load(&sys))
		return CUDA_ERROR_UNKNOWN;
	if (sys.ngpus == 0)
		return CUDA_ERROR_NO_DEVICE;
	initialized = 1;
	return CUDA_SUCCESS;
}

int cuDriverGetVersion(int *version)
{
	/* Works before cuInit, as the real one does. */
	struct fake_system s;

	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	if (fake_system_load(&s))
		return CUDA_ERROR_UNKNOWN;
	*version = s.cuda_version;
	return CUDA_SUCCESS;
}

int cuDeviceGetCount(int *count)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = sys.ngpus;
	return CUDA_SUCCESS;
}

/* The device, or NULL when not initialized or out of range (*rc says which). */
static const struct fake_gpu *gpu(int device, int *rc)
{
	if (!initialized) {
		*rc = CUDA_ERROR_NOT_INITIALIZED;
		return NULL;
	}
	if (device < 0 || device >= sys.ngpus) {
		*rc = CUDA_ERROR_INVALID_DEVICE;
		return NULL;
	}
	*rc = CUDA_SUCCESS;
	return &sys.gpus[device];
}

int cuDeviceGet(int *device, int ordinal)
{
	int rc;

	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (gpu(ordinal, &rc))
		*device = ordinal;
	return rc;
}

int cuDeviceGetName(char *name, int len, int device)
{
	int rc;
	const struct fake_gpu *g = gpu(device, &rc);

	if (!g)
		return rc;
	if (!name || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t)len, "%s", g->name);
	return CUDA_SUCCESS;
}

int cuDeviceTotalMem_v2(size_t *bytes, int device)
{
	int rc;
	const struct fake_gpu *g = gpu(device, &rc);

	if (!g)
		return rc;
	if (!bytes)
		return CUDA_ERROR_INVALID_VALUE;
	*bytes = (size_t)g->total_bytes;
	return CUDA_SUCCESS;
}

int cuDeviceGetAttribute(int *value, int attribute, int device)
{
	int rc;
	const struct fake_gpu *g = gpu(device, &rc);

	if (!g)
		return rc;
	if (!value)
		return CUDA_ERROR_INVALID_VALUE;
	switch (attribute) {
	case 33: *value = (int)g->bus; break;      /* CU_DEVICE_ATTRIBUTE_PCI_BUS_ID */
	case 34: *value = (int)g->dev; break;      /* CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID */
	case 50: *value = (int)g->domain; break;   /* CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID */
	case 75: *value = g->cc_major; break;      /* ..._COMPUTE_CAPABILITY_MAJOR */
	case 76: *value = g->cc_minor; break;      /* ..._COMPUTE_CAPABILITY_MINOR */
	default: return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

int cuDeviceGetUuid(fake_uuid *uuid, int device)
{
	int rc;
	const struct fake_gpu *g = gpu(device, &rc);

	if (!g)
		return rc;
	if (!uuid)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(uuid->bytes, g->uuid_bytes, sizeof(uuid->bytes));
	return CUDA_SUCCESS;
}

int cuCtxCreate_v2(fake_context *ctx, unsigned int flags, int device)
{
	int rc;

	(void)flags;
	if (!gpu(device, &rc))
		return rc;
	if (!ctx)
		return CUDA_ERROR_INVALID_VALUE;
	contexts[device].device = device;
	current = &contexts[device];
	*ctx = current;
	return CUDA_SUCCESS;
}

int cuCtxDestroy_v2(fake_context ctx)
{
	if (!ctx)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (ctx == current)
		current = NULL;
	return CUDA_SUCCESS;
}

int cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
	if (!current)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (!free_bytes || !total_bytes)
		return CUDA_ERROR_INVALID_VALUE;
	*free_bytes = (size_t)sys.gpus[current->device].free_bytes;
	*total_bytes = (size_t)sys.gpus[current->device].total_bytes;
	return CUDA_SUCCESS;
}

int cuGetErrorName(int error, const char **name)
{
	static const struct { int code; const char *name; } names[] = {
		{ CUDA_SUCCESS, "CUDA_SUCCESS" },
		{ CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE" },
		{ CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED" },
		{ CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE" },
		{ CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE" },
		{ CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT" },
		{ CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN" },
	};

	if (!name)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].code == error) {
			*name = names[i].name;
			return CUDA_SUCCESS;
		}
	}
	*name = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}
