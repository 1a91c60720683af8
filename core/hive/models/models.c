/*
 * models.c - the model store: ids, records, get/list/delete, and the download that fills it
 * (see models.h).
 */
#include "models.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "hf.h"
#include "rb_download.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_sha256.h"

#define ID_FORMS "use 'org/repo' or 'org/repo:file.gguf' (a Hugging Face repository id, " \
		 "optionally with one of its files)"

/* --- ids --------------------------------------------------------------------------------- */

static int copy_part(char *dst, const char *src, size_t len)
{
	if (len == 0 || len >= RB_MODEL_PART_MAX)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return rb_id_valid(dst) ? 0 : -1;
}

/* Names the store itself uses in a model's directory (see models.h), which a model file named
 * in an id must not take: it would be overwritten, or mistaken for an unfinished download. */
static bool store_name(const char *file)
{
	size_t n = strlen(file);
	return !strcmp(file, "metadata.json") || !strcmp(file, "download.json") ||
	       (n >= 5 && !strcmp(file + n - 5, ".part"));
}

int rb_model_id_check(const char *id, struct rb_err *err)
{
	struct rb_model_ref ref;
	return rb_model_id_parse(id, &ref, err);
}

int rb_model_id_parse(const char *id, struct rb_model_ref *ref, struct rb_err *err)
{
	memset(ref, 0, sizeof(*ref));
	if (!id || !*id)
		return rb_err_set(err, RB_EINVAL, "empty model id: " ID_FORMS);
	if (strstr(id, "://") || !strncmp(id, "hf.co/", 6) || !strncmp(id, "huggingface.co/", 15))
		return rb_err_set(err, RB_EINVAL, "invalid model id '%s': URLs are not accepted; "
				  ID_FORMS, id);
	const char *slash = strchr(id, '/');
	if (!slash)
		return rb_err_set(err, RB_EINVAL, "invalid model id '%s': it has no '/'; " ID_FORMS,
				  id);
	const char *colon = strchr(slash + 1, ':');
	const char *repo_end = colon ? colon : slash + 1 + strlen(slash + 1);
	if (strchr(slash + 1, '/') && (!colon || strchr(slash + 1, '/') < colon))
		return rb_err_set(err, RB_EINVAL, "invalid model id '%s': more than one '/' before "
				  "the file; " ID_FORMS, id);
	if (copy_part(ref->org, id, (size_t)(slash - id)) ||
	    copy_part(ref->repo, slash + 1, (size_t)(repo_end - slash - 1)) ||
	    (colon && copy_part(ref->file, colon + 1, strlen(colon + 1))))
		return rb_err_set(err, RB_EINVAL, "invalid model id '%s': each of org, repo and file "
				  "must be 1-128 characters of A-Z a-z 0-9 . _ - (not starting "
				  "with '.', no '..'); " ID_FORMS, id);
	if (store_name(ref->file))
		return rb_err_set(err, RB_EINVAL, "invalid model id '%s': '%s' is a name the model "
				  "store uses itself (metadata.json, download.json, *.part), not a "
				  "model file; " ID_FORMS, id, ref->file);
	return 0;
}

