/*
 * build.h - running a PKGBUILD's code: the build sandbox and the prepare/build/check/package
 * phases, with their output streamed line by line into the job's narration and build.log.
 *
 * The sandbox is what keeps a PKGBUILD from the hive's power:
 *   - the environment starts from rb_env_from_environ_scrubbed() (no hive secrets);
 *   - when the hive runs as root, every command of one build (and each verify) runs as a uid of
 *     its own, taken from RBEE_BUILD_UIDS (default 1879048192-1879048447; uid = gid, no passwd entry), with
 *     no supplementary groups, PR_SET_NO_NEW_PRIVS and resource limits (CPU time, file size,
 *     open files, processes, wall clock per command). Every process of that uid is SIGKILLed when
 *     each command ends (whatever its process group or session), when the uid is given back, and
 *     for the whole range when the hive starts (after a crash);
 *   - commands that need no network (extraction, build, check, package) run in a new network
 *     namespace with nothing but a down loopback, where the kernel allows it (root: CAP_SYS_ADMIN;
 *     otherwise an unprivileged user namespace). Where it does not, the job says so once.
 * See docs/INSTALL-PIPELINE.md.
 */
#ifndef RB_BUILD_H
#define RB_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/backends.h"
#include "rb_buf.h"
#include "pkgbuild.h"
#include "rb_err.h"

struct rb_job;

struct rb_sandbox {
	bool drop;             /* run children as uid/gid (the hive is root) */
	bool owns_uid;         /* uid was taken from RBEE_BUILD_UIDS: rb_sandbox_release gives it back */
	uid_t uid;
	gid_t gid;
	long cpu_s;            /* RLIMIT_CPU per process, seconds */
	long long fsize;       /* RLIMIT_FSIZE, bytes */
	long nofile;           /* RLIMIT_NOFILE */
	long nproc;            /* RLIMIT_NPROC (per uid: per build), only with a uid of its own */
	int timeout_s;         /* wall-clock limit of one build command */
	char user[64];         /* the build user's name, for narration */
	bool netns;            /* children that need no network get a network namespace */
	bool userns;           /* ... through an unprivileged user namespace (hive not root) */
	char uid_map[48];      /* "1000 1000 1": written by the child into /proc/self/uid_map */
	char gid_map[48];
	char no_netns_why[160]; /* when !netns: why not ("unshare: Operation not permitted") */
};

/* Decide how builds run on this node: which uid (a free one of RBEE_BUILD_UIDS when the hive is
 * root), which limits, and whether a network namespace works (probed once per process with a
 * short-lived child). Fails when the build settings are invalid or every uid of the range is
 * taken. Pair with rb_sandbox_release. */
int rb_sandbox_init(struct rb_sandbox *sb, struct rb_err *err);
/* Kill every process left by the sandbox's uid and give the uid back. Safe to call twice and
 * on a zeroed sandbox. */
void rb_sandbox_release(struct rb_sandbox *sb);
/* At hive start: check the build settings (RBEE_BUILD_UIDS, limits) and, as root, SIGKILL every
 * process of the whole uid range (what an earlier hive's builds left behind). Returns how many
 * processes were killed, or a negative error for invalid settings. */
int rb_sandbox_startup(struct rb_err *err);

/* True when the build user can enter and write `dir` (every ancestor searchable by it). */
bool rb_sandbox_can_reach(const struct rb_sandbox *sb, const char *dir);

/* chown -R to uid:gid without following symlinks. */
int rb_sandbox_chown_r(const char *path, uid_t uid, gid_t gid, struct rb_err *err);

/*
 * A build tool's progress in one line of its output, at the start of the line (after blanks and
 * colour escapes; of the last "\r"-separated part that has one, as cargo redraws its bar):
 *   cmake/make   "[ 42%] Building C object ..."         -> done 42, total 100
 *   ninja        "[123/456] Building CXX object ..."    -> done 123, total 456
 *   cargo        "    Building [=====>    ] 123/456: serde, syn"  -> 123, 456
 * A percentage above 100, a count above its total, a total of 0 or above RB_BUILD_PROGRESS_MAX,
 * or anything not closed as above is no progress. True when the line holds some.
 */
#define RB_BUILD_PROGRESS_MAX 1000000000ULL
bool rb_build_progress_parse(const char *line, size_t len, uint64_t *done, uint64_t *total);

