/*
 * rb_mhd_headers.h - counting a request's headers through libmicrohttpd, for the framing checks
 * both servers make (rb_mhd_framing_failure). Header-only, so librbcore itself needs no
 * libmicrohttpd: only the programs that serve HTTP include it.
 */
#ifndef RB_MHD_HEADERS_H
#define RB_MHD_HEADERS_H

#include <microhttpd.h>
#include <strings.h>

struct rb_mhd_header_count {
	const char *name;
	unsigned n;
};

static inline enum MHD_Result rb_mhd_count_one(void *cls, enum MHD_ValueKind kind,
					       const char *key, const char *value)
{
	struct rb_mhd_header_count *c = cls;
	(void)kind;
	(void)value;
	if (key && !strcasecmp(key, c->name))
		c->n++;
	return MHD_YES;
}

/* How many times the request carries header `name` (case-insensitive). */
static inline unsigned rb_mhd_header_count(struct MHD_Connection *conn, const char *name)
{
	struct rb_mhd_header_count c = { name, 0 };
	MHD_get_connection_values(conn, MHD_HEADER_KIND, rb_mhd_count_one, &c);
	return c.n;
}

/* NULL when the framing headers are unambiguous, else why not (answer 400). */
static inline const char *rb_mhd_framing_failure(struct MHD_Connection *conn)
{
	unsigned cl = rb_mhd_header_count(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl > 1)
		return "the request has more than one Content-Length header: send exactly one";
	if (cl && rb_mhd_header_count(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return "the request has both Content-Length and Transfer-Encoding: send one of them";
	if (rb_mhd_header_count(conn, MHD_HTTP_HEADER_HOST) > 1)
		return "the request has more than one Host header: send exactly one";
	return NULL;
}

#endif
