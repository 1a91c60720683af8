/*
 * rb_download.c - resumable, verified downloads with libcurl (see rb_download.h).
 *
 * One `struct dl` lives for the whole call. Each attempt is one curl transfer asking for the
 * bytes after what the part file holds; the header callback tracks the response that is
 * currently arriving (statuses reset it, so the headers of redirects do not leak into the final
 * answer), and the write callback judges that response once, at its first body byte, before a
 * byte reaches the file.
 *
 * The write path, which decides the speed of a large download: the body is copied into 256 KiB
 * slots and written from there in whole, aligned DL_WRITE_SIZE blocks (see append()); every
 * DL_WRITEBACK_SIZE bytes the disk is told to start writing (see writeback()), so the fsync
 * before success finds little left to do; and each full slot goes to a hashing thread (see
 * struct dl_hasher), so SHA-256 runs beside the network and the disk rather than after them.
 * Memory stays at DL_SLOTS slots plus curl's buffer whatever the file size.
 */
#include "rb_download.h"
#include "rb_buf.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rb_sha256.h"

#define DL_BUFFER_SIZE (512 * 1024)
#define DL_PROGRESS_INTERVAL_S 0.25
#define DL_BACKOFF_MAX_MS 30000
#define DL_ERRBODY_MAX 200
#define DL_SLOT_SIZE (256u << 10)           /* one hand-off to the hashing thread */
#define DL_SLOTS 4                          /* memory: DL_SLOTS * DL_SLOT_SIZE */
#define DL_WRITE_SIZE (16u << 10)           /* writes end at multiples of this (see append()) */
#define DL_WRITEBACK_SIZE (16ull << 20)     /* writeback is started this much at a time */
_Static_assert(DL_SLOT_SIZE % (64u << 10) == 0, "a slot holds whole write blocks of any page size");

/* The response being received (reset at every status line). */
struct dl_resp {
	long status;
	bool has_range;         /* Content-Range: bytes a-b/n */
	uint64_t range_start;
	uint64_t range_end;     /* b: the last byte it announces */
	uint64_t range_total;   /* 0 = '*' or absent */
	bool has_length;
	uint64_t length;        /* Content-Length */
	bool judged;            /* the first body byte was seen and the response judged */
	bool keep_body;         /* body goes to the file (2xx); else a little is kept for messages */
	char errbody[DL_ERRBODY_MAX + 1];
	size_t errbody_len;
};

/*
 * The hashing thread. SHA-256 runs beside the transfer, fed through a ring of DL_SLOTS buffers of
 * DL_SLOT_SIZE bytes. The contract of the hand-off:
 *
 *  - The producer is the thread that called rb_download (it reads an existing part, then runs
 *    curl's callbacks). It owns exactly one slot, slots[head], and fills it without the lock.
 *  - hasher_push() queues the producer's slot, whose bytes are already in the part file in file
 *    order, and gives the producer the next slot, waiting while every other slot is queued. As
 *    head == (tail + queued) % DL_SLOTS, the producer's slot is never one that is queued.
 *  - The hashing thread hashes queued slots oldest first and frees each only when it is hashed;
 *    it touches nothing else: no file, no callback, no member of `struct dl`.
 *  - `hash` belongs to the hashing thread while a slot is queued. The producer replaces or
 *    finishes it only after hasher_drain() has seen the queue empty under the lock.
 *
 * So the hash always covers a prefix of the part file, and after a drain exactly the part file.
 * Hashing from memory never blocks, so the producer waits at most one slot's hashing; the
 * transfer's own waits (stalls, cancellation) are where they were. When the thread cannot be
 * started, hasher_push() hashes on the producer's thread instead: slower, same result.
 */
struct dl_hasher {
	unsigned char *slots;        /* DL_SLOTS * DL_SLOT_SIZE bytes */
	size_t len[DL_SLOTS];        /* bytes to hash in each queued slot */
	unsigned head;               /* the producer's slot (producer only) */
	size_t fill;                 /* bytes in the producer's slot (producer only) */
	unsigned tail;               /* the oldest queued slot */
	unsigned queued;             /* slots queued or being hashed */
	bool quit;                   /* no more slots: the thread ends once the queue is empty */
	bool threaded;               /* the thread runs (else hashing is inline) */
	struct rb_sha256 *hash;
	pthread_t thread;
	pthread_mutex_t mu;          /* guards tail, queued, quit (and orders len[] and hash) */
	pthread_cond_t work;         /* producer -> thread: a slot was queued, or quit */
	pthread_cond_t space;        /* thread -> producer: a slot was hashed */
};

