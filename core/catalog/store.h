/*
 * store.h - rbee-catalog's loaded catalog: every answer it can give, built once as a ready
 * libmicrohttpd response, so a request costs a lookup and a queue, never a file read or a JSON
 * serialization.
 *
 * A store is immutable once loaded. SIGHUP loads a new one and swaps it in (server.c);
 * libmicrohttpd reference-counts responses, so a connection still sending from the old store
 * keeps its response alive after cat_store_free().
 */
#ifndef CAT_STORE_H
#define CAT_STORE_H

#include <stddef.h>

#include <microhttpd.h>

#include "rb_catalog_dir.h"
#include "rb_err.h"

/* The bytes of a prepared answer, for the few requests that need their own copy of it (a
 * browser origin gets CORS headers, which a shared response cannot carry per request). */
struct cat_body {
	char *data;
	size_t len;
	const char *type;   /* Content-Type */
	const char *location; /* a redirect's Location (points into the entry), or NULL */
};

struct cat_store {
	struct rb_catalog_dir dir;
	struct cat_body workers_body;    /* the bytes of each response below */
	struct cat_body *entry_bodies;
	struct cat_body *pkgbuild_bodies;
	struct MHD_Response *workers;    /* GET /workers: {"workers":[...]} */
	struct MHD_Response **entries;   /* GET /workers/{id}, indexed like dir.items */
	struct MHD_Response **pkgbuilds; /* GET /workers/{id}/PKGBUILD: the text, or a 302 to
					  * the entry's remote pkgbuild_url */
	size_t workers_bytes;            /* size of the GET /workers body */
};

/*
 * Load the catalog directory `dir` and prepare every response. Malformed entries are logged
 * (rb_warn) and skipped; only an unreadable directory fails (*out stays NULL).
 */
int cat_store_load(struct cat_store **out, const char *dir, struct rb_err *err);
void cat_store_free(struct cat_store *s);

/* Index of the entry `id` (a path segment, not necessarily NUL-terminated at len), or -1. */
long cat_store_find(const struct cat_store *s, const char *id, size_t len);

#endif
