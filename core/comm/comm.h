/* The communicator: the collectives data-parallel training needs (all-reduce,
 * reduce-scatter, all-gather, broadcast, barrier) over the ranks of a job, each
 * with a deadline (ddp_timeout) so that a dead or stalled rank fails the job with
 * an error naming the operation instead of hanging it.
 *
 * The backend is a table of functions (lfl_comm_backend): comm_mpi.c (MPI,
 * non-blocking calls polled against the deadline) when lfl is built with MPI,
 * comm_none.c (one process, world size 1) otherwise. The device communicator
 * (lfl_comm_device) has the NCCL backend's table (kernels/comm_nccl.cu: it
 * needs the CUDA runtime, so it lives with the kernels; core/comm/comm_nccl.c
 * makes it over the world and holds the fallbacks of builds without CUDA):
 * the same calls on buffers in CUDA device memory. */
#ifndef LFL_COMM_H
#define LFL_COMM_H

#include <stdbool.h>
#include <stdint.h>

#include "../status.h"

typedef enum { LFL_COMM_F32, LFL_COMM_F64, LFL_COMM_BYTE } lfl_comm_dtype;
/* MEAN is SUM then a division by the world size (floating types only) */
typedef enum { LFL_COMM_SUM, LFL_COMM_MEAN, LFL_COMM_MAX, LFL_COMM_MIN } lfl_comm_op;

typedef struct lfl_comm lfl_comm;

/* What a backend implements. Counts are elements; every call is collective and
 * must finish within c->timeout seconds or fail naming itself. MEAN never reaches
 * a backend (lfl_comm_* turns it into SUM + scaling). */
typedef struct {
    const char *name;
    lfl_status (*allreduce)(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op);
    lfl_status (*reduce_scatter)(lfl_comm *c, const void *send, void *recv, int64_t n_each, lfl_comm_dtype dt,
                                 lfl_comm_op op);
    lfl_status (*allgather)(lfl_comm *c, const void *send, void *recv, int64_t n_each, lfl_comm_dtype dt);
    lfl_status (*broadcast)(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root);
    lfl_status (*barrier)(lfl_comm *c);
    void (*finalize)(lfl_comm *c);
    /* buf *= s for MEAN; NULL: buf is host memory and comm.c scales it */
    lfl_status (*scale)(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, double s);
} lfl_comm_backend;

struct lfl_comm {
    const lfl_comm_backend *be;
    int rank, size;             /* in the job */
    int local_rank, local_size; /* among the ranks on this machine */
    double timeout;             /* seconds each collective may take (ddp_timeout) */
    bool failed;                /* a collective timed out or failed: the job cannot go on */
    uint64_t bytes;             /* payload bytes this rank has handed to collectives */
    uint64_t calls;             /* collectives run */
    int device;                 /* -1: buffers in host memory; else the CUDA device they live on */
    void *impl;                 /* the backend's own state */
};

/* Default deadline: transformers' ddp_timeout (1800 s). */
#define LFL_COMM_DEFAULT_TIMEOUT 1800.0

/* Whether this build has a multi-process backend (MPI). */
bool lfl_comm_have_mpi(void);
/* "Open MPI v4.1.4 (...): lfl --nproc N or mpirun -n N lfl start ranks", or why there is none. */
const char *lfl_comm_describe(void);
/* Whether the process was started as one rank of a launcher (mpirun/mpiexec:
 * OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK in the environment). */
bool lfl_comm_launched(void);

/* The job's communicator, made on the first call: MPI when launched by mpirun
 * (an error when this build has no MPI), else one process (size 1). */
lfl_status lfl_comm_world(lfl_comm **out);
/* The communicator if lfl_comm_world has run, else NULL. */
lfl_comm *lfl_comm_current(void);
/* Ends the MPI job cleanly (MPI_Finalize) unless a collective failed, in which
 * case the process must just exit non-zero (the launcher then ends the others). */
void lfl_comm_shutdown(void);

lfl_status lfl_comm_set_timeout(lfl_comm *c, double seconds);
size_t lfl_comm_dtype_size(lfl_comm_dtype dt);

/* In place over every rank: buf = op(buf of all ranks). */
lfl_status lfl_comm_allreduce(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, lfl_comm_op op);
/* send holds size * n_each elements; rank r receives op over ranks of block r.
 * send == NULL: in place, recv holds the size * n_each inputs and gets the result
 * in its first n_each elements. */
lfl_status lfl_comm_reduce_scatter(lfl_comm *c, const void *send, void *recv, int64_t n_each, lfl_comm_dtype dt,
                                   lfl_comm_op op);
/* recv (size * n_each) = the send blocks of ranks 0..size-1 in order.
 * send == NULL: in place, this rank's block is already at recv + rank * n_each. */
lfl_status lfl_comm_allgather(lfl_comm *c, const void *send, void *recv, int64_t n_each, lfl_comm_dtype dt);
lfl_status lfl_comm_broadcast(lfl_comm *c, void *buf, int64_t n, lfl_comm_dtype dt, int root);
lfl_status lfl_comm_barrier(lfl_comm *c);

/* The backends (comm_none.c always; comm_mpi.c with MPI, else it fails). */
extern const lfl_comm_backend lfl_comm_none_backend;
lfl_status lfl_comm_mpi_open(lfl_comm *c);

/* The device communicator, made on the first call over the world (which it
 * makes first): NCCL, one communicator per process on the CUDA device
 * lfl_comm_device_choice names, its unique id made on rank 0 and broadcast
 * over the world. Its collectives take device buffers on that device; its
 * timeout starts as the world's. A world of one process needs no NCCL: the
 * collectives are then local (copies and MEAN = the buffer itself). */
lfl_status lfl_comm_device(lfl_comm **out);
/* The device communicator if lfl_comm_device has run, else NULL. */
lfl_comm *lfl_comm_device_current(void);
/* The CUDA device a rank uses: local_rank when the machine shows at least
 * local_size devices, 0 when each process sees exactly one (CUDA_VISIBLE_DEVICES
 * per rank, or the emulator's one device per process), else an error. */
lfl_status lfl_comm_device_choice(const lfl_comm *world, int *device);
/* The same rule for a machine showing `count` devices. */
lfl_status lfl_comm_device_pick(int count, int rank, int local_rank, int local_size, int *device);
/* "NCCL 2.27.7 (libnccl.so.2)", or why there is none; *ok says whether it can run. */
const char *lfl_comm_nccl_describe(bool *ok);
/* Opens c (rank, size, local_*, timeout and device already set) as NCCL over
 * world's ranks: kernels/comm_nccl.cu, or an error without CUDA. */
lfl_status lfl_comm_nccl_open(lfl_comm *world, lfl_comm *c);
/* Ends the device communicator (lfl_comm_shutdown calls it first); failed:
 * a collective failed, so NCCL is aborted instead of destroyed. */
void lfl_comm_device_close(bool failed);

/* Starts nproc local ranks of argv (argv[0] = this executable's path) under
 * mpirun with posix_spawn (no shell) and waits: *exit_code is the job's exit
 * status. threads_each > 0 sets OMP_NUM_THREADS for the ranks. Running as root
 * and more ranks than cores are handled (OMPI_ALLOW_RUN_AS_ROOT, --oversubscribe).
 * hostfile (or NULL) spreads the ranks over the machines it lists. */
lfl_status lfl_comm_launch(char *const *argv, int nproc, int threads_each, const char *hostfile, int *exit_code);

#endif
