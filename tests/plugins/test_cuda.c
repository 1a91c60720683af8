/*
 * test_cuda.c - the cuda backend as the hive loads it, against the fake NVIDIA driver.
 *
 * libcuda.so.1 is found through the normal library search, so LD_LIBRARY_PATH must be set
 * before the process starts; ctest runs this program once per driver setting:
 *   test_plugin_cuda              no driver on the search path (plus build/spawn/verify)
 *   test_plugin_cuda fake         tests/fake_cuda/lib: fake libcuda.so.1 and libnvidia-ml.so.1
 *   test_plugin_cuda no-nvml      tests/fake_cuda/lib-no-nvml: fake libcuda.so.1 alone
 * The fake's devices and failure modes are read when the plugin calls into it, so those are
 * set per test with setenv().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_host.h"

#define MIB (1024ULL * 1024)
#define A100_UUID "GPU-5d2a9c1e-7b3f-4e21-9a0c-1f2e3d4c5b6a"
#define H100_UUID "GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

/* --- helpers --- */

static void use_two_gpus(void)
{
	char path[4096];

	setenv("RBEE_FAKE_GPUS", th_src_file("two-gpus.conf", path, sizeof(path)), 1);
	unsetenv("RBEE_FAKE_CUDA_FAIL");
	unsetenv("RBEE_FAKE_NVML_FAIL");
}

static int setup_fake(void **state)
{
	(void)state;
	use_two_gpus();
	return 0;
}

static struct rbee_device gpu_device(int index, int major, int minor, const char *uuid)
{
	struct rbee_device d;

	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	d.index = (uint32_t)index;
	snprintf(d.id, sizeof(d.id), "GPU-%d", index);
	snprintf(d.name, sizeof(d.name), "NVIDIA Test GPU");
	snprintf(d.device_type, sizeof(d.device_type), "gpu");
	snprintf(d.uuid, sizeof(d.uuid), "%s", uuid);
	d.cc_major = major;
	d.cc_minor = minor;
	d.numa_node = -1;
	return d;
}

/* A fake nvcc in DIR/bin that knows the targets `archs` ("" = an nvcc without
 * --list-gpu-arch). */
static void fake_nvcc(const char *dir, const char *archs)
{
	char path[512], script[2048];

	snprintf(path, sizeof(path), "%s/bin", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/bin/nvcc", dir);
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 "case \"$1\" in\n"
		 "--version) echo 'Cuda compilation tools, release 12.4, V12.4.131' ;;\n"
		 "--list-gpu-arch) [ -n '%s' ] || { echo 'nvcc fatal : Unknown option' >&2; exit 1; }\n"
		 "  for a in %s; do echo compute_$a; done ;;\n"
		 "*) exit 2 ;;\n"
		 "esac\n", archs, archs);
	th_write_file(path, script, 0755);
}

/* Run the probe in a child with `var`=1 set; return its wait status (killing it after
 * `wait_ms` if it is still running, which is then reported as 0). */
static int probe_in_child(const char *var, int wait_ms)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
		struct rbee_probe_result r;

		setenv(var, "1", 1);
		th_probe(th, &r);
		_exit(3); /* the fake should not have returned */
	}
	for (int waited = 0; waited < wait_ms; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 0;
}

/* --- no driver --- */

static void without_driver_is_unavailable(void **state)
{
	void *real = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	struct rbee_probe_result r;
	struct th *th;

	(void)state;
	if (real) {
		dlclose(real);
		print_message("a libcuda.so.1 is installed on this machine: skipping\n");
		skip();
	}
	th = th_new("cuda", TH_TOPO_SYSTEM, NULL);
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_int_equal(r.state, RBEE_PROBE_UNAVAILABLE);
	assert_int_equal(r.score, 0);
	assert_string_equal(r.reason, "no NVIDIA driver (libcuda.so.1 not found)");
	assert_int_equal(th_enumerate(th), RBEE_ERR_UNAVAILABLE);
	assert_string_equal(th->call.failure, "no NVIDIA driver (libcuda.so.1 not found)");
	th_free(th);
}

