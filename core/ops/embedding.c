/* embedding: weight[V, H] rows picked by 0-based ids of any shape -> [..., H].
 * Backward scatter-adds the output gradient rows into a [V, H] gradient: the
 * positions are sorted by id so each id's row is summed by one thread, in
 * position order (race-free and the same result for any thread count).
 * A bf16/f16 table (frozen weights kept in their stored precision) gathers
 * into f32 rows; its gradient, if it needs one, is an f32 [V, H] tensor. */
#include "dimwise.h"

typedef struct { int64_t id, pos; } id_pos;

static int cmp_id_pos(const void *x, const void *y)
{
    const id_pos *a = x, *b = y;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

#define SCATTER_ROWS(T)                                                             \
    do {                                                                            \
        const T *pg = lfl_data(g);                                                  \
        T *pw = lfl_data(gw);                                                       \
        _Pragma("omp parallel for schedule(dynamic, 8) if (work > LFL_OMP_MIN)")    \
        for (int64_t u = 0; u < ngroups; u++) {                                     \
            T *dst = pw + ord[start[u]].id * h;                                     \
            for (int64_t j = start[u]; j < start[u + 1]; j++) {                     \
                const T *src = pg + ord[j].pos * h;                                 \
                _Pragma("omp simd")                                                 \
                for (int64_t c = 0; c < h; c++) dst[c] += src[c];                   \
            }                                                                       \
        }                                                                           \
    } while (0)

lfl_status lfl_cpu_embedding_backward(lfl_tensor *g, lfl_tensor *ids, lfl_tensor *gw)
{
    int64_t h = gw->shape[1], nids = lfl_numel(ids);
    const int64_t *pi = lfl_data(ids);
    lfl_status st = LFL_OK;
    id_pos *ord = malloc(sizeof *ord * (size_t)(nids ? nids : 1));
    int64_t *start = malloc(sizeof *start * (size_t)(nids + 1));
    if (!ord || !start)
        st = lfl_fail(LFL_ERR_MEM, "embedding backward: out of memory for %lld ids", (long long)nids);
    if (st == LFL_OK) {
        for (int64_t i = 0; i < nids; i++) { ord[i].id = pi[i]; ord[i].pos = i; }
        qsort(ord, (size_t)nids, sizeof *ord, cmp_id_pos);
        int64_t ngroups = 0;
        for (int64_t i = 0; i < nids; i++)
            if (i == 0 || ord[i].id != ord[i - 1].id) start[ngroups++] = i;
        start[ngroups] = nids;
        int64_t work = nids * h;
        if (g->dtype == LFL_F32) SCATTER_ROWS(float);
        else SCATTER_ROWS(double);
    }
    free(ord);
    free(start);
    return st;
}

static lfl_status embedding_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_embedding_backward_kernel fn;
    LFL_TRY(lfl_dispatch_embedding_backward(gout[0]->device, NULL, &fn));
    lfl_tensor *g, *gw = NULL;
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_zeros(2, e->shape, g->dtype, g->device, &gw);
    if (st == LFL_OK) st = fn(g, n->saved[0], gw);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(gw); return st; }
    gin[0] = gw;
    return LFL_OK;
}

lfl_status lfl_cpu_embedding(lfl_tensor *w, lfl_tensor *ix, lfl_tensor *o)
{
    const int64_t *pi = lfl_data(ix);
    int64_t v = w->shape[0], h = w->shape[1], nids = lfl_numel(ix), at;
    if (lfl_index_find_bad(pi, nids, v, &at))
        return lfl_fail(LFL_ERR_ARG, "embedding: id %lld (ids element %lld, 0-based) is out of range for a "
                                     "vocabulary of V = %lld rows (ids are 0-based, 0 <= id < V)",
                        (long long)pi[at], (long long)at, (long long)v);
    if (h > 0 && lfl_is_lowp(w->dtype)) {
        const uint16_t *pw = lfl_data(w);
        float *po = lfl_data(o);
#pragma omp parallel for if (nids * h > LFL_OMP_MIN)
        for (int64_t i = 0; i < nids; i++) lfl_lowp_to_f32(w->dtype, pw + pi[i] * h, h, po + i * h);
    } else if (h > 0) {
        size_t row = (size_t)h * lfl_dtype_size(w->dtype);
        const char *pw = lfl_data(w);
        char *po = lfl_data(o);
#pragma omp parallel for if (nids * h > LFL_OMP_MIN)
        for (int64_t i = 0; i < nids; i++) memcpy(po + (size_t)i * row, pw + (size_t)pi[i] * row, row);
    }
    return LFL_OK;
}

lfl_status lfl_embedding(lfl_tensor *weight, lfl_tensor *ids, lfl_tensor **out)
{
    char b[128];
    bool lowp = lfl_is_lowp(weight->dtype);
    if (!lowp) LFL_TRY(lfl_check_float("embedding", weight));
    if (weight->ndim != 2)
        return lfl_fail(LFL_ERR_ARG, "embedding: weight must be [V, H], got %s", lfl_shape_str(weight, b, sizeof b));
    if (ids->ndim + 1 > LFL_MAX_DIMS)
        return lfl_fail(LFL_ERR_ARG, "embedding: ids have %d dims (at most %d)", ids->ndim, LFL_MAX_DIMS - 1);
    lfl_embedding_kernel fn;
    LFL_TRY(lfl_dispatch_embedding(weight->device, NULL, &fn));
    int64_t h = weight->shape[1];
    lfl_tensor *ix = NULL, *w = NULL, *o = NULL;
    LFL_TRY(lfl_index_i64("embedding", ids, weight, &ix));
    int64_t oshape[LFL_MAX_DIMS];
    for (int d = 0; d < ids->ndim; d++) oshape[d] = ids->shape[d];
    oshape[ids->ndim] = h;
    lfl_status st = lfl_contiguous_nograd(weight, &w);
    if (st == LFL_OK) st = lfl_empty(ids->ndim + 1, oshape, lowp ? LFL_F32 : weight->dtype, weight->device, &o);
    if (st == LFL_OK) st = fn(w, ix, o);
    lfl_tensor_release(w);
    if (st) { lfl_tensor_release(ix); lfl_tensor_release(o); return st; }
    lfl_node *n = lfl_node_begin("embedding", embedding_backward, 1, &weight, 1);
    if (n) {
        lfl_node_save(n, ix);
        lfl_node_set_output(n, o, 0);
        lfl_node_release(n);
    }
    lfl_tensor_release(ix);
    *out = o;
    return LFL_OK;
}