int rb_model_id_to_dirname(const char *id, char *out, size_t len)
{
	struct rb_model_ref ref;
	if (rb_model_id_parse(id, &ref, NULL))
		return -1;
	int n = snprintf(out, len, "%s@%s%s%s", ref.org, ref.repo, ref.file[0] ? "+" : "",
			 ref.file);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int rb_model_dirname_to_id(const char *name, char *out, size_t len)
{
	if (strlen(name) >= len)
		return -1;
	strcpy(out, name);
	char *at = strchr(out, '@');
	if (!at)
		return -1;
	*at = '/';
	char *plus = strchr(at + 1, '+');
	if (plus)
		*plus = ':';
	char back[RB_MODEL_ID_MAX + 8];
	/* Only a name that maps back exactly is one of ours (no '@' or '+' elsewhere). */
	if (rb_model_id_to_dirname(out, back, sizeof(back)) || strcmp(back, name))
		return -1;
	return 0;
}

/* --- records ----------------------------------------------------------------------------- */

static void add_opt_str(struct json_object *o, const char *key, bool present, const char *v)
{
	rb_json_add_str(o, key, present && v[0] ? v : NULL);
}

static void add_opt_u64(struct json_object *o, const char *key, bool present, uint64_t v)
{
	json_object_object_add(o, key, present && v ? json_object_new_int64((int64_t)v) : NULL);
}

struct json_object *rb_model_record_json(const struct rb_model_record *r)
{
	struct json_object *o = json_object_new_object();
	const struct rb_gguf_facts *g = &r->gguf;
	rb_json_add_str(o, "id", r->id);
	rb_json_add_str(o, "name", r->name);
	rb_json_add_str(o, "repo", r->repo);
	rb_json_add_str(o, "file", r->file);
	rb_json_add_str(o, "path", r->path);
	rb_json_add_int(o, "size", (int64_t)r->size);
	rb_json_add_str(o, "sha256", r->sha256);
	rb_json_add_bool(o, "sha256_verified", r->sha256_verified);
	rb_json_add_str(o, "source_url", r->source_url);
	rb_json_add_str(o, "added_at", r->added_at);
	rb_json_add_str(o, "format", r->is_gguf ? "gguf" : "unknown");
	add_opt_str(o, "architecture", r->is_gguf, g->architecture);
	add_opt_u64(o, "parameter_count", r->is_gguf, g->parameter_count);
	add_opt_str(o, "size_label", r->is_gguf, g->size_label);
	add_opt_u64(o, "tensor_count", r->is_gguf, g->tensor_count);
	add_opt_str(o, "quantization", r->is_gguf, g->quantization);
	json_object_object_add(o, "file_type", r->is_gguf && g->file_type >= 0 ?
			       json_object_new_int64(g->file_type) : NULL);
	add_opt_u64(o, "context_length", r->is_gguf, g->context_length);
	add_opt_u64(o, "gguf_version", r->is_gguf, g->version);
	return o;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* Fill *r from a metadata.json object found in `dir`. The path is rebuilt from the directory
 * (the store may have moved); everything else is taken as written. */
static int record_from_json(struct json_object *o, const char *dir, struct rb_model_record *r,
			    struct rb_err *err)
{
	struct rb_gguf_facts *g = &r->gguf;
	memset(r, 0, sizeof(*r));
	const char *id = rb_json_str(o, "id"), *file = rb_json_str(o, "file");
	if (!id || !file || !rb_id_valid(file))
		return rb_err_set(err, RB_EIO, "'%s/metadata.json' lacks a valid 'id' or 'file'; "
				  "delete the model and download it again", dir);
	copy_str(r->id, sizeof(r->id), id);
	copy_str(r->repo, sizeof(r->repo), rb_json_str(o, "repo"));
	copy_str(r->name, sizeof(r->name), rb_json_str(o, "name"));
	copy_str(r->file, sizeof(r->file), file);
	snprintf(r->path, sizeof(r->path), "%s/%s", dir, file);
	r->size = (uint64_t)rb_json_int(o, "size", 0);
	copy_str(r->sha256, sizeof(r->sha256), rb_json_str(o, "sha256"));
	r->sha256_verified = rb_json_bool(o, "sha256_verified", false);
	copy_str(r->source_url, sizeof(r->source_url), rb_json_str(o, "source_url"));
	copy_str(r->added_at, sizeof(r->added_at), rb_json_str(o, "added_at"));
	const char *format = rb_json_str(o, "format");
	r->is_gguf = format && !strcmp(format, "gguf");
	g->file_type = -1;
	if (r->is_gguf) {
		copy_str(g->architecture, sizeof(g->architecture), rb_json_str(o, "architecture"));
		copy_str(g->size_label, sizeof(g->size_label), rb_json_str(o, "size_label"));
		copy_str(g->quantization, sizeof(g->quantization), rb_json_str(o, "quantization"));
		copy_str(g->name, sizeof(g->name), rb_json_str(o, "name"));
		g->parameter_count = (uint64_t)rb_json_int(o, "parameter_count", 0);
		g->tensor_count = (uint64_t)rb_json_int(o, "tensor_count", 0);
		g->file_type = rb_json_int(o, "file_type", -1);
		g->context_length = (uint64_t)rb_json_int(o, "context_length", 0);
		g->version = (uint32_t)rb_json_int(o, "gguf_version", 0);
	}
	return 0;
}

static int store_dir(struct rb_hive *hive, const char *id, char *dir, size_t len,
		       struct rb_err *err)
{
	struct rb_model_ref ref;
	char name[RB_MODEL_ID_MAX + 8];
	int rc = rb_model_id_parse(id, &ref, err);
	if (rc)
		return rc;
	if (rb_model_id_to_dirname(id, name, sizeof(name)))
		return rb_err_set(err, RB_EINVAL, "invalid model id '%s': " ID_FORMS, id);
	if ((size_t)snprintf(dir, len, "%s/%s", hive->paths.models, name) >= len)
		return rb_err_set(err, RB_EINVAL, "model directory for '%s' is too long", id);
	return 0;
}

static int store_load(const char *dir, const char *id, struct rb_model_record *rec,
			struct rb_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/metadata.json", dir);
	struct json_object *o = rb_json_read_file(path, err);
	if (!o)
		return err && err->code ? -err->code : -RB_EIO;
	int rc = record_from_json(o, dir, rec, err);
	json_object_put(o);
	if (!rc && strcmp(rec->id, id))
		rc = rb_err_set(err, RB_EIO, "'%s' records the model '%s', not '%s'; delete it and "
				"download the model again", path, rec->id, id);
	return rc;
}

/* The model file is there with its recorded size. */
static int check_file(const struct rb_model_record *rec, struct rb_err *err)
{
	struct stat st;
	if (stat(rec->path, &st) != 0)
		return rb_err_set(err, RB_EIO, "model '%s' is damaged: its file '%s' is missing; run "
				  "'rbee model delete %s' and download it again", rec->id, rec->path,
				  rec->id);
	if ((uint64_t)st.st_size != rec->size)
		return rb_err_set(err, RB_EIO, "model '%s' is damaged: '%s' has %lld bytes, %" PRIu64
				  " recorded; run 'rbee model delete %s' and download it again",
				  rec->id, rec->path, (long long)st.st_size, rec->size, rec->id);
	return 0;
}

/* The unfinished download in `dir`: its part file's name and size. False when there is none. */
static bool find_part(const char *dir, char *name, size_t len, uint64_t *size)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *de;
	bool found = false;
	while (!found && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 5 && !strcmp(de->d_name + n - 5, ".part") && n < len) {
			struct stat st;
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				strcpy(name, de->d_name);
				*size = (uint64_t)st.st_size;
				found = true;
			}
		}
	}
	closedir(d);
	return found;
}

