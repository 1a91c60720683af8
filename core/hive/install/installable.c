/*
 * installable.c - whether a catalog entry can be installed on this node (see installable.h).
 */
#include "installable.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "verify.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* ---- platform and backend ---------------------------------------------------------------- */

static bool json_array_has(struct json_object *arr, const char *s)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *v = json_object_get_string(json_object_array_get_idx(arr, i));
		if (v && !strcasecmp(v, s))
			return true;
	}
	return false;
}

static void join_array(struct json_object *arr, struct rb_buf *out)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		rb_buf_addf(out, "%s%s", i ? "/" : "", json_object_get_string(json_object_array_get_idx(arr, i)));
}

int rb_installable_platform(struct json_object *entry, const char *id, struct rb_err *err)
{
	struct json_object *plats = NULL, *archs = NULL;
	json_object_object_get_ex(entry, "platforms", &plats);
	json_object_object_get_ex(entry, "architectures", &archs);
	bool os_ok = !json_object_is_type(plats, json_type_array) || json_array_has(plats, rb_node_os());
	bool arch_ok = !json_object_is_type(archs, json_type_array) ||
		       json_array_has(archs, rb_node_arch());
	if (os_ok && arch_ok)
		return 0;
	struct rb_buf p = RB_BUF_INIT, a = RB_BUF_INIT;
	if (json_object_is_type(plats, json_type_array))
		join_array(plats, &p);
	if (json_object_is_type(archs, json_type_array))
		join_array(archs, &a);
	int rc = rb_err_set(err, RB_EUNAVAIL, "worker '%s' supports %s on %s; this node is %s %s",
			    id, p.len ? p.data : "any platform", a.len ? a.data : "any architecture",
			    rb_node_os(), rb_node_arch());
	rb_buf_release(&p);
	rb_buf_release(&a);
	return rc;
}

int rb_installable_backend(struct rb_hive *hive, const char *backend, struct rb_err *err)
{
	struct rb_backend_info info;
	struct rb_err e2 = RB_ERR_INIT;
	memset(&info, 0, sizeof(info));
	if (rb_backends_get(hive, backend, &info, &e2) != 0)
		return rb_err_set(err, RB_EUNAVAIL, "backend '%s' is not available on this node: %s",
				  backend, e2.code == RB_ENOTFOUND ? "no plugin of that name is loaded "
				  "(see 'rbee hive backends')" : e2.msg);
	int rc = 0;
	if (info.state != RB_BACKEND_AVAILABLE)
		rc = rb_err_set(err, RB_EUNAVAIL, "backend '%s' is not available on this node: %s",
				backend, info.reason[0] ? info.reason : "its probe said so");
	rb_backend_info_release(&info);
	return rc;
}

/* ---- build tools ------------------------------------------------------------------------- */

/* makedepends names (Arch package names, as PKGBUILDs write them) that stand for a command a
 * build runs. Names not listed (libraries such as gcc-libs or openssl) are not checked. */
static const struct tool {
	const char *name, *command, *debian;
} tools[] = {
	{ "cmake", "cmake", "cmake" },       { "git", "git", "git" },
	{ "gcc", "gcc", "gcc" },             { "cargo", "cargo", "cargo" },
	{ "rust", "rustc", "rustc" },        { "pkgconf", "pkg-config", "pkgconf" },
	{ "pkg-config", "pkg-config", "pkgconf" }, { "make", "make", "make" },
	{ "ninja", "ninja", "ninja-build" },
};

const char *rb_makedepend_command(const char *name, const char **debian)
{
	for (size_t i = 0; name && i < sizeof(tools) / sizeof(tools[0]); i++)
		if (!strcmp(name, tools[i].name)) {
			if (debian)
				*debian = tools[i].debian;
			return tools[i].command;
		}
	return NULL;
}

const char *rb_installable_path(const char *path)
{
	return path && *path ? path : DEFAULT_PATH;
}

/* Whether a user with no relation to `path` (the build user: a uid of its own, no groups) has
 * the "other" bits `want` on it and may search every directory above it; else why not. */
static bool others_reach(const char *path, unsigned want, char *why, size_t len)
{
	char dir[PATH_MAX];
	struct stat st;
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) || stat(path, &st) != 0) {
		snprintf(why, len, "'%s' cannot be read", path);
		return false;
	}
	if ((st.st_mode & want) != want) {
		snprintf(why, len, "'%s' has mode %04o", path, (unsigned)(st.st_mode & 07777));
		return false;
	}
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		*slash = '\0';
		const char *d = dir[0] ? dir : "/";
		if (stat(d, &st) != 0 || !(st.st_mode & S_IXOTH)) {
			snprintf(why, len, "directory '%s' has mode %04o", d,
				 (unsigned)(st.st_mode & 07777));
			return false;
		}
	}
	return true;
}

/* The build user can run `file`: through its path (the directories it is found in) and, for a
 * symlink, where it leads. */
static bool build_user_runs(const char *file, char *why, size_t len)
{
	char real[PATH_MAX];
	if (!others_reach(file, S_IXOTH, why, len))
		return false;
	return !realpath(file, real) || others_reach(real, S_IXOTH, why, len);
}

enum found { FOUND, MISSING, UNREACHABLE };

/* Look `cmd` up on `path` as bash does for the build: the first file the build user may run.
 * UNREACHABLE: only files it may not run (the first one and why in `where`). */
