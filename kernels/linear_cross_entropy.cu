// linear_cross_entropy's CUDA entries: cross_entropy(hidden @ w^T, labels)
// without the [N, V] logits, as the CPU kernel (core/ops/linear_cross_entropy.c)
// does it: V walked in chunks of p->chunk columns, one cuBLAS GEMM per chunk
// into an [N, chunk] buffer, then one block per row folds the chunk into the
// row's online log-sum-exp (running max and sum in f64, as the CPU keeps lse)
// and takes the label's logit. The per-row losses are reduced by one block in
// a fixed order (deterministic); only `count` comes back to the host.
// Backward recomputes each chunk: softmax minus one-hot times the row's
// coefficient in place, then dhidden += dlogits @ w_c and dw_c = dlogits^T
// @ hidden. The eager form (a frozen w: dhidden computed by the forward)
// keeps exp(logit - running max) in the buffer, rescales dhidden's rows when
// a row's max grows, and finishes with dhidden = sum / s - w[label].
#include "head_loss.cuh"

// m, s, picked (and rescale) start at -inf, 0, 0
__global__ static void lce_init_kernel(double *m, double *s, double *picked, long long N)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < N; i += step) {
        m[i] = -INFINITY;
        s[i] = 0;
        picked[i] = 0;
    }
}

// one block per row r of the chunk x[N, n] (columns v0 ..): the online
// log-sum-exp update; with rescale, the row becomes exp(x - new max) in place
// and rescale[r] = exp(old max - new max) (0 while the row had no max)
template <typename T>
__global__ void lce_lse_kernel(T *x, long long n, const int64_t *labels, long long v0, double *m, double *s,
                               double *picked, double *rescale)
{
    __shared__ T tscratch[32];
    __shared__ double dscratch[32];
    long long r = blockIdx.x;
    T *xr = x + r * n;
    T cm = (T)-INFINITY;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) cm = xr[j] > cm ? xr[j] : cm;
    cm = lfl_block_max(cm, tscratch);
    double om = m[r], nm = om > (double)cm ? om : (double)cm;
    T fm = (T)nm;
    double acc = 0;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        T e = lfl_exp(xr[j] - fm);
        if (rescale) xr[j] = e;
        acc += (double)e;
    }
    acc = lfl_block_sum(acc, dscratch);
    if (threadIdx.x == 0) {
        int64_t lab = labels[r];
        // the label's column in this chunk (an ignored row's -100 never is)
        if (picked && lab != LFL_IGNORE_INDEX && lab >= v0 && lab < v0 + n) picked[r] = (double)x[r * n + (lab - v0)];
        // exp(-inf - -inf) is NaN: an all -inf row stays NaN, as in torch
        double f = om == -INFINITY ? 0.0 : exp(om - nm);
        if (rescale) rescale[r] = f;
        s[r] = s[r] * f + acc;
        m[r] = nm;
    }
}

// the label logits of one chunk: the eager form takes them before
// lce_lse_kernel overwrites the chunk with its exps
template <typename T>
__global__ void lce_pick_kernel(const T *x, long long N, long long n, const int64_t *labels, long long v0,
                                double *picked)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < N; r += step) {
        int64_t lab = labels[r];
        if (lab != LFL_IGNORE_INDEX && lab >= v0 && lab < v0 + n) picked[r] = (double)x[r * n + (lab - v0)];
    }
}

// acc[r, :] *= f[r] where a row's max grew
template <typename T> __global__ void lce_rescale_kernel(T *acc, const double *f, long long N, long long H)
{
    for (long long r = blockIdx.x; r < N; r += gridDim.x) {
        double g = f[r];
        if (g == 1.0) continue;
        for (long long j = threadIdx.x; j < H; j += blockDim.x) acc[r * H + j] = acc[r * H + j] * (T)g;
    }
}

