/* GGUF v3 writer: metadata serialized as it is set, tensor infos laid out at
 * save time, tensor data converted per tensor while streaming to a temporary
 * file that is renamed into place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../fs.h"
#include "../quant/ggml_quantize.h"
#include "gguf_write.h"

typedef struct {
    char *name;
    lfl_tensor *t;
    int type;             /* ggml type */
    lfl_dtype dt;         /* the same as an lfl dtype */
    int ndim;
    int64_t ne[LFL_GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
} wtensor;

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

struct lfl_gguf_writer {
    bytes kv;             /* the serialized key/value pairs */
    uint64_t n_kv;
    char **keys;
    size_t n_keys, cap_keys;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    lfl_status err;       /* a failed append (out of memory) sticks */
};

static lfl_status put(bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) return lfl_fail(LFL_ERR_MEM, "gguf write: out of memory (metadata of %zu bytes)", b->n + n);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return LFL_OK;
}

static lfl_status put_u32(bytes *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    return put(b, x, 4);
}

static lfl_status put_u64(bytes *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    return put(b, x, 8);
}

static lfl_status put_str(bytes *b, const char *s, size_t n)
{
    LFL_TRY(put_u64(b, n));
    return put(b, s, n);
}

static size_t elem_size(lfl_gguf_type t)
{
    switch (t) {
    case LFL_GGUF_U8: case LFL_GGUF_I8: case LFL_GGUF_BOOL: return 1;
    case LFL_GGUF_U16: case LFL_GGUF_I16: return 2;
    case LFL_GGUF_U32: case LFL_GGUF_I32: case LFL_GGUF_F32: return 4;
    case LFL_GGUF_U64: case LFL_GGUF_I64: case LFL_GGUF_F64: return 8;
    default: return 0;
    }
}

static bool is_int_type(lfl_gguf_type t)
{
    return t == LFL_GGUF_U8 || t == LFL_GGUF_I8 || t == LFL_GGUF_U16 || t == LFL_GGUF_I16 || t == LFL_GGUF_U32 ||
           t == LFL_GGUF_I32 || t == LFL_GGUF_U64 || t == LFL_GGUF_I64;
}

/* one scalar of a numeric type from a double (integers range-checked) */
static lfl_status put_num(bytes *b, const char *key, lfl_gguf_type t, double v)
{
    uint8_t x[8];
    if (t == LFL_GGUF_F32) {
        float f = (float)v;
        memcpy(x, &f, 4);
        return put(b, x, 4);
    }
    if (t == LFL_GGUF_F64) {
        memcpy(x, &v, 8);
        return put(b, x, 8);
    }
    if (t == LFL_GGUF_BOOL) {
        x[0] = v != 0;
        return put(b, x, 1);
    }
    double lo, hi;
    switch (t) {
    case LFL_GGUF_U8: lo = 0; hi = 255; break;
    case LFL_GGUF_I8: lo = -128; hi = 127; break;
    case LFL_GGUF_U16: lo = 0; hi = 65535; break;
    case LFL_GGUF_I16: lo = -32768; hi = 32767; break;
    case LFL_GGUF_U32: lo = 0; hi = 4294967295.0; break;
    case LFL_GGUF_I32: lo = -2147483648.0; hi = 2147483647.0; break;
    case LFL_GGUF_U64: lo = 0; hi = 18446744073709549568.0; break;
    case LFL_GGUF_I64: lo = -9223372036854775808.0; hi = 9223372036854774784.0; break;
    default: return lfl_fail(LFL_ERR_ARG, "gguf write: key '%s': %s is not a numeric type", key, lfl_gguf_type_name(t));
    }
    if (!(v >= lo && v <= hi) || v != floor(v))
        return lfl_fail(LFL_ERR_ARG, "gguf write: key '%s': %.17g is not a %s", key, v, lfl_gguf_type_name(t));
    uint64_t u = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(u >> (8 * i));
    return put(b, x, elem_size(t));
}

/* a failed append leaves half a key/value pair: the writer refuses to go on */
static lfl_status stick(lfl_gguf_writer *w, lfl_status st)
{
    if (st && !w->err) w->err = st;
    return st;
}

/* registers key (refusing a second one) and writes its name and type; a
 * refusal leaves the writer as it was */
