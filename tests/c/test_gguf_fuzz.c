/* GGUF reader: a small valid file built here reads back exactly; every
 * truncation and thousands of seeded random mutations of it either read
 * cleanly or fail with an error naming the file (never a crash). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/gguf.h"

static int failures;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                       \
        }                                                                     \
    } while (0)

/* ---- a tiny GGUF writer ---- */

typedef struct { uint8_t *p; size_t n, cap; } buf;

static void put(buf *b, const void *x, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void f32(buf *b, float v) { put(b, &v, 4); }
static void str(buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void key(buf *b, const char *k, uint32_t type) { str(b, k); u32(b, type); }

static const char *toks[] = {"<s>", "</s>", "hello", "\xe2\x96\x81world", ""};

static buf build(void)
{
    buf b = {0};
    u32(&b, LFL_GGUF_MAGIC);
    u32(&b, 3);
    u64(&b, 3);   /* tensors */
    u64(&b, 16);  /* kv */
    key(&b, "general.architecture", LFL_GGUF_STRING); str(&b, "llama");
    key(&b, "general.alignment", LFL_GGUF_U32); u32(&b, 64);
    key(&b, "t.u8", LFL_GGUF_U8); u8(&b, 200);
    key(&b, "t.i8", LFL_GGUF_I8); u8(&b, (uint8_t)-5);
    key(&b, "t.u16", LFL_GGUF_U16); { uint16_t v = 65000; put(&b, &v, 2); }
    key(&b, "t.i16", LFL_GGUF_I16); { int16_t v = -3000; put(&b, &v, 2); }
    key(&b, "t.i32", LFL_GGUF_I32); u32(&b, (uint32_t)-123456);
    key(&b, "t.f32", LFL_GGUF_F32); f32(&b, 1.5f);
    key(&b, "t.bool", LFL_GGUF_BOOL); u8(&b, 1);
    key(&b, "t.u64", LFL_GGUF_U64); u64(&b, 1ull << 40);
    key(&b, "t.i64", LFL_GGUF_I64); u64(&b, (uint64_t)-7);
    key(&b, "t.f64", LFL_GGUF_F64); { double v = -2.25; put(&b, &v, 8); }
    key(&b, "tokenizer.ggml.tokens", LFL_GGUF_ARRAY); u32(&b, LFL_GGUF_STRING); u64(&b, 5);
    for (int i = 0; i < 5; i++) str(&b, toks[i]);
    key(&b, "tokenizer.ggml.scores", LFL_GGUF_ARRAY); u32(&b, LFL_GGUF_F32); u64(&b, 5);
    for (int i = 0; i < 5; i++) f32(&b, -(float)i);
    key(&b, "t.nested", LFL_GGUF_ARRAY); u32(&b, LFL_GGUF_ARRAY); u64(&b, 2);
    u32(&b, LFL_GGUF_I32); u64(&b, 2); u32(&b, 1); u32(&b, 2);
    u32(&b, LFL_GGUF_STRING); u64(&b, 1); str(&b, "deep");
    key(&b, "t.empty", LFL_GGUF_ARRAY); u32(&b, LFL_GGUF_U8); u64(&b, 0);
    /* tensors: f32 [3, 2], q8_0 [64], q4_0 [32, 2] */
    str(&b, "a.weight"); u32(&b, 2); u64(&b, 3); u64(&b, 2); u32(&b, LFL_GGML_F32); u64(&b, 0);
    str(&b, "b.weight"); u32(&b, 1); u64(&b, 64); u32(&b, LFL_GGML_Q8_0); u64(&b, 64);
    str(&b, "c.weight"); u32(&b, 2); u64(&b, 32); u64(&b, 2); u32(&b, LFL_GGML_Q4_0); u64(&b, 192);
    while (b.n % 64) u8(&b, 0);
    for (int i = 0; i < 6; i++) f32(&b, (float)i);     /* a: 24 bytes */
    while (b.n % 64) u8(&b, 0);
    for (int i = 0; i < 68; i++) u8(&b, (uint8_t)i);   /* b: 2 blocks x 34 */
    while (b.n % 64) u8(&b, 0);
    for (int i = 0; i < 36; i++) u8(&b, (uint8_t)(i * 3)); /* c: 2 blocks x 18 */
    return b;
}

/* touches every value the reader exposes, as a consumer would */
static double walk(const lfl_gguf *g)
{
    double acc = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const lfl_gguf_kv *kv = &g->kv[i];
        acc += (double)strlen(kv->key);
        if (kv->type == LFL_GGUF_STRING) {
            for (uint64_t j = 0; j < kv->v.s.len; j++) acc += (unsigned char)kv->v.s.ptr[j];
        } else if (kv->type == LFL_GGUF_ARRAY) {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                if (kv->arr_type == LFL_GGUF_STRING) {
                    lfl_gguf_str s = lfl_gguf_arr_str(kv, j);
                    for (uint64_t k = 0; k < s.len; k++) acc += (unsigned char)s.ptr[k];
                } else if (kv->arr_type == LFL_GGUF_ARRAY) {
                    const lfl_gguf_kv *sub = lfl_gguf_arr_sub(kv, j);
                    acc += (double)sub->arr_n;
                    if (sub->arr_type == LFL_GGUF_STRING)
                        for (uint64_t k = 0; k < sub->arr_n; k++) acc += (double)lfl_gguf_arr_str(sub, k).len;
                } else {
                    acc += lfl_gguf_arr_float(kv, j);
                }
            }
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const lfl_gguf_tensor *t = &g->tensors[i];
        const uint8_t *d = t->data;
        for (uint64_t j = 0; j < t->nbytes; j++) acc += d[j];
    }
    return acc;
}

static void check_valid(const lfl_gguf *g)
{
    CHECK(g->version == 3 && g->n_kv == 16 && g->n_tensors == 3 && g->alignment == 64);
    const char *s; size_t len;
    CHECK(lfl_gguf_get_str(g, "general.architecture", &s, &len) == LFL_OK && len == 5 && !memcmp(s, "llama", 5));
    int64_t v; double f; bool bv;
    CHECK(lfl_gguf_get_int(g, "t.u8", &v) == LFL_OK && v == 200);
    CHECK(lfl_gguf_get_int(g, "t.i8", &v) == LFL_OK && v == -5);
    CHECK(lfl_gguf_get_int(g, "t.u16", &v) == LFL_OK && v == 65000);
    CHECK(lfl_gguf_get_int(g, "t.i16", &v) == LFL_OK && v == -3000);
    CHECK(lfl_gguf_get_int(g, "t.i32", &v) == LFL_OK && v == -123456);
    CHECK(lfl_gguf_get_int(g, "t.u64", &v) == LFL_OK && v == (1ll << 40));
    CHECK(lfl_gguf_get_int(g, "t.i64", &v) == LFL_OK && v == -7);
    CHECK(lfl_gguf_get_float(g, "t.f32", &f) == LFL_OK && f == 1.5);
    CHECK(lfl_gguf_get_float(g, "t.f64", &f) == LFL_OK && f == -2.25);
    CHECK(lfl_gguf_get_float(g, "t.i32", &f) == LFL_OK && f == -123456.0);
    CHECK(lfl_gguf_get_bool(g, "t.bool", &bv) == LFL_OK && bv);
    CHECK(lfl_gguf_get_int(g, "missing", &v) == LFL_ERR_ARG && strstr(lfl_last_error(), "missing"));
    CHECK(lfl_gguf_get_int(g, "t.f32", &v) == LFL_ERR_FORMAT && strstr(lfl_last_error(), "t.f32"));
    CHECK(lfl_gguf_get_str(g, "t.u8", &s, &len) == LFL_ERR_FORMAT);
    lfl_gguf_type at; uint64_t n;
    CHECK(lfl_gguf_get_arr(g, "tokenizer.ggml.tokens", &at, &n) == LFL_OK && at == LFL_GGUF_STRING && n == 5);
    const lfl_gguf_kv *kv = lfl_gguf_find(g, "tokenizer.ggml.tokens");
    for (int i = 0; i < 5; i++) {
        lfl_gguf_str t = lfl_gguf_arr_str(kv, (uint64_t)i);
        CHECK(t.len == strlen(toks[i]) && !memcmp(t.ptr, toks[i], t.len));
    }
    kv = lfl_gguf_find(g, "tokenizer.ggml.scores");
    CHECK(kv && lfl_gguf_arr_float(kv, 3) == -3.0);
    kv = lfl_gguf_find(g, "t.nested");
    CHECK(kv && kv->arr_n == 2 && lfl_gguf_arr_int(lfl_gguf_arr_sub(kv, 0), 1) == 2);
    CHECK(kv && lfl_gguf_arr_str(lfl_gguf_arr_sub(kv, 1), 0).len == 4);
    CHECK(lfl_gguf_get_arr(g, "t.empty", &at, &n) == LFL_OK && n == 0);
    const lfl_gguf_tensor *t = lfl_gguf_find_tensor(g, "a.weight");
    CHECK(t && t->ndim == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->type == LFL_GGML_F32 && t->nbytes == 24);
    CHECK(t && ((const float *)t->data)[5] == 5.0f);
    t = lfl_gguf_find_tensor(g, "b.weight");
    CHECK(t && t->nbytes == 68 && t->offset == 64 && ((const uint8_t *)t->data)[67] == 67);
    t = lfl_gguf_find_tensor(g, "c.weight");
    CHECK(t && t->nbytes == 36 && ((const uint8_t *)t->data)[35] == 105);
    CHECK(!lfl_gguf_find_tensor(g, "d.weight"));
    CHECK(g->data_offset % 64 == 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* opens a mutated copy (exact-size heap buffer, so ASan catches overreads) */
static int try_open(const uint8_t *p, size_t n, int *ok)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    lfl_gguf *g = NULL;
    lfl_clear_error();
    lfl_status st = lfl_gguf_open_memory(copy, n, "fuzz.gguf", &g);
    int good = 1;
    if (st == LFL_OK) {
        volatile double acc = walk(g);
        (void)acc;
        lfl_gguf_close(g);
        (*ok)++;
    } else {
        /* a clean error: non-empty, naming the file */
        good = g == NULL && strstr(lfl_last_error(), "fuzz.gguf") != NULL;
        if (!good) fprintf(stderr, "unclean error: status %d, '%s'\n", st, lfl_last_error());
    }
    free(copy);
    return good;
}

int main(void)
{
    buf b = build();
    lfl_gguf *g = NULL;
    if (lfl_gguf_open_memory(b.p, b.n, "valid.gguf", &g) != LFL_OK) {
        fprintf(stderr, "valid file rejected: %s\n", lfl_last_error());
        return 1;
    }
    check_valid(g);
    lfl_gguf_close(g);

    /* the same through a real file and mmap; then a truncated file */
    char path[] = "/tmp/lfl_gguf_testXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, b.p, b.n) == (ssize_t)b.n);
        close(fd);
        CHECK(lfl_gguf_open(path, &g) == LFL_OK);
        if (g) { check_valid(g); lfl_gguf_close(g); }
        CHECK(truncate(path, (off_t)(b.n - 1)) == 0);
        g = NULL;
        CHECK(lfl_gguf_open(path, &g) == LFL_ERR_FORMAT && !g);
        CHECK(strstr(lfl_last_error(), path) && strstr(lfl_last_error(), "c.weight"));
        unlink(path);
    }
    CHECK(lfl_gguf_open("/nonexistent/x.gguf", &g) == LFL_ERR_IO && strstr(lfl_last_error(), "/nonexistent/x.gguf"));

    /* every truncation fails cleanly (the last tensor's data reaches the end) */
    int ok = 0;
    for (size_t n = 0; n < b.n; n++) CHECK(try_open(b.p, n, &ok));
    CHECK(ok == 0);

    /* seeded mutations: byte flips, random u64 counts/lengths, truncations */
    int iters = 20000, accepted = 0;
    uint8_t *m = malloc(b.n + 64);
    for (int it = 0; it < iters; it++) {
        size_t n = b.n;
        memcpy(m, b.p, n);
        int nmut = 1 + (int)(rnd() % 4);
        for (int k = 0; k < nmut && n > 0; k++) {
            size_t at = (size_t)(rnd() % n);
            switch (rnd() % 5) {
            case 0: m[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: m[at] = (uint8_t)rnd(); break;
            case 2: if (at + 8 <= n) {
                uint64_t v = rnd();
                v >>= rnd() % 64; /* two statements: the draw order is fixed */
                memcpy(m + at, &v, 8);
            } break;
            case 3: if (at + 4 <= n) { uint32_t v = (uint32_t)(rnd() % 16); memcpy(m + at, &v, 4); } break;
            case 4: n = at; break;
            }
        }
        if (!try_open(m, n, &accepted)) {
            failures++;
            if (failures > 10) break;
        }
    }
    free(m);
    printf("gguf fuzz: %d mutations, %d opened cleanly, the rest rejected with an error\n", iters, accepted);

    /* a real vocab file from the shared data, when present next to the checkout */
    const char *real = "../shared/data/tokenizer-vectors/ggml-vocab-llama-spm.gguf";
    if (access(real, R_OK) == 0) {
        CHECK(lfl_gguf_open(real, &g) == LFL_OK);
        if (g) {
            lfl_gguf_type at; uint64_t n;
            CHECK(lfl_gguf_get_arr(g, "tokenizer.ggml.tokens", &at, &n) == LFL_OK && n == 32000);
            const char *s; size_t len;
            CHECK(lfl_gguf_get_str(g, "tokenizer.ggml.model", &s, &len) == LFL_OK && len == 5 && !memcmp(s, "llama", 5));
            lfl_gguf_close(g);
        }
    }
    free(b.p);
    if (failures) {
        printf("%d failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
