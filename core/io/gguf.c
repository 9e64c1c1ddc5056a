/* GGUF v2/v3 reader over an mmap: validates the whole header up front (every
 * length, count and offset is checked against the file size before use) and
 * then serves metadata and tensor infos without further parsing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gguf.h"
#include "../dtype.h"

/* ---- a bump arena for key/name copies and element tables ---- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

static void *arena_alloc(void **arena, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = *arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > (1u << 16) ? n : (1u << 16);
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        *arena = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(void *arena)
{
    arena_block *b = arena;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
}

/* ---- types ---- */

static const char *type_names[LFL_GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *lfl_gguf_type_name(lfl_gguf_type t)
{
    return (unsigned)t < LFL_GGUF_NTYPES ? type_names[t] : "unknown";
}

static size_t scalar_size(lfl_gguf_type t)
{
    switch (t) {
    case LFL_GGUF_U8: case LFL_GGUF_I8: case LFL_GGUF_BOOL: return 1;
    case LFL_GGUF_U16: case LFL_GGUF_I16: return 2;
    case LFL_GGUF_U32: case LFL_GGUF_I32: case LFL_GGUF_F32: return 4;
    case LFL_GGUF_U64: case LFL_GGUF_I64: case LFL_GGUF_F64: return 8;
    default: return 0;
    }
}

/* ggml type traits: name, elements per block, bytes per block (ggml-common.h) */
static const struct { const char *name; int64_t blck; size_t bytes; } ggml_types[LFL_GGML_NTYPES] = {
    [0] = {"f32", 1, 4},       [1] = {"f16", 1, 2},        [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},    [6] = {"q5_0", 32, 22},     [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},    [9] = {"q8_1", 32, 36},     [10] = {"q2_K", 256, 84},
    [11] = {"q3_K", 256, 110}, [12] = {"q4_K", 256, 144},  [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210}, [15] = {"q8_K", 256, 292},  [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74}, [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18}, [21] = {"iq3_s", 256, 110}, [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136}, [24] = {"i8", 1, 1},      [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},      [27] = {"i64", 1, 8},       [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56}, [30] = {"bf16", 1, 2},
    /* the removed interleaved Q4_0 variants kept Q4_0's block layout */
    [31] = {"q4_0_4_4", 32, 18}, [32] = {"q4_0_4_8", 32, 18}, [33] = {"q4_0_8_8", 32, 18},
    [34] = {"tq1_0", 256, 54}, [35] = {"tq2_0", 256, 66},  [39] = {"mxfp4", 32, 17},
};

const char *lfl_ggml_type_name(int type)
{
    if (type < 0 || type >= LFL_GGML_NTYPES) return NULL;
    return ggml_types[type].name;
}

bool lfl_ggml_type_block(int type, int64_t *block_elems, size_t *block_bytes)
{
    if (type < 0 || type >= LFL_GGML_NTYPES || !ggml_types[type].name) return false;
    if (block_elems) *block_elems = ggml_types[type].blck;
    if (block_bytes) *block_bytes = ggml_types[type].bytes;
    return true;
}

int lfl_ggml_type_to_dtype(int g)
{
    static const struct { int ggml; int dt; } map[] = {
        {0, LFL_F32}, {1, LFL_F16}, {2, LFL_Q4_0}, {3, LFL_Q4_1}, {6, LFL_Q5_0}, {7, LFL_Q5_1}, {8, LFL_Q8_0},
        {12, LFL_Q4_K}, {13, LFL_Q5_K}, {14, LFL_Q6_K}, {26, LFL_I32}, {27, LFL_I64}, {28, LFL_F64}, {30, LFL_BF16},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].ggml == g) return map[i].dt;
    return -1;
}

/* ---- bounds-checked cursor ---- */

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *name;  /* for messages */
    const char *what;  /* what is being read, for messages */
} cursor;

static lfl_status truncated(cursor *c, size_t need)
{
    return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: truncated: %s needs %zu bytes at offset %zu, file has %zu",
                    c->name, c->what, need, c->pos, c->size);
}

static lfl_status need(cursor *c, size_t n)
{
    if (c->size - c->pos < n) return truncated(c, n);
    return LFL_OK;
}

