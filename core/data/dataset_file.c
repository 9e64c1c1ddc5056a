/* Datasets in safetensors files (the format is specified in dataset.h): the
 * writer goes through lfl_st_save (temp file + rename), the reader builds the
 * columns over the file's mapping, so loading copies nothing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "../io/safetensors.h" // defines: lfl_st_open, lfl_st_save, lfl_st_tensor

#define META_KEY "lfl_dataset"

/* the current error message with a prefix */
static lfl_status with_context(lfl_status st, const char *path, const char *split)
{
    char msg[900];
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    return lfl_fail(st, "%s: split '%s': %s", path, split, msg);
}

static char *tensor_name(const char *split, const char *col, const char *suffix)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s.%s", split, split[0] ? "." : "", col, suffix) < 0) return NULL;
    return s;
}

lfl_status lfl_dataset_save(const char *path, int nsplits, const char *const *names, lfl_dataset *const *sets,
                            int n_meta, const char *const *meta_keys, const char *const *meta_values)
{
    for (int i = 0; i < nsplits; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) return lfl_fail(LFL_ERR_ARG, "%s: split '%s' is given twice", path, names[i]);
    for (int i = 0; i < n_meta; i++)
        if (strcmp(meta_keys[i], META_KEY) == 0)
            return lfl_fail(LFL_ERR_ARG, "%s: the metadata key '%s' is the dataset's own", path, META_KEY);
    int cap = 0;
    for (int i = 0; i < nsplits; i++) cap += 2 * sets[i]->ncols;
    char **tn = calloc((size_t)(cap ? cap : 1), sizeof *tn);
    lfl_tensor **ts = calloc((size_t)(cap ? cap : 1), sizeof *ts);
    cJSON *root = cJSON_CreateObject(), *splits = NULL;
    cJSON_AddNumberToObject(root, "version", LFL_DATASET_FORMAT_VERSION);
    splits = cJSON_AddArrayToObject(root, "splits");
    int nt = 0;
    lfl_status st = tn && ts ? LFL_OK : lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
    for (int i = 0; i < nsplits && st == LFL_OK; i++) {
        const lfl_dataset *ds = sets[i];
        cJSON *sp = cJSON_CreateObject(), *cols;
        cJSON_AddStringToObject(sp, "name", names[i]);
        cJSON_AddNumberToObject(sp, "n", (double)ds->n);
        cols = cJSON_AddArrayToObject(sp, "columns");
        cJSON_AddItemToArray(splits, sp);
        for (int c = 0; c < ds->ncols; c++) {
            const lfl_ds_column *col = &ds->cols[c];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", col->name);
            if (col->alias_of >= 0) cJSON_AddStringToObject(e, "alias", ds->cols[col->alias_of].name);
            else cJSON_AddStringToObject(e, "kind", lfl_ds_kind_name(col->kind));
            cJSON_AddItemToArray(cols, e);
        }
    }
    /* every i64 tensor first, then the i32 values: all stay naturally aligned */
    for (int pass = 0; pass < 2 && st == LFL_OK; pass++)
        for (int i = 0; i < nsplits && st == LFL_OK; i++) {
            const lfl_dataset *ds = sets[i];
            for (int c = 0; c < ds->ncols && st == LFL_OK; c++) {
                const lfl_ds_column *col = &ds->cols[c];
                if (col->alias_of >= 0) continue;
                lfl_tensor *t = pass == 0 ? (col->kind == LFL_DS_LIST ? col->offsets : col->values)
                                          : (col->kind == LFL_DS_LIST ? col->values : NULL);
                if (!t) continue;
                const char *suffix = col->kind != LFL_DS_LIST ? "scalar" : pass == 0 ? "offsets" : "values";
                tn[nt] = tensor_name(names[i], col->name, suffix);
                ts[nt] = t;
                if (!tn[nt]) st = lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
                nt++;
            }
        }
    char *json = st == LFL_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st == LFL_OK) {
        const char **mk = malloc(sizeof(char *) * (size_t)(n_meta + 1));
        const char **mv = malloc(sizeof(char *) * (size_t)(n_meta + 1));
        if (!mk || !mv || !json) st = lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
        else {
            for (int i = 0; i < n_meta; i++) { mk[i] = meta_keys[i]; mv[i] = meta_values[i]; }
            mk[n_meta] = META_KEY;
            mv[n_meta] = json;
            st = lfl_st_save(path, nt, (const char *const *)tn, ts, n_meta + 1, mk, mv);
        }
        free(mk);
        free(mv);
    }
    free(json);
    for (int i = 0; i < nt; i++) free(tn[i]);
    free(tn);
    free(ts);
    return st;
}

void lfl_ds_file_free(lfl_ds_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->nsplits; i++) { free(f->names[i]); lfl_dataset_release(f->sets[i]); }
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->names);
    free(f->sets);
    free(f->meta_keys);
    free(f->meta_values);
    free(f);
}

/* the file's tensor <split>.<col>.<suffix>, or an error naming it */
static lfl_status find_tensor(const lfl_st_file *f, const char *split, const char *col, const char *suffix, lfl_tensor **out)
{
    char *name = tensor_name(split, col, suffix);
    if (!name) return lfl_fail(LFL_ERR_MEM, "out of memory");
    int i = lfl_st_find(f, name);
    lfl_status st = i < 0 ? lfl_fail(LFL_ERR_FORMAT, "column '%s': the file has no tensor '%s'", col, name)
                          : lfl_st_tensor(f, i, out);
    free(name);
    return st;
}

