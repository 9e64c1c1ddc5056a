/* The backend-independent half of the communicator: the world singleton, MEAN
 * as SUM + scaling, byte counting, argument checks (see comm.h). */
#include "comm.h"

#include "../blas.h"
#include "../util/cpus.h"

#include <omp.h>
#include <stdlib.h>

static lfl_comm *g_world;

bool lfl_comm_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

size_t lfl_comm_dtype_size(lfl_comm_dtype dt)
{
    return dt == LFL_COMM_F32 ? 4 : dt == LFL_COMM_F64 ? 8 : 1;
}

lfl_status lfl_comm_world(lfl_comm **out)
{
    if (g_world) {
        *out = g_world;
        return LFL_OK;
    }
    lfl_comm *c = calloc(1, sizeof *c);
    if (!c) return lfl_fail(LFL_ERR_MEM, "comm: out of memory");
    c->timeout = LFL_COMM_DEFAULT_TIMEOUT;
    c->size = c->local_size = 1;
    c->device = -1;
    if (lfl_comm_launched()) {
        if (!lfl_comm_have_mpi()) {
            free(c);
            return lfl_fail(LFL_ERR_UNSUPPORTED, "comm: this process was started by mpirun (OMPI_COMM_WORLD_SIZE / "
                            "PMIX_RANK is set) but lfl was built without MPI: install libopenmpi-dev and rebuild");
        }
        lfl_status st = lfl_comm_mpi_open(c);
        if (st) {
            free(c);
            return st;
        }
        /* ranks sharing a machine share its CPUs (mpirun -n N lfl ... without OMP_NUM_THREADS);
         * the count stays fixed: ranks that each followed the others' load would chase each other */
        if (c->local_size > 1 && !getenv("OMP_NUM_THREADS")) {
            int each = lfl_cpus_available() / c->local_size;
            if (each < 1) each = 1;
            omp_set_num_threads(each);
            lfl_blas_set_threads(each);
            lfl_cpus_fix();
        }
    } else {
        c->be = &lfl_comm_none_backend;
    }
    g_world = c;
    *out = c;
    return LFL_OK;
}

lfl_comm *lfl_comm_current(void) { return g_world; }

void lfl_comm_shutdown(void)
{
    if (!g_world) return;
    /* NCCL before MPI: its communicator was bootstrapped over the world; a
     * failed NCCL call may leave work pending that MPI_Finalize would wait on */
    lfl_comm *dev = lfl_comm_device_current();
    if (dev && dev->failed) g_world->failed = true;
    lfl_comm_device_close(g_world->failed);
    if (!g_world->failed && g_world->be->finalize) g_world->be->finalize(g_world);
    /* after a failure the pending requests cannot be cancelled portably: the
     * process exits without MPI_Finalize and the launcher ends the job */
    free(g_world);
    g_world = NULL;
}

lfl_status lfl_comm_set_timeout(lfl_comm *c, double seconds)
{
    if (!(seconds > 0)) return lfl_fail(LFL_ERR_ARG, "comm: timeout must be > 0 seconds, got %g", seconds);
    c->timeout = seconds;
    return LFL_OK;
}

static lfl_status check(lfl_comm *c, const char *op, int64_t n)
{
    if (c->failed)
        return lfl_fail(LFL_ERR_NET, "comm: %s after an earlier collective failed: the job cannot continue", op);
    if (n < 0) return lfl_fail(LFL_ERR_ARG, "comm: %s of %lld elements", op, (long long)n);
    return LFL_OK;
}

static void scale(void *buf, int64_t n, lfl_comm_dtype dt, double s)
{
    if (dt == LFL_COMM_F32) {
        float *p = buf, f = (float)s;
        #pragma omp parallel for if (n > (1 << 16)) schedule(static)
        for (int64_t i = 0; i < n; i++) p[i] *= f;
    } else if (dt == LFL_COMM_F64) {
        double *p = buf;
        for (int64_t i = 0; i < n; i++) p[i] *= s;
    }
}

static lfl_status mean_scale(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt)
{
    if (c->size == 1) return LFL_OK;
    if (c->be->scale) return c->be->scale(c, buf, n, dt, 1.0 / c->size);
    scale(buf, n, dt, 1.0 / c->size);
    return LFL_OK;
}

static lfl_status check_mean(const char *op, lfl_comm_dtype dt, lfl_comm_op o)
{
    if (o == LFL_COMM_MEAN && dt == LFL_COMM_BYTE) return lfl_fail(LFL_ERR_ARG, "comm: %s: mean of bytes", op);
    return LFL_OK;
}

lfl_status lfl_comm_allreduce(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op)
{
    LFL_TRY(check(c, "all_reduce", n));
    LFL_TRY(check_mean("all_reduce", dt, op));
    c->bytes += (uint64_t)n * lfl_comm_dtype_size(dt);
    c->calls++;
    LFL_TRY(c->be->allreduce(c, buf, n, dt, op == LFL_COMM_MEAN ? LFL_COMM_SUM : op));
    if (op == LFL_COMM_MEAN) LFL_TRY(mean_scale(c, buf, n, dt));
    return LFL_OK;
}

lfl_status lfl_comm_reduce_scatter(lfl_comm *c, const void *send, void *recv, int64_t n_each, lfl_comm_dtype dt,
                                   lfl_comm_op op)
{
    LFL_TRY(check(c, "reduce_scatter", n_each));
    LFL_TRY(check_mean("reduce_scatter", dt, op));
    c->bytes += (uint64_t)n_each * (uint64_t)c->size * lfl_comm_dtype_size(dt);
    c->calls++;
    LFL_TRY(c->be->reduce_scatter(c, send, recv, n_each, dt, op == LFL_COMM_MEAN ? LFL_COMM_SUM : op));
    if (op == LFL_COMM_MEAN) LFL_TRY(mean_scale(c, recv, n_each, dt));
    return LFL_OK;
}

lfl_status lfl_comm_allgather(lfl_comm *c, const void *send, void *recv, int64_t n_each, lfl_comm_dtype dt)
{
    LFL_TRY(check(c, "all_gather", n_each));
    c->bytes += (uint64_t)n_each * (uint64_t)c->size * lfl_comm_dtype_size(dt);
    c->calls++;
    return c->be->allgather(c, send, recv, n_each, dt);
}

lfl_status lfl_comm_broadcast(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root)
{
    LFL_TRY(check(c, "broadcast", n));
    if (root < 0 || root >= c->size)
        return lfl_fail(LFL_ERR_ARG, "comm: broadcast from rank %d in a world of %d", root, c->size);
    c->bytes += (uint64_t)n * lfl_comm_dtype_size(dt);
    c->calls++;
    return c->be->broadcast(c, buf, n, dt, root);
}

lfl_status lfl_comm_barrier(lfl_comm *c)
{
    LFL_TRY(check(c, "barrier", 0));
    c->calls++;
    return c->be->barrier(c);
}