int rb_models_get(struct rb_hive *hive, const char *id, struct rb_model_record *rec,
		  struct rb_err *err)
{
	char dir[PATH_MAX], part[256];
	uint64_t part_size;
	int rc = store_dir(hive, id, dir, sizeof(dir), err);
	if (rc)
		return rc;
	struct rb_err lerr = RB_ERR_INIT;
	rc = store_load(dir, id, rec, &lerr);
	if (rc == -RB_ENOTFOUND && find_part(dir, part, sizeof(part), &part_size))
		return rb_err_set(err, RB_ENOTFOUND, "model '%s' is not fully downloaded (%" PRIu64
				  " bytes so far); run 'rbee model download %s' to finish it",
				  id, part_size, id);
	if (rc == -RB_ENOTFOUND)
		return rb_err_set(err, RB_ENOTFOUND, "model '%s' is not in this hive; download it "
				  "with 'rbee model download %s'", id, id);
	if (rc) {
		*err = lerr;
		return rc;
	}
	return check_file(rec, err);
}

/* --- list -------------------------------------------------------------------------------- */

static struct json_object *partial_entry(const char *id, const char *dir)
{
	char part[256], path[PATH_MAX];
	uint64_t size = 0;
	if (!find_part(dir, part, sizeof(part), &size))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, part);
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "id", id);
	rb_json_add_str(o, "status", "partial");
	part[strlen(part) - 5] = '\0';
	rb_json_add_str(o, "file", part);
	rb_json_add_str(o, "path", path);
	rb_json_add_int(o, "size", (int64_t)size);
	return o;
}

/* The list entry for one store directory, or NULL for directories that hold nothing. */
static struct json_object *list_entry(const char *models, const char *name)
{
	char id[RB_MODEL_ID_MAX], dir[PATH_MAX];
	if (rb_model_dirname_to_id(name, id, sizeof(id)))
		return NULL;
	snprintf(dir, sizeof(dir), "%s/%s", models, name);
	struct rb_model_record rec;
	struct rb_err err = RB_ERR_INIT;
	int rc = store_load(dir, id, &rec, &err);
	if (rc == -RB_ENOTFOUND)
		return partial_entry(id, dir);
	if (rc) {
		rb_warn("model store: skipping '%s': %s", dir, err.msg);
		return NULL;
	}
	struct json_object *o = rb_model_record_json(&rec);
	rb_json_add_str(o, "status", check_file(&rec, NULL) ? "damaged" : "ready");
	return o;
}

static int by_id(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a;
	struct json_object *y = *(struct json_object *const *)b;
	return strcmp(rb_json_str(x, "id"), rb_json_str(y, "id"));
}

