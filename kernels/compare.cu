// compare on CUDA: eq ne lt le gt ge of two same-dtype tensors (any plain
// dtype, any strides, broadcast) into a contiguous bool mask. 16-bit floats
// compare as f32, integers exactly, NaN as in C (core/ops/compare.c).
#include "convert.cuh"
#include "strided.cuh"

template <typename T> __device__ static inline T cmp_ld(const T *p) { return *p; }
__device__ static inline float cmp_ld(const f16_t *p) { return lfl_ld(p); }
__device__ static inline float cmp_ld(const bf16_t *p) { return lfl_ld(p); }
__device__ static inline uint8_t cmp_ld(const bool_t *p) { return p->v; }

template <int K, typename A> __device__ static inline uint8_t cmp(A x, A y)
{
    switch (K) {
    case LFL_CMP_EQ: return x == y;
    case LFL_CMP_NE: return x != y;
    case LFL_CMP_LT: return x < y;
    case LFL_CMP_LE: return x <= y;
    case LFL_CMP_GT: return x > y;
    default: return x >= y;
    }
}

template <typename T, int K> __global__ void compare_flat(const T *a, const T *b, uint8_t *o, long long n)
{
    LFL_GRID_LOOP(long long, i, n) o[i] = cmp<K>(cmp_ld(a + i), cmp_ld(b + i));
}

template <typename T, int K, typename I> __global__ void compare_walk(const T *a, const T *b, uint8_t *o, I n, lfl_walk w)
{
    LFL_GRID_LOOP(I, i, n) {
        I off[2];
        lfl_walk_at<2>(w, i, off);
        o[i] = cmp<K>(cmp_ld(a + off[0]), cmp_ld(b + off[1]));
    }
}

template <typename T, int K> static void launch_kind(const void *a, const void *b, uint8_t *o, long long n, const lfl_walk &w)
{
    const int threads = 256;
    unsigned blocks = lfl_walk_blocks(n, threads);
    if (lfl_walk_flat(&w, 0) && lfl_walk_flat(&w, 1))
        LFL_LAUNCH(blocks, threads, 0, compare_flat<T, K>)((const T *)a, (const T *)b, o, n);
    else if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, compare_walk<T, K, int>)((const T *)a, (const T *)b, o, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, compare_walk<T, K, long long>)((const T *)a, (const T *)b, o, n, w);
}

template <typename T> static lfl_status launch(lfl_cmp_kind k, const void *a, const void *b, uint8_t *o, long long n,
                                              const lfl_walk &w)
{
    switch (k) {
    case LFL_CMP_EQ: launch_kind<T, LFL_CMP_EQ>(a, b, o, n, w); break;
    case LFL_CMP_NE: launch_kind<T, LFL_CMP_NE>(a, b, o, n, w); break;
    case LFL_CMP_LT: launch_kind<T, LFL_CMP_LT>(a, b, o, n, w); break;
    case LFL_CMP_LE: launch_kind<T, LFL_CMP_LE>(a, b, o, n, w); break;
    case LFL_CMP_GT: launch_kind<T, LFL_CMP_GT>(a, b, o, n, w); break;
    case LFL_CMP_GE: launch_kind<T, LFL_CMP_GE>(a, b, o, n, w); break;
    default: return lfl_fail(LFL_ERR_ARG, "compare: unknown kind %d", (int)k);
    }
    return LFL_OK;
}

extern "C" lfl_status lfl_cuda_compare(lfl_cmp_kind k, lfl_tensor *a, lfl_tensor *b, lfl_tensor *out)
{
    long long n = lfl_numel(out);
    if (n == 0) return LFL_OK;
    LFL_ASSERT(lfl_is_contiguous(out));
    LFL_TRY(lfl_cuda_use(out->device, "compare"));
    int64_t sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS];
    lfl_walk_bstrides(a, out->ndim, out->shape, sa);
    lfl_walk_bstrides(b, out->ndim, out->shape, sb);
    const int64_t *st[2] = {sa, sb};
    lfl_walk w;
    lfl_walk_init(&w, out->ndim, out->shape, 2, st);
    uint8_t *o = (uint8_t *)lfl_data(out);
    LFL_PLAIN_SWITCH(a->dtype, "compare", T, LFL_TRY(launch<T>(k, lfl_data(a), lfl_data(b), o, n, w)));
    return lfl_cuda_launched("compare");
}
