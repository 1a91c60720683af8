/*
 * catalog.c - the hive's worker catalog source: a directory read with rb_catalog_dir, or an
 * rbee-catalog / Hono catalog server asked over HTTP. Both return the same entries, checked by
 * the same rb_catalog_entry_check(). Nothing is cached: every operation sees the catalog as it
 * is now, and the functions are safe to call from several job threads at once.
 */
#include "catalog.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "hive.h"
#include "rb_catalog_dir.h"
#include "rb_catalog_entry.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_json.h"
#include "rb_log.h"

#define CATALOG_TIMEOUT_MS 10000L

/* The catalog location as configured: a URL, or the directory path (file:// stripped). */
static const char *location(struct rb_hive *hive)
{
	const char *path = rb_http_file_url_path(hive->cfg.catalog);
	return path ? path : hive->cfg.catalog;
}

static bool is_http(struct rb_hive *hive)
{
	const char *c = hive->cfg.catalog;
	return !strncmp(c, "http://", 7) || !strncmp(c, "https://", 8);
}

const char *rb_catalog_source(struct rb_hive *hive)
{
	static _Thread_local char desc[PATH_MAX + 16];
	if (is_http(hive))
		return hive->cfg.catalog;
	snprintf(desc, sizeof(desc), "directory '%s'", location(hive));
	return desc;
}

/* The server's base URL without trailing slashes. */
static void base_url(struct rb_hive *hive, struct rb_buf *out)
{
	rb_buf_reset(out);
	rb_buf_adds(out, hive->cfg.catalog);
	while (out->len && out->data[out->len - 1] == '/')
		rb_buf_truncate(out, out->len - 1);
}

/* ----- HTTP mode ----- */

/* rb_http's own "cannot reach 'URL': reason" without its prefix: the reason. */
static const char *transport_reason(const struct rb_err *e)
{
	const char *r = e->msg;
	if (!strncmp(r, "cannot reach '", 14)) {
		const char *end = strstr(r + 14, "': ");
		if (end)
			return end + 3;
	}
	return r;
}

/* GET `url` of the catalog at `base`; the body is in resp (status checked by the caller). */
static int catalog_get(const char *base, const char *url, size_t max, struct rb_http_resp *resp,
		       struct rb_err *err)
{
	static const char *const headers[] = { "Accept: application/json, text/plain", NULL };
	struct rb_err e = RB_ERR_INIT;
	int rc = rb_http_request("GET", url, headers, NULL, 0, CATALOG_TIMEOUT_MS, max, resp, &e);
	if (rc == -RB_ETOOBIG)
		return rb_err_set(err, RB_EUNAVAIL,
				  "the worker catalog at '%s' answered garbage: '%s' is larger than %zu bytes",
				  base, url, max);
	if (rc == -RB_ETIMEDOUT)
		return rb_err_set(err, RB_EUNAVAIL,
				  "cannot reach the worker catalog at '%s': no answer from '%s' within %ld s",
				  base, url, CATALOG_TIMEOUT_MS / 1000);
	if (rc)
		return rb_err_set(err, RB_EUNAVAIL,
				  "cannot reach the worker catalog at '%s': %s (is the catalog server "
				  "running? check --catalog / RBEE_CATALOG_URL)",
				  base, transport_reason(&e));
	return 0;
}

static int garbage(struct rb_err *err, const char *base, const char *reason)
{
	return rb_err_set(err, RB_EUNAVAIL, "the worker catalog at '%s' answered garbage: %s", base,
			  reason);
}

static int bad_status(struct rb_err *err, const char *base, const char *url, long status)
{
	return rb_err_set(err, RB_EUNAVAIL,
			  "the worker catalog at '%s' answered HTTP %ld to 'GET %s' (is it a worker "
			  "catalog?)",
			  base, status, url);
}