static lfl_status load_split(const lfl_st_file *f, cJSON *sp, char **name_out, lfl_dataset **out)
{
    cJSON *jn = cJSON_GetObjectItemCaseSensitive(sp, "name"), *jc = cJSON_GetObjectItemCaseSensitive(sp, "columns");
    cJSON *jr = cJSON_GetObjectItemCaseSensitive(sp, "n");
    if (!cJSON_IsString(jn) || !cJSON_IsArray(jc) || !cJSON_IsNumber(jr) || jr->valuedouble < 0 ||
        jr->valuedouble != (double)(int64_t)jr->valuedouble)
        return lfl_fail(LFL_ERR_FORMAT, "%s: a split in the lfl_dataset metadata lacks its name, n or columns", f->path);
    const char *split = jn->valuestring;
    lfl_dataset *ds = NULL;
    LFL_TRY(lfl_dataset_new((int64_t)jr->valuedouble, &ds));
    lfl_status st = LFL_OK;
    for (int pass = 0; pass < 2 && st == LFL_OK; pass++) {
        cJSON *c;
        cJSON_ArrayForEach(c, jc) {
            cJSON *cn = cJSON_GetObjectItemCaseSensitive(c, "name"), *ck = cJSON_GetObjectItemCaseSensitive(c, "kind");
            cJSON *ca = cJSON_GetObjectItemCaseSensitive(c, "alias");
            if (!cJSON_IsString(cn) || (!cJSON_IsString(ck) && !cJSON_IsString(ca))) {
                st = lfl_fail(LFL_ERR_FORMAT, "a column lacks its name, or its kind or alias");
                break;
            }
            if (cJSON_IsString(ca)) {
                if (pass == 1) st = lfl_dataset_add_alias(ds, cn->valuestring, ca->valuestring);
            } else if (pass == 0) {
                const char *kind = ck->valuestring;
                lfl_tensor *v = NULL, *o = NULL;
                if (strcmp(kind, "list") == 0) {
                    st = find_tensor(f, split, cn->valuestring, "values", &v);
                    if (st == LFL_OK) st = find_tensor(f, split, cn->valuestring, "offsets", &o);
                    if (st == LFL_OK) st = lfl_dataset_add_list(ds, cn->valuestring, v, o);
                } else if (strcmp(kind, "bool") == 0 || strcmp(kind, "number") == 0) {
                    st = find_tensor(f, split, cn->valuestring, "scalar", &v);
                    if (st == LFL_OK)
                        st = lfl_dataset_add_scalar(ds, cn->valuestring, kind[0] == 'b' ? LFL_DS_BOOL : LFL_DS_NUMBER, v);
                } else {
                    st = lfl_fail(LFL_ERR_FORMAT, "column '%s': unknown kind '%s' (list, bool, number)", cn->valuestring, kind);
                }
                lfl_tensor_release(v);
                lfl_tensor_release(o);
            }
            if (st) break;
        }
    }
    if (st) { lfl_dataset_release(ds); return with_context(st, f->path, split); }
    *name_out = strdup(split);
    *out = ds;
    return LFL_OK;
}

lfl_status lfl_dataset_load(const char *path, lfl_ds_file **out)
{
    lfl_st_file *f = NULL;
    LFL_TRY(lfl_st_open(path, &f));
    const char *meta = NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], META_KEY) == 0) meta = f->meta_values[i];
    if (!meta) {
        lfl_st_close(f);
        return lfl_fail(LFL_ERR_FORMAT, "%s: not an lfl dataset (no '%s' metadata)", path, META_KEY);
    }
    cJSON *root = cJSON_Parse(meta);
    cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version"), *splits = cJSON_GetObjectItemCaseSensitive(root, "splits");
    lfl_status st = LFL_OK;
    if (!cJSON_IsNumber(ver) || !cJSON_IsArray(splits))
        st = lfl_fail(LFL_ERR_FORMAT, "%s: the '%s' metadata is not {version, splits}", path, META_KEY);
    else if (ver->valuedouble > LFL_DATASET_FORMAT_VERSION)
        st = lfl_fail(LFL_ERR_FORMAT, "%s: dataset format version %.0f is newer than this lfl reads (%d)", path,
                      ver->valuedouble, LFL_DATASET_FORMAT_VERSION);
    lfl_ds_file *df = calloc(1, sizeof *df);
    int ns = st == LFL_OK ? cJSON_GetArraySize(splits) : 0;
    if (df) {
        df->names = calloc((size_t)(ns ? ns : 1), sizeof *df->names);
        df->sets = calloc((size_t)(ns ? ns : 1), sizeof *df->sets);
        df->meta_keys = calloc((size_t)(f->n_meta ? f->n_meta : 1), sizeof(char *));
        df->meta_values = calloc((size_t)(f->n_meta ? f->n_meta : 1), sizeof(char *));
    }
    if (st == LFL_OK && (!df || !df->names || !df->sets || !df->meta_keys || !df->meta_values))
        st = lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
    if (st == LFL_OK) {
        cJSON *sp;
        cJSON_ArrayForEach(sp, splits) {
            st = load_split(f, sp, &df->names[df->nsplits], &df->sets[df->nsplits]);
            if (st) break;
            df->nsplits++;
        }
    }
    for (int i = 0; st == LFL_OK && i < f->n_meta; i++) {
        if (strcmp(f->meta_keys[i], META_KEY) == 0) continue;
        df->meta_keys[df->n_meta] = strdup(f->meta_keys[i]);
        df->meta_values[df->n_meta++] = strdup(f->meta_values[i]);
    }
    cJSON_Delete(root);
    lfl_st_close(f); /* the columns keep the mapping alive */
    if (st) { lfl_ds_file_free(df); return st; }
    *out = df;
    return LFL_OK;
}
