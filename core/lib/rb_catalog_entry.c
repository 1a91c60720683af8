/*
 * rb_catalog_entry.c - validation of worker catalog entries (see rb_catalog_entry.h).
 */
#include "rb_catalog_entry.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rb_fs.h"
#include "rb_json.h"

const char *const rb_catalog_placeholders[] = {
	"worker_id", "model_path", "model_id", "backend", "device", "port", "hive_url", "threads", NULL,
};

static const char *const platforms[] = { "linux", "macos", "windows", NULL };
static const char *const architectures[] = { "x86_64", "aarch64", NULL };

#define LAUNCH_TIMEOUT_MAX 86400

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

/* "linux, macos or windows" */
static void list_words(const char *const *list, char *out, size_t len)
{
	size_t n = 0, used = 0;
	while (list[n])
		n++;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		const char *sep = i == 0 ? "" : (i + 1 == n ? " or " : ", ");
		int w = snprintf(out + used, len - used, "%s%s", sep, list[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* The field's value, or NULL (with *err set) when it is missing or JSON null. */
static struct json_object *field(struct json_object *obj, const char *key, struct rb_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		rb_err_set(err, RB_EINVAL, "field '%s' is missing", key);
		return NULL;
	}
	return v;
}

static int need_string(struct json_object *obj, const char *key, bool nonempty,
		       const char **out, struct rb_err *err)
{
	struct json_object *v = field(obj, key, err);
	if (!v)
		return -RB_EINVAL;
	if (!json_object_is_type(v, json_type_string))
		return rb_err_set(err, RB_EINVAL, "field '%s' must be a string", key);
	if (nonempty && json_object_get_string_len(v) == 0)
		return rb_err_set(err, RB_EINVAL, "field '%s' must not be empty", key);
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return rb_err_set(err, RB_EINVAL, "field '%s' must not contain NUL characters", key);
	if (out)
		*out = json_object_get_string(v);
	return 0;
}

static int need_type(struct json_object *obj, const char *key, enum json_type type,
		     const char *what, struct rb_err *err)
{
	struct json_object *v = field(obj, key, err);
	if (!v)
		return -RB_EINVAL;
	if (!json_object_is_type(v, type))
		return rb_err_set(err, RB_EINVAL, "field '%s' must be %s", key, what);
	return 0;
}

/* An array of non-empty strings; `allowed` (may be NULL) restricts the values. */
static int need_string_array(struct json_object *obj, const char *key, bool nonempty,
			     const char *const *allowed, struct rb_err *err)
{
	int rc = need_type(obj, key, json_type_array, "an array of strings", err);
	if (rc)
		return rc;
	struct json_object *arr = json_object_object_get(obj, key);
	size_t n = json_object_array_length(arr);
	if (nonempty && n == 0)
		return rb_err_set(err, RB_EINVAL, "field '%s' must not be empty", key);
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v))
			return rb_err_set(err, RB_EINVAL, "field '%s' must be an array of non-empty strings",
					  key);
		const char *s = json_object_get_string(v);
		if (allowed && !in_list(s, allowed)) {
			char words[128];
			list_words(allowed, words, sizeof(words));
			return rb_err_set(err, RB_EINVAL, "field '%s' has unknown value '%s' (use %s)",
					  key, s, words);
		}
	}
	return 0;
}

/* A backend name: what the plugin calls itself (cpu, cuda, metal or a third party's). */
static bool backend_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32 || !islower((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-')
			return false;
	return true;
}

static bool has_dotdot_segment(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2) {
		bool start = s == p || s[-1] == '/';
		bool end = s[2] == '\0' || s[2] == '/';
		if (start && end)
			return true;
	}
	return false;
}

int rb_catalog_ref_check(const char *what, const char *ref, struct rb_err *err)
{
	if (!ref || !*ref)
		return rb_err_set(err, RB_EINVAL, "%s is empty", what);
	if (ref[0] == '/')
		return rb_err_set(err, RB_EINVAL,
				  "%s '%s' is an absolute path: use a path relative to the catalog",
				  what, ref);
	if (strchr(ref, '\\'))
		return rb_err_set(err, RB_EINVAL, "%s '%s' must use '/' as separator", what, ref);
	if (has_dotdot_segment(ref))
		return rb_err_set(err, RB_EINVAL, "%s '%s' must not leave the catalog ('..')", what,
				  ref);
	return 0;
}

bool rb_catalog_ref_is_url(const char *ref)
{
	if (!isalpha((unsigned char)ref[0]))
		return false;
	const char *p = ref + 1;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return p[0] == ':' && p[1] == '/' && p[2] == '/';
}