static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static lfl_status rd_u32(cursor *c, uint32_t *v)
{
    LFL_TRY(need(c, 4));
    *v = ld32(c->p + c->pos);
    c->pos += 4;
    return LFL_OK;
}

static lfl_status rd_u64(cursor *c, uint64_t *v)
{
    LFL_TRY(need(c, 8));
    *v = ld64(c->p + c->pos);
    c->pos += 8;
    return LFL_OK;
}

static lfl_status rd_str(cursor *c, lfl_gguf_str *s)
{
    uint64_t len;
    LFL_TRY(rd_u64(c, &len));
    if (len > c->size - c->pos)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %s: string length %llu at offset %zu runs past the end of the file (%zu bytes)",
                        c->name, c->what, (unsigned long long)len, c->pos - 8, c->size);
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return LFL_OK;
}

static char *dup_str(void **arena, lfl_gguf_str s)
{
    char *d = arena_alloc(arena, (size_t)s.len + 1);
    if (!d) return NULL;
    memcpy(d, s.ptr, (size_t)s.len);
    d[s.len] = 0;
    return d;
}

#define MAX_NESTING 8

/* Reads (and validates) one value of `type`; fills *kv for scalars and arrays.
 * kv may be NULL for elements of nested arrays, which are only validated. */
static lfl_status read_value(lfl_gguf *g, cursor *c, lfl_gguf_type type, lfl_gguf_kv *kv, int depth)
{
    const uint8_t *at = c->p + c->pos;
    size_t sz = scalar_size(type);
    if (sz) {
        LFL_TRY(need(c, sz));
        if (kv) {
            switch (type) {
            case LFL_GGUF_U8: kv->v.u = at[0]; break;
            case LFL_GGUF_I8: kv->v.i = (int8_t)at[0]; break;
            case LFL_GGUF_BOOL: kv->v.b = at[0] != 0; break;
            case LFL_GGUF_U16: { uint16_t x; memcpy(&x, at, 2); kv->v.u = x; break; }
            case LFL_GGUF_I16: { int16_t x; memcpy(&x, at, 2); kv->v.i = x; break; }
            case LFL_GGUF_U32: kv->v.u = ld32(at); break;
            case LFL_GGUF_I32: kv->v.i = (int32_t)ld32(at); break;
            case LFL_GGUF_F32: { float x; memcpy(&x, at, 4); kv->v.f = x; break; }
            case LFL_GGUF_U64: kv->v.u = ld64(at); break;
            case LFL_GGUF_I64: kv->v.i = (int64_t)ld64(at); break;
            case LFL_GGUF_F64: { double x; memcpy(&x, at, 8); kv->v.f = x; break; }
            default: break;
            }
        }
        c->pos += sz;
        return LFL_OK;
    }
    if (type == LFL_GGUF_STRING) {
        lfl_gguf_str s;
        LFL_TRY(rd_str(c, &s));
        if (kv) kv->v.s = s;
        return LFL_OK;
    }
    if (type != LFL_GGUF_ARRAY)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %s: unknown value type %u at offset %zu",
                        c->name, c->what, (unsigned)type, c->pos);
    if (depth >= MAX_NESTING)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %s: arrays nested deeper than %d", c->name, c->what, MAX_NESTING);
    uint32_t et;
    uint64_t n;
    LFL_TRY(rd_u32(c, &et));
    LFL_TRY(rd_u64(c, &n));
    if (et >= LFL_GGUF_NTYPES)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %s: unknown array element type %u at offset %zu",
                        c->name, c->what, et, c->pos - 12);
    size_t esz = scalar_size((lfl_gguf_type)et);
    /* the smallest encoding of an element bounds the count before any allocation */
    size_t min_elem = esz ? esz : (et == LFL_GGUF_STRING ? 8 : 12);
    size_t left = c->size - c->pos;
    if (n > left / min_elem)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %s: array of %llu %s elements at offset %zu needs at least %llu bytes, %zu left",
                        c->name, c->what, (unsigned long long)n, lfl_gguf_type_name((lfl_gguf_type)et),
                        c->pos - 12, (unsigned long long)n * min_elem, left);
    if (kv) {
        kv->arr_type = (lfl_gguf_type)et;
        kv->arr_n = n;
        kv->arr_data = c->p + c->pos;
        kv->arr_elems = NULL;
        kv->arr_subs = NULL;
    }
    if (esz) {
        c->pos += (size_t)n * esz;
        return LFL_OK;
    }
    const uint8_t **elems = NULL;
    lfl_gguf_kv *subs = NULL;
    if (kv && n) {
        if (et == LFL_GGUF_ARRAY) subs = kv->arr_subs = arena_alloc(&g->arena, (size_t)n * sizeof *subs);
        else elems = kv->arr_elems = arena_alloc(&g->arena, (size_t)n * sizeof *elems);
        if (!subs && !elems)
            return lfl_fail(LFL_ERR_MEM, "gguf: %s: out of memory for an array of %llu elements",
                            c->name, (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++) {
        if (elems) elems[i] = c->p + c->pos;
        if (subs) {
            memset(&subs[i], 0, sizeof subs[i]);
            subs[i].type = LFL_GGUF_ARRAY;
            LFL_TRY(read_value(g, c, LFL_GGUF_ARRAY, &subs[i], depth + 1));
        } else {
            LFL_TRY(read_value(g, c, (lfl_gguf_type)et, NULL, depth + 1));
        }
    }
    return LFL_OK;
}

/* ---- open ---- */

static lfl_status parse(lfl_gguf *g)
{
    cursor c = {g->base, g->size, 0, g->path, "header"};
    uint32_t magic;
    LFL_TRY(rd_u32(&c, &magic));
    if (magic != LFL_GGUF_MAGIC)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: not a GGUF file (magic %02x %02x %02x %02x, expected 'GGUF')",
                        g->path, g->base[0], g->base[1], g->base[2], g->base[3]);
    LFL_TRY(rd_u32(&c, &g->version));
    if (g->version == 1)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "gguf: %s: GGUF version 1 is not supported (v2 and v3 are)", g->path);
    if (g->version > 3) {
        if ((g->version & 0xffff) == 0)
            return lfl_fail(LFL_ERR_UNSUPPORTED, "gguf: %s: big-endian GGUF files are not supported", g->path);
        return lfl_fail(LFL_ERR_UNSUPPORTED, "gguf: %s: GGUF version %u is not supported (v2 and v3 are)", g->path, g->version);
    }
    if (g->version == 0)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: invalid GGUF version 0", g->path);
    LFL_TRY(rd_u64(&c, &g->n_tensors));
    LFL_TRY(rd_u64(&c, &g->n_kv));
    size_t left = c.size - c.pos;
    if (g->n_kv > left / 13)  /* key length (8) + one char + type (4) at least */
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: header claims %llu metadata entries, more than the %zu bytes left can hold",
                        g->path, (unsigned long long)g->n_kv, left);
    if (g->n_tensors > left / 24)  /* name length (8) + n_dims (4) + type (4) + offset (8) */
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: header claims %llu tensors, more than the %zu bytes left can hold",
                        g->path, (unsigned long long)g->n_tensors, left);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return lfl_fail(LFL_ERR_MEM, "gguf: %s: out of memory", g->path);

    char what[96];
    g->alignment = LFL_GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        lfl_gguf_kv *kv = &g->kv[i];
        snprintf(what, sizeof what, "key of metadata entry %llu", (unsigned long long)i);
        c.what = what;
        lfl_gguf_str key;
        LFL_TRY(rd_str(&c, &key));
        if (memchr(key.ptr, 0, (size_t)key.len))
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: metadata key %llu contains a NUL byte", g->path, (unsigned long long)i);
        kv->key = dup_str(&g->arena, key);
        if (!kv->key) return lfl_fail(LFL_ERR_MEM, "gguf: %s: out of memory", g->path);
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->kv[j].key, kv->key) == 0)
                return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: duplicate metadata key '%s'", g->path, kv->key);
        snprintf(what, sizeof what, "value of '%.60s'", kv->key);
        uint32_t t;
        LFL_TRY(rd_u32(&c, &t));
        if (t >= LFL_GGUF_NTYPES)
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: metadata '%s' has unknown value type %u", g->path, kv->key, t);
        kv->type = (lfl_gguf_type)t;
        LFL_TRY(read_value(g, &c, kv->type, kv, 0));
        if (strcmp(kv->key, "general.alignment") == 0) {
            if (kv->type != LFL_GGUF_U32)
                return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: general.alignment must be u32, is %s", g->path, lfl_gguf_type_name(kv->type));
            if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)))
                return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: general.alignment %llu is not a power of two", g->path, (unsigned long long)kv->v.u);
            g->alignment = (uint32_t)kv->v.u;
        }
    }

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        lfl_gguf_tensor *t = &g->tensors[i];
        snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
        c.what = what;
        lfl_gguf_str name;
        LFL_TRY(rd_str(&c, &name));
        if (memchr(name.ptr, 0, (size_t)name.len))
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor name %llu contains a NUL byte", g->path, (unsigned long long)i);
        t->name = dup_str(&g->arena, name);
        if (!t->name) return lfl_fail(LFL_ERR_MEM, "gguf: %s: out of memory", g->path);
        snprintf(what, sizeof what, "tensor info of '%.60s'", t->name);
        uint32_t nd;
        LFL_TRY(rd_u32(&c, &nd));
        if (nd > LFL_GGUF_MAX_DIMS)
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s' has %u dims (at most %d)", g->path, t->name, nd, LFL_GGUF_MAX_DIMS);
        t->ndim = (int)nd;
        for (int d = 0; d < LFL_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            LFL_TRY(rd_u64(&c, &ne));
            if (ne > (uint64_t)INT64_MAX)
                return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s' dim %u is negative", g->path, t->name, d);
            t->ne[d] = (int64_t)ne;
        }
        uint32_t type;
        LFL_TRY(rd_u32(&c, &type));
        t->type = (int)type;
        LFL_TRY(rd_u64(&c, &t->offset));
        int64_t blck;
        size_t bbytes;
        if (!lfl_ggml_type_block(t->type, &blck, &bbytes))
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s' has unknown ggml type %u", g->path, t->name, type);
        if (t->ne[0] % blck)
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s': ne[0] = %lld is not a multiple of the %s block size %lld",
                            g->path, t->name, (long long)t->ne[0], lfl_ggml_type_name(t->type), (long long)blck);
        /* byte size with overflow checks: rows of ne0/blck blocks times the other dims */
        uint64_t bytes = (uint64_t)(t->ne[0] / blck);
        if (bytes && bbytes > UINT64_MAX / bytes) goto overflow;
        bytes *= bbytes;
        for (int d = 1; d < LFL_GGUF_MAX_DIMS; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            if (ne && bytes > UINT64_MAX / ne) goto overflow;
            bytes *= ne;
        }
        t->nbytes = bytes;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0)
                return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: duplicate tensor name '%s'", g->path, t->name);
        continue;
    overflow:
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s' byte size overflows", g->path, t->name);
    }

    uint64_t a = g->alignment;
    g->data_offset = (c.pos + a - 1) / a * a;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        lfl_gguf_tensor *t = &g->tensors[i];
        if (t->offset % a)
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s' offset %llu is not a multiple of the alignment %u",
                            g->path, t->name, (unsigned long long)t->offset, g->alignment);
        uint64_t end = g->data_offset + t->offset;
        if (end < t->offset || end + t->nbytes < end || end + t->nbytes > g->size)
            return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: tensor '%s' data [%llu, +%llu) lies past the end of the file (%zu bytes)",
                            g->path, t->name, (unsigned long long)end, (unsigned long long)t->nbytes, g->size);
        t->data = g->base + end;
    }
    return LFL_OK;
}

