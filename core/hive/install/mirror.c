/*
 * mirror.c - rbee-hive --fill-mirror (see mirror.h).
 */
#include "mirror.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "catalog.h"
#include "backends/backends.h"
#include "pkgbuild.h"
#include "rb_buf.h"
#include "rb_fs.h"
#include "rb_http.h"
#include "sources.h"
#include "verify.h"

/* One worker's sources into dir. Returns how many failed; *total counts the sources. */
static int fill_worker(struct rb_hive *hive, struct rb_sandbox *sb, struct rb_env *env,
		       const char *dir, const char *id, size_t *total)
{
	struct rb_err err = RB_ERR_INIT;
	struct rb_buf text = RB_BUF_INIT;
	struct rb_pkgbuild pb;
	memset(&pb, 0, sizeof(pb));
	char work[PATH_MAX] = "", srcdir[PATH_MAX], pkgdir[PATH_MAX], home[PATH_MAX];
	int failed = 0;
	const char *tmp = rb_fs_is_dir("/var/tmp") ? "/var/tmp" : "/tmp";
	char prefix[200];
	snprintf(prefix, sizeof(prefix), "rbee-fill-%s-", id);
	int rc = rb_id_check("worker id", id, &err);
	if (!rc)
		rc = rb_catalog_pkgbuild(hive, id, &text, &err);
	if (!rc && rb_pkgbuild_parse(text.data, text.len, rb_node_arch(), &pb, &err))
		rc = rb_err_prefix(&err, "the PKGBUILD of '%s'", id);
	if (!rc && rb_fs_temp_template(work, sizeof(work), tmp, prefix))
		rc = rb_err_set(&err, RB_EINVAL, "path too long: '%s/%s'", tmp, prefix);
	if (!rc && !mkdtemp(work)) {
		rc = rb_err_set(&err, RB_EIO, "cannot create a directory in '%s': %s", tmp,
				strerror(errno));
		work[0] = '\0';
	}
	if (!rc) {
		snprintf(srcdir, sizeof(srcdir), "%s/src", work);
		snprintf(pkgdir, sizeof(pkgdir), "%s/pkg", work);
		snprintf(home, sizeof(home), "%s/.home", work);
		if ((rc = rb_fs_mkdir_p(srcdir, 0755, &err)) == 0 &&
		    (rc = rb_fs_mkdir_p(home, 0700, &err)) == 0 && sb->drop)
			rc = rb_sandbox_chown_r(work, sb->uid, sb->gid, &err);
	}
	if (rc) {
		fprintf(stderr, "%s: FAILED: %s\n", id, err.msg);
		failed = 1;
	} else {
		struct rb_build_dirs dirs = { work, srcdir, pkgdir, home };
		struct rb_build_log log;
		rb_build_log_init(&log, NULL, -1);
		const char *cat = hive->cfg.catalog;
		struct rb_sources_ctx ctx = { .hive = hive, .log = &log, .sb = sb, .env = env,
					      .dirs = &dirs };
		ctx.local_catalog = strncmp(cat, "http://", 7) != 0 && strncmp(cat, "https://", 8) != 0;
		for (size_t i = 0; i < pb.source.n; i++) {
			char what[1200] = "";
			rb_err_clear(&err);
			(*total)++;
			if (rb_sources_fill(&ctx, &pb, i, dir, what, sizeof(what), &err) == 0) {
				printf("%s: %s\n", id, what);
			} else {
				fprintf(stderr, "%s: FAILED: source '%s': %s\n", id, pb.source.v[i], err.msg);
				failed++;
			}
			fflush(stdout);
		}
	}
	if (work[0]) {
		struct rb_err e2 = RB_ERR_INIT;
		if (rb_fs_rm_rf(work, &e2) != 0)
			fprintf(stderr, "%s: %s\n", id, e2.msg);
	}
	rb_pkgbuild_release(&pb);
	rb_buf_release(&text);
	return failed;
}

int rb_mirror_fill_main(const struct rb_config *cfg)
{
	static struct rb_hive hive; /* large; only cfg (the catalog) is used */
	memset(&hive, 0, sizeof(hive));
	hive.cfg = *cfg;
	struct rb_err err = RB_ERR_INIT;
	char dir[PATH_MAX];
	if (rb_fs_mkdir_p(cfg->fill_mirror, 0755, &err) || !realpath(cfg->fill_mirror, dir)) {
		fprintf(stderr, "rbee-hive: --fill-mirror '%s': %s\n", cfg->fill_mirror,
			err.msg[0] ? err.msg : strerror(errno));
		return 2;
	}
	rb_http_global_init();
	struct rb_sandbox sb;
	if (rb_sandbox_init(&sb, &err)) {
		fprintf(stderr, "rbee-hive: --fill-mirror: %s\n", err.msg);
		return 1;
	}
	struct rb_env env;
	rb_env_from_environ_scrubbed(&env);
	printf("filling the source mirror '%s' from %s%s%s\n", dir, rb_catalog_source(&hive),
	       sb.drop ? "; git runs as build user " : "", sb.drop ? sb.user : "");
	size_t total = 0;
	int failed = 0;
	for (int i = 0; i < cfg->fill_n; i++)
		failed += fill_worker(&hive, &sb, &env, dir, cfg->fill_ids[i], &total);
	rb_env_release(&env);
	rb_sandbox_release(&sb);
	if (failed) {
		fprintf(stderr, "rbee-hive: --fill-mirror: %d of the sources failed (named above); "
			"'%s' holds the others\n", failed, dir);
		return 1;
	}
	printf("%zu source%s in '%s'\n", total, total == 1 ? "" : "s", dir);
	return 0;
}
