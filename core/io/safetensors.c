/* safetensors reader (header JSON via cJSON, data mmapped) and writer. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
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
    /* read only: bitsandbytes' 8-bit checkpoints store their codes as I8, which
     * become int8 tensors without row scales until lfl.int8_from_state pairs
     * them with SCB; writing I8 would drop those scales, so the writer has no I8 */
    if (strcmp(s, "I8") == 0) return (int)LFL_INT8;
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

/* The header checks follow the reference reader (the safetensors crate's
 * read_metadata and Metadata::validate): a header of at most 100,000,000
 * bytes of UTF-8 JSON starting with '{'; __metadata__ maps strings to
 * strings; each tensor has a known dtype, a shape of non-negative integers
 * and data_offsets [begin, end] with end - begin = numel x dtype size; and the
 * ranges, sorted by offset, tile the data section exactly: no overlap, no gap,
 * no trailing bytes. */
#define ST_MAX_HEADER 100000000u

/* offset of the first byte that is not well-formed UTF-8 (Unicode's table:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or n */
static size_t utf8_bad_at(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) { len = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
        else return i;
        if (n - i < len) return i;
        if (p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf) return i;
        i += len;
    }
    return n;
}

/* a JSON number that is a non-negative integer a double holds exactly */
static bool as_index(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return false;
    *v = (uint64_t)d;
    return true;
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
    uint64_t numel = 1;
    bool overflow = false;
    for (int k = 0; k < nd; k++) {
        uint64_t s;
        if (!as_index(cJSON_GetArrayItem(shape, k), &s))
            return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, k);
        e->shape[k] = (int64_t)s;
        overflow |= __builtin_mul_overflow(numel, s, &numel);
    }
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)lfl_dtype_size(e->dtype), &nbytes);
    if (overflow)
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': the byte size of its shape overflows", path, name);
    uint64_t b, en;
    if (!as_index(cJSON_GetArrayItem(offs, 0), &b) || !as_index(cJSON_GetArrayItem(offs, 1), &en))
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers", path, name);
    if (b > en)
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] begin after they end",
                        path, name, (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] reach outside the %zu data bytes of the file",
                        path, name, (unsigned long long)b, (unsigned long long)en, data_len);
    if (en - b != nbytes)
        return lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes for %llu elements "
                        "of %s, expected %llu", path, name, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)(en - b), (unsigned long long)numel, dt->valuestring,
                        (unsigned long long)nbytes);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    e->name = strdup(name);
    if (!e->name) return lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
    return LFL_OK;
}

static int by_offsets(const void *a, const void *b)
{
    const lfl_st_entry *x = *(const lfl_st_entry *const *)a, *y = *(const lfl_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const lfl_st_entry *const *)a)->name, (*(const lfl_st_entry *const *)b)->name);
}

/* Names are unique, and the ranges sorted by offset tile [0, data_len)
 * (zero-sized tensors sit anywhere on the tiling's edges). */
static lfl_status check_layout(const lfl_st_file *f, size_t data_len)
{
    const lfl_st_entry **order = malloc(sizeof *order * (size_t)(f->n ? f->n : 1));
    if (!order) return lfl_fail(LFL_ERR_MEM, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++) order[i] = &f->entries[i];
    lfl_status st = LFL_OK;
    qsort(order, (size_t)f->n, sizeof *order, by_name);
    for (int i = 1; i < f->n && st == LFL_OK; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0)
            st = lfl_fail(LFL_ERR_FORMAT, "%s: the header names tensor '%s' twice", f->path, order[i]->name);
    qsort(order, (size_t)f->n, sizeof *order, by_offsets);
    size_t at = 0;
    const lfl_st_entry *prev = NULL;
    for (int i = 0; i < f->n && st == LFL_OK; i++) {
        const lfl_st_entry *e = order[i];
        if (e->begin < at)
            st = lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' [%zu, %zu]: "
                          "expected it to begin at %zu", f->path, e->name, e->begin, e->end, prev->name,
                          prev->begin, prev->end, at);
        else if (e->begin > at)
            st = lfl_fail(LFL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] leave bytes [%zu, %zu) of the data "
                          "unreferenced: expected it to begin at %zu", f->path, e->name, e->begin, e->end, at,
                          e->begin, at);
        at = e->end;
        prev = e;
    }
    free(order);
    if (st == LFL_OK && at != data_len)
        st = lfl_fail(LFL_ERR_FORMAT, "%s: the tensors end at data byte %zu, but the data section holds %zu bytes: "
                      "%zu trailing bytes are unreferenced", f->path, at, data_len, data_len - at);
    return st;
}