static lfl_status open_common(lfl_gguf *g, lfl_gguf **out)
{
    lfl_status st = parse(g);
    if (st != LFL_OK) {
        lfl_gguf_close(g);
        return st;
    }
    *out = g;
    return LFL_OK;
}

lfl_status lfl_gguf_open(const char *path, lfl_gguf **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lfl_fail(LFL_ERR_IO, "gguf: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return lfl_fail(LFL_ERR_IO, "gguf: cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lfl_fail(LFL_ERR_IO, "gguf: %s is not a regular file", path);
    }
    if (sb.st_size < 24) {
        close(fd);
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %lld bytes is too short for a GGUF header (24 bytes)", path, (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return lfl_fail(LFL_ERR_IO, "gguf: cannot map %s: %s", path, strerror(e));
    lfl_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(map, (size_t)sb.st_size);
        return lfl_fail(LFL_ERR_MEM, "gguf: out of memory");
    }
    g->path = strdup(path);
    g->base = map;
    g->size = (size_t)sb.st_size;
    g->mapped = true;
    if (!g->path) {
        lfl_gguf_close(g);
        return lfl_fail(LFL_ERR_MEM, "gguf: out of memory");
    }
    return open_common(g, out);
}

lfl_status lfl_gguf_open_memory(const void *buf, size_t size, const char *name, lfl_gguf **out)
{
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf || size < 24)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: %zu bytes is too short for a GGUF header (24 bytes)", name, buf ? size : 0);
    lfl_gguf *g = calloc(1, sizeof *g);
    if (!g) return lfl_fail(LFL_ERR_MEM, "gguf: out of memory");
    g->path = strdup(name);
    g->base = buf;
    g->size = size;
    if (!g->path) {
        lfl_gguf_close(g);
        return lfl_fail(LFL_ERR_MEM, "gguf: out of memory");
    }
    return open_common(g, out);
}