/* --- build_env --- */

static void build_env_lists_architectures_of_the_gpus(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	char dir[256], expect[1024];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_nvcc(dir, "50 60 70 75 80 86 89 90");
	th_setenv(th, "CUDA_HOME", dir);
	th_setenv(th, "PATH", "/usr/bin:/bin");
	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.devices[1] = gpu_device(1, 8, 0, A100_UUID);
	th->call.devices[2] = gpu_device(2, 8, 6, "GPU-2");
	th->call.devices[3] = gpu_device(3, 8, 0, "GPU-3");
	th->call.ndevices = 4;
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_string_equal(th_env(th, "CMAKE_CUDA_ARCHITECTURES"), "80;86;90");
	assert_string_equal(th_env(th, "CUDAARCHS"), "80;86;90");
	assert_string_equal(th_env(th, "CUDA_COMPUTE_CAP"), "90");
	assert_string_equal(th_env(th, "TORCH_CUDA_ARCH_LIST"), "8.0;8.6;9.0");
	assert_string_equal(th_env(th, "CUDA_HOME"), dir);
	snprintf(expect, sizeof(expect), "%s/bin:/usr/bin:/bin", dir);
	assert_string_equal(th_env(th, "PATH"), expect);
	snprintf(expect, sizeof(expect), "%s/bin/nvcc", dir);
	assert_string_equal(th_env(th, "CUDACXX"), expect);
	assert_non_null(strstr(th->call.log, "using CUDA toolkit 12.4"));
	th_rmtree(dir);
	th_free(th);
}

/* The build runs at the topology's parallelism (a CUDA build of llama.cpp ran serially
 * before), unless the hive's own environment sets it: then the operator's value is kept. */
static void build_env_builds_in_parallel_unless_the_operator_says_otherwise(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_SYNTHETIC, "pack:2 numa:1 core:4 pu:2");
	char dir[256];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_nvcc(dir, "80 90");
	th_setenv(th, "CUDA_HOME", dir);
	th_setenv(th, "MAKEFLAGS", NULL);
	th_setenv(th, "CMAKE_BUILD_PARALLEL_LEVEL", NULL);
	th_setenv(th, "CARGO_BUILD_JOBS", NULL);
	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.ndevices = 1;
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_non_null(th_env(th, "MAKEFLAGS"));
	assert_non_null(th_env(th, "CMAKE_BUILD_PARALLEL_LEVEL"));
	assert_string_equal(th_env(th, "MAKEFLAGS"), "-j16");
	assert_string_equal(th_env(th, "CMAKE_BUILD_PARALLEL_LEVEL"), "16");
	assert_string_equal(th_env(th, "CARGO_BUILD_JOBS"), "16");
	assert_non_null(strstr(th->call.log, "with 16 jobs"));
	assert_null(strstr(th->call.log, "keeping"));

	th_setenv(th, "CMAKE_BUILD_PARALLEL_LEVEL", "3");
	th_setenv(th, "MAKEFLAGS", "-j5 -k");
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_string_equal(th_env(th, "CMAKE_BUILD_PARALLEL_LEVEL"), "3");
	assert_string_equal(th_env(th, "MAKEFLAGS"), "-j5 -k");
	assert_string_equal(th_env(th, "CARGO_BUILD_JOBS"), "16");
	assert_non_null(strstr(th->call.log, "keeping CMAKE_BUILD_PARALLEL_LEVEL=\"3\" from the "
				 "hive's environment (not 16)"));
	assert_non_null(strstr(th->call.log, "keeping MAKEFLAGS=\"-j5 -k\""));
	th_rmtree(dir);
	th_free(th);
}

static void build_env_fails_when_cuda_home_has_no_nvcc(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	char dir[256];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	th_setenv(th, "CUDA_HOME", dir);
	th_setenv(th, "PATH", dir);
	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.ndevices = 1;
	assert_int_equal(th_build_env(th), RBEE_ERR_NOT_FOUND);
	assert_non_null(strstr(th->call.failure, "CUDA toolkit not found"));
	assert_non_null(strstr(th->call.failure, dir));
	assert_int_equal(th->env.n, 0);
	th_rmtree(dir);
	th_free(th);
}

