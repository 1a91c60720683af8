#include "rb_sha256.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rb_sha256 {
	EVP_MD_CTX *ctx;
};

struct rb_sha256 *rb_sha256_new(void)
{
	struct rb_sha256 *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		rb_sha256_free(h);
		return NULL;
	}
	return h;
}

void rb_sha256_update(struct rb_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

void rb_sha256_final_hex(struct rb_sha256 *h, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
	rb_sha256_free(h);
}

void rb_sha256_free(struct rb_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void rb_sha256_hex(const void *data, size_t len, char hex[65])
{
	struct rb_sha256 *h = rb_sha256_new();
	rb_sha256_update(h, data, len);
	rb_sha256_final_hex(h, hex);
}

int rb_sha256_file(const char *path, char hex[65], struct rb_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO, "cannot open '%s': %s",
				  path, strerror(errno));
	struct rb_sha256 *h = rb_sha256_new();
	if (!h) {
		close(fd);
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	}
	/* On the stack, not thread-local: a static TLS buffer is zeroed into every thread's
	 * stack at its creation (64 KiB of RSS per idle hive thread). */
	unsigned char buf[1 << 14];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			rb_sha256_free(h);
			return rb_err_set(err, RB_EIO, "cannot read '%s': %s", path, strerror(e));
		}
		if (n == 0)
			break;
		rb_sha256_update(h, buf, (size_t)n);
	}
	close(fd);
	rb_sha256_final_hex(h, hex);
	return 0;
}

int rb_sha256_is_hex(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]))
			return 0;
	return n == 64;
}
