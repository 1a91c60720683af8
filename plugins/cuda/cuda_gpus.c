/*
 * cuda_gpus.c - read one CUDA device's facts through the driver tables, checking every return
 * code: a driver that answers oddly yields a clear error, never a crash or a made-up value.
 */
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

/* Why `call` failed, into why. Returns -1 for chaining. */
static int call_failed(const struct cuda_driver *cu, const char *call, int ordinal, CUresult rc,
		       char *why, size_t whylen)
{
	char err[96];

	snprintf(why, whylen, "%s failed for CUDA device %d: %s", call, ordinal,
		 cuda_error_text(cu, rc, err, sizeof(err)));
	return -1;
}

/* nvidia-smi's form: "GPU-" then 8-4-4-4-12 lower-case hex digits. */
static void format_uuid(const CUuuid *u, char *out, size_t len)
{
	const unsigned char *b = u->bytes;

	snprintf(out, len,
		 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Compute capability and PCI location: all five attributes or an error. */
static int read_attributes(const struct cuda_driver *cu, CUdevice d, int ordinal,
			   struct rbee_device *dev, struct cuda_pci *pci, char *why, size_t whylen)
{
	static const struct { int attr; const char *name; } attrs[5] = {
		{ CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "compute capability major" },
		{ CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "compute capability minor" },
		{ CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, "PCI domain" },
		{ CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, "PCI bus" },
		{ CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, "PCI device" },
	};
	int v[5];

	for (int i = 0; i < 5; i++) {
		CUresult rc = cu->cuDeviceGetAttribute(&v[i], attrs[i].attr, d);

		if (rc != CUDA_SUCCESS)
			return call_failed(cu, "cuDeviceGetAttribute", ordinal, rc, why, whylen);
		if (v[i] < 0) {
			snprintf(why, whylen, "CUDA device %d reports a negative %s (%d)", ordinal,
				 attrs[i].name, v[i]);
			return -1;
		}
	}
	if (v[0] > 99 || v[1] > 9 || v[2] > 0xffff || v[3] > 0xff || v[4] > 0x1f) {
		snprintf(why, whylen, "CUDA device %d reports an impossible compute capability %d.%d "
			 "or PCI address %x:%x:%x", ordinal, v[0], v[1], v[2], v[3], v[4]);
		return -1;
	}
	dev->cc_major = v[0];
	dev->cc_minor = v[1];
	pci->domain = (unsigned)v[2];
	pci->bus = (unsigned)v[3];
	pci->dev = (unsigned)v[4];
	snprintf(dev->pci_bus_id, sizeof(dev->pci_bus_id), "%04x:%02x:%02x.0", pci->domain,
		 pci->bus, pci->dev);
	return 0;
}

/* Free memory from NVML, found by PCI bus id. Returns 0 or -1 (then the caller falls back). */
static int free_memory_nvml(const struct rbee_host *host, const struct cuda_nvml *nv,
			    struct rbee_device *dev)
{
	nvmlDevice_t handle;
	nvmlMemory_t mem = { 0, 0, 0 };
	nvmlReturn_t rc;

	rc = nv->nvmlDeviceGetHandleByPciBusId_v2(dev->pci_bus_id, &handle);
	if (rc == NVML_SUCCESS)
		rc = nv->nvmlDeviceGetMemoryInfo(handle, &mem);
	if (rc != NVML_SUCCESS || mem.free > mem.total) {
		host->log(host->call, RBEE_LOG_WARN, "nvml has no memory information for \"%s\" "
			  "(NVML error %d)", dev->pci_bus_id, rc);
		return -1;
	}
	dev->memory_free = mem.free;
	return 0;
}

/* Free memory from cuMemGetInfo_v2 in a context made for the purpose. This costs a context
 * (a few hundred MiB and up to a second per GPU) but runs in the probe process, which exits
 * right after. On failure (e.g. an exclusive-process GPU in use) free memory stays unknown. */
static void free_memory_context(const struct rbee_host *host, const struct cuda_driver *cu,
				CUdevice d, struct rbee_device *dev)
{
	CUcontext ctx = NULL;
	size_t free_bytes = 0, total_bytes = 0;
	CUresult rc;
	char err[96];

	rc = cu->cuCtxCreate_v2(&ctx, 0, d);
	if (rc == CUDA_SUCCESS && ctx) {
		rc = cu->cuMemGetInfo_v2(&free_bytes, &total_bytes);
		cu->cuCtxDestroy_v2(ctx);
	}
	if (rc != CUDA_SUCCESS || free_bytes > total_bytes) {
		host->log(host->call, RBEE_LOG_WARN, "free memory of \"%s\" unknown: %s",
			  dev->pci_bus_id, cuda_error_text(cu, rc, err, sizeof(err)));
		return;
	}
	dev->memory_free = free_bytes;
}

int cuda_read_gpu(const struct rbee_host *host, const struct cuda_driver *cu,
		  const struct cuda_nvml *nv, int ordinal, struct rbee_device *dev,
		  struct cuda_pci *pci, char *why, size_t whylen)
{
	CUdevice d;
	CUuuid uuid;
	size_t total = 0;
	CUresult rc;

	if ((rc = cu->cuDeviceGet(&d, ordinal)) != CUDA_SUCCESS)
		return call_failed(cu, "cuDeviceGet", ordinal, rc, why, whylen);
	if ((rc = cu->cuDeviceGetName(dev->name, (int)sizeof(dev->name), d)) != CUDA_SUCCESS)
		return call_failed(cu, "cuDeviceGetName", ordinal, rc, why, whylen);
	dev->name[sizeof(dev->name) - 1] = '\0';
	if ((rc = cu->cuDeviceGetUuid(&uuid, d)) != CUDA_SUCCESS)
		return call_failed(cu, "cuDeviceGetUuid", ordinal, rc, why, whylen);
	format_uuid(&uuid, dev->uuid, sizeof(dev->uuid));
	if ((rc = cu->cuDeviceTotalMem_v2(&total, d)) != CUDA_SUCCESS)
		return call_failed(cu, "cuDeviceTotalMem_v2", ordinal, rc, why, whylen);
	dev->memory_total = total;
	if (read_attributes(cu, d, ordinal, dev, pci, why, whylen))
		return -1;
	if (!nv->lib || free_memory_nvml(host, nv, dev))
		free_memory_context(host, cu, d, dev);
	return 0;
}