static void build_env_fails_without_any_nvcc(void **state)
{
	struct th *th;
	char dir[256];
	struct stat st;

	(void)state;
	if (stat("/usr/local/cuda/bin/nvcc", &st) == 0) {
		print_message("/usr/local/cuda/bin/nvcc exists on this machine: skipping\n");
		skip();
	}
	th = th_new("cuda", TH_TOPO_NONE, NULL);
	th_tmpdir(dir, sizeof(dir));
	th_setenv(th, "CUDA_HOME", NULL);
	th_setenv(th, "PATH", dir);
	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.ndevices = 1;
	assert_int_equal(th_build_env(th), RBEE_ERR_NOT_FOUND);
	assert_string_equal(th->call.failure, "CUDA toolkit not found: no nvcc in "
			    "\"/usr/local/cuda/bin\" or on PATH; install it or set CUDA_HOME");
	th_rmtree(dir);
	th_free(th);
}

static void build_env_fails_when_nvcc_cannot_target_a_gpu(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	char dir[256];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_nvcc(dir, "50 60 70 75 80");
	th_setenv(th, "CUDA_HOME", dir);
	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.ndevices = 1;
	assert_int_equal(th_build_env(th), RBEE_ERR_UNAVAILABLE);
	assert_non_null(strstr(th->call.failure, "cannot build for compute capability 9.0"));
	assert_non_null(strstr(th->call.failure, "compute_90"));
	th_rmtree(dir);
	th_free(th);
}

static void build_env_accepts_an_nvcc_that_cannot_list_targets(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	char dir[256];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_nvcc(dir, "");
	th_setenv(th, "CUDA_HOME", dir);
	th->call.devices[0] = gpu_device(0, 7, 0, "GPU-0");
	th->call.ndevices = 1;
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_string_equal(th_env(th, "CMAKE_CUDA_ARCHITECTURES"), "70");
	assert_non_null(strstr(th->call.log, "not checking GPU targets"));
	th_rmtree(dir);
	th_free(th);
}

static void build_env_fails_without_gpus(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);

	(void)state;
	assert_int_equal(th_build_env(th), RBEE_ERR_UNAVAILABLE);
	assert_non_null(strstr(th->call.failure, "no NVIDIA GPU was found"));
	th_free(th);
}

/* --- spawn and verify --- */

static void spawn_pins_the_gpu_by_uuid_and_binds_its_numa_node(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	struct rbee_device *d = &th->call.devices[0];

	(void)state;
	*d = gpu_device(0, 9, 0, H100_UUID);
	d->numa_node = 1;
	snprintf(d->cpuset, sizeof(d->cpuset), "8-15");
	snprintf(d->nodeset, sizeof(d->nodeset), "1");
	th->call.ndevices = 1;
	assert_int_equal(th_spawn(th, 0), RBEE_OK);
	assert_string_equal(th->plan.argv[0], "/opt/worker/bin/worker");
	assert_string_equal(th_plan_env(th, "CUDA_VISIBLE_DEVICES"), H100_UUID);
	assert_string_equal(th_plan_env(th, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
	assert_string_equal(th->plan.cpus, "8-15");
	assert_string_equal(th->plan.nodes, "1");
	th_free(th);
}

static void spawn_without_locality_does_not_bind(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);

	(void)state;
	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.ndevices = 1;
	assert_int_equal(th_spawn(th, 0), RBEE_OK);
	assert_string_equal(th->plan.cpus, "");
	assert_string_equal(th->plan.nodes, "");
	th_free(th);
}

static void spawn_refuses_a_gpu_without_uuid(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);

	(void)state;
	th->call.devices[0] = gpu_device(0, 9, 0, "");
	th->call.ndevices = 1;
	assert_int_equal(th_spawn(th, 0), RBEE_ERR_INVALID);
	assert_non_null(strstr(th->call.failure, "has no UUID"));
	th_free(th);
}

