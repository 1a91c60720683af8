/*
 * ops.c - the operation table of POST /v1/jobs and request validation. The rows come from the
 * subsystems that own them (rb_ops_add); this file only keeps and checks them.
 */
#include "ops.h"

#include <string.h>

#include "rb_fs.h"
#include "rb_json.h"

static struct rb_op table[RB_OP_MAX + 1]; /* terminated by a zeroed row */
static size_t ntable;

static int row_ok(const struct rb_op *op)
{
	if (!op->name || !op->run || rb_op_find(op->name))
		return 0;
	for (const struct rb_field *f = op->fields; f < op->fields + RB_OP_MAX_FIELDS && f->name; f++)
		if (f->type == RB_FIELD_MODEL_ID && !f->check)
			return 0;
	return 1;
}

int rb_ops_add(const struct rb_op *rows)
{
	size_t n = 0;
	if (!rows)
		return -RB_EINVAL;
	for (; rows[n].name; n++) {
		if (ntable + n >= RB_OP_MAX || !row_ok(&rows[n]))
			return -RB_EINVAL;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(rows[i].name, rows[n].name))
				return -RB_EINVAL;
	}
	memcpy(table + ntable, rows, n * sizeof(*rows));
	ntable += n;
	return 0;
}

const struct rb_op *rb_op_table(void)
{
	return table;
}

const struct rb_op *rb_op_find(const char *name)
{
	for (size_t i = 0; name && i < ntable; i++)
		if (!strcmp(table[i].name, name))
			return &table[i];
	return NULL;
}

int rb_op_validate(struct rb_hive *hive, const struct rb_op *op, struct json_object *req,
		   struct rb_err *err)
{
	for (const struct rb_field *f = op->fields; f->name; f++) {
		struct json_object *v;
		if (!json_object_object_get_ex(req, f->name, &v) || json_object_is_type(v, json_type_null)) {
			if (f->required)
				return rb_err_set(err, RB_EINVAL, "operation '%s' needs field '%s'",
						  op->name, f->name);
			continue;
		}
		const char *s;
		uint32_t u;
		int rc = 0;
		switch (f->type) {
		case RB_FIELD_U32:
			rc = rb_json_req_u32(req, f->name, &u, err);
			break;
		case RB_FIELD_STRING:
		case RB_FIELD_ID:
		case RB_FIELD_MODEL_ID:
			rc = rb_json_req_str(req, f->name, &s, err);
			if (!rc && f->type == RB_FIELD_ID)
				rc = rb_id_check(f->name, s, err);
			/* A model id's check is the model store's own parser: one accepted here
			 * is one the store takes, and a refused one gets the store's message. */
			if (!rc && f->check)
				rc = f->check(s, err);
			break;
		case RB_FIELD_END:
			break;
		}
		if (rc)
			return rc;
	}
	return op->validate ? op->validate(hive, req, err) : 0;
}
