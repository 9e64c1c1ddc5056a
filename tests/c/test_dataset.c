/* core/data/dataset.h at the C level: the row builder (aliases, unaliasing,
 * incomplete rows), columns over tensors and their validation, the shuffle
 * order against a transcription of lfl.data.shuffle's arithmetic in doubles,
 * the epoch/batch sampler and its position, the four collators on small rows
 * whose batches are written out by hand, and the file round trip (columns
 * over the mapping, corrupt files refused). The Lua suite
 * (tests/lua/test_dataset.lua) checks the collators against the Lua ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/dataset.h"
#include "io/safetensors.h"

static int failed, passed;

#define CHECK(c)                                                                     \
    do {                                                                             \
        if (c) passed++;                                                             \
        else { failed++; printf("FAIL  %s:%d: %s\n", __FILE__, __LINE__, #c); }      \
    } while (0)
#define CHECK_OK(e)                                                                  \
    do {                                                                             \
        lfl_status s_ = (e);                                                         \
        if (s_ == LFL_OK) passed++;                                                  \
        else { failed++; printf("FAIL  %s:%d: %s: %s\n", __FILE__, __LINE__, #e, lfl_last_error()); } \
    } while (0)
/* e fails and its message contains `part` */
#define CHECK_ERR(e, part)                                                           \
    do {                                                                             \
        lfl_status s_ = (e);                                                         \
        if (s_ != LFL_OK && strstr(lfl_last_error(), part)) passed++;                \
        else { failed++; printf("FAIL  %s:%d: %s: expected an error with '%s', got %s\n", __FILE__, __LINE__, #e, \
                                part, s_ ? lfl_last_error() : "success"); }          \
    } while (0)

static void append_list(lfl_ds_builder *b, int col, const int32_t *v, int64_t n)
{
    int32_t *p = lfl_ds_builder_list_append(b, col, n);
    if (!p) { failed++; printf("FAIL  list_append: %s\n", lfl_last_error()); return; }
    memcpy(p, v, sizeof(int32_t) * (size_t)n);
}

/* a row's list as "1,2,3" */
static const char *list_str(const lfl_dataset *ds, const char *col, int64_t r)
{
    static char buf[512];
    const int32_t *p;
    int c = lfl_dataset_find(ds, col);
    if (c < 0) return "<no column>";
    int64_t n = lfl_dataset_list(ds, c, r, &p);
    size_t k = 0;
    buf[0] = 0;
    for (int64_t i = 0; i < n; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? "," : "", p[i]);
    return buf;
}

