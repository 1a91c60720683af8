/*
 * installed.c - reading, listing, locking and removing installed workers (see installed.h).
 */
#include "installed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hive.h"
#include "rb_fs.h"
#include "rb_json.h"
#include "rb_log.h"
#include "rb_proc.h"

void rb_installed_release(struct rb_installed *w)
{
	json_object_put(w->meta);
	memset(w, 0, sizeof(*w));
}

static int copy_field(char *dst, size_t len, struct json_object *meta, const char *key,
		      bool required, const char *dir, struct rb_err *err)
{
	const char *v = rb_json_str(meta, key);
	if (!v || strlen(v) >= len) {
		if (!required) {
			dst[0] = '\0';
			return 0;
		}
		return rb_err_set(err, RB_EIO,
				  "'%s/metadata.json' has no valid '%s': the install is damaged, "
				  "reinstall the worker", dir, key);
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int rb_installed_from_json(struct json_object *meta, const char *dir, struct rb_installed *out,
			   struct rb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(meta, json_type_object))
		return rb_err_set(err, RB_EIO, "'%s/metadata.json' is not a JSON object: reinstall "
				  "the worker", dir);
	int rc;
	if ((rc = copy_field(out->id, sizeof(out->id), meta, "id", true, dir, err)) ||
	    (rc = copy_field(out->worker_type, sizeof(out->worker_type), meta, "worker_type", true,
			     dir, err)) ||
	    (rc = copy_field(out->binary_path, sizeof(out->binary_path), meta, "binary_path", true,
			     dir, err)) ||
	    (rc = copy_field(out->version, sizeof(out->version), meta, "version", false, dir, err)) ||
	    (rc = copy_field(out->binary_name, sizeof(out->binary_name), meta, "binary_name", false,
			     dir, err)) ||
	    (rc = copy_field(out->sha256, sizeof(out->sha256), meta, "sha256", false, dir, err)))
		return rc;
	snprintf(out->dir, sizeof(out->dir), "%s", dir);
	if ((size_t)snprintf(out->root, sizeof(out->root), "%s/pkg", dir) >= sizeof(out->root))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s'", dir);
	out->size = (uint64_t)rb_json_int(meta, "size", 0);
	struct json_object *launch;
	if (json_object_object_get_ex(meta, "launch", &launch) &&
	    json_object_is_type(launch, json_type_object))
		out->launch = launch;
	out->meta = json_object_get(meta);
	return 0;
}

static int worker_dir(struct rb_hive *hive, const char *id, char *out, size_t len,
		      struct rb_err *err)
{
	int rc = rb_id_check("worker_id", id, err);
	if (rc)
		return rc;
	if ((size_t)snprintf(out, len, "%s/%s", hive->paths.workers, id) >= len)
		return rb_err_set(err, RB_EINVAL, "path too long for worker '%s'", id);
	return 0;
}

int rb_installed_get(struct rb_hive *hive, const char *id, struct rb_installed *out,
		     struct rb_err *err)
{
	char dir[PATH_MAX], file[PATH_MAX + 16];
	memset(out, 0, sizeof(*out));
	int rc = worker_dir(hive, id, dir, sizeof(dir), err);
	if (rc)
		return rc;
	if (!rb_fs_is_dir(dir))
		return rb_err_set(err, RB_ENOTFOUND,
				  "worker '%s' is not installed (install it with 'rbee worker install "
				  "%s')", id, id);
	snprintf(file, sizeof(file), "%s/metadata.json", dir);
	struct rb_err e2 = RB_ERR_INIT;
	struct json_object *meta = rb_json_read_file(file, &e2);
	if (!meta)
		return rb_err_set(err, RB_EIO, "cannot read the record of installed worker '%s' (%s): "
				  "reinstall it", id, e2.msg);
	rc = rb_installed_from_json(meta, dir, out, err);
	json_object_put(meta);
	if (!rc && strcmp(out->id, id) != 0) {
		rb_installed_release(out);
		rc = rb_err_set(err, RB_EIO, "'%s' holds the record of worker '%s', not '%s': "
				"reinstall it", file, out->id, id);
	}
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids present under workers/, sorted. Free each and the array. */
static int list_ids(struct rb_hive *hive, char ***ids, size_t *n, struct rb_err *err)
{
	*ids = NULL;
	*n = 0;
	DIR *d = opendir(hive->paths.workers);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return rb_err_set(err, RB_EIO, "cannot read '%s': %s", hive->paths.workers,
				  strerror(errno));
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !rb_id_valid(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **grown = realloc(*ids, cap * sizeof(**ids));
			if (!grown)
				break;
			*ids = grown;
		}
		char *id = strdup(de->d_name);
		if (!id)
			break;
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (de) { /* stopped early: out of memory (an error, never an abort) */
		for (size_t i = 0; i < *n; i++)
			free((*ids)[i]);
		free(*ids);
		*ids = NULL;
		*n = 0;
		return rb_err_set(err, RB_EINTERNAL, "out of memory listing '%s'", hive->paths.workers);
	}
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_str);
	return 0;
}

static void free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int rb_installed_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err)
{
	char **ids;
	size_t n;
	int rc = list_ids(hive, &ids, &n, err);
	if (rc)
		return rc;
	*out = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct rb_installed w;
		struct rb_err e2 = RB_ERR_INIT;
		if (rb_installed_get(hive, ids[i], &w, &e2) == 0) {
			json_object_array_add(*out, json_object_get(w.meta));
			rb_installed_release(&w);
		} else if (e2.code != RB_ENOTFOUND) {
			struct json_object *bad = json_object_new_object();
			rb_json_add_str(bad, "id", ids[i]);
			rb_json_add_str(bad, "error", e2.msg);
			json_object_array_add(*out, bad);
		}
	}
	free_ids(ids, n);
	return 0;
}

