/*
 * cpu_isa.c - does this CPU run a given x86-64 binary? A binary linked with
 * `-z x86-64-v3` (or built by a compiler that records it) carries a GNU property note with the
 * micro-architecture level it needs, and glibc refuses to start it on a CPU below that level.
 * Reading the note lets verify say so before a worker is spawned.
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

int cpu_elf_isa_level(const char *path, int *level, char *why, size_t whylen)
{
	Elf64_Ehdr eh;
	int64_t bits;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*level = 0;
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
	close(fd);
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
