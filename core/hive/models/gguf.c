/*
 * gguf.c - the GGUF header reader (see gguf.h).
 *
 * A `struct src` is the file (read through one fixed window with pread) or a buffer. Every read
 * and skip is checked against the bytes that remain, and every count is checked against the
 * smallest size its items could have before anything loops over it, so a corrupt count fails
 * at once instead of spinning or allocating.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NESTING 3
#define GGUF_KEY_MAX 256
#define GGUF_CTX_CANDIDATES 4

enum gguf_type {
	T_UINT8 = 0, T_INT8 = 1, T_UINT16 = 2, T_INT16 = 3, T_UINT32 = 4, T_INT32 = 5,
	T_FLOAT32 = 6, T_BOOL = 7, T_STRING = 8, T_ARRAY = 9, T_UINT64 = 10, T_INT64 = 11,
	T_FLOAT64 = 12,
};

struct src {
	int fd;                 /* -1 for a buffer */
	const uint8_t *mem;
	uint64_t size;
	uint64_t pos;
	uint8_t win[65536];     /* the file's bytes [win_off, win_off + win_len) */
	uint64_t win_off;
	size_t win_len;
	struct rb_err *err;
	const char *what;       /* for messages: the path */
};

/* "<arch>.context_length" values seen before general.architecture may be known. */
struct ctx_candidate {
	char arch[64];
	uint64_t value;
};

struct parse {
	struct src *s;
	struct rb_gguf_facts *f;
	struct ctx_candidate ctx[GGUF_CTX_CANDIDATES];
	int n_ctx;
	bool have_param_count;
};

