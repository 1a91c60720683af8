/*
 * rb_fs.h - files, directories and the names the hive accepts for them.
 *
 * Everything the hive writes goes through rb_fs_write_atomic() or a staging directory and a
 * rename, so a crash never leaves a half-written file under a final name.
 */
#ifndef RB_FS_H
#define RB_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rb_buf.h"
#include "rb_err.h"

/* The cache root: $RBEE_HOME, else $XDG_CACHE_HOME/rbee, else $HOME/.cache/rbee. */
int rb_fs_cache_root(struct rb_buf *out, struct rb_err *err);

/* mkdir -p with `mode` for the directories it creates. */
int rb_fs_mkdir_p(const char *path, mode_t mode, struct rb_err *err);
/* rm -rf that never follows symlinks out of `path`, and empties directories of ours that were
 * left without write or search permission (u+rwx first). Missing path is success. */
int rb_fs_rm_rf(const char *path, struct rb_err *err);
/* Read a whole file (up to `max` bytes; larger is RB_ETOOBIG). */
int rb_fs_read_file(const char *path, size_t max, struct rb_buf *out, struct rb_err *err);
/* Write path.tmp-<pid>-<n>, fsync, rename over path, fsync the directory. */
int rb_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		       struct rb_err *err);
bool rb_fs_exists(const char *path);
bool rb_fs_is_dir(const char *path);
/* Write "<dir>/<prefix>" followed by mkdtemp()/mkstemp()'s six-character template into out,
 * ready to pass to either. -1 when it does not fit in `len`. */
int rb_fs_temp_template(char *out, size_t len, const char *dir, const char *prefix);
/* fsync a directory so a rename inside it is durable. */
int rb_fs_sync_dir(const char *dir);

/*
 * Names. A plain id (worker ids, job ids, file names): 1..128 characters of [A-Za-z0-9._-],
 * not starting with '.', never "..". A model id: "org/repo" or "org/repo:file" where org and
 * repo are plain ids and file is a plain id (so no path tricks can hide in any part).
 */
bool rb_id_valid(const char *id);
int rb_id_check(const char *what, const char *id, struct rb_err *err);

#endif
