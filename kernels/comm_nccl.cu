// The NCCL backend of the communicator (core/comm/comm.h) for buffers in CUDA
// device memory. libnccl.so.2 is dlopen'ed on first use, never linked (as
// cuBLAS is: kernels/blas.cu), so lfl runs where NCCL is absent until a
// multi-GPU job asks for it; the emulator build takes kernels/emu/nccl_emu.cc's
// entry points instead. It lives with the kernels because it needs the CUDA
// runtime (an event per call, the stream, a kernel for MEAN's scaling).
//
// Bootstrap: rank 0 makes the unique id, the world communicator (MPI)
// broadcasts it, each process opens one NCCL communicator on its device.
// Every collective is enqueued on lfl's stream, an event recorded after it,
// and the event polled against the deadline together with
// ncclCommGetAsyncError: a peer that died or stalled makes the call fail
// naming the operation, and the NCCL communicator is aborted (it cannot be
// used again; nor can the job, as with the MPI backend).
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "common.cuh"
#include "nccl.cuh"
#ifdef LFL_CUDA_EMU
#include "emu/nccl_emu.h"
#endif
extern "C" {
#include "comm/comm.h"
}

static lfl_nccl_api api_;
static bool api_tried_, api_ok_;
static char api_why_[256];
static int api_version_;

static bool load_api(void)
{
    if (api_tried_) return api_ok_;
    api_tried_ = true;
#ifdef LFL_CUDA_EMU
    api_ = lfl_nccl_emu_api();
    if (!api_.get_version) {
        snprintf(api_why_, sizeof api_why_, "the NCCL emulator needs lfl built with MPI");
        return false;
    }
#else
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(api_why_, sizeof api_why_, "libnccl.so.2 not found (%s)", dlerror());
        return false;
    }
    api_.get_version = (decltype(api_.get_version))dlsym(h, "ncclGetVersion");
    api_.get_unique_id = (decltype(api_.get_unique_id))dlsym(h, "ncclGetUniqueId");
    api_.comm_init_rank = (decltype(api_.comm_init_rank))dlsym(h, "ncclCommInitRank");
    api_.comm_destroy = (decltype(api_.comm_destroy))dlsym(h, "ncclCommDestroy");
    api_.comm_abort = (decltype(api_.comm_abort))dlsym(h, "ncclCommAbort");
    api_.comm_get_async_error = (decltype(api_.comm_get_async_error))dlsym(h, "ncclCommGetAsyncError");
    api_.get_error_string = (decltype(api_.get_error_string))dlsym(h, "ncclGetErrorString");
    api_.all_reduce = (decltype(api_.all_reduce))dlsym(h, "ncclAllReduce");
    api_.reduce_scatter = (decltype(api_.reduce_scatter))dlsym(h, "ncclReduceScatter");
    api_.all_gather = (decltype(api_.all_gather))dlsym(h, "ncclAllGather");
    api_.broadcast = (decltype(api_.broadcast))dlsym(h, "ncclBroadcast");
    void **fns = (void **)&api_;
    for (size_t i = 0; i < sizeof api_ / sizeof(void *); i++)
        if (!fns[i]) {
            snprintf(api_why_, sizeof api_why_, "libnccl.so.2 lacks an entry point lfl needs (NCCL >= 2.7 required)");
            return false;
        }
#endif
    api_.get_version(&api_version_);
    api_ok_ = true;
    return true;
}

extern "C" const char *lfl_comm_nccl_describe(bool *ok)
{
    static char buf[320];
    *ok = load_api();
    if (!*ok) return api_why_;
    int v = api_version_;
    // NCCL_VERSION_CODE: X*10000+Y*100+Z since 2.9, X*1000+Y*100+Z before
    int major = v >= 10000 ? v / 10000 : v / 1000, minor = v >= 10000 ? (v % 10000) / 100 : (v % 1000) / 100;
#ifdef LFL_CUDA_EMU
    snprintf(buf, sizeof buf, "NCCL emulator over MPI (API of %d.%d.%d; each rank's cuda:0 is its own process's)",
             major, minor, v % 100);
#else
    snprintf(buf, sizeof buf, "NCCL %d.%d.%d (libnccl.so.2): device buffers, one CUDA device per rank", major, minor,
             v % 100);
#endif
    return buf;
}