void lfl_gguf_close(lfl_gguf *g)
{
    if (!g) return;
    if (g->mapped && g->base) munmap((void *)g->base, g->size);
    free(g->kv);
    free(g->tensors);
    arena_free(g->arena);
    free(g->path);
    free(g);
}

/* ---- lookups ---- */

const lfl_gguf_kv *lfl_gguf_find(const lfl_gguf *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const lfl_gguf_tensor *lfl_gguf_find_tensor(const lfl_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static lfl_status find_kv(const lfl_gguf *g, const char *key, const lfl_gguf_kv **kv)
{
    *kv = lfl_gguf_find(g, key);
    if (!*kv) return lfl_fail(LFL_ERR_ARG, "gguf: %s: no metadata key '%s'", g->path, key);
    return LFL_OK;
}

static bool is_int_type(lfl_gguf_type t)
{
    return t == LFL_GGUF_U8 || t == LFL_GGUF_I8 || t == LFL_GGUF_U16 || t == LFL_GGUF_I16 ||
           t == LFL_GGUF_U32 || t == LFL_GGUF_I32 || t == LFL_GGUF_U64 || t == LFL_GGUF_I64;
}

static bool is_signed(lfl_gguf_type t)
{
    return t == LFL_GGUF_I8 || t == LFL_GGUF_I16 || t == LFL_GGUF_I32 || t == LFL_GGUF_I64;
}

lfl_status lfl_gguf_get_str(const lfl_gguf *g, const char *key, const char **s, size_t *len)
{
    const lfl_gguf_kv *kv;
    LFL_TRY(find_kv(g, key, &kv));
    if (kv->type != LFL_GGUF_STRING)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: '%s' is %s, expected a string", g->path, key, lfl_gguf_type_name(kv->type));
    *s = kv->v.s.ptr;
    if (len) *len = (size_t)kv->v.s.len;
    return LFL_OK;
}

lfl_status lfl_gguf_get_int(const lfl_gguf *g, const char *key, int64_t *v)
{
    const lfl_gguf_kv *kv;
    LFL_TRY(find_kv(g, key, &kv));
    if (kv->type == LFL_GGUF_BOOL) { *v = kv->v.b; return LFL_OK; }
    if (!is_int_type(kv->type))
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: '%s' is %s, expected an integer", g->path, key, lfl_gguf_type_name(kv->type));
    if (!is_signed(kv->type) && kv->v.u > (uint64_t)INT64_MAX)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: '%s' = %llu does not fit in int64", g->path, key, (unsigned long long)kv->v.u);
    *v = is_signed(kv->type) ? kv->v.i : (int64_t)kv->v.u;
    return LFL_OK;
}

lfl_status lfl_gguf_get_float(const lfl_gguf *g, const char *key, double *v)
{
    const lfl_gguf_kv *kv;
    LFL_TRY(find_kv(g, key, &kv));
    if (kv->type == LFL_GGUF_F32 || kv->type == LFL_GGUF_F64) { *v = kv->v.f; return LFL_OK; }
    if (is_int_type(kv->type)) { *v = is_signed(kv->type) ? (double)kv->v.i : (double)kv->v.u; return LFL_OK; }
    return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: '%s' is %s, expected a number", g->path, key, lfl_gguf_type_name(kv->type));
}

lfl_status lfl_gguf_get_bool(const lfl_gguf *g, const char *key, bool *v)
{
    const lfl_gguf_kv *kv;
    LFL_TRY(find_kv(g, key, &kv));
    if (kv->type == LFL_GGUF_BOOL) { *v = kv->v.b; return LFL_OK; }
    if (is_int_type(kv->type)) { *v = kv->v.u != 0; return LFL_OK; }
    return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: '%s' is %s, expected a bool", g->path, key, lfl_gguf_type_name(kv->type));
}

lfl_status lfl_gguf_get_arr(const lfl_gguf *g, const char *key, lfl_gguf_type *type, uint64_t *n)
{
    const lfl_gguf_kv *kv;
    LFL_TRY(find_kv(g, key, &kv));
    if (kv->type != LFL_GGUF_ARRAY)
        return lfl_fail(LFL_ERR_FORMAT, "gguf: %s: '%s' is %s, expected an array", g->path, key, lfl_gguf_type_name(kv->type));
    if (type) *type = kv->arr_type;
    if (n) *n = kv->arr_n;
    return LFL_OK;
}

lfl_gguf_str lfl_gguf_arr_str(const lfl_gguf_kv *kv, uint64_t i)
{
    LFL_ASSERT(kv->type == LFL_GGUF_ARRAY && kv->arr_type == LFL_GGUF_STRING && i < kv->arr_n);
    const uint8_t *p = kv->arr_elems[i];
    lfl_gguf_str s = {(const char *)p + 8, ld64(p)};
    return s;
}

static const uint8_t *elem_ptr(const lfl_gguf_kv *kv, uint64_t i)
{
    LFL_ASSERT(kv->type == LFL_GGUF_ARRAY && i < kv->arr_n);
    size_t sz = scalar_size(kv->arr_type);
    LFL_ASSERT(sz > 0);
    return kv->arr_data + (size_t)i * sz;
}

int64_t lfl_gguf_arr_int(const lfl_gguf_kv *kv, uint64_t i)
{
    const uint8_t *p = elem_ptr(kv, i);
    switch (kv->arr_type) {
    case LFL_GGUF_U8: case LFL_GGUF_BOOL: return p[0];
    case LFL_GGUF_I8: return (int8_t)p[0];
    case LFL_GGUF_U16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case LFL_GGUF_I16: { int16_t x; memcpy(&x, p, 2); return x; }
    case LFL_GGUF_U32: return ld32(p);
    case LFL_GGUF_I32: return (int32_t)ld32(p);
    case LFL_GGUF_U64: case LFL_GGUF_I64: return (int64_t)ld64(p);
    case LFL_GGUF_F32: { float x; memcpy(&x, p, 4); return (int64_t)x; }
    case LFL_GGUF_F64: { double x; memcpy(&x, p, 8); return (int64_t)x; }
    default: LFL_ASSERT(0); return 0;
    }
}

double lfl_gguf_arr_float(const lfl_gguf_kv *kv, uint64_t i)
{
    const uint8_t *p = elem_ptr(kv, i);
    switch (kv->arr_type) {
    case LFL_GGUF_F32: { float x; memcpy(&x, p, 4); return x; }
    case LFL_GGUF_F64: { double x; memcpy(&x, p, 8); return x; }
    case LFL_GGUF_U64: return (double)ld64(p);
    default: return (double)lfl_gguf_arr_int(kv, i);
    }
}

const lfl_gguf_kv *lfl_gguf_arr_sub(const lfl_gguf_kv *kv, uint64_t i)
{
    LFL_ASSERT(kv->type == LFL_GGUF_ARRAY && kv->arr_type == LFL_GGUF_ARRAY && i < kv->arr_n);
    return &kv->arr_subs[i];
}
