/*
 * rb_http_guard.h - the request checks both HTTP servers (rbee-hive and rbee-catalog) make
 * before routing: which Host names are theirs (DNS rebinding), which browser origins are
 * allowed, what a JSON body's Content-Type is, and numeric settings from the environment.
 * Pure functions of their arguments; the servers apply them to libmicrohttpd's headers.
 */
#ifndef RB_HTTP_GUARD_H
#define RB_HTTP_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Whether `list` (comma-separated, blanks ignored; "*" matches anything) holds `item` of
 * `item_len` bytes, case-insensitively; a trailing '/' on either side does not count. */
bool rb_list_has(const char *list, const char *item, size_t item_len);

/* What a server answers to: see rb_host_allowed. */
struct rb_host_policy {
	const char *bind;          /* the address it is bound to (a literal) */
	bool bind_any;             /* bound to 0.0.0.0 or :: */
	bool bind_loopback;        /* bound to a loopback address */
	const char *hostname;      /* this machine's name, "" when unknown */
	const char *allowed_hosts; /* the operator's extra names (rb_list_has list), may be NULL */
};

/* Whether a Host header ("name", "name:port", "1.2.3.4:port", "[v6]:port") names the server:
 * its bind address; for a loopback bind localhost, 127.0.0.1 and [::1]; for a wildcard bind any
 * address literal and localhost; the hostname; anything in allowed_hosts. Case and one trailing
 * dot are ignored, and so is the port. */
bool rb_host_allowed(const struct rb_host_policy *p, const char *header);

/* Whether an address literal is a wildcard (0.0.0.0, ::) or a loopback one (127/8, ::1). */
bool rb_address_is_any(const char *literal);
bool rb_address_is_loopback(const char *literal);

/* Whether a Content-Type header value declares JSON ("application/json", parameters allowed). */
bool rb_is_json_type(const char *content_type);

/* A whole number from environment variable `name` in [min, max]; `def` when unset, and when set
 * but not such a number (with a warning naming the variable and the range). */
unsigned rb_env_uint(const char *name, unsigned min, unsigned max, unsigned def);

#endif
