/*
 * test_cpu.c - the cpu backend as the hive loads it: NUMA nodes as devices (synthetic, XML and
 * this machine's topology), the build environment, the spawn plan's binding, and verify.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_host.h"

#define TWO_NODES "pack:2 numa:1(memory=34359738368) core:4 pu:2"
#define GIB (1024ULL * 1024 * 1024)

static void probe_is_available_with_a_topology_summary(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);
	struct rbee_probe_result r;

	(void)state;
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_int_equal(r.state, RBEE_PROBE_AVAILABLE);
	assert_int_equal(r.score, 10);
	assert_non_null(strstr(r.reason, "2 packages, 2 NUMA nodes, 8 cores, 16 PUs"));
	th_free(th);
}

static void probe_without_topology_is_broken(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_NONE, NULL);
	struct rbee_probe_result r;

	(void)state;
	assert_int_equal(th_probe(th, &r), RBEE_OK);
	assert_int_equal(r.state, RBEE_PROBE_BROKEN);
	assert_non_null(strstr(r.reason, "hwloc could not load"));
	assert_int_equal(th_enumerate(th), RBEE_ERR_UNAVAILABLE);
	th_free(th);
}

static void enumerate_gives_one_device_per_numa_node(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);
	const struct rbee_device *d = th->call.devices;

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th->call.ndevices, 2);
	for (unsigned i = 0; i < 2; i++) {
		char id[16];

		snprintf(id, sizeof(id), "CPU-%u", i);
		assert_int_equal(d[i].index, i);
		assert_string_equal(d[i].id, id);
		assert_string_equal(d[i].device_type, "cpu");
		assert_string_equal(d[i].uuid, "");
		assert_string_equal(d[i].pci_bus_id, "");
		assert_int_equal(d[i].numa_node, i);
		assert_int_equal(d[i].cores, 4);
		assert_int_equal(d[i].pus, 8);
		assert_int_equal(d[i].cc_major, -1);
		/* A synthetic topology is not this machine: its memory is all "free". */
		assert_int_equal(d[i].memory_total, 32 * GIB);
		assert_int_equal(d[i].memory_free, 32 * GIB);
	}
	assert_string_equal(d[0].cpuset, "0-7");
	assert_string_equal(d[1].cpuset, "8-15");
	assert_string_equal(d[0].nodeset, "0");
	assert_string_equal(d[1].nodeset, "1");
	th_free(th);
}

static void enumerate_reads_model_and_memory_per_node_from_xml(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_XML, "two-numa-two-gpu.xml");

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th->call.ndevices, 2);
	assert_string_equal(th->call.devices[0].name, "Intel(R) Xeon(R) Platinum 8480+");
	assert_int_equal(th->call.devices[0].memory_total, 64 * GIB);
	assert_int_equal(th->call.devices[1].memory_total, 32 * GIB);
	th_free(th);
}

static void enumerate_this_machine_matches_hwloc(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYSTEM, NULL);
	hwloc_topology_t topo = th->call.topo;
	int nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	char cpuset[256];

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_true(th->call.ndevices >= 1 && (int)th->call.ndevices <= nodes);
	for (size_t i = 0; i < th->call.ndevices; i++) {
		const struct rbee_device *d = &th->call.devices[i];
		hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, d->index);

		assert_non_null(node);
		hwloc_bitmap_list_snprintf(cpuset, sizeof(cpuset), node->cpuset);
		assert_string_equal(d->cpuset, cpuset);
		assert_int_equal(d->numa_node, node->os_index);
		assert_true(d->memory_total > 0);
		assert_true(d->memory_free > 0 && d->memory_free <= d->memory_total);
		assert_true(d->pus >= d->cores && d->pus > 0);
	}
	th_free(th);
}

