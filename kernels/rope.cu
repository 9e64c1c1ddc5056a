// rope (rotate-half rotary embedding), its backward and rope_cos_sin (the
// cos/sin tables from position ids) on CUDA, as core/ops/rope.c computes
// them (f32, f64). Each thread takes the pair (j, j + D/2) of a row, so x,
// cos and sin are read once; a 2-D block puts threadIdx.x along the pair
// index (coalesced) and threadIdx.y over rows, decoding a row's (b, h, t) once
// per thread and row.
#include "rows.cuh"

// the block shape for rows of `half` pairs: x along pairs, y over rows, 256 threads
static inline dim3 pair_block(long long half)
{
    unsigned bx = half >= 128 ? 128 : (unsigned)((half + 31) / 32 * 32);
    if (bx < 32) bx = 32;
    return dim3(bx, 256 / bx);
}

static inline unsigned pair_grid(long long rows, dim3 blk)
{
    long long n = (rows + blk.y - 1) / blk.y, cap = 1LL << 20;
    return (unsigned)(n < 1 ? 1 : n > cap ? cap : n);
}

struct rope_dims {
    long long Hh, T, D, Bc;   // heads, positions, head dim, cos/sin batch (1: shared)
    long long sxb, sxh, sxt;  // x's strides over (b, h, t); its last dim is unit-stride
};

template <typename T>
__global__ void rope_fwd(const T *x, const T *cs, const T *sn, T *y, long long rows, rope_dims p)
{
    long long h = p.D / 2;
    for (long long row = blockIdx.x * (long long)blockDim.y + threadIdx.y; row < rows;
         row += (long long)gridDim.x * blockDim.y) {
        long long t = row % p.T, bh = row / p.T, hh = bh % p.Hh, b = bh / p.Hh;
        const T *xr = x + b * p.sxb + hh * p.sxh + t * p.sxt;
        long long co = ((p.Bc == 1 ? 0 : b) * p.T + t) * p.D;
        const T *c = cs + co, *s = sn + co;
        T *yr = y + row * p.D;
        for (long long j = threadIdx.x; j < h; j += blockDim.x) {
            T x1 = xr[j], x2 = xr[j + h];
            yr[j] = x1 * c[j] - x2 * s[j];
            yr[j + h] = x2 * c[j + h] + x1 * s[j + h];
        }
    }
}

// dx = g * cos + R^T (g * sin): (R^T y)[j] = y[j + D/2] below D/2, -y[j - D/2] above
template <typename T> __global__ void rope_bwd(const T *g, const T *cs, const T *sn, T *dx, long long rows, rope_dims p)
{
    long long h = p.D / 2;
    for (long long row = blockIdx.x * (long long)blockDim.y + threadIdx.y; row < rows;
         row += (long long)gridDim.x * blockDim.y) {
        long long t = row % p.T, b = row / (p.Hh * p.T);
        long long co = ((p.Bc == 1 ? 0 : b) * p.T + t) * p.D;
        const T *c = cs + co, *s = sn + co, *gr = g + row * p.D;
        T *d = dx + row * p.D;
        for (long long j = threadIdx.x; j < h; j += blockDim.x) {
            T g1 = gr[j], g2 = gr[j + h];
            d[j] = g1 * c[j] + g2 * s[j + h];
            d[j + h] = g2 * c[j + h] - g1 * s[j];
        }
    }
}

template <typename T>
static lfl_status rope_launch(bool fwd, const T *in, lfl_tensor *cos, lfl_tensor *sin, T *out, long long rows,
                              rope_dims p)
{
    dim3 blk = pair_block(p.D / 2);
    if (fwd)
        LFL_LAUNCH(pair_grid(rows, blk), blk, 0, rope_fwd<T>)(in, (const T *)lfl_data(cos), (const T *)lfl_data(sin),
                                                               out, rows, p);
    else
        LFL_LAUNCH(pair_grid(rows, blk), blk, 0, rope_bwd<T>)(in, (const T *)lfl_data(cos), (const T *)lfl_data(sin),
                                                               out, rows, p);
    return lfl_cuda_launched(fwd ? "rope" : "rope backward");
}

extern "C" lfl_status lfl_cuda_rope(lfl_tensor *x, lfl_tensor *cos, lfl_tensor *sin, lfl_tensor *out)
{
    rope_dims p = {x->shape[1], x->shape[2], x->shape[3], cos->ndim == 3 ? cos->shape[0] : 1,
                   x->stride[0], x->stride[1], x->stride[2]};
    long long rows = x->shape[0] * p.Hh * p.T;
    if (rows == 0 || p.D == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(out->device, "rope"));
    LFL_F32_F64_SWITCH(x->dtype, "rope", T,
                       return rope_launch<T>(true, (const T *)lfl_data(x), cos, sin, (T *)lfl_data(out), rows, p));
    return LFL_OK;
}

