/* The one-process backend (world size 1): every collective is a copy or nothing. */
#include "comm.h"

#include <string.h>

static lfl_status none_allreduce(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op)
{
    return LFL_OK;
}

static lfl_status none_reduce_scatter(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt,
                                      lfl_comm_op op)
{
    if (send && send != recv) memmove(recv, send, (size_t)n * lfl_comm_dtype_size(dt));
    return LFL_OK;
}

static lfl_status none_allgather(lfl_comm *c, const void *send, void *recv, int64_t n, lfl_comm_dtype dt)
{
    if (send && send != recv) memmove(recv, send, (size_t)n * lfl_comm_dtype_size(dt));
    return LFL_OK;
}

static lfl_status none_broadcast(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root) { return LFL_OK; }
static lfl_status none_barrier(lfl_comm *c) { return LFL_OK; }

const lfl_comm_backend lfl_comm_none_backend = {
    .name = "none", .allreduce = none_allreduce, .reduce_scatter = none_reduce_scatter,
    .allgather = none_allgather, .broadcast = none_broadcast, .barrier = none_barrier, .finalize = NULL,
};
