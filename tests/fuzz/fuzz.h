/*
 * fuzz.h - the entry points every harness in tests/fuzz/ defines (libFuzzer's names).
 *
 * With RBEE_FUZZ=ON a harness links libFuzzer, which supplies main(); otherwise it links
 * replay.c, which runs it once over every file named on the command line (the seed corpus and
 * the regressions), so the normal and sanitizer test builds check them too.
 */
#ifndef RB_FUZZ_H
#define RB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional; harnesses that need process-wide setup define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#endif
