/*
 * verify.c - generic checks of an installed worker plus its backend's (see verify.h).
 */
#include "verify.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "backends/backends.h"
#include "backends/backends.h"
#include "jobs/jobs.h"
#include "rb_buf.h"
#include "rb_json.h"
#include "rb_proc.h"
#include "rb_sha256.h"

#define PROBE_TIMEOUT_MS 5000

const char *rb_node_os(void)
{
#if defined(__APPLE__)
	return "macos";
#elif defined(_WIN32)
	return "windows";
#else
	return "linux";
#endif
}

static char node_arch[65];
static pthread_once_t node_arch_once = PTHREAD_ONCE_INIT;

static void read_node_arch(void)
{
	struct utsname u;
	const char *m = uname(&u) == 0 ? u.machine : "unknown";
	if (!strcmp(m, "arm64"))
		m = "aarch64";
	else if (!strcmp(m, "amd64"))
		m = "x86_64";
	snprintf(node_arch, sizeof(node_arch), "%s", m);
}

const char *rb_node_arch(void)
{
	pthread_once(&node_arch_once, read_node_arch);
	return node_arch;
}

/* The binary relative to the install root, for details that read the same in staging. */
static const char *shown(const struct rb_installed *w)
{
	size_t n = strlen(w->root);
	if (!strncmp(w->binary_path, w->root, n) && w->binary_path[n] == '/')
		return w->binary_path + n + 1;
	return w->binary_path;
}

static bool check_binary(const struct rb_installed *w, struct rb_report *r)
{
	struct stat st;
	if (stat(w->binary_path, &st) != 0) {
		rb_report_add(r, "binary", false, "'%s' is missing: %s", shown(w), strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode) || access(w->binary_path, X_OK) != 0) {
		rb_report_add(r, "binary", false, "'%s' is not an executable file", shown(w));
		return false;
	}
	rb_report_add(r, "binary", true, "'%s' is an executable file (%lld bytes)", shown(w),
		      (long long)st.st_size);
	return true;
}

static unsigned node_machine(void)
{
	const char *a = rb_node_arch();
	return !strcmp(a, "x86_64") ? EM_X86_64 : !strcmp(a, "aarch64") ? EM_AARCH64
		: (!strcmp(a, "i686") || !strcmp(a, "i386")) ? EM_386
		: !strcmp(a, "riscv64") ? EM_RISCV : !strcmp(a, "ppc64le") ? EM_PPC64 : EM_NONE;
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_X86_64:
		return "x86_64";
	case EM_AARCH64:
		return "aarch64";
	case EM_386:
		return "i386";
	case EM_RISCV:
		return "riscv";
	case EM_PPC64:
		return "ppc64";
	case EM_ARM:
		return "arm";
	}
	return "another machine";
}

/* Returns true for an ELF file whose machine matches; *is_script for "#!" files. */
static bool check_elf(const struct rb_installed *w, struct rb_report *r, bool *is_script)
{
	unsigned char h[64] = { 0 };
	int fd = open(w->binary_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, h, sizeof(h)) : -1;
	if (fd >= 0)
		close(fd);
	*is_script = n >= 2 && h[0] == '#' && h[1] == '!';
	if (*is_script) {
		rb_report_add(r, "elf", true, "'%s' is a script, not an ELF binary", shown(w));
		return true;
	}
	if (n < 20 || memcmp(h, ELFMAG, SELFMAG) != 0) {
		rb_report_add(r, "elf", false, "'%s' is neither an ELF binary nor a script", shown(w));
		return false;
	}
	unsigned m = h[EI_DATA] == ELFDATA2MSB ? (unsigned)(h[18] << 8 | h[19])
					       : (unsigned)(h[19] << 8 | h[18]);
	unsigned want = node_machine();
	if (m != want) {
		rb_report_add(r, "elf", false, "'%s' is built for %s (ELF machine %u); this node is %s",
			      shown(w), machine_name(m), m, rb_node_arch());
		return false;
	}
	rb_report_add(r, "elf", true, "ELF %s-bit binary for %s", h[EI_CLASS] == ELFCLASS64 ? "64" : "32",
		      rb_node_arch());
	return true;
}

/* The names ldd reports "not found", space-separated, into missing. */
static void missing_libraries(const char *ldd_out, struct rb_buf *missing)
{
	for (const char *line = ldd_out; *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *nf = memmem(line, len, "not found", 9);
		if (nf) {
			while (len && (*line == ' ' || *line == '\t'))
				line++, len--;
			size_t name = strcspn(line, " \t");
			rb_buf_addf(missing, "%s%.*s", missing->len ? " " : "", (int)name, line);
		}
		line += len + (eol ? 1 : 0);
		if (!eol)
			break;
	}
}

/* The binary's directory and "./<name>": probes are started in that directory (entered before
 * the drop to the build uid, which may not be able to search RBEE_HOME's ancestors). */
static void split_binary(const struct rb_installed *w, char dir[PATH_MAX], char rel[PATH_MAX])
{
	snprintf(dir, PATH_MAX, "%s", w->binary_path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		snprintf(rel, PATH_MAX, "./%s", slash + 1);
	} else {
		snprintf(dir, PATH_MAX, "/");
		snprintf(rel, PATH_MAX, "%s", w->binary_path);
	}
}