/* a tensor's values as "1,2,3" (row-major) */
static const char *tensor_str(const lfl_tensor *t)
{
    static char buf[1024];
    size_t k = 0;
    buf[0] = 0;
    if (!t) return "<null>";
    for (int64_t i = 0; i < lfl_numel(t); i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%.0f", i ? "," : "", lfl_get(t, i));
    return buf;
}

static lfl_tensor *tensor_i64(int64_t n, const int64_t *v)
{
    lfl_tensor *t;
    lfl_empty(1, &n, LFL_I64, LFL_CPU, &t);
    memcpy(lfl_data(t), v, sizeof(int64_t) * (size_t)n);
    return t;
}

static lfl_tensor *tensor_i32(int64_t n, const int32_t *v)
{
    lfl_tensor *t;
    lfl_empty(1, &n, LFL_I32, LFL_CPU, &t);
    if (n) memcpy(lfl_data(t), v, sizeof(int32_t) * (size_t)n);
    return t;
}

/* ---- rows for the collators: SFT-like lists with a masked prompt ---- */
static lfl_dataset *sft_rows(void)
{
    lfl_ds_builder *b;
    int ci, cl;
    lfl_ds_builder_new(&b);
    lfl_ds_builder_add_column(b, "input_ids", LFL_DS_LIST, -1, &ci);
    lfl_ds_builder_add_column(b, "labels", LFL_DS_LIST, -1, &cl);
    const int32_t i0[] = {1, 2, 3}, l0[] = {-100, 2, 3}, i1[] = {4, 5}, l1[] = {-100, 5}, i2[] = {6, 7, 8, 9},
                  l2[] = {-100, -100, 8, 9};
    append_list(b, ci, i0, 3); append_list(b, cl, l0, 3); lfl_ds_builder_end_row(b);
    append_list(b, ci, i1, 2); append_list(b, cl, l1, 2); lfl_ds_builder_end_row(b);
    append_list(b, ci, i2, 4); append_list(b, cl, l2, 4); lfl_ds_builder_end_row(b);
    lfl_dataset *ds = NULL;
    CHECK_OK(lfl_ds_builder_finish(b, &ds));
    lfl_ds_builder_free(b);
    return ds;
}

static void test_builder(void)
{
    lfl_ds_builder *b;
    int ci, cl, ct;
    CHECK_OK(lfl_ds_builder_new(&b));
    CHECK_OK(lfl_ds_builder_add_column(b, "input_ids", LFL_DS_LIST, -1, &ci));
    CHECK_OK(lfl_ds_builder_add_column(b, "labels", LFL_DS_LIST, ci, &cl)); /* shares input_ids until broken */
    CHECK_OK(lfl_ds_builder_add_column(b, "tag", LFL_DS_BOOL, -1, &ct));
    CHECK_ERR(lfl_ds_builder_add_column(b, "tag", LFL_DS_BOOL, -1, &ct), "given twice");
    const int32_t a[] = {10, 11, 12}, c[] = {20}, d[] = {-100};
    append_list(b, ci, a, 3);
    CHECK(lfl_ds_builder_list_append(b, ci, 1) == NULL && strstr(lfl_last_error(), "two lists"));
    CHECK(lfl_ds_builder_list_append(b, cl, 1) == NULL && strstr(lfl_last_error(), "no list appends"));
    CHECK_ERR(lfl_ds_builder_end_row(b), "no value for column 'tag'");
    CHECK_OK(lfl_ds_builder_scalar_append(b, ct, 1));
    CHECK_OK(lfl_ds_builder_end_row(b));
    /* row 2: labels differ from input_ids -> labels gets its own copy of row 1 */
    append_list(b, ci, c, 1);
    CHECK_OK(lfl_ds_builder_unalias(b, cl));
    append_list(b, cl, d, 1);
    CHECK_OK(lfl_ds_builder_scalar_append(b, ct, 0));
    CHECK_OK(lfl_ds_builder_end_row(b));
    /* an empty list is a row too */
    append_list(b, ci, a, 0);
    append_list(b, cl, a, 0);
    CHECK_OK(lfl_ds_builder_scalar_append(b, ct, 1));
    CHECK_OK(lfl_ds_builder_end_row(b));
    append_list(b, ci, a, 1);
    CHECK_ERR(lfl_ds_builder_finish(b, &(lfl_dataset *){NULL}), "not finished");
    lfl_ds_builder_free(b);

    /* the same rows again, finished */
    CHECK_OK(lfl_ds_builder_new(&b));
    lfl_ds_builder_add_column(b, "input_ids", LFL_DS_LIST, -1, &ci);
    lfl_ds_builder_add_column(b, "labels", LFL_DS_LIST, ci, &cl);
    lfl_ds_builder_add_column(b, "tag", LFL_DS_BOOL, -1, &ct);
    append_list(b, ci, a, 3); lfl_ds_builder_scalar_append(b, ct, 1); lfl_ds_builder_end_row(b);
    append_list(b, ci, c, 1); lfl_ds_builder_scalar_append(b, ct, 0); lfl_ds_builder_end_row(b);
    lfl_dataset *ds = NULL;
    CHECK_OK(lfl_ds_builder_finish(b, &ds));
    lfl_ds_builder_free(b);
    CHECK(ds->n == 2 && ds->ncols == 3);
    CHECK(strcmp(list_str(ds, "labels", 0), "10,11,12") == 0);
    CHECK(strcmp(list_str(ds, "labels", 1), "20") == 0);
    int lc = lfl_dataset_find(ds, "labels");
    CHECK(ds->cols[lc].alias_of == lfl_dataset_find(ds, "input_ids"));
    CHECK(lfl_dataset_scalar(ds, lfl_dataset_find(ds, "tag"), 0) == 1);
    CHECK(lfl_dataset_num_tokens(ds) == 4);
    lfl_dataset_release(ds);
}

static void test_columns(void)
{
    lfl_dataset *ds;
    CHECK_OK(lfl_dataset_new(3, &ds));
    const int32_t v[] = {1, 2, 3, 4, 5};
    const int64_t good[] = {0, 2, 2, 5}, short_o[] = {0, 2, 5}, down[] = {0, 3, 2, 5}, end[] = {0, 1, 2, 4},
                  start[] = {1, 2, 3, 5};
    lfl_tensor *tv = tensor_i32(5, v), *t;
    CHECK_ERR(lfl_dataset_add_list(ds, "x", tv, t = tensor_i64(3, short_o)), "3 offsets for 3 rows");
    lfl_tensor_release(t);
    CHECK_ERR(lfl_dataset_add_list(ds, "x", tv, t = tensor_i64(4, down)), "offsets decrease at row 1");
    lfl_tensor_release(t);
    CHECK_ERR(lfl_dataset_add_list(ds, "x", tv, t = tensor_i64(4, end)), "offsets end at 4 but there are 5 values");
    lfl_tensor_release(t);
    CHECK_ERR(lfl_dataset_add_list(ds, "x", tv, t = tensor_i64(4, start)), "offsets start at 1");
    lfl_tensor_release(t);
    lfl_tensor *to = tensor_i64(4, good), *tf;
    int64_t five = 5;
    lfl_zeros(1, &five, LFL_F32, LFL_CPU, &tf);
    CHECK_ERR(lfl_dataset_add_list(ds, "x", tf, to), "column 'x': values must be i32 or i64 (got f32)");
    lfl_tensor_release(tf);
    CHECK_OK(lfl_dataset_add_list(ds, "input_ids", tv, to));
    CHECK(ds->cols[0].values == tv); /* no copy */
    CHECK_ERR(lfl_dataset_add_list(ds, "input_ids", tv, to), "given twice");
    /* i64 values are narrowed into a copy; out of range is an error */
    const int64_t v64[] = {7, 8, 9, 10, 11}, big[] = {1, 2, 3, 4, 5000000000LL};
    CHECK_OK(lfl_dataset_add_list(ds, "labels", t = tensor_i64(5, v64), to));
    lfl_tensor_release(t);
    CHECK(ds->cols[1].values->dtype == LFL_I32);
    CHECK(strcmp(list_str(ds, "labels", 2), "9,10,11") == 0);
    CHECK(strcmp(list_str(ds, "input_ids", 1), "") == 0);
    CHECK_ERR(lfl_dataset_add_list(ds, "big", t = tensor_i64(5, big), to), "does not fit in i32");
    lfl_tensor_release(t);
    /* scalars */
    const int64_t tags[] = {1, 0, 1}, bad[] = {1, 2, 0}, nums[] = {5, -6, 7};
    CHECK_OK(lfl_dataset_add_scalar(ds, "kto_tag", LFL_DS_BOOL, t = tensor_i64(3, tags)));
    lfl_tensor_release(t);
    CHECK_ERR(lfl_dataset_add_scalar(ds, "flag", LFL_DS_BOOL, t = tensor_i64(3, bad)), "row 1 holds 2");
    lfl_tensor_release(t);
    CHECK_ERR(lfl_dataset_add_scalar(ds, "score", LFL_DS_NUMBER, t = tensor_i64(2, nums)), "2 values for 3 rows");
    lfl_tensor_release(t);
    CHECK_OK(lfl_dataset_add_scalar(ds, "score", LFL_DS_NUMBER, t = tensor_i64(3, nums)));
    lfl_tensor_release(t);
    CHECK(lfl_dataset_scalar(ds, lfl_dataset_find(ds, "score"), 1) == -6);
    /* aliases */
    CHECK_ERR(lfl_dataset_add_alias(ds, "kl", "nope"), "no column 'nope'");
    CHECK_ERR(lfl_dataset_add_alias(ds, "kl", "score"), "is a number, not a list");
    CHECK_OK(lfl_dataset_add_alias(ds, "chosen_input_ids", "input_ids"));
    CHECK(strcmp(list_str(ds, "chosen_input_ids", 2), "3,4,5") == 0);
    CHECK(lfl_dataset_num_tokens(ds) == 5); /* input_ids once: the alias is not counted again */
    lfl_tensor_release(tv);
    lfl_tensor_release(to);
    lfl_dataset_release(ds);
}

/* lfl.data.shuffle as Lua computes it: doubles, floored modulo */
static void lua_shuffle(int64_t n, double seed, int64_t *perm)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i + 1;
    double m = 2147483647.0, s = seed - floor(seed / m) * m;
    if (s <= 0) s += 2147483646.0;
    for (int64_t i = n; i >= 2; i--) {
        s = fmod(s * 48271.0, m);
        int64_t j = (int64_t)fmod(s, (double)i) + 1;
        int64_t x = perm[i - 1];
        perm[i - 1] = perm[j - 1];
        perm[j - 1] = x;
    }
}

