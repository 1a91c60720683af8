/*
 * verify.h - can an installed worker run on this node? (the worker_verify operation, and the
 * last step of worker_install)
 *
 * Generic checks, in order, each a {"check","ok","detail"} entry of the report:
 *   binary     the binary exists, is a regular file and executable
 *   elf        its ELF header names this node's machine (scripts are accepted as such)
 *   libraries  every shared library it needs resolves (`ldd`: no "not found")
 *   probe      `<binary> --version` (then `--help`) runs to an exit within 5 s, without network
 *   sha256     the binary still has the sha256 recorded at install time
 * then the backend plugin's own checks (rb_backend_verify), e.g. CUDA driver and GPU fit.
 */
#ifndef RB_VERIFY_H
#define RB_VERIFY_H

#include <stdbool.h>

#include <json-c/json.h>

#include "build.h"
#include "installed.h"
#include "rb_err.h"

struct rb_hive;
struct rb_job;

/* This node, in catalog words: "linux" / "macos", and "x86_64" / "aarch64" (uname -m). */
const char *rb_node_os(void);
const char *rb_node_arch(void);

/*
 * Verify `w` (whose paths may point into a staging directory during an install). Fills
 * *report with {"worker_id","ok","checks":[...]} and *generic_ok with whether the generic
 * checks passed (a broken build), as opposed to the backend's (this node's state). Returns
 * non-zero only when the report could not be made at all.
 */
int rb_verify_worker(struct rb_hive *hive, struct rb_job *job, const struct rb_installed *w,
		     struct json_object **report, bool *generic_ok, struct rb_err *err);


#endif