static void build_env_takes_job_count_from_topology(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);
	struct utsname uts;
	char flags[8192] = "";
	FILE *f = fopen("/proc/cpuinfo", "r");
	const char *features;

	(void)state;
	th_setenv(th, "MAKEFLAGS", NULL); /* the operator's settings win: see below */
	th_setenv(th, "CMAKE_BUILD_PARALLEL_LEVEL", NULL);
	th_setenv(th, "CARGO_BUILD_JOBS", NULL);
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_string_equal(th_env(th, "MAKEFLAGS"), "-j16");
	assert_string_equal(th_env(th, "CMAKE_BUILD_PARALLEL_LEVEL"), "16");
	assert_string_equal(th_env(th, "CARGO_BUILD_JOBS"), "16");
	assert_int_equal(uname(&uts), 0);
	assert_string_equal(th_env(th, "RBEE_ARCH"), uts.machine);
	features = th_env(th, "RBEE_CPU_FEATURES");
	assert_non_null(features);
	/* Every feature named is one the kernel lists for this CPU. */
	while (f && fgets(flags, sizeof(flags), f) && strncmp(flags, "flags", 5) != 0 &&
	       strncmp(flags, "Features", 8) != 0)
		;
	if (f)
		fclose(f);
	for (const char *p = features; *p;) {
		char word[64], padded[80];
		size_t n = strcspn(p, " ");

		snprintf(word, sizeof(word), "%.*s", (int)n, p);
		snprintf(padded, sizeof(padded), " %s", word);
		assert_true(strstr(flags, padded) != NULL);
		p += n + (p[n] == ' ');
	}
	th_free(th);
}

/* An operator who started the hive with a parallelism of their own keeps it (the plugin used
 * to override it), and the narration says so; what they did not set is still the topology's. */
static void build_env_keeps_the_operators_parallelism(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);

	(void)state;
	th_setenv(th, "MAKEFLAGS", "-j3");
	th_setenv(th, "CMAKE_BUILD_PARALLEL_LEVEL", "2");
	th_setenv(th, "CARGO_BUILD_JOBS", NULL);
	assert_int_equal(th_build_env(th), RBEE_OK);
	assert_string_equal(th_env(th, "MAKEFLAGS"), "-j3");
	assert_string_equal(th_env(th, "CMAKE_BUILD_PARALLEL_LEVEL"), "2");
	assert_string_equal(th_env(th, "CARGO_BUILD_JOBS"), "16");
	assert_non_null(strstr(th->call.log, "keeping MAKEFLAGS=\"-j3\" from the hive's "
				 "environment (not -j16)"));
	assert_non_null(strstr(th->call.log, "keeping CMAKE_BUILD_PARALLEL_LEVEL=\"2\""));
	assert_null(strstr(th->call.log, "keeping CARGO_BUILD_JOBS"));
	th_free(th);
}

/* On this machine, a hive bound to fewer CPUs (taskset) builds with as many jobs as it has
 * CPUs. Checked in a child, which binds itself to one CPU. */
static void build_env_counts_the_cpus_the_hive_is_bound_to(void **state)
{
	cpu_set_t all, one;
	int status = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	if (CPU_COUNT(&all) < 2) {
		print_message("bound to one CPU already: skipping\n");
		skip();
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct th *th;
		const char *mk;
		int cpu = 0;

		while (!CPU_ISSET(cpu, &all))
			cpu++;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) != 0)
			_exit(2);
		th = th_new("cpu", TH_TOPO_SYSTEM, NULL);
		th_setenv(th, "MAKEFLAGS", NULL);
		th_setenv(th, "CMAKE_BUILD_PARALLEL_LEVEL", NULL);
		if (th_build_env(th) != RBEE_OK)
			_exit(3);
		mk = th_env(th, "MAKEFLAGS");
		if (!mk || strcmp(mk, "-j1") != 0 ||
		    strcmp(th_env(th, "CMAKE_BUILD_PARALLEL_LEVEL"), "1") != 0) {
			fprintf(stderr, "bound to one CPU, MAKEFLAGS=%s\n", mk ? mk : "(unset)");
			_exit(4);
		}
		th_free(th);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void spawn_binds_to_the_node(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);

	(void)state;
	assert_int_equal(th_enumerate(th), RBEE_OK);
	assert_int_equal(th_spawn(th, 1), RBEE_OK);
	assert_string_equal(th->plan.argv[0], "/opt/worker/bin/worker");
	assert_string_equal(th->plan.argv[2], "/models/model.gguf");
	assert_string_equal(th->plan.cpus, "8-15");
	assert_string_equal(th->plan.nodes, "1");
	assert_string_equal(th_plan_env(th, "OMP_NUM_THREADS"), "4");
	th_free(th);
}

