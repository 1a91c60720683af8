/*
 * rb_catalog_dir.h - a catalog directory read from disk: workers/<id>.json plus
 * pkgbuilds/<id>.PKGBUILD, the one reader behind rbee-catalog and the hive's directory mode.
 *
 * Loading checks every entry with rb_catalog_entry_check() (its id must equal its file name)
 * and that its PKGBUILD exists inside the directory. A bad entry is reported through the warn
 * callback and skipped; only an unreadable directory fails the load. The entries come out as
 * served: sorted by id, pkgbuild_url always set ("/workers/<id>/PKGBUILD" unless the file names
 * an http(s) URL), so rbee-catalog and directory mode give byte-identical JSON.
 */
#ifndef RB_CATALOG_DIR_H
#define RB_CATALOG_DIR_H

#include <stddef.h>

#include <json-c/json.h>

#include "rb_buf.h"
#include "rb_err.h"

struct rb_catalog_item {
	char *id;
	struct json_object *entry; /* as served (owned) */
	char *pkgbuild_path;       /* absolute path of the PKGBUILD; NULL when it is a remote URL */
};

struct rb_catalog_dir {
	char *root;                    /* the directory, resolved (realpath) */
	struct rb_catalog_item *items; /* sorted by id */
	size_t n;
	size_t skipped;                /* malformed entries left out */
};

/* Receives one line per skipped entry: "skipping 'DIR/workers/x.json': <reason>". */
typedef void (*rb_catalog_warn_fn)(void *arg, const char *msg);

void rb_catalog_dir_init(struct rb_catalog_dir *cat);
void rb_catalog_dir_release(struct rb_catalog_dir *cat);

/*
 * Load every entry of the catalog directory `dir` into `cat` (which must be initialized and
 * empty). Fails (RB_ENOTFOUND / RB_EIO) only when `dir` or its workers/ folder cannot be read;
 * `warn` (may be NULL) hears about each skipped entry.
 */
int rb_catalog_dir_load(struct rb_catalog_dir *cat, const char *dir, rb_catalog_warn_fn warn,
			void *arg, struct rb_err *err);

/*
 * Load the one entry `id` of the catalog directory `dir` into `cat`, the same way: RB_ENOTFOUND
 * when workers/<id>.json does not exist (or id is not a plain id), RB_EINVAL with the reason when
 * the entry is malformed.
 */
int rb_catalog_dir_load_one(struct rb_catalog_dir *cat, const char *dir, const char *id,
			    struct rb_err *err);

/* The item with this id, or NULL. */
const struct rb_catalog_item *rb_catalog_dir_find(const struct rb_catalog_dir *cat, const char *id);

/* {"workers":[entry,...]} - a new object sharing the entries (json_object_get). */
struct json_object *rb_catalog_dir_json(const struct rb_catalog_dir *cat);

/*
 * Resolve `ref`, a path relative to the catalog directory `root`, to an absolute path of an
 * existing file or directory inside it. Refuses absolute paths, '..' segments and symlinks that
 * lead out of `root` (RB_EINVAL); RB_ENOTFOUND when nothing exists there.
 */
int rb_catalog_dir_path(const char *root, const char *ref, struct rb_buf *out, struct rb_err *err);

#endif