// acc[r, :] = acc[r, :] / s[r] - w[label r, :] (0 on ignored rows)
template <typename T, typename W>
__global__ void lce_eager_finish_kernel(T *acc, const W *w, const int64_t *labels, const double *s, long long N,
                                        long long H)
{
    for (long long r = blockIdx.x; r < N; r += gridDim.x) {
        int64_t lab = labels[r];
        double inv = lab == LFL_IGNORE_INDEX ? 0.0 : 1.0 / s[r];
        for (long long j = threadIdx.x; j < H; j += blockDim.x) {
            long long i = r * H + j;
            acc[i] = (T)(lab == LFL_IGNORE_INDEX ? 0.0 : (double)acc[i] * inv - (double)lfl_ld(w + lab * H + j));
        }
    }
}

// lse[r] = m + log(s); row[r] (in picked) = lse - label logit, 0 on ignored rows
__global__ static void lce_rows_kernel(const double *m, const double *s, const int64_t *labels, long long N,
                                       double *lse, double *picked)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < N; r += step) {
        lse[r] = m[r] + log(s[r]);
        picked[r] = labels[r] == LFL_IGNORE_INDEX ? 0.0 : lse[r] - picked[r];
    }
}

// one block: the loss from the rows (sum / mean over the counted rows, or the
// rows themselves) and the count of rows not ignored
template <typename T>
__global__ void lce_reduce_kernel(const double *row, const int64_t *labels, long long N, int red, T *out,
                                  long long *count)
{
    __shared__ double scratch[32];
    double total = 0, cnt = 0;
    for (long long r = threadIdx.x; r < N; r += blockDim.x) {
        if (red == LFL_REDUCE_NONE) out[r] = (T)row[r];
        if (labels[r] == LFL_IGNORE_INDEX) continue;
        cnt += 1;
        total += row[r];
    }
    total = lfl_block_sum(total, scratch);
    cnt = lfl_block_sum(cnt, scratch);
    if (threadIdx.x == 0) {
        *count = (long long)cnt;
        // torch: the mean over zero targets is 0/0 = NaN
        if (red == LFL_REDUCE_SUM) *out = (T)total;
        else if (red == LFL_REDUCE_MEAN) *out = (T)(cnt > 0 ? total / cnt : NAN);
    }
}

// dx = coef[r] (softmax - onehot) in place over one chunk; ignored rows 0
template <typename T, typename G>
__global__ void lce_grad_kernel(T *x, long long N, long long n, const int64_t *labels, long long v0,
                                const double *lse, const G *g, bool per_row, double denom)
{
    for (long long r = blockIdx.x; r < N; r += gridDim.x) {
        int64_t lab = labels[r];
        T *xr = x + r * n;
        if (lab == LFL_IGNORE_INDEX) {
            for (long long j = threadIdx.x; j < n; j += blockDim.x) xr[j] = 0;
            continue;
        }
        T c = (T)lfl_row_coef(g, per_row, r, denom), l = (T)lse[r];
        for (long long j = threadIdx.x; j < n; j += blockDim.x) {
            T d = lfl_exp(xr[j] - l) * c;
            if (lab - v0 == j) d -= c;
            xr[j] = d;
        }
    }
}

// dh = coef[r] * the forward's gradient rows
template <typename T>
__global__ void lce_eager_bwd_kernel(const T *src, T *dh, long long N, long long H, const T *g, bool per_row,
                                     double denom)
{
    for (long long r = blockIdx.x; r < N; r += gridDim.x) {
        T c = (T)lfl_row_coef(g, per_row, r, denom);
        for (long long j = threadIdx.x; j < H; j += blockDim.x) dh[r * H + j] = src[r * H + j] * c;
    }
}

