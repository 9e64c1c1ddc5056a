/* The Hugging Face Hub client: downloads files and repo snapshots over libcurl
 * into huggingface_hub's cache layout (so Python tools and lfl share one cache),
 * lists repo files, and resolves names offline from the cache. */
#ifndef LFL_HUB_H
#define LFL_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef enum { LFL_HUB_MODEL = 0, LFL_HUB_DATASET, LFL_HUB_SPACE } lfl_hub_repo_type;

typedef struct {
    const char *revision;         /* branch, tag or commit; NULL: "main" */
    lfl_hub_repo_type repo_type;
    const char *token;            /* NULL: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file */
    bool no_token;                /* send no token even when one is configured */
    const char *const *allow;     /* fnmatch patterns a snapshot file must match (any), NULL: all */
    int n_allow;
    const char *const *ignore;    /* patterns that exclude a file */
    int n_ignore;
    const char *local_dir;        /* also copy the files there and return paths in it */
    const char *cache_dir;        /* NULL: HF_HUB_CACHE, else $HF_HOME/hub */
    const char *endpoint;         /* NULL: HF_ENDPOINT, else https://huggingface.co */
    int offline;                  /* -1: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, 0 no, 1 yes */
    int max_workers;              /* parallel file downloads; <= 0: 8 */
    int progress;                 /* -1: when stderr is a terminal, 0 never, 1 always */
    int retries;                  /* retries of a failed transfer; < 0: LFL_HUB_RETRIES or 5 */
    bool force;                   /* download again even when cached */
} lfl_hub_opts;

void lfl_hub_opts_init(lfl_hub_opts *o);

/* A commit of local files to a repo (huggingface_hub's upload_folder /
 * create_commit): files go as regular git blobs (base64 in the commit) or, as
 * the Hub's preupload answer says, through the LFS batch API (a streamed PUT
 * to the storage URL it returns, multipart when it asks, then verify). */
typedef struct {
    lfl_hub_opts hub;               /* revision (the branch), repo_type, token, endpoint, allow/ignore
                                     * (patterns on the path in the folder), retries, progress */
    const char *path_in_repo;       /* folder in the repo the files go to; NULL: its root */
    const char *commit_message;     /* NULL: "Upload folder using lfl" */
    const char *commit_description; /* NULL: none */
    bool create_repo;               /* POST /api/repos/create first (an existing repo is fine) */
    int private_repo;               /* a created repo: -1 the namespace's default, 0 public, 1 private */
} lfl_hub_upload_opts;

void lfl_hub_upload_opts_init(lfl_hub_upload_opts *o);

typedef struct {
    char *repo_id;      /* the repo as the Hub named it (a name without namespace gets one) */
    char *commit_oid;   /* the new commit; the branch's when nothing changed (no commit made) */
    char *commit_url;
    int n_files;        /* files in the commit (0: the repo had them all as they are) */
    int n_lfs;          /* of them LFS files */
    int n_uploaded;     /* LFS files whose content was sent (the others the Hub had) */
    int64_t bytes_uploaded;
} lfl_hub_commit;

/* Commits the files under `folder` (recursively; .git/ and .cache/huggingface/
 * skipped) to repo_id at o->hub.revision ("main"). */
lfl_status lfl_hub_upload_folder(const char *repo_id, const char *folder, const lfl_hub_upload_opts *o,
                                 lfl_hub_commit *out);
void lfl_hub_commit_free(lfl_hub_commit *c);

/* Downloads one file (filename != NULL) or a snapshot of the repo (filtered by
 * allow/ignore), returns in *path (malloc'ed) the local file path or the
 * snapshot folder, snapshots/<commit> in the cache or local_dir. */
lfl_status lfl_hub_download(const char *repo_id, const char *filename, const lfl_hub_opts *o, char **path);

typedef struct {
    char *name;        /* path in the repo */
    int64_t size;      /* bytes, -1 when the server did not say */
    char *sha256;      /* LFS files: content sha256; else NULL */
    char *blob_id;     /* git blob id, or NULL */
} lfl_hub_file;

typedef struct {
    char *id;          /* repo id as the server spells it */
    char *sha;         /* commit the revision resolved to */
    int n_files;
    lfl_hub_file *files;
} lfl_hub_info;

/* Lists the files of a repo at o->revision (with sizes) through the Hub API. */
lfl_status lfl_hub_repo_info(const char *repo_id, const lfl_hub_opts *o, lfl_hub_info *out);
void lfl_hub_info_free(lfl_hub_info *info);

/* The cache root in use (HF_HUB_CACHE / HF_HOME rules), written into buf. */
lfl_status lfl_hub_cache_dir(const lfl_hub_opts *o, char *buf, size_t n);
/* Folder of a repo in the cache: <cache>/models--org--name */
lfl_status lfl_hub_repo_folder(const char *repo_id, const lfl_hub_opts *o, char *buf, size_t n);

/* The allow/ignore rule used by snapshots (huggingface_hub's filter_repo_objects:
 * fnmatch where '*' also matches '/', a pattern ending in '/' matches a folder). */
bool lfl_hub_match(const char *path, const char *const *allow, int n_allow,
                   const char *const *ignore, int n_ignore);

/* sha256 of a file as 64 lowercase hex chars */
lfl_status lfl_hub_sha256_file(const char *path, char out[65]);

/* Asks every running download to stop (safe from a signal handler); the call
 * in progress returns an "interrupted" error and partial files stay resumable. */
void lfl_hub_cancel(void);

#endif