extern "C" lfl_status lfl_cuda_rope_backward(lfl_tensor *g, lfl_tensor *cos, lfl_tensor *sin, lfl_tensor *dx)
{
    rope_dims p = {dx->shape[1], dx->shape[2], dx->shape[3], cos->ndim == 3 ? cos->shape[0] : 1, 0, 0, 0};
    long long rows = dx->shape[0] * p.Hh * p.T;
    if (rows == 0 || p.D == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dx->device, "rope backward"));
    LFL_F32_F64_SWITCH(g->dtype, "rope backward", T,
                       return rope_launch<T>(false, (const T *)lfl_data(g), cos, sin, (T *)lfl_data(dx), rows, p));
    return LFL_OK;
}

// ---- rope_cos_sin -----------------------------------------------------------------
// In f32 whatever the output dtype, as HF's LlamaRotaryEmbedding:
// f = float(pos) * inv_freq[k], cos/sin(f) * scaling, written at k and k + h.
struct cos_sin_dims {
    long long B, T, h;
    long long sp0, sp1; // position strides over (b, t); sp0 unused for 1-D positions
    long long sf;       // inv_freq's stride
};

template <typename P, typename F, typename O>
__global__ void rope_cos_sin_kernel(const P *pos, const F *inv_freq, float scaling, O *c, O *s, cos_sin_dims p)
{
    long long rows = p.B * p.T;
    for (long long r = blockIdx.x * (long long)blockDim.y + threadIdx.y; r < rows;
         r += (long long)gridDim.x * blockDim.y) {
        long long b = r / p.T, t = r % p.T;
        float fp = (float)(long long)pos[b * p.sp0 + t * p.sp1];
        O *cr = c + r * 2 * p.h, *sr = s + r * 2 * p.h;
        for (long long k = threadIdx.x; k < p.h; k += blockDim.x) {
            float f = fp * (float)inv_freq[k * p.sf];
            float cv = cosf(f) * scaling, sv = sinf(f) * scaling;
            cr[k] = cr[k + p.h] = (O)cv;
            sr[k] = sr[k + p.h] = (O)sv;
        }
    }
}

template <typename P, typename F, typename O>
static lfl_status cos_sin_launch(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_tensor *c, lfl_tensor *s,
                                 cos_sin_dims p)
{
    dim3 blk = pair_block(p.h);
    LFL_LAUNCH(pair_grid(p.B * p.T, blk), blk, 0, rope_cos_sin_kernel<P, F, O>)(
        (const P *)lfl_data(pos), (const F *)lfl_data(inv_freq), (float)scaling, (O *)lfl_data(c), (O *)lfl_data(s), p);
    return lfl_cuda_launched("rope_cos_sin");
}

template <typename P, typename F>
static lfl_status cos_sin_out(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_tensor *c, lfl_tensor *s,
                              cos_sin_dims p)
{
    LFL_F32_F64_SWITCH(c->dtype, "rope_cos_sin", O, return cos_sin_launch<P, F, O>(pos, inv_freq, scaling, c, s, p));
    return LFL_OK;
}

template <typename P>
static lfl_status cos_sin_freq(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_tensor *c, lfl_tensor *s,
                               cos_sin_dims p)
{
    LFL_F32_F64_SWITCH(inv_freq->dtype, "rope_cos_sin", F, return cos_sin_out<P, F>(pos, inv_freq, scaling, c, s, p));
    return LFL_OK;
}

// pos [B, T] or [T] (i64 or i32, any strides), inv_freq [h] (f32 or f64, any
// stride); c, s [B, T, 2h] contiguous f32 or f64
extern "C" lfl_status lfl_cuda_rope_cos_sin(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_tensor *c,
                                            lfl_tensor *s)
{
    cos_sin_dims p;
    p.B = c->shape[0];
    p.T = c->shape[1];
    p.h = inv_freq->shape[0];
    p.sp0 = pos->ndim == 2 ? pos->stride[0] : 0;
    p.sp1 = pos->stride[pos->ndim - 1];
    p.sf = inv_freq->stride[0];
    if (p.B * p.T == 0 || p.h == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(c->device, "rope_cos_sin"));
    if (pos->dtype == LFL_I64) return cos_sin_freq<int64_t>(pos, inv_freq, scaling, c, s, p);
    if (pos->dtype == LFL_I32) return cos_sin_freq<int32_t>(pos, inv_freq, scaling, c, s, p);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "rope_cos_sin: position dtype %s is not implemented on CUDA",
                    lfl_dtype_name(pos->dtype));
}
