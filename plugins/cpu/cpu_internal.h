/*
 * cpu_internal.h - the cpu plugin's private interfaces: what the kernel says about this
 * machine's CPUs and memory (cpu_info.c) and the x86-64 ISA level a binary needs (cpu_isa.c).
 * cpu.c holds the backend operations.
 */
#ifndef RBEE_CPU_INTERNAL_H
#define RBEE_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The ISA flag list of /proc/cpuinfo ("flags" on x86, "Features" on arm), space-separated,
 * into buf. Returns 0, or -1 when it cannot be read (buf is then ""). */
int cpu_flags(char *buf, size_t len);

/* Does the space-separated flag list contain `flag` as a whole word? */
int cpu_has_flag(const char *flags, const char *flag);

/* The flags of `flags` that matter to inference builds (avx2, avx512f, amx_tile, sve...), in a
 * fixed order, space-separated, into out. */
void cpu_flags_of_interest(const char *flags, char *out, size_t len);

/* "model name" of /proc/cpuinfo into buf; -1 when there is none (e.g. most arm64 kernels). */
int cpu_model_name(char *buf, size_t len);

/* Memory of NUMA node `os_index` from /sys/devices/system/node/nodeN/meminfo: total, and what
 * is free or quickly reclaimable (MemFree + file-backed page cache + reclaimable slab, the
 * node-local counterpart of MemAvailable). Returns 0 or -1. */
int cpu_node_memory(unsigned os_index, uint64_t *total, uint64_t *available);

/* The x86-64 micro-architecture level an ELF binary declares it needs (its
 * GNU_PROPERTY_X86_ISA_1_NEEDED note; glibc refuses to load it on a lesser CPU), and in *avx2
 * whether its executable code uses AVX2 instructions whatever the note says (1 or 0).
 * Returns 0 with *level = 0 (not declared or not an x86-64 binary), 1 (baseline), 2, 3 or 4
 * (x86-64-v2..v4), or 5 and up for a level newer than this code knows; -1 when the file cannot
 * be read, with `why` set. */
int cpu_elf_isa_level(const char *path, int *level, int *avx2, char *why, size_t whylen);

/* The highest x86-64 level (1..4) the flags satisfy; 0 when not x86 flags. Names the first
 * missing flag of the next level in `missing` (when not NULL). */
int cpu_isa_level(const char *flags, const char **missing);

#endif
