/* safetensors reader (header JSON via cJSON, data mmapped) and writer. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "safetensors.h"

static const struct { const char *s; lfl_dtype d; } dtype_names[] = {
    {"F32", LFL_F32}, {"F64", LFL_F64}, {"F16", LFL_F16}, {"BF16", LFL_BF16},
    {"I32", LFL_I32}, {"I64", LFL_I64}, {"U8", LFL_U8}, {"BOOL", LFL_BOOL},
};

int lfl_st_dtype_from_string(const char *s)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(s, dtype_names[i].s) == 0) return (int)dtype_names[i].d;
    return -1;
}

const char *lfl_st_dtype_string(lfl_dtype d)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (dtype_names[i].d == d) return dtype_names[i].s;
    return NULL;
}

void lfl_st_close(lfl_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->entries[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->entries);
    free(f->meta_keys);
    free(f->meta_values);
    lfl_storage_release(f->map);
    free(f->path);
    free(f);
}

static lfl_status parse_entry(const char *path, cJSON *item, size_t data_len, lfl_st_entry *e)
{
    const char *name = item->string;
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': expected dtype (string), shape (array) and "
                                        "data_offsets ([begin, end])", path, name);
    int d = lfl_st_dtype_from_string(dt->valuestring);
    if (d < 0)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported (F32 F64 F16 BF16 I32 I64 U8 BOOL)",
                        path, name, dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > LFL_MAX_DIMS) return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s' has %d dims (at most %d)", path, name, nd, LFL_MAX_DIMS);
    e->dtype = (lfl_dtype)d;
    e->ndim = nd;
    double numel = 1;
    for (int k = 0; k < nd; k++) {
        cJSON *s = cJSON_GetArrayItem(shape, k);
        if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 1e15)
            return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': bad size in shape", path, name);
        e->shape[k] = (int64_t)s->valuedouble;
        numel *= s->valuedouble;
    }
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble, en = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!(b >= 0 && en >= b && en <= (double)data_len))
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu data bytes",
                        path, name, b, en, data_len);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    if ((double)(e->end - e->begin) != numel * (double)lfl_dtype_size(e->dtype))
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': %zu bytes for %.0f elements of %s", path, name,
                        e->end - e->begin, numel, lfl_dtype_name(e->dtype));
    e->name = strdup(name);
    return LFL_OK;
}

lfl_status lfl_st_open(const char *path, lfl_st_file **out)
{
    lfl_status st;
    lfl_storage *map = lfl_storage_mmap(path, 0, (size_t)-1, &st);
    if (!map) return st;
    const unsigned char *p = map->data;
    if (map->nbytes < 8) {
        lfl_storage_release(map);
        return lfl_fail(LFL_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, map->nbytes);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > map->nbytes - 8 || hlen > (100u << 20)) {
        size_t have = map->nbytes;
        lfl_storage_release(map);
        return lfl_fail(LFL_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors",
                        path, (unsigned long long)hlen, have);
    }
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        lfl_storage_release(map);
        return lfl_fail(LFL_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    lfl_st_file *f = calloc(1, sizeof *f);
    f->path = strdup(path);
    f->map = map;
    f->data_start = 8 + (size_t)hlen;
    size_t data_len = map->nbytes - f->data_start;
    int count = cJSON_GetArraySize(root);
    f->entries = calloc((size_t)(count ? count : 1), sizeof *f->entries);
    st = LFL_OK;
    for (cJSON *it = root->child; it && st == LFL_OK; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { st = lfl_fail(LFL_ERR_FORMAT, "%s: __metadata__ is not an object", path); break; }
            int m = cJSON_GetArraySize(it);
            f->meta_keys = calloc((size_t)(m ? m : 1), sizeof(char *));
            f->meta_values = calloc((size_t)(m ? m : 1), sizeof(char *));
            for (cJSON *kv = it->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv)) continue;
                f->meta_keys[f->n_meta] = strdup(kv->string);
                f->meta_values[f->n_meta++] = strdup(kv->valuestring);
            }
            continue;
        }
        if (!cJSON_IsObject(it)) { st = lfl_fail(LFL_ERR_FORMAT, "%s: entry '%s' is not an object", path, it->string); break; }
        st = parse_entry(path, it, data_len, &f->entries[f->n]);
        if (st == LFL_OK) f->n++;
    }
    cJSON_Delete(root);
    if (st) { lfl_st_close(f); return st; }
    *out = f;
    return LFL_OK;
}

int lfl_st_find(const lfl_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return i;
    return -1;
}

lfl_status lfl_st_tensor(const lfl_st_file *f, int i, lfl_tensor **out)
{
    LFL_ASSERT(i >= 0 && i < f->n);
    const lfl_st_entry *e = &f->entries[i];
    return lfl_tensor_from_storage(f->path, f->map, f->data_start + e->begin, e->ndim, e->shape, e->dtype, out);
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

lfl_status lfl_st_save(const char *path, int n, const char *const *names, lfl_tensor *const *tensors,
                       int n_meta, const char *const *meta_keys, const char *const *meta_values)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    bool has_format = false;
    for (int i = 0; i < n_meta; i++) {
        cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i]);
        has_format |= strcmp(meta_keys[i], "format") == 0;
    }
    if (!has_format) cJSON_AddStringToObject(meta, "format", "pt");
    cJSON_AddItemToObject(root, "__metadata__", meta);
    size_t off = 0;
    lfl_tensor **host = calloc((size_t)(n ? n : 1), sizeof *host);
    lfl_status st = LFL_OK;
    for (int i = 0; i < n && st == LFL_OK; i++) {
        lfl_tensor *t = tensors[i], *c = NULL;
        const char *ds = lfl_st_dtype_string(t->dtype);
        if (!ds) { st = lfl_fail(LFL_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be stored in safetensors", path, names[i], lfl_dtype_name(t->dtype)); break; }
        if (cJSON_GetObjectItemCaseSensitive(root, names[i])) { st = lfl_fail(LFL_ERR_ARG, "%s: tensor name '%s' appears twice", path, names[i]); break; }
        st = lfl_to_device(t, LFL_CPU, &c);
        if (st == LFL_OK) { lfl_tensor *cc; st = lfl_contiguous(c, &cc); lfl_tensor_release(c); c = cc; }
        if (st) break;
        host[i] = c;
        size_t nb = lfl_dtype_nbytes(c->dtype, lfl_numel(c));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "dtype", ds);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < c->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)c->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + nb)));
        cJSON_AddItemToObject(root, names[i], e);
        off += nb;
    }
    char *hdr = st == LFL_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st == LFL_OK) {
        size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) tmp = NULL;
        int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
        if (fd < 0) {
            st = lfl_fail(LFL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        } else {
            unsigned char len8[8];
            for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
            int bad = write_all(fd, len8, 8) || write_all(fd, hdr, hl) || write_all(fd, "        ", padded - hl);
            for (int i = 0; i < n && !bad; i++) bad = write_all(fd, lfl_data(host[i]), lfl_dtype_nbytes(host[i]->dtype, lfl_numel(host[i])));
            if (!bad) bad = fsync(fd);
            if (close(fd) != 0) bad = 1;
            if (bad || rename(tmp, path) != 0) {
                st = lfl_fail(LFL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
                unlink(tmp);
            }
        }
        free(tmp);
    }
    free(hdr);
    for (int i = 0; i < n; i++) lfl_tensor_release(host[i]);
    free(host);
    return st;
}
