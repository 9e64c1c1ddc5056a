/* Data-parallel bucket layout and the collectives over it (see dp.h). */
#include "dp.h"

#include <stdlib.h>
#include <string.h>

lfl_status lfl_dp_new(lfl_comm *c, const int64_t *numel, int64_t n, int64_t bucket_elems, lfl_dp **out)
{
    if (bucket_elems < 1) return lfl_fail(LFL_ERR_ARG, "dp: bucket size must be >= 1 element, got %lld",
                                          (long long)bucket_elems);
    lfl_dp *dp = calloc(1, sizeof *dp);
    if (!dp) return lfl_fail(LFL_ERR_MEM, "dp: out of memory");
    dp->comm = c;
    dp->ntensors = n;
    dp->numel = calloc((size_t)n + 1, sizeof *dp->numel);
    dp->start = calloc((size_t)n + 1, sizeof *dp->start);
    if (!dp->numel || !dp->start) goto oom;
    for (int64_t i = 0; i < n; i++) {
        if (numel[i] < 0) {
            lfl_dp_free(dp);
            return lfl_fail(LFL_ERR_ARG, "dp: tensor %lld has %lld elements", (long long)i + 1, (long long)numel[i]);
        }
        dp->numel[i] = numel[i];
        dp->start[i] = dp->total;
        dp->total += numel[i];
    }
    int64_t W = c->size;
    dp->nbuckets = dp->total == 0 ? 0 : (dp->total + bucket_elems - 1) / bucket_elems;
    int64_t nb = dp->nbuckets;
    dp->bstart = calloc((size_t)nb + 1, sizeof(int64_t));
    dp->blen = calloc((size_t)nb + 1, sizeof(int64_t));
    dp->bslice = calloc((size_t)nb + 1, sizeof(int64_t));
    if (!dp->bstart || !dp->blen || !dp->bslice) goto oom;
    for (int64_t b = 0; b < nb; b++) {
        dp->bstart[b] = b * bucket_elems;
        dp->blen[b] = dp->total - dp->bstart[b] < bucket_elems ? dp->total - dp->bstart[b] : bucket_elems;
        dp->bslice[b] = (dp->blen[b] + W - 1) / W;
        dp->shard_numel += dp->bslice[b];
        if (dp->bslice[b] * W > dp->stage_len) dp->stage_len = dp->bslice[b] * W;
    }
    /* the pieces: this rank's slice of each bucket, cut at tensor boundaries */
    int64_t cap = n + nb + 1;
    dp->pieces = calloc((size_t)cap, sizeof *dp->pieces);
    if (!dp->pieces) goto oom;
    int64_t soff = 0, t = 0;
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = dp->bstart[b] + c->rank * dp->bslice[b];
        int64_t hi = lo + dp->bslice[b];
        int64_t bend = dp->bstart[b] + dp->blen[b];
        if (hi > bend) hi = bend;
        for (int64_t x = lo; x < hi;) {
            while (t < n && dp->start[t] + dp->numel[t] <= x) t++;
            while (t > 0 && dp->start[t] > x) t--;
            int64_t end = dp->start[t] + dp->numel[t] < hi ? dp->start[t] + dp->numel[t] : hi;
            if (dp->npieces == cap) {
                cap *= 2;
                lfl_dp_piece *p = realloc(dp->pieces, sizeof *p * (size_t)cap);
                if (!p) goto oom;
                dp->pieces = p;
            }
            dp->pieces[dp->npieces++] = (lfl_dp_piece){t, x - dp->start[t], soff + (x - lo), end - x};
            x = end;
        }
        soff += dp->bslice[b];
    }
    *out = dp;
    return LFL_OK;
oom:
    lfl_dp_free(dp);
    return lfl_fail(LFL_ERR_MEM, "dp: out of memory");
}

void lfl_dp_free(lfl_dp *dp)
{
    if (!dp) return;
    free(dp->numel);
    free(dp->start);
    free(dp->bstart);
    free(dp->blen);
    free(dp->bslice);
    free(dp->pieces);
    free(dp->stage);
    free(dp);
}

/* the staging buffer, made on first use: lfl_dp_trim frees it between uses
 * (ZeRO-3 has one layout per layer, whose buffers would add up) */
static lfl_status need_stage(lfl_dp *dp)
{
    if (dp->stage) return LFL_OK;
    dp->stage = malloc(sizeof(float) * (size_t)(dp->stage_len > 0 ? dp->stage_len : 1));
    if (!dp->stage) return lfl_fail(LFL_ERR_MEM, "dp: cannot allocate a %lld-element bucket", (long long)dp->stage_len);
    return LFL_OK;
}