int rb_models_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err)
{
	struct json_object *arr = json_object_new_array();
	DIR *d = opendir(hive->paths.models);
	if (!d && errno != ENOENT) {
		json_object_put(arr);
		return rb_err_set(err, RB_EIO, "cannot read the model store '%s': %s",
				  hive->paths.models, strerror(errno));
	}
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct json_object *e = list_entry(hive->paths.models, de->d_name);
		if (e)
			json_object_array_add(arr, e);
	}
	if (d)
		closedir(d);
	json_object_array_sort(arr, by_id);
	*out = json_object_new_object();
	json_object_object_add(*out, "models", arr);
	return 0;
}

/* --- locking ----------------------------------------------------------------------------- */

static int store_lock(const char *dir, bool wait, const struct rb_model_events *ev,
			const char *id, int *fd_out, struct rb_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/.lock", dir);
	bool told = false;
	for (;;) {
		if (wait) {
			int rc = rb_fs_mkdir_p(dir, 0755, err);
			if (rc)
				return rc;
		}
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (wait ? 0 : O_NOFOLLOW), 0644);
		if (fd < 0 && errno == ENOENT && !wait)
			return rb_err_set(err, RB_ENOTFOUND, "model '%s' is not in this hive", id);
		if (fd < 0 && errno == ENOENT)
			continue; /* the directory was deleted between mkdir and open */
		if (fd < 0)
			return rb_err_set(err, RB_EIO, "cannot open '%s': %s", path, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			struct stat a, b;
			/* Still the lock file of the directory (not one a delete just removed)? */
			if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
			    a.st_dev == b.st_dev) {
				*fd_out = fd;
				return 0;
			}
			close(fd);
			if (!wait)
				return rb_err_set(err, RB_ENOTFOUND, "model '%s' is not in this hive", id);
			continue;
		}
		int e = errno;
		close(fd);
		if (e != EWOULDBLOCK)
			return rb_err_set(err, RB_EIO, "cannot lock '%s': %s", path, strerror(e));
		if (!wait)
			return rb_err_set(err, RB_ECONFLICT, "a download of model '%s' is in progress; "
					  "cancel its job first ('rbee' Ctrl-C, or DELETE /v1/jobs/<id>)",
					  id);
		if (!told && ev && ev->say)
			ev->say(ev->arg, "another download of this model is in progress; waiting for it");
		told = true;
		if (ev && ev->should_stop && ev->should_stop(ev->arg))
			return rb_err_set(err, RB_ECANCELLED, "download of '%s' cancelled", id);
		usleep(200 * 1000);
	}
}

/* --- delete ------------------------------------------------------------------------------ */

static uint64_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	uint64_t sum = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_blocks * 512;
	}
	if (d)
		closedir(d);
	return sum;
}

/* Move `dir` out of the store's names (a dot name the list skips), then remove it: a crash in
 * between leaves no half-deleted model that looks present. */
static int remove_dir(struct rb_hive *hive, const char *dir, struct rb_err *err)
{
	static atomic_uint counter;
	char trash[PATH_MAX];
	snprintf(trash, sizeof(trash), "%s/.deleting-%d-%u", hive->paths.models, (int)getpid(),
		 atomic_fetch_add(&counter, 1));
	if (rename(dir, trash) != 0)
		return rb_err_set(err, RB_EIO, "cannot remove '%s': %s", dir, strerror(errno));
	rb_fs_sync_dir(hive->paths.models);
	return rb_fs_rm_rf(trash, err);
}

int rb_models_delete(struct rb_hive *hive, const char *id, uint64_t *freed, struct rb_err *err)
{
	char dir[PATH_MAX];
	int fd = -1;
	*freed = 0;
	int rc = store_dir(hive, id, dir, sizeof(dir), err);
	if (rc)
		return rc;
	if (!rb_fs_is_dir(dir))
		return rb_err_set(err, RB_ENOTFOUND, "model '%s' is not in this hive (see 'rbee model "
				  "list')", id);
	if (rb_models_in_use(hive, id))
		return rb_err_set(err, RB_ECONFLICT, "model '%s' is in use by a running worker; stop "
				  "the worker first ('rbee worker process list')", id);
	rc = store_lock(dir, false, NULL, id, &fd, err);
	if (rc)
		return rc;
	*freed = dir_bytes(dir);
	rc = remove_dir(hive, dir, err);
	close(fd);
	return rc;
}

bool rb_models_in_use(struct rb_hive *hive, const char *id)
{
	return hive->model_in_use && hive->model_in_use(hive, id);
}

/* --- download ---------------------------------------------------------------------------- */