template <typename T>
static lfl_status lce_forward(const lfl_lce_args *p, lfl_tensor *lse, lfl_tensor *o, lfl_tensor *dh,
                              int64_t *count)
{
    const char *op = "linear_cross_entropy";
    lfl_tensor *ch = p->hidden, *cw = p->w, *lab = p->labels, *buf = NULL, *st4 = NULL, *cnt = NULL;
    long long N = p->N, V = p->V, H = p->H, chunk = p->chunk;
    int dev = ch->device;
    lfl_dtype dt = ch->dtype;
    bool eager = dh != NULL;
    const int64_t *pl = (const int64_t *)lfl_data(lab);
    int64_t bshape[2] = {N, chunk}, sshape[1] = {4 * N}, one = 1;
    lfl_status st = lfl_empty(2, bshape, dt, dev, &buf);
    if (st == LFL_OK) st = lfl_empty(1, sshape, LFL_F64, dev, &st4);
    if (st == LFL_OK) st = lfl_empty(1, &one, LFL_I64, dev, &cnt);
    if (st != LFL_OK) goto done;
    {
        double *m = (double *)lfl_data(st4), *s = m + N, *picked = s + N, *rescale = picked + N;
        T *pb = (T *)lfl_data(buf);
        if (N > 0) {
            LFL_LAUNCH(lfl_cuda_grid(N), 256, 0, lce_init_kernel)(m, s, picked, N);
            st = lfl_cuda_launched(op);
        }
        for (long long v0 = 0; N > 0 && v0 < V && st == LFL_OK; v0 += chunk) {
            long long cwid = V - v0 < chunk ? V - v0 : chunk;
            st = lfl_cuda_chunk_logits(dev, op, dt, lfl_data(ch), cw->dtype, lfl_data(cw), pb, N, H, v0, cwid);
            if (st != LFL_OK) break;
            if (!eager) {
                LFL_LAUNCH(N, LFL_HEAD_THREADS, 0, lce_lse_kernel<T>)(pb, cwid, pl, v0, m, s, picked, (double *)0);
                st = lfl_cuda_launched(op);
                continue;
            }
            LFL_LAUNCH(lfl_cuda_grid(N), 256, 0, lce_pick_kernel<T>)(pb, N, cwid, pl, v0, picked);
            LFL_LAUNCH(N, LFL_HEAD_THREADS, 0, lce_lse_kernel<T>)(pb, cwid, pl, v0, m, s, (double *)0, rescale);
            if (v0 > 0 && H > 0)
                LFL_LAUNCH(lfl_cuda_row_grid(N), 256, 0, lce_rescale_kernel<T>)((T *)lfl_data(dh), rescale, N, H);
            st = lfl_cuda_launched(op);
            if (st == LFL_OK && H > 0) st = lfl_cuda_chunk_dh(dev, op, dt, pb, cw->dtype, lfl_data(cw), N, H, v0, cwid,
                                                             lfl_data(dh));
        }
        if (st == LFL_OK && eager && N > 0 && H > 0) {
            unsigned gr = lfl_cuda_row_grid(N);
            T *pd = (T *)lfl_data(dh);
            const void *pw = lfl_data(cw);
            if (cw->dtype == LFL_BF16)
                LFL_LAUNCH(gr, 256, 0, lce_eager_finish_kernel<T, bf16_t>)(pd, (const bf16_t *)pw, pl, s, N, H);
            else if (cw->dtype == LFL_F16)
                LFL_LAUNCH(gr, 256, 0, lce_eager_finish_kernel<T, f16_t>)(pd, (const f16_t *)pw, pl, s, N, H);
            else
                LFL_LAUNCH(gr, 256, 0, lce_eager_finish_kernel<T, T>)(pd, (const T *)pw, pl, s, N, H);
            st = lfl_cuda_launched(op);
        }
        if (st == LFL_OK && N > 0) {
            LFL_LAUNCH(lfl_cuda_grid(N), 256, 0, lce_rows_kernel)(m, s, pl, N, (double *)lfl_data(lse), picked);
            st = lfl_cuda_launched(op);
        }
        if (st == LFL_OK) {
            LFL_LAUNCH(1, 256, 0, lce_reduce_kernel<T>)(picked, pl, N, (int)p->r, (T *)lfl_data(o),
                                                        (long long *)lfl_data(cnt));
            st = lfl_cuda_launched(op);
        }
        long long c = 0;
        if (st == LFL_OK) st = lfl_device_memcpy(dev, &c, lfl_data(cnt), sizeof c, 1);
        if (st == LFL_OK) *count = c;
    }
done:
    lfl_tensor_release(buf);
    lfl_tensor_release(st4);
    lfl_tensor_release(cnt);
    return st;
}

