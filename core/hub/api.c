/* Hub API calls (repo info with the file list and sizes) and the
 * allow/ignore pattern rule used to pick snapshot files. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <string.h>
#include <time.h>
#include "internal.h"

static bool match_one(const char *path, const char *pat)
{
    /* huggingface_hub appends '*' to a pattern ending in '/' (a folder) and
     * uses Python's fnmatch: '*' crosses '/', no backslash escapes */
    char buf[1024];
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '/' && n + 2 < sizeof buf) {
        snprintf(buf, sizeof buf, "%s*", pat);
        pat = buf;
    }
    return fnmatch(pat, path, FNM_NOESCAPE) == 0;
}

bool lfl_hub_match(const char *path, const char *const *allow, int n_allow, const char *const *ignore,
                   int n_ignore)
{
    if (allow && n_allow > 0) {
        bool any = false;
        for (int i = 0; i < n_allow && !any; i++) any = match_one(path, allow[i]);
        if (!any) return false;
    }
    for (int i = 0; ignore && i < n_ignore; i++)
        if (match_one(path, ignore[i])) return false;
    return true;
}

lfl_status lfl_hub_sha256_file(const char *path, char out[65]) { return lfl_sha256_file(path, out); }

void lfl_hub_info_free(lfl_hub_info *info)
{
    if (!info) return;
    for (int i = 0; i < info->n_files; i++) {
        free(info->files[i].name);
        free(info->files[i].sha256);
        free(info->files[i].blob_id);
    }
    free(info->files);
    free(info->id);
    free(info->sha);
    memset(info, 0, sizeof *info);
}

static char *dup_str(const cJSON *j)
{
    return cJSON_IsString(j) && j->valuestring ? strdup(j->valuestring) : NULL;
}

/* GET an API URL into memory, retried on 5xx/429/timeouts (not on refused
 * connections: the caller then answers from the cache at once) */
static lfl_status api_get(const hub_ctx *c, void *curl, const char *url, const char *rev, hub_resp *r, char **body)
{
    lfl_status st;
    *body = NULL;
    for (int attempt = 0;; attempt++) {
        st = hub_http_get_mem(c, curl, url, r, body, NULL);
        bool connect_fail = st && r->status == 0 && (r->curl_code == 7 /* COULDNT_CONNECT */ ||
                                                     r->curl_code == 6 /* COULDNT_RESOLVE_HOST */);
        bool retry = (st ? r->transient && !connect_fail && !hub_cancelled() : r->transient) &&
                     attempt < c->retries;
        if (!retry) break;
        free(*body);
        *body = NULL;
        hub_backoff(c, attempt, r->retry_after);
    }
    if (st) return r->curl_error[0] && r->curl_code != 42 /* aborted */ ? hub_http_fail(c, r, NULL, rev) : st;
    if (r->status != 200) {
        free(*body);
        *body = NULL;
        return hub_http_fail(c, r, NULL, rev);
    }
    return LFL_OK;
}

static lfl_status add_file(lfl_hub_info *out, int *cap, const char *name, int64_t size, const char *sha256,
                           const char *blob_id)
{
    if (out->n_files == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        lfl_hub_file *nf = realloc(out->files, (size_t)nc * sizeof *nf);
        if (!nf) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
        out->files = nf;
        *cap = nc;
    }
    lfl_hub_file *f = &out->files[out->n_files++];
    f->name = strdup(name);
    f->size = size;
    f->sha256 = sha256 ? strdup(sha256) : NULL;
    f->blob_id = blob_id ? strdup(blob_id) : NULL;
    return LFL_OK;
}

/* The paginated tree listing (/api/<type>s/<repo>/tree/<commit>?recursive=true):
 * what huggingface_hub uses when `siblings` is empty or too long to trust. */