static int damaged(struct src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int damaged(struct src *s, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return rb_err_set(s->err, RB_EINVAL, "'%s' is not a valid GGUF file: %s", s->what, why);
}

static uint64_t remaining(const struct src *s)
{
	return s->size - s->pos;
}

static int need(struct src *s, uint64_t n, const char *field)
{
	if (n > remaining(s))
		return damaged(s, "truncated at offset %" PRIu64 " reading %s (%" PRIu64
			       " bytes needed, %" PRIu64 " left)", s->pos, field, n, remaining(s));
	return 0;
}

static int fill_window(struct src *s, size_t n)
{
	size_t want = remaining(s) < sizeof(s->win) ? (size_t)remaining(s) : sizeof(s->win);
	size_t got = 0;
	while (got < want) {
		ssize_t r = pread(s->fd, s->win + got, want - got, (off_t)(s->pos + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rb_err_set(s->err, RB_EIO, "cannot read '%s': %s", s->what, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	s->win_off = s->pos;
	s->win_len = got;
	if (got < n)
		return damaged(s, "file shrank while reading at offset %" PRIu64, s->pos);
	return 0;
}

static int src_read(struct src *s, void *dst, size_t n, const char *field)
{
	int rc = need(s, n, field);
	if (rc)
		return rc;
	if (s->fd < 0) {
		memcpy(dst, s->mem + s->pos, n);
	} else {
		if (n > sizeof(s->win))
			return rb_err_set(s->err, RB_EINTERNAL, "gguf read of %zu bytes", n);
		if (s->pos < s->win_off || s->pos + n > s->win_off + s->win_len) {
			rc = fill_window(s, n);
			if (rc)
				return rc;
		}
		memcpy(dst, s->win + (s->pos - s->win_off), n);
	}
	s->pos += n;
	return 0;
}

static int src_skip(struct src *s, uint64_t n, const char *field)
{
	int rc = need(s, n, field);
	if (!rc)
		s->pos += n;
	return rc;
}

static int rd_u32(struct src *s, uint32_t *v, const char *field)
{
	uint8_t b[4];
	int rc = src_read(s, b, 4, field);
	if (!rc)
		*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return rc;
}

static int rd_u64(struct src *s, uint64_t *v, const char *field)
{
	uint8_t b[8];
	int rc = src_read(s, b, 8, field);
	if (!rc) {
		*v = 0;
		for (int i = 7; i >= 0; i--)
			*v = *v << 8 | b[i];
	}
	return rc;
}

/* A GGUF string: u64 length + bytes. Keeps at most cap-1 bytes in dst (NULL: skip it all). */
static int rd_string(struct src *s, char *dst, size_t cap, const char *field)
{
	uint64_t len;
	int rc = rd_u64(s, &len, field);
	if (rc)
		return rc;
	rc = need(s, len, field);
	if (rc || !dst)
		return rc ? rc : src_skip(s, len, field);
	size_t keep = len < cap - 1 ? (size_t)len : cap - 1;
	rc = src_read(s, dst, keep, field);
	dst[rc ? 0 : keep] = '\0';
	return rc ? rc : src_skip(s, len - keep, field);
}

static uint64_t scalar_size(uint32_t type)
{
	switch (type) {
	case T_UINT8: case T_INT8: case T_BOOL: return 1;
	case T_UINT16: case T_INT16: return 2;
	case T_UINT32: case T_INT32: case T_FLOAT32: return 4;
	case T_UINT64: case T_INT64: case T_FLOAT64: return 8;
	default: return 0;
	}
}

static bool is_integer(uint32_t type)
{
	return type != T_FLOAT32 && type != T_FLOAT64 && type != T_BOOL && scalar_size(type);
}

/* An integer value of any width and sign; negative values read as not-a-count (*ok false). */
static int rd_integer(struct src *s, uint32_t type, uint64_t *v, bool *ok, const char *field)
{
	uint8_t b[8] = { 0 };
	uint64_t n = scalar_size(type);
	int rc = src_read(s, b, (size_t)n, field);
	if (rc)
		return rc;
	*v = 0;
	for (int i = (int)n - 1; i >= 0; i--)
		*v = *v << 8 | b[i];
	bool is_signed = type == T_INT8 || type == T_INT16 || type == T_INT32 || type == T_INT64;
	*ok = !(is_signed && (b[n - 1] & 0x80));
	return 0;
}

static int skip_value(struct src *s, uint32_t type, int depth, const char *key);

static int skip_array(struct src *s, int depth, const char *key)
{
	uint32_t et;
	uint64_t count;
	int rc = rd_u32(s, &et, "array type");
	if (!rc)
		rc = rd_u64(s, &count, "array length");
	if (rc)
		return rc;
	uint64_t sz = scalar_size(et);
	if (sz) {
		if (count > remaining(s) / sz)
			return damaged(s, "array '%s' claims %" PRIu64 " items of %" PRIu64
				       " bytes, more than the %" PRIu64 " bytes left", key, count, sz,
				       remaining(s));
		return src_skip(s, count * sz, key);
	}
	if (et != T_STRING && et != T_ARRAY)
		return damaged(s, "array '%s' has unknown item type %" PRIu32, key, et);
	if (depth >= GGUF_MAX_NESTING)
		return damaged(s, "array '%s' is nested more than %d deep", key, GGUF_MAX_NESTING);
	/* Smallest item: a string is its 8-byte length; an array its 12-byte header. */
	uint64_t min_item = et == T_STRING ? 8 : 12;
	if (count > remaining(s) / min_item)
		return damaged(s, "array '%s' claims %" PRIu64 " items, more than the %" PRIu64
			       " bytes left can hold", key, count, remaining(s));
	for (uint64_t i = 0; i < count; i++) {
		rc = skip_value(s, et, depth + 1, key);
		if (rc)
			return rc;
	}
	return 0;
}

static int skip_value(struct src *s, uint32_t type, int depth, const char *key)
{
	if (scalar_size(type))
		return src_skip(s, scalar_size(type), key);
	if (type == T_STRING)
		return rd_string(s, NULL, 0, key);
	if (type == T_ARRAY)
		return skip_array(s, depth, key);
	return damaged(s, "key '%s' has unknown value type %" PRIu32 " at offset %" PRIu64, key,
		       type, s->pos - 4);
}

/* Where a string value of interest goes, or NULL. */
static char *string_slot(struct rb_gguf_facts *f, const char *key, size_t *cap)
{
	struct { const char *key; char *dst; size_t cap; } slots[] = {
		{ "general.architecture", f->architecture, sizeof(f->architecture) },
		{ "general.name", f->name, sizeof(f->name) },
		{ "general.size_label", f->size_label, sizeof(f->size_label) },
	};
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		if (!strcmp(key, slots[i].key)) {
			*cap = slots[i].cap;
			return slots[i].dst;
		}
	}
	return NULL;
}

static void take_integer(struct parse *p, const char *key, uint64_t v)
{
	static const char ctx_suffix[] = ".context_length";
	size_t klen = strlen(key), slen = sizeof(ctx_suffix) - 1;
	if (!strcmp(key, "general.parameter_count")) {
		p->f->parameter_count = v;
		p->have_param_count = true;
	} else if (!strcmp(key, "general.file_type")) {
		p->f->file_type = v > INT32_MAX ? -1 : (int64_t)v;
	} else if (klen > slen && klen - slen < sizeof(p->ctx[0].arch) &&
		   !strcmp(key + klen - slen, ctx_suffix) && p->n_ctx < GGUF_CTX_CANDIDATES) {
		struct ctx_candidate *c = &p->ctx[p->n_ctx++];
		memcpy(c->arch, key, klen - slen);
		c->arch[klen - slen] = '\0';
		c->value = v;
	}
}

static int read_kv(struct parse *p, uint64_t index)
{
	struct src *s = p->s;
	char key[GGUF_KEY_MAX];
	uint64_t klen;
	uint32_t type;
	int rc = rd_u64(s, &klen, "key length");
	if (!rc && klen == 0)
		return damaged(s, "metadata key %" PRIu64 " is empty", index);
	if (!rc)
		rc = need(s, klen, "key");
	if (rc)
		return rc;
	if (klen < sizeof(key)) {
		rc = src_read(s, key, (size_t)klen, "key");
		key[rc ? 0 : klen] = '\0';
	} else {
		strcpy(key, "(long key)"); /* none of ours: skip it */
		rc = src_skip(s, klen, "key");
	}
	if (!rc)
		rc = rd_u32(s, &type, "value type");
	if (rc)
		return rc;
	size_t cap;
	char *slot = type == T_STRING ? string_slot(p->f, key, &cap) : NULL;
	if (slot)
		return rd_string(s, slot, cap, key);
	if (is_integer(type)) {
		uint64_t v;
		bool ok;
		rc = rd_integer(s, type, &v, &ok, key);
		if (!rc && ok)
			take_integer(p, key, v);
		return rc;
	}
	return skip_value(s, type, 0, key);
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

/* Tensor infos: name, n_dims, dims, type, offset. Sums their element counts into *params. */
static int read_tensor_infos(struct src *s, uint64_t count, uint64_t *params)
{
	/* Smallest tensor info: 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset). */
	if (count > remaining(s) / 24)
		return damaged(s, "%" PRIu64 " tensors cannot fit in the %" PRIu64 " bytes left", count,
			       remaining(s));
	uint64_t sum = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t n_dims, type;
		uint64_t elems = 1, dim, offset;
		int rc = rd_string(s, NULL, 0, "tensor name");
		if (!rc)
			rc = rd_u32(s, &n_dims, "tensor dimension count");
		if (rc)
			return rc;
		if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
			return damaged(s, "tensor %" PRIu64 " has %" PRIu32 " dimensions (1 to %d allowed)",
				       i, n_dims, GGUF_MAX_DIMS);
		for (uint32_t d = 0; d < n_dims; d++) {
			rc = rd_u64(s, &dim, "tensor dimension");
			if (rc)
				return rc;
			if (mul_overflows(elems, dim, &elems))
				return damaged(s, "tensor %" PRIu64 " has an impossible size", i);
		}
		rc = rd_u32(s, &type, "tensor type");
		if (!rc)
			rc = rd_u64(s, &offset, "tensor offset");
		if (rc)
			return rc;
		if (__builtin_add_overflow(sum, elems, &sum))
			return damaged(s, "the tensors' sizes overflow");
	}
	*params = sum;
	return 0;
}

static int parse_header(struct parse *p)
{
	struct src *s = p->s;
	struct rb_gguf_facts *f = p->f;
	char magic[4];
	int rc = src_read(s, magic, 4, "magic");
	if (rc)
		return rc;
	if (memcmp(magic, "GGUF", 4))
		return damaged(s, "it does not start with \"GGUF\"");
	rc = rd_u32(s, &f->version, "version");
	if (rc)
		return rc;
	if (f->version == 1)
		return damaged(s, "GGUF version 1 is obsolete; convert the model again with a current "
			       "llama.cpp");
	if (f->version < 2 || f->version > 3)
		return damaged(s, "unsupported GGUF version %" PRIu32 " (2 and 3 are supported)",
			       f->version);
	rc = rd_u64(s, &f->tensor_count, "tensor count");
	if (!rc)
		rc = rd_u64(s, &f->kv_count, "metadata count");
	if (rc)
		return rc;
	/* Smallest pair: 8 (key length) + 1 (key) + 4 (type) + 1 (value). */
	if (f->kv_count > remaining(s) / 14)
		return damaged(s, "%" PRIu64 " metadata pairs cannot fit in the %" PRIu64 " bytes left",
			       f->kv_count, remaining(s));
	return 0;
}

static int parse(struct src *s, struct rb_gguf_facts *f)
{
	struct parse p = { .s = s, .f = f };
	memset(f, 0, sizeof(*f));
	f->file_type = -1;
	int rc = parse_header(&p);
	for (uint64_t i = 0; !rc && i < f->kv_count; i++)
		rc = read_kv(&p, i);
	uint64_t params = 0;
	if (!rc)
		rc = read_tensor_infos(s, f->tensor_count, &params);
	if (rc) {
		memset(f, 0, sizeof(*f));
		f->file_type = -1;
		return rc;
	}
	if (!p.have_param_count)
		f->parameter_count = params;
	for (int i = 0; i < p.n_ctx; i++)
		if (!strcmp(p.ctx[i].arch, f->architecture))
			f->context_length = p.ctx[i].value;
	const char *qn = rb_gguf_file_type_name(f->file_type);
	if (qn)
		snprintf(f->quantization, sizeof(f->quantization), "%s", qn);
	else if (f->file_type >= 0)
		snprintf(f->quantization, sizeof(f->quantization), "type %" PRId64, f->file_type);
	return 0;
}

int rb_gguf_parse(const void *data, size_t len, struct rb_gguf_facts *out, struct rb_err *err)
{
	static const struct src zero;
	struct src *s = malloc(sizeof(*s)); /* the window makes it too big for some stacks */
	if (!s)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	*s = zero;
	s->fd = -1;
	s->mem = data;
	s->size = len;
	s->err = err;
	s->what = "(buffer)";
	int rc = parse(s, out);
	free(s);
	return rc;
}

int rb_gguf_read(const char *path, struct rb_gguf_facts *out, struct rb_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO, "cannot open '%s': %s",
				  path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return rb_err_set(err, RB_EIO, "'%s' is not a regular file", path);
	}
	struct src *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	}
	s->fd = fd;
	s->size = (uint64_t)st.st_size;
	s->err = err;
	s->what = path;
	int rc = parse(s, out);
	free(s);
	close(fd);
	return rc;
}

const char *rb_gguf_file_type_name(int64_t file_type)
{
	/* llama.h's enum llama_ftype; the gaps are types llama.cpp removed. */
	static const char *const names[] = {
		[0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [4] = "Q4_1_SOME_F16",
		[7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S",
		[12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S",
		[17] = "Q5_K_M", [18] = "Q6_K", [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S",
		[22] = "IQ3_XS", [23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S",
		[27] = "IQ3_M", [28] = "IQ2_S", [29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M",
		[32] = "BF16", [33] = "Q4_0_4_4", [34] = "Q4_0_4_8", [35] = "Q4_0_8_8",
		[36] = "TQ1_0", [37] = "TQ2_0", [38] = "MXFP4_MOE",
	};
	if (file_type < 0 || file_type >= (int64_t)(sizeof(names) / sizeof(names[0])))
		return NULL;
	return names[file_type];
}
