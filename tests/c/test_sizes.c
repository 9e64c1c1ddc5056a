/* Size arithmetic of core/tensor.c and tensor_view.c: shapes whose element or
 * byte count would wrap (a [2^32, 2^32] tensor, a view whose product wraps
 * back to the tensor's size, a broadcast past INT64_MAX, a storage past
 * SIZE_MAX) are errors naming the shape, never a small allocation that the
 * next write runs past; the limits themselves (INT64_MAX elements, the last
 * byte count that fits) are accepted by the checks. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "tensor.h"

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
/* expr fails with LFL_ERR_ARG and a message holding `want` */
#define FAILS(expr, want)                                                                           \
    do {                                                                                            \
        lfl_clear_error();                                                                          \
        lfl_status s_ = (expr);                                                                     \
        CHECK(s_ == LFL_ERR_ARG && strstr(lfl_last_error(), want), "%s: status %d, message '%s', " \
              "wanted '%s'", #expr, (int)s_, lfl_last_error(), want);                               \
    } while (0)

#define P32 ((int64_t)1 << 32)

static void test_creation(void)
{
    lfl_tensor *t = NULL;
    int64_t sq[2] = {P32, P32};
    /* 2^64 elements used to wrap to 0: an empty storage and a shape of 2^64 */
    FAILS(lfl_zeros(2, sq, LFL_F32, LFL_CPU, &t), "tensor: shape [4294967296,4294967296]: element count overflows");
    CHECK(t == NULL, "no tensor on failure");
    FAILS(lfl_empty(2, sq, LFL_U8, LFL_CPU, &t), "element count overflows");
    FAILS(lfl_full(2, sq, 1.0, LFL_F64, LFL_CPU, &t), "element count overflows");
    /* wraps to a small positive count rather than 0 */
    int64_t wrap[3] = {P32, P32, 3};
    FAILS(lfl_empty(3, wrap, LFL_F32, LFL_CPU, &t), "[4294967296,4294967296,3]: element count overflows");
    /* fits in int64 elements but not in bytes */
    int64_t big[1] = {(int64_t)1 << 62};
    FAILS(lfl_empty(1, big, LFL_F32, LFL_CPU, &t), "shape [4611686018427387904] of f32: byte count overflows");
    int64_t neg[2] = {3, -2};
    FAILS(lfl_zeros(2, neg, LFL_F32, LFL_CPU, &t), "negative size -2 in dim 2");
    /* an empty dim does not excuse the others: strides come from their product */
    int64_t zbig[3] = {0, P32, P32};
    FAILS(lfl_empty(3, zbig, LFL_F32, LFL_CPU, &t), "element count overflows");
    int64_t zok[3] = {0, 5, 7};
    OK(lfl_zeros(3, zok, LFL_F32, LFL_CPU, &t));
    if (t) { CHECK(lfl_numel(t) == 0, "numel of [0,5,7]"); lfl_tensor_release(t); t = NULL; }
    FAILS(lfl_eye(P32, P32, LFL_F32, &t), "element count overflows");
    FAILS(lfl_arange(0, 1e300, 1, LFL_F32, &t), "arange: [0, 1e+300) in steps of 1 has too many elements");
    FAILS(lfl_arange(0, 1.0 / 0.0, 1, LFL_F32, &t), "too many elements");
    /* storage itself: a byte count that the 64-byte rounding would wrap */
    CHECK(lfl_storage_new(SIZE_MAX - 10, LFL_CPU) == NULL, "storage of SIZE_MAX - 10 bytes");
}

static void test_helpers(void)
{
    int64_t n = -1;
    size_t nb = 0;
    int64_t max1[1] = {INT64_MAX};
    OK(lfl_shape_numel("t", 1, max1, &n));
    CHECK(n == INT64_MAX, "numel of [INT64_MAX] = %lld", (long long)n);
    OK(lfl_shape_nbytes("t", 1, max1, LFL_U8, &nb));
    CHECK(nb == (size_t)INT64_MAX, "bytes of [INT64_MAX] u8");
    FAILS(lfl_shape_nbytes("t", 1, max1, LFL_F32, &nb), "byte count overflows");
    int64_t edge[2] = {((int64_t)1 << 31) - 1, P32}; /* 2^63 - 2^32: fits */
    OK(lfl_shape_numel("t", 2, edge, &n));
    CHECK(n == INT64_MAX - (P32 - 1), "numel of [2^31-1, 2^32]");
    int64_t past[2] = {(int64_t)1 << 31, P32}; /* exactly 2^63: one past */
    FAILS(lfl_shape_numel("t", 2, past, &n), "t: shape [2147483648,4294967296]: element count overflows");
    int64_t none[1] = {0};
    OK(lfl_shape_numel("t", 0, none, &n));
    CHECK(n == 1, "a 0-dim shape has one element");
    FAILS(lfl_shape_numel("t", 9, none, &n), "9 dims (at most 8)");
    /* a block type: elements must fill whole blocks, and bytes are per block */
    int64_t q[1] = {64};
    OK(lfl_shape_nbytes("t", 1, q, LFL_Q8_0, &nb));
    CHECK(nb == 2 * lfl_dtype_size(LFL_Q8_0), "two q8_0 blocks: %zu bytes", nb);
    int64_t q1[1] = {33};
    FAILS(lfl_shape_nbytes("t", 1, q1, LFL_Q8_0, &nb), "33 elements is not a multiple of the q8_0 block");
}

static void test_views(void)
{
    lfl_tensor *t = NULL, *v = NULL;
    int64_t four[1] = {4};
    OK(lfl_zeros(1, four, LFL_F32, LFL_CPU, &t));
    if (!t) return;
    /* (2^62 + 1) * 4 wraps to 4 == numel: the old check accepted a view
     * reaching 2^64 elements past a 16-byte storage */
    int64_t wraps[2] = {((int64_t)1 << 62) + 1, 4};
    FAILS(lfl_view(t, 2, wraps, &v), "element count overflows");
    CHECK(v == NULL, "no view on failure");
    FAILS(lfl_reshape(t, 2, wraps, &v), "element count overflows");
    int64_t infer[3] = {-1, P32, P32};
    FAILS(lfl_view(t, 3, infer, &v), "element count overflows");
    int64_t ok[2] = {2, -1};
    OK(lfl_view(t, 2, ok, &v));
    if (v) { CHECK(v->shape[1] == 2, "inferred dim"); lfl_tensor_release(v); v = NULL; }
    /* a broadcast view whose logical size overflows */
    int64_t one[2] = {1, 1}, wide[2] = {P32, P32};
    lfl_tensor *s = NULL;
    OK(lfl_zeros(2, one, LFL_F32, LFL_CPU, &s));
    if (s) {
        FAILS(lfl_expand(s, 2, wide, &v), "expand: shape [4294967296,4294967296]: element count overflows");
        int64_t negw[2] = {3, -5};
        FAILS(lfl_expand(s, 2, negw, &v), "negative size -5");
        int64_t fine[2] = {P32, 2};
        OK(lfl_expand(s, 2, fine, &v));
        if (v) { CHECK(lfl_numel(v) == 2 * P32, "expanded numel"); lfl_tensor_release(v); v = NULL; }
        lfl_tensor_release(s);
    }
    lfl_tensor_release(t);
}

static void test_from_storage(void)
{
    lfl_storage *s = lfl_storage_new(64, LFL_CPU);
    CHECK(s != NULL, "64-byte storage");
    if (!s) return;
    lfl_tensor *t = NULL;
    int64_t sh[2] = {4, 4};
    OK(lfl_tensor_from_storage("loader", s, 0, 2, sh, LFL_F32, &t));
    lfl_tensor_release(t);
    t = NULL;
    /* one element too many, an offset past the end, a wrapping shape */
    int64_t sh17[1] = {17};
    FAILS(lfl_tensor_from_storage("loader", s, 0, 1, sh17, LFL_F32, &t), "loader: shape [17] of f32 needs 68 bytes");
    FAILS(lfl_tensor_from_storage("loader", s, 8, 2, sh, LFL_F32, &t), "needs 64 bytes from byte 8, but the storage holds 64");
    FAILS(lfl_tensor_from_storage("loader", s, 65, 0, sh, LFL_F32, &t), "from byte 65");
    int64_t w[2] = {((int64_t)1 << 62) + 1, 4};
    FAILS(lfl_tensor_from_storage("loader", s, 0, 2, w, LFL_U8, &t), "element count overflows");
    CHECK(t == NULL, "no tensor on failure");
    lfl_storage_release(s);
}

int main(void)
{
    test_creation();
    test_helpers();
    test_views();
    test_from_storage();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
