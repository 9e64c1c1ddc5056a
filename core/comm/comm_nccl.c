/* The device communicator's core half (see comm.h): made once over the world,
 * the choice of CUDA device per rank, the one-process case (no NCCL needed:
 * the collectives are device-to-device copies) and, in builds without CUDA,
 * the refusals. The NCCL backend itself is kernels/comm_nccl.cu: it needs the
 * CUDA runtime (events, the stream, a scaling kernel for MEAN), which only
 * kernels/ may include, as core/device.h's memory hooks do. */
#include "comm.h"

#include "../device.h"

#include <stdlib.h>

static lfl_comm *g_device;

lfl_status lfl_comm_device_pick(int count, int rank, int local_rank, int local_size, int *device)
{
    if (count <= 0) return lfl_fail(LFL_ERR_DEVICE, "comm: rank %d has no CUDA device", rank);
    if (count >= local_size) *device = local_rank;
    /* every process was handed its own device (CUDA_VISIBLE_DEVICES per rank,
     * or the emulator, whose cuda:0 is each process's own memory) */
    else if (count == 1) *device = 0;
    else return lfl_fail(LFL_ERR_DEVICE, "comm: %d ranks on this machine but %d CUDA devices: rank %d (local rank %d) "
                         "has none of its own; start at most %d ranks per machine", local_size, count, rank,
                         local_rank, count);
    return LFL_OK;
}

lfl_status lfl_comm_device_choice(const lfl_comm *world, int *device)
{
    int n = lfl_device_count();
    if (n <= 0) return lfl_fail(LFL_ERR_DEVICE, "comm: rank %d has no CUDA device (%s)", world->rank,
                                lfl_device_describe());
    return lfl_comm_device_pick(n, world->rank, world->local_rank, world->local_size, device);
}

/* ---- one process: nothing to exchange, only the copies the calls imply ---- */

static lfl_status local_allreduce(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op)
{
    (void)c, (void)buf, (void)n, (void)dt, (void)op;
    return LFL_OK;
}

static lfl_status local_reduce_scatter(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt,
                                       lfl_comm_op op)
{
    (void)op;
    if (!send || send == recv || n == 0) return LFL_OK;
    return lfl_device_memcpy(c->device, recv, send, (size_t)n * lfl_comm_dtype_size(dt), 2);
}

static lfl_status local_allgather(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt)
{
    if (!send || send == recv || n == 0) return LFL_OK;
    return lfl_device_memcpy(c->device, recv, send, (size_t)n * lfl_comm_dtype_size(dt), 2);
}

static lfl_status local_broadcast(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root)
{
    (void)c, (void)buf, (void)n, (void)dt, (void)root;
    return LFL_OK;
}

static lfl_status local_barrier(lfl_comm *c)
{
    (void)c;
    return LFL_OK;
}

static const lfl_comm_backend local_backend = {
    .name = "local", .allreduce = local_allreduce, .reduce_scatter = local_reduce_scatter,
    .allgather = local_allgather, .broadcast = local_broadcast, .barrier = local_barrier,
};

lfl_status lfl_comm_device(lfl_comm **out)
{
    if (g_device) {
        *out = g_device;
        return LFL_OK;
    }
    lfl_comm *w;
    LFL_TRY(lfl_comm_world(&w));
    int device;
    LFL_TRY(lfl_comm_device_choice(w, &device));
    lfl_comm *c = calloc(1, sizeof *c);
    if (!c) return lfl_fail(LFL_ERR_MEM, "comm: out of memory");
    c->rank = w->rank, c->size = w->size, c->local_rank = w->local_rank, c->local_size = w->local_size;
    c->timeout = w->timeout;
    c->device = device;
    if (w->size == 1) {
        c->be = &local_backend;
    } else {
        lfl_status st = lfl_comm_nccl_open(w, c);
        if (st) {
            free(c);
            return st;
        }
    }
    g_device = c;
    *out = c;
    return LFL_OK;
}

lfl_comm *lfl_comm_device_current(void) { return g_device; }

void lfl_comm_device_close(bool failed)
{
    if (!g_device) return;
    if (failed) g_device->failed = true;
    if (g_device->be->finalize) g_device->be->finalize(g_device);
    free(g_device);
    g_device = NULL;
}

#ifndef LFL_HAVE_CUDA
const char *lfl_comm_nccl_describe(bool *ok)
{
    *ok = false;
    return "not built (CPU-only build: device buffers need lfl built with CUDA)";
}

lfl_status lfl_comm_nccl_open(lfl_comm *world, lfl_comm *c)
{
    (void)world, (void)c;
    return lfl_fail(LFL_ERR_UNSUPPORTED, "comm: NCCL needs lfl built with CUDA (this is a CPU-only build)");
}
#endif
