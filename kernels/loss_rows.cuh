// Shared by the CUDA loss kernels (cross_entropy.cu, token_logprobs.cu): the
// per-row log-sum-exp with the label's logit, the loss reduction with the
// label check, and the softmax gradient, as core/ops/loss.c's CPU kernels
// compute them (lse kept in f64, ignored rows (-100) contribute nothing, the
// mean over no rows is NaN, a bad label fails with the CPU's message).
#ifndef LFL_KERNELS_LOSS_ROWS_CUH
#define LFL_KERNELS_LOSS_ROWS_CUH

#include <math.h>
#include "rows.cuh"
extern "C" {
#include "ops/loss.h"
}

__device__ static inline float loss_exp(float v) { return expf(v); }
__device__ static inline double loss_exp(double v) { return exp(v); }

enum { LOSS_CE = 0, LOSS_LOGPROB = 1 };

// One block per row: lse[r] = log sum exp x[r, :] (NaN for an all -inf row,
// as the CPU), and the row's value, lse - x[label] (LOSS_CE) or x[label] - lse
// (LOSS_LOGPROB), 0 on an ignored row, into rowval (f64) and out (T), either
// NULL. One pass over the row: each thread keeps an online max and sum of its
// elements (in T), combined over the block in double.
template <typename T>
__global__ void loss_lse_rows(const T *x, const int64_t *labels, long long rows, long long V, int kind, double *lse,
                              double *rowval, T *out)
{
    __shared__ double scratch[32];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * V;
        T m = -INFINITY, s = 0;
        for (long long j = threadIdx.x; j < V; j += blockDim.x) {
            T v = xr[j];
            if (v > m) {
                s = s * loss_exp(m - v) + (T)1;
                m = v;
            } else if (!(v == -INFINITY)) { // NaN goes in (and stays); -inf adds 0
                s += loss_exp(v - m);
            }
        }
        double M = lfl_block_max((double)m, scratch);
        double S = lfl_block_sum(s == 0 ? 0.0 : (double)s * exp((double)m - M), scratch);
        double l = M == -INFINITY ? __longlong_as_double(0x7ff8000000000000LL) : M + log(S);
        if (threadIdx.x == 0) {
            int64_t lab = labels[r];
            double pick = lab >= 0 && lab < V ? (double)xr[lab] : 0.0;
            double v = lab == LFL_IGNORE_INDEX ? 0.0 : kind == LOSS_CE ? l - pick : pick - l;
            lse[r] = l;
            if (rowval) rowval[r] = v;
            if (out) out[r] = (T)v;
        }
    }
}

// One block: status[0] = the rows not ignored, status[1] = the first row whose
// label is neither -100 nor in [0, V) (-1: none); for a mean or sum reduction
// also out[0] from rowval, summed in a fixed order.
template <typename T>
__global__ void loss_finish(const double *rowval, const int64_t *labels, long long rows, long long V, int red, T *out,
                            long long *status)
{
    __shared__ double sd[32];
    __shared__ long long sl[32];
    long long cnt = 0, key = 0; // key: rows - first bad row, 0 for none (so the block max finds the first)
    double tot = 0;
    for (long long i = threadIdx.x; i < rows; i += blockDim.x) {
        int64_t lab = labels[i];
        if (lab == LFL_IGNORE_INDEX) continue;
        if (!(lab >= 0 && lab < V) && key == 0) key = rows - i;
        cnt++;
        if (rowval) tot += rowval[i];
    }
    cnt = lfl_block_sum(cnt, sl);
    key = lfl_block_max(key, sl);
    tot = lfl_block_sum(tot, sd);
    if (threadIdx.x == 0) {
        status[0] = cnt;
        status[1] = key ? rows - key : -1;
        if (red == LFL_REDUCE_SUM) out[0] = (T)tot;
        else if (red == LFL_REDUCE_MEAN) // torch: the mean over no rows is 0/0
            out[0] = (T)(cnt ? tot / (double)cnt : __longlong_as_double(0x7ff8000000000000LL));
    }
}