static lfl_status begin_kv(lfl_gguf_writer *w, const char *key, lfl_gguf_type type)
{
    if (w->err) return w->err;
    if (!key || !*key) return lfl_fail(LFL_ERR_ARG, "gguf write: empty metadata key");
    for (size_t i = 0; i < w->n_keys; i++)
        if (strcmp(w->keys[i], key) == 0) return lfl_fail(LFL_ERR_ARG, "gguf write: metadata key '%s' set twice", key);
    if (w->n_keys == w->cap_keys) {
        size_t cap = w->cap_keys ? 2 * w->cap_keys : 32;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k) return lfl_fail(LFL_ERR_MEM, "gguf write: out of memory");
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys] = strdup(key))) return lfl_fail(LFL_ERR_MEM, "gguf write: out of memory");
    w->n_keys++;
    w->n_kv++;
    lfl_status st = put_str(&w->kv, key, strlen(key));
    if (!st) st = put_u32(&w->kv, (uint32_t)type);
    return stick(w, st);
}

lfl_status lfl_gguf_writer_new(lfl_gguf_writer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return lfl_fail(LFL_ERR_MEM, "gguf write: out of memory");
    return LFL_OK;
}

void lfl_gguf_writer_free(lfl_gguf_writer *w)
{
    if (!w) return;
    free(w->kv.p);
    for (size_t i = 0; i < w->n_keys; i++) free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        lfl_tensor_release(w->tensors[i].t);
    }
    free(w->tensors);
    free(w);
}

lfl_status lfl_gguf_writer_set_int(lfl_gguf_writer *w, const char *key, lfl_gguf_type type, int64_t v)
{
    if (!is_int_type(type)) return lfl_fail(LFL_ERR_ARG, "gguf write: key '%s': %s is not an integer type", key, lfl_gguf_type_name(type));
    if ((type == LFL_GGUF_U64 && v < 0)) return lfl_fail(LFL_ERR_ARG, "gguf write: key '%s': %lld is not a u64", key, (long long)v);
    if (type != LFL_GGUF_U64 && type != LFL_GGUF_I64) {
        lfl_status st = LFL_OK;
        bytes probe = {0};
        st = put_num(&probe, key, type, (double)v); /* range check before the key is registered */
        free(probe.p);
        LFL_TRY(st);
    }
    LFL_TRY(begin_kv(w, key, type));
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)((uint64_t)v >> (8 * i));
    return stick(w, put(&w->kv, x, elem_size(type)));
}

lfl_status lfl_gguf_writer_set_float(lfl_gguf_writer *w, const char *key, lfl_gguf_type type, double v)
{
    if (type != LFL_GGUF_F32 && type != LFL_GGUF_F64)
        return lfl_fail(LFL_ERR_ARG, "gguf write: key '%s': %s is not a float type", key, lfl_gguf_type_name(type));
    LFL_TRY(begin_kv(w, key, type));
    return stick(w, put_num(&w->kv, key, type, v));
}

lfl_status lfl_gguf_writer_set_bool(lfl_gguf_writer *w, const char *key, bool v)
{
    LFL_TRY(begin_kv(w, key, LFL_GGUF_BOOL));
    uint8_t x = v;
    return stick(w, put(&w->kv, &x, 1));
}

lfl_status lfl_gguf_writer_set_str(lfl_gguf_writer *w, const char *key, const char *s, size_t len)
{
    LFL_TRY(begin_kv(w, key, LFL_GGUF_STRING));
    return stick(w, put_str(&w->kv, s, len));
}

lfl_status lfl_gguf_writer_set_arr_num(lfl_gguf_writer *w, const char *key, lfl_gguf_type elem, const double *v,
                                       uint64_t n)
{
    if (!elem_size(elem))
        return lfl_fail(LFL_ERR_ARG, "gguf write: key '%s': arrays of %s are not numeric", key, lfl_gguf_type_name(elem));
    /* check every value before anything is written, so a bad one leaves the writer usable */
    bytes probe = {0};
    lfl_status st = LFL_OK;
    for (uint64_t i = 0; i < n && st == LFL_OK; i++) {
        probe.n = 0;
        st = put_num(&probe, key, elem, v[i]);
        if (st) lfl_fail(st, "gguf write: key '%s': element %llu: %.17g is not a %s", key, (unsigned long long)i + 1,
                         v[i], lfl_gguf_type_name(elem));
    }
    free(probe.p);
    LFL_TRY(st);
    LFL_TRY(begin_kv(w, key, LFL_GGUF_ARRAY));
    st = put_u32(&w->kv, (uint32_t)elem);
    if (!st) st = put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n && !st; i++) st = put_num(&w->kv, key, elem, v[i]);
    return stick(w, st);
}

lfl_status lfl_gguf_writer_set_arr_str(lfl_gguf_writer *w, const char *key, const char *const *s, const size_t *len,
                                       uint64_t n)
{
    LFL_TRY(begin_kv(w, key, LFL_GGUF_ARRAY));
    lfl_status st = put_u32(&w->kv, LFL_GGUF_STRING);
    if (!st) st = put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n && !st; i++) st = put_str(&w->kv, s[i], len[i]);
    return stick(w, st);
}

