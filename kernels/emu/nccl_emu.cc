// The NCCL emulator: the entry points of libnccl.so.2 that kernels/comm_nccl.cu
// loads, implemented over MPI on the emulator's device memory (host memory in
// its guarded arena, made readable with lfl_emu::Access while MPI touches it).
// One communicator per process on its only device (cuda:0), ranks = MPI's.
//
// Like the emulator's streams, a collective is done when its call returns:
// it runs a non-blocking MPI collective and polls it until the communicator's
// deadline (lfl_nccl_emu_set_timeout); a peer that died or stalled makes it give
// up and leave ncclRemoteError as the communicator's asynchronous error, which
// is how the backend learns of a failure from real NCCL too. ncclCommAbort and
// ncclCommDestroy free the communicator (after an abort the pending MPI request
// is left: the process is about to end, as with real NCCL).
#include "nccl_emu.h"

#ifdef LFL_HAVE_MPI
// the C API only (Open MPI would otherwise pull in its C++ bindings)
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <stdlib.h>
#include <time.h>

struct ncclComm {
    MPI_Comm mpi;
    int rank, size;
    double timeout;
    ncclResult_t async;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static MPI_Datatype mpi_type(ncclDataType_t t)
{
    return t == ncclFloat32 ? MPI_FLOAT : t == ncclFloat64 ? MPI_DOUBLE : MPI_UNSIGNED_CHAR;
}

static size_t type_size(ncclDataType_t t) { return t == ncclFloat32 ? 4 : t == ncclFloat64 ? 8 : 1; }

static MPI_Op mpi_op(ncclRedOp_t op) { return op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : MPI_SUM; }

static bool valid(ncclDataType_t t) { return t == ncclUint8 || t == ncclFloat32 || t == ncclFloat64; }

// polls req to its end or the deadline; the failure stays on the communicator
static ncclResult_t finish(ncclComm_t c, MPI_Request *req, int rc)
{
    if (rc != MPI_SUCCESS) return c->async = ncclRemoteError, ncclSuccess;
    double deadline = now_s() + c->timeout;
    for (long spins = 0;; spins++) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return c->async = ncclRemoteError, ncclSuccess;
        if (done) return ncclSuccess;
        if (spins > 2000) {
            if (now_s() > deadline) return c->async = ncclRemoteError, ncclSuccess;
            struct timespec ts = {0, spins > 20000 ? 1000000 : 50000};
            nanosleep(&ts, NULL);
        }
    }
}

static ncclResult_t emu_get_version(int *v)
{
    *v = 22809; // the NCCL whose API this emulates (2.28.9)
    return ncclSuccess;
}

static ncclResult_t emu_get_unique_id(ncclUniqueId *id)
{
    // what real NCCL puts here is a bootstrap address; the emulator's ranks
    // find each other through MPI, so the id only has to match across ranks
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "lfl-nccl-emu %lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
    return ncclSuccess;
}

static ncclResult_t emu_comm_init_rank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank)
{
    int inited = 0, size = 0, me = 0;
    MPI_Initialized(&inited);
    if (!inited) return ncclSystemError;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != size || rank != me) return ncclInvalidArgument;
    // every rank must hold rank 0's id (the bootstrap's broadcast worked)
    ncclUniqueId root = id;
    if (MPI_Bcast(root.internal, sizeof root.internal, MPI_CHAR, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ncclSystemError;
    int same = memcmp(root.internal, id.internal, sizeof id.internal) == 0, all = 0;
    if (MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) return ncclSystemError;
    if (!same) return ncclInvalidArgument;
    if (!all) return ncclSystemError;
    ncclComm_t c = (ncclComm_t)calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi) != MPI_SUCCESS) {
        free(c);
        return ncclSystemError;
    }
    MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN);
    c->rank = rank, c->size = size, c->timeout = 1800, c->async = ncclSuccess;
    *out = c;
    return ncclSuccess;
}

static ncclResult_t emu_comm_destroy(ncclComm_t c)
{
    if (!c) return ncclInvalidArgument;
    MPI_Comm_free(&c->mpi);
    free(c);
    return ncclSuccess;
}

static ncclResult_t emu_comm_abort(ncclComm_t c)
{
    if (!c) return ncclInvalidArgument;
    free(c); // the dup'ed MPI communicator may have a request pending: left to the process's end
    return ncclSuccess;
}

static ncclResult_t emu_get_async_error(ncclComm_t c, ncclResult_t *e)
{
    if (!c) return ncclInvalidArgument;
    *e = c->async;
    return ncclSuccess;
}