/* At most one build progress event per this many milliseconds (the latest figures win; the
 * last ones of a command are sent when it ends). */
#define RB_BUILD_PROGRESS_MS 250

/* Where a build's output goes: the job's narration, build.log, and a tail for error messages. */
#define RB_BUILD_TAIL_LINES 6
struct rb_build_log {
	struct rb_job *job; /* may be NULL (no narration) */
	int fd;             /* build.log, or -1 */
	unsigned long long written, max; /* bytes in build.log, and its cap (RBEE_BUILD_LOG_MAX_MB) */
	bool capped;        /* the cap was hit: later output goes to the job only */
	char tail[RB_BUILD_TAIL_LINES][200];
	int ntail, next;
	/* Build progress (rb_build_progress_parse) reported as the job's progress under this stage
	 * while it is set (rb_build_phase sets "building" for prepare, build and check). */
	const char *progress_stage;
	uint64_t sent_done, sent_total;   /* the last figures sent */
	uint64_t pend_done, pend_total;   /* figures seen but not sent yet (throttled) */
	bool pending;
	long long sent_ms;                /* monotonic time of the last event, 0 = none yet */
};
void rb_build_log_init(struct rb_build_log *log, struct rb_job *job, int fd);
/* One line of child output: narrated, appended to build.log, remembered in the tail. */
void rb_build_log_line(struct rb_build_log *log, const char *line, size_t len);
/* One line of the pipeline's own narration (also into build.log, not into the tail). */
void rb_build_log_say(struct rb_build_log *log, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The last lines of child output joined with " | ", "" when there were none. */
void rb_build_log_tail(const struct rb_build_log *log, char *out, size_t outlen);
/* Forget the tail (before each command, so an error shows that command's output only). */
void rb_build_log_reset_tail(struct rb_build_log *log);

/* Run argv in the sandbox (network only when `network`), output streamed into `log`, the
 * child registered with the job so a cancel stops it. envp NULL: the hive's environment
 * without its secrets (rb_env_from_environ_scrubbed), never the raw one. Returns 0 on exit status 0; otherwise
 * RB_EIO "<what> failed (exited with status 2)", RB_ECANCELLED, or a start error. */
int rb_build_run(struct rb_build_log *log, const struct rb_sandbox *sb, bool network,
		 const char *const *argv, const char *const *envp, const char *cwd, const char *what,
		 struct rb_err *err);

/* Run argv in the sandbox with a time limit, capturing stdout+stderr (at most `max` bytes) -
 * for short probes such as `ldd` or `<worker> --version`. envp NULL: scrubbed, as above. `cwd`
 * (may be NULL) is entered before privileges are dropped, so argv may name "./binary" in a
 * directory whose ancestors the build uid cannot search. Returns rb_proc_pump's result. */
int rb_sandbox_capture(const struct rb_sandbox *sb, bool network, const char *const *argv,
		       const char *const *envp, const char *cwd, int timeout_ms, struct rb_buf *out,
		       size_t max, int *status, struct rb_err *err);

/* Copy the file `path` into out_fd reading it with the sandbox's rights (a `cat` as the build
 * uid), so a file:// source can name only what the build user may read. */
int rb_sandbox_read_file(const struct rb_sandbox *sb, struct rb_job *job, const char *path,
			 int out_fd, struct rb_err *err);

/* The directories of one build (makepkg's names). */
struct rb_build_dirs {
	const char *startdir; /* holds PKGBUILD and the downloaded sources */
	const char *srcdir;   /* $startdir/src: extracted sources, the phases' working directory */
	const char *pkgdir;   /* $startdir/pkg: what package() installs into */
	const char *home;     /* HOME for the build user when the hive drops privileges, else NULL */
};

/*
 * Run one phase: `bash -e` sources $startdir/PKGBUILD, enters $srcdir and calls the function,
 * with srcdir pkgdir startdir pkgname pkgver pkgrel CARCH set on top of `env`. prepare() keeps
 * the network (it is where PKGBUILDs fetch dependencies, e.g. `cargo fetch`); build, check and
 * package get none. A failure reads "build() failed (exited with status 2); last output: ...".
 */
int rb_build_phase(struct rb_build_log *log, const struct rb_sandbox *sb, const struct rb_env *env,
		   const struct rb_build_dirs *dirs, const struct rb_pkgbuild *pb, enum rb_pkg_fn fn,
		   struct rb_err *err);

#endif