static bool check_libraries(const struct rb_installed *w, const struct rb_sandbox *sb,
			    struct rb_report *r)
{
	struct rb_buf out = RB_BUF_INIT, missing = RB_BUF_INIT, ldd = RB_BUF_INIT;
	bool ok = true;
	if (rb_proc_which("ldd", &ldd) != 0) {
		rb_report_add(r, "libraries", true, "not checked: 'ldd' is not installed");
		goto out;
	}
	char dir[PATH_MAX], rel[PATH_MAX];
	split_binary(w, dir, rel);
	const char *argv[] = { "ldd", rel, NULL };
	int status = 0;
	struct rb_err err = RB_ERR_INIT;
	if (rb_sandbox_capture(sb, false, argv, NULL, dir, PROBE_TIMEOUT_MS, &out, 65536, &status,
			       &err)) {
		rb_report_add(r, "libraries", false, "cannot run ldd: %s", err.msg);
		ok = false;
		goto out;
	}
	missing_libraries(out.data, &missing);
	if (missing.len) {
		rb_report_add(r, "libraries", false, "not found: %s (install them or rebuild the worker)",
			      missing.data);
		ok = false;
	} else if (strstr(out.data, "not a dynamic executable") || strstr(out.data, "statically linked")) {
		rb_report_add(r, "libraries", true, "statically linked");
	} else {
		rb_report_add(r, "libraries", true, "all shared libraries resolve");
	}
out:
	rb_buf_release(&out);
	rb_buf_release(&missing);
	rb_buf_release(&ldd);
	return ok;
}

/* Run `<binary> <flag>`: 1 = exited by itself, 0 = did not (detail says why). */
static int run_probe(const struct rb_installed *w, const struct rb_sandbox *sb, const char *flag,
		     char *detail, size_t len)
{
	char dir[PATH_MAX], rel[PATH_MAX];
	split_binary(w, dir, rel);
	const char *argv[] = { rel, flag, NULL };
	struct rb_buf out = RB_BUF_INIT;
	struct rb_err err = RB_ERR_INIT;
	int status = 0;
	int rc = rb_sandbox_capture(sb, false, argv, NULL, dir, PROBE_TIMEOUT_MS, &out, 4096, &status,
				    &err);
	char st[96];
	size_t first = strcspn(out.data, "\n");
	if (rc == -RB_ETIMEDOUT)
		snprintf(detail, len, "'%s %s' did not finish within %d s", shown(w), flag,
			 PROBE_TIMEOUT_MS / 1000);
	else if (rc)
		snprintf(detail, len, "'%s %s' could not run: %.300s", shown(w), flag, err.msg);
	else if (!WIFEXITED(status))
		snprintf(detail, len, "'%s %s' %s", shown(w), flag, rb_proc_status_str(status, st, sizeof(st)));
	else
		snprintf(detail, len, "'%s %s' %s%s%.*s", shown(w), flag,
			 rb_proc_status_str(status, st, sizeof(st)), first ? ": " : "",
			 (int)(first > 200 ? 200 : first), out.data);
	rb_buf_release(&out);
	return !rc && WIFEXITED(status) ? (WEXITSTATUS(status) == 0 ? 1 : 2) : 0;
}

static bool check_probe(const struct rb_installed *w, const struct rb_sandbox *sb,
			struct rb_report *r)
{
	char detail[600];
	int ran = run_probe(w, sb, "--version", detail, sizeof(detail));
	if (ran != 1) {
		char help[600];
		int ran_help = run_probe(w, sb, "--help", help, sizeof(help));
		if (ran_help == 1 || (ran_help && !ran)) {
			memcpy(detail, help, sizeof(detail));
			ran = ran_help;
		}
	}
	rb_report_add(r, "probe", ran != 0, "%s", detail);
	return ran != 0;
}

static bool check_sha256(const struct rb_installed *w, struct rb_report *r)
{
	char hex[65];
	struct rb_err err = RB_ERR_INIT;
	if (!w->sha256[0]) {
		rb_report_add(r, "sha256", false, "no sha256 was recorded at install: reinstall it");
		return false;
	}
	if (rb_sha256_file(w->binary_path, hex, &err) != 0) {
		rb_report_add(r, "sha256", false, "%s", err.msg);
		return false;
	}
	bool ok = !strcasecmp(hex, w->sha256);
	if (ok)
		rb_report_add(r, "sha256", true, "%s matches the install record", hex);
	else
		rb_report_add(r, "sha256", false, "is %s but was %s at install: the binary changed, "
			      "reinstall the worker", hex, w->sha256);
	return ok;
}

int rb_verify_worker(struct rb_hive *hive, struct rb_job *job, const struct rb_installed *w,
		     struct json_object **report, bool *generic_ok, struct rb_err *err)
{
	struct rb_sandbox sb;
	int rc = rb_sandbox_init(&sb, err);
	if (rc)
		return rc;
	/* Probes run in the build sandbox, as a build uid of their own (never the hive's), without
	 * network, bounded by PROBE_TIMEOUT_MS; whatever they leave behind is killed with the uid. */
	struct rb_report r;
	rb_report_init(&r);
	bool is_script = false;
	bool ok = check_binary(w, &r);
	if (ok) {
		ok = check_elf(w, &r, &is_script);
		if (!is_script)
			ok = check_libraries(w, &sb, &r) && ok;
		ok = check_probe(w, &sb, &r) && ok;
	}
	rb_sandbox_release(&sb);
	ok = check_sha256(w, &r) && ok;
	*generic_ok = ok;
	struct rbee_worker_info info = { w->id, w->binary_path, w->root, w->worker_type };
	struct rb_err berr = RB_ERR_INIT;
	if (rb_backend_verify(hive, w->worker_type, job, &info, &r, &berr) != 0)
		rb_report_add(&r, "backend", false, "%s", berr.msg);
	*report = json_object_new_object();
	rb_json_add_str(*report, "worker_id", w->id);
	rb_json_add_bool(*report, "ok", r.ok);
	json_object_object_add(*report, "checks", json_object_get(r.checks));
	rb_report_release(&r);
	return 0;
}
