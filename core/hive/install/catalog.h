/*
 * catalog.h - the hive's view of the worker catalog, wherever it lives.
 *
 * The source (cfg.catalog) is an http(s) URL of an rbee-catalog / Hono catalog server, a
 * file:// URL, or a directory holding workers/<id>.json and pkgbuilds/<id>.PKGBUILD. Both
 * modes return identical data (entries checked by rb_catalog_entry_check(), pkgbuild_url as
 * rbee-catalog serves it). Network access is time-limited (10 s per request) and size-limited;
 * an unreachable catalog or one that answers garbage is a clear RB_EUNAVAIL error naming the
 * source. Nothing is cached and every function may be called from several jobs at once.
 * docs/CATALOG.md describes the directory format and the entry fields.
 */
#ifndef RB_CATALOG_H
#define RB_CATALOG_H

#include <json-c/json.h>

#include "jobs/jobs.h"
#include "rb_buf.h"
#include "rb_catalog_dir.h"
#include "rb_err.h"

struct rb_hive;

/* All entries, as a JSON array (caller puts it). Malformed entries are skipped with a warning
 * in the log. Errors: RB_EUNAVAIL "cannot reach the worker catalog at 'URL': ...", "the worker
 * catalog at 'URL' answered garbage: ...", "cannot read the worker catalog directory ...". */
int rb_catalog_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err);
/* The same, telling `warn` (may be NULL) about each skipped entry instead of the log. */
int rb_catalog_list_warn(struct rb_hive *hive, struct json_object **out, rb_catalog_warn_fn warn,
			 void *arg, struct rb_err *err);
/* One entry by id; RB_ENOTFOUND "worker 'x' not found in catalog '<source>'". A malformed
 * entry in a directory is RB_EUNAVAIL naming the file and the fault. */
int rb_catalog_get(struct rb_hive *hive, const char *id, struct json_object **out,
		   struct rb_err *err);
/* The PKGBUILD text of an entry: in a directory pkgbuilds/<id>.PKGBUILD (or the file its
 * pkgbuild_url names); from a server GET <catalog>/workers/<id>/PKGBUILD, or its pkgbuild_url
 * resolved against the catalog URL. At most 1 MiB. */
int rb_catalog_pkgbuild(struct rb_hive *hive, const char *id, struct rb_buf *out,
			struct rb_err *err);
/* Resolve a reference found in an entry or PKGBUILD (a relative path or URL) against the
 * catalog: directory mode -> absolute path of an existing file inside the catalog directory
 * (RB_EINVAL for absolute paths, '..' and symlinks that escape it; RB_ENOTFOUND when missing);
 * http mode -> absolute URL ("x/y" below the catalog URL, "/x" on its origin). Absolute URLs
 * ("https://...", "git+https://...") pass through unchanged. */
int rb_catalog_resolve(struct rb_hive *hive, const char *ref, struct rb_buf *out,
		       struct rb_err *err);
/* Human description of the source: "directory '/usr/share/rbee/catalog'" or the URL. The
 * string lives in a per-thread buffer until the thread's next call. */
const char *rb_catalog_source(struct rb_hive *hive);

/* Operation handlers (op_catalog.c), rows of the table in ops.c. */

#endif
