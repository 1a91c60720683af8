#include "rb_json.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "rb_buf.h"
#include "rb_fs.h"

/* Whether a string or key of the (already parsed) JSON text holds the escape \u0000. */
static bool nul_escape_at(const char *text, size_t len, size_t *at)
{
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = text[i] == '"';
			continue;
		}
		if (text[i] == '"') {
			in_string = false;
		} else if (text[i] == '\\' && i + 1 < len) {
			if (text[i + 1] == 'u' && i + 5 < len && !memcmp(text + i + 2, "0000", 4)) {
				*at = i;
				return true;
			}
			i++; /* the escaped character */
		}
	}
	return false;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 when ill-formed. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool rb_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(u + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

void rb_utf8_sanitize(const char *s, size_t len, struct rb_buf *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = 0;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(u + i, len - i);
		if (n) {
			i += n;
			continue;
		}
		rb_buf_add(out, s + start, i - start);
		rb_buf_adds(out, "\xEF\xBF\xBD"); /* U+FFFD REPLACEMENT CHARACTER */
		start = ++i;
	}
	rb_buf_add(out, s + start, len - start);
}

struct json_object *rb_json_parse(const char *text, size_t len, struct rb_err *err)
{
	if (len > INT_MAX) {
		rb_err_set(err, RB_ETOOBIG, "JSON document too large");
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		rb_err_set(err, RB_EINTERNAL, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* All input was taken. A bare number or literal ("42", "null") is only complete once
		 * the tokener sees the end of input, which a NUL byte tells it. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	if (jerr == json_tokener_continue) {
		rb_err_set(err, RB_EINVAL, "malformed JSON: unexpected end of input");
		json_object_put(obj);
		obj = NULL;
	} else if (jerr != json_tokener_success) {
		rb_err_set(err, RB_EINVAL, "malformed JSON at offset %zu: %s", end,
			   json_tokener_error_desc(jerr));
		obj = NULL;
	} else if (!obj) {
		rb_err_set(err, RB_EINVAL, "the JSON document is null");
	} else {
		while (end < len && strchr(" \t\r\n", text[end]))
			end++;
		if (end != len) {
			rb_err_set(err, RB_EINVAL, "malformed JSON: trailing data at offset %zu", end);
			json_object_put(obj);
			obj = NULL;
		}
	}
	json_tokener_free(tok);
	size_t at;
	if (obj && nul_escape_at(text, len, &at)) {
		rb_err_set(err, RB_EINVAL, "malformed JSON at offset %zu: \\u0000 (a NUL character) is "
			   "not allowed in a string", at);
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

const char *rb_json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

void rb_json_copy_str(char *dst, size_t len, struct json_object *obj, const char *key)
{
	const char *s = rb_json_str(obj, key);
	snprintf(dst, len, "%s", s ? s : "");
}

int64_t rb_json_int(struct json_object *obj, const char *key, int64_t def)
{
	struct json_object *v;
	if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

bool rb_json_bool(struct json_object *obj, const char *key, bool def)
{
	struct json_object *v;
	if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_boolean))
		return def;
	return json_object_get_boolean(v);
}

int rb_json_req_str(struct json_object *obj, const char *key, const char **out, struct rb_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return rb_err_set(err, RB_EINVAL, "missing field '%s'", key);
	if (!json_object_is_type(v, json_type_string))
		return rb_err_set(err, RB_EINVAL, "field '%s' must be a string", key);
	*out = json_object_get_string(v);
	if (!**out)
		return rb_err_set(err, RB_EINVAL, "field '%s' must not be empty", key);
	return 0;
}

int rb_json_req_u32(struct json_object *obj, const char *key, uint32_t *out, struct rb_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return rb_err_set(err, RB_EINVAL, "missing field '%s'", key);
	if (!json_object_is_type(v, json_type_int))
		return rb_err_set(err, RB_EINVAL, "field '%s' must be an integer", key);
	int64_t x = json_object_get_int64(v);
	if (x < 0 || x > UINT32_MAX)
		return rb_err_set(err, RB_EINVAL, "field '%s' must be between 0 and %u", key, UINT32_MAX);
	*out = (uint32_t)x;
	return 0;
}

const char *rb_json_compact(struct json_object *obj)
{
	return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void rb_json_add_str(struct json_object *obj, const char *key, const char *val)
{
	json_object_object_add(obj, key, val ? json_object_new_string(val) : NULL);
}

void rb_json_add_int(struct json_object *obj, const char *key, int64_t val)
{
	json_object_object_add(obj, key, json_object_new_int64(val));
}

void rb_json_add_bool(struct json_object *obj, const char *key, bool val)
{
	json_object_object_add(obj, key, json_object_new_boolean(val));
}

struct json_object *rb_json_read_file(const char *path, struct rb_err *err)
{
	struct rb_buf b = RB_BUF_INIT;
	struct json_object *obj = NULL;
	if (rb_fs_read_file(path, 16u << 20, &b, err) == 0) {
		obj = rb_json_parse(b.data, b.len, err);
		if (!obj)
			rb_err_prefix(err, "'%s'", path);
	}
	rb_buf_release(&b);
	return obj;
}

int rb_json_write_file(const char *path, struct json_object *obj, struct rb_err *err)
{
	const char *s = json_object_to_json_string_ext(
		obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct rb_buf b = RB_BUF_INIT;
	rb_buf_adds(&b, s);
	rb_buf_addch(&b, '\n');
	int rc = rb_fs_write_atomic(path, b.data, b.len, 0644, err);
	rb_buf_release(&b);
	return rc;
}
