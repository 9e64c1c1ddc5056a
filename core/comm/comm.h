/* The communicator: the collectives data-parallel training needs (all-reduce,
 * reduce-scatter, all-gather, broadcast, barrier) over the ranks of a job, each
 * with a deadline (ddp_timeout) so that a dead or stalled rank fails the job with
 * an error naming the operation instead of hanging it.
 *
 * The backend is a table of functions (lfl_comm_backend): comm_mpi.c (MPI,
 * non-blocking calls polled against the deadline) when lfl is built with MPI,
 * comm_none.c (one process, world size 1) otherwise. A GPU backend (NCCL) adds
 * its own table next to them; nothing above this header changes. */
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
} lfl_comm_backend;

struct lfl_comm {
    const lfl_comm_backend *be;
    int rank, size;             /* in the job */
    int local_rank, local_size; /* among the ranks on this machine */
    double timeout;             /* seconds each collective may take (ddp_timeout) */
    bool failed;                /* a collective timed out or failed: the job cannot go on */
    uint64_t bytes;             /* payload bytes this rank has handed to collectives */
    uint64_t calls;             /* collectives run */
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

/* Starts nproc local ranks of argv (argv[0] = this executable's path) under
 * mpirun with posix_spawn (no shell) and waits: *exit_code is the job's exit
 * status. threads_each > 0 sets OMP_NUM_THREADS for the ranks. Running as root
 * and more ranks than cores are handled (OMPI_ALLOW_RUN_AS_ROOT, --oversubscribe).
 * hostfile (or NULL) spreads the ranks over the machines it lists. */
lfl_status lfl_comm_launch(char *const *argv, int nproc, int threads_each, const char *hostfile, int *exit_code);

#endif