static const char *emu_error_string(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    }
    return "unknown result code";
}

static ncclResult_t check_call(ncclComm_t c, ncclDataType_t t)
{
    if (!c || !valid(t)) return ncclInvalidArgument;
    // a failed communicator takes no more work (real NCCL: until aborted)
    if (c->async != ncclSuccess) return c->async;
    return ncclSuccess;
}

static ncclResult_t emu_all_reduce(const void *send, void *recv, size_t n, ncclDataType_t t, ncclRedOp_t op,
                                   ncclComm_t c, cudaStream_t)
{
    if (ncclResult_t r = check_call(c, t)) return r;
    if (n > INT32_MAX) return ncclInvalidArgument;
    lfl_emu::Access touch;
    MPI_Request req;
    int rc = MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)n, mpi_type(t), mpi_op(op), c->mpi, &req);
    return finish(c, &req, rc);
}

// recv = block `rank` of send reduced; in place when recv == send + rank * n
static ncclResult_t emu_reduce_scatter(const void *send, void *recv, size_t n, ncclDataType_t t, ncclRedOp_t op,
                                       ncclComm_t c, cudaStream_t)
{
    if (ncclResult_t r = check_call(c, t)) return r;
    if (n > INT32_MAX) return ncclInvalidArgument;
    lfl_emu::Access touch;
    size_t es = type_size(t);
    bool in_place = (const char *)send + (size_t)c->rank * n * es == (const char *)recv;
    MPI_Request req;
    // MPI's in-place form leaves the result at the buffer's start, NCCL's at the rank's block
    int rc = MPI_Ireduce_scatter_block(in_place ? MPI_IN_PLACE : send, in_place ? (void *)send : recv, (int)n,
                                       mpi_type(t), mpi_op(op), c->mpi, &req);
    ncclResult_t r = finish(c, &req, rc);
    if (r == ncclSuccess && c->async == ncclSuccess && in_place && c->rank > 0) memmove(recv, send, n * es);
    return r;
}

// recv = the send blocks of every rank; in place when send == recv + rank * n
static ncclResult_t emu_all_gather(const void *send, void *recv, size_t n, ncclDataType_t t, ncclComm_t c,
                                   cudaStream_t)
{
    if (ncclResult_t r = check_call(c, t)) return r;
    if (n > INT32_MAX) return ncclInvalidArgument;
    lfl_emu::Access touch;
    bool in_place = (const char *)recv + (size_t)c->rank * n * type_size(t) == (const char *)send;
    MPI_Request req;
    int rc = in_place ? MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recv, (int)n, mpi_type(t), c->mpi, &req)
                      : MPI_Iallgather(send, (int)n, mpi_type(t), recv, (int)n, mpi_type(t), c->mpi, &req);
    return finish(c, &req, rc);
}

static ncclResult_t emu_broadcast(const void *send, void *recv, size_t n, ncclDataType_t t, int root, ncclComm_t c,
                                  cudaStream_t)
{
    if (ncclResult_t r = check_call(c, t)) return r;
    if (n > INT32_MAX || root < 0 || root >= c->size) return ncclInvalidArgument;
    lfl_emu::Access touch;
    if (c->rank == root && send != recv) memmove(recv, send, n * type_size(t));
    MPI_Request req;
    int rc = MPI_Ibcast(recv, (int)n, mpi_type(t), root, c->mpi, &req);
    return finish(c, &req, rc);
}

lfl_nccl_api lfl_nccl_emu_api(void)
{
    lfl_nccl_api a;
    a.get_version = emu_get_version;
    a.get_unique_id = emu_get_unique_id;
    a.comm_init_rank = emu_comm_init_rank;
    a.comm_destroy = emu_comm_destroy;
    a.comm_abort = emu_comm_abort;
    a.comm_get_async_error = emu_get_async_error;
    a.get_error_string = emu_error_string;
    a.all_reduce = emu_all_reduce;
    a.reduce_scatter = emu_reduce_scatter;
    a.all_gather = emu_all_gather;
    a.broadcast = emu_broadcast;
    return a;
}

void lfl_nccl_emu_set_timeout(ncclComm_t c, double seconds)
{
    if (c) c->timeout = seconds;
}

#else // no MPI: there is nothing to emulate NCCL over

lfl_nccl_api lfl_nccl_emu_api(void)
{
    lfl_nccl_api a;
    memset(&a, 0, sizeof a);
    return a;
}

void lfl_nccl_emu_set_timeout(ncclComm_t, double) {}

#endif
