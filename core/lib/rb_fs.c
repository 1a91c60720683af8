#include "rb_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rb_fs_cache_root(struct rb_buf *out, struct rb_err *err)
{
	const char *v;
	rb_buf_reset(out);
	if ((v = getenv("RBEE_HOME")) && *v)
		rb_buf_adds(out, v);
	else if ((v = getenv("XDG_CACHE_HOME")) && *v)
		rb_buf_addf(out, "%s/rbee", v);
	else if ((v = getenv("HOME")) && *v)
		rb_buf_addf(out, "%s/.cache/rbee", v);
	else
		return rb_err_set(err, RB_EINVAL,
				  "cannot find a cache directory: set RBEE_HOME or HOME");
	while (out->len > 1 && out->data[out->len - 1] == '/')
		rb_buf_truncate(out, out->len - 1);
	return 0;
}

int rb_fs_mkdir_p(const char *path, mode_t mode, struct rb_err *err)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(tmp))
		return rb_err_set(err, RB_EINVAL, "bad directory path '%s'", path);
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return rb_err_set(err, RB_EIO, "cannot create directory '%s': %s", tmp,
					  strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return rb_err_set(err, RB_EIO, "cannot create directory '%s': %s", tmp, strerror(errno));
	if (!rb_fs_is_dir(tmp))
		return rb_err_set(err, RB_EIO, "'%s' exists and is not a directory", tmp);
	return 0;
}

static int rm_rf_at(int parent, const char *name, struct rb_err *err, const char *top)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : rb_err_set(err, RB_EIO, "cannot remove '%s': %s", top,
						       strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		/* A directory of ours we may not list or empty (a build made it read-only, as Go's
		 * module cache is): give ourselves the right first, as `chmod -R u+rwx` would. */
		if ((st.st_mode & S_IRWXU) != S_IRWXU && st.st_uid == geteuid())
			fchmodat(parent, name, (st.st_mode & 07777) | S_IRWXU, 0);
		int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return rb_err_set(err, RB_EIO, "cannot open '%s': %s", top, strerror(errno));
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return rb_err_set(err, RB_EIO, "cannot read '%s': %s", top, strerror(errno));
		}
		struct dirent *de;
		int rc = 0;
		while (!rc && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			rc = rm_rf_at(dirfd(d), de->d_name, err, top);
		}
		closedir(d);
		if (rc)
			return rc;
		if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
			return rb_err_set(err, RB_EIO, "cannot remove '%s': %s", top, strerror(errno));
		return 0;
	}
	if (unlinkat(parent, name, 0) != 0 && errno != ENOENT)
		return rb_err_set(err, RB_EIO, "cannot remove '%s': %s", top, strerror(errno));
	return 0;
}

int rb_fs_rm_rf(const char *path, struct rb_err *err)
{
	return rm_rf_at(AT_FDCWD, path, err, path);
}

int rb_fs_read_file(const char *path, size_t max, struct rb_buf *out, struct rb_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rb_err_set(err, errno == ENOENT ? RB_ENOTFOUND : RB_EIO, "cannot open '%s': %s",
				  path, strerror(errno));
	rb_buf_reset(out);
	for (;;) {
		rb_buf_grow(out, 65536);
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return rb_err_set(err, RB_EIO, "cannot read '%s': %s", path, strerror(e));
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
		if (out->len > max) {
			close(fd);
			return rb_err_set(err, RB_ETOOBIG, "'%s' is larger than %zu bytes", path, max);
		}
	}
	close(fd);
	return 0;
}

int rb_fs_temp_template(char *out, size_t len, const char *dir, const char *prefix)
{
	enum { RANDOM_CHARS = 6 }; /* mkdtemp and mkstemp replace exactly the last six */
	int n = snprintf(out, len, "%s/%s", dir, prefix);
	if (n < 0 || (size_t)n + RANDOM_CHARS >= len)
		return -1;
	memset(out + n, 'X', RANDOM_CHARS);
	out[n + RANDOM_CHARS] = '\0';
	return 0;
}

int rb_fs_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int rb_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		       struct rb_err *err)
{
	static atomic_uint counter;
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d-%u", path, (int)getpid(),
			     atomic_fetch_add(&counter, 1)) >= sizeof(tmp))
		return rb_err_set(err, RB_EINVAL, "path too long: '%s'", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return rb_err_set(err, RB_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			return rb_err_set(err, RB_EIO, "cannot write '%s': %s", tmp, strerror(e));
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		int e = errno;
		unlink(tmp);
		return rb_err_set(err, RB_EIO, "cannot write '%s': %s", tmp, strerror(e));
	}
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return rb_err_set(err, RB_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		rb_fs_sync_dir(*dir ? dir : "/");
	}
	return 0;
}

bool rb_fs_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

bool rb_fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool rb_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > 128 || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return strstr(id, "..") == NULL;
}

int rb_id_check(const char *what, const char *id, struct rb_err *err)
{
	if (rb_id_valid(id))
		return 0;
	return rb_err_set(err, RB_EINVAL,
			  "invalid %s '%s': use 1-128 characters of A-Z a-z 0-9 . _ - "
			  "(not starting with '.', no '..')",
			  what, id ? id : "");
}
