/*
 * fuzz_gguf.c - the GGUF header reader (core/hive/models/gguf.c) over hostile model files.
 *
 * The reader promises a bounds check on every length and no allocation that depends on the
 * file: any input is either facts or RB_EINVAL with a message, never a crash, and the facts'
 * strings are always terminated within their arrays. The same bytes are also read as a file
 * (rb_gguf_read, through its 64 KiB pread window, from a memfd) and must give the same answer.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "models/gguf.h"

static int memfd = -1;
static char memfd_path[64];

static void check_str(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		abort();
}

static void check_facts(const struct rb_gguf_facts *f)
{
	check_str(f->architecture, sizeof(f->architecture));
	check_str(f->name, sizeof(f->name));
	check_str(f->size_label, sizeof(f->size_label));
	check_str(f->quantization, sizeof(f->quantization));
	if (f->version < 2 || f->version > 3)
		abort();
	(void)rb_gguf_file_type_name(f->file_type);
}

static bool same_facts(const struct rb_gguf_facts *a, const struct rb_gguf_facts *b)
{
	return a->version == b->version && a->tensor_count == b->tensor_count &&
	       a->kv_count == b->kv_count && !strcmp(a->architecture, b->architecture) &&
	       !strcmp(a->name, b->name) && !strcmp(a->size_label, b->size_label) &&
	       a->parameter_count == b->parameter_count && a->file_type == b->file_type &&
	       !strcmp(a->quantization, b->quantization) && a->context_length == b->context_length;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rb_gguf_facts f, g;
	struct rb_err err = RB_ERR_INIT, ferr = RB_ERR_INIT;
	int rc = rb_gguf_parse(data, size, &f, &err);
	if (rc == 0)
		check_facts(&f);
	else if (rc != -RB_EINVAL || !err.msg[0])
		abort(); /* bytes in memory can only be damaged, and the message must say how */

	if (memfd < 0) {
		memfd = memfd_create("fuzz-gguf", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
		snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) != 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();
	int frc = rb_gguf_read(memfd_path, &g, &ferr);
	if (frc != rc || (rc == 0 && !same_facts(&f, &g)))
		abort(); /* the file reader and the buffer reader disagree */
	return 0;
}
