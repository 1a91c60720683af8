/*
 * rb_buf.h - a growable, always NUL-terminated byte buffer (git's strbuf idea).
 *
 * `struct rb_buf b = RB_BUF_INIT;` is an empty buffer with no allocation; rb_buf_release()
 * frees it and leaves it empty again, ready for reuse. For growth the program itself decides
 * (messages, paths, JSON it builds), allocation failure aborts: the daemon cannot do anything
 * useful without memory, and checking every append hides real errors. Growth sized by input (a
 * PKGBUILD's expansions, a peer's body) goes through rb_buf_try_grow / rb_buf_try_add, which
 * fail with -1 instead, under a limit the caller chose, so input can never make the daemon
 * abort.
 */
#ifndef RB_BUF_H
#define RB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct rb_buf {
	char *data; /* NUL-terminated; points at a static "" while nothing is allocated */
	size_t len;
	size_t cap;
};

extern char rb_buf_empty[];
#define RB_BUF_INIT { rb_buf_empty, 0, 0 }

void rb_buf_init(struct rb_buf *b);
void rb_buf_release(struct rb_buf *b);
void rb_buf_grow(struct rb_buf *b, size_t extra);
/* Make room for `extra` more bytes, or return -1 (errno ENOMEM, or EOVERFLOW when the size does
 * not fit in size_t) and leave the buffer as it was. */
int rb_buf_try_grow(struct rb_buf *b, size_t extra);
/* rb_buf_add that returns -1 (errno as rb_buf_try_grow) instead of aborting. */
int rb_buf_try_add(struct rb_buf *b, const void *data, size_t len);
void rb_buf_add(struct rb_buf *b, const void *data, size_t len);
void rb_buf_adds(struct rb_buf *b, const char *s);
void rb_buf_addch(struct rb_buf *b, char c);
void rb_buf_addf(struct rb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rb_buf_vaddf(struct rb_buf *b, const char *fmt, va_list ap);
void rb_buf_reset(struct rb_buf *b); /* len = 0, keeps the allocation */
void rb_buf_truncate(struct rb_buf *b, size_t len);
/* "1.5 GiB", "512 B": binary units, one decimal. Returns buf. */
const char *rb_human_bytes(unsigned long long n, char *buf, size_t len);
/* Hand over the allocation (malloc'd, caller frees) and leave the buffer empty. */
char *rb_buf_detach(struct rb_buf *b, size_t *len);

#endif
