// The GEMMs with one bf16/f16 operand of lowp_gemm.cuh: the 16-bit operand is
// widened to f32 one block at a time into a per-thread device scratch, and
// each block goes to cuBLAS's sgemm (core/ops/lowp_gemm.c's numerics: exact
// f32 products of the widened weights, f32 activations never rounded).
#include "lowp_gemm.cuh"
#include "q4.cuh"

// scratch of at most this many f32 per block (64 MB): wide enough that each
// sgemm runs at full speed, small next to an H100's memory
#define LOWP_SCRATCH_ELEMS (16ll << 20)
#define LOWP_MAX_DEVICES 16

static long long block_elems_ = LOWP_SCRATCH_ELEMS;

extern "C" long long lfl_cuda_lowp_block_elems(long long n)
{
    long long prev = block_elems_;
    if (n > 0) block_elems_ = n;
    return prev;
}

// dst[r * cols + c] = f32(src[r * sr + c * sc]) over rows x cols
template <typename S>
__global__ void widen_kernel(const S *src, long long rows, long long cols, long long sr, long long sc, float *dst)
{
    for (long long r = blockIdx.x; r < rows; r += gridDim.x)
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) dst[r * cols + c] = lfl_ld(src + r * sr + c * sc);
}

static lfl_status widen(const char *op, lfl_dtype dt, const void *src, long long rows, long long cols, long long sr,
                        long long sc, float *dst)
{
    unsigned g = lfl_cuda_row_grid(rows);
    if (dt == LFL_BF16)
        LFL_LAUNCH(g, 256, 0, widen_kernel<bf16_t>)((const bf16_t *)src, rows, cols, sr, sc, dst);
    else
        LFL_LAUNCH(g, 256, 0, widen_kernel<f16_t>)((const f16_t *)src, rows, cols, sr, sc, dst);
    return lfl_cuda_launched(op);
}

// This thread's scratch on `device`, kept between calls as the CPU keeps its
// tile scratch: a cudaMalloc / cudaFree pair per GEMM would synchronise the
// device on every linear with a 16-bit weight. One per host thread, because
// two threads enqueueing widen + GEMM pairs on the same stream could
// otherwise overwrite each other's block between the two. Never freed (at
// most 64 MB per thread and device).
static thread_local float *scratch_[LOWP_MAX_DEVICES];
static thread_local size_t cap_[LOWP_MAX_DEVICES];

static lfl_status scratch(int device, const char *op, size_t n, float **out)
{
    if (device < 0 || device >= LOWP_MAX_DEVICES) return lfl_fail(LFL_ERR_DEVICE, "%s: bad CUDA device %d", op, device);
    if (n > cap_[device]) {
        void *p;
        LFL_TRY(lfl_device_alloc(device, n * sizeof(float), &p));
        if (scratch_[device]) lfl_device_free(device, scratch_[device]);
        scratch_[device] = (float *)p;
        cap_[device] = n;
    }
    *out = scratch_[device];
    return LFL_OK;
}

static long long labs_(long long v) { return v < 0 ? -v : v; }

lfl_status lfl_cuda_gemm_f32_lowp(int device, const char *op, bool ta, long long m, long long n, long long k,
                                  const float *a, int lda, lfl_dtype bdt, const void *b, long long sbk, long long sbn,
                                  float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(device, op));
    if (k == 0) return lfl_cuda_scale_c(op, LFL_F32, c, m, n, ldc, beta);
    long long nb = block_elems_ / k;
    if (nb < 1) nb = 1;
    if (nb > n) nb = n;
    float *ps = NULL;
    LFL_TRY(scratch(device, op, (size_t)(nb * k), &ps));
    size_t es = lfl_dtype_size(bdt);
    // keep the weight's fast dim contiguous: W[n, k] rows become S[nb, k] used transposed
    bool rows_of_n = labs_(sbk) <= labs_(sbn);
    for (long long j0 = 0; j0 < n; j0 += nb) {
        long long w = n - j0 < nb ? n - j0 : nb;
        const char *src = (const char *)b + (j0 * sbn) * (long long)es;
        if (rows_of_n) {
            LFL_TRY(widen(op, bdt, src, w, k, sbn, sbk, ps));
            LFL_TRY(lfl_cuda_gemm(device, op, ta, true, (int)m, (int)w, (int)k, 1.0f, a, lda, ps, (int)k, beta, c + j0,
                                  ldc, LFL_F32, LFL_F32));
        } else {
            LFL_TRY(widen(op, bdt, src, k, w, sbk, sbn, ps));
            LFL_TRY(lfl_cuda_gemm(device, op, ta, false, (int)m, (int)w, (int)k, 1.0f, a, lda, ps, (int)w, beta,
                                  c + j0, ldc, LFL_F32, LFL_F32));
        }
    }
    return LFL_OK;
}

