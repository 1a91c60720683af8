/*
 * fuzz_range.c - HTTP Range / Content-Range handling of resumable downloads
 * (core/lib/rb_download.c): the response headers (status line, Content-Range, Content-Length,
 * ETag, X-Linked-Etag), the decision whether a body continues the part file, starts it over or
 * is an error body, and the verdict on the attempt (done, retry, fail; 206, 200 to a Range
 * request, 416 for a complete or too long part).
 *
 * That logic is static in rb_download.c and driven by curl, so the harness includes the source
 * file (its public rb_download is renamed so it cannot clash with librbcore's) and plays one
 * attempt through the same callbacks curl calls, on a memfd part file that already holds
 * `old` bytes - no network. Checked after every attempt:
 *  - bytes are appended to an existing part only when the server said they start where the part
 *    ends (206 with Content-Range start == part size); otherwise the part is started over or
 *    left alone: the file is always old||body-prefix, body-prefix, or old;
 *  - the part's size as rb_download counts it is the file's size, and the running hash covers
 *    exactly the file.
 *
 * Input: byte 0 flags (bit 0: the transfer ended with CURLE_PARTIAL_FILE; bit 1: an expected
 * size follows), bytes 1-2 the part's size, [8 bytes expected size], then the response: header
 * lines up to the first empty line, the body after it.
 */
#define rb_download rb_download_fuzz_copy
#include "../../core/lib/rb_download.c"
#undef rb_download

#include <sys/mman.h>

#include "fuzz.h"

static int memfd = -1;
static unsigned char *slots;
static unsigned char old_pattern[65536];
static size_t curl_nul;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *v = getenv("RB_FUZZ_CURL_NUL");
	curl_nul = v && !strcmp(v, "1");
	memfd = memfd_create("fuzz-range", MFD_CLOEXEC);
	slots = malloc((size_t)DL_SLOTS * DL_SLOT_SIZE);
	if (memfd < 0 || !slots)
		abort();
	for (size_t i = 0; i < sizeof(old_pattern); i++)
		old_pattern[i] = (unsigned char)(i * 31 + 7);
	return 0;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The part file's bytes (malloc'd) and their count. */
static unsigned char *read_part(size_t *len)
{
	struct stat st;
	if (fstat(memfd, &st) != 0)
		abort();
	*len = (size_t)st.st_size;
	unsigned char *buf = malloc(*len + 1);
	if (!buf || pread(memfd, buf, *len, 0) != (ssize_t)*len)
		abort();
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 3)
		return 0;
	unsigned flags = data[0];
	size_t old = (size_t)le(data + 1, 2);
	size_t off = 3;
	struct rb_download_opts opts = { .url = "http://hub.invalid/org/repo/model.gguf",
					 .part_path = "/nonexistent-rbee-fuzz/model.gguf.part" };
	if (flags & 2) {
		if (size < off + 8)
			return 0;
		opts.expect_size = le(data + off, 8);
		off += 8;
	}
	const char *resp = (const char *)data + off;
	size_t rlen = size - off;

	/* The part as an earlier attempt left it, and its hash (as hash_existing starts it). */
	if (ftruncate(memfd, 0) != 0 || (old && pwrite(memfd, old_pattern, old, 0) != (ssize_t)old))
		abort();
	struct dl d = { .o = &opts, .fd = memfd, .hasher = DL_HASHER_INIT };
	d.hasher.slots = slots;
	d.hasher.hash = rb_sha256_new();
	d.size = old;
	d.wb_start = d.wb_prev = old;
	d.write_size = DL_WRITE_SIZE;
	d.total = opts.expect_size;
	struct rb_err err = RB_ERR_INIT;
	if (!d.hasher.hash || hash_existing(&d, &err) != 0)
		abort();

	/* One attempt, as curl drives the callbacks. */
	const char *body = NULL;
	size_t i = 0, body_len = 0;
	while (i < rlen) {
		const char *nl = memchr(resp + i, '\n', rlen - i);
		size_t n = nl ? (size_t)(nl - (resp + i)) + 1 : rlen - i;
		/* curl hands over whole lines, each ending in "\n" and, as documented, not
		 * NUL-terminated: an exact-size copy, so reading past the line is an ASan error.
		 * RB_FUZZ_CURL_NUL=1 adds the NUL that curl 7.88's header buffer happens to have
		 * after the line, to explore past a known over-read (docs/FUZZING.md). */
		size_t ln = nl ? n : n + 1;
		char *line = malloc(ln + curl_nul);
		if (!line)
			abort();
		memcpy(line, resp + i, n);
		line[ln - 1] = '\n';
		if (curl_nul)
			line[ln] = '\0';
		if (on_header(line, 1, ln, &d) != ln)
			abort();
		free(line);
		bool blank = n == 1 || (n == 2 && resp[i] == '\r');
		i += n;
		/* After a redirect's (or a 100 Continue's) headers comes the next response's. */
		if (blank && !(rlen - i >= 5 && !memcmp(resp + i, "HTTP/", 5))) {
			body = resp + i;
			body_len = rlen - i;
			break;
		}
	}
	size_t taken = 0;
	while (body && taken < body_len) {
		size_t n = body_len - taken < 16384 ? body_len - taken : 16384;
		if (on_body((char *)body + taken, 1, n, &d) != n)
			break;
		taken += n;
	}
	if (d.pending)
		write_pending(&d);
	if (d.write_errno)
		abort(); /* a memfd write does not fail */

	/* Where the bytes went. */
	size_t flen;
	unsigned char *file = read_part(&flen);
	if (d.size != flen)
		abort();
	if (d.resp.keep_body && d.resp.status == 206) {
		/* A continuation: only where the server says it starts, and only after the part. */
		if (!d.resp.has_range || d.resp.range_start != old || d.restarted || flen < old ||
		    memcmp(file, old_pattern, old) || (flen > old && memcmp(file + old, body, flen - old)))
			abort();
		/* ...and never past the last byte its Content-Range announced, inside its total. */
		if (flen > old && (d.resp.range_end + 1 < flen ||
				   (d.resp.range_total && d.resp.range_end >= d.resp.range_total)))
			abort();
	} else if (d.resp.keep_body) {
		/* A whole file (200 and friends): the part was started over, or was empty. */
		if ((old && !d.restarted) || flen > body_len || (flen && memcmp(file, body, flen)))
			abort();
	} else if (flen != old || memcmp(file, old_pattern, old)) {
		abort(); /* the part changed though its body was not taken */
	}
	free(file);

	/* The verdict on the attempt, and what the part holds after it. */
	char why[300] = "";
	int rc = 0;
	enum verdict v = judge_attempt(&d, flags & 1 ? CURLE_PARTIAL_FILE : CURLE_OK, "", why,
				       sizeof(why), &rc, &err);
	if ((v == V_FAIL) != (rc != 0) || (v == V_FAIL && !err.msg[0]) || (v == V_RETRY && !why[0]))
		abort();
	file = read_part(&flen);
	if (d.size != flen)
		abort();
	char want[65], got[65];
	rb_sha256_hex(file, flen, want);
	hasher_final(&d.hasher, got);
	if (strcmp(want, got))
		abort(); /* the hash does not cover exactly the part file */
	free(file);
	return 0;
}
