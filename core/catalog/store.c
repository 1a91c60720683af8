/*
 * store.c - the loaded catalog and its prepared responses (see store.h).
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "rb_catalog_entry.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* A response owning a copy of `len` bytes, with its Content-Type; `body` (if not NULL) keeps
 * another copy of the bytes. */
static struct MHD_Response *bytes_response(const char *data, size_t len, const char *type,
					   struct cat_body *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		abort(); /* only fails without memory */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (body) {
		body->data = malloc(len + 1);
		if (!body->data)
			abort();
		memcpy(body->data, data, len);
		body->data[len] = '\0';
		body->len = len;
		body->type = type;
	}
	return r;
}

/* JSON whose strings are UTF-8 whatever bytes the catalog files held. */
static struct MHD_Response *json_response(struct json_object *obj, struct cat_body *body)
{
	const char *s = rb_json_compact(obj);
	struct rb_buf clean = RB_BUF_INIT;
	rb_utf8_sanitize(s, strlen(s), &clean);
	struct MHD_Response *r = bytes_response(clean.data, clean.len, JSON_TYPE, body);
	rb_buf_release(&clean);
	return r;
}

/* The PKGBUILD answer of one item: its text, or a redirect to where it lives. */
static int pkgbuild_response(const struct rb_catalog_item *it, struct MHD_Response **out,
			     struct cat_body *body, struct rb_err *err)
{
	if (!it->pkgbuild_path) {
		struct MHD_Response *r = bytes_response("", 0, TEXT_TYPE, body);
		body->location = rb_json_str(it->entry, "pkgbuild_url");
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, body->location);
		*out = r;
		return 0;
	}
	struct rb_buf text = RB_BUF_INIT;
	int rc = rb_fs_read_file(it->pkgbuild_path, RB_CATALOG_PKGBUILD_MAX, &text, err);
	if (!rc)
		*out = bytes_response(text.data, text.len, TEXT_TYPE, body);
	rb_buf_release(&text);
	return rc;
}

static void log_skip(void *arg, const char *msg)
{
	(void)arg;
	rb_warn("%s", msg);
}

/* Drop item i from the directory listing (its PKGBUILD vanished or could not be read). */
static void drop_item(struct cat_store *s, size_t i)
{
	struct rb_catalog_dir *d = &s->dir;
	free(d->items[i].id);
	json_object_put(d->items[i].entry);
	free(d->items[i].pkgbuild_path);
	memmove(&d->items[i], &d->items[i + 1], (d->n - i - 1) * sizeof(d->items[0]));
	d->n--;
	d->skipped++;
}

static void prepare(struct cat_store *s)
{
	size_t n = s->dir.n ? s->dir.n : 1;
	s->entries = calloc(n, sizeof(*s->entries));
	s->pkgbuilds = calloc(n, sizeof(*s->pkgbuilds));
	s->entry_bodies = calloc(n, sizeof(*s->entry_bodies));
	s->pkgbuild_bodies = calloc(n, sizeof(*s->pkgbuild_bodies));
	if (!s->entries || !s->pkgbuilds || !s->entry_bodies || !s->pkgbuild_bodies)
		abort();
	for (size_t i = 0; i < s->dir.n;) {
		struct rb_err err = RB_ERR_INIT;
		if (pkgbuild_response(&s->dir.items[i], &s->pkgbuilds[i], &s->pkgbuild_bodies[i],
				      &err)) {
			rb_warn("skipping worker '%s': %s", s->dir.items[i].id, err.msg);
			drop_item(s, i);
			continue;
		}
		s->entries[i] = json_response(s->dir.items[i].entry, &s->entry_bodies[i]);
		i++;
	}
	struct json_object *all = rb_catalog_dir_json(&s->dir);
	s->workers = json_response(all, &s->workers_body);
	s->workers_bytes = s->workers_body.len;
	json_object_put(all);
}

int cat_store_load(struct cat_store **out, const char *dir, struct rb_err *err)
{
	*out = NULL;
	struct cat_store *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	rb_catalog_dir_init(&s->dir);
	int rc = rb_catalog_dir_load(&s->dir, dir, log_skip, NULL, err);
	if (rc) {
		cat_store_free(s);
		return rc;
	}
	prepare(s);
	*out = s;
	return 0;
}

void cat_store_free(struct cat_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->dir.n; i++) {
		if (s->entries && s->entries[i])
			MHD_destroy_response(s->entries[i]);
		if (s->pkgbuilds && s->pkgbuilds[i])
			MHD_destroy_response(s->pkgbuilds[i]);
		if (s->entry_bodies)
			free(s->entry_bodies[i].data);
		if (s->pkgbuild_bodies)
			free(s->pkgbuild_bodies[i].data);
	}
	if (s->workers)
		MHD_destroy_response(s->workers);
	free(s->workers_body.data);
	free(s->entries);
	free(s->pkgbuilds);
	free(s->entry_bodies);
	free(s->pkgbuild_bodies);
	rb_catalog_dir_release(&s->dir);
	free(s);
}

long cat_store_find(const struct cat_store *s, const char *id, size_t len)
{
	char key[129];
	if (len == 0 || len >= sizeof(key))
		return -1;
	memcpy(key, id, len);
	key[len] = '\0';
	const struct rb_catalog_item *it = rb_catalog_dir_find(&s->dir, key);
	return it ? (long)(it - s->dir.items) : -1;
}

