/*
 * models.h - the model store (SPEC section 6): the models this hive has downloaded, under
 * RBEE_HOME/models/, and the download that puts them there.
 *
 * Layout: one directory per model id, named by rb_model_id_to_dirname() ('/' -> '@',
 * ':' -> '+'; neither can appear in an id, so the name maps back to the id), holding
 *   <file>          the model file, renamed into place only after its sha256 matched
 *   <file>.part     an unfinished download (resumed by the next download of the id)
 *   download.json   what the unfinished download is fetching (file, url, sha256, size)
 *   metadata.json   the record (rb_model_record_json); a model is present once this exists
 *   .lock           flock()ed by whoever downloads or deletes the model, so one model never
 *                   has two writers (threads of this hive or another hive on the same home)
 *
 * The record keeps the original id too, and listing reads the records, so ids with '/' and
 * ':' always come back exactly as they went in.
 */
#ifndef RB_MODELS_H
#define RB_MODELS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "gguf.h"
#include "jobs/jobs.h"
#include "rb_err.h"

struct rb_hive;

#define RB_MODEL_PART_MAX 129 /* org, repo and file are plain ids of at most 128 characters */
#define RB_MODEL_ID_MAX (3 * RB_MODEL_PART_MAX)
/* RBEE_MAX_MODEL_BYTES when unset: the most a model download may take. A hub that announces
 * more is refused before the transfer; one that announces nothing is stopped there. The
 * Hugging Face hub stores at most 50 GB per file, so no file of it is refused. */
#define RB_MODEL_MAX_BYTES_DEFAULT (64ull << 30)

/* A model id split: "org/repo" or "org/repo:file". */
struct rb_model_ref {
	char org[RB_MODEL_PART_MAX];
	char repo[RB_MODEL_PART_MAX];
	char file[RB_MODEL_PART_MAX]; /* "" when the id names no file */
};

/* Split and check an id. URLs, ids without '/', and parts that are not plain ids
 * ([A-Za-z0-9._-], see rb_id_valid) are RB_EINVAL with a message showing the accepted forms. */
int rb_model_id_parse(const char *id, struct rb_model_ref *ref, struct rb_err *err);
/* The store's directory name for a valid id, and back. Both return 0, or -1 when the input is
 * not a valid id / store directory name or does not fit in `len`. */
int rb_model_id_to_dirname(const char *id, char *out, size_t len);
int rb_model_dirname_to_id(const char *name, char *out, size_t len);

/* A present model. */
struct rb_model_record {
	char id[RB_MODEL_ID_MAX];
	char repo[2 * RB_MODEL_PART_MAX]; /* "org/repo" */
	char name[128];            /* the GGUF's general.name, else the repository name */
	char file[RB_MODEL_PART_MAX]; /* the model file's name in its directory */
	char path[PATH_MAX];       /* absolute path of the model file */
	uint64_t size;
	char sha256[65];
	bool sha256_verified;      /* it matched the hash the hub announced */
	char source_url[1024];
	char added_at[32];         /* RFC 3339 UTC */
	bool is_gguf;              /* false: not a GGUF file (or a damaged header); no facts */
	struct rb_gguf_facts gguf;
};

/* The record as JSON (what metadata.json, model_get and model_list hold). Absent facts are
 * null. Caller owns the result. */
struct json_object *rb_model_record_json(const struct rb_model_record *rec);

/* The record of a present model whose file is intact (exists, recorded size). RB_ENOTFOUND
 * when the id is not present (an unfinished download says so), RB_EIO when its file is gone or
 * changed, RB_EINVAL for a malformed id. Used by worker_spawn for the path and size. */
int rb_models_get(struct rb_hive *hive, const char *id, struct rb_model_record *rec,
		  struct rb_err *err);
/* {"models":[...]} sorted by id: every present model's record with "status":"ready" (or
 * "damaged" when its file is gone), and every unfinished download as {"id","status":"partial",
 * "file","size","path"}. Caller owns the result. */
int rb_models_list(struct rb_hive *hive, struct json_object **out, struct rb_err *err);
/* Remove a model, present or unfinished. RB_ENOTFOUND when there is nothing under that id,
 * RB_ECONFLICT while a worker uses it or a download of it runs. *freed: bytes removed. */
int rb_models_delete(struct rb_hive *hive, const char *id, uint64_t *freed, struct rb_err *err);
/* Whether a live worker uses the model: the hive's model_in_use query (hive.h; main.c wires it
 * to the process registry), false without one. */
bool rb_models_in_use(struct rb_hive *hive, const char *id);

/* Where a download reports to (the job, in the hive; tests pass their own). All optional. */
struct rb_model_events {
	void (*say)(void *arg, const char *line);
	void (*progress)(void *arg, const char *stage, uint64_t done, uint64_t total,
			 double rate_bps);
	bool (*should_stop)(void *arg);
	void *arg;
};

/* Make `id` present: at once when it already is; else (one downloader per model, others wait)
 * list the repository (HF_ENDPOINT, HF_TOKEN), pick the file (rb_hf_choose_gguf when the id
 * names none), download it with resume into <file>.part, verify its sha256, rename it into
 * place, read its GGUF facts and write metadata.json. A cancel (RB_ECANCELLED) or a transient
 * failure keeps the part for the next download; a hash mismatch, 404 or 401/403 leaves nothing.
 * Environment: RBEE_DOWNLOAD_STALL_S (default 30), RBEE_DOWNLOAD_RETRIES (default 5). */
int rb_models_download(struct rb_hive *hive, const char *id, const struct rb_model_events *ev,
		       struct rb_model_record *rec, struct rb_err *err);

/* rb_model_id_parse as a field check of the operation table (RB_FIELD_MODEL_ID). */
int rb_model_id_check(const char *id, struct rb_err *err);

/* The operations of this subsystem, rows for the table (rb_ops_add; jobs/ops.h):
 * - model_download {"model"}: the record, at once when already present.
 * - model_list: {"models":[...]} as rb_models_list.
 * - model_get {"id"}: the record.
 * - model_delete {"id"}: {"id","deleted":true,"freed_bytes"}. */
extern const struct rb_op rb_model_ops[];

#endif