void rb_catalog_pkgbuild_route(const char *id, struct rb_buf *out)
{
	rb_buf_reset(out);
	rb_buf_addf(out, "/workers/%s/PKGBUILD", id);
}

static bool is_route(struct json_object *entry, const char *url)
{
	struct rb_buf route = RB_BUF_INIT;
	rb_catalog_pkgbuild_route(rb_json_str(entry, "id"), &route);
	bool same = !strcmp(url, route.data);
	rb_buf_release(&route);
	return same;
}

enum rb_pkgbuild_kind rb_catalog_pkgbuild_kind(struct json_object *entry)
{
	const char *url = rb_json_str(entry, "pkgbuild_url");
	if (!url || is_route(entry, url))
		return RB_PKGBUILD_ROUTE;
	if (rb_catalog_ref_is_url(url))
		return RB_PKGBUILD_URL;
	return RB_PKGBUILD_FILE;
}

/* Absent, the entry's own route, an http(s) URL, or a path relative to the catalog. */
static int check_pkgbuild_url(struct json_object *entry, struct rb_err *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(entry, "pkgbuild_url", &v) || !v)
		return 0;
	const char *url;
	int rc = need_string(entry, "pkgbuild_url", true, &url, err);
	if (rc || is_route(entry, url))
		return rc;
	if (rb_catalog_ref_is_url(url)) {
		if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
			return rb_err_set(err, RB_EINVAL,
					  "field 'pkgbuild_url' '%s' must be an http(s) URL, a path "
					  "relative to the catalog, or left out",
					  url);
		return 0;
	}
	if (url[0] == '/')
		return rb_err_set(err, RB_EINVAL,
				  "field 'pkgbuild_url' '%s' must be '/workers/%s/PKGBUILD', an "
				  "http(s) URL, a path relative to the catalog, or left out",
				  url, rb_json_str(entry, "id"));
	return rb_catalog_ref_check("field 'pkgbuild_url'", url, err);
}

/* install_path: absolute, no '..', and naming binary_name. */
static int check_install_path(struct json_object *entry, struct rb_err *err)
{
	const char *bin, *path;
	int rc = need_string(entry, "binary_name", true, &bin, err);
	if (!rc && !rb_id_valid(bin))
		rc = rb_err_set(err, RB_EINVAL,
				"field 'binary_name' '%s' must be a plain file name "
				"(A-Z a-z 0-9 . _ -, not starting with '.')",
				bin);
	if (!rc)
		rc = need_string(entry, "install_path", true, &path, err);
	if (rc)
		return rc;
	const char *base = strrchr(path, '/');
	if (path[0] != '/' || has_dotdot_segment(path))
		return rb_err_set(err, RB_EINVAL,
				  "field 'install_path' '%s' must be an absolute path without '..'", path);
	if (strcmp(base + 1, bin))
		return rb_err_set(err, RB_EINVAL,
				  "field 'install_path' '%s' must end in the binary_name '%s'", path, bin);
	return 0;
}

static int check_source(struct json_object *entry, struct rb_err *err)
{
	int rc = need_type(entry, "source", json_type_object, "an object", err);
	struct json_object *src = json_object_object_get(entry, "source");
	if (!rc && (need_string(src, "type", true, NULL, err) ||
		    need_string(src, "url", true, NULL, err)))
		rc = rb_err_prefix(err, "field 'source'");
	if (!rc)
		rc = need_type(entry, "build", json_type_object, "an object", err);
	return rc;
}

/* Every "{name}" in a template argument must be a known placeholder. */
static int check_placeholders(const char *arg, size_t idx, struct rb_err *err)
{
	for (const char *p = strchr(arg, '{'); p; p = strchr(p + 1, '{')) {
		const char *end = strchr(p, '}');
		if (!end)
			return rb_err_set(err, RB_EINVAL, "launch.args[%zu] '%s' has an unclosed '{'",
					  idx, arg);
		char name[32];
		size_t n = (size_t)(end - p - 1);
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, p + 1, n);
		name[n] = '\0';
		if (!in_list(name, rb_catalog_placeholders))
			return rb_err_set(err, RB_EINVAL,
					  "launch.args[%zu] '%s' uses unknown placeholder '{%s}' (known: "
					  "worker_id, model_path, model_id, backend, device, port, hive_url, threads)",
					  idx, arg, name);
	}
	return 0;
}

