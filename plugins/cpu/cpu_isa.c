/*
 * cpu_isa.c - does this CPU run a given x86-64 binary? A binary linked with
 * `-z x86-64-v3` (or built by a compiler that records it) carries a GNU property note with the
 * micro-architecture level it needs, and glibc refuses to start it on a CPU below that level.
 * Reading the note lets verify say so before a worker is spawned.
 *
 * The note is not enough: a binary compiled with -mavx2 or -march=native, but not linked with
 * `-z x86-64-v3`, still carries the baseline note of glibc's start files (the linker ORs the
 * notes of its objects, and the compiler writes none), and dies of SIGILL on a CPU without AVX2.
 * So the executable segments are also scanned for AVX2 code: VEX-encoded 256-bit integer
 * instructions (vpaddd ymm, vpxor ymm, vpmulld ymm...) together with the vzeroupper that
 * compilers put after every use of ymm registers. Both together do not occur by chance in
 * plain code (a byte scan, not a disassembly, so it asks for several hits).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_internal.h"

#ifndef PT_GNU_PROPERTY
#define PT_GNU_PROPERTY 0x6474e553
#endif
#ifndef NT_GNU_PROPERTY_TYPE_0
#define NT_GNU_PROPERTY_TYPE_0 5
#endif
#define ISA_1_NEEDED 0xc0008002u /* GNU_PROPERTY_X86_ISA_1_NEEDED (binutils 2.35+) */
#define MAX_NOTE_BYTES 65536
#define MAX_PHDRS 512
#define SCAN_CHUNK (1u << 20)
#define SCAN_MAX_BYTES (1ull << 30) /* executable bytes scanned at most */
#define AVX2_MIN_HITS 2

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The needed ISA bits in one NT_GNU_PROPERTY_TYPE_0 descriptor, 0 if absent. */
static uint32_t property_bits(const unsigned char *desc, size_t size)
{
	size_t off = 0;

	while (off + 8 <= size) {
		uint32_t type, datasz;

		memcpy(&type, desc + off, 4);
		memcpy(&datasz, desc + off + 4, 4);
		off += 8;
		if (datasz > size - off)
			return 0;
		if (type == ISA_1_NEEDED && datasz == 4) {
			uint32_t bits;

			memcpy(&bits, desc + off, 4);
			return bits;
		}
		off = align_up(off + datasz, 8);
	}
	return 0;
}

/* Walk the notes of one segment; return the needed ISA bits, 0 if none. */
static uint32_t notes_bits(const unsigned char *buf, size_t size, size_t align)
{
	size_t off = 0;

	while (off + 12 <= size) {
		Elf64_Nhdr n;
		size_t desc;

		memcpy(&n, buf + off, sizeof(n));
		desc = align_up(off + 12 + n.n_namesz, align);
		if (n.n_namesz > size || desc > size || n.n_descsz > size - desc)
			return 0;
		if (n.n_type == NT_GNU_PROPERTY_TYPE_0 && n.n_namesz == 4 &&
		    memcmp(buf + off + 12, "GNU", 4) == 0)
			return property_bits(buf + desc, n.n_descsz);
		off = align_up(desc + n.n_descsz, align);
	}
	return 0;
}

/* Read `size` bytes at `off`; 0 or -1. */
static int read_at(int fd, void *buf, size_t size, off_t off)
{
	ssize_t n = pread(fd, buf, size, off);

	return n == (ssize_t)size ? 0 : -1;
}

/* Needed ISA bits of an open x86-64 ELF file from its note segments; -1 on a read error. */
static int64_t elf_bits(int fd, const Elf64_Ehdr *eh)
{
	unsigned char *buf;
	uint32_t bits = 0;

	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum > MAX_PHDRS)
		return -1;
	for (unsigned i = 0; i < eh->e_phnum && bits == 0; i++) {
		Elf64_Phdr ph;

		if (read_at(fd, &ph, sizeof(ph), (off_t)(eh->e_phoff + i * sizeof(ph))))
			return -1;
		if ((ph.p_type != PT_NOTE && ph.p_type != PT_GNU_PROPERTY) ||
		    ph.p_filesz > MAX_NOTE_BYTES || ph.p_filesz < 12)
			continue;
		buf = malloc(ph.p_filesz);
		if (!buf)
			return -1;
		if (read_at(fd, buf, ph.p_filesz, (off_t)ph.p_offset) == 0)
			bits = notes_bits(buf, ph.p_filesz, ph.p_align == 8 ? 8 : 4);
		free(buf);
	}
	return bits;
}

/* Is `op` of opcode map 0F, with VEX.256 and prefix 66, an AVX2 integer instruction on ymm
 * registers (the same opcode on xmm is SSE2/AVX; on ymm it needs AVX2)? Moves (6E/6F/7E/7F,
 * E7), conversions (E6) and the float ops of the map are AVX and excluded. */
static int avx2_op_0f(unsigned char op)
{
	return (op >= 0x60 && op <= 0x6d) || (op >= 0x74 && op <= 0x76) ||
	       (op >= 0xd1 && op <= 0xd5) || (op >= 0xd8 && op <= 0xdf) ||
	       (op >= 0xe0 && op <= 0xe5) || (op >= 0xe8 && op <= 0xef) ||
	       (op >= 0xf1 && op <= 0xf6) || (op >= 0xf8 && op <= 0xfe);
}

