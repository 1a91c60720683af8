/*
 * hf.c - the Hugging Face hub client (see hf.h).
 */
#include "hf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "rb_json.h"
#include "rb_sha256.h"

#define HF_LIST_TIMEOUT_MS 60000
#define HF_LIST_MAX_BODY (32u << 20)
#define HF_NAMES_SHOWN 8

const char *const rb_hf_quant_preference[] = {
	"Q4_K_M", "Q5_K_M", "Q4_0", "Q5_0", "Q8_0", "F16", NULL,
};

int rb_hf_hub_from_env(struct rb_hf_hub *hub, struct rb_err *err)
{
	const char *ep = getenv("HF_ENDPOINT");
	const char *tok = getenv("HF_TOKEN");
	memset(hub, 0, sizeof(*hub));
	if (!ep || !*ep)
		ep = RB_HF_DEFAULT_ENDPOINT;
	if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
		return rb_err_set(err, RB_EINVAL, "HF_ENDPOINT '%s' is not an http(s) URL; set it to "
				  "the hub's base URL, e.g. '%s'", ep, RB_HF_DEFAULT_ENDPOINT);
	if (strlen(ep) >= sizeof(hub->endpoint))
		return rb_err_set(err, RB_EINVAL, "HF_ENDPOINT is longer than %zu characters",
				  sizeof(hub->endpoint) - 1);
	snprintf(hub->endpoint, sizeof(hub->endpoint), "%s", ep);
	for (size_t n = strlen(hub->endpoint); n > 0 && hub->endpoint[n - 1] == '/'; n--)
		hub->endpoint[n - 1] = '\0';
	if (tok && *tok) {
		size_t n = strlen(tok);
		while (n && isspace((unsigned char)tok[n - 1]))
			n--; /* a token file read with $(cat) keeps no newline, but an env file may */
		for (size_t i = 0; i < n; i++)
			if (!isgraph((unsigned char)tok[i]))
				return rb_err_set(err, RB_EINVAL, "HF_TOKEN holds spaces or control "
						  "characters; set it to the token alone");
		if (n + 32 >= sizeof(hub->auth_header))
			return rb_err_set(err, RB_EINVAL, "HF_TOKEN is too long (%zu characters)", n);
		snprintf(hub->auth_header, sizeof(hub->auth_header), "Authorization: Bearer %.*s",
			 (int)n, tok);
		hub->headers[0] = hub->auth_header;
	}
	return 0;
}

int rb_hf_status_error(const struct rb_hf_hub *hub, const char *repo_id, long status,
		       struct rb_err *err)
{
	if (status == 404)
		return rb_err_set(err, RB_ENOTFOUND, "model '%s' not found on %s; check the id "
				  "(the hub's 'org/repo' name, optionally ':file.gguf')",
				  repo_id, hub->endpoint);
	if (status == 401 || status == 403) {
		if (hub->auth_header[0])
			return rb_err_set(err, RB_EDENIED, "access denied to '%s' on %s (HTTP %ld); "
					  "set HF_TOKEN to a token that can read it (the one set "
					  "cannot; for a gated model, accept its terms on the hub "
					  "first)", repo_id, hub->endpoint, status);
		return rb_err_set(err, RB_EDENIED, "access denied to '%s' on %s (HTTP %ld); set "
				  "HF_TOKEN to a token that can read it (the repository is private, "
				  "gated, or does not exist)", repo_id, hub->endpoint, status);
	}
	return rb_err_set(err, RB_EUNAVAIL, "the hub at %s answered HTTP %ld for '%s'; try again "
			  "later", hub->endpoint, status, repo_id);
}

/* --- listings ---------------------------------------------------------------------------- */

void rb_hf_listing_release(struct rb_hf_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->files[i].path);
	free(l->files);
	l->files = NULL;
	l->n = 0;
}

static void set_sha(struct rb_hf_file *f, const char *hex)
{
	if (hex && rb_sha256_is_hex(hex))
		for (size_t i = 0; i < 65; i++)
			f->sha256[i] = (char)tolower((unsigned char)hex[i]);
}

/* One entry of "siblings" or of a tree listing into *f. 0 and *is_file; -1 when out of
 * memory. */
