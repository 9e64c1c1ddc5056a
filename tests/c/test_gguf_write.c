/* core/io/gguf_write.c and the streaming atomic file (lfl_fs_atomic_*):
 * a file written in pieces appears only on commit, abort and a failed write
 * leave the old file and no temporary; a GGUF with every scalar type, arrays,
 * an array of arrays (copied from another GGUF), f32 / f16 / q8_0 / q4_k
 * tensors reads back through core/io/gguf.c with the same values and layout;
 * refusals (duplicate keys, out-of-range integers) leave the writer usable. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fs.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "quant/ggml.h"
#include "quant/ggml_quantize.h"

static int passed, failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) passed++;                                                  \
        else {                                                               \
            failed++;                                                        \
            printf("FAIL  %s:%d: ", __FILE__, __LINE__);                     \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

#define OK(expr) CHECK((expr) == LFL_OK, "%s: %s", #expr, lfl_last_error())

static char root[64];

static char *P(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

static int n_entries(void)
{
    DIR *d = opendir(root);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) n++;
    closedir(d);
    return n;
}

static void test_atomic(void)
{
    lfl_fs_atomic a;
    OK(lfl_fs_write(P("f"), "old", 3));
    OK(lfl_fs_atomic_begin(P("f"), &a));
    OK(lfl_fs_atomic_append(&a, "ne", 2));
    char *s = NULL;
    size_t n = 0;
    OK(lfl_fs_read(P("f"), &s, &n));
    CHECK(n == 3 && memcmp(s, "old", 3) == 0, "the target is untouched before commit");
    free(s);
    OK(lfl_fs_atomic_append(&a, "w!", 2));
    OK(lfl_fs_atomic_commit(&a));
    OK(lfl_fs_read(P("f"), &s, &n));
    CHECK(n == 4 && memcmp(s, "new!", 4) == 0, "committed content");
    free(s);
    CHECK(n_entries() == 1, "no temporary file left after commit (%d entries)", n_entries());
    OK(lfl_fs_atomic_begin(P("f"), &a));
    OK(lfl_fs_atomic_append(&a, "xyz", 3));
    lfl_fs_atomic_abort(&a);
    lfl_fs_atomic_abort(&a); /* twice is harmless */
    OK(lfl_fs_read(P("f"), &s, &n));
    CHECK(n == 4 && memcmp(s, "new!", 4) == 0, "abort keeps the old file");
    free(s);
    CHECK(n_entries() == 1, "no temporary file left after abort");
    CHECK(lfl_fs_atomic_append(&a, "x", 1) != LFL_OK, "append after abort is an error");
    CHECK(lfl_fs_atomic_begin(P("no/such/dir/f"), &a) != LFL_OK && strstr(lfl_last_error(), "No such file"),
          "begin in a missing folder: %s", lfl_last_error());
}

/* a hand-made GGUF holding an array of arrays of i32, to be copied */
static size_t nested_gguf(uint8_t *b)
{
    size_t o = 0;
#define U32(v) do { uint32_t x_ = (v); memcpy(b + o, &x_, 4); o += 4; } while (0)
#define U64(v) do { uint64_t x_ = (v); memcpy(b + o, &x_, 8); o += 8; } while (0)
    U32(LFL_GGUF_MAGIC); U32(3); U64(0); U64(1);
    U64(6); memcpy(b + o, "nested", 6); o += 6;
    U32(LFL_GGUF_ARRAY); U32(LFL_GGUF_ARRAY); U64(2);
    U32(LFL_GGUF_I32); U64(2); U32(7); U32((uint32_t)-8);
    U32(LFL_GGUF_I32); U64(1); U32(9);
#undef U32
#undef U64
    while (o % 32) b[o++] = 0;
    return o;
}

