/*
 * rb_http_guard.c - Host, Origin, Content-Type and environment checks shared by the HTTP
 * servers (see rb_http_guard.h).
 */
#include "rb_http_guard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rb_log.h"

bool rb_list_has(const char *list, const char *item, size_t item_len)
{
	while (item_len && item[item_len - 1] == '/')
		item_len--;
	for (const char *p = list; p && *p;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m && (p[m - 1] == ' ' || p[m - 1] == '\t' || p[m - 1] == '/'))
			m--;
		if ((m == 1 && p[0] == '*') || (m && m == item_len && !strncasecmp(p, item, m)))
			return true;
		p += n;
	}
	return false;
}

bool rb_address_is_any(const char *literal)
{
	unsigned char a[16], zero[16] = { 0 };
	if (inet_pton(AF_INET, literal, a) == 1)
		return !memcmp(a, zero, 4);
	if (inet_pton(AF_INET6, literal, a) == 1)
		return !memcmp(a, zero, 16);
	return false;
}

bool rb_address_is_loopback(const char *literal)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, literal, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, literal, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* Whether two address literals (IPv6 without brackets) are the same address. */
static bool same_address(const char *x, const char *y)
{
	unsigned char a[16], b[16];
	if (inet_pton(AF_INET, x, a) == 1 && inet_pton(AF_INET, y, b) == 1)
		return !memcmp(a, b, 4);
	if (inet_pton(AF_INET6, x, a) == 1 && inet_pton(AF_INET6, y, b) == 1)
		return !memcmp(a, b, 16);
	return false;
}

bool rb_host_allowed(const struct rb_host_policy *p, const char *header)
{
	char host[300];
	size_t n;
	bool literal;
	unsigned char a[16];
	if (header[0] == '[') { /* [v6]:port */
		n = strcspn(header + 1, "]");
		if (header[1 + n] != ']' || n >= sizeof(host))
			return false;
		memcpy(host, header + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			return false;
		literal = true;
	} else {
		n = strcspn(header, ":");
		if (n == 0 || n >= sizeof(host))
			return false;
		memcpy(host, header, n);
		host[n] = '\0';
		literal = inet_pton(AF_INET, host, a) == 1;
	}
	for (char *c = host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!literal && n > 1 && host[n - 1] == '.') /* "localhost." is "localhost" */
		host[--n] = '\0';
	if (rb_list_has(p->allowed_hosts, host, n))
		return true;
	if (literal)
		return p->bind_any || same_address(host, p->bind) ||
		       (p->bind_loopback && (!strcmp(host, "127.0.0.1") || !strcmp(host, "::1")));
	if ((p->bind_loopback || p->bind_any) && !strcmp(host, "localhost"))
		return true;
	return p->hostname && p->hostname[0] && !strcasecmp(host, p->hostname);
}

bool rb_is_json_type(const char *ct)
{
	if (!ct)
		return false;
	ct += strspn(ct, " \t");
	size_t n = strlen("application/json");
	return !strncasecmp(ct, "application/json", n) &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

unsigned rb_env_uint(const char *name, unsigned min, unsigned max, unsigned def)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (*end || errno || x < min || x > max || *v == '-') {
		rb_warn("ignoring %s='%s': use a number from %u to %u", name, v, min, max);
		return def;
	}
	return (unsigned)x;
}
