/*
 * rb_libs.h - libcurl and libcrypto are loaded at their first use (rb_libs.c): the programs
 * call curl_*() and EVP_*() as usual and link neither library.
 */
#ifndef RB_LIBS_H
#define RB_LIBS_H

#include <stdbool.h>

/* Why a library could not be loaded ("" when none failed so far). */
const char *rb_libs_error(void);
/* Load libcurl now if it is not yet; false (and rb_libs_error) when it cannot be. */
bool rb_libs_curl_loaded(void);

#endif
