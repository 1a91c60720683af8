/*
 * rb_libs.c - libcurl and libcrypto, loaded at their first use.
 *
 * The programs call curl_*() and EVP_*() as usual, but nothing links those libraries: the
 * functions below carry the same names (hidden, so a plugin or the libraries themselves never
 * bind to them), dlopen the library by its SONAME the first time one of them is called, and
 * forward. A hive that downloads nothing never maps libcurl, OpenSSL and the 20 libraries they
 * pull in (Kerberos, LDAP, SSH, RTMP...): it starts faster, each probe child too, and it idles
 * in about 3 MiB less memory (bench/startup.sh). When a library cannot be loaded, its calls
 * fail the way the library itself reports failure (NULL, CURLE_FAILED_INIT, 0) and
 * rb_libs_error() says why, once, in the hive's log too.
 *
 * The SONAMEs are those of the libraries the build found (CMake reads them from the .so files
 * pkg-config names), so a build uses at run time the ABI it was compiled against.
 */
#define CURL_DISABLE_TYPECHECK /* the typecheck macros would rename curl_easy_setopt below */
#include "rb_libs.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rb_log.h"

#ifndef RB_CURL_SONAME
#error "RB_CURL_SONAME must name libcurl's SONAME (set by core/CMakeLists.txt)"
#endif
#ifndef RB_CRYPTO_SONAME
#error "RB_CRYPTO_SONAME must name libcrypto's SONAME (set by core/CMakeLists.txt)"
#endif

/* X(return type, name, (parameters), (arguments), value when the library is missing) */
#define CURL_FUNCS(X)                                                                          \
	X(CURL *, curl_easy_init, (void), (), NULL)                                           \
	X(CURLcode, curl_easy_perform, (CURL * c), (c), CURLE_FAILED_INIT)                     \
	X(void, curl_easy_cleanup, (CURL * c), (c), )                                          \
	X(const char *, curl_easy_strerror, (CURLcode e), (e), "libcurl could not be loaded") \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s),       \
	  (l, s), NULL)                                                                        \
	X(void, curl_slist_free_all, (struct curl_slist * l), (l), )                           \
	X(CURLM *, curl_multi_init, (void), (), NULL)                                          \
	X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *c), (m, c), CURLM_INTERNAL_ERROR) \
	X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *c), (m, c),                  \
	  CURLM_INTERNAL_ERROR)                                                                \
	X(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running),              \
	  CURLM_INTERNAL_ERROR)                                                                \
	X(CURLMcode, curl_multi_poll,                                                          \
	  (CURLM * m, struct curl_waitfd *fds, unsigned n, int ms, int *nfds),                  \
	  (m, fds, n, ms, nfds), CURLM_INTERNAL_ERROR)                                         \
	X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left), NULL)            \
	X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)               \
	X(CURLMcode, curl_multi_wakeup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)              \
	X(const char *, curl_multi_strerror, (CURLMcode e), (e), "libcurl could not be loaded")

#define CRYPTO_FUNCS(X)                                                                        \
	X(EVP_MD_CTX *, EVP_MD_CTX_new, (void), (), NULL)                                     \
	X(void, EVP_MD_CTX_free, (EVP_MD_CTX * c), (c), )                                      \
	X(const EVP_MD *, EVP_sha256, (void), (), NULL)                                        \
	X(int, EVP_DigestInit_ex, (EVP_MD_CTX * c, const EVP_MD *md, ENGINE *e), (c, md, e), 0) \
	X(int, EVP_DigestUpdate, (EVP_MD_CTX * c, const void *d, size_t n), (c, d, n), 0)       \
	X(int, EVP_DigestFinal_ex, (EVP_MD_CTX * c, unsigned char *md, unsigned *n), (c, md, n), 0)

#define POINTER(ret, name, params, args, fail) ret(*name) params;

struct lib {
	const char *soname;
	pthread_once_t once;
	bool ok;
	char why[256];
};

static struct lib curl_lib = { RB_CURL_SONAME, PTHREAD_ONCE_INIT, false, "" };
static struct lib crypto_lib = { RB_CRYPTO_SONAME, PTHREAD_ONCE_INIT, false, "" };