lfl_status lfl_cuda_gemm_lowp_f32(int device, const char *op, long long m, long long n, long long k, lfl_dtype adt,
                                  const void *a, long long sam, long long sak, bool tb, const float *b, int ldb,
                                  float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(device, op));
    if (k == 0) return lfl_cuda_scale_c(op, LFL_F32, c, m, n, ldc, beta);
    long long mb = block_elems_ / k;
    if (mb < 1) mb = 1;
    if (mb > m) mb = m;
    float *ps = NULL;
    LFL_TRY(scratch(device, op, (size_t)(mb * k), &ps));
    size_t es = lfl_dtype_size(adt);
    bool rows_of_m = labs_(sak) <= labs_(sam);
    for (long long i0 = 0; i0 < m; i0 += mb) {
        long long h = m - i0 < mb ? m - i0 : mb;
        const char *src = (const char *)a + (i0 * sam) * (long long)es;
        if (rows_of_m) {
            LFL_TRY(widen(op, adt, src, h, k, sam, sak, ps));
            LFL_TRY(lfl_cuda_gemm(device, op, false, tb, (int)h, (int)n, (int)k, 1.0f, ps, (int)k, b, ldb, beta,
                                  c + i0 * (long long)ldc, ldc, LFL_F32, LFL_F32));
        } else {
            LFL_TRY(widen(op, adt, src, k, h, sak, sam, ps));
            LFL_TRY(lfl_cuda_gemm(device, op, true, tb, (int)h, (int)n, (int)k, 1.0f, ps, (int)h, b, ldb, beta,
                                  c + i0 * (long long)ldc, ldc, LFL_F32, LFL_F32));
        }
    }
    return LFL_OK;
}

lfl_status lfl_cuda_gemm_f32_q4(int device, const char *op, long long m, long long n, long long k, const float *a,
                                int lda, const lfl_tensor *w, bool wt, float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(device, op));
    if (k == 0) return lfl_cuda_scale_c(op, LFL_F32, c, m, n, ldc, beta);
    // W [rows_w, cols_w] in blocks of rb rows: its output columns (wt) or its k slices
    long long rows_w = wt ? n : k, cols_w = wt ? k : n;
    long long rb = block_elems_ / cols_w;
    if (cols_w % 2 && rb % 2) rb--; // a block must not split a packed byte
    if (rb < 2) rb = 2;
    if (rb > rows_w) rb = rows_w;
    float *ps = NULL;
    LFL_TRY(scratch(device, op, (size_t)(rb * cols_w), &ps));
    for (long long r0 = 0; r0 < rows_w; r0 += rb) {
        long long h = rows_w - r0 < rb ? rows_w - r0 : rb;
        LFL_TRY(lfl_cuda_q4_dequant_rows(w, r0, h, ps, LFL_F32));
        if (wt) // C[:, r0 .. r0 + h) = A @ W_block^T
            LFL_TRY(lfl_cuda_gemm(device, op, false, true, (int)m, (int)h, (int)k, 1.0f, a, lda, ps, (int)k, beta,
                                  c + r0, ldc, LFL_F32, LFL_F32));
        else // C += A[:, r0 .. r0 + h) @ W_block
            LFL_TRY(lfl_cuda_gemm(device, op, false, false, (int)m, (int)n, (int)h, 1.0f, a + r0, lda, ps, (int)n,
                                  r0 == 0 ? beta : 1.0f, c, ldc, LFL_F32, LFL_F32));
    }
    return LFL_OK;
}
