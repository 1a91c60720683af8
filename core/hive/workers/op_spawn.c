/*
 * op_spawn.c - the worker process operations: worker_spawn, worker_process_list,
 * worker_process_get, worker_process_delete (rows of ops.c; the work is in spawn.c and the
 * registry in workers.c).
 */
#include <stdint.h>
#include <stdio.h>

#include "hive.h"
#include "jobs/jobs.h"
#include "models/models.h"
#include "rb_json.h"
#include "rb_proc.h"
#include "spawn.h"
#include "workers.h"

static int rb_op_worker_spawn(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_spawn_request r = {
		.model = rb_json_str(req, "model"),
		.worker = rb_json_str(req, "worker"),
		.device = (uint32_t)rb_json_int(req, "device", 0),
	};
	struct rb_worker w;
	rb_job_say(job, "spawning a '%s' worker with model '%s' on device %u",
		   r.worker ? r.worker : "(best-scoring backend)", r.model, r.device);
	int rc = rb_spawn_worker(rb_job_hive(job), job, &r, &w, err);
	if (rc)
		return rc;
	struct json_object *o = json_object_new_object();
	rb_json_add_str(o, "worker_id", w.id);
	rb_json_add_int(o, "pid", w.pid);
	rb_json_add_int(o, "port", w.port);
	rb_json_add_str(o, "url", w.url);
	rb_json_add_str(o, "status", rb_worker_state_name(w.state));
	rb_json_add_str(o, "model", w.model);
	rb_json_add_str(o, "backend", w.backend);
	rb_json_add_int(o, "device", w.device);
	rb_json_add_str(o, "device_id", w.device_id);
	rb_json_add_str(o, "installed_worker", w.installed_id);
	rb_json_add_str(o, "log_path", w.log_path);
	rb_job_data(job, o);
	return 0;
}

static int rb_op_worker_process_list(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	(void)req;
	(void)err;
	struct json_object *list = rb_workers_list_json(rb_job_hive(job)), *arr;
	size_t n = json_object_object_get_ex(list, "workers", &arr) ? json_object_array_length(arr) : 0;
	rb_job_say(job, "%zu worker%s in the registry", n, n == 1 ? "" : "s");
	rb_job_data(job, list);
	return 0;
}

static int rb_op_worker_pid_validate(struct rb_hive *hive, struct json_object *req, struct rb_err *err)
{
	(void)hive;
	int64_t pid = rb_json_int(req, "pid", 0);
	if (pid < 1 || pid > INT32_MAX)
		return rb_err_set(err, RB_EINVAL, "invalid pid %lld: give the pid of a worker from "
				  "'rbee worker process list'", (long long)pid);
	return 0;
}

static int rb_op_worker_process_get(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_worker w;
	int rc = rb_workers_get_pid(rb_job_hive(job), (pid_t)rb_json_int(req, "pid", 0), &w, err);
	if (rc)
		return rc;
	rb_job_data(job, rb_worker_json(&w));
	return 0;
}

static int rb_op_worker_process_delete(struct rb_job *job, struct json_object *req, struct rb_err *err)
{
	struct rb_hive *hive = rb_job_hive(job);
	pid_t pid = (pid_t)rb_json_int(req, "pid", 0);
	struct rb_worker w;
	int rc = rb_workers_get_pid(hive, pid, &w, err);
	if (rc)
		return rc;
	if (rb_worker_state_live(w.state))
		rb_job_say(job, "stopping worker '%s' (pid %d): SIGTERM to its process group, SIGKILL "
			   "after %d ms", w.id, (int)pid, rb_workers_grace_ms(hive));
	else
		rb_job_say(job, "worker '%s' (pid %d) already %s: removing its entry", w.id, (int)pid,
			   rb_worker_state_name(w.state));
	rc = rb_workers_stop(hive, w.id, rb_workers_grace_ms(hive), &w, err);
	if (rc)
		return rc;
	char how[96];
	const char *exit = w.reaped ? rb_proc_status_str(w.wait_status, how, sizeof(how))
				    : w.reason[0] ? w.reason : NULL;
	if (exit)
		rb_job_say(job, "worker '%s' %s", w.id, exit);
	struct json_object *o = json_object_new_object();
	rb_json_add_int(o, "pid", pid);
	rb_json_add_str(o, "worker_id", w.id);
	rb_json_add_str(o, "status", rb_worker_state_name(w.state));
	rb_json_add_str(o, "exit", exit);
	rb_job_data(job, o);
	return 0;
}

#define ID(name) { name, RB_FIELD_ID, 1, NULL }
#define PID { "pid", RB_FIELD_U32, 1, NULL }

const struct rb_op rb_worker_ops[] = {
	{ "worker_spawn",
	  { { "model", RB_FIELD_MODEL_ID, 1, rb_model_id_check }, { "worker", RB_FIELD_ID, 0, NULL },
	    { "device", RB_FIELD_U32, 0, NULL } },
	  NULL, rb_op_worker_spawn, "start a worker with a model on a device" },
	{ "worker_process_list", { { 0 } }, NULL, rb_op_worker_process_list, "list running workers" },
	{ "worker_process_get", { PID }, rb_op_worker_pid_validate, rb_op_worker_process_get,
	  "show one running worker" },
	{ "worker_process_delete", { PID }, rb_op_worker_pid_validate, rb_op_worker_process_delete,
	  "stop a running worker" },
	{ NULL, { { 0 } }, NULL, NULL, NULL },
};
