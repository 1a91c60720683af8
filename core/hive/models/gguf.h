/*
 * gguf.h - reads the facts an operator cares about from a GGUF model file's header.
 *
 * GGUF (llama.cpp's format): "GGUF", version (2 or 3; 1 is refused), tensor count, metadata
 * key/value count, the key/value pairs, then one info record per tensor. The reader walks all
 * of it with a bounds check on every length against the bytes the file really has, so a
 * truncated or hostile file is an error and never a crash or a huge allocation. It allocates
 * nothing that depends on the file's contents.
 */
#ifndef RB_GGUF_H
#define RB_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "rb_err.h"

struct rb_gguf_facts {
	uint32_t version;
	uint64_t tensor_count;
	uint64_t kv_count;
	char architecture[64];    /* general.architecture, "" when absent */
	char name[128];           /* general.name, "" when absent */
	char size_label[32];      /* general.size_label ("7B"), "" when absent */
	/* general.parameter_count, else the sum over the tensor infos' element counts; 0 when
	 * neither is known. */
	uint64_t parameter_count;
	int64_t file_type;        /* general.file_type (llama_ftype), -1 when absent */
	char quantization[32];    /* file_type as a name ("Q4_K_M"), "" when absent */
	uint64_t context_length;  /* <architecture>.context_length, 0 when absent */
};

/* Read the header of the GGUF file at `path`. RB_EINVAL when it is not GGUF or is damaged
 * (the message says what is wrong and at which offset), RB_EIO / RB_ENOTFOUND for the file. */
int rb_gguf_read(const char *path, struct rb_gguf_facts *out, struct rb_err *err);
/* The same over bytes in memory (used by tests and anything that already holds the header). */
int rb_gguf_parse(const void *data, size_t len, struct rb_gguf_facts *out, struct rb_err *err);

/* llama.cpp's name for a general.file_type value ("Q4_K_M", "F16"), or NULL when unknown. */
const char *rb_gguf_file_type_name(int64_t file_type);

#endif
