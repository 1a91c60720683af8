/*
 * fake_nvml.c - a fake libnvidia-ml.so.1 for tests: the NVML entry points the cuda plugin
 * resolves, answering from the RBEE_FAKE_GPUS device list (see fake_gpus.h).
 *
 * RBEE_FAKE_NVML_FAIL=<code> makes nvmlInit_v2 return that nvmlReturn_t (e.g. 9: driver not
 * loaded), to test the plugin's fallback when NVML is present but unusable.
 * Error codes follow the real library: 1 uninitialized, 2 invalid argument, 6 not found,
 * 7 insufficient size, 999 unknown.
 */
#include <stdio.h>
#include <string.h>

#include "fake_gpus.h"

#define EXPORT __attribute__((visibility("default")))

enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_UNINITIALIZED = 1,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_FOUND = 6,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_UNKNOWN = 999,
};

typedef struct { unsigned long long total, free, used; } fake_nvml_memory;
typedef const struct fake_gpu *fake_nvml_device;

EXPORT int nvmlInit_v2(void);
EXPORT int nvmlShutdown(void);
EXPORT int nvmlSystemGetDriverVersion(char *version, unsigned int length);
EXPORT int nvmlDeviceGetHandleByPciBusId_v2(const char *busid, fake_nvml_device *device);
EXPORT int nvmlDeviceGetMemoryInfo(fake_nvml_device device, fake_nvml_memory *memory);
EXPORT const char *nvmlErrorString(int result);

static struct fake_system sys;
static int refcount;

int nvmlInit_v2(void)
{
	int fail = fake_env_int("RBEE_FAKE_NVML_FAIL", 0);

	if (fail)
		return fail;
	if (refcount == 0 && fake_system_load(&sys))
		return NVML_ERROR_UNKNOWN;
	refcount++;
	return NVML_SUCCESS;
}

int nvmlShutdown(void)
{
	if (refcount == 0)
		return NVML_ERROR_UNINITIALIZED;
	refcount--;
	return NVML_SUCCESS;
}

int nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
	if (refcount == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (!version)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(sys.driver_version) >= length)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(version, sys.driver_version, strlen(sys.driver_version) + 1);
	return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByPciBusId_v2(const char *busid, fake_nvml_device *device)
{
	unsigned domain, bus, dev, fn;

	if (refcount == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (!busid || !device || fake_parse_busid(busid, &domain, &bus, &dev, &fn))
		return NVML_ERROR_INVALID_ARGUMENT;
	for (int i = 0; i < sys.ngpus; i++) {
		const struct fake_gpu *g = &sys.gpus[i];

		if (g->domain == domain && g->bus == bus && g->dev == dev && g->fn == fn) {
			*device = g;
			return NVML_SUCCESS;
		}
	}
	return NVML_ERROR_NOT_FOUND;
}

int nvmlDeviceGetMemoryInfo(fake_nvml_device device, fake_nvml_memory *memory)
{
	if (refcount == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (!device || !memory)
		return NVML_ERROR_INVALID_ARGUMENT;
	memory->total = device->total_bytes;
	memory->free = device->free_bytes;
	memory->used = device->total_bytes - device->free_bytes;
	return NVML_SUCCESS;
}

const char *nvmlErrorString(int result)
{
	switch (result) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_FOUND: return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	default: return "Unknown Error";
	}
}