#define DL_HASHER_INIT { .mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, \
			 .space = PTHREAD_COND_INITIALIZER }

struct dl {
	const struct rb_download_opts *o;
	int fd;
	struct dl_hasher hasher;
	uint64_t size;           /* bytes in the part file */
	size_t pending;          /* bytes received after those, still in the producer's slot */
	size_t write_size;       /* writes end at multiples of this (DL_WRITE_SIZE or a page) */
	/* Writeback started early (see writeback()). */
	uint64_t wb_start;       /* first byte whose writeback was not started */
	uint64_t wb_prev;        /* start of the window started last */
	bool wb_off;             /* sync_file_range does not work here: the fsync does it all */
	uint64_t total;          /* size of the whole file when known, else 0 */
	struct dl_resp resp;
	char linked_etag[65];    /* first 64-hex X-Linked-Etag seen in any response */
	char etag[65];           /* first 64-hex ETag seen in any response */
	/* Why the last attempt stopped early from inside a callback. */
	bool stop_requested;
	int write_errno;
	bool range_mismatch;
	bool too_long;           /* the body went past expect_size */
	bool range_broken;       /* a 206 that contradicts itself, or a body past its range */
	bool too_big;            /* the file is (or is announced) larger than max_size */
	bool restarted;          /* the server ignored Range in this attempt */
	/* Progress. */
	double t_start, t_last;
	uint64_t bytes_at_start, bytes_at_last;
	double rate;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(struct dl *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct dl *d, const char *fmt, ...)
{
	if (!d->o->on_note)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->o->on_note(d->o->arg, line);
}

static bool stop_now(struct dl *d)
{
	if (!d->stop_requested && d->o->should_stop && d->o->should_stop(d->o->arg))
		d->stop_requested = true;
	return d->stop_requested;
}

/* --- the hashing thread (contract above struct dl_hasher) ---------------------------------- */

static void *hasher_main(void *arg)
{
	struct dl_hasher *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->queued && !h->quit)
			pthread_cond_wait(&h->work, &h->mu);
		if (!h->queued)
			break;
		unsigned i = h->tail;
		pthread_mutex_unlock(&h->mu);
		rb_sha256_update(h->hash, h->slots + (size_t)i * DL_SLOT_SIZE, h->len[i]);
		pthread_mutex_lock(&h->mu);
		h->tail = (i + 1) % DL_SLOTS;
		h->queued--;
		pthread_cond_signal(&h->space);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Allocate the slots and a fresh hash, and start the thread (with every signal blocked: it must
 * never run a handler). -1 only when out of memory; a thread that cannot start is not an error. */
static int hasher_start(struct dl_hasher *h)
{
	h->slots = malloc((size_t)DL_SLOTS * DL_SLOT_SIZE);
	h->hash = rb_sha256_new();
	if (!h->slots || !h->hash)
		return -1;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h->threaded = pthread_create(&h->thread, NULL, hasher_main, h) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

/* Queue the producer's slot (if it holds anything) and move the producer to the next one. */
static void hasher_push(struct dl_hasher *h)
{
	if (!h->fill)
		return;
	unsigned char *slot = h->slots + (size_t)h->head * DL_SLOT_SIZE;
	if (!h->threaded) {
		rb_sha256_update(h->hash, slot, h->fill);
		h->fill = 0;
		return;
	}
	pthread_mutex_lock(&h->mu);
	h->len[h->head] = h->fill;
	h->head = (h->head + 1) % DL_SLOTS;
	h->fill = 0;
	h->queued++;
	pthread_cond_signal(&h->work);
	while (h->queued == DL_SLOTS)
		pthread_cond_wait(&h->space, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

/* Where the producer puts its next bytes, and how many fit (at least one: a full slot is pushed
 * at once). */
static unsigned char *hasher_room(struct dl_hasher *h, size_t *room)
{
	*room = DL_SLOT_SIZE - h->fill;
	return h->slots + (size_t)h->head * DL_SLOT_SIZE + h->fill;
}

/* The last `n` bytes put in the producer's slot. */
static unsigned char *hasher_last(struct dl_hasher *h, size_t n)
{
	return h->slots + (size_t)h->head * DL_SLOT_SIZE + h->fill - n;
}

/* Queue what the producer's slot holds and wait until every slot is hashed; then the producer
 * may use `hash`. */
static void hasher_drain(struct dl_hasher *h)
{
	hasher_push(h);
	if (!h->threaded)
		return;
	pthread_mutex_lock(&h->mu);
	while (h->queued)
		pthread_cond_wait(&h->space, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

/* Start the hash over (the part file was emptied). -1 when out of memory. */
static int hasher_reset(struct dl_hasher *h)
{
	h->fill = 0;
	hasher_drain(h);
	rb_sha256_free(h->hash);
	h->hash = rb_sha256_new();
	return h->hash ? 0 : -1;
}

/* The hash of everything added, as 64 hex digits. */
static void hasher_final(struct dl_hasher *h, char hex[65])
{
	hasher_drain(h);
	rb_sha256_final_hex(h->hash, hex);
	h->hash = NULL;
}

/* End the thread and free everything; safe after a failed or partial hasher_start. */
static void hasher_stop(struct dl_hasher *h)
{
	if (h->threaded) {
		pthread_mutex_lock(&h->mu);
		h->quit = true;
		pthread_cond_signal(&h->work);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
		h->threaded = false;
	}
	rb_sha256_free(h->hash);
	h->hash = NULL;
	free(h->slots);
	h->slots = NULL;
}

/* --- the part file ------------------------------------------------------------------------ */

/* Start the hash over the first `size` bytes already in the part file: read on this thread,
 * hashed on the hashing thread, so the two overlap. */
static int hash_existing(struct dl *d, struct rb_err *err)
{
	if (d->size >= (1ull << 30)) {
		char h[32];
		rb_human_bytes(d->size, h, sizeof(h));
		note(d, "checking the %s already downloaded", h);
	}
	posix_fadvise(d->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	uint64_t off = 0;
	while (off < d->size) {
		size_t room;
		unsigned char *to = hasher_room(&d->hasher, &room);
		size_t want = d->size - off < room ? (size_t)(d->size - off) : room;
		ssize_t n = pread(d->fd, to, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return rb_err_set(err, RB_EIO, "cannot read '%s': %s", d->o->part_path,
					  n < 0 ? strerror(errno) : "file shrank while reading");
		d->hasher.fill += (size_t)n;
		if (d->hasher.fill == DL_SLOT_SIZE)
			hasher_push(&d->hasher);
		off += (uint64_t)n;
		if (stop_now(d))
			return rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", d->o->url);
	}
	return 0;
}

/* Empty the part file and the hash: the next bytes start the file over. */
static int restart_part(struct dl *d)
{
	if (ftruncate(d->fd, 0) != 0) {
		d->write_errno = errno;
		return -1;
	}
	if (hasher_reset(&d->hasher) != 0) {
		d->write_errno = ENOMEM;
		return -1;
	}
	d->size = 0;
	d->pending = 0;
	d->wb_start = d->wb_prev = 0;
	d->bytes_at_start = d->bytes_at_last = 0;
	return 0;
}

/*
 * Have the disk start writing what was appended, DL_WRITEBACK_SIZE at a time, rather than leave a
 * whole file of dirty pages to the final fsync; first wait for the window started before, so
 * dirty memory stays about two windows whatever the file size (and a disk slower than the network
 * slows the transfer rather than filling memory). An error here is a write error: the kernel
 * reports a writeback error once per open file, so the final fsync would not see it again.
 */
static int writeback(struct dl *d)
{
	if (d->wb_off || d->size - d->wb_start < DL_WRITEBACK_SIZE)
		return 0;
	int rc = 0;
	if (d->wb_prev < d->wb_start)
		rc = sync_file_range(d->fd, (off_t)d->wb_prev, (off_t)(d->wb_start - d->wb_prev),
				     SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				     SYNC_FILE_RANGE_WAIT_AFTER);
	if (rc == 0)
		rc = sync_file_range(d->fd, (off_t)d->wb_start, (off_t)(d->size - d->wb_start),
				     SYNC_FILE_RANGE_WRITE);
	if (rc != 0) {
		if (errno == EINVAL || errno == ENOSYS || errno == ESPIPE || errno == EOPNOTSUPP) {
			d->wb_off = true; /* not for this file system: the final fsync does it all */
			return 0;
		}
		d->write_errno = errno;
		return -1;
	}
	d->wb_prev = d->wb_start;
	d->wb_start = d->size;
	return 0;
}

/* Write the bytes received but not yet written (the last d->pending bytes of the producer's
 * slot) to the end of the part file. On a failure what reached the file stays, the rest leaves the
 * slot too (the file and the hash keep agreeing), and d->write_errno says why. */
static int write_pending(struct dl *d)
{
	const unsigned char *p = hasher_last(&d->hasher, d->pending);
	while (d->pending) {
		ssize_t w = pwrite(d->fd, p, d->pending, (off_t)d->size);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			d->write_errno = w < 0 ? errno : EIO;
			d->hasher.fill -= d->pending;
			d->pending = 0;
			return -1;
		}
		p += w;
		d->pending -= (size_t)w;
		d->size += (uint64_t)w;
	}
	return writeback(d);
}

/*
 * Take body bytes: copy them into the producer's slot, write them each time the file reaches a
 * multiple of d->write_size, and queue the slot for hashing when it is full (all of it written).
 * Writes are thus whole aligned pages: the kernel neither zeroes nor reads back partial pages
 * (curl hands over 16 KiB pieces at any offset). They are small rather than large on purpose:
 * the page cache then uses small folios, which a VM with free page reporting (the development VM)
 * fills several times faster than large ones (1 GiB in 1 MiB writes: 2.4 s against 0.3 s), while
 * with memory already backed 1 MiB writes win by only a few percent.
 */
static int append(struct dl *d, const char *p, size_t n)
{
	while (n) {
		size_t room;
		unsigned char *to = hasher_room(&d->hasher, &room);
		size_t to_block = d->write_size - (size_t)((d->size + d->pending) % d->write_size);
		size_t k = n < room ? n : room;
		k = k < to_block ? k : to_block;
		memcpy(to, p, k);
		d->hasher.fill += k;
		d->pending += k;
		p += k;
		n -= k;
		if ((k == room || k == to_block) && write_pending(d) != 0)
			return -1;
		if (k == room)
			hasher_push(&d->hasher);
	}
	return 0;
}

/* --- curl callbacks ---------------------------------------------------------------------- */

/* 64 hex digits from an ETag value (quotes, W/ and spaces stripped), lower-cased, or "". */
static void etag_sha256(const char *v, size_t len, char out[65])
{
	out[0] = '\0';
	while (len && isspace((unsigned char)*v))
		v++, len--;
	while (len && isspace((unsigned char)v[len - 1]))
		len--;
	if (len >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/')
		v += 2, len -= 2;
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
		v++, len -= 2;
	if (len != 64)
		return;
	for (size_t i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)v[i])) {
			out[0] = '\0';
			return;
		}
		out[i] = (char)tolower((unsigned char)v[i]);
	}
	out[64] = '\0';
}

static bool header_is(const char *line, size_t len, const char *name, const char **val,
		      size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || line[n] != ':' || strncasecmp(line, name, n))
		return false;
	*val = line + n + 1;
	*vlen = len - n - 1;
	while (*vlen && (**val == ' ' || **val == '\t'))
		(*val)++, (*vlen)--;
	while (*vlen && ((*val)[*vlen - 1] == '\r' || (*val)[*vlen - 1] == '\n'))
		(*vlen)--;
	return true;
}

static void parse_content_range(struct dl_resp *r, const char *v, size_t len)
{
	char tmp[128];
	if (len >= sizeof(tmp))
		return;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	unsigned long long a, b, t;
	if (sscanf(tmp, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
		r->has_range = true;
		r->range_start = a;
		r->range_end = b;
		r->range_total = t;
	} else if (sscanf(tmp, "bytes %llu-%llu/*", &a, &b) == 2) {
		r->has_range = true;
		r->range_start = a;
		r->range_end = b;
		r->range_total = 0;
	} else if (sscanf(tmp, "bytes */%llu", &t) == 1) {
		r->range_total = t; /* a 416's statement of the file size */
	}
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct dl *d = arg;
	size_t len = size * nmemb;
	const char *v;
	size_t vlen;
	char hex[65];
	if (len > 5 && !strncmp(line, "HTTP/", 5)) {
		memset(&d->resp, 0, sizeof(d->resp));
		/* curl does not NUL-terminate header lines: read the code within the line only. */
		const char *sp = memchr(line, ' ', len), *end = line + len;
		for (const char *p = sp ? sp + 1 : end;
		     p < end && *p >= '0' && *p <= '9' && d->resp.status < 1000; p++)
			d->resp.status = d->resp.status * 10 + (*p - '0');
	} else if (header_is(line, len, "Content-Range", &v, &vlen)) {
		parse_content_range(&d->resp, v, vlen);
	} else if (header_is(line, len, "Content-Length", &v, &vlen)) {
		char tmp[32];
		if (vlen && vlen < sizeof(tmp)) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			char *end;
			unsigned long long x = strtoull(tmp, &end, 10);
			if (*end == '\0') {
				d->resp.has_length = true;
				d->resp.length = x;
			}
		}
	} else if (header_is(line, len, "X-Linked-Etag", &v, &vlen)) {
		etag_sha256(v, vlen, hex);
		if (hex[0] && !d->linked_etag[0])
			memcpy(d->linked_etag, hex, sizeof(hex));
	} else if (header_is(line, len, "ETag", &v, &vlen)) {
		etag_sha256(v, vlen, hex);
		if (hex[0] && !d->etag[0])
			memcpy(d->etag, hex, sizeof(hex));
	}
	return len;
}

/* The first body byte of a response: decide where its body goes. Returns false to abort. */
static bool judge_response(struct dl *d)
{
	struct dl_resp *r = &d->resp;
	r->judged = true;
	if (r->status == 206) {
		if (!r->has_range || r->range_start != d->size) {
			d->range_mismatch = true;
			return false;
		}
		/* The range must add up: end after start, inside the total, and as long as the
		 * body the server says it sends. */
		if (r->range_end < r->range_start ||
		    (r->range_total && r->range_end >= r->range_total) ||
		    (r->has_length && r->length != r->range_end - r->range_start + 1)) {
			d->range_broken = true;
			return false;
		}
		r->keep_body = true;
		if (r->range_total)
			d->total = r->range_total;
		else if (r->has_length)
			d->total = d->size + r->length;
		if (d->o->max_size && d->total > d->o->max_size) {
			d->too_big = true;
			return false;
		}
	} else if (r->status >= 200 && r->status < 300) {
		if (d->o->max_size && r->has_length && r->length > d->o->max_size) {
			d->too_big = true; /* refused before the part is touched */
			return false;
		}
		if (d->size > 0) {
			note(d, "the server ignored the request to resume; downloading from the start");
			d->restarted = true;
			if (restart_part(d) != 0)
				return false;
		}
		r->keep_body = true;
		d->total = r->has_length ? r->length : d->o->expect_size;
	}
	return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct dl *d = arg;
	size_t n = size * nmemb;
	if (!d->resp.judged && !judge_response(d))
		return 0;
	if (!d->resp.keep_body) {
		size_t room = DL_ERRBODY_MAX - d->resp.errbody_len;
		size_t k = n < room ? n : room;
		memcpy(d->resp.errbody + d->resp.errbody_len, p, k);
		d->resp.errbody_len += k;
		d->resp.errbody[d->resp.errbody_len] = '\0';
		return n;
	}
	/* A continuation never goes past the last byte its Content-Range announced. */
	if (d->resp.status == 206 && d->size + d->pending + n > d->resp.range_end + 1) {
		d->range_broken = true;
		return 0;
	}
	/* A file larger than announced can never verify: stop before it fills the disk. */
	if (d->o->expect_size && d->size + d->pending + n > d->o->expect_size) {
		d->too_long = true;
		return 0;
	}
	/* Nothing announced (or a lie): the caller's limit stops an endless body. */
	if (d->o->max_size && d->size + d->pending + n > d->o->max_size) {
		d->too_big = true;
		return 0;
	}
	return append(d, p, n) == 0 ? n : 0;
}

static void report(struct dl *d, bool final)
{
	if (!d->o->on_progress)
		return;
	uint64_t done = d->size + d->pending; /* received (the pending bytes are written soon) */
	double t = now_s();
	double dt = t - d->t_last;
	if (!final && dt < DL_PROGRESS_INTERVAL_S)
		return;
	if (final) {
		double all = t - d->t_start;
		uint64_t got = done >= d->bytes_at_start ? done - d->bytes_at_start : 0;
		d->rate = all > 0 ? (double)got / all : 0;
	} else if (dt > 0) {
		uint64_t got = done >= d->bytes_at_last ? done - d->bytes_at_last : 0;
		double inst = (double)got / dt;
		d->rate = d->rate > 0 ? 0.7 * d->rate + 0.3 * inst : inst;
	}
	d->t_last = t;
	d->bytes_at_last = done;
	uint64_t total = d->total ? d->total : final ? done : 0;
	d->o->on_progress(d->o->arg, done, total, d->rate);
}

static int on_xfer(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		   curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct dl *d = arg;
	if (stop_now(d))
		return 1;
	report(d, false);
	return 0;
}

/* --- attempts ---------------------------------------------------------------------------- */

/* One transfer from d->size onwards. Returns curl's code; d->resp holds the final response, and
 * every byte received is in the part file (or d->write_errno says why not). */
static CURLcode attempt(struct dl *d, char *curl_err)
{
	CURL *c = curl_easy_init();
	if (!c)
		return CURLE_OUT_OF_MEMORY;
	struct curl_slist *hl = NULL;
	for (size_t i = 0; d->o->headers && d->o->headers[i]; i++)
		hl = curl_slist_append(hl, d->o->headers[i]);
	char range[48];
	long stall = d->o->stall_timeout_s > 0 ? d->o->stall_timeout_s : 30;
	memset(&d->resp, 0, sizeof(d->resp));
	d->range_mismatch = false;
	d->range_broken = false;
	d->restarted = false;
	curl_err[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, d->o->url);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)DL_BUFFER_SIZE);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, stall);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
	if (d->size > 0) {
		/* CURLOPT_RANGE rather than RESUME_FROM: curl would fail a 200 answer itself, and we
		 * want to start over instead. */
		snprintf(range, sizeof(range), "%" PRIu64 "-", d->size);
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	}
	CURLcode cc = curl_easy_perform(c);
	if (d->pending)
		write_pending(d);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return cc;
}

static bool curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

/* What the server said besides its status, for messages: the start of an error body. */
static const char *errbody(struct dl *d)
{
	char *s = d->resp.errbody;
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return s;
}

static int too_big_error(struct dl *d, struct rb_err *err)
{
	char h[32];
	rb_human_bytes(d->o->max_size, h, sizeof(h));
	return rb_err_set(err, RB_ETOOBIG, "'%s' is larger than %" PRIu64 " bytes (%s), the most "
			  "this download may take; stopped and removed the partial file", d->o->url,
			  d->o->max_size, h);
}

enum verdict { V_DONE, V_RETRY, V_FAIL };

/* Judge a finished attempt: done, worth another try (why in *why), or failed (*err set). */
static enum verdict judge_attempt(struct dl *d, CURLcode cc, const char *curl_err, char *why,
				  size_t why_len, int *rc, struct rb_err *err)
{
	const char *url = d->o->url;
	long st = d->resp.status;
	if (d->stop_requested) {
		*rc = rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", url);
		return V_FAIL;
	}
	if (d->too_big) {
		unlink(d->o->part_path);
		*rc = too_big_error(d, err);
		return V_FAIL;
	}
	if (d->write_errno) {
		int e = d->write_errno;
		bool full = e == ENOSPC || e == EDQUOT;
		char h[32];
		rb_human_bytes(d->size, h, sizeof(h));
		if (e == EFBIG)
			*rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s after %s: the file size limit "
					 "of this process (ulimit -f, RLIMIT_FSIZE, systemd LimitFSIZE=) "
					 "stops it there (raise the limit, then try again; the partial "
					 "file is kept)", d->o->part_path, strerror(e), h);
		else
			*rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s%s%s%s", d->o->part_path,
					 strerror(e), full ? " after " : "", full ? h : "",
					 full ? " (free disk space there, then try again)" : "");
		return V_FAIL;
	}
	if (d->too_long) {
		unlink(d->o->part_path);
		*rc = rb_err_set(err, RB_EIO, "'%s' sends more than the %" PRIu64 " bytes expected; "
				 "stopped and removed the partial file (did the file change on the "
				 "server? download it again)", url, d->o->expect_size);
		return V_FAIL;
	}
	if (d->range_broken) {
		*rc = rb_err_set(err, RB_EIO, "'%s' answered a range that does not add up "
				 "(Content-Range bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "%s, %" PRIu64
				 " bytes received): stopped; the partial file (%" PRIu64 " bytes) is kept",
				 url, d->resp.range_start, d->resp.range_end, d->resp.range_total,
				 d->resp.range_total ? "" : " (unknown total)",
				 d->size >= d->resp.range_start ? d->size - d->resp.range_start : 0,
				 d->size);
		return V_FAIL;
	}
	if (d->range_mismatch) {
		snprintf(why, why_len, "the server sent bytes from %" PRIu64 " when %" PRIu64
			 " were asked; starting over", d->resp.range_start, d->size);
		if (restart_part(d) != 0)
			return judge_attempt(d, cc, curl_err, why, why_len, rc, err);
		return V_RETRY;
	}
	if (cc != CURLE_OK) {
		const char *what = curl_err[0] ? curl_err : curl_easy_strerror(cc);
		if (curl_retryable(cc)) {
			snprintf(why, why_len, "%s", cc == CURLE_OPERATION_TIMEDOUT ?
				 "the transfer stalled" : what);
			return V_RETRY;
		}
		*rc = rb_err_set(err, RB_EUNAVAIL, "cannot download '%s': %s", url, what);
		return V_FAIL;
	}
	if (st == 416) {
		uint64_t t = d->resp.range_total ? d->resp.range_total : d->o->expect_size;
		if (t && t == d->size) {
			d->total = t;
			return V_DONE;
		}
		if (t && d->size > t) {
			snprintf(why, why_len, "the partial file is longer than the file on the server; "
				 "starting over");
			if (restart_part(d) != 0)
				return judge_attempt(d, cc, curl_err, why, why_len, rc, err);
			return V_RETRY;
		}
		*rc = rb_err_set(err, RB_EIO, "'%s' refused the range from byte %" PRIu64 " (HTTP 416)",
				 url, d->size);
		return V_FAIL;
	}
	if (st == 404) {
		*rc = rb_err_set(err, RB_ENOTFOUND, "'%s' not found (HTTP 404)", url);
		return V_FAIL;
	}
	if (st == 401 || st == 403) {
		*rc = rb_err_set(err, RB_EDENIED, "access to '%s' denied (HTTP %ld)", url, st);
		return V_FAIL;
	}
	if (status_retryable(st)) {
		snprintf(why, why_len, "the server answered HTTP %ld", st);
		return V_RETRY;
	}
	if (st < 200 || st >= 300) {
		*rc = rb_err_set(err, RB_EIO, "'%s' answered HTTP %ld%s%s", url, st,
				 d->resp.errbody_len ? ": " : "", errbody(d));
		return V_FAIL;
	}
	if (st != 206 && !d->resp.judged && d->size > 0 && restart_part(d) != 0)
		return judge_attempt(d, cc, curl_err, why, why_len, rc, err); /* an empty file */
	if (d->total && d->size < d->total) {
		snprintf(why, why_len, "the connection closed early");
		return V_RETRY;
	}
	return V_DONE;
}