/* Keep the valid entries of a GET /workers answer; report the others. */
static struct json_object *valid_entries(struct json_object *arr, const char *base,
					 rb_catalog_warn_fn warn, void *arg)
{
	struct json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		struct rb_err why = RB_ERR_INIT;
		if (rb_catalog_entry_check(e, NULL, &why) == 0) {
			json_object_array_add(out, json_object_get(e));
			continue;
		}
		char line[RB_ERR_MSG_MAX + 256];
		const char *id = rb_json_str(e, "id");
		snprintf(line, sizeof(line), "skipping entry %zu%s%s%s of the worker catalog at '%s': %s",
			 i, id ? " ('" : "", id ? id : "", id ? "')" : "", base, why.msg);
		if (warn)
			warn(arg, line);
	}
	return out;
}

static int http_list(struct rb_hive *hive, struct json_object **out, rb_catalog_warn_fn warn,
		     void *arg, struct rb_err *err)
{
	struct rb_buf base = RB_BUF_INIT, url = RB_BUF_INIT;
	struct rb_http_resp resp;
	struct json_object *doc = NULL, *arr;
	struct rb_err why = RB_ERR_INIT;
	rb_http_resp_init(&resp);
	base_url(hive, &base);
	rb_buf_addf(&url, "%s/workers", base.data);
	int rc = catalog_get(base.data, url.data, RB_CATALOG_LIST_MAX, &resp, err);
	if (!rc && resp.status != 200)
		rc = bad_status(err, base.data, url.data, resp.status);
	if (!rc && !(doc = rb_json_parse(resp.body.data, resp.body.len, &why)))
		rc = garbage(err, base.data, why.msg);
	if (!rc && (!json_object_object_get_ex(doc, "workers", &arr) ||
		    !json_object_is_type(arr, json_type_array)))
		rc = garbage(err, base.data, "expected {\"workers\":[...]} from GET /workers");
	if (!rc)
		*out = valid_entries(arr, base.data, warn, arg);
	json_object_put(doc);
	rb_http_resp_release(&resp);
	rb_buf_release(&base);
	rb_buf_release(&url);
	return rc;
}

static int http_get_entry(struct rb_hive *hive, const char *id, struct json_object **out,
			  struct rb_err *err)
{
	struct rb_buf base = RB_BUF_INIT, url = RB_BUF_INIT;
	struct rb_http_resp resp;
	struct json_object *doc = NULL;
	struct rb_err why = RB_ERR_INIT;
	rb_http_resp_init(&resp);
	base_url(hive, &base);
	rb_buf_addf(&url, "%s/workers/%s", base.data, id);
	int rc = catalog_get(base.data, url.data, RB_CATALOG_ENTRY_MAX, &resp, err);
	if (!rc && resp.status == 404)
		rc = rb_err_set(err, RB_ENOTFOUND, "worker '%s' not found in catalog '%s'", id,
				base.data);
	else if (!rc && resp.status != 200)
		rc = bad_status(err, base.data, url.data, resp.status);
	if (!rc && !(doc = rb_json_parse(resp.body.data, resp.body.len, &why)))
		rc = garbage(err, base.data, why.msg);
	if (!rc && rb_catalog_entry_check(doc, id, &why))
		rc = rb_err_set(err, RB_EUNAVAIL,
				"the worker catalog at '%s' answered garbage: its entry '%s' is "
				"malformed: %s",
				base.data, id, why.msg);
	if (!rc) {
		*out = doc;
		doc = NULL;
	}
	json_object_put(doc);
	rb_http_resp_release(&resp);
	rb_buf_release(&base);
	rb_buf_release(&url);
	return rc;
}

/* "scheme://authority" of a URL: the origin that "/path" references resolve against. */
static void url_origin(const char *url, struct rb_buf *out)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	rb_buf_reset(out);
	rb_buf_add(out, url, (size_t)(p - url) + n);
}

/* A reference against the server's base URL: absolute URLs pass, "/x" is origin-relative,
 * anything else is below the base. */
static int http_resolve(const char *base, const char *ref, struct rb_buf *out, struct rb_err *err)
{
	if (rb_catalog_ref_is_url(ref)) {
		rb_buf_reset(out);
		rb_buf_adds(out, ref);
		return 0;
	}
	bool rooted = ref[0] == '/' && ref[1] != '/';
	int rc = rb_catalog_ref_check("reference", rooted ? ref + 1 : ref, err);
	if (rc)
		return rc;
	if (rooted) {
		url_origin(base, out);
		rb_buf_adds(out, ref);
	} else {
		rb_buf_reset(out);
		rb_buf_addf(out, "%s/%s", base, ref);
	}
	return 0;
}

