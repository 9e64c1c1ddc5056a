// linear_kl_div's CUDA entries: per row KL(q || p) with p = softmax(hidden @
// w^T) and the reference q = softmax(ref_hidden @ ref_w^T), as the CPU kernel
// (core/ops/linear_kl_div.c) computes it: V walked in chunks, two cuBLAS
// GEMMs per chunk, then one block per row keeps both online log-sum-exps and
// A = sum_v exp(zr_v - mr) (zr_v - zp_v) in f64, rescaled when the
// reference's max grows; KL = A / sr - lse_r + lse_p (0 on -100 rows).
// Backward recomputes each chunk: dz = g_r (softmax(zp) - softmax(zr)) in
// place, dhidden += dz @ w_c, dw_c = dz^T @ hidden.
#include "head_loss.cuh"

__global__ static void lkl_init_kernel(double *st, long long n)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += step) {
        long long part = i / (n / 5); // m, sp, mr, sr, acc
        st[i] = part == 0 || part == 2 ? -INFINITY : 0.0;
    }
}

// one block per row: folds the chunk (policy xp, reference xr, n columns) into the row's state
template <typename T>
__global__ void lkl_chunk_kernel(const T *xp, const T *xr, long long N, long long n, const int64_t *labels,
                                 double *m, double *sp, double *mr, double *sr, double *acc)
{
    __shared__ double scratch[32];
    long long r = blockIdx.x;
    if (labels[r] == LFL_IGNORE_INDEX) return; // the whole block leaves: no barrier is missed
    const T *a = xp + r * n, *b = xr + r * n;
    double cmp = -INFINITY, cmr = -INFINITY;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        double u = (double)a[j], v = (double)b[j];
        if (u > cmp) cmp = u;
        if (v > cmr) cmr = v;
    }
    cmp = lfl_block_max(cmp, scratch);
    cmr = lfl_block_max(cmr, scratch);
    double om = m[r], omr = mr[r];
    if (om > cmp) cmp = om;
    if (omr > cmr) cmr = omr;
    double s1 = 0, s2 = 0, a2 = 0;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        double u = (double)a[j], v = (double)b[j], e = exp(v - cmr);
        s1 += exp(u - cmp);
        s2 += e;
        a2 += e * (v - u);
    }
    s1 = lfl_block_sum(s1, scratch);
    s2 = lfl_block_sum(s2, scratch);
    a2 = lfl_block_sum(a2, scratch);
    if (threadIdx.x == 0) {
        // fold the old sums onto the new maxima (nothing to fold while a sum is still 0)
        double f = sr[r] > 0 ? exp(omr - cmr) : 0;
        s1 += sp[r] > 0 ? sp[r] * exp(om - cmp) : 0;
        s2 += sr[r] * f;
        a2 += acc[r] * f;
        m[r] = cmp, sp[r] = s1, mr[r] = cmr, sr[r] = s2, acc[r] = a2;
    }
}

template <typename T>
__global__ void lkl_finish_kernel(const double *m, const double *sp, const double *mr, const double *sr,
                                  const double *acc, const int64_t *labels, long long N, double *lse, T *out)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < N; r += step) {
        bool ign = labels[r] == LFL_IGNORE_INDEX;
        double lp = ign ? 0 : m[r] + log(sp[r]), lr = ign ? 0 : mr[r] + log(sr[r]);
        lse[r] = lp;
        lse[N + r] = lr;
        out[r] = (T)(ign ? 0 : acc[r] / sr[r] - lr + lp);
    }
}

// dz = g_r (softmax(zp) - softmax(zr)) into xp; 0 on ignored rows
template <typename T>
__global__ void lkl_grad_kernel(T *xp, const T *xr, long long N, long long n, const int64_t *labels,
                                const double *lse, const T *g)
{
    for (long long r = blockIdx.x; r < N; r += gridDim.x) {
        bool ign = labels[r] == LFL_IGNORE_INDEX;
        double c = ign ? 0.0 : (double)g[r], lp = lse[r], lr = lse[N + r];
        for (long long j = threadIdx.x; j < n; j += blockDim.x) {
            long long i = r * n + j;
            xp[i] = (T)(ign ? 0.0 : c * (exp((double)xp[i] - lp) - exp((double)xr[i] - lr)));
        }
    }
}

// the two chunk GEMMs: bp = policy logits, br = reference logits
static lfl_status both_chunks(const lfl_lkl_args *p, const char *op, void *bp, void *br, long long v0, long long cw)
{
    int dev = p->hidden->device;
    lfl_dtype dt = p->hidden->dtype;
    LFL_TRY(lfl_cuda_chunk_logits(dev, op, dt, lfl_data(p->hidden), p->w->dtype, lfl_data(p->w), bp, p->N, p->H, v0,
                                  cw));
    return lfl_cuda_chunk_logits(dev, op, dt, lfl_data(p->ref_hidden), p->ref_w->dtype, lfl_data(p->ref_w), br, p->N,
                                 p->Hr, v0, cw);
}

