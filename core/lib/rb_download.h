/*
 * rb_download.h - large, resumable, verified downloads to a file (models, PKGBUILD sources).
 *
 * The transfer goes into `part_path`, appending to what an earlier attempt left there (HTTP
 * Range); the SHA-256 covers the whole file (the existing part is hashed first). Stalls (no
 * byte for `stall_timeout_s`) and dropped connections are retried with exponential backoff up
 * to `max_retries` times in a row without progress. The caller renames the part into place once
 * it has judged the result, so a final name never holds unverified bytes.
 *
 * Server behaviours handled: a 200 answer to a Range request (the server ignored it: the part
 * is truncated and the transfer starts over), 416 for a part that is already complete (success
 * without a transfer) or longer than the file (started over), redirects (followed; a custom
 * Authorization header is not forwarded to another host, as curl does by default).
 *
 * While it runs, rb_download hashes on a helper thread of its own (ended before it returns); the
 * callbacks in the options are only ever called on the calling thread.
 */
#ifndef RB_DOWNLOAD_H
#define RB_DOWNLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "rb_err.h"

struct rb_download_opts {
	const char *url;
	const char *part_path;          /* written/appended; created with 0644 */
	const char *const *headers;     /* extra "Name: value" headers, NULL-terminated, or NULL */
	const char *expect_sha256;      /* lower/upper-case hex; NULL = do not check */
	int stall_timeout_s;            /* 0 = 30 */
	int max_retries;                /* 0 = 5 */
	/* Called at most about 4 times a second, and once at the end. */
	void (*on_progress)(void *arg, uint64_t done, uint64_t total, double rate_bps);
	/* Polled during the transfer; true aborts it with RB_ECANCELLED (the part file is kept). */
	bool (*should_stop)(void *arg);
	void *arg;
	/* --- added by the model catalog (issue 5); zero keeps the behaviour above --- */
	/* When expect_sha256 is NULL, check against the SHA-256 the server announces for the file:
	 * `X-Linked-Etag` of any response in the redirect chain (the Hugging Face hub's LFS hash),
	 * else an `ETag` that is 64 hex digits. No such header = nothing to check against. */
	bool sha256_from_etag;
	/* Expected size in bytes (0 = unknown): a finished file of another size is an error, and
	 * a body that goes past it is stopped at once (RB_EIO, the part removed). */
	uint64_t expect_size;
	/* One line of narration for events worth telling (retries, a server that ignored Range,
	 * hashing a large existing part). Never holds header values. May be NULL. */
	void (*on_note)(void *arg, const char *line);
	/* Backoff before the first retry in milliseconds (0 = 1000), doubled per retry, at most
	 * 30 s. */
	int backoff_ms;
	/* --- added for hostile servers (issue 11); zero keeps the behaviour above --- */
	/* The most bytes the file may have (0 = no limit), for servers that announce no size: an
	 * announced size (Content-Length, Content-Range) above it is refused before a byte is
	 * written, a body that goes past it is stopped at once, and so is an existing part already
	 * longer. RB_ETOOBIG, and the part file is removed (resuming could never make it fit). */
	uint64_t max_size;
};

struct rb_download_result {
	uint64_t size;        /* bytes in the part file */
	char sha256[65];      /* of the whole part file */
	long http_status;     /* of the last response */
	uint64_t resumed_from; /* bytes that were already there at the start */
	/* --- added by the model catalog (issue 5) --- */
	char expected_sha256[65]; /* what the file was checked against, "" when nothing was */
	int retries;              /* attempts after the first */
};

/* 404 -> RB_ENOTFOUND, 401/403 -> RB_EDENIED, checksum mismatch -> RB_EIO with both hashes,
 * should_stop -> RB_ECANCELLED, retries exhausted -> RB_EUNAVAIL (RB_ETIMEDOUT for stalls),
 * more than max_size -> RB_ETOOBIG. On a checksum or size mismatch or past max_size the part
 * file is removed (it can never become right by resuming); on every other failure it is kept
 * for a later resume - a full disk too (ENOSPC, EDQUOT: the message says how far it got and to
 * free space and try again) and a file size limit (EFBIG, `ulimit -f`: the process must ignore
 * SIGXFSZ, as rbee-hive does; the message names the limit). The part is fsync'ed before a
 * success returns. */
int rb_download(const struct rb_download_opts *opts, struct rb_download_result *res,
		struct rb_err *err);

#endif