static void test_order(void)
{
    const int64_t seeds[] = {42, 0, 1, -5, 2147483647, 2147483648LL, 123456789};
    int64_t n = 1000, *a = malloc(sizeof(int64_t) * (size_t)n), *b = malloc(sizeof(int64_t) * (size_t)n);
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        lfl_dataset_order(n, seeds[k], a);
        lua_shuffle(n, (double)seeds[k], b);
        int same = 1, seen = 0;
        char *hit = calloc((size_t)n, 1);
        for (int64_t i = 0; i < n; i++) {
            same &= a[i] + 1 == b[i];
            if (a[i] >= 0 && a[i] < n && !hit[a[i]]) { hit[a[i]] = 1; seen++; }
        }
        free(hit);
        CHECK(same);
        CHECK(seen == n);
    }
    int64_t five[5];
    lfl_dataset_order(5, 42, five); /* lfl.data.shuffle({1,2,3,4,5}, 42) = {1,2,5,4,3} */
    CHECK(five[0] == 0 && five[1] == 1 && five[2] == 4 && five[3] == 3 && five[4] == 2);
    free(a);
    free(b);
}

static void test_sampler(void)
{
    lfl_ds_sampler *s;
    CHECK_ERR(lfl_ds_sampler_new(10, 0, 1, true, &s), "batch_size must be at least 1");
    CHECK_OK(lfl_ds_sampler_new(10, 4, 7, true, &s));
    CHECK(lfl_ds_sampler_batches_per_epoch(s) == 3);
    int64_t want[10], got[40], e, b, k = 0;
    const int64_t *idx;
    int64_t m;
    for (int i = 0; i < 6; i++) { /* two epochs */
        CHECK_OK(lfl_ds_sampler_next(s, &idx, &m));
        CHECK(m == (i % 3 == 2 ? 2 : 4));
        memcpy(got + k, idx, sizeof(int64_t) * (size_t)m);
        k += m;
        lfl_ds_sampler_position(s, &e, &b);
        CHECK(e == i / 3 && b == i % 3 + 1);
    }
    lfl_dataset_order(10, 7, want);
    CHECK(memcmp(got, want, sizeof want) == 0);
    lfl_dataset_order(10, 8, want); /* epoch 1: seed + 1 */
    CHECK(memcmp(got + 10, want, sizeof want) == 0);
    /* resume inside epoch 1 after its first batch: the same second batch */
    CHECK_ERR(lfl_ds_sampler_seek(s, 1, 4), "outside 0..3");
    CHECK_OK(lfl_ds_sampler_seek(s, 1, 1));
    CHECK_OK(lfl_ds_sampler_next(s, &idx, &m));
    CHECK(m == 4 && memcmp(idx, got + 14, sizeof(int64_t) * 4) == 0);
    /* at the end of an epoch, the next batch opens the following one */
    CHECK_OK(lfl_ds_sampler_seek(s, 4, 3));
    CHECK_OK(lfl_ds_sampler_next(s, &idx, &m));
    lfl_ds_sampler_position(s, &e, &b);
    CHECK(e == 5 && b == 1);
    lfl_dataset_order(10, 12, want);
    CHECK(memcmp(idx, want, sizeof(int64_t) * 4) == 0);
    lfl_ds_sampler_free(s);
    /* without shuffling: 0..n-1 every epoch */
    CHECK_OK(lfl_ds_sampler_new(5, 5, 7, false, &s));
    lfl_ds_sampler_next(s, &idx, &m);
    lfl_ds_sampler_next(s, &idx, &m);
    CHECK(m == 5 && idx[0] == 0 && idx[4] == 4);
    lfl_ds_sampler_free(s);
    CHECK_OK(lfl_ds_sampler_new(0, 2, 7, true, &s));
    CHECK_OK(lfl_ds_sampler_next(s, &idx, &m));
    CHECK(m == 0);
    lfl_ds_sampler_free(s);
}

