/*
 * serve.h - rbee-catalog's HTTP side: the routes of the catalog API (SPEC section 5) over the
 * current store, and the swap of a reloaded store.
 *
 *   GET /health                   {"status":"ok","service":"worker-catalog","version":".."}
 *   GET /workers                  {"workers":[entry,...]}
 *   GET /workers/{id}             the entry, or 404 {"error":"Worker not found"}
 *   GET /workers/{id}/PKGBUILD    text/plain (302 when the entry's PKGBUILD lives elsewhere)
 *
 * HEAD works wherever GET does; OPTIONS answers CORS preflights (204). Other methods on these
 * routes: 405 JSON with an Allow header; any other path: 404 JSON. Requests never touch the
 * disk.
 *
 * Guards (the shared server layer, rb_server.h, as in the hive): ambiguous framing (two
 * Content-Length or Host headers) is 400; a
 * Host header that is not one of the server's names is 403 (DNS rebinding: the bind address,
 * localhost/127.0.0.1/[::1] on loopback, any address literal on a wildcard bind, the hostname,
 * and --allowed-hosts); a browser origin in the allow-list gets CORS headers (the original Hono
 * catalog's: the Hive UI, queen and keeper on localhost and 127.0.0.1, unless
 * --allowed-origins says otherwise); other origins get none, so their pages cannot read the
 * answers. At most `per_ip` connections from one address; one that sends nothing for
 * `timeout_s` is closed.
 */
#ifndef CAT_SERVE_H
#define CAT_SERVE_H

#include <stdint.h>

#include "rb_err.h"
#include "store.h"

struct cat_server;

struct cat_server_opts {
	const char *bind;
	uint16_t port;               /* 0 = any free port */
	unsigned threads;            /* libmicrohttpd's thread pool (0 = one per CPU) */
	const char *allowed_origins; /* comma-separated CORS origins; "*" = any */
	const char *allowed_hosts;   /* comma-separated extra Host names; "*" = any */
	unsigned per_ip;             /* connections at once from one address */
	unsigned timeout_s;          /* an idle or stalled connection is closed after this */
};

/* The origins the original Hono catalog allowed (the Hive UI, queen-rbee, rbee-keeper). */
#define CAT_DEFAULT_ORIGINS                                                                  \
	"http://localhost:7836,http://localhost:8500,http://localhost:8501,"                  \
	"http://127.0.0.1:7836,http://127.0.0.1:8500,http://127.0.0.1:8501"

/* Listen as `opts` says, serving `store`, which the server now owns. */
int cat_server_start(struct cat_server **out, const struct cat_server_opts *opts,
		     struct cat_store *store, struct rb_err *err);
/* The port actually bound. */
uint16_t cat_server_port(const struct cat_server *srv);
/* Serve `store` from now on (owned); the previous one is freed once no request holds it. */
void cat_server_swap(struct cat_server *srv, struct cat_store *store);
/* Stop listening, finish, free everything. */
void cat_server_stop(struct cat_server *srv);

#endif