/* A minimal x86-64 ELF file whose GNU property note declares ISA bits `bits` (0: no note). */
static void write_elf(const char *path, uint32_t bits)
{
	unsigned char buf[sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 32] = { 0 };
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	unsigned char *note = buf + sizeof(*eh) + sizeof(*ph);
	const uint32_t hdr[3] = { 4, 16, 5 }, prop[2] = { 0xc0008002u, 4 };
	FILE *f = fopen(path, "wb");

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = bits ? 1 : 0;
	ph->p_type = PT_NOTE;
	ph->p_offset = sizeof(*eh) + sizeof(*ph);
	ph->p_filesz = ph->p_memsz = 32;
	ph->p_align = 8;
	memcpy(note, hdr, sizeof(hdr));
	memcpy(note + 12, "GNU", 4);
	memcpy(note + 16, prop, sizeof(prop));
	memcpy(note + 24, &bits, 4);
	assert_non_null(f);
	assert_int_equal(fwrite(buf, sizeof(buf), 1, f), 1);
	assert_int_equal(fclose(f), 0);
}

static void verify_checks_devices_type_and_isa_level(void **state)
{
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);
	char dir[256], path[512];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/worker", dir);
	assert_int_equal(th_enumerate(th), RBEE_OK);

	write_elf(path, 0);
	assert_int_equal(th_verify(th, path, "cpu"), RBEE_OK);
	assert_true(th_check(th, "cpu devices")->ok);
	assert_true(th_check(th, "worker type")->ok);
	assert_true(th_check(th, "isa level")->ok);
	assert_string_equal(th_check(th, "isa level")->detail, "the binary declares no x86-64 level");

	write_elf(path, 1); /* baseline: every x86-64 CPU */
	assert_int_equal(th_verify(th, path, "cpu"), RBEE_OK);
	assert_true(th_check(th, "isa level")->ok);

#if defined(__x86_64__)
	write_elf(path, 1u << 4); /* a level after v4: unknown, so refused */
	assert_int_equal(th_verify(th, path, "cpu"), RBEE_OK);
	assert_false(th_check(th, "isa level")->ok);
	assert_non_null(strstr(th_check(th, "isa level")->detail, "newer than v4"));
#endif

	assert_int_equal(th_verify(th, path, "cuda"), RBEE_OK);
	assert_false(th_check(th, "worker type")->ok);

	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(th_verify(th, path, "cpu"), RBEE_OK);
	assert_false(th_check(th, "isa level")->ok);
	assert_non_null(strstr(th_check(th, "isa level")->detail, "cannot open"));

	th->call.ndevices = 0;
	assert_int_equal(th_verify(th, "/bin/sh", "cpu"), RBEE_OK);
	assert_false(th_check(th, "cpu devices")->ok);
	th_rmtree(dir);
	th_free(th);
}

/* Compile `source` with `cc flags` into dir/name; 0, or -1 when there is no working cc. */
static int compile(const char *dir, const char *name, const char *flags, const char *source)
{
	char src[512], cmd[2048];

	snprintf(src, sizeof(src), "%s/%s.c", dir, name);
	th_write_file(src, source, 0644);
	snprintf(cmd, sizeof(cmd), "cc %s -o '%s/%s' '%s' 2>/dev/null", flags, dir, name, src);
	return system(cmd) == 0 ? 0 : -1;
}

