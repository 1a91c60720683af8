/*
 * rb_catalog_dir.c - reading a catalog directory (see rb_catalog_dir.h).
 */
#include "rb_catalog_dir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rb_catalog_entry.h"
#include "rb_fs.h"
#include "rb_json.h"

#define JSON_SUFFIX ".json"

void rb_catalog_dir_init(struct rb_catalog_dir *cat)
{
	memset(cat, 0, sizeof(*cat));
}

static void item_release(struct rb_catalog_item *it)
{
	free(it->id);
	json_object_put(it->entry);
	free(it->pkgbuild_path);
	memset(it, 0, sizeof(*it));
}

void rb_catalog_dir_release(struct rb_catalog_dir *cat)
{
	for (size_t i = 0; i < cat->n; i++)
		item_release(&cat->items[i]);
	free(cat->items);
	free(cat->root);
	rb_catalog_dir_init(cat);
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort(); /* same policy as rb_buf: no memory, nothing useful to do */
	return p;
}

/* Is `path` (resolved) equal to or below `root` (resolved)? */
static bool inside(const char *root, const char *path)
{
	size_t n = strlen(root);
	if (strncmp(root, path, n))
		return false;
	return path[n] == '/' || path[n] == '\0' || (n == 1 && root[0] == '/');
}

int rb_catalog_dir_path(const char *root, const char *ref, struct rb_buf *out, struct rb_err *err)
{
	int rc = rb_catalog_ref_check("path", ref, err);
	if (rc)
		return rc;
	char real_root[PATH_MAX], real[PATH_MAX];
	if (!realpath(root, real_root))
		return rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO,
				  "cannot open the catalog directory '%s': %s", root, strerror(errno));
	struct rb_buf joined = RB_BUF_INIT;
	rb_buf_addf(&joined, "%s/%s", real_root, ref);
	if (!realpath(joined.data, real)) {
		int e = errno;
		rc = rb_err_set(err, e == ENOENT || e == ENOTDIR ? RB_ENOTFOUND : RB_EIO,
				"'%s' not found in the catalog directory '%s'", ref, real_root);
	} else if (!inside(real_root, real)) {
		rc = rb_err_set(err, RB_EINVAL,
				"'%s' leads out of the catalog directory '%s' (a symlink to '%s')", ref,
				real_root, real);
	} else {
		rb_buf_reset(out);
		rb_buf_adds(out, real);
	}
	rb_buf_release(&joined);
	return rc;
}

/* Fill pkgbuild_url as served and find the PKGBUILD file of a checked entry. */
static int locate_pkgbuild(struct rb_catalog_item *it, const char *root, struct rb_err *err)
{
	struct rb_buf ref = RB_BUF_INIT, path = RB_BUF_INIT, route = RB_BUF_INIT;
	int rc = 0;
	switch (rb_catalog_pkgbuild_kind(it->entry)) {
	case RB_PKGBUILD_URL:
		goto out; /* served as written; fetched from there */
	case RB_PKGBUILD_ROUTE:
		rb_buf_addf(&ref, "pkgbuilds/%s.PKGBUILD", it->id);
		break;
	case RB_PKGBUILD_FILE:
		rb_buf_adds(&ref, rb_json_str(it->entry, "pkgbuild_url"));
		break;
	}
	rc = rb_catalog_dir_path(root, ref.data, &path, err);
	struct stat st;
	if (!rc && (stat(path.data, &st) != 0 || !S_ISREG(st.st_mode)))
		rc = rb_err_set(err, RB_EINVAL, "its PKGBUILD '%s' is not a regular file", ref.data);
	if (rc) {
		rb_err_prefix(err, "no PKGBUILD");
		goto out;
	}
	it->pkgbuild_path = rb_buf_detach(&path, NULL);
	rb_catalog_pkgbuild_route(it->id, &route);
	json_object_object_add(it->entry, "pkgbuild_url", json_object_new_string(route.data));
out:
	rb_buf_release(&ref);
	rb_buf_release(&path);
	rb_buf_release(&route);
	return rc;
}

/* Read, check and complete workers/<id>.json of the catalog at `root`. */
static int load_item(struct rb_catalog_item *it, const char *root, const char *id,
		     struct rb_err *err)
{
	struct rb_buf path = RB_BUF_INIT, text = RB_BUF_INIT;
	struct stat st;
	int rc = 0;
	memset(it, 0, sizeof(*it));
	rb_buf_addf(&path, "%s/workers/%s%s", root, id, JSON_SUFFIX);
	if (stat(path.data, &st) != 0)
		rc = rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO, "cannot open '%s': %s",
				path.data, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = rb_err_set(err, RB_EINVAL, "'%s' is not a regular file", path.data);
	if (!rc)
		rc = rb_fs_read_file(path.data, RB_CATALOG_ENTRY_MAX, &text, err);
	if (!rc && !(it->entry = rb_json_parse(text.data, text.len, err)))
		rc = -RB_EINVAL;
	if (!rc)
		rc = rb_catalog_entry_check(it->entry, id, err);
	if (!rc) {
		it->id = xstrdup(id);
		rc = locate_pkgbuild(it, root, err);
	}
	if (rc)
		item_release(it);
	rb_buf_release(&path);
	rb_buf_release(&text);
	return rc;
}

