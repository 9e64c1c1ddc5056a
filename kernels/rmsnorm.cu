// rmsnorm and its backward on CUDA (f32, f64), as core/ops/rmsnorm.c computes
// them: one block per row, the row's sums of squares and dots accumulated in
// double; dw reduced over rows in two deterministic passes (rows.cuh).
#include "rows.cuh"

template <typename T>
__global__ void rmsnorm_fwd(const T *x, lfl_row_map xm, const T *w, double eps, T *y, T *rstd, long long rows,
                            long long H)
{
    __shared__ double scratch[32];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *px = x + lfl_row_off(xm, r);
        double ss = 0;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) ss += (double)px[j] * (double)px[j];
        ss = lfl_block_sum(ss, scratch);
        T var = (T)(ss / (double)H);
        T rs = (T)1 / (T)sqrt((double)(var + (T)eps));
        if (threadIdx.x == 0) rstd[r] = rs;
        T *py = y + r * H;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) py[j] = w[j] * (px[j] * rs);
    }
}

template <typename T>
__global__ void rmsnorm_bwd_dx(const T *g, const T *x, lfl_row_map xm, const T *w, const T *rstd, T *dx,
                               long long rows, long long H)
{
    __shared__ double scratch[32];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *px = x + lfl_row_off(xm, r), *gr = g + r * H;
        T rs = rstd[r];
        double dot = 0;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) dot += (double)gr[j] * w[j] * px[j];
        dot = lfl_block_sum(dot, scratch);
        T k = (T)((double)rs * rs * rs * dot / (double)H);
        T *d = dx + r * H;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) d[j] = rs * gr[j] * w[j] - px[j] * k;
    }
}

// pass 1 of dw = sum_rows g * x * rstd: chunk blockIdx.y, column j
template <typename T>
__global__ void rmsnorm_bwd_dw(const T *g, const T *x, lfl_row_map xm, const T *rstd, double *part, long long rows,
                               long long H, long long per)
{
    long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x, c = blockIdx.y;
    if (j >= H) return;
    long long r0 = c * per, r1 = r0 + per < rows ? r0 + per : rows;
    double acc = 0;
    for (long long r = r0; r < r1; r++) acc += (double)(g[r * H + j] * x[lfl_row_off(xm, r) + j] * rstd[r]);
    part[c * H + j] = acc;
}

template <typename T>
static lfl_status rmsnorm_launch(lfl_tensor *x, lfl_tensor *w, double eps, lfl_tensor *out, lfl_tensor *rstd)
{
    long long H = w->shape[0], rows = lfl_numel(rstd);
    LFL_LAUNCH(lfl_row_blocks(rows), lfl_row_threads(H, 512), 0, rmsnorm_fwd<T>)(
        (const T *)lfl_data(x), lfl_row_map_of(x), (const T *)lfl_data(w), eps, (T *)lfl_data(out),
        (T *)lfl_data(rstd), rows, H);
    return lfl_cuda_launched("rmsnorm");
}

template <typename T>
static lfl_status rmsnorm_backward_launch(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *rstd,
                                          lfl_tensor *dx, lfl_tensor *dw)
{
    long long H = w->shape[0], rows = lfl_numel(rstd);
    lfl_row_map xm = lfl_row_map_of(x);
    const T *pg = (const T *)lfl_data(g), *px = (const T *)lfl_data(x), *pr = (const T *)lfl_data(rstd);
    if (dx) {
        LFL_LAUNCH(lfl_row_blocks(rows), lfl_row_threads(H, 512), 0, rmsnorm_bwd_dx<T>)(
            pg, px, xm, (const T *)lfl_data(w), pr, (T *)lfl_data(dx), rows, H);
        LFL_TRY(lfl_cuda_launched("rmsnorm backward"));
    }
    if (!dw) return LFL_OK;
    const int threads = 256;
    lfl_col_chunks ch = lfl_col_chunks_of(rows, H, threads);
    lfl_tensor *part;
    LFL_TRY(lfl_col_scratch(x->device, ch, H, &part));
    LFL_LAUNCH(dim3(lfl_cuda_blocks(H, threads), (unsigned)ch.n), threads, 0, rmsnorm_bwd_dw<T>)(
        pg, px, xm, pr, (double *)lfl_data(part), rows, H, ch.per);
    LFL_LAUNCH(lfl_cuda_blocks(H, threads), threads, 0, lfl_col_chunks_sum<T>)((const double *)lfl_data(part), ch.n,
                                                                               H, (T *)lfl_data(dw));
    lfl_status st = lfl_cuda_launched("rmsnorm backward");
    lfl_tensor_release(part);
    return st;
}

extern "C" lfl_status lfl_cuda_rmsnorm(lfl_tensor *x, lfl_tensor *w, double eps, lfl_tensor *out, lfl_tensor *rstd)
{
    // H == 0 leaves rstd unset, as the CPU kernel does (nothing reads it)
    if (lfl_numel(rstd) == 0 || w->shape[0] == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(out->device, "rmsnorm"));
    LFL_F32_F64_SWITCH(x->dtype, "rmsnorm", T, return rmsnorm_launch<T>(x, w, eps, out, rstd));
    return LFL_OK;
}

extern "C" lfl_status lfl_cuda_rmsnorm_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *rstd,
                                                lfl_tensor *dx, lfl_tensor *dw)
{
    long long H = w->shape[0];
    if (H == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(x->device, "rmsnorm backward"));
    if (lfl_numel(rstd) == 0) // no rows: dw is zeros, dx is empty
        return dw ? lfl_device_memset(dw->device, lfl_data(dw), 0, (size_t)H * lfl_dtype_size(dw->dtype)) : LFL_OK;
    LFL_F32_F64_SWITCH(x->dtype, "rmsnorm backward", T, return rmsnorm_backward_launch<T>(g, x, w, rstd, dx, dw));
    return LFL_OK;
}
