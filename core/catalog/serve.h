/*
 * serve.h - rbee-catalog's HTTP side: the routes of the catalog API (SPEC section 5) over the
 * current store, and the swap of a reloaded store.
 *
 *   GET /health                   {"status":"ok","service":"worker-catalog","version":".."}
 *   GET /workers                  {"workers":[entry,...]}
 *   GET /workers/{id}             the entry, or 404 {"error":"Worker not found"}
 *   GET /workers/{id}/PKGBUILD    text/plain (302 when the entry's PKGBUILD lives elsewhere)
 *
 * HEAD works wherever GET does. Other methods on these routes: 405 JSON with an Allow header;
 * any other path: 404 JSON. Requests never touch the disk.
 */
#ifndef CAT_SERVE_H
#define CAT_SERVE_H

#include <stdint.h>

#include "rb_err.h"
#include "store.h"

struct cat_server;

/* Listen on bind:port (port 0 = any free port) serving `store`, which the server now owns.
 * `threads` is the size of libmicrohttpd's thread pool (0 = one per CPU). */
int cat_server_start(struct cat_server **out, const char *bind, uint16_t port,
		     unsigned threads, struct cat_store *store, struct rb_err *err);
/* The port actually bound. */
uint16_t cat_server_port(const struct cat_server *srv);
/* Serve `store` from now on (owned); the previous one is freed once no request holds it. */
void cat_server_swap(struct cat_server *srv, struct cat_store *store);
/* Stop listening, finish, free everything. */
void cat_server_stop(struct cat_server *srv);

#endif