static void test_writer(void)
{
    lfl_gguf_writer *w = NULL;
    OK(lfl_gguf_writer_new(&w));
    OK(lfl_gguf_writer_set_str(w, "general.architecture", "llama", 5));
    OK(lfl_gguf_writer_set_int(w, "u8", LFL_GGUF_U8, 200));
    OK(lfl_gguf_writer_set_int(w, "i16", LFL_GGUF_I16, -300));
    OK(lfl_gguf_writer_set_int(w, "u32", LFL_GGUF_U32, 4000000000LL));
    OK(lfl_gguf_writer_set_int(w, "i64", LFL_GGUF_I64, -(1LL << 60)));
    OK(lfl_gguf_writer_set_int(w, "u64", LFL_GGUF_U64, 1LL << 62));
    OK(lfl_gguf_writer_set_float(w, "f32", LFL_GGUF_F32, 1e-5));
    OK(lfl_gguf_writer_set_float(w, "f64", LFL_GGUF_F64, 1e-300));
    OK(lfl_gguf_writer_set_bool(w, "b", true));
    /* refusals leave it usable */
    CHECK(lfl_gguf_writer_set_int(w, "bad", LFL_GGUF_U8, 256) != LFL_OK && strstr(lfl_last_error(), "'bad'"),
          "u8 256: %s", lfl_last_error());
    CHECK(lfl_gguf_writer_set_int(w, "u8", LFL_GGUF_U8, 1) != LFL_OK && strstr(lfl_last_error(), "set twice"),
          "duplicate: %s", lfl_last_error());
    double nums[3] = {1, -2, 3};
    CHECK(lfl_gguf_writer_set_arr_num(w, "badarr", LFL_GGUF_U8, nums, 3) != LFL_OK, "u8 array with -2");
    OK(lfl_gguf_writer_set_arr_num(w, "arr", LFL_GGUF_I32, nums, 3));
    const char *strs[2] = {"a b", "\xe2\x96\x81"};
    size_t lens[2] = {3, 3};
    OK(lfl_gguf_writer_set_arr_str(w, "strs", strs, lens, 2));
    static uint8_t nb[256];
    size_t nn = nested_gguf(nb);
    lfl_gguf *src = NULL;
    OK(lfl_gguf_open_memory(nb, nn, "nested.gguf", &src));
    if (src) {
        OK(lfl_gguf_writer_copy_kv(w, lfl_gguf_find(src, "nested")));
        lfl_gguf_close(src);
    }
    /* tensors: 3 x 256 values */
    int64_t shape[2] = {3, 256};
    lfl_tensor *x = NULL;
    OK(lfl_empty(2, shape, LFL_F32, LFL_CPU, &x));
    float *xv = lfl_data(x);
    for (int i = 0; i < 3 * 256; i++) xv[i] = sinf(0.37f * i) * (1 + i % 7);
    OK(lfl_gguf_writer_add_tensor(w, "t.f32", x, LFL_GGML_F32));
    OK(lfl_gguf_writer_add_tensor(w, "t.f16", x, LFL_GGML_F16));
    OK(lfl_gguf_writer_add_tensor(w, "t.q8", x, LFL_GGML_Q8_0));
    OK(lfl_gguf_writer_add_tensor(w, "t.q4k", x, LFL_GGML_Q4_K));
    CHECK(lfl_gguf_writer_add_tensor(w, "t.q4k", x, LFL_GGML_Q8_0) != LFL_OK, "a tensor name twice");
    CHECK(lfl_gguf_writer_add_tensor(w, "t.q6", x, LFL_GGML_Q6_K) != LFL_OK && strstr(lfl_last_error(), "cannot convert"),
          "q6_k has no quantizer: %s", lfl_last_error());
    OK(lfl_gguf_writer_save(w, P("m.gguf")));
    lfl_gguf_writer_free(w);
    CHECK(n_entries() == 2, "f and m.gguf, nothing else");

    lfl_gguf *g = NULL;
    OK(lfl_gguf_open(P("m.gguf"), &g));
    if (!g) { lfl_tensor_release(x); return; }
    CHECK(g->version == 3 && g->n_kv == 12 && g->n_tensors == 4, "counts: v%u %llu kv %llu tensors", g->version,
          (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
    int64_t v;
    double f;
    bool b;
    const char *s;
    size_t sl;
    OK(lfl_gguf_get_str(g, "general.architecture", &s, &sl));
    CHECK(sl == 5 && memcmp(s, "llama", 5) == 0, "architecture");
    OK(lfl_gguf_get_int(g, "u8", &v)); CHECK(v == 200 && lfl_gguf_find(g, "u8")->type == LFL_GGUF_U8, "u8");
    OK(lfl_gguf_get_int(g, "i16", &v)); CHECK(v == -300, "i16");
    OK(lfl_gguf_get_int(g, "u32", &v)); CHECK(v == 4000000000LL, "u32");
    OK(lfl_gguf_get_int(g, "i64", &v)); CHECK(v == -(1LL << 60), "i64");
    OK(lfl_gguf_get_int(g, "u64", &v)); CHECK(v == 1LL << 62, "u64");
    OK(lfl_gguf_get_float(g, "f32", &f)); CHECK(f == (double)1e-5f, "f32 %.17g", f);
    OK(lfl_gguf_get_float(g, "f64", &f)); CHECK(f == 1e-300, "f64");
    OK(lfl_gguf_get_bool(g, "b", &b)); CHECK(b, "bool");
    CHECK(!lfl_gguf_find(g, "bad") && !lfl_gguf_find(g, "badarr"), "refused keys are not in the file");
    const lfl_gguf_kv *arr = lfl_gguf_find(g, "arr");
    CHECK(arr && arr->arr_type == LFL_GGUF_I32 && arr->arr_n == 3 && lfl_gguf_arr_int(arr, 1) == -2, "i32 array");
    const lfl_gguf_kv *st = lfl_gguf_find(g, "strs");
    CHECK(st && st->arr_n == 2 && lfl_gguf_arr_str(st, 1).len == 3, "string array");
    const lfl_gguf_kv *ne = lfl_gguf_find(g, "nested");
    CHECK(ne && ne->arr_type == LFL_GGUF_ARRAY && ne->arr_n == 2, "array of arrays");
    if (ne && ne->arr_n == 2) {
        const lfl_gguf_kv *a0 = lfl_gguf_arr_sub(ne, 0), *a1 = lfl_gguf_arr_sub(ne, 1);
        CHECK(a0->arr_n == 2 && lfl_gguf_arr_int(a0, 1) == -8 && a1->arr_n == 1 && lfl_gguf_arr_int(a1, 0) == 9,
              "nested values copied");
    }
    const char *names[4] = {"t.f32", "t.f16", "t.q8", "t.q4k"};
    lfl_dtype dts[4] = {LFL_F32, LFL_F16, LFL_Q8_0, LFL_Q4_K};
    float *back = malloc(sizeof(float) * 3 * 256);
    for (int k = 0; k < 4; k++) {
        const lfl_gguf_tensor *t = lfl_gguf_find_tensor(g, names[k]);
        CHECK(t && t->ndim == 2 && t->ne[0] == 256 && t->ne[1] == 3 && t->offset % 32 == 0, "%s layout", names[k]);
        if (!t) continue;
        double worst = 0;
        if (dts[k] == LFL_F32) {
            worst = memcmp(t->data, xv, sizeof(float) * 3 * 256) ? 1 : 0;
        } else if (dts[k] == LFL_F16) {
            const uint16_t *h = t->data;
            for (int i = 0; i < 3 * 256; i++) worst = fmax(worst, fabs(lfl_f16_to_f32(h[i]) - xv[i]) / (fabs(xv[i]) + 1e-3));
            worst = worst > 1e-3 ? 1 : 0;
        } else {
            /* the bytes in the file are lfl_quantize_rows' */
            void *q = malloc(lfl_dtype_nbytes(dts[k], 3 * 256));
            OK(lfl_quantize_rows(dts[k], xv, 3 * 256, q));
            worst = memcmp(q, t->data, lfl_dtype_nbytes(dts[k], 3 * 256)) ? 1 : 0;
            OK(lfl_dequantize_rows(dts[k], t->data, 3 * 256, back));
            double err = 0;
            for (int i = 0; i < 3 * 256; i++) err = fmax(err, fabs(back[i] - xv[i]));
            CHECK(err < (dts[k] == LFL_Q8_0 ? 0.05 : 0.8), "%s error %g", names[k], err);
            free(q);
        }
        CHECK(worst == 0, "%s data", names[k]);
    }
    free(back);
    lfl_gguf_close(g);
    lfl_tensor_release(x);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/lfl_test_gguf_write_XXXXXX");
    if (!mkdtemp(root)) { perror("mkdtemp"); return 2; }
    test_atomic();
    test_writer();
    bool removed;
    lfl_fs_remove(root, &removed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
