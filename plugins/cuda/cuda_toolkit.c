/*
 * cuda_toolkit.c - the CUDA toolkit a PKGBUILD build needs: where nvcc is, and whether it can
 * generate code for the GPUs of this node.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_internal.h"

#define NVCC_TIMEOUT_MS 30000

static int is_executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The toolkit root of an nvcc path: the parent of the directory holding it. */
static int toolkit_root(const char *nvcc, char *home, size_t homelen)
{
	char buf[PATH_MAX];
	char *slash;

	if (snprintf(buf, sizeof(buf), "%s", nvcc) >= (int)sizeof(buf))
		return -1;
	for (int i = 0; i < 2; i++) {
		slash = strrchr(buf, '/');
		if (!slash)
			return -1;
		*slash = '\0';
	}
	return snprintf(home, homelen, "%s", buf[0] ? buf : "/") < (int)homelen ? 0 : -1;
}

/* First executable "nvcc" in a PATH string, resolved through symlinks (so /usr/bin/nvcc ->
 * /opt/cuda/bin/nvcc yields the /opt/cuda toolkit). Returns 0 when found. */
static int search_path(const char *path, char *nvcc, size_t nvcclen)
{
	char dir[PATH_MAX], cand[PATH_MAX], real[PATH_MAX];
	const char *p = path;

	while (p && *p) {
		size_t n = strcspn(p, ":");

		/* An empty entry means the current directory: never trusted. */
		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			if (snprintf(cand, sizeof(cand), "%s/nvcc", dir) < (int)sizeof(cand) &&
			    dir[0] == '/' && is_executable_file(cand) && realpath(cand, real) &&
			    snprintf(nvcc, nvcclen, "%s", real) < (int)nvcclen)
				return 0;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	return -1;
}

int cuda_find_nvcc(const struct rbee_host *host, char *nvcc, size_t nvcclen, char *home,
		   size_t homelen)
{
	const char *cuda_home = host->getenv(host->call, "CUDA_HOME");
	const char *path = host->getenv(host->call, "PATH");

	if (cuda_home && *cuda_home) {
		/* The operator chose a toolkit: use it or say why not, never another one. */
		if (snprintf(nvcc, nvcclen, "%s/bin/nvcc", cuda_home) >= (int)nvcclen ||
		    !is_executable_file(nvcc))
			return host->fail(host->call, RBEE_ERR_NOT_FOUND,
					  "CUDA toolkit not found: CUDA_HOME is \"%s\" but \"%s/bin/nvcc\" "
					  "is not an executable file; fix CUDA_HOME or unset it", cuda_home,
					  cuda_home);
		snprintf(home, homelen, "%s", cuda_home);
		return RBEE_OK;
	}
	snprintf(nvcc, nvcclen, "/usr/local/cuda/bin/nvcc");
	if (is_executable_file(nvcc)) {
		snprintf(home, homelen, "/usr/local/cuda");
		return RBEE_OK;
	}
	if (search_path(path, nvcc, nvcclen) == 0 && toolkit_root(nvcc, home, homelen) == 0)
		return RBEE_OK;
	return host->fail(host->call, RBEE_ERR_NOT_FOUND,
			  "CUDA toolkit not found: no nvcc in \"/usr/local/cuda/bin\" or on PATH; "
			  "install it or set CUDA_HOME");
}

/* Run `nvcc ARG` and capture its output. Returns 0 when it ran and exited 0, 1 when it ran and
 * failed, or a negative status when it could not run at all. */
static int run_nvcc(const struct rbee_host *host, const char *nvcc, const char *arg, char *out,
		    size_t outlen)
{
	const char *argv[] = { nvcc, arg, NULL };
	int status = 0;
	int rc = host->run(host->call, argv, NVCC_TIMEOUT_MS, out, outlen, &status);

	if (rc != RBEE_OK)
		return rc;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* Narrate which toolkit release is in use ("release 12.4," in `nvcc --version`). */
static void log_release(const struct rbee_host *host, const char *nvcc)
{
	char out[2048];
	const char *rel;
	int major, minor;

	if (run_nvcc(host, nvcc, "--version", out, sizeof(out)) != 0)
		return;
	rel = strstr(out, "release ");
	if (rel && sscanf(rel, "release %d.%d", &major, &minor) == 2)
		host->log(host->call, RBEE_LOG_INFO, "using CUDA toolkit %d.%d (%s)", major, minor,
			  nvcc);
}

/* Is "compute_<arch>" a whole token of nvcc's target list? */
static int lists_arch(const char *list, int arch)
{
	char tok[32];
	int n = snprintf(tok, sizeof(tok), "compute_%d", arch);

	for (const char *p = strstr(list, tok); p; p = strstr(p + 1, tok)) {
		if ((p == list || p[-1] == '\n' || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == '\n' || p[n] == '\r' || p[n] == ' '))
			return 1;
	}
	return 0;
}

int cuda_check_nvcc_targets(const struct rbee_host *host, const char *nvcc, const int *archs,
			    size_t narchs)
{
	char out[4096];
	int rc;

	log_release(host, nvcc);
	rc = run_nvcc(host, nvcc, "--list-gpu-arch", out, sizeof(out));
	if (rc < 0)
		return host->fail(host->call, RBEE_ERR_FAILED, "\"%s\" could not be run: check the "
				  "CUDA toolkit installation", nvcc);
	if (rc > 0 || !strstr(out, "compute_")) {
		host->log(host->call, RBEE_LOG_WARN, "\"%s --list-gpu-arch\" gave no target list "
			  "(toolkit older than 11.0?): not checking GPU targets", nvcc);
		return RBEE_OK;
	}
	for (size_t i = 0; i < narchs; i++) {
		if (!lists_arch(out, archs[i]))
			return host->fail(host->call, RBEE_ERR_UNAVAILABLE,
					  "the CUDA toolkit at \"%s\" cannot build for compute capability "
					  "%d.%d of this node's GPUs: install a toolkit that lists "
					  "compute_%d in \"nvcc --list-gpu-arch\"", nvcc, archs[i] / 10,
					  archs[i] % 10, archs[i]);
	}
	return RBEE_OK;
}