/* Sleep `ms`, waking every 100 ms to honour should_stop. False when stopped. */
static bool backoff_sleep(struct dl *d, int ms)
{
	while (ms > 0) {
		if (stop_now(d))
			return false;
		int step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return !stop_now(d);
}

static int transfer(struct dl *d, struct rb_download_result *res, struct rb_err *err)
{
	int max_retries = d->o->max_retries > 0 ? d->o->max_retries : 5;
	int base = d->o->backoff_ms > 0 ? d->o->backoff_ms : 1000;
	int failures = 0;
	char curl_err[CURL_ERROR_SIZE];
	for (;;) {
		uint64_t before = d->size;
		CURLcode cc = attempt(d, curl_err);
		res->http_status = d->resp.status;
		char why[300] = "";
		int rc = 0;
		enum verdict v = judge_attempt(d, cc, curl_err, why, sizeof(why), &rc, err);
		if (v == V_DONE)
			return 0;
		if (v == V_FAIL)
			return rc;
		if (d->size > before && !d->restarted)
			failures = 0; /* progress was made: only stalls in a row count */
		if (++failures > max_retries) {
			return rb_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? RB_ETIMEDOUT : RB_EUNAVAIL,
					  "giving up on '%s' after %d attempts: %s; the partial file "
					  "is kept and a new download resumes it",
					  d->o->url, failures, why);
		}
		int ms = base;
		for (int i = 1; i < failures && ms < DL_BACKOFF_MAX_MS; i++)
			ms *= 2;
		if (ms > DL_BACKOFF_MAX_MS)
			ms = DL_BACKOFF_MAX_MS;
		char at[32];
		rb_human_bytes(d->size, at, sizeof(at));
		note(d, "%s at %s; retry %d of %d in %.1f s", why, at, failures, max_retries,
		     ms / 1000.0);
		res->retries++;
		if (!backoff_sleep(d, ms))
			return rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", d->o->url);
	}
}

