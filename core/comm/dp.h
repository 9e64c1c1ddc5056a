/* Data-parallel synchronisation of a fixed list of f32 tensors (the trainable
 * parameters, their gradients, optimizer states) over a communicator.
 *
 * The tensors are seen as one flat vector, cut into buckets of at most
 * bucket_elems elements, so that a step makes a few large collectives instead of
 * one per tensor. Each bucket is padded to a multiple of the world size and rank
 * r owns the r-th of its equal slices (ZeRO's partition): the rank's shard is the
 * concatenation of its slices, bucket after bucket. Used by stage 0 (all-reduce
 * of the gradients), ZeRO-1 (the optimizer steps the shard, then all-gather) and
 * ZeRO-2 (reduce-scatter of the gradients into the shard). */
#ifndef LFL_COMM_DP_H
#define LFL_COMM_DP_H

#include "../tensor.h"
#include "comm.h"

typedef struct {
    int64_t tensor;      /* index in the list */
    int64_t offset;      /* element offset in that tensor */
    int64_t shard_offset;/* element offset in the shard */
    int64_t len;
} lfl_dp_piece;

typedef struct lfl_dp {
    lfl_comm *comm;
    int64_t ntensors;
    int64_t *numel;      /* per tensor */
    int64_t *start;      /* flat offset of each tensor */
    int64_t total;       /* sum of numel */
    int64_t nbuckets;
    int64_t *bstart, *blen, *bslice; /* per bucket: flat start, length, slice (padded length / world size) */
    int64_t shard_numel; /* sum of bslice */
    lfl_dp_piece *pieces;/* the rank's shard as runs inside the tensors */
    int64_t npieces;
    float *stage;        /* one padded bucket where the tensors live (comm->device), made on first use
                          * (lfl_dp_trim frees it) */
    int64_t stage_len;
} lfl_dp;

/* shapes: the numel of each tensor; bucket_elems >= 1 */
lfl_status lfl_dp_new(lfl_comm *c, const int64_t *numel, int64_t n, int64_t bucket_elems, lfl_dp **out);
void lfl_dp_free(lfl_dp *dp);
/* Frees the staging buffer (one padded bucket); the next collective makes it again. */
void lfl_dp_trim(lfl_dp *dp);

/* Every tensor must be contiguous f32 with the numel given at creation, on the
 * communicator's device (c->device: -1 the host, else CUDA memory); a NULL
 * entry counts as zeros (an unused parameter's missing gradient) when reading,
 * and is an error when it must be written. */

/* In place: each tensor = the mean over ranks (stage 0 / ZeRO-1 gradients). */
lfl_status lfl_dp_allreduce_mean(lfl_dp *dp, lfl_tensor *const *ts);
/* shard (f32, shard_numel) = this rank's slice of the mean over ranks (ZeRO-2). */
lfl_status lfl_dp_reduce_scatter_mean(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard);
/* shard += this rank's slice of the mean over ranks (ZeRO-3's micro-batches accumulating). */
lfl_status lfl_dp_reduce_scatter_mean_add(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard);
/* shard = this rank's slice of the tensors (no communication). */
lfl_status lfl_dp_pack_shard(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard);
/* tensors = the shards of all ranks put together (after the optimizer stepped its shard). */
lfl_status lfl_dp_allgather(lfl_dp *dp, lfl_tensor *shard, lfl_tensor *const *ts);
/* ZeRO without shard copies: the reduce-scatter's result (this rank's slice
 * of the mean) is written into the tensors' own slice, the rest of them is left
 * as it was (not reduced: only the slice may be read after). */
lfl_status lfl_dp_reduce_scatter_mean_inplace(lfl_dp *dp, lfl_tensor *const *ts);
/* Every rank's slice of the tensors (after each stepped its own) to every rank. */
lfl_status lfl_dp_allgather_inplace(lfl_dp *dp, lfl_tensor *const *ts);
/* tensors = rank root's tensors. */
lfl_status lfl_dp_broadcast(lfl_dp *dp, lfl_tensor *const *ts, int root);

#endif