/* One model_download from start to record. */
struct fetch {
	struct rb_hive *hive;
	const char *id;
	const struct rb_model_events *ev;
	struct rb_model_ref ref;
	struct rb_hf_hub hub;
	char repo_id[2 * RB_MODEL_PART_MAX];
	char dir[PATH_MAX];
	char remote[512];             /* the file's path in the repository */
	char file[RB_MODEL_PART_MAX]; /* its name in the model's directory */
	char url[1024];
	char sha256[65];              /* from the hub's listing, "" when unknown */
	uint64_t size;                /* from the hub's listing, 0 when unknown */
	char part[PATH_MAX];
	char final[PATH_MAX];
	char state[PATH_MAX];         /* download.json */
};

static void say(const struct rb_model_events *ev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const struct rb_model_events *ev, const char *fmt, ...)
{
	if (!ev || !ev->say)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ev->say(ev->arg, line);
}

static int env_int(const char *name, int def, int min, int max)
{
	const char *v = getenv(name);
	char *end;
	long x = v && *v ? strtol(v, &end, 10) : def;
	if (v && *v && (*end || x < min || x > max)) {
		rb_warn("ignoring %s='%s': use a whole number from %d to %d", name, v, min, max);
		return def;
	}
	return (int)x;
}

/* RBEE_MAX_MODEL_BYTES: bytes, or a number with K, M, G or T (binary units, "GiB" too). */
static uint64_t max_model_bytes(void)
{
	const char *v = getenv("RBEE_MAX_MODEL_BYTES");
	if (!v || !*v)
		return RB_MODEL_MAX_BYTES_DEFAULT;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	unsigned shift = 0;
	switch (*end == '\0' ? 0 : toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: shift = 64; break;
	}
	if (shift && shift < 64 && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (errno || *end || v[0] == '-' || x == 0 || shift >= 64 || x > (UINT64_MAX >> shift)) {
		rb_warn("ignoring RBEE_MAX_MODEL_BYTES='%s': give a size such as 68719476736, 64G or "
			"512MiB", v);
		return RB_MODEL_MAX_BYTES_DEFAULT;
	}
	return (uint64_t)x << shift;
}

/* The GGUF names in a listing, for messages ("'a.gguf', 'b.gguf'"). */
static void gguf_names(const struct rb_hf_listing *l, struct rb_buf *out)
{
	size_t shown = 0, more = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t n = strlen(l->files[i].path);
		if (n < 5 || strcasecmp(l->files[i].path + n - 5, ".gguf"))
			continue;
		if (shown < 8)
			rb_buf_addf(out, "%s'%s'", shown++ ? ", " : "", l->files[i].path);
		else
			more++;
	}
	if (more)
		rb_buf_addf(out, " and %zu more", more);
	if (!out->len)
		rb_buf_adds(out, "none");
}

static void take_listed(struct fetch *f, const struct rb_hf_file *lf)
{
	snprintf(f->remote, sizeof(f->remote), "%s", lf->path);
	snprintf(f->sha256, sizeof(f->sha256), "%s", lf->sha256);
	f->size = lf->size_known ? lf->size : 0;
}

/* The file the id names, checked against the listing when the hub gives one. */
static int named_file(struct fetch *f, const struct rb_hf_listing *l, int list_rc,
		      struct rb_err *lerr, struct rb_err *err)
{
	if (list_rc == -RB_ENOTFOUND || list_rc == -RB_EDENIED) {
		*err = *lerr;
		return list_rc;
	}
	snprintf(f->remote, sizeof(f->remote), "%s", f->ref.file);
	if (list_rc) {
		say(f->ev, "cannot list the files of '%s' (%s); going on without the hub's sha256",
		    f->repo_id, lerr->msg);
		return 0;
	}
	const struct rb_hf_file *lf = rb_hf_listing_find(l, f->ref.file);
	if (!lf) {
		struct rb_buf names = RB_BUF_INIT;
		gguf_names(l, &names);
		int rc = rb_err_set(err, RB_ENOTFOUND, "model '%s' not found on %s: '%s' has no file "
				    "'%s' (its GGUF files: %s)", f->id, f->hub.endpoint, f->repo_id,
				    f->ref.file, names.data);
		rb_buf_release(&names);
		return rc;
	}
	take_listed(f, lf);
	return 0;
}

/* No file named: pick one by quantization preference. */
static int chosen_file(struct fetch *f, const struct rb_hf_listing *l, struct rb_err *err)
{
	struct rb_hf_choice c;
	int rc = rb_hf_choose_gguf(f->repo_id, l, &c, err);
	if (rc)
		return rc;
	const struct rb_hf_file *lf = &l->files[c.index];
	char h[32];
	take_listed(f, lf);
	if (lf->size_known)
		rb_human_bytes(lf->size, h, sizeof(h));
	else
		snprintf(h, sizeof(h), "size unknown");
	if (c.quant) {
		say(f->ev, "chose '%s' (%s, %s) by quantization preference", lf->path, c.quant, h);
	} else {
		struct rb_buf prefs = RB_BUF_INIT;
		for (size_t i = 0; rb_hf_quant_preference[i]; i++)
			rb_buf_addf(&prefs, "%s%s", i ? ", " : "", rb_hf_quant_preference[i]);
		say(f->ev, "no file matches a preferred quantization (%s); chose the smallest GGUF, "
		    "'%s' (%s)", prefs.data, lf->path, h);
		rb_buf_release(&prefs);
	}
	return 0;
}