static lfl_status parse_metadata(lfl_st_file *f, cJSON *it)
{
    if (!cJSON_IsObject(it)) return lfl_fail(LFL_ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
    if (f->meta_keys) return lfl_fail(LFL_ERR_FORMAT, "%s: __metadata__ appears twice", f->path);
    int m = cJSON_GetArraySize(it);
    f->meta_keys = calloc((size_t)(m ? m : 1), sizeof(char *));
    f->meta_values = calloc((size_t)(m ? m : 1), sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return lfl_fail(LFL_ERR_MEM, "%s: out of memory", f->path);
    for (cJSON *kv = it->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return lfl_fail(LFL_ERR_FORMAT, "%s: __metadata__ '%s': expected a string value", f->path, kv->string);
        for (int i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta_keys[i], kv->string) == 0)
                return lfl_fail(LFL_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", f->path, kv->string);
        f->meta_keys[f->n_meta] = strdup(kv->string);
        f->meta_values[f->n_meta] = strdup(kv->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta]) {
            free(f->meta_keys[f->n_meta]);
            free(f->meta_values[f->n_meta]);
            return lfl_fail(LFL_ERR_MEM, "%s: out of memory", f->path);
        }
        f->n_meta++;
    }
    return LFL_OK;
}

lfl_status lfl_st_open(const char *path, lfl_st_file **out)
{
    lfl_status st;
    lfl_storage *map = lfl_storage_mmap(path, 0, (size_t)-1, &st);
    if (!map) return st;
    const unsigned char *p = map->data;
    if (map->nbytes < 8) {
        size_t have = map->nbytes;
        lfl_storage_release(map);
        return lfl_fail(LFL_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, have);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > ST_MAX_HEADER || hlen > map->nbytes - 8) {
        size_t have = map->nbytes;
        lfl_storage_release(map);
        if (hlen > ST_MAX_HEADER)
            return lfl_fail(LFL_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte limit: not safetensors",
                            path, (unsigned long long)hlen, ST_MAX_HEADER);
        return lfl_fail(LFL_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors",
                        path, (unsigned long long)hlen, have);
    }
    const char *hdr = (const char *)p + 8;
    size_t bad = utf8_bad_at((const unsigned char *)hdr, (size_t)hlen);
    const char *end = NULL;
    cJSON *root = NULL;
    if (bad < hlen) {
        st = lfl_fail(LFL_ERR_FORMAT, "%s: header byte %zu is not valid UTF-8", path, bad);
    } else if (hlen == 0 || hdr[0] != '{') {
        st = lfl_fail(LFL_ERR_FORMAT, "%s: header does not start with '{'", path);
    } else {
        root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
        /* JSON whitespace may pad the header (writers pad it to 8 bytes), nothing else */
        while (root && end < hdr + hlen && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
        if (!root || !cJSON_IsObject(root))
            st = lfl_fail(LFL_ERR_FORMAT, "%s: header is not a JSON object", path);
        else if (end != hdr + hlen)
            st = lfl_fail(LFL_ERR_FORMAT, "%s: header has bytes after its JSON object (at header byte %zu)",
                          path, (size_t)(end - hdr));
    }
    if (st) {
        cJSON_Delete(root);
        lfl_storage_release(map);
        return st;
    }
    lfl_st_file *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(path);
    if (!f || !f->path) {
        free(f);
        cJSON_Delete(root);
        lfl_storage_release(map);
        return lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
    }
    f->map = map;
    f->data_start = 8 + (size_t)hlen;
    size_t data_len = map->nbytes - f->data_start;
    int count = cJSON_GetArraySize(root);
    f->entries = calloc((size_t)(count ? count : 1), sizeof *f->entries);
    st = f->entries ? LFL_OK : lfl_fail(LFL_ERR_MEM, "%s: out of memory", path);
    for (cJSON *it = root->child; it && st == LFL_OK; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            st = parse_metadata(f, it);
            continue;
        }
        if (!cJSON_IsObject(it)) { st = lfl_fail(LFL_ERR_FORMAT, "%s: entry '%s' is not an object", path, it->string); break; }
        st = parse_entry(path, it, data_len, &f->entries[f->n]);
        if (st == LFL_OK) f->n++;
    }
    cJSON_Delete(root);
    if (st == LFL_OK) st = check_layout(f, data_len);
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
    size_t at = f->data_start + e->begin;
    /* the format does not require aligned offsets: a misaligned tensor (a
     * hand-made file; writers align them) is copied rather than viewed, as
     * the kernels load elements through typed pointers */
    if (e->end > e->begin && ((uintptr_t)f->map->data + at) % lfl_dtype_size(e->dtype)) {
        LFL_TRY(lfl_empty(e->ndim, e->shape, e->dtype, LFL_CPU, out));
        memcpy(lfl_data(*out), (const char *)f->map->data + at, e->end - e->begin);
        return LFL_OK;
    }
    return lfl_tensor_from_storage(f->path, f->map, at, e->ndim, e->shape, e->dtype, out);
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