template <typename T> static lfl_status lkl_forward(const lfl_lkl_args *p, lfl_tensor *lse, lfl_tensor *out)
{
    const char *op = "linear_kl_div";
    long long N = p->N, V = p->V, chunk = p->chunk;
    int dev = p->hidden->device;
    lfl_dtype dt = p->hidden->dtype;
    if (N == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dev, op));
    int64_t bshape[2] = {N, chunk}, sshape[1] = {5 * N};
    lfl_tensor *bp = NULL, *br = NULL, *state = NULL;
    lfl_status st = lfl_empty(2, bshape, dt, dev, &bp);
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, dev, &br);
    if (st == LFL_OK) st = lfl_empty(1, sshape, LFL_F64, dev, &state);
    if (st == LFL_OK) {
        double *m = (double *)lfl_data(state), *sp = m + N, *mr = sp + N, *sr = mr + N, *acc = sr + N;
        const int64_t *pl = (const int64_t *)lfl_data(p->labels);
        LFL_LAUNCH(lfl_cuda_grid(5 * N), 256, 0, lkl_init_kernel)(m, 5 * N);
        st = lfl_cuda_launched(op);
        for (long long v0 = 0; v0 < V && st == LFL_OK; v0 += chunk) {
            long long cw = V - v0 < chunk ? V - v0 : chunk;
            st = both_chunks(p, op, lfl_data(bp), lfl_data(br), v0, cw);
            if (st != LFL_OK) break;
            LFL_LAUNCH(N, LFL_HEAD_THREADS, 0, lkl_chunk_kernel<T>)((const T *)lfl_data(bp), (const T *)lfl_data(br),
                                                                    N, cw, pl, m, sp, mr, sr, acc);
            st = lfl_cuda_launched(op);
        }
        if (st == LFL_OK) {
            LFL_LAUNCH(lfl_cuda_grid(N), 256, 0, lkl_finish_kernel<T>)(m, sp, mr, sr, acc, pl, N,
                                                                       (double *)lfl_data(lse), (T *)lfl_data(out));
            st = lfl_cuda_launched(op);
        }
    }
    lfl_tensor_release(bp);
    lfl_tensor_release(br);
    lfl_tensor_release(state);
    return st;
}

extern "C" lfl_status lfl_cuda_linear_kl_div(const lfl_lkl_args *p, lfl_tensor *lse, lfl_tensor *out)
{
    const char *op = "linear_kl_div";
    LFL_TRY(lfl_cuda_labels_check(op, p->labels, p->V));
    if (p->hidden->dtype == LFL_F64) return lkl_forward<double>(p, lse, out);
    if (p->hidden->dtype == LFL_F32) return lkl_forward<float>(p, lse, out);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: hidden %s is not implemented on CUDA", op,
                    lfl_dtype_name(p->hidden->dtype));
}

template <typename T>
static lfl_status lkl_backward(const lfl_lkl_args *p, lfl_tensor *g, lfl_tensor *lse, lfl_tensor *dh, lfl_tensor *dw)
{
    const char *op = "linear_kl_div backward";
    long long N = p->N, V = p->V, H = p->H, chunk = p->chunk;
    int dev = p->hidden->device;
    lfl_dtype dt = p->hidden->dtype;
    LFL_TRY(lfl_cuda_use(dev, op));
    if (dw && (N == 0 || H == 0)) LFL_TRY(lfl_cuda_scale_c(op, dt, lfl_data(dw), V, H, H, 0.0));
    if (N == 0 || H == 0) return LFL_OK;
    int64_t bshape[2] = {N, chunk};
    lfl_tensor *bp = NULL, *br = NULL;
    lfl_status st = lfl_empty(2, bshape, dt, dev, &bp);
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, dev, &br);
    const int64_t *pl = (const int64_t *)lfl_data(p->labels);
    for (long long v0 = 0; st == LFL_OK && v0 < V; v0 += chunk) {
        long long cw = V - v0 < chunk ? V - v0 : chunk;
        T *xp = (T *)lfl_data(bp);
        st = both_chunks(p, op, xp, lfl_data(br), v0, cw);
        if (st != LFL_OK) break;
        LFL_LAUNCH(lfl_cuda_row_grid(N), 256, 0, lkl_grad_kernel<T>)(xp, (const T *)lfl_data(br), N, cw, pl,
                                                                      (const double *)lfl_data(lse),
                                                                      (const T *)lfl_data(g));
        st = lfl_cuda_launched(op);
        if (st == LFL_OK && dh)
            st = lfl_cuda_chunk_dh(dev, op, dt, xp, p->w->dtype, lfl_data(p->w), N, H, v0, cw, lfl_data(dh));
        if (st == LFL_OK && dw)
            st = lfl_cuda_chunk_dw(dev, op, dt, xp, lfl_data(p->hidden), N, H, v0, cw, lfl_data(dw));
    }
    lfl_tensor_release(bp);
    lfl_tensor_release(br);
    return st;
}

// g [N] contiguous (the front made it so)
extern "C" lfl_status lfl_cuda_linear_kl_div_backward(const lfl_lkl_args *p, lfl_tensor *g, lfl_tensor *lse,
                                                      lfl_tensor *dh, lfl_tensor *dw)
{
    if (p->hidden->dtype == LFL_F64) return lkl_backward<double>(p, g, lse, dh, dw);
    if (p->hidden->dtype == LFL_F32) return lkl_backward<float>(p, g, lse, dh, dw);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "linear_kl_div backward: hidden %s is not implemented on CUDA",
                    lfl_dtype_name(p->hidden->dtype));
}
