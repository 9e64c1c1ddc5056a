// sum's CUDA entry: any set of dims of a contiguous f32/f64 tensor reduced
// (bit d of the mask: dim d), accumulated in f64 like the CPU kernel.
//
// The shape is first simplified: size-1 dims dropped, neighbouring dims that
// are both kept or both reduced merged, so the kernel sees a few kept and a
// few reduced dims. Then one of two layouts:
//   - the innermost dim is reduced (a row sum, a full sum): a warp or a block
//     per output walks its reduced elements, consecutive threads on
//     consecutive addresses, and reduces in a fixed tree;
//   - the innermost dim is kept (a sum over leading dims, sum_to's broadcast
//     gradients): 32 consecutive outputs per block row, 8 rows of threads
//     splitting the reduced elements, combined in shared memory in order.
// When that leaves too few blocks for the GPU (few outputs, long reductions)
// the reduction is split over gridDim.y into f64 partials that a second
// kernel adds in order. Deterministic: no atomics, the same order every run.
#include "dimwise.cuh"

struct SumDims {
    int n;
    long long shape[LFL_MAX_DIMS], stride[LFL_MAX_DIMS];
};

// element offset of the i-th position (row-major) over the dims in s
__device__ static inline long long sum_offset(long long i, const SumDims &s)
{
    if (s.n == 1) return i * s.stride[0];
    long long off = 0;
    for (int d = s.n - 1; d >= 0; d--) {
        long long k = i % s.shape[d];
        i /= s.shape[d];
        off += k * s.stride[d];
    }
    return off;
}

// writes the total of output oi of split blockIdx.y: the value, or a partial
template <typename T>
__device__ static inline void sum_store(T *out, double *ws, long long nout, long long oi, double acc)
{
    if (gridDim.y == 1) out[oi] = (T)acc;
    else ws[blockIdx.y * nout + oi] = acc;
}

// innermost dim reduced: TPO threads (a warp, or the whole block) per output
template <typename T, int TPO>
__global__ void sum_rows_kernel(const T *x, T *out, double *ws, SumDims kept, SumDims red, long long nout,
                                long long nred, long long chunk)
{
    __shared__ double scratch[32];
    const int groups = 256 / TPO;
    int lane = threadIdx.x % TPO, group = threadIdx.x / TPO;
    long long r0 = blockIdx.y * chunk, r1 = r0 + chunk < nred ? r0 + chunk : nred;
    for (long long ob = (long long)blockIdx.x * groups; ob < nout; ob += (long long)gridDim.x * groups) {
        long long oi = ob + group; // uniform across the TPO threads that share it
        double acc = 0;
        if (oi < nout) {
            const T *base = x + sum_offset(oi, kept);
            for (long long r = r0 + lane; r < r1; r += TPO) acc += (double)base[sum_offset(r, red)];
        }
        if (TPO == 32) acc = lfl_warp_sum(acc);
        else acc = lfl_block_sum(acc, scratch);
        if (lane == 0 && oi < nout) sum_store(out, ws, nout, oi, acc);
    }
}

// innermost dim kept: a block of 32 x 8 threads, x over 32 outputs, y over the reduction
template <typename T>
__global__ void sum_cols_kernel(const T *x, T *out, double *ws, SumDims kept, SumDims red, long long nout,
                                long long nred, long long chunk)
{
    __shared__ double part[8][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    long long r0 = blockIdx.y * chunk, r1 = r0 + chunk < nred ? r0 + chunk : nred;
    for (long long ob = (long long)blockIdx.x * 32; ob < nout; ob += (long long)gridDim.x * 32) {
        long long oi = ob + tx;
        double acc = 0;
        if (oi < nout) {
            const T *base = x + sum_offset(oi, kept);
            for (long long r = r0 + ty; r < r1; r += 8) acc += (double)base[sum_offset(r, red)];
        }
        part[ty][tx] = acc;
        __syncthreads();
        if (ty == 0 && oi < nout) {
            double t = part[0][tx];
            for (int k = 1; k < 8; k++) t += part[k][tx];
            sum_store(out, ws, nout, oi, t);
        }
        __syncthreads(); // part is rewritten by the next round
    }
}

// the splits' partials, added in split order
template <typename T> __global__ void sum_finish_kernel(const double *ws, T *out, long long nout, int splits)
{
    for (long long oi = blockIdx.x * (long long)blockDim.x + threadIdx.x; oi < nout;
         oi += (long long)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int s = 0; s < splits; s++) acc += ws[s * nout + oi];
        out[oi] = (T)acc;
    }
}

