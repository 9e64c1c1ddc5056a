// GGUF block dequantization on CUDA: the block_dequant entry of the dispatch
// table (lfl_cast of a device block tensor to f32) and
// lfl_cuda_block_dequant_rows (blocks.cuh) for the GEMM kernels. One thread
// per element: it decodes its block's scales (the warp reads the same few
// bytes, one transaction) and its own bits, so the writes are coalesced and a
// range may start anywhere. Each element is core/quant/ggml.c's expression
// with the same operand order, every product and sum rounded on its own
// (__fmul_rn / __fadd_rn: nvcc would fuse a*b+c, the CPU file is compiled
// without contraction), so the f32 values equal the CPU's bit for bit.
#include "blocks.cuh"

__device__ static inline float blk_h2f(const uint8_t *p) { return lfl_dev_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j of a K block
__device__ static inline void blk_scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

// element j of block b (of kind DT)
template <int DT> __device__ static inline float blk_elem(const uint8_t *b, int j);

template <> __device__ inline float blk_elem<LFL_Q8_0>(const uint8_t *b, int j)
{
    return __fmul_rn((float)(int8_t)b[2 + j], blk_h2f(b));
}

template <> __device__ inline float blk_elem<LFL_Q4_0>(const uint8_t *b, int j)
{
    const uint8_t *qs = b + 2;
    int v = j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
    return __fmul_rn((float)(v - 8), blk_h2f(b));
}

template <> __device__ inline float blk_elem<LFL_Q4_1>(const uint8_t *b, int j)
{
    const uint8_t *qs = b + 4;
    int v = j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
    return __fadd_rn(__fmul_rn((float)v, blk_h2f(b)), blk_h2f(b + 2));
}

// the 5-bit value of element j of a Q5_0 / Q5_1 block (qh: its 32 high bits)
__device__ static inline int blk_q5(const uint8_t *qs, uint32_t qh, int j)
{
    if (j < 16) return (qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
    return (qs[j - 16] >> 4) | (int)((qh >> (j - 16 + 12)) & 0x10);
}

template <> __device__ inline float blk_elem<LFL_Q5_0>(const uint8_t *b, int j)
{
    uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
    return __fmul_rn((float)(blk_q5(b + 6, qh, j) - 16), blk_h2f(b));
}

template <> __device__ inline float blk_elem<LFL_Q5_1>(const uint8_t *b, int j)
{
    uint32_t qh = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) | ((uint32_t)b[7] << 24);
    return __fadd_rn(__fmul_rn((float)blk_q5(b + 8, qh, j), blk_h2f(b)), blk_h2f(b + 2));
}

// Q4_K / Q5_K: 4 chunks of 64, each two sub-blocks of 32 (low nibbles, then
// high nibbles of the chunk's 32 bytes) with their own 6-bit scale and min
template <> __device__ inline float blk_elem<LFL_Q4_K>(const uint8_t *b, int j)
{
    int c = j >> 6, hi = (j >> 5) & 1, l = j & 31, sc, m;
    blk_scale_min_k4(2 * c + hi, b + 4, &sc, &m);
    uint8_t q = b[16 + 32 * c + l];
    int v = hi ? q >> 4 : q & 0xF;
    float d = __fmul_rn(blk_h2f(b), (float)sc), mn = __fmul_rn(blk_h2f(b + 2), (float)m);
    return __fadd_rn(__fmul_rn(d, (float)v), -mn);
}

template <> __device__ inline float blk_elem<LFL_Q5_K>(const uint8_t *b, int j)
{
    int c = j >> 6, hi = (j >> 5) & 1, l = j & 31, sc, m;
    blk_scale_min_k4(2 * c + hi, b + 4, &sc, &m);
    uint8_t q = b[48 + 32 * c + l], h = b[16 + l];
    int u = (hi ? 2 : 1) << (2 * c);
    int v = (hi ? q >> 4 : q & 0xF) + (h & u ? 16 : 0);
    float d = __fmul_rn(blk_h2f(b), (float)sc), mn = __fmul_rn(blk_h2f(b + 2), (float)m);
    return __fadd_rn(__fmul_rn(d, (float)v), -mn);
}

// Q6_K: two halves of 128, each four groups of 32 sharing ql / qh bytes
template <> __device__ inline float blk_elem<LFL_Q6_K>(const uint8_t *b, int j)
{
    int n = j >> 7, k = j & 127, g = k >> 5, l = k & 31;
    const uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
    const int8_t *sc = (const int8_t *)(b + 192 + 8 * n);
    uint8_t lo = ql[l + (g & 1) * 32];
    int v = ((g < 2 ? lo & 0xF : lo >> 4) | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
    float s = __fmul_rn(blk_h2f(b + 208), (float)sc[(l >> 4) + 2 * g]);
    return __fmul_rn(s, (float)v);
}

template <int DT, int BLK, int BYTES, typename S>
__global__ void block_dequant_kernel(const uint8_t *q, long long e0, long long n, S *out)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        long long e = e0 + i;
        lfl_st(out + i, blk_elem<DT>(q + (e / BLK) * BYTES, (int)(e % BLK)));
    }
}