int rb_installed_find_by_type(struct rb_hive *hive, const char *type, struct rb_installed *out,
			      struct rb_err *err)
{
	char **ids;
	size_t n;
	memset(out, 0, sizeof(*out));
	int rc = list_ids(hive, &ids, &n, err);
	if (rc)
		return rc;
	rc = rb_err_set(err, RB_ENOTFOUND,
			"no '%s' worker is installed (see 'rbee worker available', then 'rbee "
			"worker install <id>')", type);
	for (size_t i = 0; i < n; i++) {
		struct rb_err e2 = RB_ERR_INIT;
		if (rb_installed_get(hive, ids[i], out, &e2) != 0)
			continue;
		if (!strcmp(out->worker_type, type)) {
			rb_err_clear(err);
			rc = 0;
			break;
		}
		rb_installed_release(out);
	}
	free_ids(ids, n);
	return rc;
}

bool rb_installed_in_use(struct rb_hive *hive, const char *id)
{
	return hive->installed_in_use && hive->installed_in_use(hive, id);
}

/* Open workers/.locks/<id><suffix> (created 0644), the id checked first. */
static int open_lock_file(struct rb_hive *hive, const char *id, const char *suffix, char *path,
			  size_t len, int *fd, struct rb_err *err)
{
	char dir[PATH_MAX];
	*fd = -1;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/.locks", hive->paths.workers) >= sizeof(dir))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s'", hive->paths.workers);
	int rc = rb_id_check("worker_id", id, err);
	if (!rc)
		rc = rb_fs_mkdir_p(dir, 0755, err);
	if (rc)
		return rc;
	if ((size_t)snprintf(path, len, "%s/%s%s", dir, id, suffix) >= len)
		return rb_err_set(err, RB_EINVAL, "path too long for worker '%s'", id);
	int lfd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (lfd < 0)
		return rb_err_set(err, RB_EIO, "cannot open lock file '%s': %s", path, strerror(errno));
	*fd = lfd;
	return 0;
}

