/*
 * fuzz_pkgbuild.c - the PKGBUILD reader (core/hive/install/pkgbuild.c) and the source-entry parser,
 * as worker_install uses them on a catalog's PKGBUILD.
 *
 * The reader must refuse, never crash, hang or abort, on any text: a catalog is not trusted.
 * What it accepts must keep its promises: required fields set, one sha256sums entry per
 * source, NULL-terminated arrays. Each accepted source entry then goes through
 * rb_source_parse / rb_source_check_sha256 / rb_source_archive_type, as rb_sources_fetch does.
 * The first input byte picks CARCH (x86_64 or aarch64).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "install/pkgbuild.h"

static void check_strv(const struct rb_strv *sv)
{
	if (sv->n && (!sv->v || sv->v[sv->n]))
		abort();
	for (size_t i = 0; i < sv->n; i++)
		if (!sv->v[i])
			abort();
}

static void check_accepted(const struct rb_pkgbuild *pb)
{
	if (!pb->pkgname || !pb->pkgver || !pb->pkgrel || !pb->arch.n)
		abort();
	check_strv(&pb->arch);
	check_strv(&pb->license);
	check_strv(&pb->depends);
	check_strv(&pb->makedepends);
	check_strv(&pb->source);
	check_strv(&pb->sha256sums);
	check_strv(&pb->noextract);
	if (pb->source.n != pb->sha256sums.n)
		abort();
	for (size_t i = 0; i < pb->source.n; i++) {
		struct rb_source src;
		struct rb_err err = RB_ERR_INIT;
		if (rb_source_parse(pb->source.v[i], &src, &err) != 0) {
			if (!err.msg[0])
				abort();
			continue;
		}
		if (!memchr(src.name, '\0', sizeof(src.name)) || !src.name[0] ||
		    strchr(src.name, '/') || src.name[0] == '-' || !strcmp(src.name, "..") ||
		    !strcmp(src.name, "."))
			abort(); /* the name is a file in $srcdir, never a path */
		(void)rb_source_archive_type(src.name);
		(void)rb_source_check_sha256(&src, pb->sha256sums.v[i],
					     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
					     &err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *carch = data[0] & 1 ? "aarch64" : "x86_64";
	struct rb_pkgbuild pb;
	memset(&pb, 0, sizeof(pb));
	struct rb_err err = RB_ERR_INIT;
	int rc = rb_pkgbuild_parse((const char *)data + 1, size - 1, carch, &pb, &err);
	if (rc == 0) {
		check_accepted(&pb);
		(void)rb_pkgbuild_supports_arch(&pb, carch);
	} else if (!err.msg[0]) {
		abort();
	}
	rb_pkgbuild_release(&pb);
	return 0;
}