static int check_launch_args(struct json_object *launch, struct rb_err *err)
{
	struct json_object *args;
	if (!json_object_object_get_ex(launch, "args", &args) ||
	    !json_object_is_type(args, json_type_array) || json_object_array_length(args) == 0)
		return rb_err_set(err, RB_EINVAL, "field 'launch.args' must be a non-empty array of strings");
	for (size_t i = 0; i < json_object_array_length(args); i++) {
		struct json_object *a = json_object_array_get_idx(args, i);
		if (!json_object_is_type(a, json_type_string))
			return rb_err_set(err, RB_EINVAL, "launch.args[%zu] must be a string", i);
		int rc = check_placeholders(json_object_get_string(a), i, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* launch: {"args":[...], "health_path":"/health", "ready_timeout_s":N}; optional. */
static int check_launch(struct json_object *entry, struct rb_err *err)
{
	struct json_object *launch, *v;
	if (!json_object_object_get_ex(entry, "launch", &launch) || !launch)
		return 0;
	if (!json_object_is_type(launch, json_type_object))
		return rb_err_set(err, RB_EINVAL, "field 'launch' must be an object");
	int rc = check_launch_args(launch, err);
	if (rc)
		return rc;
	if (json_object_object_get_ex(launch, "health_path", &v) &&
	    (!json_object_is_type(v, json_type_string) || json_object_get_string(v)[0] != '/'))
		return rb_err_set(err, RB_EINVAL, "field 'launch.health_path' must be a path starting with '/'");
	if (json_object_object_get_ex(launch, "ready_timeout_s", &v) &&
	    (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	     json_object_get_int64(v) > LAUNCH_TIMEOUT_MAX))
		return rb_err_set(err, RB_EINVAL,
				  "field 'launch.ready_timeout_s' must be an integer from 1 to %d",
				  LAUNCH_TIMEOUT_MAX);
	return 0;
}

static int check_identity(struct json_object *entry, const char *expect_id, struct rb_err *err)
{
	const char *id, *type;
	int rc = need_string(entry, "id", true, &id, err);
	if (rc)
		return rc;
	if (!rb_id_valid(id))
		return rb_id_check("worker id", id, err);
	if (expect_id && strcmp(id, expect_id))
		return rb_err_set(err, RB_EINVAL, "field 'id' is '%s' but must be '%s'", id, expect_id);
	rc = need_string(entry, "worker_type", true, &type, err);
	if (!rc && !backend_name_valid(type))
		rc = rb_err_set(err, RB_EINVAL,
				"field 'worker_type' '%s' must be a backend name such as cpu, cuda or metal",
				type);
	return rc;
}

static int check_descriptive(struct json_object *entry, struct rb_err *err)
{
	static const char *const nonempty[] = { "implementation", "version", "name", "license",
						"build_system", NULL };
	for (const char *const *k = nonempty; *k; k++) {
		int rc = need_string(entry, *k, true, NULL, err);
		if (rc)
			return rc;
	}
	return need_string(entry, "description", false, NULL, err);
}

static int check_capabilities(struct json_object *entry, struct rb_err *err)
{
	int rc = need_string_array(entry, "supported_formats", false, NULL, err);
	if (!rc)
		rc = need_type(entry, "supports_streaming", json_type_boolean, "true or false", err);
	if (!rc)
		rc = need_type(entry, "supports_batching", json_type_boolean, "true or false", err);
	struct json_object *v;
	if (!rc && json_object_object_get_ex(entry, "max_context_length", &v) && v &&
	    (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
	     json_object_get_int64(v) > INT32_MAX))
		rc = rb_err_set(err, RB_EINVAL,
				"field 'max_context_length' must be a non-negative integer");
	return rc;
}

int rb_catalog_entry_check(struct json_object *entry, const char *expect_id, struct rb_err *err)
{
	if (!json_object_is_type(entry, json_type_object))
		return rb_err_set(err, RB_EINVAL, "a catalog entry must be a JSON object");
	int rc = check_identity(entry, expect_id, err);
	if (!rc)
		rc = check_descriptive(entry, err);
	if (!rc)
		rc = need_string_array(entry, "platforms", true, platforms, err);
	if (!rc)
		rc = need_string_array(entry, "architectures", true, architectures, err);
	if (!rc)
		rc = check_pkgbuild_url(entry, err);
	if (!rc)
		rc = check_source(entry, err);
	if (!rc)
		rc = need_string_array(entry, "depends", false, NULL, err);
	if (!rc)
		rc = need_string_array(entry, "makedepends", false, NULL, err);
	if (!rc)
		rc = check_install_path(entry, err);
	if (!rc)
		rc = check_capabilities(entry, err);
	if (!rc)
		rc = check_launch(entry, err);
	return rc;
}
