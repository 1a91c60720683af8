/*
 * metal.c - the metal backend: the GPU of an Apple silicon Mac.
 *
 * It builds everywhere. Off macOS (and on Intel Macs) probe answers "not available" and nothing
 * else is ever called. On macOS the GPU is found through sysctl and Mach calls only (no
 * Objective-C, no Metal framework): Apple silicon always has exactly one GPU sharing the
 * machine's unified memory. spawn is left to the host's default (the worker's argv, no binding:
 * macOS has no CPU or memory binding to apply).
 */
#include <stdio.h>
#include <string.h>

#include <rbee/backend.h>

#define METAL_SCORE 100

#ifdef __APPLE__
#include <mach/mach.h>
#include <sys/sysctl.h>
#include <sys/types.h>

/* True on Apple silicon, false on Intel Macs (where the sysctl does not exist). */
static int is_apple_silicon(void)
{
	int arm64 = 0;
	size_t len = sizeof(arm64);

	return sysctlbyname("hw.optional.arm64", &arm64, &len, NULL, 0) == 0 && arm64 == 1;
}

/* Unified memory the kernel considers free or reclaimable, 0 when unknown. */
static uint64_t free_memory(void)
{
	vm_statistics64_data_t vm;
	mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
	vm_size_t page = 0;
	mach_port_t host = mach_host_self();
	kern_return_t kr = host_page_size(host, &page);

	if (kr == KERN_SUCCESS)
		kr = host_statistics64(host, HOST_VM_INFO64, (host_info64_t)&vm, &count);
	mach_port_deallocate(mach_task_self(), host);
	if (kr != KERN_SUCCESS)
		return 0;
	return ((uint64_t)vm.free_count + vm.inactive_count + vm.purgeable_count) * (uint64_t)page;
}

static int metal_probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	if (!is_apple_silicon()) {
		out->state = RBEE_PROBE_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "requires macOS on Apple silicon "
			 "(this Mac has an Intel CPU)");
		return RBEE_OK;
	}
	out->state = RBEE_PROBE_AVAILABLE;
	out->score = METAL_SCORE;
	snprintf(out->reason, sizeof(out->reason), "Apple silicon GPU with unified memory");
	return RBEE_OK;
}

static int metal_enumerate(const struct rbee_host *host)
{
	struct rbee_device dev;
	uint64_t memsize = 0;
	size_t len = sizeof(memsize);

	memset(&dev, 0, sizeof(dev));
	dev.struct_size = sizeof(dev);
	dev.cc_major = dev.cc_minor = dev.numa_node = -1;
	snprintf(dev.id, sizeof(dev.id), "METAL-0");
	snprintf(dev.device_type, sizeof(dev.device_type), "gpu");
	len = sizeof(dev.name);
	if (sysctlbyname("machdep.cpu.brand_string", dev.name, &len, NULL, 0) != 0)
		snprintf(dev.name, sizeof(dev.name), "Apple silicon GPU");
	dev.name[sizeof(dev.name) - 1] = '\0';
	len = sizeof(memsize);
	if (sysctlbyname("hw.memsize", &memsize, &len, NULL, 0) != 0)
		return host->fail(host->call, RBEE_ERR_FAILED, "sysctl \"hw.memsize\" failed: cannot "
				  "tell the GPU's unified memory size");
	dev.memory_total = memsize;
	dev.memory_free = free_memory();
	if (dev.memory_free > dev.memory_total)
		dev.memory_free = dev.memory_total;
	return host->device_add(host->call, &dev);
}

static int metal_verify(const struct rbee_host *host, const struct rbee_worker_info *worker,
			const struct rbee_device *devices, size_t ndevices, struct rbee_report *report)
{
	(void)worker;
	if (host->report_check(report, "gpu present", ndevices > 0 && devices[0].memory_total > 0,
			       ndevices ? devices[0].name : "no Apple silicon GPU") != RBEE_OK)
		return host->fail(host->call, RBEE_ERR_NOMEM, "cannot add to the verify report");
	return RBEE_OK;
}

#define METAL_ENUMERATE metal_enumerate
#define METAL_VERIFY metal_verify

#else /* !__APPLE__ */

static int metal_probe(const struct rbee_host *host, struct rbee_probe_result *out)
{
	(void)host;
	out->state = RBEE_PROBE_UNAVAILABLE;
	out->score = 0;
	snprintf(out->reason, sizeof(out->reason), "requires macOS on Apple silicon");
	return RBEE_OK;
}

/* Never called here: the host only enumerates and verifies an available backend. */
#define METAL_ENUMERATE NULL
#define METAL_VERIFY NULL

#endif

RBEE_BACKEND_DEFINE(metal) = {
	RBEE_BACKEND_HEADER("metal"),
	.version = RBEE_VERSION,
	.description = "the GPU of an Apple silicon Mac (Metal, unified memory)",
	.probe = metal_probe,
	.enumerate = METAL_ENUMERATE,
	.build_env = NULL,
	.verify = METAL_VERIFY,
	.spawn = NULL,
};
