/* Data-parallel bucket layout and the collectives over it (see dp.h). The
 * tensors live where the communicator's buffers do (comm->device: -1 the host,
 * else a CUDA device, whose copies go through core/device.h's hooks). */
#include "dp.h"

#include "../device.h"

#include <stdlib.h>
#include <string.h>

static void free_stage(lfl_dp *dp);

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
    free_stage(dp);
    free(dp);
}

/* the staging buffer, made on first use: lfl_dp_trim frees it between uses
 * (ZeRO-3 has one layout per layer, whose buffers would add up) */
static lfl_status need_stage(lfl_dp *dp)
{
    if (dp->stage) return LFL_OK;
    size_t bytes = sizeof(float) * (size_t)(dp->stage_len > 0 ? dp->stage_len : 1);
    if (dp->comm->device >= 0) {
        void *p = NULL;
        LFL_TRY(lfl_device_alloc(dp->comm->device, bytes, &p));
        dp->stage = p;
        return LFL_OK;
    }
    dp->stage = malloc(bytes);
    if (!dp->stage) return lfl_fail(LFL_ERR_MEM, "dp: cannot allocate a %lld-element bucket", (long long)dp->stage_len);
    return LFL_OK;
}

static void free_stage(lfl_dp *dp)
{
    if (dp->comm->device >= 0) lfl_device_free(dp->comm->device, dp->stage);
    else free(dp->stage);
    dp->stage = NULL;
}

void lfl_dp_trim(lfl_dp *dp) { free_stage(dp); }

/* n floats: dst = src, or zeros when src is NULL, in the communicator's memory */
static lfl_status copy(lfl_dp *dp, float *dst, const float *src, int64_t n)
{
    size_t bytes = sizeof(float) * (size_t)n;
    if (n <= 0) return LFL_OK;
    if (dp->comm->device >= 0)
        return src ? lfl_device_memcpy(dp->comm->device, dst, src, bytes, 2)
                   : lfl_device_memset(dp->comm->device, dst, 0, bytes);
    if (src) memcpy(dst, src, bytes);
    else memset(dst, 0, bytes);
    return LFL_OK;
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
        if (x->dtype != LFL_F32 || !lfl_is_contiguous(x) || x->device != dp->comm->device) {
            char want[32], got[32];
            return lfl_fail(LFL_ERR_ARG, "dp: %s: tensor %lld must be a contiguous f32 tensor on %s (got %s%s on %s)",
                            op, (long long)i + 1, lfl_device_str(dp->comm->device, want, sizeof want),
                            lfl_dtype_name(x->dtype), lfl_is_contiguous(x) ? "" : ", strided",
                            lfl_device_str(x->device, got, sizeof got));
        }
        if (lfl_numel(x) != dp->numel[i])
            return lfl_fail(LFL_ERR_ARG, "dp: %s: tensor %lld has %lld elements, the layout %lld", op,
                            (long long)i + 1, (long long)lfl_numel(x), (long long)dp->numel[i]);
    }
    return LFL_OK;
}

static lfl_status check_shard(lfl_dp *dp, lfl_tensor *shard, const char *op)
{
    char want[32];
    if (!shard || shard->dtype != LFL_F32 || !lfl_is_contiguous(shard) || lfl_numel(shard) != dp->shard_numel ||
        shard->device != dp->comm->device)
        return lfl_fail(LFL_ERR_ARG, "dp: %s: the shard must be a contiguous f32 tensor of %lld elements on %s", op,
                        (long long)dp->shard_numel, lfl_device_str(dp->comm->device, want, sizeof want));
    return LFL_OK;
}

/* flat [lo, lo+len) of the tensors -> dst (zeros for missing ones) */
static lfl_status read_range(lfl_dp *dp, lfl_tensor *const *ts, int64_t lo, int64_t len, float *dst)
{
    int64_t hi = lo + len;
    for (int64_t t = 0; t < dp->ntensors; t++) {
        int64_t a = dp->start[t], b = a + dp->numel[t];
        if (b <= lo || a >= hi) continue;
        int64_t x0 = a > lo ? a : lo, x1 = b < hi ? b : hi;
        LFL_TRY(copy(dp, dst + (x0 - lo), ts[t] ? (float *)lfl_data(ts[t]) + (x0 - a) : NULL, x1 - x0));
    }
    return LFL_OK;
}