static struct {
	CURL_FUNCS(POINTER)
	CURLcode (*curl_easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*curl_easy_getinfo)(CURL *, CURLINFO, ...);
	CURLcode (*curl_global_init)(long);
} cu;

static struct {
	CRYPTO_FUNCS(POINTER)
} cr;

/* dlopen the library and resolve `n` names into `slots`; false and lib->why on failure. */
static bool open_lib(struct lib *lib, const char *const *names, void **slots, size_t n)
{
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(lib->why, sizeof(lib->why), "cannot load %s: %s (install it: Debian's "
			 "package is %s)", lib->soname, e ? e : "unknown error",
			 lib == &curl_lib ? "libcurl4" : "libssl3");
		rb_error("%s", lib->why);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(slots[i] = dlsym(h, names[i]))) {
			snprintf(lib->why, sizeof(lib->why), "%s has no '%s': a library too old for "
				 "this build", lib->soname, names[i]);
			rb_error("%s", lib->why);
			dlclose(h);
			return false;
		}
	}
	return true; /* kept loaded for the life of the process */
}

#define NAME(ret, name, params, args, fail) #name,

static void load_curl(void)
{
	static const char *const names[] = { CURL_FUNCS(NAME) "curl_easy_setopt",
					     "curl_easy_getinfo", "curl_global_init" };
	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(cu) / sizeof(void *),
		       "one name per function pointer");
	void *slots[sizeof(names) / sizeof(names[0])];
	if (!open_lib(&curl_lib, names, slots, sizeof(names) / sizeof(names[0])))
		return;
	memcpy(&cu, slots, sizeof(cu));
	/* Here, once, before any other curl call can run (they all wait for this). */
	if (cu.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(curl_lib.why, sizeof(curl_lib.why), "libcurl's global initialisation failed");
		rb_error("%s", curl_lib.why);
		return;
	}
	curl_lib.ok = true;
}

static void load_crypto(void)
{
	static const char *const names[] = { CRYPTO_FUNCS(NAME) };
	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(cr) / sizeof(void *),
		       "one name per function pointer");
	void *slots[sizeof(names) / sizeof(names[0])];
	if (!open_lib(&crypto_lib, names, slots, sizeof(names) / sizeof(names[0])))
		return;
	memcpy(&cr, slots, sizeof(cr));
	crypto_lib.ok = true;
}

static bool have_curl(void)
{
	pthread_once(&curl_lib.once, load_curl);
	return curl_lib.ok;
}

static bool have_crypto(void)
{
	pthread_once(&crypto_lib.once, load_crypto);
	return crypto_lib.ok;
}

const char *rb_libs_error(void)
{
	return curl_lib.why[0] ? curl_lib.why : crypto_lib.why;
}

/* One forwarder: load `lib` at the first call, then call through its table. */
#define FORWARD(have, table, ret, name, params, args, fail)                                    \
	ret name params                                                                        \
	{                                                                                      \
		if (!have())                                                                   \
			return fail;                                                           \
		return table.name args;                                                        \
	}
#define FORWARD_CURL(...) FORWARD(have_curl, cu, __VA_ARGS__)
#define FORWARD_CRYPTO(...) FORWARD(have_crypto, cr, __VA_ARGS__)

CURL_FUNCS(FORWARD_CURL)
CRYPTO_FUNCS(FORWARD_CRYPTO)

CURLcode curl_global_init(long flags)
{
	(void)flags; /* done once, with the defaults, when the library is loaded */
	return have_curl() ? CURLE_OK : CURLE_FAILED_INIT;
}

/*
 * The variadic two pass one argument on, typed by the option's number the way curl.h types
 * them: a long, an object or string pointer, a function pointer, a curl_off_t, a blob pointer.
 * Every curl_easy_getinfo argument is a pointer to where the answer goes.
 */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	if (!have_curl())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, opt);
	CURLcode rc;
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = cu.curl_easy_setopt(c, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = cu.curl_easy_setopt(c, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = cu.curl_easy_setopt(c, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = cu.curl_easy_setopt(c, opt, va_arg(ap, curl_off_t));
	else
		rc = cu.curl_easy_setopt(c, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	if (!have_curl())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = cu.curl_easy_getinfo(c, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
