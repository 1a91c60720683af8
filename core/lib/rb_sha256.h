/*
 * rb_sha256.h - streaming SHA-256 (OpenSSL's libcrypto underneath, for SHA-NI speed).
 */
#ifndef RB_SHA256_H
#define RB_SHA256_H

#include <stddef.h>

#include "rb_err.h"

struct rb_sha256; /* opaque */

struct rb_sha256 *rb_sha256_new(void);
void rb_sha256_update(struct rb_sha256 *h, const void *data, size_t len);
/* Finish into 64 lower-case hex digits + NUL and free h. */
void rb_sha256_final_hex(struct rb_sha256 *h, char hex[65]);
void rb_sha256_free(struct rb_sha256 *h);
/* Hash a whole file. */
int rb_sha256_file(const char *path, char hex[65], struct rb_err *err);
/* Hash a buffer. */
void rb_sha256_hex(const void *data, size_t len, char hex[65]);
/* 1 when s is 64 hex digits (any case). */
int rb_sha256_is_hex(const char *s);

#endif
