/*
 * fake_gpus.h - the device list shared by the fake libcuda.so.1 and libnvidia-ml.so.1.
 *
 * Slurm's fake_gpus.conf idea: a test names a file in RBEE_FAKE_GPUS and the fake driver reports
 * exactly the GPUs it lists, so every CUDA code path of the cuda plugin runs without a GPU.
 *
 *     # comment
 *     driver=550.54.15          driver version NVML reports (default 550.54.15)
 *     cuda=12.4                 CUDA version cuDriverGetVersion reports (default 12.4)
 *     name|uuid|pci_bus_id|total_mib|free_mib|cc
 *     NVIDIA H100 80GB HBM3|GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0|0000:41:00.0|81559|80000|9.0
 *
 * Each library keeps its own copy (they are separate shared objects, as the real ones are).
 */
#ifndef FAKE_GPUS_H
#define FAKE_GPUS_H

#include <stdint.h>

#define FAKE_MAX_GPUS 16

struct fake_gpu {
	char name[128];
	char uuid[64];         /* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
	unsigned char uuid_bytes[16];
	unsigned domain, bus, dev, fn;
	uint64_t total_bytes;
	uint64_t free_bytes;
	int cc_major, cc_minor;
};

struct fake_system {
	struct fake_gpu gpus[FAKE_MAX_GPUS];
	int ngpus;
	char driver_version[80];
	int cuda_version;      /* 1000 * major + 10 * minor, as cuDriverGetVersion reports */
};

/* Fill `sys` from the file named by RBEE_FAKE_GPUS (no variable: no GPUs, defaults for the rest).
 * Returns 0, or -1 after printing to stderr what is wrong with the file and where. */
int fake_system_load(struct fake_system *sys);

/* Parse "0000:41:00.0" (also NVML's "00000000:41:00.0", any case). Returns 0 or -1. */
int fake_parse_busid(const char *s, unsigned *domain, unsigned *bus, unsigned *dev, unsigned *fn);

/* The integer value of environment variable `name`, or `def` when unset or not a number. */
int fake_env_int(const char *name, int def);

#endif