static void test_collate(void)
{
    lfl_dataset *ds = sft_rows();
    lfl_ds_batch bt;
    int64_t idx[] = {2, 0};
    CHECK_OK(lfl_dataset_collate(ds, idx, 2, LFL_DS_PACK, NULL, &bt));
    CHECK(strcmp(tensor_str(bt.input_ids), "6,7,8,9,1,2,3") == 0);
    CHECK(strcmp(tensor_str(bt.labels), "-100,8,9,-100,2,3,-100") == 0);
    CHECK(strcmp(tensor_str(bt.position_ids), "0,1,2,3,0,1,2") == 0);
    CHECK(strcmp(tensor_str(bt.segments), "1,1,1,1,2,2,2") == 0);
    CHECK(bt.input_ids->ndim == 2 && bt.input_ids->shape[0] == 1 && bt.input_ids->shape[1] == 7);
    CHECK(bt.ntokens == 7 && bt.nlabels == 4 && bt.nexamples == 2);
    lfl_ds_batch_clear(&bt);
    CHECK_OK(lfl_dataset_collate(ds, idx, 1, LFL_DS_PACK, NULL, &bt));
    CHECK(bt.segments == NULL); /* one example: no segment ids */
    lfl_ds_batch_clear(&bt);
    int64_t bad[] = {0, 3};
    CHECK_ERR(lfl_dataset_collate(ds, bad, 2, LFL_DS_PACK, NULL, &bt), "entry 1 of the batch is row 3");
    CHECK(bt.input_ids == NULL);
    CHECK_ERR(lfl_dataset_collate(ds, idx, 0, LFL_DS_PACK, NULL, &bt), "empty batch");
    CHECK_ERR(lfl_dataset_collate(ds, idx, 2, LFL_DS_STACK_PACKED, NULL, &bt), "no column 'position_ids'");
    CHECK_ERR(lfl_dataset_collate(ds, idx, 2, LFL_DS_KTO, NULL, &bt), "no column 'kl_input_ids'");
    lfl_dataset_release(ds);

    /* pairwise: the layout of tests/lua/test_preprocess_goldens.lua */
    lfl_ds_builder *b;
    int c[4];
    const char *names[4] = {"chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"};
    lfl_ds_builder_new(&b);
    for (int i = 0; i < 4; i++) lfl_ds_builder_add_column(b, names[i], LFL_DS_LIST, -1, &c[i]);
    const int32_t r0[4][4] = {{1, 2, 3}, {-100, 2, 3}, {1, 2}, {-100, 9}}, r1[4][4] = {{4, 5}, {-100, 5}, {4, 6, 7, 8}, {-100, -100, 7, 8}};
    const int64_t n0[4] = {3, 3, 2, 2}, n1[4] = {2, 2, 4, 4};
    for (int i = 0; i < 4; i++) append_list(b, c[i], r0[i], n0[i]);
    lfl_ds_builder_end_row(b);
    for (int i = 0; i < 4; i++) append_list(b, c[i], r1[i], n1[i]);
    lfl_ds_builder_end_row(b);
    CHECK_OK(lfl_ds_builder_finish(b, &ds));
    lfl_ds_builder_free(b);
    int64_t both[] = {0, 1};
    lfl_ds_collate_opts o = {0, 0};
    CHECK_OK(lfl_dataset_collate(ds, both, 2, LFL_DS_PAIRWISE, &o, &bt));
    CHECK(bt.input_ids->shape[0] == 4 && bt.input_ids->shape[1] == 4);
    CHECK(strcmp(tensor_str(bt.input_ids), "1,2,3,0,4,5,0,0,1,2,0,0,4,6,7,8") == 0);
    CHECK(strcmp(tensor_str(bt.labels), "2,3,-100,-100,5,-100,-100,-100,9,-100,-100,-100,-100,7,8,-100") == 0);
    CHECK(strcmp(tensor_str(bt.attention_mask), "1,1,1,0,1,1,0,0,1,1,0,0,1,1,1,1") == 0);
    CHECK(bt.n == 2 && bt.nexamples == 2 && bt.ntokens == 16 && bt.nlabels == 6);
    lfl_ds_batch_clear(&bt);
    o.pad_id = 77;
    o.pad_to_multiple_of = 3;
    CHECK_OK(lfl_dataset_collate(ds, both, 1, LFL_DS_PAIRWISE, &o, &bt));
    CHECK(strcmp(tensor_str(bt.input_ids), "1,2,3,1,2,77") == 0 && bt.ntokens == 6);
    lfl_ds_batch_clear(&bt);
    lfl_dataset_release(ds);

    /* kto: target and KL rows padded separately, tags from the bool column */
    int k[5];
    const char *kn[4] = {"input_ids", "labels", "kl_input_ids", "kl_labels"};
    lfl_ds_builder_new(&b);
    for (int i = 0; i < 4; i++) lfl_ds_builder_add_column(b, kn[i], LFL_DS_LIST, -1, &k[i]);
    lfl_ds_builder_add_column(b, "kto_tag", LFL_DS_BOOL, -1, &k[4]);
    const int32_t k0[4][3] = {{1, 2, 3}, {-100, 2, 3}, {1, 9}, {-100, 9}}, k1[4][3] = {{4}, {-100}, {4, 5, 6}, {-100, 5, 6}};
    const int64_t m0[4] = {3, 3, 2, 2}, m1[4] = {1, 1, 3, 3};
    for (int i = 0; i < 4; i++) append_list(b, k[i], k0[i], m0[i]);
    lfl_ds_builder_scalar_append(b, k[4], 1);
    lfl_ds_builder_end_row(b);
    for (int i = 0; i < 4; i++) append_list(b, k[i], k1[i], m1[i]);
    lfl_ds_builder_scalar_append(b, k[4], 0);
    lfl_ds_builder_end_row(b);
    CHECK_OK(lfl_ds_builder_finish(b, &ds));
    lfl_ds_builder_free(b);
    o.pad_id = 0;
    o.pad_to_multiple_of = 0;
    CHECK_OK(lfl_dataset_collate(ds, both, 2, LFL_DS_KTO, &o, &bt));
    CHECK(strcmp(tensor_str(bt.input_ids), "1,2,3,4,0,0") == 0);
    CHECK(strcmp(tensor_str(bt.labels), "2,3,-100,-100,-100,-100") == 0);
    CHECK(strcmp(tensor_str(bt.kl_input_ids), "1,9,0,4,5,6") == 0);
    CHECK(strcmp(tensor_str(bt.kl_labels), "9,-100,-100,5,6,-100") == 0);
    CHECK(strcmp(tensor_str(bt.kl_attention_mask), "1,1,0,1,1,1") == 0);
    CHECK(strcmp(tensor_str(bt.kto_tags), "1,0") == 0 && bt.kto_tags->ndim == 1);
    CHECK(bt.ntokens == 6 && bt.nlabels == 2 && bt.nexamples == 2);
    lfl_ds_batch_clear(&bt);
    lfl_dataset_release(ds);

    /* stack_packed: rows of one length with segments; padding (segment 0) and
     * segment ends predict nothing */
    int p[4];
    const char *pn[4] = {"input_ids", "labels", "position_ids", "segments"};
    lfl_ds_builder_new(&b);
    for (int i = 0; i < 4; i++) lfl_ds_builder_add_column(b, pn[i], LFL_DS_LIST, -1, &p[i]);
    const int32_t q0[4][5] = {{1, 2, 3, 4, 0}, {-100, 2, -100, 4, -100}, {0, 1, 0, 1, 0}, {1, 1, 2, 2, 0}},
                  q1[4][5] = {{5, 6, 7, 8, 9}, {-100, 6, 7, 8, 9}, {0, 1, 2, 3, 4}, {1, 1, 1, 1, 1}};
    for (int i = 0; i < 4; i++) append_list(b, p[i], q0[i], 5);
    lfl_ds_builder_end_row(b);
    for (int i = 0; i < 4; i++) append_list(b, p[i], q1[i], 5);
    lfl_ds_builder_end_row(b);
    CHECK_OK(lfl_ds_builder_finish(b, &ds));
    lfl_ds_builder_free(b);
    CHECK_OK(lfl_dataset_collate(ds, both, 2, LFL_DS_STACK_PACKED, NULL, &bt));
    CHECK(strcmp(tensor_str(bt.labels), "2,-100,4,-100,-100,6,7,8,9,-100") == 0);
    CHECK(strcmp(tensor_str(bt.segments), "1,1,2,2,0,1,1,1,1,1") == 0);
    CHECK(bt.ntokens == 10 && bt.nlabels == 6 && bt.nexamples == 2);
    lfl_ds_batch_clear(&bt);
    lfl_dataset_release(ds);
}

