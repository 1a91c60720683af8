/*
 * hf.h - the Hugging Face hub client of the model catalog: where the hub is, what a repository
 * holds, which GGUF file to take from it, and where that file downloads from.
 *
 * The hub is `HF_ENDPOINT` (default https://huggingface.co; any server with the same routes,
 * such as a mirror or the tests' fake hub, works). `HF_TOKEN`, when set, is sent as a bearer
 * token; it lives only in the request header built here and is never logged or narrated.
 */
#ifndef RB_HF_H
#define RB_HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rb_err.h"

#define RB_HF_DEFAULT_ENDPOINT "https://huggingface.co"

struct rb_hf_hub {
	char endpoint[512];      /* no trailing '/' */
	char auth_header[1100];  /* "Authorization: Bearer <HF_TOKEN>", "" without a token */
	const char *headers[2];  /* { auth_header, NULL } or { NULL } for requests */
};

/* One file of a repository, as the hub lists it. */
struct rb_hf_file {
	char *path;          /* relative to the repository root, e.g. "llama.Q4_K_M.gguf" */
	uint64_t size;       /* bytes; 0 with size_known false when the listing had none */
	bool size_known;
	char sha256[65];     /* the LFS object's sha256, "" when the file is not in LFS */
};

struct rb_hf_listing {
	struct rb_hf_file *files;
	size_t n;
};

/* The file picked from a repository when the id names none. */
struct rb_hf_choice {
	size_t index;        /* into the listing */
	const char *quant;   /* the preference that matched ("Q4_K_M"), NULL: smallest GGUF */
};

/* Quantizations tried in order when no file is named, NULL-terminated. */
extern const char *const rb_hf_quant_preference[];

/* Read HF_ENDPOINT and HF_TOKEN. RB_EINVAL when HF_ENDPOINT is not an http(s) URL or HF_TOKEN
 * holds characters a header cannot carry. */
int rb_hf_hub_from_env(struct rb_hf_hub *hub, struct rb_err *err);

/* List a repository's files: GET {endpoint}/api/models/{org}/{repo}?blobs=true (sizes and LFS
 * hashes included). 404 -> RB_ENOTFOUND and 401/403 -> RB_EDENIED with the messages an operator
 * needs (rb_hf_status_error); an unreachable hub -> RB_EUNAVAIL. */
int rb_hf_list(const struct rb_hf_hub *hub, const char *org, const char *repo,
	       struct rb_hf_listing *out, struct rb_err *err);
/* Parse a listing: the model info object ("siblings") or a tree listing (an array of
 * {"type","path","size","lfs":{"oid"}}). Directories are skipped. */
int rb_hf_parse_listing(const char *json, size_t len, struct rb_hf_listing *out,
			struct rb_err *err);
void rb_hf_listing_release(struct rb_hf_listing *l);
/* The file named `path` in the listing, or NULL. */
const struct rb_hf_file *rb_hf_listing_find(const struct rb_hf_listing *l, const char *path);

/* Choose a single-file GGUF: the first preference found in a file name (case-insensitive, as a
 * whole token: "F16" does not match "BF16"), the smallest such file when several match; when no
 * preference matches, the smallest GGUF. Split shards ("-00001-of-00003.gguf"), multimodal
 * projectors ("mmproj") and paths that are not plain names are never chosen. No candidate ->
 * RB_ENOTFOUND naming what the repository does hold. */
int rb_hf_choose_gguf(const char *repo_id, const struct rb_hf_listing *l,
		      struct rb_hf_choice *choice, struct rb_err *err);

/* {endpoint}/{org}/{repo}/resolve/main/{file} */
void rb_hf_resolve_url(const struct rb_hf_hub *hub, const char *org, const char *repo,
		       const char *file, char *out, size_t len);

/* The error for an HTTP status of the hub about `repo_id` ("org/repo"): 404 not found,
 * 401/403 access denied (mentioning HF_TOKEN), anything else an unavailable hub. */
int rb_hf_status_error(const struct rb_hf_hub *hub, const char *repo_id, long status,
		       struct rb_err *err);

#endif
