#include "rb_buf.h"

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

void rb_buf_grow(struct rb_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = b->cap ? realloc(b->data, cap) : malloc(cap);
	if (!p) {
		fputs("rbee: out of memory\n", stderr);
		abort();
	}
	if (!b->cap)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
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