/* the value of kv (scalar or array) as the reader parsed it */
static lfl_status put_value(bytes *b, const lfl_gguf_kv *kv)
{
    switch (kv->type) {
    case LFL_GGUF_STRING: return put_str(b, kv->v.s.ptr, (size_t)kv->v.s.len);
    case LFL_GGUF_F32: return put_num(b, "", LFL_GGUF_F32, kv->v.f);
    case LFL_GGUF_F64: return put_num(b, "", LFL_GGUF_F64, kv->v.f);
    case LFL_GGUF_BOOL: { uint8_t x = kv->v.b; return put(b, &x, 1); }
    case LFL_GGUF_ARRAY: {
        LFL_TRY(put_u32(b, (uint32_t)kv->arr_type));
        LFL_TRY(put_u64(b, kv->arr_n));
        if (kv->arr_type == LFL_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                lfl_gguf_str s = lfl_gguf_arr_str(kv, i);
                LFL_TRY(put_str(b, s.ptr, (size_t)s.len));
            }
            return LFL_OK;
        }
        if (kv->arr_type == LFL_GGUF_ARRAY) {
            for (uint64_t i = 0; i < kv->arr_n; i++) LFL_TRY(put_value(b, lfl_gguf_arr_sub(kv, i)));
            return LFL_OK;
        }
        /* numbers are stored little-endian in the file as in memory here */
        return put(b, kv->arr_data, (size_t)(elem_size(kv->arr_type) * kv->arr_n));
    }
    default: {
        uint8_t x[8];
        uint64_t u = kv->v.u;
        for (int i = 0; i < 8; i++) x[i] = (uint8_t)(u >> (8 * i));
        return put(b, x, elem_size(kv->type));
    }
    }
}

lfl_status lfl_gguf_writer_copy_kv(lfl_gguf_writer *w, const lfl_gguf_kv *kv)
{
    LFL_TRY(begin_kv(w, kv->key, kv->type));
    return stick(w, put_value(&w->kv, kv));
}

lfl_status lfl_gguf_writer_add_tensor(lfl_gguf_writer *w, const char *name, lfl_tensor *t, int ggml_type)
{
    if (w->err) return w->err;
    if (!name || !*name) return lfl_fail(LFL_ERR_ARG, "gguf write: a tensor has an empty name");
    if (strlen(name) >= 64) /* GGML_MAX_NAME: llama.cpp refuses longer names */
        return lfl_fail(LFL_ERR_ARG, "gguf write: tensor name '%s' is longer than ggml's 63 characters", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return lfl_fail(LFL_ERR_ARG, "gguf write: tensor '%s' added twice", name);
    int dt = lfl_ggml_type_to_dtype(ggml_type);
    const char *tn = lfl_ggml_type_name(ggml_type);
    if (dt < 0) return lfl_fail(LFL_ERR_UNSUPPORTED, "gguf write: tensor '%s': ggml type %s (%d) is not supported", name, tn ? tn : "unknown", ggml_type);
    bool same = t->dtype == (lfl_dtype)dt;
    if (!same && dt != LFL_F32 && dt != LFL_F16 && dt != LFL_BF16 && !lfl_quantize_supported((lfl_dtype)dt))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "gguf write: tensor '%s': cannot convert %s to %s (f32, f16, bf16, q8_0, "
                        "q5_0 and q4_k can be written from any float tensor)", name, lfl_dtype_name(t->dtype), tn);
    if (!same && !lfl_dtypes[t->dtype].is_float && !lfl_dtype_is_block(t->dtype))
        return lfl_fail(LFL_ERR_ARG, "gguf write: tensor '%s' is %s, not a float tensor", name, lfl_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > LFL_GGUF_MAX_DIMS)
        return lfl_fail(LFL_ERR_ARG, "gguf write: tensor '%s' has %d dimensions (1 to %d fit)", name, t->ndim, LFL_GGUF_MAX_DIMS);
    int64_t blck;
    size_t bbytes;
    lfl_ggml_type_block(ggml_type, &blck, &bbytes);
    if (t->shape[t->ndim - 1] % blck)
        return lfl_fail(LFL_ERR_ARG, "gguf write: tensor '%s': its last dimension %lld is not a multiple of the %s block (%lld)",
                        name, (long long)t->shape[t->ndim - 1], tn, (long long)blck);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return lfl_fail(LFL_ERR_MEM, "gguf write: out of memory");
        w->tensors = p;
        w->cap_tensors = cap;
    }
    wtensor *e = &w->tensors[w->n_tensors];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return lfl_fail(LFL_ERR_MEM, "gguf write: out of memory");
    e->t = lfl_tensor_retain(t);
    e->type = ggml_type;
    e->dt = (lfl_dtype)dt;
    e->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) e->ne[d] = t->shape[t->ndim - 1 - d];
    e->nbytes = (uint64_t)(lfl_numel(t) / blck) * bbytes;
    w->n_tensors++;
    return LFL_OK;
}