static int parse_entry(struct json_object *e, struct rb_hf_file *f, bool *is_file)
{
	*is_file = false;
	const char *path = rb_json_str(e, "rfilename");
	const char *type = rb_json_str(e, "type");
	struct json_object *lfs = NULL;
	if (!path) {
		path = rb_json_str(e, "path");
		if (!path || (type && strcmp(type, "file")))
			return 0;
	}
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (!f->path)
		return -1;
	*is_file = true;
	int64_t size = rb_json_int(e, "size", -1);
	json_object_object_get_ex(e, "lfs", &lfs);
	if (lfs && json_object_is_type(lfs, json_type_object)) {
		set_sha(f, rb_json_str(lfs, "sha256"));
		if (!f->sha256[0])
			set_sha(f, rb_json_str(lfs, "oid"));
		if (size < 0)
			size = rb_json_int(lfs, "size", -1);
	}
	if (size >= 0) {
		f->size = (uint64_t)size;
		f->size_known = true;
	}
	return 0;
}

int rb_hf_parse_listing(const char *json, size_t len, struct rb_hf_listing *out,
			struct rb_err *err)
{
	memset(out, 0, sizeof(*out));
	struct json_object *root = rb_json_parse(json, len, err);
	if (!root)
		return rb_err_prefix(err, "the hub's file listing");
	struct json_object *arr = root;
	if (!json_object_is_type(root, json_type_array) &&
	    (!json_object_object_get_ex(root, "siblings", &arr) ||
	     !json_object_is_type(arr, json_type_array))) {
		json_object_put(root);
		return rb_err_set(err, RB_EUNAVAIL, "the hub's answer lists no files (no "
				  "\"siblings\"); is HF_ENDPOINT a Hugging Face hub?");
	}
	size_t n = json_object_array_length(arr);
	out->files = calloc(n ? n : 1, sizeof(*out->files));
	if (!out->files) {
		json_object_put(root);
		return rb_err_set(err, RB_EINTERNAL, "out of memory reading the hub's listing of %zu "
				  "files", n);
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		bool is_file;
		if (!json_object_is_type(e, json_type_object))
			continue;
		if (parse_entry(e, &out->files[out->n], &is_file)) {
			json_object_put(root);
			rb_hf_listing_release(out);
			return rb_err_set(err, RB_EINTERNAL, "out of memory reading the hub's listing");
		}
		out->n += is_file;
	}
	json_object_put(root);
	return 0;
}

const struct rb_hf_file *rb_hf_listing_find(const struct rb_hf_listing *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->files[i].path, path))
			return &l->files[i];
	return NULL;
}

int rb_hf_list(const struct rb_hf_hub *hub, const char *org, const char *repo,
	       struct rb_hf_listing *out, struct rb_err *err)
{
	char url[1024], id[300];
	snprintf(url, sizeof(url), "%s/api/models/%s/%s?blobs=true", hub->endpoint, org, repo);
	snprintf(id, sizeof(id), "%s/%s", org, repo);
	memset(out, 0, sizeof(*out));
	struct rb_http_resp resp;
	rb_http_resp_init(&resp);
	int rc = rb_http_request("GET", url, hub->headers[0] ? hub->headers : NULL, NULL, 0,
				 HF_LIST_TIMEOUT_MS, HF_LIST_MAX_BODY, &resp, err);
	if (rc)
		rb_err_prefix(err, "listing the files of '%s'", id);
	else if (resp.status != 200)
		rc = rb_hf_status_error(hub, id, resp.status, err);
	else if ((rc = rb_hf_parse_listing(resp.body.data, resp.body.len, out, err)))
		rb_err_prefix(err, "listing the files of '%s' on %s", id, hub->endpoint);
	rb_http_resp_release(&resp);
	return rc;
}

/* --- choosing a file --------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static bool ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

/* "name-00001-of-00003.gguf": one shard of a split model. */
static bool is_split_shard(const char *name)
{
	size_t n = strlen(name);
	static const char pattern[] = "-#####-of-#####.gguf";
	size_t m = sizeof(pattern) - 1;
	if (n < m)
		return false;
	const char *p = name + n - m;
	for (size_t i = 0; i < m; i++) {
		if (pattern[i] == '#' ? !isdigit((unsigned char)p[i])
				      : tolower((unsigned char)p[i]) != pattern[i])
			return false;
	}
	return true;
}