// a grid of `bx` blocks wants about this many blocks in all before it splits the reduction
#define SUM_WANT_BLOCKS 512
#define SUM_MAX_BLOCKS 4096

template <typename T>
static lfl_status sum_launch(const lfl_tensor *c, const SumDims &kept, const SumDims &red, bool rows, long long nout,
                             long long nred, lfl_tensor *r)
{
    const T *x = (const T *)lfl_data(c);
    T *out = (T *)lfl_data(r);
    int tpo = rows ? (nred <= 1024 ? 32 : 256) : 0;
    // per block: outputs covered, and reduced elements one split round takes
    long long per_block = rows ? 256 / tpo : 32, step = rows ? tpo : 8;
    unsigned bx = lfl_cuda_grid(nout, (int)per_block, SUM_MAX_BLOCKS);
    // split the reduction while blocks are few and every thread still gets >= 8 elements a split
    long long splits = 1;
    if (bx < SUM_WANT_BLOCKS) {
        long long by_work = nred / (step * 8);
        splits = (SUM_WANT_BLOCKS + bx - 1) / bx;
        if (splits > by_work) splits = by_work;
        if (splits > 65535) splits = 65535;
        if (splits < 1) splits = 1;
    }
    long long chunk = (nred + splits - 1) / splits;
    if (chunk < 1) chunk = 1;
    splits = nred > 0 ? (nred + chunk - 1) / chunk : 1;
    lfl_tensor *wst = NULL;
    double *ws = NULL;
    if (splits > 1) {
        LFL_TRY(lfl_cuda_scratch(r->device, splits * nout * (long long)sizeof(double), &wst));
        ws = (double *)lfl_data(wst);
    }
    dim3 grid(bx, (unsigned)splits);
    if (!rows) LFL_LAUNCH(grid, dim3(32, 8), 0, sum_cols_kernel<T>)(x, out, ws, kept, red, nout, nred, chunk);
    else if (tpo == 32) LFL_LAUNCH(grid, 256, 0, sum_rows_kernel<T, 32>)(x, out, ws, kept, red, nout, nred, chunk);
    else LFL_LAUNCH(grid, 256, 0, sum_rows_kernel<T, 256>)(x, out, ws, kept, red, nout, nred, chunk);
    lfl_status st = lfl_cuda_launched("sum");
    if (st == LFL_OK && splits > 1) {
        LFL_LAUNCH(lfl_cuda_grid(nout, 256, SUM_MAX_BLOCKS), 256, 0, sum_finish_kernel<T>)(ws, out, nout, (int)splits);
        st = lfl_cuda_launched("sum");
    }
    lfl_tensor_release(wst); // back to the cache: its next user runs after these kernels on the stream
    return st;
}

extern "C" lfl_status lfl_cuda_sum(lfl_tensor *c, int64_t mask, lfl_tensor *r)
{
    long long nout = lfl_numel(r), total = lfl_numel(c);
    if (nout == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(r->device, "sum"));
    if (total == 0) { // an empty reduction: zeros
        cudaError_t e = cudaMemsetAsync(lfl_data(r), 0, (size_t)nout * lfl_dtype_size(r->dtype), lfl_cuda_stream());
        return e == cudaSuccess ? LFL_OK : lfl_fail(LFL_ERR_DEVICE, "sum: CUDA: %s", cudaGetErrorString(e));
    }
    // merge runs of kept / reduced dims (c is contiguous), dropping size-1 dims
    SumDims kept, red;
    kept.n = red.n = 0;
    int last = -1; // flag of the previous dim taken: 0 kept, 1 reduced
    for (int d = 0; d < c->ndim; d++) {
        if (c->shape[d] == 1) continue;
        int f = (int)((mask >> d) & 1);
        SumDims &s = f ? red : kept;
        if (f == last) {
            s.shape[s.n - 1] *= c->shape[d];
            s.stride[s.n - 1] = c->stride[d];
        } else {
            s.shape[s.n] = c->shape[d];
            s.stride[s.n] = c->stride[d];
            s.n++;
        }
        last = f;
    }
    long long nred = total / nout;
    bool rows = last == 1; // the innermost dim is reduced
    LFL_F32_F64_SWITCH(c->dtype, "sum", T, return sum_launch<T>(c, kept, red, rows, nout, nred, r));
    return LFL_OK;
}
