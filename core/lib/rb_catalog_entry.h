/*
 * rb_catalog_entry.h - one worker catalog entry: the fields SPEC section 5 names, checked one
 * way for everybody (rbee-catalog, the hive's directory mode and the hive's http mode).
 *
 * An entry is a JSON object. Required: id, implementation, worker_type, version, platforms,
 * architectures, name, description, license, build_system, source, build, depends,
 * makedepends, binary_name, install_path, supported_formats, supports_streaming,
 * supports_batching. Optional: pkgbuild_url, max_context_length, launch. Unknown fields are
 * kept and passed through untouched (newer catalogs may add some). docs/CATALOG.md describes
 * every field.
 */
#ifndef RB_CATALOG_ENTRY_H
#define RB_CATALOG_ENTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "rb_buf.h"
#include "rb_err.h"

/* Size limits: one workers/<id>.json, one PKGBUILD, a whole GET /workers answer. */
#define RB_CATALOG_ENTRY_MAX ((size_t)1 << 20)
#define RB_CATALOG_PKGBUILD_MAX ((size_t)1 << 20)
#define RB_CATALOG_LIST_MAX ((size_t)64 << 20)

/* The placeholders a `launch.args` template may use, NULL-terminated, without braces:
 * worker_id model_path model_id backend device port hive_url threads. */
extern const char *const rb_catalog_placeholders[];

/*
 * Check that `entry` is a complete, well-typed catalog entry. When `expect_id` is not NULL the
 * entry's id must equal it (the file name, or the id a client asked for). On failure the
 * message names the field and what it must be, e.g. "field 'platforms' has unknown value
 * 'beos' (use linux, macos or windows)"; callers prefix it with the file or URL.
 */
int rb_catalog_entry_check(struct json_object *entry, const char *expect_id, struct rb_err *err);

/* Where an entry's PKGBUILD lives, judged from its pkgbuild_url. */
enum rb_pkgbuild_kind {
	RB_PKGBUILD_ROUTE, /* absent or "/workers/<id>/PKGBUILD": the catalog's own route, which
			    * in a directory is pkgbuilds/<id>.PKGBUILD */
	RB_PKGBUILD_FILE,  /* a path relative to the catalog directory (directory catalogs only) */
	RB_PKGBUILD_URL,   /* an absolute http(s) URL */
};

/*
 * Classify the entry's pkgbuild_url (the entry must have passed rb_catalog_entry_check).
 * Anything else (file://, absolute paths, '..' segments, other route paths) was already refused
 * by the check.
 */
enum rb_pkgbuild_kind rb_catalog_pkgbuild_kind(struct json_object *entry);

/* The catalog route of an entry's PKGBUILD: "/workers/<id>/PKGBUILD". */
void rb_catalog_pkgbuild_route(const char *id, struct rb_buf *out);

/* True when `ref` starts with a URL scheme ("http:", "git+https:"...). */
bool rb_catalog_ref_is_url(const char *ref);

/*
 * Check a relative reference found in an entry or a PKGBUILD before it is resolved against a
 * catalog: not empty, not absolute, no '..' segment, no NUL, no backslash.
 * `what` names it in the message ("pkgbuild_url", "source 'x'").
 */
int rb_catalog_ref_check(const char *what, const char *ref, struct rb_err *err);

#endif