/* A binary compiled with -mavx2 (not linked with -z x86-64-v3) carries only the baseline note
 * of glibc's start files, yet dies of SIGILL without AVX2: its code is what says avx2. The
 * same program compiled plainly stays baseline. */
static void verify_sees_avx2_code_behind_a_baseline_note(void **state)
{
#if defined(__x86_64__)
	static const char program[] =
		"#include <stdio.h>\n"
		"int a[4096], b[4096], c[4096];\n"
		"int main(int argc, char **argv)\n"
		"{\n"
		"\t(void)argv;\n"
		"\tfor (int i = 0; i < 4096; i++)\n"
		"\t\ta[i] = (b[i] ^ c[i]) * argc + b[i];\n"
		"\tprintf(\"%d\\n\", a[argc]);\n"
		"\treturn 0;\n"
		"}\n";
	struct th *th = th_new("cpu", TH_TOPO_SYNTHETIC, TWO_NODES);
	const struct th_check *c;
	char dir[256], path[512], flags[4096];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	if (compile(dir, "plain", "-O3", program) != 0 ||
	    compile(dir, "avx2", "-O3 -mavx2", program) != 0) {
		th_rmtree(dir);
		th_free(th);
		print_message("no working cc here: skipping\n");
		skip();
	}
	assert_int_equal(th_enumerate(th), RBEE_OK);

	snprintf(path, sizeof(path), "%s/plain", dir);
	assert_int_equal(th_verify(th, path, "cpu"), RBEE_OK);
	c = th_check(th, "isa level");
	assert_true(c->ok);
	assert_null(strstr(c->detail, "avx2"));

	snprintf(path, sizeof(path), "%s/avx2", dir);
	assert_int_equal(th_verify(th, path, "cpu"), RBEE_OK);
	c = th_check(th, "isa level");
	assert_non_null(strstr(c->detail, "needs avx2"));
	assert_non_null(strstr(c->detail, "its code uses AVX2 instructions"));
	assert_non_null(strstr(c->detail, "declares x86-64 baseline"));
	flags[0] = '\0';
	{
		FILE *f = fopen("/proc/cpuinfo", "r");

		while (f && fgets(flags, sizeof(flags), f) && strncmp(flags, "flags", 5) != 0)
			;
		if (f)
			fclose(f);
	}
	/* Refused never: a byte scan cannot tell -mavx2 code from run-time dispatch; the detail
	 * says which case this CPU is in. */
	assert_true(c->ok);
	if (strstr(flags, " avx2"))
		assert_non_null(strstr(c->detail, "this CPU has avx2"));
	else
		assert_non_null(strstr(c->detail, "dies of SIGILL here"));
	th_rmtree(dir);
	th_free(th);
#else
	(void)state;
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probe_is_available_with_a_topology_summary),
		cmocka_unit_test(probe_without_topology_is_broken),
		cmocka_unit_test(enumerate_gives_one_device_per_numa_node),
		cmocka_unit_test(enumerate_reads_model_and_memory_per_node_from_xml),
		cmocka_unit_test(enumerate_this_machine_matches_hwloc),
		cmocka_unit_test(build_env_takes_job_count_from_topology),
		cmocka_unit_test(build_env_keeps_the_operators_parallelism),
		cmocka_unit_test(build_env_counts_the_cpus_the_hive_is_bound_to),
		cmocka_unit_test(spawn_binds_to_the_node),
		cmocka_unit_test(verify_checks_devices_type_and_isa_level),
		cmocka_unit_test(verify_sees_avx2_code_behind_a_baseline_note),
	};

	return cmocka_run_group_tests_name("cpu backend", tests, NULL, NULL);
}