/* Every '/'-separated part of the path is a plain id, so it is safe as a file name here. */
static bool path_is_plain(const char *path)
{
	char part[256];
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || len >= sizeof(part))
			return false;
		memcpy(part, p, len);
		part[len] = '\0';
		if (!rb_id_valid(part))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

static bool is_candidate(const struct rb_hf_file *f)
{
	const char *b = base_name(f->path);
	return ends_with_ci(b, ".gguf") && strncasecmp(b, "mmproj", 6) && !is_split_shard(b) &&
	       path_is_plain(f->path);
}

/* `token` appears in `name` case-insensitively, not glued to letters/digits around it. */
static bool has_token(const char *name, const char *token)
{
	size_t m = strlen(token);
	for (const char *p = name; *p; p++) {
		if (strncasecmp(p, token, m))
			continue;
		bool left = p == name || !isalnum((unsigned char)p[-1]);
		char r = p[m];
		bool right = r == '\0' || (!isalnum((unsigned char)r) && r != '_');
		if (left && right)
			return true;
	}
	return false;
}

/* The better of two candidates for the same preference: the smaller known size. */
static bool smaller(const struct rb_hf_file *a, const struct rb_hf_file *b)
{
	if (a->size_known != b->size_known)
		return a->size_known;
	return a->size < b->size;
}

static int no_candidate(const char *repo_id, const struct rb_hf_listing *l, struct rb_err *err)
{
	struct rb_buf names = RB_BUF_INIT;
	const char *shard = NULL;
	for (size_t i = 0; i < l->n; i++) {
		if (!shard && ends_with_ci(l->files[i].path, ".gguf") &&
		    is_split_shard(base_name(l->files[i].path)))
			shard = l->files[i].path;
		if (i < HF_NAMES_SHOWN)
			rb_buf_addf(&names, "%s'%s'", i ? ", " : "", l->files[i].path);
	}
	if (l->n > HF_NAMES_SHOWN)
		rb_buf_addf(&names, " and %zu more", l->n - HF_NAMES_SHOWN);
	int rc;
	if (shard)
		rc = rb_err_set(err, RB_ENOTFOUND, "'%s' has only split GGUF files (such as '%s'), "
				"which this hive cannot use yet; choose a repository with a "
				"single-file GGUF", repo_id, shard);
	else
		rc = rb_err_set(err, RB_ENOTFOUND, "'%s' has no usable .gguf file (it has %s); use "
				"a GGUF repository, or name the file as 'org/repo:file.gguf'", repo_id,
				l->n ? names.data : "no files");
	rb_buf_release(&names);
	return rc;
}

int rb_hf_choose_gguf(const char *repo_id, const struct rb_hf_listing *l,
		      struct rb_hf_choice *choice, struct rb_err *err)
{
	for (size_t p = 0; rb_hf_quant_preference[p]; p++) {
		const struct rb_hf_file *best = NULL;
		for (size_t i = 0; i < l->n; i++) {
			const struct rb_hf_file *f = &l->files[i];
			if (is_candidate(f) && has_token(base_name(f->path), rb_hf_quant_preference[p]) &&
			    (!best || smaller(f, best)))
				best = f;
		}
		if (best) {
			choice->index = (size_t)(best - l->files);
			choice->quant = rb_hf_quant_preference[p];
			return 0;
		}
	}
	const struct rb_hf_file *best = NULL;
	for (size_t i = 0; i < l->n; i++)
		if (is_candidate(&l->files[i]) && (!best || smaller(&l->files[i], best)))
			best = &l->files[i];
	if (!best)
		return no_candidate(repo_id, l, err);
	choice->index = (size_t)(best - l->files);
	choice->quant = NULL;
	return 0;
}

void rb_hf_resolve_url(const struct rb_hf_hub *hub, const char *org, const char *repo,
		       const char *file, char *out, size_t len)
{
	snprintf(out, len, "%s/%s/%s/resolve/main/%s", hub->endpoint, org, repo, file);
}