/* The same for map 0F38: vpshufb, vpsign, vpabs, vpmovsx/zx, vpmuldq, vpcmpeqq, vpackusdw,
 * vpcmpgtq, vpmin/max, vpmulld, vpsrlv/vpsllv, vpbroadcast, vpmaskmov. */
static int avx2_op_0f38(unsigned char op)
{
	return op <= 0x0b || (op >= 0x1c && op <= 0x1e) || (op >= 0x20 && op <= 0x25) ||
	       (op >= 0x28 && op <= 0x2b) || (op >= 0x30 && op <= 0x35) ||
	       (op >= 0x37 && op <= 0x40) || (op >= 0x45 && op <= 0x47) || op == 0x58 ||
	       op == 0x59 || op == 0x78 || op == 0x79 || op == 0x8c || op == 0x8e;
}

/* Count AVX2 instructions and vzerouppers starting in buf[0..n) (buf holds 4 more bytes). */
static void scan_code(const unsigned char *b, size_t n, uint64_t *avx2, uint64_t *vzu)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] == 0xc5) {
			/* 2-byte VEX: R vvvv L pp, map 0F. */
			if (b[i + 1] == 0xf8 && b[i + 2] == 0x77)
				(*vzu)++;
			else if ((b[i + 1] & 0x07) == 0x05 && avx2_op_0f(b[i + 2]))
				(*avx2)++;
		} else if (b[i] == 0xc4 && (b[i + 2] & 0x07) == 0x05) {
			/* 3-byte VEX: R X B map, W vvvv L pp. */
			unsigned map = b[i + 1] & 0x1f;

			if ((map == 1 && avx2_op_0f(b[i + 3])) || (map == 2 && avx2_op_0f38(b[i + 3])))
				(*avx2)++;
		}
	}
}

/* Does the code of an open x86-64 ELF file use AVX2? 1, 0, or -1 on a read error. */
static int elf_uses_avx2(int fd, const Elf64_Ehdr *eh)
{
	uint64_t avx2 = 0, vzu = 0, budget = SCAN_MAX_BYTES;
	unsigned char *buf = malloc(SCAN_CHUNK + 4);
	int rc = 0;

	if (!buf)
		return -1;
	for (unsigned i = 0; i < eh->e_phnum && rc == 0; i++) {
		Elf64_Phdr ph;

		if (read_at(fd, &ph, sizeof(ph), (off_t)(eh->e_phoff + i * sizeof(ph)))) {
			rc = -1;
			break;
		}
		if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		for (uint64_t off = 0; off < ph.p_filesz && budget > 0 &&
				       !(avx2 >= AVX2_MIN_HITS && vzu > 0);) {
			uint64_t left = ph.p_filesz - off;
			size_t n = left < SCAN_CHUNK ? (size_t)left : SCAN_CHUNK;
			ssize_t got;

			if (n > budget)
				n = (size_t)budget;
			memset(buf + n, 0, 4);
			got = pread(fd, buf, n + (left > n ? 4 : 0), (off_t)(ph.p_offset + off));
			if (got < (ssize_t)n) {
				rc = -1;
				break;
			}
			scan_code(buf, n, &avx2, &vzu);
			off += n;
			budget -= n;
		}
	}
	free(buf);
	if (rc < 0)
		return -1;
	return avx2 >= AVX2_MIN_HITS && vzu > 0;
}

int cpu_elf_isa_level(const char *path, int *level, int *avx2, char *why, size_t whylen)
{
	Elf64_Ehdr eh;
	int64_t bits;
	int fd = open(path, O_RDONLY | O_CLOEXEC), uses;

	*level = 0;
	*avx2 = 0;
	if (fd < 0) {
		snprintf(why, whylen, "cannot open \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64) {
		close(fd); /* not an x86-64 ELF: no level to check */
		return 0;
	}
	bits = elf_bits(fd, &eh);
	uses = bits < 0 ? 0 : elf_uses_avx2(fd, &eh);
	close(fd);
	if (uses < 0) {
		snprintf(why, whylen, "\"%s\" is a damaged ELF file (its code cannot be read)", path);
		return -1;
	}
	*avx2 = uses;
	if (bits < 0) {
		snprintf(why, whylen, "\"%s\" is a damaged ELF file (program headers unreadable)", path);
		return -1;
	}
	for (int b = 31; b >= 0; b--) {
		if (bits & (1u << b)) {
			*level = b + 1;
			break;
		}
	}
	return 0;
}

int cpu_isa_level(const char *flags, const char **missing)
{
	/* The x86-64 psABI levels, as glibc checks them. */
	static const char *const levels[3][10] = {
		{ "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3", NULL },
		{ "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave", NULL },
		{ "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", NULL },
	};
	int level = 1;

	if (missing)
		*missing = NULL;
	if (!cpu_has_flag(flags, "sse2"))
		return 0;
	for (int l = 0; l < 3; l++) {
		for (int i = 0; levels[l][i]; i++) {
			if (!cpu_has_flag(flags, levels[l][i])) {
				if (missing)
					*missing = levels[l][i];
				return level;
			}
		}
		level++;
	}
	return level;
}