static lfl_status api_tree(const hub_ctx *c, void *curl, const char *commit, lfl_hub_info *out)
{
    for (int i = 0; i < out->n_files; i++) {
        free(out->files[i].name);
        free(out->files[i].sha256);
        free(out->files[i].blob_id);
    }
    out->n_files = 0;
    int cap = 0;
    free(out->files);
    out->files = NULL;
    char url[4096];
    snprintf(url, sizeof url, "%s/api/%s/%s/tree/%s?recursive=true&expand=false", c->endpoint, c->type_plural,
             c->repo, commit);
    for (int page = 0; url[0]; page++) {
        if (page > 100000) return lfl_fail(LFL_ERR_FORMAT, "hub: %s %s: the tree listing does not end", c->type_name, c->repo);
        hub_resp r;
        char *body;
        LFL_TRY(api_get(c, curl, url, commit, &r, &body));
        cJSON *j = cJSON_Parse(body);
        free(body);
        if (!cJSON_IsArray(j)) {
            cJSON_Delete(j);
            return lfl_fail(LFL_ERR_FORMAT, "hub: %s %s: the tree listing is not a JSON array", c->type_name, c->repo);
        }
        const cJSON *e;
        lfl_status st = LFL_OK;
        cJSON_ArrayForEach(e, j) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
            const cJSON *path = cJSON_GetObjectItemCaseSensitive(e, "path");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "file") != 0 || !cJSON_IsString(path)) continue;
            const cJSON *sz = cJSON_GetObjectItemCaseSensitive(e, "size");
            const cJSON *oid = cJSON_GetObjectItemCaseSensitive(e, "oid");
            const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(e, "lfs");
            const cJSON *lsha = cJSON_IsObject(lfs) ? cJSON_GetObjectItemCaseSensitive(lfs, "oid") : NULL;
            st = add_file(out, &cap, path->valuestring, cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : -1,
                          cJSON_IsString(lsha) ? lsha->valuestring : NULL,
                          cJSON_IsString(oid) ? oid->valuestring : NULL);
            if (st) break;
        }
        cJSON_Delete(j);
        LFL_TRY(st);
        if (r.next_url[0] == '/') {
            char next[4096];
            snprintf(next, sizeof next, "%s%.2048s", c->endpoint, r.next_url);
            snprintf(url, sizeof url, "%s", next);
        } else {
            snprintf(url, sizeof url, "%s", r.next_url);
        }
    }
    return LFL_OK;
}

/* the number of siblings past which huggingface_hub lists the tree instead */
#define SIBLINGS_TRUSTED 1000

lfl_status hub_api_info(const hub_ctx *c, void *curl, const char *rev, lfl_hub_info *out, hub_resp *r)
{
    memset(out, 0, sizeof *out);
    char qrev[1024], url[4096];
    hub_url_quote(rev, false, qrev, sizeof qrev);
    snprintf(url, sizeof url, "%s/api/%s/%s/revision/%s?blobs=true", c->endpoint, c->type_plural, c->repo, qrev);
    char *body;
    LFL_TRY(api_get(c, curl, url, rev, r, &body));
    cJSON *j = cJSON_Parse(body);
    free(body);
    if (!j) return lfl_fail(LFL_ERR_FORMAT, "hub: %s %s revision '%s': the API answer is not JSON", c->type_name, c->repo, rev);
    out->id = dup_str(cJSON_GetObjectItemCaseSensitive(j, "id"));
    out->sha = dup_str(cJSON_GetObjectItemCaseSensitive(j, "sha"));
    cJSON *sib = cJSON_GetObjectItemCaseSensitive(j, "siblings");
    int cap = 0;
    lfl_status st = LFL_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, sib) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "rfilename");
        if (!cJSON_IsString(name)) continue;
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(e, "size");
        int64_t size = cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : -1;
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(e, "lfs");
        const cJSON *lsha = cJSON_IsObject(lfs) ? cJSON_GetObjectItemCaseSensitive(lfs, "sha256") : NULL;
        const cJSON *lsz = cJSON_IsObject(lfs) ? cJSON_GetObjectItemCaseSensitive(lfs, "size") : NULL;
        if (cJSON_IsNumber(lsz)) size = (int64_t)lsz->valuedouble;
        const cJSON *bid = cJSON_GetObjectItemCaseSensitive(e, "blobId");
        st = add_file(out, &cap, name->valuestring, size, cJSON_IsString(lsha) ? lsha->valuestring : NULL,
                      cJSON_IsString(bid) ? bid->valuestring : NULL);
        if (st) break;
    }
    cJSON_Delete(j);
    if (!st && (!out->sha || !hub_is_commit(out->sha)))
        st = lfl_fail(LFL_ERR_FORMAT, "hub: %s %s revision '%s': the API answer has no commit sha", c->type_name,
                      c->repo, rev);
    if (!st && (out->n_files == 0 || out->n_files > SIBLINGS_TRUSTED)) st = api_tree(c, curl, out->sha, out);
    if (st) lfl_hub_info_free(out);
    return st;
}

lfl_status lfl_hub_repo_info(const char *repo_id, const lfl_hub_opts *o, lfl_hub_info *out)
{
    memset(out, 0, sizeof *out);
    hub_ctx c;
    LFL_TRY(hub_ctx_init(&c, repo_id, o));
    const char *rev = o && o->revision && *o->revision ? o->revision : "main";
    if (c.offline)
        return lfl_fail(LFL_ERR_NET, "hub: %s %s revision '%s': cannot list files in offline mode (HF_HUB_OFFLINE=1)",
                        c.type_name, c.repo, rev);
    hub_reset_cancel();
    void *curl = hub_curl_new();
    if (!curl) return lfl_fail(LFL_ERR_NET, "hub: cannot create a libcurl handle");
    hub_resp r;
    lfl_status st = hub_api_info(&c, curl, rev, out, &r);
    hub_curl_free(curl);
    return st;
}
