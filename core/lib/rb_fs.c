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

/* One level of the descent: the directory's name in its parent and its identity, to check that
 * ".." leads back to the directory we came from. */
struct rm_level {
	char *name;
	dev_t dev;
	ino_t ino;
};

/* A directory of ours we may not list or empty (a build made it read-only, as Go's module cache
 * is): give ourselves the right first, as `chmod -R u+rwx` would. */
static void make_ours_writable(int parent, const char *name, const struct stat *st)
{
	if ((st->st_mode & S_IRWXU) != S_IRWXU && st->st_uid == geteuid())
		fchmodat(parent, name, (st->st_mode & 07777) | S_IRWXU, 0);
}

/* Remove everything in the directory `fd`, stopping at its first subdirectory: *sub gets that
 * subdirectory's name (malloc'ed) and stat, NULL when the directory is now empty. */
static int empty_level(int fd, char **sub, struct stat *sub_st, struct rb_err *err, const char *top)
{
	*sub = NULL;
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return rb_err_set(err, RB_EIO, "cannot read '%s': %s", top, strerror(errno));
	}
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				rc = rb_err_set(err, RB_EIO, "cannot remove '%s': %s", top, strerror(errno));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			make_ours_writable(fd, de->d_name, &st);
			*sub = strdup(de->d_name);
			*sub_st = st;
			if (!*sub)
				rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
			break;
		}
		if (unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT)
			rc = rb_err_set(err, RB_EIO, "cannot remove '%s': %s", top, strerror(errno));
	}
	closedir(d);
	return rc;
}

/*
 * rm -rf without recursion and with two descriptors at most, however deep the tree: descend
 * into the first subdirectory found, remove files on the way, and when a directory is empty go
 * back up through ".." (checked to be the directory we came from, by device and inode, so a
 * directory moved meanwhile cannot lead elsewhere) and remove it there. The names of the levels
 * are kept on the heap.
 */
static int rm_tree(const char *path, struct rb_err *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : rb_err_set(err, RB_EIO, "cannot remove '%s': %s", path,
							strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0 && errno != ENOENT)
			return rb_err_set(err, RB_EIO, "cannot remove '%s': %s", path, strerror(errno));
		return 0;
	}
	make_ours_writable(AT_FDCWD, path, &st);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return rb_err_set(err, RB_EIO, "cannot open '%s': %s", path, strerror(errno));
	struct rm_level *lv = NULL;
	size_t depth = 0, cap = 0;
	int rc = 0;
	struct stat here = st;
	for (;;) {
		char *sub = NULL;
		struct stat sub_st;
		if ((rc = empty_level(fd, &sub, &sub_st, err, path)))
			break;
		if (sub) {
			int nfd = openat(fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			struct stat got;
			if (nfd < 0 || fstat(nfd, &got) != 0 || got.st_dev != sub_st.st_dev ||
			    got.st_ino != sub_st.st_ino) {
				rc = rb_err_set(err, RB_EIO, "cannot open '%s' (in '%s'): %s", sub, path,
						nfd < 0 ? strerror(errno) : "it changed");
				if (nfd >= 0)
					close(nfd);
				free(sub);
				break;
			}
			if (depth == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct rm_level *n = realloc(lv, ncap * sizeof(*n));
				if (!n) {
					close(nfd);
					free(sub);
					rc = rb_err_set(err, RB_EINTERNAL, "out of memory");
					break;
				}
				lv = n;
				cap = ncap;
			}
			lv[depth++] = (struct rm_level){ sub, here.st_dev, here.st_ino };
			here = got;
			close(fd);
			fd = nfd;
			continue;
		}
		if (depth == 0)
			break; /* the top is empty */
		/* Up one level, then remove the now empty directory from there. */
		struct rm_level up = lv[--depth];
		int pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat got;
		if (pfd < 0 || fstat(pfd, &got) != 0 || got.st_dev != up.dev || got.st_ino != up.ino) {
			rc = rb_err_set(err, RB_EIO, "cannot go back up in '%s': %s", path,
					pfd < 0 ? strerror(errno) : "a directory was moved meanwhile");
			if (pfd >= 0)
				close(pfd);
			free(up.name);
			break;
		}
		close(fd);
		fd = pfd;
		here = got;
		if (unlinkat(fd, up.name, AT_REMOVEDIR) != 0 && errno != ENOENT)
			rc = rb_err_set(err, RB_EIO, "cannot remove '%s': %s", path, strerror(errno));
		free(up.name);
		if (rc)
			break;
	}
	close(fd);
	for (size_t i = 0; i < depth; i++)
		free(lv[i].name);
	free(lv);
	if (!rc && rmdir(path) != 0 && errno != ENOENT)
		rc = rb_err_set(err, RB_EIO, "cannot remove '%s': %s", path, strerror(errno));
	return rc;
}

int rb_fs_rm_rf(const char *path, struct rb_err *err)
{
	return rm_tree(path, err);
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
	int e = fsync(fd) != 0 ? errno : 0; /* closed even when fsync fails: no fd leaks */
	if (close(fd) != 0 && !e)
		e = errno;
	if (e) {
		unlink(tmp);
		return rb_err_set(err, RB_EIO, "cannot write '%s': %s", tmp, strerror(e));
	}
	if (rename(tmp, path) != 0) {
		e = errno;
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