template <typename S> static void launch(lfl_dtype kind, const uint8_t *q, long long e0, long long n, S *out)
{
    unsigned blocks = lfl_cuda_blocks(n, 256);
    if (blocks > 65536) blocks = 65536; // grid-stride beyond
    switch (kind) {
#define BLOCK_CASE(DT, BLK, BYTES) \
    case DT: LFL_LAUNCH(blocks, 256, 0, block_dequant_kernel<DT, BLK, BYTES, S>)(q, e0, n, out); break;
    BLOCK_CASE(LFL_Q8_0, 32, 34)
    BLOCK_CASE(LFL_Q4_0, 32, 18)
    BLOCK_CASE(LFL_Q4_1, 32, 20)
    BLOCK_CASE(LFL_Q5_0, 32, 22)
    BLOCK_CASE(LFL_Q5_1, 32, 24)
    BLOCK_CASE(LFL_Q4_K, 256, 144)
    BLOCK_CASE(LFL_Q5_K, 256, 176)
    BLOCK_CASE(LFL_Q6_K, 256, 210)
#undef BLOCK_CASE
    default: break;
    }
}

extern "C" lfl_status lfl_cuda_block_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t rows, void *dst, lfl_dtype dt)
{
    if (q->dtype < LFL_Q8_0 || q->dtype > LFL_Q6_K)
        return lfl_fail(LFL_ERR_ARG, "dequantize: %s is not a GGUF block type", lfl_dtype_name(q->dtype));
    if (q->device == LFL_CPU || !lfl_is_contiguous(q) || q->ndim < 1)
        return lfl_fail(LFL_ERR_ARG, "dequantize: a %s weight must be a whole contiguous tensor on a CUDA device",
                        lfl_dtype_name(q->dtype));
    int64_t cols = q->shape[q->ndim - 1], total = cols ? lfl_numel(q) / cols : 0;
    if (r0 < 0 || rows < 0 || r0 + rows > total)
        return lfl_fail(LFL_ERR_ARG, "dequantize: rows %lld..%lld of a %s weight with %lld rows", (long long)r0,
                        (long long)(r0 + rows), lfl_dtype_name(q->dtype), (long long)total);
    long long n = (long long)rows * cols;
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(q->device, "dequantize"));
    const uint8_t *codes = (const uint8_t *)lfl_data(q);
    if (dt == LFL_F32)
        launch(q->dtype, codes, (long long)r0 * cols, n, (float *)dst);
    else if (dt == LFL_BF16)
        launch(q->dtype, codes, (long long)r0 * cols, n, (bf16_t *)dst);
    else
        return lfl_fail(LFL_ERR_UNSUPPORTED, "dequantize: to %s on CUDA", lfl_dtype_name(dt));
    return lfl_cuda_launched("dequantize");
}

extern "C" lfl_status lfl_cuda_block_dequant(lfl_tensor *q, lfl_tensor *out)
{
    int64_t cols = q->shape[q->ndim - 1];
    int64_t rows = cols ? lfl_numel(q) / cols : 0;
    return lfl_cuda_block_dequant_rows(q, 0, rows, lfl_data(out), LFL_F32);
}
