/*
 * replay.c - main() for a harness built without libFuzzer: runs LLVMFuzzerTestOneInput once on
 * every file named on the command line, and on every file in the directories named (not
 * recursive). The test suite runs each harness this way over its seed corpus and its
 * regressions, so a fixed crash stays fixed in every build, sanitizers included.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0;
	unsigned char *buf = malloc(cap);
	for (size_t n; buf && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
		len += n;
		if (len == cap) {
			unsigned char *p = realloc(buf, cap *= 2);
			if (!p)
				free(buf);
			buf = p;
		}
	}
	bool bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		fprintf(stderr, "replay: cannot read '%s'\n", path);
		free(buf);
		return -1;
	}
	/* An exact-size copy, so ASan sees a read past the input's end. */
	unsigned char *in = malloc(len ? len : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(in, len);
	free(in);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int runs = 0, failed = 0;
	for (int a = 1; a < argc; a++) {
		struct stat st;
		if (stat(argv[a], &st) != 0) {
			fprintf(stderr, "replay: '%s': %s\n", argv[a], strerror(errno));
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed += run_file(argv[a]) != 0;
			runs++;
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[a], &names, NULL, alphasort);
		if (n < 0) {
			fprintf(stderr, "replay: cannot list '%s': %s\n", argv[a], strerror(errno));
			failed++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[a], names[i]->d_name);
			if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				fprintf(stderr, "replay: %s\n", path);
				failed += run_file(path) != 0;
				runs++;
			}
			free(names[i]);
		}
		free(names);
	}
	printf("replay: %d input%s, %d unreadable\n", runs, runs == 1 ? "" : "s", failed);
	return failed ? 1 : 0;
}