/* GET a PKGBUILD at `url` on behalf of the catalog at `base`. */
static int fetch_pkgbuild(const char *base, const char *id, const char *url, struct rb_buf *out,
			  struct rb_err *err)
{
	struct rb_http_resp resp;
	rb_http_resp_init(&resp);
	int rc = catalog_get(base, url, RB_CATALOG_PKGBUILD_MAX, &resp, err);
	if (!rc && resp.status != 200)
		rc = rb_err_set(err, RB_EUNAVAIL,
				"cannot fetch the PKGBUILD of worker '%s' from '%s': HTTP %ld (catalog '%s')",
				id, url, resp.status, base);
	if (!rc && strlen(resp.body.data) != resp.body.len)
		rc = garbage(err, base, "the PKGBUILD contains NUL bytes");
	if (!rc) {
		rb_buf_reset(out);
		rb_buf_add(out, resp.body.data, resp.body.len);
	}
	rb_http_resp_release(&resp);
	return rc;
}

static int http_pkgbuild(struct rb_hive *hive, const char *id, struct rb_buf *out,
			 struct rb_err *err)
{
	struct json_object *entry = NULL;
	struct rb_buf base = RB_BUF_INIT, url = RB_BUF_INIT;
	int rc = http_get_entry(hive, id, &entry, err);
	base_url(hive, &base);
	if (!rc && rb_catalog_pkgbuild_kind(entry) == RB_PKGBUILD_ROUTE) {
		/* The catalog's own route, kept under the base URL's path prefix. */
		rb_catalog_pkgbuild_route(id, &url);
		struct rb_buf route = RB_BUF_INIT;
		rb_buf_addf(&route, "%s%s", base.data, url.data);
		rb_buf_reset(&url);
		rb_buf_add(&url, route.data, route.len);
		rb_buf_release(&route);
	} else if (!rc) {
		rc = http_resolve(base.data, rb_json_str(entry, "pkgbuild_url"), &url, err);
	}
	if (!rc)
		rc = fetch_pkgbuild(base.data, id, url.data, out, err);
	json_object_put(entry);
	rb_buf_release(&base);
	rb_buf_release(&url);
	return rc;
}

/* ----- directory mode ----- */

/* Turn a failure to read the directory itself into the operator's message. */
static int dir_unreadable(struct rb_hive *hive, struct rb_err *err)
{
	char reason[RB_ERR_MSG_MAX];
	snprintf(reason, sizeof(reason), "%s", err->msg);
	return rb_err_set(err, RB_EUNAVAIL,
			  "cannot read the worker catalog directory '%s': %s (check --catalog / "
			  "RBEE_CATALOG_URL)",
			  location(hive), reason);
}

static int dir_list(struct rb_hive *hive, struct json_object **out, rb_catalog_warn_fn warn,
		    void *arg, struct rb_err *err)
{
	struct rb_catalog_dir cat;
	rb_catalog_dir_init(&cat);
	int rc = rb_catalog_dir_load(&cat, location(hive), warn, arg, err);
	if (rc)
		rc = dir_unreadable(hive, err);
	if (!rc) {
		struct json_object *doc = rb_catalog_dir_json(&cat);
		*out = json_object_get(json_object_object_get(doc, "workers"));
		json_object_put(doc);
	}
	rb_catalog_dir_release(&cat);
	return rc;
}

