// NF4/FP4 dequantization on CUDA: the q4_dequant entry of the dispatch table
// (QLoRA's base weights as f32) and lfl_cuda_q4_dequant_rows (q4.cuh) for the
// GEMM kernels. One thread per packed byte (two elements); a block's scale is
// code2[q] * absmax2[b / 256] + offset with double quantization, rounded in
// two steps (no fused multiply-add) as bitsandbytes and the CPU compute it.
#include "q4.cuh"

struct Q4Maps {
    float code[16];
    float code2[256];
};

template <typename S>
__global__ void q4_kernel(const uint8_t *codes, long long byte0, long long nbytes, const float *absmax,
                          const uint8_t *qabsmax, const float *absmax2, float offset, Q4Maps maps, S *out)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < nbytes; i += (long long)gridDim.x * blockDim.x) {
        long long byte = byte0 + i, e = 2 * byte, b = e / LFL_Q4_BLOCK;
        float s;
        if (absmax) s = absmax[b];
        else s = __fadd_rn(__fmul_rn(maps.code2[qabsmax[b]], absmax2[b / LFL_Q4_DQ_BLOCK]), offset);
        uint8_t v = codes[byte];
        lfl_st(out + 2 * i, __fmul_rn(maps.code[v >> 4], s));
        lfl_st(out + 2 * i + 1, __fmul_rn(maps.code[v & 15], s));
    }
}

lfl_status lfl_cuda_q4_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t rows, void *dst, lfl_dtype dt)
{
    const struct lfl_qstate *st = q->quant;
    int64_t cols = q->shape[q->ndim - 1];
    long long n = (long long)rows * cols;
    if (n == 0) return LFL_OK;
    if ((r0 * cols) % 2 || n % 2)
        return lfl_fail(LFL_ERR_ARG, "dequantize: rows of %lld elements split a packed byte", (long long)cols);
    LFL_TRY(lfl_cuda_use(q->device, "dequantize"));
    Q4Maps maps;
    memcpy(maps.code, lfl_q4_code(q->dtype), sizeof maps.code);
    memcpy(maps.code2, st->code2, sizeof maps.code2);
    const float *am = st->absmax ? (const float *)lfl_data(st->absmax) : NULL;
    const uint8_t *qa = st->qabsmax ? (const uint8_t *)lfl_data(st->qabsmax) : NULL;
    const float *a2 = st->absmax2 ? (const float *)lfl_data(st->absmax2) : NULL;
    long long nbytes = n / 2, byte0 = r0 * cols / 2;
    unsigned blocks = lfl_cuda_blocks(nbytes, 256);
    if (blocks > 65536) blocks = 65536;
    const uint8_t *codes = (const uint8_t *)lfl_data(q);
    if (dt == LFL_F32)
        LFL_LAUNCH(blocks, 256, 0, q4_kernel<float>)(codes, byte0, nbytes, am, qa, a2, st->offset, maps, (float *)dst);
    else if (dt == LFL_BF16)
        LFL_LAUNCH(blocks, 256, 0, q4_kernel<bf16_t>)(codes, byte0, nbytes, am, qa, a2, st->offset, maps, (bf16_t *)dst);
    else
        return lfl_fail(LFL_ERR_UNSUPPORTED, "dequantize: to %s on CUDA", lfl_dtype_name(dt));
    return lfl_cuda_launched("dequantize");
}

extern "C" lfl_status lfl_cuda_q4_dequant(lfl_tensor *q, lfl_tensor *out)
{
    int64_t rows = lfl_numel(q) / q->shape[q->ndim - 1];
    return lfl_cuda_q4_dequant_rows(q, 0, rows, lfl_data(out), LFL_F32);
}