void lfl_dp_trim(lfl_dp *dp)
{
    free(dp->stage);
    dp->stage = NULL;
}

static lfl_status check_tensors(lfl_dp *dp, lfl_tensor *const *ts, const char *op, bool writing)
{
    for (int64_t i = 0; i < dp->ntensors; i++) {
        lfl_tensor *x = ts[i];
        if (!x) {
            if (writing && dp->numel[i] > 0)
                return lfl_fail(LFL_ERR_ARG, "dp: %s: tensor %lld is missing", op, (long long)i + 1);
            continue;
        }
        if (x->dtype != LFL_F32 || !lfl_is_contiguous(x) || x->device >= 0)
            return lfl_fail(LFL_ERR_ARG, "dp: %s: tensor %lld must be a contiguous f32 CPU tensor (got %s%s)", op,
                            (long long)i + 1, lfl_dtype_name(x->dtype), lfl_is_contiguous(x) ? "" : ", strided");
        if (lfl_numel(x) != dp->numel[i])
            return lfl_fail(LFL_ERR_ARG, "dp: %s: tensor %lld has %lld elements, the layout %lld", op,
                            (long long)i + 1, (long long)lfl_numel(x), (long long)dp->numel[i]);
    }
    return LFL_OK;
}

static lfl_status check_shard(lfl_dp *dp, lfl_tensor *shard, const char *op)
{
    if (!shard || shard->dtype != LFL_F32 || !lfl_is_contiguous(shard) || lfl_numel(shard) != dp->shard_numel)
        return lfl_fail(LFL_ERR_ARG, "dp: %s: the shard must be a contiguous f32 tensor of %lld elements", op,
                        (long long)dp->shard_numel);
    return LFL_OK;
}

/* flat [lo, lo+len) of the tensors -> dst (zeros for missing ones) */
static void read_range(lfl_dp *dp, lfl_tensor *const *ts, int64_t lo, int64_t len, float *dst)
{
    int64_t hi = lo + len;
    for (int64_t t = 0; t < dp->ntensors; t++) {
        int64_t a = dp->start[t], b = a + dp->numel[t];
        if (b <= lo || a >= hi) continue;
        int64_t x0 = a > lo ? a : lo, x1 = b < hi ? b : hi;
        if (ts[t]) memcpy(dst + (x0 - lo), (float *)lfl_data(ts[t]) + (x0 - a), sizeof(float) * (size_t)(x1 - x0));
        else memset(dst + (x0 - lo), 0, sizeof(float) * (size_t)(x1 - x0));
    }
}

static void write_range(lfl_dp *dp, lfl_tensor *const *ts, int64_t lo, int64_t len, const float *src)
{
    int64_t hi = lo + len;
    for (int64_t t = 0; t < dp->ntensors; t++) {
        int64_t a = dp->start[t], b = a + dp->numel[t];
        if (b <= lo || a >= hi) continue;
        int64_t x0 = a > lo ? a : lo, x1 = b < hi ? b : hi;
        memcpy((float *)lfl_data(ts[t]) + (x0 - a), src + (x0 - lo), sizeof(float) * (size_t)(x1 - x0));
    }
}

lfl_status lfl_dp_allreduce_mean(lfl_dp *dp, lfl_tensor *const *ts)
{
    LFL_TRY(check_tensors(dp, ts, "all_reduce", true));
    LFL_TRY(need_stage(dp));
    if (dp->comm->size == 1) return LFL_OK;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
        LFL_TRY(lfl_comm_allreduce(dp->comm, dp->stage, dp->blen[b], LFL_COMM_F32, LFL_COMM_MEAN));
        write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
    }
    return LFL_OK;
}

static lfl_status reduce_scatter_mean(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard, bool accumulate)
{
    LFL_TRY(check_tensors(dp, ts, "reduce_scatter", false));
    LFL_TRY(need_stage(dp));
    LFL_TRY(check_shard(dp, shard, "reduce_scatter"));
    float *out = lfl_data(shard);
    int64_t soff = 0;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        int64_t padded = dp->bslice[b] * dp->comm->size, n = dp->bslice[b];
        read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
        memset(dp->stage + dp->blen[b], 0, sizeof(float) * (size_t)(padded - dp->blen[b]));
        if (accumulate) {
            /* in place: the slice lands at the buffer's start, then adds into the shard */
            LFL_TRY(lfl_comm_reduce_scatter(dp->comm, NULL, dp->stage, n, LFL_COMM_F32, LFL_COMM_MEAN));
            for (int64_t i = 0; i < n; i++) out[soff + i] += dp->stage[i];
        } else {
            LFL_TRY(lfl_comm_reduce_scatter(dp->comm, dp->stage, out + soff, n, LFL_COMM_F32, LFL_COMM_MEAN));
        }
        soff += n;
    }
    return LFL_OK;
}