static void verify_needs_an_identified_gpu_and_a_cuda_worker(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);

	(void)state;
	assert_int_equal(th_verify(th, "/bin/sh", "cuda"), RBEE_OK);
	assert_false(th_check(th, "gpu present")->ok);

	th->call.devices[0] = gpu_device(0, 9, 0, H100_UUID);
	th->call.ndevices = 1;
	assert_int_equal(th_verify(th, "/bin/sh", "cuda"), RBEE_OK);
	assert_true(th_check(th, "gpu present")->ok);
	assert_true(th_check(th, "gpu identity")->ok);
	assert_true(th_check(th, "worker type")->ok);
	assert_non_null(strstr(th_check(th, "gpu present")->detail, "GPU-0 NVIDIA Test GPU (9.0)"));

	th->call.devices[0].uuid[0] = '\0';
	assert_int_equal(th_verify(th, "/bin/sh", "cpu"), RBEE_OK);
	assert_false(th_check(th, "gpu identity")->ok);
	assert_false(th_check(th, "worker type")->ok);
	th_free(th);
}

/* --- fake driver with NVML --- */

static void fake_probe_reports_gpus_driver_and_cuda(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	struct rbee_probe_result r;

	(void)state;
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_int_equal(r.state, RBEE_PROBE_AVAILABLE);
	assert_int_equal(r.score, 100);
	assert_string_equal(r.reason, "2 GPUs, driver 550.54.15, CUDA 12.4");
	th_free(th);
}

static void assert_gpu(const struct rbee_device *d, unsigned index, const char *name,
		       const char *uuid, const char *bus, uint64_t total_mib, uint64_t free_mib,
		       int major, int minor)
{
	char id[16];

	snprintf(id, sizeof(id), "GPU-%u", index);
	assert_int_equal(d->index, index);
	assert_string_equal(d->id, id);
	assert_string_equal(d->name, name);
	assert_string_equal(d->device_type, "gpu");
	assert_string_equal(d->uuid, uuid);
	assert_string_equal(d->pci_bus_id, bus);
	assert_int_equal(d->memory_total, total_mib * MIB);
	assert_int_equal(d->memory_free, free_mib * MIB);
	assert_int_equal(d->cc_major, major);
	assert_int_equal(d->cc_minor, minor);
}

static void fake_enumerate_reads_both_gpus_in_bus_order_with_numa(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_XML, "two-numa-two-gpu.xml");
	const struct rbee_device *d = th->call.devices;

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th->call.ndevices, 2);
	assert_gpu(&d[0], 0, "NVIDIA A100-SXM4-40GB", A100_UUID, "0000:17:00.0", 40960, 39000, 8, 0);
	assert_gpu(&d[1], 1, "NVIDIA H100 80GB HBM3", H100_UUID, "0000:b1:00.0", 81559, 80000, 9, 0);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(d[i].driver_version, "550.54.15");
		assert_int_equal(d[i].numa_node, i);
		assert_string_equal(d[i].cpuset, i ? "8-15" : "0-7");
		assert_string_equal(d[i].nodeset, i ? "1" : "0");
	}
	assert_int_equal(th_spawn(th, 1), RBEE_OK);
	assert_string_equal(th_plan_env(th, "CUDA_VISIBLE_DEVICES"), H100_UUID);
	assert_string_equal(th->plan.cpus, "8-15");
	assert_string_equal(th->plan.nodes, "1");
	th_free(th);
}

static void fake_enumerate_without_io_topology_leaves_locality_unknown(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_SYNTHETIC, "pack:2 numa:1 core:2 pu:1");

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th->call.ndevices, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(th->call.devices[i].numa_node, -1);
		assert_string_equal(th->call.devices[i].cpuset, "");
		assert_string_equal(th->call.devices[i].nodeset, "");
	}
	th_free(th);
}

/* A GPU whose PCI device hangs under no NUMA node (the kernel's numa_node is -1; hwloc then
 * attaches it to the machine itself) has unknown locality, not node 0, and is not bound. */
