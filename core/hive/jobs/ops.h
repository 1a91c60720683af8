/*
 * ops.h - the operation table: every operation of POST /v1/jobs, in one place.
 *
 * An entry names the operation (the wire "operation" tag), the fields it requires with their
 * types (checked at submit, so a bad request is a 400 and never a stream), an optional extra
 * validator, and the handler that runs in the job. The engine knows no operation by name:
 * each subsystem owns its rows (install/op_workers.c, models/op_models.c, ...) and exports
 * them as one array in its header; ops.c at the root of core/hive adds them all
 * (rb_hive_register_ops). Adding an operation = adding a row in its subsystem.
 */
#ifndef RB_OPS_H
#define RB_OPS_H

#include <json-c/json.h>

#include "job.h"
#include "rb_err.h"

enum rb_field_type {
	RB_FIELD_END = 0,
	RB_FIELD_STRING,   /* non-empty string */
	RB_FIELD_U32,      /* integer 0..2^32-1 */
	RB_FIELD_ID,       /* plain id: rb_id_valid() */
	RB_FIELD_MODEL_ID, /* org/repo[:file]: a string checked by the model store's own parser,
			      which the row names as its `check` (rb_model_id_check) */
};

struct rb_field {
	const char *name;
	enum rb_field_type type;
	int required; /* 0: optional but type-checked when present */
	/* A string field's own check after the type's (required for RB_FIELD_MODEL_ID). */
	int (*check)(const char *value, struct rb_err *err);
};

#define RB_OP_MAX_FIELDS 6

struct rb_op {
	const char *name;
	struct rb_field fields[RB_OP_MAX_FIELDS];
	/* Extra checks at submit (beyond the field table); may be NULL. */
	int (*validate)(struct rb_hive *hive, struct json_object *req, struct rb_err *err);
	/* Runs in a job thread. `req` is the validated request (owned by the engine). */
	int (*run)(struct rb_job *job, struct json_object *req, struct rb_err *err);
	const char *summary; /* one line for docs and `rbee --help` */
};

/* Add a subsystem's operations (rows terminated by one with name == NULL) to the table. The
 * hive's are added by rb_hive_register_ops (ops.c); only the tests' build of the hive
 * (rbee-hive-test) and unit tests add more, for test_sleep (op_test_sleep.c, not in
 * rbee-hive). Call before any thread uses the table. -RB_EINVAL (nothing added): a row without
 * a name or handler, a model-id field without its check, a duplicate name, or the table is full. */
#define RB_OP_MAX 32
int rb_ops_add(const struct rb_op *rows);
/* Look up an operation by name; NULL when unknown. */
const struct rb_op *rb_op_find(const char *name);
/* The whole table (terminated by an entry with name == NULL), in the order it was added. */
const struct rb_op *rb_op_table(void);
/* Check a request against the op's field table and validator. */
int rb_op_validate(struct rb_hive *hive, const struct rb_op *op, struct json_object *req,
		   struct rb_err *err);

#endif