struct NcclImpl {
    ncclComm_t comm;
    cudaEvent_t done;
    void *scratch; // one device float for barrier
    double t0;     // when the current call started
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *what(lfl_comm_dtype dt)
{
    return dt == LFL_COMM_F32 ? "f32 values" : dt == LFL_COMM_F64 ? "f64 values" : "bytes";
}

static ncclDataType_t nccl_type(lfl_comm_dtype dt)
{
    return dt == LFL_COMM_F32 ? ncclFloat32 : dt == LFL_COMM_F64 ? ncclFloat64 : ncclUint8;
}

static ncclRedOp_t nccl_op(lfl_comm_op op)
{
    return op == LFL_COMM_MAX ? ncclMax : op == LFL_COMM_MIN ? ncclMin : ncclSum;
}

static lfl_status failed(lfl_comm *c, const char *op, int64_t n, lfl_comm_dtype dt, const char *why)
{
    NcclImpl *im = (NcclImpl *)c->impl;
    c->failed = true;
    // the communicator may hold work that never ends: abort it now so that
    // nothing waits on it at exit (lfl_comm_device_close then skips it)
    if (im->comm) api_.comm_abort(im->comm);
    im->comm = NULL;
    return lfl_fail(LFL_ERR_NET, "comm: %s of %lld %s on cuda:%d (nccl) failed on rank %d of %d: %s", op,
                    (long long)n, what(dt), c->device, c->rank, c->size, why);
}

// After an enqueue: polls the event and NCCL's asynchronous error until the
// call is done, fails or passes the deadline; a busy poll first, then sleeps.
static lfl_status finish(lfl_comm *c, ncclResult_t r, const char *op, int64_t n, lfl_comm_dtype dt)
{
    NcclImpl *im = (NcclImpl *)c->impl;
    char why[256];
    if (r != ncclSuccess && r != ncclInProgress) {
        snprintf(why, sizeof why, "NCCL: %s", api_.get_error_string(r));
        return failed(c, op, n, dt, why);
    }
    cudaError_t e = cudaEventRecord(im->done, lfl_cuda_stream());
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "CUDA: %s", cudaGetErrorString(e));
        return failed(c, op, n, dt, why);
    }
    double t0 = im->t0, deadline = t0 + c->timeout;
    for (long spins = 0;; spins++) {
        ncclResult_t async = ncclSuccess;
        api_.comm_get_async_error(im->comm, &async);
        if (async != ncclSuccess && async != ncclInProgress) {
            snprintf(why, sizeof why, "NCCL: %s after %.1f s: another rank has died or stalled (ddp_timeout=%g s)",
                     api_.get_error_string(async), now_s() - t0, c->timeout);
            return failed(c, op, n, dt, why);
        }
        e = cudaEventQuery(im->done);
        if (e == cudaSuccess) return LFL_OK;
        if (e != cudaErrorNotReady) {
            snprintf(why, sizeof why, "CUDA: %s", cudaGetErrorString(e));
            return failed(c, op, n, dt, why);
        }
        if (spins > 2000) {
            if (now_s() > deadline) {
                snprintf(why, sizeof why, "did not complete within ddp_timeout=%g s: another rank has died or stalled",
                         c->timeout);
                return failed(c, op, n, dt, why);
            }
            struct timespec ts = {0, spins > 20000 ? 1000000 : 50000};
            nanosleep(&ts, NULL);
        }
    }
}

static lfl_status start(lfl_comm *c, const char *op)
{
    NcclImpl *im = (NcclImpl *)c->impl;
    if (!im->comm) return lfl_fail(LFL_ERR_NET, "comm: %s on an aborted NCCL communicator", op);
    im->t0 = now_s();
#ifdef LFL_CUDA_EMU
    lfl_nccl_emu_set_timeout(im->comm, c->timeout);
#endif
    return lfl_cuda_use(c->device, op);
}

static lfl_status nccl_allreduce(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op)
{
    if (n == 0) return LFL_OK;
    LFL_TRY(start(c, "all_reduce"));
    NcclImpl *im = (NcclImpl *)c->impl;
    ncclResult_t r = api_.all_reduce(buf, buf, (size_t)n, nccl_type(dt), nccl_op(op), im->comm, lfl_cuda_stream());
    return finish(c, r, "all_reduce", n, dt);
}

static lfl_status nccl_reduce_scatter(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt,
                                      lfl_comm_op op)
{
    if (n == 0) return LFL_OK;
    LFL_TRY(start(c, "reduce_scatter"));
    NcclImpl *im = (NcclImpl *)c->impl;
    size_t es = lfl_comm_dtype_size(dt);
    // comm.h's in-place form wants the result at the buffer's start, NCCL's
    // leaves it at this rank's block: reduce in place, then move it down
    char *mine = send ? (char *)recv : (char *)recv + (size_t)c->rank * (size_t)n * es;
    ncclResult_t r = api_.reduce_scatter(send ? send : recv, mine, (size_t)n, nccl_type(dt), nccl_op(op), im->comm,
                                         lfl_cuda_stream());
    LFL_TRY(finish(c, r, "reduce_scatter", n * c->size, dt));
    if (mine != (char *)recv) {
        cudaError_t e = cudaMemcpyAsync(recv, mine, (size_t)n * es, cudaMemcpyDeviceToDevice, lfl_cuda_stream());
        if (e != cudaSuccess)
            return lfl_fail(LFL_ERR_DEVICE, "comm: reduce_scatter: copying the result: %s", cudaGetErrorString(e));
    }
    return LFL_OK;
}

static lfl_status nccl_allgather(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt)
{
    if (n == 0) return LFL_OK;
    LFL_TRY(start(c, "all_gather"));
    NcclImpl *im = (NcclImpl *)c->impl;
    const void *s = send ? send : (const char *)recv + (size_t)c->rank * (size_t)n * lfl_comm_dtype_size(dt);
    ncclResult_t r = api_.all_gather(s, recv, (size_t)n, nccl_type(dt), im->comm, lfl_cuda_stream());
    return finish(c, r, "all_gather", n * c->size, dt);
}