static void fake_enumerate_gpu_without_numa_node_is_unknown(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_XML, "two-numa-gpu-without-node.xml");
	const struct rbee_device *d = th->call.devices;

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th->call.ndevices, 2);
	assert_string_equal(d[0].pci_bus_id, "0000:17:00.0");
	assert_int_equal(d[0].numa_node, 0);
	assert_string_equal(d[0].cpuset, "0-7");
	assert_string_equal(d[0].nodeset, "0");
	assert_string_equal(d[1].pci_bus_id, "0000:b1:00.0");
	assert_int_equal(d[1].numa_node, -1);
	assert_string_equal(d[1].cpuset, "");
	assert_string_equal(d[1].nodeset, "");
	assert_int_equal(th_spawn(th, 1), RBEE_OK);
	assert_string_equal(th_plan_env(th, "CUDA_VISIBLE_DEVICES"), H100_UUID);
	assert_string_equal(th->plan.cpus, "");
	assert_string_equal(th->plan.nodes, "");
	th_free(th);
}

static void fake_build_env_uses_enumerated_capabilities(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	char dir[256];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_nvcc(dir, "75 80 86 89 90");
	th_setenv(th, "CUDA_HOME", dir);
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_string_equal(th_env(th, "CMAKE_CUDA_ARCHITECTURES"), "80;90");
	assert_string_equal(th_env(th, "CUDA_COMPUTE_CAP"), "90");
	assert_string_equal(th_env(th, "TORCH_CUDA_ARCH_LIST"), "8.0;9.0");
	th_rmtree(dir);
	th_free(th);
}

static void probe_answer(const char *fail, struct rbee_probe_result *r)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);

	if (fail)
		setenv("RBEE_FAKE_CUDA_FAIL", fail, 1);
	assert_int_equal(th_probe(th, r), RBEE_OK);
	unsetenv("RBEE_FAKE_CUDA_FAIL");
	th_free(th);
}

static void fake_no_device_is_unavailable(void **state)
{
	struct rbee_probe_result r;
	char dir[256], path[512];

	(void)state;
	probe_answer("100", &r);
	assert_int_equal(r.state, RBEE_PROBE_UNAVAILABLE);
	assert_string_equal(r.reason, "no NVIDIA GPU found");

	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	th_write_file(path, "driver=550.54.15\n", 0644);
	setenv("RBEE_FAKE_GPUS", path, 1);
	probe_answer(NULL, &r);
	assert_int_equal(r.state, RBEE_PROBE_UNAVAILABLE);
	assert_string_equal(r.reason, "no NVIDIA GPU found");
	use_two_gpus();
	th_rmtree(dir);
}

static void fake_cuinit_failure_is_broken(void **state)
{
	struct rbee_probe_result r;

	(void)state;
	probe_answer("999", &r);
	assert_int_equal(r.state, RBEE_PROBE_BROKEN);
	assert_int_equal(r.score, 0);
	assert_non_null(strstr(r.reason, "cuInit failed: CUDA error 999 (CUDA_ERROR_UNKNOWN)"));
	probe_answer("3", &r);
	assert_int_equal(r.state, RBEE_PROBE_BROKEN);
	assert_non_null(strstr(r.reason, "CUDA error 3 (CUDA_ERROR_NOT_INITIALIZED)"));
}

static void fake_broken_nvml_falls_back_to_the_cuda_driver(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_NONE, NULL);
	struct rbee_probe_result r;

	(void)state;
	setenv("RBEE_FAKE_NVML_FAIL", "9", 1);
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_string_equal(r.reason, "2 GPUs, CUDA 12.4");
	assert_int_equal(th_enumerate(th), RBEE_OK);
	unsetenv("RBEE_FAKE_NVML_FAIL");
	assert_int_equal(th->call.ndevices, 2);
	assert_string_equal(th->call.devices[0].driver_version, "CUDA 12.4");
	assert_int_equal(th->call.devices[0].memory_free, 39000 * MIB);
	assert_non_null(strstr(th->call.log, "nvmlInit_v2 failed"));
	th_free(th);
}