// dx[r, j] = coef_r * (exp(x[r, j] - lse[r]) - [j == label]), 0 on ignored
// rows; coef_r = sign * g[r] (no reduction), sign * g (sum), sign * g / count (mean)
template <typename T>
__global__ void loss_softmax_grad(const T *x, const int64_t *labels, const double *lse, const T *g, int red,
                                  long long count, double sign, T *dx, long long rows, long long V)
{
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t lab = labels[r];
        T *dr = dx + r * V;
        if (lab == LFL_IGNORE_INDEX) {
            for (long long j = threadIdx.x; j < V; j += blockDim.x) dr[j] = 0;
            continue;
        }
        double coef = red == LFL_REDUCE_NONE
                          ? sign * (double)g[r]
                          : sign * (double)g[0] / (red == LFL_REDUCE_MEAN && count > 0 ? (double)count : 1.0);
        T c = (T)coef, l = (T)lse[r];
        const T *xr = x + r * V;
        for (long long j = threadIdx.x; j < V; j += blockDim.x) {
            T v = loss_exp(xr[j] - l) * c;
            if (j == lab) v -= c;
            dr[j] = v;
        }
    }
}

// The forward of a loss op: lse, the rows' values reduced by `red` into out,
// *count; a bad label fails with the CPU kernel's message (the labels are
// copied to the host only then).
template <typename T>
static lfl_status loss_forward(const char *op, int kind, lfl_tensor *x, lfl_tensor *lab, lfl_reduction red,
                               lfl_tensor *lse, lfl_tensor *out, int64_t *count)
{
    int64_t V = x->shape[x->ndim - 1], rows = lfl_numel(lse);
    int dev = x->device;
    LFL_TRY(lfl_cuda_use(dev, op));
    int64_t two = 2;
    lfl_tensor *status = NULL, *rowval = NULL;
    lfl_status st = lfl_empty(1, &two, LFL_I64, dev, &status);
    if (st == LFL_OK && red != LFL_REDUCE_NONE && rows > 0) st = lfl_empty(1, &rows, LFL_F64, dev, &rowval);
    if (st == LFL_OK) {
        const int64_t *pl = (const int64_t *)lfl_data(lab);
        double *pv = rowval ? (double *)lfl_data(rowval) : (double *)0;
        if (rows > 0)
            LFL_LAUNCH(lfl_row_blocks(rows), lfl_row_threads(V, 512), 0, loss_lse_rows<T>)(
                (const T *)lfl_data(x), pl, rows, V, kind, (double *)lfl_data(lse), pv,
                red == LFL_REDUCE_NONE ? (T *)lfl_data(out) : (T *)0);
        LFL_LAUNCH(1, 256, 0, loss_finish<T>)((const double *)pv, pl, rows, V, (int)red, (T *)lfl_data(out),
                                              (long long *)lfl_data(status));
        st = lfl_cuda_launched(op);
    }
    long long host[2] = {0, -1};
    if (st == LFL_OK) st = lfl_device_memcpy(dev, host, lfl_data(status), sizeof host, 1);
    if (st == LFL_OK && host[1] >= 0) {
        lfl_tensor *h = NULL;
        st = lfl_to_device(lab, LFL_CPU, &h);
        if (st == LFL_OK) st = lfl_loss_labels_check(op, h, V);
        if (st == LFL_OK) // the device saw a bad label the host check did not: name it anyway
            st = lfl_fail(LFL_ERR_ARG, "%s: label at row %lld is outside [0, %lld)", op, host[1], (long long)V);
        lfl_tensor_release(h);
    }
    if (st == LFL_OK) *count = host[0];
    lfl_tensor_release(status);
    lfl_tensor_release(rowval);
    return st;
}

template <typename T>
static lfl_status loss_backward(const char *op, lfl_tensor *g, lfl_tensor *x, lfl_tensor *lab, lfl_tensor *lse,
                                lfl_reduction red, int64_t count, double sign, lfl_tensor *dx)
{
    long long V = x->shape[x->ndim - 1], rows = lfl_numel(lse);
    if (rows == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(x->device, op));
    lfl_tensor *gc;
    LFL_TRY(lfl_contiguous(g, &gc));
    LFL_LAUNCH(lfl_row_blocks(rows), lfl_row_threads(V, 512), 0, loss_softmax_grad<T>)(
        (const T *)lfl_data(x), (const int64_t *)lfl_data(lab), (const double *)lfl_data(lse),
        (const T *)lfl_data(gc), (int)red, (long long)count, sign, (T *)lfl_data(dx), rows, V);
    lfl_status st = lfl_cuda_launched(op);
    lfl_tensor_release(gc);
    return st;
}

#endif
