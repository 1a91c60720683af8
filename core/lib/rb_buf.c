#include "rb_buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char rb_buf_empty[1];

void rb_buf_init(struct rb_buf *b)
{
	b->data = rb_buf_empty;
	b->len = b->cap = 0;
}

void rb_buf_release(struct rb_buf *b)
{
	if (b->cap)
		free(b->data);
	rb_buf_init(b);
}

int rb_buf_try_grow(struct rb_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - 1 - b->len) {
		errno = EOVERFLOW;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = b->cap ? realloc(b->data, cap) : malloc(cap);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	if (!b->cap)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

void rb_buf_grow(struct rb_buf *b, size_t extra)
{
	if (rb_buf_try_grow(b, extra) != 0) {
		fputs("rbee: out of memory\n", stderr);
		abort();
	}
}

int rb_buf_try_add(struct rb_buf *b, const void *data, size_t len)
{
	if (rb_buf_try_grow(b, len) != 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void rb_buf_add(struct rb_buf *b, const void *data, size_t len)
{
	rb_buf_grow(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void rb_buf_adds(struct rb_buf *b, const char *s)
{
	rb_buf_add(b, s, strlen(s));
}

void rb_buf_addch(struct rb_buf *b, char c)
{
	rb_buf_add(b, &c, 1);
}

void rb_buf_vaddf(struct rb_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	rb_buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void rb_buf_addf(struct rb_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rb_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void rb_buf_reset(struct rb_buf *b)
{
	rb_buf_truncate(b, 0);
}

void rb_buf_truncate(struct rb_buf *b, size_t len)
{
	if (len > b->len)
		return;
	b->len = len;
	if (b->cap)
		b->data[len] = '\0';
}

char *rb_buf_detach(struct rb_buf *b, size_t *len)
{
	if (!b->cap)
		rb_buf_grow(b, 0);
	char *p = b->data;
	if (len)
		*len = b->len;
	rb_buf_init(b);
	return p;
}

const char *rb_human_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}
