/*
 * rb_err.h - the error every fallible internal function reports.
 *
 * Functions return 0 on success or a negative `enum rb_errc`, and fill a caller-provided
 * `struct rb_err` with a message that says what failed, on what, and what to do (lower-case,
 * the thing named in quotes, no full stop - git style). The code maps to an HTTP status and a
 * stable slug for the `{"error":..,"code":..}` body.
 */
#ifndef RB_ERR_H
#define RB_ERR_H

#include <stddef.h>

enum rb_errc {
	RB_OK = 0,
	RB_EINVAL = 1,     /* bad input from the client: 400 invalid_request */
	RB_ENOTFOUND = 2,  /* unknown id, missing file: 404 not_found */
	RB_ECONFLICT = 3,  /* state forbids it (in use, already finished): 409 conflict */
	RB_ETOOBIG = 4,    /* body or file over a limit: 413 too_large */
	RB_EDENIED = 5,    /* missing or wrong token, access refused: 401/403 */
	RB_EUNAVAIL = 6,   /* a backend, catalog or upstream cannot serve: 503 unavailable */
	RB_ETIMEDOUT = 7,  /* 504 timeout */
	RB_EIO = 8,        /* disk, network, child process failed: 500 io_error */
	RB_ECANCELLED = 9, /* the job was cancelled */
	RB_EINTERNAL = 10, /* a bug or out of memory: 500 internal */
	RB_EUNAUTH = 11,   /* no/invalid bearer token: 401 unauthorized */
	RB_EMETHOD = 12,   /* 405 method_not_allowed */
};

#define RB_ERR_MSG_MAX 1024

struct rb_err {
	int code;                 /* enum rb_errc, 0 when no error */
	char msg[RB_ERR_MSG_MAX]; /* human text, "" when no error */
};

#define RB_ERR_INIT { 0, "" }

/* Set *err (if not NULL) and return -code, so `return rb_err_set(err, RB_EIO, ...)` works. */
int rb_err_set(struct rb_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "fetching 'x': <old message>". Keeps the code. Returns -code. */
int rb_err_prefix(struct rb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rb_err_clear(struct rb_err *err);

int rb_errc_http_status(int code);
const char *rb_errc_slug(int code);

#endif