static int choose_file(struct fetch *f, struct rb_err *err)
{
	struct rb_hf_listing l = { 0 };
	struct rb_err lerr = RB_ERR_INIT;
	say(f->ev, "listing the files of '%s' on %s", f->repo_id, f->hub.endpoint);
	int list_rc = rb_hf_list(&f->hub, f->ref.org, f->ref.repo, &l, &lerr);
	int rc;
	if (f->ref.file[0]) {
		rc = named_file(f, &l, list_rc, &lerr, err);
	} else if (list_rc) {
		*err = lerr;
		rc = list_rc;
	} else {
		rc = chosen_file(f, &l, err);
	}
	rb_hf_listing_release(&l);
	if (rc)
		return rc;
	const char *base = strrchr(f->remote, '/');
	snprintf(f->file, sizeof(f->file), "%s", base ? base + 1 : f->remote);
	rb_hf_resolve_url(&f->hub, f->ref.org, f->ref.repo, f->remote, f->url, sizeof(f->url));
	snprintf(f->part, sizeof(f->part), "%s/%s.part", f->dir, f->file);
	snprintf(f->final, sizeof(f->final), "%s/%s", f->dir, f->file);
	snprintf(f->state, sizeof(f->state), "%s/download.json", f->dir);
	return 0;
}