static enum found find_tool(const char *cmd, const char *path, bool as_build_user, char *where,
			    size_t len)
{
	enum found res = MISSING;
	struct rb_buf f = RB_BUF_INIT;
	for (const char *p = path; *p;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		char why[PATH_MAX + 64];
		rb_buf_reset(&f);
		rb_buf_add(&f, p, n);
		rb_buf_addf(&f, "/%s", cmd);
		struct stat st;
		/* Empty entries (the current directory) are not where a build's tools live. */
		if (n && stat(f.data, &st) == 0 && S_ISREG(st.st_mode) && access(f.data, X_OK) == 0) {
			if (!as_build_user || build_user_runs(f.data, why, sizeof(why))) {
				res = FOUND;
				break;
			}
			if (res == MISSING)
				snprintf(where, len, "'%s' is there, but the build user cannot run it: %s",
					 f.data, why);
			res = UNREACHABLE;
		}
		p += n + (colon ? 1 : 0);
	}
	rb_buf_release(&f);
	return res;
}

int rb_installable_tools(const char *id, const char *const *names, size_t n, const char *path,
			 struct rb_err *err)
{
	path = rb_installable_path(path);
	bool as_build_user = geteuid() == 0; /* root builds run as a build uid (build.h) */
	struct rb_buf missing = RB_BUF_INIT, pkgs = RB_BUF_INIT;
	char where[2 * PATH_MAX] = "";
	size_t nmissing = 0;
	for (size_t i = 0; i < n; i++) {
		const char *debian = NULL, *cmd = rb_makedepend_command(names[i], &debian);
		char quoted[64];
		snprintf(quoted, sizeof(quoted), "'%s'", cmd ? cmd : "");
		if (!cmd || (missing.len && strstr(missing.data, quoted)))
			continue; /* not checked, or already named (pkgconf and pkg-config) */
		char w[2 * PATH_MAX] = "";
		if (find_tool(cmd, path, as_build_user, w, sizeof(w)) == FOUND)
			continue;
		rb_buf_addf(&missing, "%s%s", nmissing ? ", " : "", quoted);
		rb_buf_addf(&pkgs, "%s%s", nmissing ? " " : "", debian);
		if (w[0] && !where[0])
			snprintf(where, sizeof(where), "%s", w);
		nmissing++;
	}
	int rc = 0;
	if (nmissing && !where[0])
		rc = rb_err_set(err, RB_EUNAVAIL, "worker '%s' needs %s to build, which %s not on this "
				"node's PATH (%s): install %s (Debian: apt-get install %s)", id,
				missing.data, nmissing == 1 ? "is" : "are", path,
				nmissing == 1 ? "it" : "them", pkgs.data);
	else if (nmissing) /* found, but only where the build uid cannot go */
		rc = rb_err_set(err, RB_EUNAVAIL, "worker '%s' needs %s to build, which the build user "
				"(a uid of its own, no groups) cannot run from this node's PATH (%s); %s: "
				"install %s where every user can run %s (Debian: apt-get install %s)", id,
				missing.data, path, where, nmissing == 1 ? "it" : "them",
				nmissing == 1 ? "it" : "them", pkgs.data);
	rb_buf_release(&missing);
	rb_buf_release(&pkgs);
	return rc;
}

int rb_installable_entry_tools(struct json_object *entry, const char *id, const char *path,
			       struct rb_err *err)
{
	struct json_object *arr = NULL;
	if (!json_object_object_get_ex(entry, "makedepends", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return 0;
	size_t n = json_object_array_length(arr);
	const char **names = calloc(n + 1, sizeof(*names));
	if (!names)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++)
		names[i] = json_object_get_string(json_object_array_get_idx(arr, i));
	int rc = rb_installable_tools(id, names, n, path, err);
	free(names);
	return rc;
}

/* ---- all of it --------------------------------------------------------------------------- */

int rb_installable_entry(struct rb_hive *hive, struct json_object *entry, const char *path,
			 struct rb_err *err)
{
	const char *id = rb_json_str(entry, "id");
	const char *type = rb_json_str(entry, "worker_type");
	if (!id)
		id = "?";
	if (!type || !*type || !rb_id_valid(type))
		return rb_err_set(err, RB_EUNAVAIL, "catalog entry '%s' has no valid 'worker_type' "
				  "(cpu, cuda, metal...): fix the catalog", id);
	int rc = rb_installable_platform(entry, id, err);
	if (!rc)
		rc = rb_installable_backend(hive, type, err);
	if (!rc)
		rc = rb_installable_entry_tools(entry, id, path, err);
	return rc;
}

int rb_installable_version(struct json_object *entry, const char *id, const char *pkgver,
			   struct rb_err *err)
{
	const char *version = rb_json_str(entry, "version");
	if (version && pkgver && !strcmp(version, pkgver))
		return 0;
	return rb_err_set(err, RB_EINVAL, "catalog entry '%s' says version %s but its PKGBUILD's "
			  "pkgver is %s: fix the catalog", id, version ? version : "(none)",
			  pkgver ? pkgver : "(none)");
}

void rb_installable_annotate_one(struct rb_hive *hive, struct json_object *entry)
{
	/* Builds inherit the hive's PATH (rb_env_from_environ_scrubbed). */
	struct rb_err err = RB_ERR_INIT;
	bool ok = rb_installable_entry(hive, entry, getenv("PATH"), &err) == 0;
	json_object_object_add(entry, "installable", json_object_new_boolean(ok));
	json_object_object_add(entry, "not_installable_because",
			       ok ? NULL : json_object_new_string(err.msg));
}

void rb_installable_annotate(struct rb_hive *hive, struct json_object *entries)
{
	for (size_t i = 0; i < json_object_array_length(entries); i++)
		rb_installable_annotate_one(hive, json_object_array_get_idx(entries, i));
}