static lfl_status write_range(lfl_dp *dp, lfl_tensor *const *ts, int64_t lo, int64_t len, const float *src)
{
    int64_t hi = lo + len;
    for (int64_t t = 0; t < dp->ntensors; t++) {
        int64_t a = dp->start[t], b = a + dp->numel[t];
        if (b <= lo || a >= hi) continue;
        int64_t x0 = a > lo ? a : lo, x1 = b < hi ? b : hi;
        LFL_TRY(copy(dp, (float *)lfl_data(ts[t]) + (x0 - a), src + (x0 - lo), x1 - x0));
    }
    return LFL_OK;
}

lfl_status lfl_dp_allreduce_mean(lfl_dp *dp, lfl_tensor *const *ts)
{
    LFL_TRY(check_tensors(dp, ts, "all_reduce", true));
    LFL_TRY(need_stage(dp));
    if (dp->comm->size == 1) return LFL_OK;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        LFL_TRY(read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
        LFL_TRY(lfl_comm_allreduce(dp->comm, dp->stage, dp->blen[b], LFL_COMM_F32, LFL_COMM_MEAN));
        LFL_TRY(write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
    }
    return LFL_OK;
}

static lfl_status reduce_scatter_mean(lfl_dp *dp, lfl_tensor *const *ts, lfl_tensor *shard, bool accumulate)
{
    LFL_TRY(check_tensors(dp, ts, "reduce_scatter", false));
    LFL_TRY(need_stage(dp));
    LFL_TRY(check_shard(dp, shard, "reduce_scatter"));
    /* ZeRO-3's accumulation adds on the host; ZeRO on a device is refused before it gets here */
    if (accumulate && dp->comm->device >= 0)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "dp: reduce_scatter with accumulation on a CUDA device is not implemented");
    float *out = lfl_data(shard);
    int64_t soff = 0;
    for (int64_t b = 0; b < dp->nbuckets; b++) {
        int64_t padded = dp->bslice[b] * dp->comm->size, n = dp->bslice[b];
        LFL_TRY(read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
        LFL_TRY(copy(dp, dp->stage + dp->blen[b], NULL, padded - dp->blen[b]));
        if (accumulate) {
            /* in place: the slice lands at the buffer's start, then adds into the shard */
            LFL_TRY(lfl_comm_reduce_scatter(dp->comm, NULL, dp->stage, n, LFL_COMM_F32, LFL_COMM_MEAN));
            for (int64_t i = 0; i < n; i++) out[soff + i] += dp->stage[i]; /* host only: see the check above */
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
    LFL_TRY(copy(dp, out, NULL, dp->shard_numel));
    for (int64_t i = 0; i < dp->npieces; i++) {
        lfl_dp_piece *p = &dp->pieces[i];
        if (ts[p->tensor]) LFL_TRY(copy(dp, out + p->shard_offset, (float *)lfl_data(ts[p->tensor]) + p->offset, p->len));
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
        LFL_TRY(write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
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
        LFL_TRY(read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
        LFL_TRY(lfl_comm_broadcast(dp->comm, dp->stage, dp->blen[b], LFL_COMM_F32, root));
        LFL_TRY(write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
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
        LFL_TRY(read_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
        LFL_TRY(copy(dp, dp->stage + dp->blen[b], NULL, padded - dp->blen[b]));
        LFL_TRY(lfl_comm_reduce_scatter(dp->comm, NULL, dp->stage, dp->bslice[b], LFL_COMM_F32, LFL_COMM_MEAN));
        /* the result is the bucket's slice r, at the buffer's start */
        int64_t lo = dp->bstart[b] + r * dp->bslice[b];
        int64_t hi = lo + dp->bslice[b];
        int64_t bend = dp->bstart[b] + dp->blen[b];
        if (hi > bend) hi = bend;
        if (hi > lo) LFL_TRY(write_range(dp, ts, lo, hi - lo, dp->stage));
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
        if (len > 0) LFL_TRY(read_range(dp, ts, lo, len, mine));
        LFL_TRY(copy(dp, mine + len, NULL, n - len));
        LFL_TRY(lfl_comm_allgather(dp->comm, NULL, dp->stage, n, LFL_COMM_F32));
        (void)W;
        LFL_TRY(write_range(dp, ts, dp->bstart[b], dp->blen[b], dp->stage));
    }
    return LFL_OK;
}