/* Remove part files of another file than the one chosen now (the repository changed). */
static void drop_other_parts(struct fetch *f)
{
	char keep[RB_MODEL_PART_MAX + 8];
	snprintf(keep, sizeof(keep), "%s.part", f->file);
	DIR *d = opendir(f->dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 5 && !strcmp(de->d_name + n - 5, ".part") && strcmp(de->d_name, keep)) {
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
			say(f->ev, "removing the partial download '%s': '%s' is the file chosen now",
			    de->d_name, f->file);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
}

/* Make the part file and download.json describe this download: a part of another upstream
 * version of the file is dropped, a model file whose record was never written is checked again
 * as a part. */
static int prepare_part(struct fetch *f, struct rb_err *err)
{
	if (rb_fs_exists(f->final) && !rb_fs_exists(f->part) && rename(f->final, f->part) != 0)
		return rb_err_set(err, RB_EIO, "cannot rename '%s': %s", f->final, strerror(errno));
	drop_other_parts(f);
	struct json_object *old = rb_json_read_file(f->state, NULL);
	if (old) {
		const char *osha = rb_json_str(old, "sha256");
		uint64_t osize = (uint64_t)rb_json_int(old, "size", 0);
		bool changed = strcmp(rb_json_str(old, "url") ? rb_json_str(old, "url") : "", f->url) ||
			       (osha && f->sha256[0] && strcmp(osha, f->sha256)) ||
			       (osize && f->size && osize != f->size);
		if (changed && rb_fs_exists(f->part)) {
			say(f->ev, "'%s' changed on the hub since the partial download; starting over",
			    f->file);
			unlink(f->part);
		}
		json_object_put(old);
	}
	struct json_object *st = json_object_new_object();
	rb_json_add_str(st, "id", f->id);
	rb_json_add_str(st, "file", f->file);
	rb_json_add_str(st, "url", f->url);
	rb_json_add_str(st, "sha256", f->sha256[0] ? f->sha256 : NULL);
	rb_json_add_int(st, "size", (int64_t)f->size);
	int rc = rb_json_write_file(f->state, st, err);
	json_object_put(st);
	return rc;
}

static void on_progress(void *arg, uint64_t done, uint64_t total, double rate)
{
	struct fetch *f = arg;
	if (f->ev && f->ev->progress)
		f->ev->progress(f->ev->arg, "downloading", done, total, rate);
}

static bool on_should_stop(void *arg)
{
	struct fetch *f = arg;
	return f->ev && f->ev->should_stop && f->ev->should_stop(f->ev->arg);
}

static void on_note(void *arg, const char *line)
{
	struct fetch *f = arg;
	say(f->ev, "%s", line);
}

static int fetch_file(struct fetch *f, struct rb_download_result *res, struct rb_err *err)
{
	struct stat st;
	char a[32], b[32];
	uint64_t max = max_model_bytes();
	if (f->size > max) {
		unlink(f->part);
		return rb_err_set(err, RB_ETOOBIG, "the hub announces %s (%" PRIu64 " bytes) for '%s' "
				  "of '%s', more than RBEE_MAX_MODEL_BYTES allows (%s); raise it to "
				  "download this model", rb_human_bytes(f->size, a, sizeof(a)), f->size,
				  f->remote, f->repo_id, rb_human_bytes(max, b, sizeof(b)));
	}
	const char *total = f->size ? rb_human_bytes(f->size, b, sizeof(b)) : "an unknown size";
	if (stat(f->part, &st) == 0 && st.st_size > 0)
		say(f->ev, "resuming '%s' at %s of %s", f->file, rb_human_bytes((uint64_t)st.st_size, a,
		    sizeof(a)), total);
	else
		say(f->ev, "downloading '%s' (%s) from %s", f->file, total, f->url);
	struct rb_download_opts o = {
		.url = f->url,
		.part_path = f->part,
		.headers = f->hub.headers[0] ? f->hub.headers : NULL,
		.expect_sha256 = f->sha256[0] ? f->sha256 : NULL,
		.stall_timeout_s = env_int("RBEE_DOWNLOAD_STALL_S", 30, 1, 3600),
		.max_retries = env_int("RBEE_DOWNLOAD_RETRIES", 5, 1, 100),
		.on_progress = on_progress,
		.should_stop = on_should_stop,
		.arg = f,
		.sha256_from_etag = true,
		.expect_size = f->size,
		.on_note = on_note,
		.max_size = max,
	};
	int rc = rb_download(&o, res, err);
	if (rc == -RB_ETOOBIG)
		return rb_err_set(err, RB_ETOOBIG, "downloading '%s' of '%s': the hub sends more than "
				  "%s (%" PRIu64 " bytes), the most RBEE_MAX_MODEL_BYTES allows when the "
				  "hub announces no size; stopped and removed the partial file (raise "
				  "RBEE_MAX_MODEL_BYTES for a larger model)", f->remote, f->repo_id,
				  rb_human_bytes(max, a, sizeof(a)), max);
	if (rc == -RB_ENOTFOUND)
		return rb_err_set(err, RB_ENOTFOUND, "model '%s' not found on %s: the hub has no "
				  "'%s' in '%s' (HTTP 404)", f->id, f->hub.endpoint, f->remote,
				  f->repo_id);
	if (rc == -RB_EDENIED)
		return rb_hf_status_error(&f->hub, f->repo_id, res->http_status, err);
	if (rc && rc != -RB_ECANCELLED)
		rb_err_prefix(err, "downloading '%s' of '%s'", f->remote, f->repo_id);
	return rc;
}

static void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void read_facts(struct fetch *f, struct rb_model_record *rec)
{
	struct rb_err gerr = RB_ERR_INIT;
	const struct rb_gguf_facts *g = &rec->gguf;
	rec->is_gguf = rb_gguf_read(rec->path, &rec->gguf, &gerr) == 0;
	if (!rec->is_gguf) {
		memset(&rec->gguf, 0, sizeof(rec->gguf));
		rec->gguf.file_type = -1;
		say(f->ev, "%s; stored without GGUF facts", gerr.msg);
		return;
	}
	char params[32] = "unknown", ctx[32] = "unknown";
	if (g->parameter_count >= 1000000000)
		snprintf(params, sizeof(params), "%.2fB", (double)g->parameter_count / 1e9);
	else if (g->parameter_count >= 1000000)
		snprintf(params, sizeof(params), "%.1fM", (double)g->parameter_count / 1e6);
	else if (g->parameter_count)
		snprintf(params, sizeof(params), "%" PRIu64, g->parameter_count);
	if (g->context_length)
		snprintf(ctx, sizeof(ctx), "%" PRIu64, g->context_length);
	say(f->ev, "GGUF v%" PRIu32 ": architecture %s, %s parameters, %s, context length %s",
	    g->version, g->architecture[0] ? g->architecture : "unknown", params,
	    g->quantization[0] ? g->quantization : "unknown file type", ctx);
}

/* Put the verified part in place and write the record that makes the model present. */
static int finish(struct fetch *f, const struct rb_download_result *res,
		  struct rb_model_record *rec, struct rb_err *err)
{
	if (res->expected_sha256[0])
		say(f->ev, "sha256 %s matches the hub's", res->sha256);
	else
		say(f->ev, "the hub announced no sha256 for '%s'; recorded %s unverified", f->file,
		    res->sha256);
	if (rename(f->part, f->final) != 0)
		return rb_err_set(err, RB_EIO, "cannot rename '%s' to '%s': %s", f->part, f->final,
				  strerror(errno));
	rb_fs_sync_dir(f->dir);
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->id, sizeof(rec->id), "%s", f->id);
	snprintf(rec->repo, sizeof(rec->repo), "%s", f->repo_id);
	snprintf(rec->file, sizeof(rec->file), "%s", f->file);
	snprintf(rec->path, sizeof(rec->path), "%s", f->final);
	rec->size = res->size;
	memcpy(rec->sha256, res->sha256, sizeof(rec->sha256));
	rec->sha256_verified = res->expected_sha256[0] != '\0';
	snprintf(rec->source_url, sizeof(rec->source_url), "%s", f->url);
	now_rfc3339(rec->added_at, sizeof(rec->added_at));
	read_facts(f, rec);
	snprintf(rec->name, sizeof(rec->name), "%s",
		 rec->is_gguf && rec->gguf.name[0] ? rec->gguf.name : f->ref.repo);
	char meta[PATH_MAX];
	snprintf(meta, sizeof(meta), "%s/metadata.json", f->dir);
	struct json_object *o = rb_model_record_json(rec);
	int rc = rb_json_write_file(meta, o, err);
	json_object_put(o);
	if (rc)
		return rc;
	unlink(f->state);
	rb_fs_sync_dir(f->dir);
	char h[32];
	say(f->ev, "model '%s' is ready: %s (%s)", f->id, f->final, rb_human_bytes(rec->size, h, sizeof(h)));
	return 0;
}

