/*
 * cuda_internal.h - the cuda plugin's private interfaces: the dlopen'ed driver tables
 * (cuda_driver.c), reading one GPU (cuda_gpus.c), its NUMA locality (cuda_numa.c) and the
 * toolkit a build needs (cuda_toolkit.c). cuda.c holds the backend operations.
 *
 * No CUDA header is used: the few driver types and enum values the plugin needs are
 * redeclared here (Ollama's gpu_info_nvcuda.c approach), so the plugin builds without the
 * toolkit and has no link-time dependency on the driver.
 */
#ifndef RBEE_CUDA_INTERNAL_H
#define RBEE_CUDA_INTERNAL_H

#include <stddef.h>

#include <rbee/backend.h>

/* --- CUDA driver API subset (cuda.h) --- */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct { unsigned char bytes[16]; } CUuuid;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_NO_DEVICE 100
#define CU_DEVICE_ATTRIBUTE_PCI_BUS_ID 33
#define CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID 34
#define CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID 50
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76

/* --- NVML subset (nvml.h) --- */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

#define NVML_SUCCESS 0
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80

/* libcuda.so.1, opened and resolved. Every pointer is set once cuda_driver_open succeeded,
 * except cuGetErrorName, which may be NULL. */
struct cuda_driver {
	void *lib;
	CUresult (*cuInit)(unsigned int flags);
	CUresult (*cuDriverGetVersion)(int *version);
	CUresult (*cuDeviceGetCount)(int *count);
	CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
	CUresult (*cuDeviceGetName)(char *name, int len, CUdevice device);
	CUresult (*cuDeviceTotalMem_v2)(size_t *bytes, CUdevice device);
	CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
	CUresult (*cuDeviceGetUuid)(CUuuid *uuid, CUdevice device);
	CUresult (*cuCtxCreate_v2)(CUcontext *ctx, unsigned int flags, CUdevice device);
	CUresult (*cuCtxDestroy_v2)(CUcontext ctx);
	CUresult (*cuMemGetInfo_v2)(size_t *free_bytes, size_t *total_bytes);
	CUresult (*cuGetErrorName)(CUresult error, const char **name);
};

/* libnvidia-ml.so.1, opened, resolved and initialized; `lib` is NULL when NVML is unusable. */
struct cuda_nvml {
	void *lib;
	nvmlReturn_t (*nvmlInit_v2)(void);
	nvmlReturn_t (*nvmlShutdown)(void);
	nvmlReturn_t (*nvmlSystemGetDriverVersion)(char *version, unsigned int length);
	nvmlReturn_t (*nvmlDeviceGetHandleByPciBusId_v2)(const char *busid, nvmlDevice_t *device);
	nvmlReturn_t (*nvmlDeviceGetMemoryInfo)(nvmlDevice_t device, nvmlMemory_t *memory);
};

/* Results of cuda_driver_open. */
enum cuda_open_status {
	CUDA_OPEN_OK = 0,
	CUDA_OPEN_MISSING = 1, /* libcuda.so.1 is not installed: "not available" */
	CUDA_OPEN_BROKEN = 2,  /* it is there but unusable: `why` says how */
};

/* Open libcuda.so.1 (RTLD_NOW|RTLD_LOCAL, normal library search) and resolve every entry point.
 * On anything but CUDA_OPEN_OK nothing stays open and `why` explains. */
enum cuda_open_status cuda_driver_open(struct cuda_driver *cu, char *why, size_t whylen);
void cuda_driver_close(struct cuda_driver *cu);

/* "CUDA error 999 (CUDA_ERROR_UNKNOWN)" into buf; the name part only when the driver knows it. */
const char *cuda_error_text(const struct cuda_driver *cu, CUresult rc, char *buf, size_t len);

/* Open and initialize NVML. Returns 0, or -1 with `why` set and nothing left open: the caller
 * carries on without NVML (it is optional). */
int cuda_nvml_open(struct cuda_nvml *nv, char *why, size_t whylen);
/* nvmlShutdown and close; safe on a struct whose open failed. */
void cuda_nvml_close(struct cuda_nvml *nv);

/* PCI location of a GPU as the driver reports it (function is always 0 for a CUDA device). */
struct cuda_pci {
	unsigned domain, bus, dev;
};

/* Read CUDA device `ordinal` into `dev`: name, uuid, pci bus id, memory, compute capability.
 * Free memory comes from NVML when `nv->lib` is set, else from cuMemGetInfo_v2 in a short-lived
 * context, else stays 0 (unknown). index, id, driver version and locality are left to the
 * caller. Returns 0, or -1 with `why` naming the call that failed. */
int cuda_read_gpu(const struct rbee_host *host, const struct cuda_driver *cu,
		  const struct cuda_nvml *nv, int ordinal, struct rbee_device *dev,
		  struct cuda_pci *pci, char *why, size_t whylen);

/* Fill dev->numa_node, cpuset and nodeset for the GPU at `pci` from the host's hwloc topology
 * (the PCI device's first non-I/O ancestor), or, when the topology has no I/O objects and is
 * this system, from /sys/bus/pci/devices/<id>/numa_node. Unknown values stay unknown. */
void cuda_locate(const struct rbee_host *host, const struct cuda_pci *pci, struct rbee_device *dev);

/* Find nvcc: $CUDA_HOME/bin/nvcc when CUDA_HOME is set (and only there), else
 * /usr/local/cuda/bin/nvcc, else the first nvcc on PATH. Fills `nvcc` and `home` (the toolkit
 * root, the parent of nvcc's bin/). Returns RBEE_OK or fails through host->fail(). */
int cuda_find_nvcc(const struct rbee_host *host, char *nvcc, size_t nvcclen, char *home,
		   size_t homelen);

/* Fail unless `nvcc --list-gpu-arch` includes every one of `archs` (cc * 10, e.g. 86). An nvcc
 * too old to list its targets is accepted with a warning. */
int cuda_check_nvcc_targets(const struct rbee_host *host, const char *nvcc, const int *archs,
			    size_t narchs);

#endif
