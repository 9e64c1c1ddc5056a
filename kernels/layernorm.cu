// layernorm and its backward on CUDA (f32, f64), as core/ops/layernorm.c
// computes them: one block per row, the row's mean, variance and the two
// backward dots accumulated in double; weight and bias optional; dw and db
// reduced over rows in two deterministic passes (rows.cuh).
#include "rows.cuh"

template <typename T>
__global__ void layernorm_fwd(const T *x, lfl_row_map xm, const T *w, const T *b, double eps, T *y, T *mean, T *rstd,
                              long long rows, long long H)
{
    __shared__ double scratch[32];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *px = x + lfl_row_off(xm, r);
        double s = 0, ss = 0;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) s += (double)px[j];
        double mu = lfl_block_sum(s, scratch) / (double)H;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) ss += ((double)px[j] - mu) * ((double)px[j] - mu);
        ss = lfl_block_sum(ss, scratch);
        T m = (T)mu, rs = (T)(1.0 / sqrt(ss / (double)H + eps));
        if (threadIdx.x == 0) {
            mean[r] = m;
            rstd[r] = rs;
        }
        T *py = y + r * H;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) {
            T v = (px[j] - m) * rs;
            if (w) v *= w[j];
            if (b) v += b[j];
            py[j] = v;
        }
    }
}

template <typename T>
__global__ void layernorm_bwd_dx(const T *g, const T *x, lfl_row_map xm, const T *w, const T *mean, const T *rstd,
                                 T *dx, long long rows, long long H)
{
    __shared__ double scratch[32];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *px = x + lfl_row_off(xm, r), *gr = g + r * H;
        T m = mean[r], rs = rstd[r];
        double s1 = 0, s2 = 0;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) {
            double gh = w ? (double)gr[j] * w[j] : (double)gr[j];
            s1 += gh;
            s2 += gh * (double)((px[j] - m) * rs);
        }
        s1 = lfl_block_sum(s1, scratch);
        s2 = lfl_block_sum(s2, scratch);
        T k1 = (T)(s1 / (double)H), k2 = (T)(s2 / (double)H);
        T *d = dx + r * H;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) {
            T gh = w ? gr[j] * w[j] : gr[j];
            d[j] = rs * (gh - k1 - (px[j] - m) * rs * k2);
        }
    }
}

// pass 1 of dw = sum_rows g * xhat and db = sum_rows g (either NULL: not
// wanted): chunk blockIdx.y, column j
template <typename T>
__global__ void layernorm_bwd_dwdb(const T *g, const T *x, lfl_row_map xm, const T *mean, const T *rstd, double *pw,
                                   double *pb, long long rows, long long H, long long per)
{
    long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x, c = blockIdx.y;
    if (j >= H) return;
    long long r0 = c * per, r1 = r0 + per < rows ? r0 + per : rows;
    double aw = 0, ab = 0;
    for (long long r = r0; r < r1; r++) {
        T gv = g[r * H + j];
        if (pw) aw += (double)(gv * ((x[lfl_row_off(xm, r) + j] - mean[r]) * rstd[r]));
        ab += gv;
    }
    if (pw) pw[c * H + j] = aw;
    if (pb) pb[c * H + j] = ab;
}

template <typename T>
static lfl_status layernorm_launch(lfl_tensor *x, lfl_tensor *w, lfl_tensor *b, double eps, lfl_tensor *out,
                                   lfl_tensor *mean, lfl_tensor *rstd)
{
    long long rows = lfl_numel(rstd), H = x->shape[x->ndim - 1];
    LFL_LAUNCH(lfl_row_blocks(rows), lfl_row_threads(H, 512), 0, layernorm_fwd<T>)(
        (const T *)lfl_data(x), lfl_row_map_of(x), w ? (const T *)lfl_data(w) : (const T *)0,
        b ? (const T *)lfl_data(b) : (const T *)0, eps, (T *)lfl_data(out), (T *)lfl_data(mean), (T *)lfl_data(rstd),
        rows, H);
    return lfl_cuda_launched("layernorm");
}

template <typename T>
static lfl_status layernorm_backward_launch(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *mean,
                                            lfl_tensor *rstd, lfl_tensor *dx, lfl_tensor *dw, lfl_tensor *db)
{
    long long rows = lfl_numel(rstd), H = x->shape[x->ndim - 1];
    lfl_row_map xm = lfl_row_map_of(x);
    const T *pg = (const T *)lfl_data(g), *px = (const T *)lfl_data(x);
    const T *pm = (const T *)lfl_data(mean), *pr = (const T *)lfl_data(rstd);
    if (dx) {
        LFL_LAUNCH(lfl_row_blocks(rows), lfl_row_threads(H, 512), 0, layernorm_bwd_dx<T>)(
            pg, px, xm, w ? (const T *)lfl_data(w) : (const T *)0, pm, pr, (T *)lfl_data(dx), rows, H);
        LFL_TRY(lfl_cuda_launched("layernorm backward"));
    }
    if (!dw && !db) return LFL_OK;
    const int threads = 256;
    lfl_col_chunks ch = lfl_col_chunks_of(rows, H, threads);
    lfl_tensor *partw = NULL, *partb = NULL;
    lfl_status st = LFL_OK;
    if (dw) st = lfl_col_scratch(x->device, ch, H, &partw);
    if (st == LFL_OK && db) st = lfl_col_scratch(x->device, ch, H, &partb);
    if (st == LFL_OK) {
        double *pw = partw ? (double *)lfl_data(partw) : (double *)0;
        double *pb = partb ? (double *)lfl_data(partb) : (double *)0;
        LFL_LAUNCH(dim3(lfl_cuda_blocks(H, threads), (unsigned)ch.n), threads, 0, layernorm_bwd_dwdb<T>)(
            pg, px, xm, pm, pr, pw, pb, rows, H, ch.per);
        if (dw)
            LFL_LAUNCH(lfl_cuda_blocks(H, threads), threads, 0, lfl_col_chunks_sum<T>)((const double *)pw, ch.n, H,
                                                                                       (T *)lfl_data(dw));
        if (db)
            LFL_LAUNCH(lfl_cuda_blocks(H, threads), threads, 0, lfl_col_chunks_sum<T>)((const double *)pb, ch.n, H,
                                                                                       (T *)lfl_data(db));
        st = lfl_cuda_launched("layernorm backward");
    }
    lfl_tensor_release(partw);
    lfl_tensor_release(partb);
    return st;
}

extern "C" lfl_status lfl_cuda_layernorm(lfl_tensor *x, lfl_tensor *w, lfl_tensor *b, double eps, lfl_tensor *out,
                                         lfl_tensor *mean, lfl_tensor *rstd)
{
    if (lfl_numel(rstd) == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(out->device, "layernorm"));
    LFL_F32_F64_SWITCH(x->dtype, "layernorm", T, return layernorm_launch<T>(x, w, b, eps, out, mean, rstd));
    return LFL_OK;
}

// dw and db arrive as zeros (the front's lfl_zeros): with no rows or H == 0
// there is nothing to add
extern "C" lfl_status lfl_cuda_layernorm_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *mean,
                                                  lfl_tensor *rstd, lfl_tensor *dx, lfl_tensor *dw, lfl_tensor *db)
{
    if (lfl_numel(rstd) == 0 || x->shape[x->ndim - 1] == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(x->device, "layernorm backward"));
    LFL_F32_F64_SWITCH(x->dtype, "layernorm backward", T,
                       return layernorm_backward_launch<T>(g, x, w, mean, rstd, dx, dw, db));
    return LFL_OK;
}