/* Compare the finished part with what was expected; remove it when it can never be right. */
static int verify(struct dl *d, struct rb_download_result *res, struct rb_err *err)
{
	const char *want = d->o->expect_sha256;
	if (!want && d->o->sha256_from_etag)
		want = d->linked_etag[0] ? d->linked_etag : d->etag[0] ? d->etag : NULL;
	if (want) {
		for (size_t i = 0; i < 64 && want[i]; i++)
			res->expected_sha256[i] = (char)tolower((unsigned char)want[i]);
		res->expected_sha256[strlen(want) < 64 ? strlen(want) : 64] = '\0';
	}
	if (d->o->expect_size && res->size != d->o->expect_size) {
		unlink(d->o->part_path);
		return rb_err_set(err, RB_EIO, "'%s' has %" PRIu64 " bytes but %" PRIu64
				  " were expected; the partial file was removed, download it again",
				  d->o->url, res->size, d->o->expect_size);
	}
	if (want && strcmp(res->sha256, res->expected_sha256)) {
		unlink(d->o->part_path);
		return rb_err_set(err, RB_EIO, "sha256 of '%s' is %s but the server announced %s; the "
				  "download was corrupted and removed, download it again",
				  d->o->url, res->sha256, res->expected_sha256);
	}
	return 0;
}

