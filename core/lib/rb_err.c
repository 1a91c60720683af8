#include "rb_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rb_err_set(struct rb_err *err, int code, const char *fmt, ...)
{
	if (code < 0)
		code = -code;
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return -code;
}

int rb_err_prefix(struct rb_err *err, const char *fmt, ...)
{
	if (!err)
		return -RB_EINTERNAL;
	char prefix[RB_ERR_MSG_MAX], old[RB_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	if (!err->code)
		err->code = RB_EINTERNAL;
	return -err->code;
}

void rb_err_clear(struct rb_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

static const struct {
	int status;
	const char *slug;
} errc_table[] = {
	[RB_OK] = { 200, "ok" },
	[RB_EINVAL] = { 400, "invalid_request" },
	[RB_ENOTFOUND] = { 404, "not_found" },
	[RB_ECONFLICT] = { 409, "conflict" },
	[RB_ETOOBIG] = { 413, "too_large" },
	[RB_EDENIED] = { 403, "forbidden" },
	[RB_EUNAVAIL] = { 503, "unavailable" },
	[RB_ETIMEDOUT] = { 504, "timeout" },
	[RB_EIO] = { 500, "io_error" },
	[RB_ECANCELLED] = { 409, "cancelled" },
	[RB_EINTERNAL] = { 500, "internal" },
	[RB_EUNAUTH] = { 401, "unauthorized" },
	[RB_EMETHOD] = { 405, "method_not_allowed" },
};

int rb_errc_http_status(int code)
{
	if (code < 0)
		code = -code;
	if ((size_t)code >= sizeof(errc_table) / sizeof(errc_table[0]))
		return 500;
	return errc_table[code].status;
}

const char *rb_errc_slug(int code)
{
	if (code < 0)
		code = -code;
	if ((size_t)code >= sizeof(errc_table) / sizeof(errc_table[0]))
		return "internal";
	return errc_table[code].slug;
}