static void test_file(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/lfl_test_dataset_%d.safetensors", (int)getpid());
    lfl_dataset *a = sft_rows(), *b;
    lfl_ds_builder *bl;
    int ci, cl, ct;
    lfl_ds_builder_new(&bl);
    lfl_ds_builder_add_column(bl, "input_ids", LFL_DS_LIST, -1, &ci);
    lfl_ds_builder_add_column(bl, "labels", LFL_DS_LIST, ci, &cl);
    lfl_ds_builder_add_column(bl, "kto_tag", LFL_DS_BOOL, -1, &ct);
    const int32_t odd[] = {1, 2, 3}; /* an odd count of i32 values */
    append_list(bl, ci, odd, 3); lfl_ds_builder_scalar_append(bl, ct, 1); lfl_ds_builder_end_row(bl);
    CHECK_OK(lfl_ds_builder_finish(bl, &b));
    lfl_ds_builder_free(bl);
    const char *names[2] = {"train", "eval"};
    lfl_dataset *sets[2] = {b, a};
    const char *mk[1] = {"note"}, *mv[1] = {"hello"}, *rk[1] = {"lfl_dataset"};
    CHECK_ERR(lfl_dataset_save(path, 1, names, sets, 1, rk, mv), "dataset's own");
    CHECK_OK(lfl_dataset_save(path, 2, names, sets, 1, mk, mv));
    lfl_ds_file *f = NULL;
    CHECK_OK(lfl_dataset_load(path, &f));
    if (f) {
        CHECK(f->nsplits == 2 && strcmp(f->names[0], "train") == 0 && strcmp(f->names[1], "eval") == 0);
        int note = -1;
        for (int i = 0; i < f->n_meta; i++) if (strcmp(f->meta_keys[i], "note") == 0) note = i;
        CHECK(note >= 0 && strcmp(f->meta_values[note], "hello") == 0);
        lfl_dataset *e = lfl_dataset_retain(f->sets[1]), *t = f->sets[0];
        CHECK(t->n == 1 && strcmp(list_str(t, "labels", 0), "1,2,3") == 0);
        CHECK(t->cols[lfl_dataset_find(t, "labels")].alias_of >= 0);
        CHECK(t->cols[lfl_dataset_find(t, "kto_tag")].kind == LFL_DS_BOOL);
        for (int c = 0; c < e->ncols; c++) { /* columns over the mapping, aligned */
            CHECK(e->cols[c].values->storage->kind == LFL_STORAGE_MMAP);
            CHECK((uintptr_t)e->cols[c].o % 8 == 0 && (uintptr_t)e->cols[c].v % 4 == 0);
        }
        lfl_ds_file_free(f);
        /* the dataset outlives the file handle */
        CHECK(e->n == 3 && strcmp(list_str(e, "labels", 2), "-100,-100,8,9") == 0);
        lfl_dataset_release(e);
    }
    /* a truncated file and a plain safetensors file are errors, not crashes */
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fclose(fp);
    CHECK(truncate(path, len - 4) == 0);
    f = NULL;
    CHECK_ERR(lfl_dataset_load(path, &f), path);
    lfl_tensor *x[2] = {tensor_i64(3, (const int64_t[]){0, 2, 1}), tensor_i32(1, (const int32_t[]){5})};
    const char *xn[2] = {"ids.offsets", "ids.values"};
    CHECK_OK(lfl_st_save(path, 1, xn, x, 0, NULL, NULL));
    CHECK_ERR(lfl_dataset_load(path, &f), "not an lfl dataset");
    /* a dataset file whose offsets do not fit its values */
    const char *dk[1] = {"lfl_dataset"};
    const char *dv[1] = {"{\"version\":1,\"splits\":[{\"name\":\"\",\"n\":2,\"columns\":[{\"name\":\"ids\",\"kind\":\"list\"}]}]}"};
    CHECK_OK(lfl_st_save(path, 2, xn, x, 1, dk, dv));
    CHECK_ERR(lfl_dataset_load(path, &f), "column 'ids': offsets decrease at row 1");
    const char *dv2[1] = {"{\"version\":1,\"splits\":[{\"name\":\"\",\"n\":2,\"columns\":[{\"name\":\"idz\",\"kind\":\"list\"}]}]}"};
    CHECK_OK(lfl_st_save(path, 2, xn, x, 1, dk, dv2));
    CHECK_ERR(lfl_dataset_load(path, &f), "the file has no tensor 'idz.values'");
    const char *dv3[1] = {"{\"version\":9,\"splits\":[]}"};
    CHECK_OK(lfl_st_save(path, 2, xn, x, 1, dk, dv3));
    CHECK_ERR(lfl_dataset_load(path, &f), "newer than this lfl reads");
    lfl_tensor_release(x[0]);
    lfl_tensor_release(x[1]);
    unlink(path);
    lfl_dataset_release(a);
    lfl_dataset_release(b);
}

int main(void)
{
    test_builder();
    test_columns();
    test_order();
    test_sampler();
    test_collate();
    test_file();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
