/*
 * rb_json.h - small helpers over json-c for reading requests and files strictly.
 */
#ifndef RB_JSON_H
#define RB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "rb_buf.h"
#include "rb_err.h"

/* Parse text as JSON (the whole text, nothing trailing; a bare "null" is an error too).
 * NULL and *err on failure. Refused as well: invalid UTF-8, and a \u0000 escape in a string
 * or key (json-c would keep the NUL and every C reader would see the value cut there). */
struct json_object *rb_json_parse(const char *text, size_t len, struct rb_err *err);
/* Field accessors: NULL / default when absent or of another type. */
const char *rb_json_str(struct json_object *obj, const char *key);
int64_t rb_json_int(struct json_object *obj, const char *key, int64_t def);
bool rb_json_bool(struct json_object *obj, const char *key, bool def);
/* Copy a string field into a fixed buffer ("" when absent or not a string), truncating. */
void rb_json_copy_str(char *dst, size_t len, struct json_object *obj, const char *key);
/* Strict accessors for request validation: missing or wrong type -> RB_EINVAL naming the field. */
int rb_json_req_str(struct json_object *obj, const char *key, const char **out, struct rb_err *err);
int rb_json_req_u32(struct json_object *obj, const char *key, uint32_t *out, struct rb_err *err);
/* Serialize compactly (no spaces, slashes not escaped). The string lives as long as obj. */
const char *rb_json_compact(struct json_object *obj);
/* Add helpers that accept NULL strings (stored as JSON null). */
void rb_json_add_str(struct json_object *obj, const char *key, const char *val);
void rb_json_add_int(struct json_object *obj, const char *key, int64_t val);
void rb_json_add_bool(struct json_object *obj, const char *key, bool val);
/* Whether s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). */
bool rb_utf8_valid(const char *s, size_t len);
/* Append s[0..len) to out with every ill-formed sequence replaced by U+FFFD. Text that came
 * from outside (build output, logs, catalog strings) goes through this before it enters JSON
 * or an event stream, so what the hive sends is always valid UTF-8. */
void rb_utf8_sanitize(const char *s, size_t len, struct rb_buf *out);
/* Read and parse a JSON file; RB_ENOTFOUND when missing. */
struct json_object *rb_json_read_file(const char *path, struct rb_err *err);
/* Write obj pretty-printed atomically. */
int rb_json_write_file(const char *path, struct json_object *obj, struct rb_err *err);

#endif