/* Load entry `id` of the directory catalog; the caller releases `cat`. */
static int dir_item(struct rb_hive *hive, const char *id, struct rb_catalog_dir *cat,
		    const struct rb_catalog_item **item, struct rb_err *err)
{
	const char *dir = location(hive);
	struct rb_buf workers = RB_BUF_INIT;
	rb_buf_addf(&workers, "%s/workers", dir);
	bool readable = rb_fs_is_dir(workers.data);
	rb_buf_release(&workers);
	if (!readable) {
		rb_err_set(err, RB_ENOTFOUND, "'%s' is not a worker catalog (it has no 'workers' folder)",
			   dir);
		return dir_unreadable(hive, err);
	}
	char path[RB_ERR_MSG_MAX];
	snprintf(path, sizeof(path), "%s/workers/%s.json", dir, id);
	int rc = rb_catalog_dir_load_one(cat, dir, id, err);
	if (rc == -RB_ENOTFOUND)
		return rb_err_set(err, RB_ENOTFOUND, "worker '%s' not found in catalog '%s'", id, dir);
	if (rc) {
		char reason[RB_ERR_MSG_MAX];
		snprintf(reason, sizeof(reason), "%s", err->msg);
		return rb_err_set(err, RB_EUNAVAIL,
				  "the catalog entry '%s' is malformed: %s (fix or remove the file)", path,
				  reason);
	}
	*item = &cat->items[0];
	return 0;
}

static int dir_pkgbuild(struct rb_hive *hive, const char *id, struct rb_buf *out,
			struct rb_err *err)
{
	struct rb_catalog_dir cat;
	const struct rb_catalog_item *it;
	rb_catalog_dir_init(&cat);
	int rc = dir_item(hive, id, &cat, &it, err);
	if (!rc && it->pkgbuild_path)
		rc = rb_fs_read_file(it->pkgbuild_path, RB_CATALOG_PKGBUILD_MAX, out, err);
	else if (!rc)
		rc = fetch_pkgbuild(location(hive), id, rb_json_str(it->entry, "pkgbuild_url"), out,
				    err);
	rb_catalog_dir_release(&cat);
	return rc;
}

/* ----- the interface ----- */

static void log_warning(void *arg, const char *msg)
{
	(void)arg;
	rb_warn("%s", msg);
}

int rb_catalog_list_warn(struct rb_hive *hive, struct json_object **out, rb_catalog_warn_fn warn,
			 void *arg, struct rb_err *err)
{
	*out = NULL;
	return is_http(hive) ? http_list(hive, out, warn, arg, err)
			     : dir_list(hive, out, warn, arg, err);
}

int rb_catalog_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err)
{
	return rb_catalog_list_warn(hive, out, log_warning, NULL, err);
}

int rb_catalog_get(struct rb_hive *hive, const char *id, struct json_object **out,
		   struct rb_err *err)
{
	*out = NULL;
	if (!rb_id_valid(id))
		return rb_err_set(err, RB_ENOTFOUND, "worker '%s' not found in catalog '%s'", id,
				  location(hive));
	if (is_http(hive))
		return http_get_entry(hive, id, out, err);
	struct rb_catalog_dir cat;
	const struct rb_catalog_item *it;
	rb_catalog_dir_init(&cat);
	int rc = dir_item(hive, id, &cat, &it, err);
	if (!rc)
		*out = json_object_get(it->entry);
	rb_catalog_dir_release(&cat);
	return rc;
}

int rb_catalog_pkgbuild(struct rb_hive *hive, const char *id, struct rb_buf *out,
			struct rb_err *err)
{
	if (!rb_id_valid(id))
		return rb_err_set(err, RB_ENOTFOUND, "worker '%s' not found in catalog '%s'", id,
				  location(hive));
	return is_http(hive) ? http_pkgbuild(hive, id, out, err) : dir_pkgbuild(hive, id, out, err);
}

int rb_catalog_resolve(struct rb_hive *hive, const char *ref, struct rb_buf *out,
		       struct rb_err *err)
{
	if (!ref || !*ref)
		return rb_err_set(err, RB_EINVAL, "empty reference to resolve against catalog '%s'",
				  location(hive));
	if (is_http(hive)) {
		struct rb_buf base = RB_BUF_INIT;
		base_url(hive, &base);
		int rc = http_resolve(base.data, ref, out, err);
		rb_buf_release(&base);
		return rc;
	}
	if (rb_catalog_ref_is_url(ref)) {
		rb_buf_reset(out);
		rb_buf_adds(out, ref);
		return 0;
	}
	return rb_catalog_dir_path(location(hive), ref, out, err);
}