static int open_part(struct dl *d, struct rb_err *err)
{
	d->fd = open(d->o->part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->fd < 0)
		return rb_err_set(err, RB_EIO, "cannot open '%s': %s", d->o->part_path, strerror(errno));
	struct stat st;
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return rb_err_set(err, RB_EIO, "'%s' is not a regular file", d->o->part_path);
	d->size = (uint64_t)st.st_size;
	d->wb_start = d->wb_prev = d->size;
	long page = sysconf(_SC_PAGESIZE);
	d->write_size = page > (long)DL_WRITE_SIZE ? (size_t)page : DL_WRITE_SIZE;
	if (hasher_start(&d->hasher) != 0)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	return 0;
}

int rb_download(const struct rb_download_opts *opts, struct rb_download_result *res,
		struct rb_err *err)
{
	struct dl d = { .o = opts, .fd = -1, .hasher = DL_HASHER_INIT };
	memset(res, 0, sizeof(*res));
	if (!opts->url || !opts->part_path)
		return rb_err_set(err, RB_EINVAL, "download needs a url and a part file");
	if (opts->expect_sha256 && !rb_sha256_is_hex(opts->expect_sha256))
		return rb_err_set(err, RB_EINVAL, "expected sha256 '%s' is not 64 hex digits",
				  opts->expect_sha256);
	int rc = open_part(&d, err);
	if (!rc && opts->max_size && d.size > opts->max_size) {
		unlink(opts->part_path);
		rc = too_big_error(&d, err);
	}
	if (!rc) {
		res->resumed_from = d.size;
		d.total = opts->expect_size;
		rc = hash_existing(&d, err);
	}
	if (!rc) {
		d.t_start = d.t_last = now_s();
		d.bytes_at_start = d.bytes_at_last = d.size;
		rc = transfer(&d, res, err);
	}
	if (!rc) {
		hasher_push(&d.hasher); /* the last slots are hashed while fsync waits for the disk */
		if (fsync(d.fd) != 0)
			rc = rb_err_set(err, RB_EIO, "cannot write '%s': %s", opts->part_path,
					strerror(errno));
	}
	if (!rc) {
		report(&d, true);
		res->size = d.size;
		hasher_final(&d.hasher, res->sha256);
		rc = verify(&d, res, err);
	} else {
		res->size = d.size;
	}
	hasher_stop(&d.hasher);
	if (d.fd >= 0)
		close(d.fd);
	return rc;
}
