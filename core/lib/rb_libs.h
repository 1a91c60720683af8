/*
 * rb_libs.h - libcurl and libcrypto are loaded at their first use (rb_libs.c): the programs
 * call curl_*() and EVP_*() as usual and link neither library.
 */
#ifndef RB_LIBS_H
#define RB_LIBS_H

/* Why a library could not be loaded ("" when none failed so far). */
const char *rb_libs_error(void);

#endif
