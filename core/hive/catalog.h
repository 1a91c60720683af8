/*
 * catalog.h - the hive's view of the worker catalog, wherever it lives.
 *
 * The source (cfg.catalog) is an http(s) URL of an rbee-catalog / Hono catalog server, a
 * file:// URL, or a directory holding workers/<id>.json and pkgbuilds/<id>.PKGBUILD. Both
 * modes return identical data. Network access is time-limited; an unreachable catalog or one
 * that answers garbage is a clear RB_EUNAVAIL error naming the source.
 */
#ifndef RB_CATALOG_H
#define RB_CATALOG_H

#include <json-c/json.h>

#include "rb_buf.h"
#include "rb_err.h"

struct rb_hive;

/* All entries, as a JSON array (caller puts it). Malformed entries in a directory are skipped
 * with a warning in the log. */
int rb_catalog_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err);
/* One entry by id; RB_ENOTFOUND "worker 'x' not found in catalog '<source>'". */
int rb_catalog_get(struct rb_hive *hive, const char *id, struct json_object **out,
		   struct rb_err *err);
/* The PKGBUILD text of an entry (its pkgbuild_url, else the catalog's /workers/{id}/PKGBUILD). */
int rb_catalog_pkgbuild(struct rb_hive *hive, const char *id, struct rb_buf *out,
			struct rb_err *err);
/* Resolve a reference found in an entry or PKGBUILD (a relative path or URL) against the
 * catalog: directory mode -> absolute path (refusing escapes out of the catalog directory);
 * http mode -> absolute URL. Absolute URLs pass through. */
int rb_catalog_resolve(struct rb_hive *hive, const char *ref, struct rb_buf *out,
		       struct rb_err *err);
/* Human description of the source: "directory '/usr/share/rbee/catalog'" or the URL. */
const char *rb_catalog_source(struct rb_hive *hive);

#endif
