/*
 * cuda_driver.c - open libcuda.so.1 and libnvidia-ml.so.1 with dlopen and resolve the entry
 * points the plugin uses, by name, into tables of function pointers.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

/* One entry point to resolve: its name and where the pointer goes. */
struct cuda_sym {
	const char *name;
	void **slot;
	int optional;
};

/* Resolve every symbol of `syms` from `lib`. Returns 0, or -1 with `why` naming the first
 * required symbol that is missing. */
static int resolve(void *lib, const char *libname, const struct cuda_sym *syms, size_t n,
		   char *why, size_t whylen)
{
	for (size_t i = 0; i < n; i++) {
		*syms[i].slot = dlsym(lib, syms[i].name);
		if (!*syms[i].slot && !syms[i].optional) {
			snprintf(why, whylen, "%s has no \"%s\" (driver too old?): update the NVIDIA driver",
				 libname, syms[i].name);
			return -1;
		}
	}
	return 0;
}

enum cuda_open_status cuda_driver_open(struct cuda_driver *cu, char *why, size_t whylen)
{
	const struct cuda_sym syms[] = {
		{ "cuInit", (void **)&cu->cuInit, 0 },
		{ "cuDriverGetVersion", (void **)&cu->cuDriverGetVersion, 0 },
		{ "cuDeviceGetCount", (void **)&cu->cuDeviceGetCount, 0 },
		{ "cuDeviceGet", (void **)&cu->cuDeviceGet, 0 },
		{ "cuDeviceGetName", (void **)&cu->cuDeviceGetName, 0 },
		{ "cuDeviceTotalMem_v2", (void **)&cu->cuDeviceTotalMem_v2, 0 },
		{ "cuDeviceGetAttribute", (void **)&cu->cuDeviceGetAttribute, 0 },
		{ "cuDeviceGetUuid", (void **)&cu->cuDeviceGetUuid, 0 },
		{ "cuCtxCreate_v2", (void **)&cu->cuCtxCreate_v2, 0 },
		{ "cuCtxDestroy_v2", (void **)&cu->cuCtxDestroy_v2, 0 },
		{ "cuMemGetInfo_v2", (void **)&cu->cuMemGetInfo_v2, 0 },
		{ "cuGetErrorName", (void **)&cu->cuGetErrorName, 1 },
	};
	const char *err;

	memset(cu, 0, sizeof(*cu));
	dlerror();
	cu->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!cu->lib) {
		err = dlerror();
		if (!err || strstr(err, "No such file")) {
			snprintf(why, whylen, "no NVIDIA driver (libcuda.so.1 not found)");
			return CUDA_OPEN_MISSING;
		}
		snprintf(why, whylen, "cannot load libcuda.so.1: %s", err);
		return CUDA_OPEN_BROKEN;
	}
	if (resolve(cu->lib, "libcuda.so.1", syms, sizeof(syms) / sizeof(syms[0]), why, whylen))
		goto fail;
	return CUDA_OPEN_OK;
fail:
	cuda_driver_close(cu);
	return CUDA_OPEN_BROKEN;
}

void cuda_driver_close(struct cuda_driver *cu)
{
	if (cu->lib)
		dlclose(cu->lib);
	memset(cu, 0, sizeof(*cu));
}

const char *cuda_error_text(const struct cuda_driver *cu, CUresult rc, char *buf, size_t len)
{
	const char *name = NULL;

	if (cu->cuGetErrorName && cu->cuGetErrorName(rc, &name) != CUDA_SUCCESS)
		name = NULL;
	if (name)
		snprintf(buf, len, "CUDA error %d (%s)", rc, name);
	else
		snprintf(buf, len, "CUDA error %d", rc);
	return buf;
}

int cuda_nvml_open(struct cuda_nvml *nv, char *why, size_t whylen)
{
	const struct cuda_sym syms[] = {
		{ "nvmlInit_v2", (void **)&nv->nvmlInit_v2, 0 },
		{ "nvmlShutdown", (void **)&nv->nvmlShutdown, 0 },
		{ "nvmlSystemGetDriverVersion", (void **)&nv->nvmlSystemGetDriverVersion, 0 },
		{ "nvmlDeviceGetHandleByPciBusId_v2", (void **)&nv->nvmlDeviceGetHandleByPciBusId_v2, 0 },
		{ "nvmlDeviceGetMemoryInfo", (void **)&nv->nvmlDeviceGetMemoryInfo, 0 },
	};
	void *lib;
	nvmlReturn_t rc;

	memset(nv, 0, sizeof(*nv));
	dlerror();
	lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *err = dlerror();

		snprintf(why, whylen, "cannot load libnvidia-ml.so.1: %s", err ? err : "not found");
		return -1;
	}
	if (resolve(lib, "libnvidia-ml.so.1", syms, sizeof(syms) / sizeof(syms[0]), why, whylen))
		goto fail;
	rc = nv->nvmlInit_v2();
	if (rc != NVML_SUCCESS) {
		snprintf(why, whylen, "nvmlInit_v2 failed with NVML error %d", rc);
		goto fail;
	}
	nv->lib = lib;
	return 0;
fail:
	memset(nv, 0, sizeof(*nv));
	dlclose(lib);
	return -1;
}

void cuda_nvml_close(struct cuda_nvml *nv)
{
	if (nv->lib) {
		nv->nvmlShutdown();
		dlclose(nv->lib);
	}
	memset(nv, 0, sizeof(*nv));
}