static void fake_crash_mode_kills_the_probe(void **state)
{
	int status = probe_in_child("RBEE_FAKE_CUDA_CRASH", 5000);

	(void)state;
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static void fake_hang_mode_blocks_the_probe(void **state)
{
	(void)state;
	assert_int_equal(probe_in_child("RBEE_FAKE_CUDA_HANG", 300), 0);
}

/* --- fake driver without NVML --- */

static void no_nvml_reports_cuda_version_and_context_free_memory(void **state)
{
	struct th *th = th_new("cuda", TH_TOPO_XML, "two-numa-two-gpu.xml");
	struct rbee_probe_result r;

	(void)state;
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_int_equal(r.state, RBEE_PROBE_AVAILABLE);
	assert_string_equal(r.reason, "2 GPUs, CUDA 12.4");
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th->call.ndevices, 2);
	assert_gpu(&th->call.devices[1], 1, "NVIDIA H100 80GB HBM3", H100_UUID, "0000:b1:00.0",
		   81559, 80000, 9, 0);
	assert_string_equal(th->call.devices[1].driver_version, "CUDA 12.4");
	assert_int_equal(th->call.devices[1].numa_node, 1);
	th_free(th);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest no_driver[] = {
		cmocka_unit_test(without_driver_is_unavailable),
		cmocka_unit_test(build_env_lists_architectures_of_the_gpus),
		cmocka_unit_test(build_env_builds_in_parallel_unless_the_operator_says_otherwise),
		cmocka_unit_test(build_env_fails_when_cuda_home_has_no_nvcc),
		cmocka_unit_test(build_env_fails_without_any_nvcc),
		cmocka_unit_test(build_env_fails_when_nvcc_cannot_target_a_gpu),
		cmocka_unit_test(build_env_accepts_an_nvcc_that_cannot_list_targets),
		cmocka_unit_test(build_env_fails_without_gpus),
		cmocka_unit_test(spawn_pins_the_gpu_by_uuid_and_binds_its_numa_node),
		cmocka_unit_test(spawn_without_locality_does_not_bind),
		cmocka_unit_test(spawn_refuses_a_gpu_without_uuid),
		cmocka_unit_test(verify_needs_an_identified_gpu_and_a_cuda_worker),
	};
	const struct CMUnitTest fake[] = {
		cmocka_unit_test(fake_probe_reports_gpus_driver_and_cuda),
		cmocka_unit_test(fake_enumerate_reads_both_gpus_in_bus_order_with_numa),
		cmocka_unit_test(fake_enumerate_without_io_topology_leaves_locality_unknown),
		cmocka_unit_test(fake_enumerate_gpu_without_numa_node_is_unknown),
		cmocka_unit_test(fake_build_env_uses_enumerated_capabilities),
		cmocka_unit_test(fake_no_device_is_unavailable),
		cmocka_unit_test(fake_cuinit_failure_is_broken),
		cmocka_unit_test(fake_broken_nvml_falls_back_to_the_cuda_driver),
		cmocka_unit_test(fake_crash_mode_kills_the_probe),
		cmocka_unit_test(fake_hang_mode_blocks_the_probe),
	};
	const struct CMUnitTest no_nvml[] = {
		cmocka_unit_test(no_nvml_reports_cuda_version_and_context_free_memory),
	};
	const char *group = argc > 1 ? argv[1] : "";

	if (strcmp(group, "") == 0)
		return cmocka_run_group_tests_name("cuda backend, no driver", no_driver, NULL, NULL);
	if (strcmp(group, "fake") == 0)
		return cmocka_run_group_tests_name("cuda backend, fake driver", fake, setup_fake, NULL);
	if (strcmp(group, "no-nvml") == 0)
		return cmocka_run_group_tests_name("cuda backend, fake driver without NVML", no_nvml,
						   setup_fake, NULL);
	fprintf(stderr, "usage: %s [fake|no-nvml]\n", argv[0]);
	return 2;
}