lfl_status lfl_dp_reduce_scatter_mean(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard)
{
    return reduce_scatter_mean(dp, ts, shard, false);
}

lfl_status lfl_dp_reduce_scatter_mean_add(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard)
{
    return reduce_scatter_mean(dp, ts, shard, true);
}

lfl_status lfl_dp_pack_shard(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard)
{
    LFL_TRY(check_tensors(dp, ts, "pack", false));
    LFL_TRY(check_shard(dp, shard, "pack"));
    float *out = lfl_data(shard);
    memset(out, 0, sizeof(float) * (size_t)dp->shard_numel);
    for (int64_t i = 0; i < dp->npieces; i++) {
        lfl_dp_piece *p = &dp->pieces[i];
        if (ts[p->tensor])
            memcpy(out + p->shard_offset, (float *)lfl_data(ts[p->tensor]) + p->offset, sizeof(float) * (size_t)p->len);
    }
    return LFL_OK;
}

lfl_status lfl_dp_allgather(lfl_dp *dp, lfl_tensor *shard, lfl_tensor *const *ts)
{
    LFL_TRY(check_tensors(dp, ts, "all_gather", true));
    LFL_TRY(need_stage(dp));
    LFL_TRY(check_shard(dp, shard, "all_gather"));
    const float *in = lfl_data(shard);
    int64_t soff = 0;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        LFL_TRY(lfl_comm_allgather(dp->comm, in + soff, dp->stage, dp->bslice[b], LFL_COMM_F32));
        write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
        soff += dp->bslice[b];
    }
    return LFL_OK;
}

lfl_status lfl_dp_broadcast(lfl_dp *dp, lfl_tensor *const *ts, int root)
{
    LFL_TRY(check_tensors(dp, ts, "broadcast", true));
    LFL_TRY(need_stage(dp));
    if (dp->comm->size == 1) return LFL_OK;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
        LFL_TRY(lfl_comm_broadcast(dp->comm, dp->stage, dp->blen[b], LFL_COMM_F32, root));
        write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
    }
    return LFL_OK;
}

lfl_status lfl_dp_reduce_scatter_mean_inplace(lfl_dp *dp, lfl_tensor *const *ts)
{
    LFL_TRY(check_tensors(dp, ts, "reduce_scatter", true));
    LFL_TRY(need_stage(dp));
    int64_t W = dp->comm->size, r = dp->comm->rank;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        int64_t padded = dp->bslice[b] * W;
        read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
        memset(dp->stage + dp->blen[b], 0, sizeof(float) * (size_t)(padded - dp->blen[b]));
        LFL_TRY(lfl_comm_reduce_scatter(dp->comm, NULL, dp->stage, dp->bslice[b], LFL_COMM_F32, LFL_COMM_MEAN));
        /* the result is the bucket's slice r, at the buffer's start */
        int64_t lo = dp->bstart[b] + r * dp->bslice[b];
        int64_t hi = lo + dp->bslice[b];
        int64_t bend = dp->bstart[b] + dp->blen[b];
        if (hi > bend) hi = bend;
        if (hi > lo) write_range(dp, ts, lo, hi - lo, dp->stage);
    }
    return LFL_OK;
}

lfl_status lfl_dp_allgather_inplace(lfl_dp *dp, lfl_tensor *const *ts)
{
    LFL_TRY(check_tensors(dp, ts, "all_gather", true));
    LFL_TRY(need_stage(dp));
    int64_t W = dp->comm->size, r = dp->comm->rank;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        int64_t n = dp->bslice[b];
        float *mine = dp->stage + r * n;
        int64_t lo = dp->bstart[b] + r * n;
        int64_t bend = dp->bstart[b] + dp->blen[b];
        int64_t len = lo >= bend ? 0 : (lo + n <= bend ? n : bend - lo);
        if (len > 0) read_range(dp, ts, lo, len, mine);
        memset(mine + len, 0, sizeof(float) * (size_t)(n - len));
        LFL_TRY(lfl_comm_allgather(dp->comm, NULL, dp->stage, n, LFL_COMM_F32));
        (void)W;
        write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage);
    }
    return LFL_OK;
}