static int set_root(struct rb_catalog_dir *cat, const char *dir, struct rb_err *err)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO,
				  "cannot open the catalog directory '%s': %s", dir, strerror(errno));
	cat->root = xstrdup(real);
	return 0;
}

static void add_item(struct rb_catalog_dir *cat, struct rb_catalog_item *it, size_t *cap)
{
	if (cat->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		struct rb_catalog_item *p = realloc(cat->items, *cap * sizeof(*p));
		if (!p)
			abort();
		cat->items = p;
	}
	cat->items[cat->n++] = *it;
}

static void warnf(rb_catalog_warn_fn warn, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void warnf(rb_catalog_warn_fn warn, void *arg, const char *fmt, ...)
{
	if (!warn)
		return;
	char line[RB_ERR_MSG_MAX + PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	warn(arg, line);
}

/* One directory entry of workers/: load it or say why not. */
static void load_file(struct rb_catalog_dir *cat, const char *name, size_t *cap,
		      rb_catalog_warn_fn warn, void *arg)
{
	size_t len = strlen(name), sl = strlen(JSON_SUFFIX);
	if (name[0] == '.' || len <= sl || strcmp(name + len - sl, JSON_SUFFIX))
		return; /* not an entry: editor backups, READMEs, hidden files */
	char id[NAME_MAX + 1];
	memcpy(id, name, len - sl);
	id[len - sl] = '\0';
	struct rb_err err = RB_ERR_INIT;
	struct rb_catalog_item it;
	if (!rb_id_valid(id))
		rb_id_check("worker id", id, &err);
	else
		load_item(&it, cat->root, id, &err);
	if (err.code) {
		cat->skipped++;
		warnf(warn, arg, "skipping '%s/workers/%s': %s", cat->root, name, err.msg);
		return;
	}
	add_item(cat, &it, cap);
}

static int by_id(const void *a, const void *b)
{
	const struct rb_catalog_item *x = a, *y = b;
	return strcmp(x->id, y->id);
}

int rb_catalog_dir_load(struct rb_catalog_dir *cat, const char *dir, rb_catalog_warn_fn warn,
			void *arg, struct rb_err *err)
{
	int rc = set_root(cat, dir, err);
	if (rc)
		return rc;
	struct rb_buf workers = RB_BUF_INIT;
	rb_buf_addf(&workers, "%s/workers", cat->root);
	DIR *d = opendir(workers.data);
	if (!d) {
		rc = rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO,
				"'%s' is not a worker catalog: cannot read '%s': %s", dir, workers.data,
				strerror(errno));
		rb_buf_release(&workers);
		return rc;
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		load_file(cat, de->d_name, &cap, warn, arg);
	closedir(d);
	rb_buf_release(&workers);
	if (cat->n)
		qsort(cat->items, cat->n, sizeof(cat->items[0]), by_id);
	return 0;
}

int rb_catalog_dir_load_one(struct rb_catalog_dir *cat, const char *dir, const char *id,
			    struct rb_err *err)
{
	int rc = set_root(cat, dir, err);
	if (rc)
		return rc;
	if (!rb_id_valid(id))
		return rb_err_set(err, RB_ENOTFOUND, "no worker '%s' in '%s'", id, cat->root);
	struct rb_catalog_item it;
	rc = load_item(&it, cat->root, id, err);
	if (rc)
		return rc;
	size_t cap = 0;
	add_item(cat, &it, &cap);
	return 0;
}

const struct rb_catalog_item *rb_catalog_dir_find(const struct rb_catalog_dir *cat, const char *id)
{
	if (!cat->n || !id)
		return NULL;
	struct rb_catalog_item key = { .id = (char *)id };
	return bsearch(&key, cat->items, cat->n, sizeof(key), by_id);
}

struct json_object *rb_catalog_dir_json(const struct rb_catalog_dir *cat)
{
	struct json_object *arr = json_object_new_array_ext((int)cat->n);
	for (size_t i = 0; i < cat->n; i++)
		json_object_array_add(arr, json_object_get(cat->items[i].entry));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "workers", arr);
	return o;
}