/* After a failure: keep what a later download can resume, remove a directory with nothing. */
static void after_failure(struct fetch *f, int rc)
{
	char part[256];
	uint64_t size = 0;
	bool has_part = find_part(f->dir, part, sizeof(part), &size);
	if (has_part && size > 0) {
		say(f->ev, "the partial download is kept; download '%s' again to resume it", f->id);
		return;
	}
	if (has_part && rc == -RB_ECANCELLED)
		return;
	char meta[PATH_MAX];
	snprintf(meta, sizeof(meta), "%s/metadata.json", f->dir);
	struct rb_err err = RB_ERR_INIT;
	if (!rb_fs_exists(meta) && remove_dir(f->hive, f->dir, &err))
		rb_warn("model store: %s", err.msg);
}

/* Present and intact: *rec filled, 1. Absent: 0 (a damaged record is removed first). */
static int present(struct fetch *f, struct rb_model_record *rec)
{
	struct rb_err err = RB_ERR_INIT;
	if (store_load(f->dir, f->id, rec, &err))
		return 0;
	if (!check_file(rec, &err))
		return 1;
	say(f->ev, "%s; downloading it again", err.msg);
	char meta[PATH_MAX];
	snprintf(meta, sizeof(meta), "%s/metadata.json", f->dir);
	unlink(meta);
	return 0;
}

static int download_locked(struct fetch *f, struct rb_model_record *rec, struct rb_err *err)
{
	struct rb_download_result res;
	int rc = rb_hf_hub_from_env(&f->hub, err);
	if (!rc)
		rc = choose_file(f, err);
	if (!rc)
		rc = prepare_part(f, err);
	if (!rc)
		rc = fetch_file(f, &res, err);
	if (!rc)
		rc = finish(f, &res, rec, err);
	if (rc)
		after_failure(f, rc);
	return rc;
}

int rb_models_download(struct rb_hive *hive, const char *id, const struct rb_model_events *ev,
		       struct rb_model_record *rec, struct rb_err *err)
{
	struct fetch *f = calloc(1, sizeof(*f));
	if (!f)
		return rb_err_set(err, RB_EINTERNAL, "out of memory");
	f->hive = hive;
	f->id = id;
	f->ev = ev;
	int lock = -1;
	int rc = rb_model_id_parse(id, &f->ref, err);
	if (!rc)
		rc = store_dir(hive, id, f->dir, sizeof(f->dir), err);
	if (rc)
		goto out;
	snprintf(f->repo_id, sizeof(f->repo_id), "%s/%s", f->ref.org, f->ref.repo);
	if (!present(f, rec)) {
		rc = store_lock(f->dir, true, ev, id, &lock, err);
		if (rc)
			goto out;
		if (!present(f, rec))
			rc = download_locked(f, rec, err);
		else
			say(ev, "model '%s' was downloaded meanwhile: %s", id, rec->path);
	} else {
		say(ev, "model '%s' is already present: %s", id, rec->path);
	}
out:
	if (lock >= 0)
		close(lock);
	free(f);
	return rc;
}
