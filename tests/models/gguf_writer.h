/*
 * gguf_writer.h - builds small GGUF files in memory for the model catalog's tests.
 *
 * Only what the tests need: the header, string / integer / array metadata, tensor infos.
 * The counts in the header are patched by gw_finish(), so a test can also lie about them.
 */
#ifndef GGUF_WRITER_H
#define GGUF_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rb_buf.h"

struct gw {
	struct rb_buf b;
	uint64_t n_kv, n_tensors;
};

static inline void gw_u32(struct gw *w, uint32_t v)
{
	unsigned char x[4] = { v, v >> 8, v >> 16, v >> 24 };
	rb_buf_add(&w->b, x, 4);
}

static inline void gw_u64(struct gw *w, uint64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	rb_buf_add(&w->b, x, 8);
}

static inline void gw_str(struct gw *w, const char *s)
{
	gw_u64(w, strlen(s));
	rb_buf_adds(&w->b, s);
}

static inline void gw_begin(struct gw *w, uint32_t version)
{
	rb_buf_init(&w->b);
	w->n_kv = w->n_tensors = 0;
	rb_buf_add(&w->b, "GGUF", 4);
	gw_u32(w, version);
	gw_u64(w, 0); /* tensor count, patched */
	gw_u64(w, 0); /* kv count, patched */
}

static inline void gw_kv_str(struct gw *w, const char *key, const char *val)
{
	gw_str(w, key);
	gw_u32(w, 8);
	gw_str(w, val);
	w->n_kv++;
}

static inline void gw_kv_u32(struct gw *w, const char *key, uint32_t val)
{
	gw_str(w, key);
	gw_u32(w, 4);
	gw_u32(w, val);
	w->n_kv++;
}

static inline void gw_kv_u64(struct gw *w, const char *key, uint64_t val)
{
	gw_str(w, key);
	gw_u32(w, 10);
	gw_u64(w, val);
	w->n_kv++;
}

static inline void gw_kv_f32(struct gw *w, const char *key, float val)
{
	uint32_t bits;
	memcpy(&bits, &val, 4);
	gw_str(w, key);
	gw_u32(w, 6);
	gw_u32(w, bits);
	w->n_kv++;
}

/* An array of `n` strings "tok0", "tok1", ... */
static inline void gw_kv_str_array(struct gw *w, const char *key, uint64_t n)
{
	char s[32];
	gw_str(w, key);
	gw_u32(w, 9);
	gw_u32(w, 8);
	gw_u64(w, n);
	for (uint64_t i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "tok%llu", (unsigned long long)i);
		gw_str(w, s);
	}
	w->n_kv++;
}

/* An array of `n` int32 values. */
static inline void gw_kv_i32_array(struct gw *w, const char *key, uint64_t n)
{
	gw_str(w, key);
	gw_u32(w, 9);
	gw_u32(w, 5);
	gw_u64(w, n);
	for (uint64_t i = 0; i < n; i++)
		gw_u32(w, (uint32_t)i);
	w->n_kv++;
}

static inline void gw_tensor(struct gw *w, const char *name, uint32_t n_dims,
			     const uint64_t *dims)
{
	gw_str(w, name);
	gw_u32(w, n_dims);
	for (uint32_t i = 0; i < n_dims; i++)
		gw_u64(w, dims[i]);
	gw_u32(w, 0);  /* F32 */
	gw_u64(w, 0);  /* offset */
	w->n_tensors++;
}

/* Patch the counts into the header. */
static inline void gw_finish(struct gw *w)
{
	for (int i = 0; i < 8; i++) {
		w->b.data[8 + i] = (char)(w->n_tensors >> (8 * i));
		w->b.data[16 + i] = (char)(w->n_kv >> (8 * i));
	}
}

/* The standard test model: llama, Q4_K_M, context 4096, 2 tensors of 32 + 8 elements. */
static inline void gw_tiny_model(struct gw *w)
{
	uint64_t d1[2] = { 4, 8 }, d2[1] = { 8 };
	gw_begin(w, 3);
	gw_kv_str(w, "general.architecture", "llama");
	gw_kv_str(w, "general.name", "Tiny Llama");
	gw_kv_u32(w, "general.file_type", 15);
	gw_kv_u32(w, "llama.context_length", 4096);
	gw_kv_f32(w, "llama.rope.freq_base", 10000.0f);
	gw_kv_str_array(w, "tokenizer.ggml.tokens", 50);
	gw_kv_i32_array(w, "tokenizer.ggml.token_type", 50);
	gw_tensor(w, "token_embd.weight", 2, d1);
	gw_tensor(w, "output_norm.weight", 1, d2);
	gw_finish(w);
}

#endif