/* the bytes of e in its target type: *buf points into *hold (a tensor to
 * release) or into *own (malloc'ed) */
static lfl_status convert(const wtensor *e, const char *path, const void **buf, lfl_tensor **hold, void **own)
{
    lfl_tensor *t = e->t, *c = NULL, *f = NULL;
    *hold = NULL;
    *own = NULL;
    LFL_TRY(lfl_to_device(t, LFL_CPU, &c));
    if (c->dtype == e->dt || e->dt == LFL_F32 || e->dt == LFL_F16 || e->dt == LFL_BF16) {
        lfl_status st = lfl_cast(c, e->dt, &f);
        lfl_tensor_release(c);
        if (st) return st;
        st = lfl_contiguous(f, &c);
        lfl_tensor_release(f);
        if (st) return st;
        *hold = c;
        *buf = lfl_data(c);
        return LFL_OK;
    }
    lfl_status st = lfl_cast(c, LFL_F32, &f);
    lfl_tensor_release(c);
    if (st) return st;
    st = lfl_contiguous(f, &c);
    lfl_tensor_release(f);
    if (st) return st;
    void *q = malloc(e->nbytes ? e->nbytes : 1);
    if (!q) {
        lfl_tensor_release(c);
        return lfl_fail(LFL_ERR_MEM, "%s: tensor '%s': out of memory", path, e->name);
    }
    st = lfl_quantize_rows(e->dt, lfl_data(c), lfl_numel(c), q);
    lfl_tensor_release(c);
    if (st) {
        char why[512];
        snprintf(why, sizeof why, "%s", lfl_last_error());
        free(q);
        return lfl_fail(st, "%s: tensor '%s': %s", path, e->name, why);
    }
    *own = q;
    *buf = q;
    return LFL_OK;
}

lfl_status lfl_gguf_writer_save(lfl_gguf_writer *w, const char *path)
{
    if (w->err) return lfl_fail(w->err, "%s: not written: the metadata was left incomplete by an earlier error", path);
    const uint64_t align = LFL_GGUF_DEFAULT_ALIGNMENT;
    bytes h = {0};
    lfl_status st = put_u32(&h, LFL_GGUF_MAGIC);
    if (!st) st = put_u32(&h, 3);
    if (!st) st = put_u64(&h, w->n_tensors);
    if (!st) st = put_u64(&h, w->n_kv);
    if (!st) st = put(&h, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors && !st; i++) {
        wtensor *e = &w->tensors[i];
        e->offset = off;
        st = put_str(&h, e->name, strlen(e->name));
        if (!st) st = put_u32(&h, (uint32_t)e->ndim);
        for (int d = 0; d < e->ndim && !st; d++) st = put_u64(&h, (uint64_t)e->ne[d]);
        if (!st) st = put_u32(&h, (uint32_t)e->type);
        if (!st) st = put_u64(&h, e->offset);
        off += (e->nbytes + align - 1) / align * align;
    }
    static const uint8_t zeros[LFL_GGUF_DEFAULT_ALIGNMENT] = {0};
    if (!st && h.n % align) st = put(&h, zeros, align - h.n % align);
    if (st) { free(h.p); return st; }
    lfl_fs_atomic f;
    st = lfl_fs_atomic_begin(path, &f);
    if (!st) st = lfl_fs_atomic_append(&f, h.p, h.n);
    free(h.p);
    for (size_t i = 0; i < w->n_tensors && !st; i++) {
        const wtensor *e = &w->tensors[i];
        const void *buf = NULL;
        lfl_tensor *hold;
        void *own;
        st = convert(e, path, &buf, &hold, &own);
        if (!st) st = lfl_fs_atomic_append(&f, buf, (size_t)e->nbytes);
        if (!st && e->nbytes % align) st = lfl_fs_atomic_append(&f, zeros, (size_t)(align - e->nbytes % align));
        lfl_tensor_release(hold);
        free(own);
    }
    if (!st) return lfl_fs_atomic_commit(&f);
    lfl_fs_atomic_abort(&f);
    return st;
}