extern "C" lfl_status lfl_cuda_linear_cross_entropy(const lfl_lce_args *p, lfl_tensor *lse, lfl_tensor *o,
                                                    lfl_tensor *dh, int64_t *count)
{
    const char *op = "linear_cross_entropy";
    LFL_TRY(lfl_cuda_labels_check(op, p->labels, p->V));
    if (p->hidden->dtype == LFL_F64) return lce_forward<double>(p, lse, o, dh, count);
    if (p->hidden->dtype == LFL_F32) return lce_forward<float>(p, lse, o, dh, count);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: hidden %s is not implemented on CUDA", op,
                    lfl_dtype_name(p->hidden->dtype));
}

template <typename T>
static lfl_status lce_backward(const lfl_lce_args *p, lfl_tensor *gout, lfl_tensor *lse, int64_t count,
                               lfl_tensor *eager, lfl_tensor *dh, lfl_tensor *dw)
{
    const char *op = "linear_cross_entropy backward";
    lfl_tensor *h = p->hidden, *w = p->w, *g = NULL, *buf = NULL;
    long long N = p->N, V = p->V, H = p->H, chunk = p->chunk;
    int dev = h->device;
    lfl_dtype dt = h->dtype;
    bool per_row = p->r == LFL_REDUCE_NONE;
    double denom = p->r == LFL_REDUCE_MEAN && count > 0 ? (double)count : 1.0;
    LFL_TRY(lfl_cuda_use(dev, op));
    LFL_TRY(lfl_contiguous(gout, &g));
    const T *pg = (const T *)lfl_data(g);
    lfl_status st = LFL_OK;
    if (eager) { // w needs no gradient: dhidden was computed by the forward
        if (dh && N * H > 0) {
            LFL_LAUNCH(lfl_cuda_row_grid(N), 256, 0, lce_eager_bwd_kernel<T>)(
                (const T *)lfl_data(eager), (T *)lfl_data(dh), N, H, pg, per_row, denom);
            st = lfl_cuda_launched(op);
        }
        lfl_tensor_release(g);
        return st;
    }
    if (dw && (N == 0 || H == 0)) st = lfl_cuda_scale_c(op, dt, lfl_data(dw), V, H, H, 0.0);
    int64_t bshape[2] = {N, chunk};
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, dev, &buf);
    const int64_t *pl = st == LFL_OK ? (const int64_t *)lfl_data(p->labels) : NULL;
    for (long long v0 = 0; st == LFL_OK && N > 0 && H > 0 && v0 < V; v0 += chunk) {
        long long cwid = V - v0 < chunk ? V - v0 : chunk;
        T *pb = (T *)lfl_data(buf);
        st = lfl_cuda_chunk_logits(dev, op, dt, lfl_data(h), w->dtype, lfl_data(w), pb, N, H, v0, cwid);
        if (st != LFL_OK) break;
        LFL_LAUNCH(lfl_cuda_row_grid(N), 256, 0, lce_grad_kernel<T, T>)(pb, N, cwid, pl, v0,
                                                                           (const double *)lfl_data(lse), pg, per_row,
                                                                           denom);
        st = lfl_cuda_launched(op);
        if (st == LFL_OK && dh)
            st = lfl_cuda_chunk_dh(dev, op, dt, pb, w->dtype, lfl_data(w), N, H, v0, cwid, lfl_data(dh));
        if (st == LFL_OK && dw) st = lfl_cuda_chunk_dw(dev, op, dt, pb, lfl_data(h), N, H, v0, cwid, lfl_data(dw));
    }
    lfl_tensor_release(g);
    lfl_tensor_release(buf);
    return st;
}

extern "C" lfl_status lfl_cuda_linear_cross_entropy_backward(const lfl_lce_args *p, lfl_tensor *g, lfl_tensor *lse,
                                                             int64_t count, lfl_tensor *eager, lfl_tensor *dh,
                                                             lfl_tensor *dw)
{
    if (p->hidden->dtype == LFL_F64) return lce_backward<double>(p, g, lse, count, eager, dh, dw);
    if (p->hidden->dtype == LFL_F32) return lce_backward<float>(p, g, lse, count, eager, dh, dw);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "linear_cross_entropy backward: hidden %s is not implemented on CUDA",
                    lfl_dtype_name(p->hidden->dtype));
}
