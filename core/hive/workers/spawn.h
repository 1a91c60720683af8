/*
 * spawn.h - starting a worker: preflight, port, launch plan, fork/exec with binding, readiness.
 *
 * worker_spawn (SPEC section 7) in one call, in this order, each failure a clear error:
 *   1. preflight, before anything starts: the backend is available on this node; a matching
 *      worker is installed and intact (binary present and executable, sha256 as installed; the
 *      digest is remembered while the file's device, inode, size, mtime and ctime stay the same);
 *      the device index exists for that backend; the model is in the store; the model fits the
 *      device's free memory with a margin (RB_SPAWN_FIT_MARGIN_PCT % of its size plus
 *      RB_SPAWN_FIT_MARGIN_BYTES);
 *   2. registration (state starting), which also makes worker_remove / model_delete refuse;
 *   3. a free port from the range (RBEE_WORKER_PORTS), found by bind-probing;
 *   4. the backend plugin's launch plan, filled in on an environment free of hive secrets;
 *   5. fork/exec through rb_proc_start: own process group, stdout/stderr appended to
 *      RBEE_HOME/logs/<worker_id>.log, CPU binding (sched_setaffinity) and memory binding
 *      (set_mempolicy MPOL_BIND) applied in the child with async-signal-safe calls only;
 *   6. readiness: the health path polled, first every millisecond, then less often (an eighth
 *      of the time waited so far, at most every 500 ms), `progress` events (stage "loading",
 *      then "ready"). The process ending first fails at once with its exit status and the last
 *      lines of its log; if it failed to bind its port, the start is retried on the next port
 *      (RB_SPAWN_PORT_ATTEMPTS in all). At the ready timeout (launch.ready_timeout_s of the
 *      catalog entry, overridden by RBEE_READY_TIMEOUT_S, default RB_SPAWN_READY_TIMEOUT_S)
 *      the worker is stopped and the spawn fails. A cancelled job stops it too.
 * A failed spawn leaves no process and no registry entry behind; its log file stays.
 */
#ifndef RB_SPAWN_H
#define RB_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rb_err.h"
#include "workers.h"

struct rb_hive;
struct rb_job;

#define RB_SPAWN_FIT_MARGIN_PCT 10
#define RB_SPAWN_FIT_MARGIN_BYTES (512ull << 20)
#define RB_SPAWN_READY_TIMEOUT_S 600
#define RB_SPAWN_PORT_ATTEMPTS 3

struct rb_spawn_request {
	const char *model;  /* model id in the store */
	const char *worker; /* "cpu" / "cuda" / "metal" (a backend name) or an installed worker id */
	uint32_t device;    /* the backend's device index */
};

/* Spawn one worker and wait until it is ready (see above). `job` (required) receives the
 * narration and progress and is polled for a cancel. On success *out is its registry entry
 * (state ready). */
int rb_spawn_worker(struct rb_hive *hive, struct rb_job *job, const struct rb_spawn_request *req,
		    struct rb_worker *out, struct rb_err *err);

/* Memory a model of `size` bytes needs on a device: size plus the margin. */
uint64_t rb_spawn_needed_bytes(uint64_t size);

/* Whether TCP `port` can be bound on the wildcard IPv4 and IPv6 addresses right now, as a
 * server setting SO_REUSEADDR would bind it: nobody listens there. Probing the wildcard
 * address also catches a listener on 127.0.0.1 alone. */
bool rb_spawn_port_free(uint16_t port);

/* Operation handlers (op_spawn.c), rows of the table in ops.c. */
/* worker_process_list: {"workers":[...]} as GET /v1/workers. */

#endif
