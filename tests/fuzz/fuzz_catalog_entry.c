/*
 * fuzz_catalog_entry.c - the catalog entry checker (core/lib/rb_catalog_entry.c) on
 * workers/<id>.json as rbee-catalog and the hive read it: rb_json_parse, then
 * rb_catalog_entry_check, then rb_catalog_pkgbuild_kind on what passed.
 *
 * An accepted entry must be safe to use the way the hive uses it: its id a plain id, its
 * install_path absolute, without '..' and ending in binary_name, and its pkgbuild_url (when it
 * is not the route) either an http(s) URL or a relative path that rb_catalog_ref_check accepts.
 * The raw input also goes through rb_catalog_ref_check / rb_catalog_ref_is_url as a reference.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rb_catalog_entry.h"
#include "rb_fs.h"
#include "rb_json.h"

static bool has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return true;
	return false;
}

static void check_accepted(struct json_object *e)
{
	const char *id = rb_json_str(e, "id"), *bin = rb_json_str(e, "binary_name");
	const char *path = rb_json_str(e, "install_path");
	if (!id || !rb_id_valid(id) || !bin || !rb_id_valid(bin) || !path || path[0] != '/' ||
	    has_dotdot(path) || strcmp(strrchr(path, '/') + 1, bin))
		abort();
	const char *url = rb_json_str(e, "pkgbuild_url");
	struct rb_err err = RB_ERR_INIT;
	switch (rb_catalog_pkgbuild_kind(e)) {
	case RB_PKGBUILD_ROUTE:
		break;
	case RB_PKGBUILD_URL:
		if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
			abort();
		break;
	case RB_PKGBUILD_FILE:
		if (!url || rb_catalog_ref_check("pkgbuild_url", url, &err) != 0 || has_dotdot(url) ||
		    strlen(url) != (size_t)json_object_get_string_len(json_object_object_get(e, "pkgbuild_url")))
			abort(); /* a file path that leaves the catalog, or one cut by a NUL */
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rb_err err = RB_ERR_INIT;
	struct json_object *e = rb_json_parse((const char *)data, size, &err);
	if (e) {
		int rc = rb_catalog_entry_check(e, NULL, &err);
		if (rc == 0) {
			check_accepted(e);
			/* The same entry under its own file name passes; under another it does not. */
			const char *other = strcmp(rb_json_str(e, "id"), "other-id") ? "other-id" : "other";
			if (rb_catalog_entry_check(e, rb_json_str(e, "id"), &err) != 0 ||
			    rb_catalog_entry_check(e, other, &err) == 0)
				abort();
		} else if (rc != -RB_EINVAL || !err.msg[0]) {
			abort();
		}
		json_object_put(e);
	}

	/* The input as a reference (a PKGBUILD source path or a pkgbuild_url). */
	char *ref = malloc(size + 1);
	if (!ref)
		return 0;
	memcpy(ref, data, size);
	ref[size] = '\0';
	if (rb_catalog_ref_check("reference", ref, &err) == 0 &&
	    (!ref[0] || ref[0] == '/' || strchr(ref, '\\') || has_dotdot(ref)))
		abort();
	(void)rb_catalog_ref_is_url(ref);
	free(ref);
	return 0;
}