static lfl_status nccl_broadcast(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root)
{
    if (n == 0) return LFL_OK;
    LFL_TRY(start(c, "broadcast"));
    NcclImpl *im = (NcclImpl *)c->impl;
    ncclResult_t r = api_.broadcast(buf, buf, (size_t)n, nccl_type(dt), root, im->comm, lfl_cuda_stream());
    return finish(c, r, "broadcast", n, dt);
}

// NCCL has no barrier: a one-element all-reduce is one (every rank must enter it)
static lfl_status nccl_barrier(lfl_comm *c)
{
    LFL_TRY(start(c, "barrier"));
    NcclImpl *im = (NcclImpl *)c->impl;
    ncclResult_t r = api_.all_reduce(im->scratch, im->scratch, 1, ncclFloat32, ncclSum, im->comm, lfl_cuda_stream());
    return finish(c, r, "barrier", 0, LFL_COMM_BYTE);
}

template <typename T> __global__ void comm_scale_kernel(T *x, long long n, T s)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] *= s;
}

static lfl_status nccl_scale(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, double s)
{
    if (n == 0 || dt == LFL_COMM_BYTE) return LFL_OK;
    LFL_TRY(lfl_cuda_use(c->device, "comm mean"));
    unsigned blocks = lfl_cuda_blocks(n, 256);
    if (blocks > 65536) blocks = 65536;
    if (dt == LFL_COMM_F32) LFL_LAUNCH(blocks, 256, 0, comm_scale_kernel<float>)((float *)buf, n, (float)s);
    else LFL_LAUNCH(blocks, 256, 0, comm_scale_kernel<double>)((double *)buf, n, s);
    return lfl_cuda_launched("comm mean");
}

static void nccl_finalize(lfl_comm *c)
{
    NcclImpl *im = (NcclImpl *)c->impl;
    if (!im) return;
    if (im->comm) {
        if (c->failed) api_.comm_abort(im->comm);
        else api_.comm_destroy(im->comm);
    }
    if (im->done) cudaEventDestroy(im->done);
    if (im->scratch) cudaFree(im->scratch);
    free(im);
    c->impl = NULL;
}

static const lfl_comm_backend nccl_backend = {
    "nccl", nccl_allreduce, nccl_reduce_scatter, nccl_allgather, nccl_broadcast, nccl_barrier, nccl_finalize,
    nccl_scale,
};

extern "C" lfl_status lfl_comm_nccl_open(lfl_comm *world, lfl_comm *c)
{
    bool ok;
    const char *why = lfl_comm_nccl_describe(&ok);
    // every rank must know whether all can go on before any enters NCCL's
    // initialisation, which waits for all of them
    double have = ok ? 1 : 0;
    LFL_TRY(lfl_comm_allreduce(world, &have, 1, LFL_COMM_F64, LFL_COMM_MIN));
    if (!ok) return lfl_fail(LFL_ERR_UNSUPPORTED, "comm: NCCL on rank %d: %s", c->rank, why);
    if (!have) return lfl_fail(LFL_ERR_UNSUPPORTED, "comm: NCCL is missing on another rank (see its error)");
    LFL_TRY(lfl_cuda_use(c->device, "comm: NCCL"));
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t r = ncclSuccess;
    if (c->rank == 0) r = api_.get_unique_id(&id);
    // a failure on rank 0 must reach the others before they wait on the id
    double bad = r != ncclSuccess;
    LFL_TRY(lfl_comm_broadcast(world, &bad, 1, LFL_COMM_F64, 0));
    if (bad) return lfl_fail(LFL_ERR_NET, "comm: ncclGetUniqueId failed on rank 0%s%s", c->rank == 0 ? ": " : "",
                             c->rank == 0 ? api_.get_error_string(r) : "");
    LFL_TRY(lfl_comm_broadcast(world, id.internal, sizeof id.internal, LFL_COMM_BYTE, 0));
    NcclImpl *im = (NcclImpl *)calloc(1, sizeof *im);
    if (!im) return lfl_fail(LFL_ERR_MEM, "comm: out of memory");
    c->impl = im;
    cudaError_t e = cudaEventCreateWithFlags(&im->done, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaMalloc(&im->scratch, sizeof(float));
    if (e == cudaSuccess) e = cudaMemset(im->scratch, 0, sizeof(float));
    if (e != cudaSuccess) {
        nccl_finalize(c);
        return lfl_fail(LFL_ERR_DEVICE, "comm: NCCL on cuda:%d: %s", c->device, cudaGetErrorString(e));
    }
    r = api_.comm_init_rank(&im->comm, c->size, id, c->rank);
    if (r != ncclSuccess) {
        im->comm = NULL;
        nccl_finalize(c);
        return lfl_fail(LFL_ERR_NET, "comm: ncclCommInitRank on rank %d of %d (cuda:%d): %s", c->rank, c->size,
                        c->device, api_.get_error_string(r));
    }
    c->be = &nccl_backend;
    return LFL_OK;
}
