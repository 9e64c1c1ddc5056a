/* The MPI backend: non-blocking collectives (MPI_Iallreduce, ...) polled with
 * MPI_Test against the communicator's deadline, so that a rank that died or
 * stalled makes the others fail with the operation's name instead of blocking
 * forever in MPI. Built when CMake finds MPI (LFL_HAVE_MPI); without it
 * lfl_comm_mpi_open reports that the build has no MPI. */
#include "comm.h"

#ifdef LFL_HAVE_MPI
#include <mpi.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

bool lfl_comm_have_mpi(void) { return true; }

const char *lfl_comm_describe(void)
{
    static char buf[MPI_MAX_LIBRARY_VERSION_STRING + 96];
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = 0;
    snprintf(buf, sizeof buf, "%s (lfl ... --nproc N or mpirun -n N lfl ... start ranks)", lib);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static MPI_Datatype mpi_type(lfl_comm_dtype dt)
{
    return dt == LFL_COMM_F32 ? MPI_FLOAT : dt == LFL_COMM_F64 ? MPI_DOUBLE : MPI_BYTE;
}

static MPI_Op mpi_op(lfl_comm_op op)
{
    return op == LFL_COMM_MAX ? MPI_MAX : op == LFL_COMM_MIN ? MPI_MIN : MPI_SUM;
}

static lfl_status mpi_error(lfl_comm *c, const char *op, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    c->failed = true;
    return lfl_fail(LFL_ERR_NET, "comm: %s failed on rank %d of %d: %s", op, c->rank, c->size, msg);
}

/* Polls req until it completes or the deadline passes. A busy poll first (a
 * collective between healthy ranks is usually done in microseconds), then
 * short sleeps so that a rank waiting on a slow one leaves the cores to it. */
static lfl_status wait_req(lfl_comm *c, MPI_Request *req, const char *op, int64_t n, lfl_comm_dtype dt)
{
    double t0 = now_s(), deadline = t0 + c->timeout;
    for (long spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_error(c, op, rc);
        if (done) return LFL_OK;
        if (spins > 2000) {
            if (now_s() > deadline) {
                c->failed = true;
                return lfl_fail(LFL_ERR_NET, "comm: %s of %lld %s did not complete on rank %d of %d within "
                                "ddp_timeout=%g s: another rank has died or stalled", op, (long long)n,
                                dt == LFL_COMM_F32 ? "f32 values" : dt == LFL_COMM_F64 ? "f64 values" : "bytes",
                                c->rank, c->size, c->timeout);
            }
            struct timespec ts = {0, spins > 20000 ? 1000000 : 50000};
            nanosleep(&ts, NULL);
        }
    }
}

/* MPI counts are int: larger buffers go in pieces */
#define CHUNK ((int64_t)1 << 30)

static lfl_status mpi_allreduce(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op)
{
    size_t es = lfl_comm_dtype_size(dt);
    for (int64_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * es, cnt, mpi_type(dt), mpi_op(op), MPI_COMM_WORLD,
                                &req);
        if (rc != MPI_SUCCESS) return mpi_error(c, "all_reduce", rc);
        LFL_TRY(wait_req(c, &req, "all_reduce", n, dt));
    }
    return LFL_OK;
}

static lfl_status mpi_reduce_scatter(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt,
                                     lfl_comm_op op)
{
    if (n > INT_MAX) return lfl_fail(LFL_ERR_ARG, "comm: reduce_scatter of %lld elements per rank (MPI's limit is "
                                     "%d): use smaller buckets", (long long)n, INT_MAX);
    MPI_Request req;
    int rc = MPI_Ireduce_scatter_block(send ? send : MPI_IN_PLACE, recv, (int)n, mpi_type(dt), mpi_op(op),
                                       MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return mpi_error(c, "reduce_scatter", rc);
    return wait_req(c, &req, "reduce_scatter", n * c->size, dt);
}

static lfl_status mpi_allgather(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt)
{
    if (n > INT_MAX) return lfl_fail(LFL_ERR_ARG, "comm: all_gather of %lld elements per rank (MPI's limit is %d): "
                                     "use smaller buckets", (long long)n, INT_MAX);
    MPI_Request req;
    int rc = send ? MPI_Iallgather(send, (int)n, mpi_type(dt), recv, (int)n, mpi_type(dt), MPI_COMM_WORLD, &req)
                  : MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recv, (int)n, mpi_type(dt), MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return mpi_error(c, "all_gather", rc);
    return wait_req(c, &req, "all_gather", n * c->size, dt);
}

static lfl_status mpi_broadcast(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root)
{
    size_t es = lfl_comm_dtype_size(dt);
    for (int64_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off * es, cnt, mpi_type(dt), root, MPI_COMM_WORLD, &req);
        if (rc != MPI_SUCCESS) return mpi_error(c, "broadcast", rc);
        LFL_TRY(wait_req(c, &req, "broadcast", n, dt));
    }
    return LFL_OK;
}

static lfl_status mpi_barrier(lfl_comm *c)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return mpi_error(c, "barrier", rc);
    return wait_req(c, &req, "barrier", 0, LFL_COMM_BYTE);
}

static void mpi_finalize(lfl_comm *c)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

static const lfl_comm_backend mpi_backend = {
    .name = "mpi", .allreduce = mpi_allreduce, .reduce_scatter = mpi_reduce_scatter, .allgather = mpi_allgather,
    .broadcast = mpi_broadcast, .barrier = mpi_barrier, .finalize = mpi_finalize,
};

lfl_status lfl_comm_mpi_open(lfl_comm *c)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    /* only the calling thread talks to MPI (OpenMP threads never do) */
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return lfl_fail(LFL_ERR_NET, "comm: MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_rank(local, &c->local_rank);
        MPI_Comm_size(local, &c->local_size);
        MPI_Comm_free(&local);
    } else {
        c->local_rank = c->rank;
        c->local_size = c->size;
    }
    c->be = &mpi_backend;
    return LFL_OK;
}

#else

bool lfl_comm_have_mpi(void) { return false; }

const char *lfl_comm_describe(void)
{
    return "none (built without libopenmpi-dev: one process only, --nproc N > 1 is refused)";
}

lfl_status lfl_comm_mpi_open(lfl_comm *c)
{
    return lfl_fail(LFL_ERR_UNSUPPORTED, "comm: lfl was built without MPI (libopenmpi-dev was not found by CMake)");
}

#endif