int rb_installed_lock(struct rb_hive *hive, const char *id, int *fd, struct rb_err *err)
{
	char path[PATH_MAX + 160];
	int lfd;
	int rc = open_lock_file(hive, id, ".lock", path, sizeof(path), &lfd, err);
	if (rc)
		return rc;
	/* Every holder keeps it for a rename or a registry entry: wait for it a little. */
	long long deadline = rb_now_ms() + RB_INSTALLED_LOCK_WAIT_MS;
	while (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		if (e != EWOULDBLOCK) {
			close(lfd);
			return rb_err_set(err, RB_EIO, "cannot lock '%s': %s", path, strerror(e));
		}
		if (rb_now_ms() >= deadline) {
			close(lfd);
			return rb_err_set(err, RB_ECONFLICT,
					  "worker '%s' is being replaced or removed by another job "
					  "(its lock was held for more than %d s): try again", id,
					  RB_INSTALLED_LOCK_WAIT_MS / 1000);
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	*fd = lfd;
	return 0;
}

int rb_installed_install_lock(struct rb_hive *hive, const char *id, const char *job_id, int *fd,
			      struct rb_err *err)
{
	char path[PATH_MAX + 160];
	int lfd;
	int rc = open_lock_file(hive, id, ".install", path, sizeof(path), &lfd, err);
	if (rc)
		return rc;
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e != EWOULDBLOCK) {
			close(lfd);
			return rb_err_set(err, RB_EIO, "cannot lock '%s': %s", path, strerror(e));
		}
		/* The holder wrote its job id into the file right after taking the lock. */
		char holder[RB_INSTALLED_HOLDER_MAX] = "";
		ssize_t n = pread(lfd, holder, sizeof(holder) - 1, 0);
		close(lfd);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		if (holder[0] && rb_id_valid(holder))
			return rb_err_set(err, RB_ECONFLICT,
					  "worker '%s' is already being installed by job %s: wait for "
					  "it to finish, or cancel it (DELETE /v1/jobs/%s)", id, holder,
					  holder);
		return rb_err_set(err, RB_ECONFLICT,
				  "worker '%s' is being installed or removed by another job: wait for "
				  "it to finish (see 'GET /v1/jobs')", id);
	}
	/* Who holds it, for the message above; a removal records nobody. */
	char line[RB_INSTALLED_HOLDER_MAX + 2];
	int len = snprintf(line, sizeof(line), "%s\n", job_id && rb_id_valid(job_id) ? job_id : "");
	if (ftruncate(lfd, 0) != 0 || pwrite(lfd, line, (size_t)len, 0) != len)
		rb_warn("cannot record the holder of '%s': %s", path, strerror(errno));
	*fd = lfd;
	return 0;
}

void rb_installed_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* Removal with both locks held: one rename makes the worker disappear. The caller deletes
 * `aside` after letting go of the short lock. */
static int remove_locked(struct rb_hive *hive, const char *id, const char *dir, char *aside,
			 size_t len, struct rb_err *err)
{
	if (!rb_fs_is_dir(dir))
		return rb_err_set(err, RB_ENOTFOUND, "worker '%s' is not installed", id);
	if (rb_installed_in_use(hive, id))
		return rb_err_set(err, RB_ECONFLICT,
				  "worker '%s' is in use by a running worker: stop it first ('rbee "
				  "worker process list')", id);
	if ((size_t)snprintf(aside, len, "%s/remove-%s-%d", hive->paths.staging, id,
			     (int)getpid()) >= len)
		return rb_err_set(err, RB_EINVAL, "path too long for worker '%s'", id);
	int rc = rb_fs_rm_rf(aside, err);
	if (rc)
		return rc;
	if (rename(dir, aside) != 0)
		return rb_err_set(err, RB_EIO, "cannot remove '%s': %s", dir, strerror(errno));
	rb_fs_sync_dir(hive->paths.workers);
	return 0;
}

int rb_installed_remove(struct rb_hive *hive, const char *id, struct rb_err *err)
{
	char dir[PATH_MAX], aside[PATH_MAX];
	int install_lock, lock;
	int rc = worker_dir(hive, id, dir, sizeof(dir), err);
	if (rc || (rc = rb_installed_install_lock(hive, id, NULL, &install_lock, err)))
		return rc;
	if (!(rc = rb_installed_lock(hive, id, &lock, err))) {
		rc = remove_locked(hive, id, dir, aside, sizeof(aside), err);
		rb_installed_unlock(lock);
	}
	struct rb_err e2 = RB_ERR_INIT;
	if (!rc && rb_fs_rm_rf(aside, &e2) != 0)
		rb_warn("worker '%s' removed, but its old files stay in '%s': %s", id, aside, e2.msg);
	rb_installed_unlock(install_lock);
	return rc;
}
