/* The collators of the training approaches over a C dataset, element for
 * element what the Lua ones build (tests/lua/test_dataset.lua compares them):
 *   pack          stdlib/lfl/data/collate.lua   pack_row (lfl.data.collate)
 *   stack_packed  recipes/approaches/sft.lua      collate (pre-packed rows)
 *   pairwise      stdlib/lfl/data/pairwise.lua  collate_pairwise (lfl.data.pairwise)
 *   kto           stdlib/lfl/data/pairwise.lua  collate_kto
 *   pairwise_packed  stdlib/lfl/data/pairwise.lua  collate_pairwise_packed
 * Labels come out shifted: position k holds the label of token k + 1, and
 * LFL_DS_IGNORE where nothing follows. */
#include <string.h>
#include "dataset.h"

#define NIL INT64_MIN /* a missing list entry (segment values are i32) */

static const char *kind_names[] = {"pack", "stack_packed", "pairwise", "kto", "pairwise_packed"};

int lfl_ds_collate_kind_from_string(const char *s)
{
    for (int i = 0; i < (int)(sizeof kind_names / sizeof kind_names[0]); i++)
        if (strcmp(s, kind_names[i]) == 0) return i;
    return -1;
}

void lfl_ds_batch_clear(lfl_ds_batch *b)
{
    lfl_tensor *ts[] = {b->input_ids, b->labels, b->position_ids, b->segments, b->attention_mask,
                        b->kl_input_ids, b->kl_labels, b->kl_attention_mask, b->kto_tags, b->lengths};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) lfl_tensor_release(ts[i]);
    memset(b, 0, sizeof *b);
}

static lfl_status new_i64(int64_t rows, int64_t cols, lfl_tensor **out, int64_t **data)
{
    int64_t shape[2] = {rows, cols};
    LFL_TRY(lfl_empty(2, shape, LFL_I64, LFL_CPU, out));
    *data = lfl_data(*out);
    return LFL_OK;
}

/* common.pack_row: the examples one after another in one row [1, N];
 * positions restart at 0 per example, segments count examples from 1 */
static lfl_status pack(const lfl_dataset *ds, const int64_t *idx, int64_t m, lfl_ds_batch *out)
{
    int ci, cl;
    LFL_TRY(lfl_dataset_need_list(ds, "dataset.collate(pack)", "input_ids", &ci));
    LFL_TRY(lfl_dataset_need_list(ds, "dataset.collate(pack)", "labels", &cl));
    int64_t N = 0;
    const int32_t *p;
    for (int64_t s = 0; s < m; s++) N += lfl_dataset_list(ds, ci, idx[s], &p);
    int64_t *ids, *lab, *pos, *seg = NULL;
    LFL_TRY(new_i64(1, N, &out->input_ids, &ids));
    LFL_TRY(new_i64(1, N, &out->labels, &lab));
    LFL_TRY(new_i64(1, N, &out->position_ids, &pos));
    if (m > 1) LFL_TRY(new_i64(1, N, &out->segments, &seg));
    int64_t t = 0, nlab = 0;
    for (int64_t s = 0; s < m; s++) {
        const int32_t *xi, *xl;
        int64_t n = lfl_dataset_list(ds, ci, idx[s], &xi), nl = lfl_dataset_list(ds, cl, idx[s], &xl);
        for (int64_t k = 0; k < n; k++, t++) {
            ids[t] = xi[k];
            int64_t next = k + 1 < nl ? xl[k + 1] : LFL_DS_IGNORE;
            lab[t] = next;
            pos[t] = k;
            if (seg) seg[t] = s + 1;
            nlab += k + 1 < nl && next != LFL_DS_IGNORE;
        }
    }
    out->ntokens = N;
    out->nlabels = nlab;
    out->nexamples = m;
    return LFL_OK;
}

/* the common width of column col over the batch's rows; an error when they differ */
static lfl_status same_width(const lfl_dataset *ds, int col, const int64_t *idx, int64_t m, int64_t *width)
{
    const int32_t *p;
    int64_t w = lfl_dataset_list(ds, col, idx[0], &p);
    for (int64_t r = 1; r < m; r++) {
        int64_t x = lfl_dataset_list(ds, col, idx[r], &p);
        if (x != w)
            return lfl_fail(LFL_ERR_ARG, "dataset.collate(stack_packed): column '%s' has %lld values in row %lld but %lld "
                            "in row %lld (pre-packed rows share one length)", ds->cols[col].name, (long long)x,
                            (long long)idx[r], (long long)w, (long long)idx[0]);
    }
    *width = w;
    return LFL_OK;
}

static void copy_rows(const lfl_dataset *ds, int col, const int64_t *idx, int64_t m, int64_t width, int64_t *dst)
{
    for (int64_t r = 0; r < m; r++) {
        const int32_t *p;
        lfl_dataset_list(ds, col, idx[r], &p);
        for (int64_t k = 0; k < width; k++) dst[r * width + k] = p[k];
    }
}

/* sft.collate for pre-packed rows: stacked [m, L]; a label is kept only when
 * the next token is in the same (non-padding) segment */
static lfl_status stack_packed(const lfl_dataset *ds, const int64_t *idx, int64_t m, lfl_ds_batch *out)
{
    static const char *who = "dataset.collate(stack_packed)";
    int ci, cl, cp, cs;
    LFL_TRY(lfl_dataset_need_list(ds, who, "input_ids", &ci));
    LFL_TRY(lfl_dataset_need_list(ds, who, "labels", &cl));
    LFL_TRY(lfl_dataset_need_list(ds, who, "position_ids", &cp));
    LFL_TRY(lfl_dataset_need_list(ds, who, "segments", &cs));
    int64_t wi, wl, wp, ws;
    LFL_TRY(same_width(ds, ci, idx, m, &wi));
    LFL_TRY(same_width(ds, cl, idx, m, &wl));
    LFL_TRY(same_width(ds, cp, idx, m, &wp));
    LFL_TRY(same_width(ds, cs, idx, m, &ws));
    int64_t *ids, *lab, *pos, *seg;
    LFL_TRY(new_i64(m, wi, &out->input_ids, &ids));
    LFL_TRY(new_i64(m, wl, &out->labels, &lab));
    LFL_TRY(new_i64(m, wp, &out->position_ids, &pos));
    LFL_TRY(new_i64(m, ws, &out->segments, &seg));
    copy_rows(ds, ci, idx, m, wi, ids);
    copy_rows(ds, cp, idx, m, wp, pos);
    copy_rows(ds, cs, idx, m, ws, seg);
    int64_t nlab = 0;
    for (int64_t r = 0; r < m; r++) {
        const int32_t *l, *s;
        lfl_dataset_list(ds, cl, idx[r], &l);
        lfl_dataset_list(ds, cs, idx[r], &s);
        for (int64_t k = 0; k < wl; k++) {
            /* Lua compares past the end too: nil == nil, and nil ~= 0 */
            int64_t sk = k < ws ? s[k] : NIL, sk1 = k + 1 < ws ? s[k + 1] : NIL;
            bool same = sk1 == sk && sk != 0;
            int64_t v = same && k + 1 < wl ? l[k + 1] : LFL_DS_IGNORE;
            lab[r * wl + k] = v;
            nlab += v != LFL_DS_IGNORE;
        }
    }
    out->ntokens = m * wi;
    out->nlabels = nlab;
    out->nexamples = m;
    return LFL_OK;
}

/* lfl.data.pairwise pad_rows: rows (ids, labels) right-padded to the longest
 * (rounded up to a multiple), labels shifted; mask 1 on real tokens */
static void pad_rows(const lfl_dataset *ds, int ci, int cl, const int64_t *idx, int64_t m, int64_t row0, int64_t L,
                     const lfl_ds_collate_opts *o, int64_t *ids, int64_t *lab, int64_t *mask, int64_t *nlab)
{
    for (int64_t r = 0; r < m; r++) {
        const int32_t *xi, *xl;
        int64_t n = lfl_dataset_list(ds, ci, idx[r], &xi), nl = lfl_dataset_list(ds, cl, idx[r], &xl);
        int64_t base = (row0 + r) * L;
        for (int64_t k = 0; k < L; k++) {
            ids[base + k] = k < n ? xi[k] : o->pad_id;
            mask[base + k] = k < n;
            int64_t v = k + 1 < nl ? xl[k + 1] : LFL_DS_IGNORE;
            lab[base + k] = v;
            *nlab += v != LFL_DS_IGNORE;
        }
    }
}

static int64_t padded_length(const lfl_dataset *ds, const int *cols, int ncols, const int64_t *idx, int64_t m,
                             const lfl_ds_collate_opts *o)
{
    int64_t L = 0;
    const int32_t *p;
    for (int c = 0; c < ncols; c++)
        for (int64_t r = 0; r < m; r++) {
            int64_t n = lfl_dataset_list(ds, cols[c], idx[r], &p);
            if (n > L) L = n;
        }
    if (o->pad_to_multiple_of > 1) L = (L + o->pad_to_multiple_of - 1) / o->pad_to_multiple_of * o->pad_to_multiple_of;
    return L;
}

/* collate_pairwise: [2m, L], chosen rows first, then rejected */
static lfl_status pairwise(const lfl_dataset *ds, const int64_t *idx, int64_t m, const lfl_ds_collate_opts *o,
                           lfl_ds_batch *out)
{
    static const char *who = "dataset.collate(pairwise)";
    int cci, ccl, cri, crl;
    LFL_TRY(lfl_dataset_need_list(ds, who, "chosen_input_ids", &cci));
    LFL_TRY(lfl_dataset_need_list(ds, who, "chosen_labels", &ccl));
    LFL_TRY(lfl_dataset_need_list(ds, who, "rejected_input_ids", &cri));
    LFL_TRY(lfl_dataset_need_list(ds, who, "rejected_labels", &crl));
    int id_cols[2] = {cci, cri};
    int64_t L = padded_length(ds, id_cols, 2, idx, m, o);
    int64_t *ids, *lab, *mask, nlab = 0;
    LFL_TRY(new_i64(2 * m, L, &out->input_ids, &ids));
    LFL_TRY(new_i64(2 * m, L, &out->labels, &lab));
    LFL_TRY(new_i64(2 * m, L, &out->attention_mask, &mask));
    pad_rows(ds, cci, ccl, idx, m, 0, L, o, ids, lab, mask, &nlab);
    pad_rows(ds, cri, crl, idx, m, m, L, o, ids, lab, mask, &nlab);
    out->n = m;
    out->ntokens = 2 * m * L;
    out->nlabels = nlab;
    out->nexamples = m;
    return LFL_OK;
}

/* collate_kto: the target rows and the KL rows padded separately, kto_tags */
static lfl_status kto(const lfl_dataset *ds, const int64_t *idx, int64_t m, const lfl_ds_collate_opts *o,
                      lfl_ds_batch *out)
{
    static const char *who = "dataset.collate(kto)";
    int ci, cl, cki, ckl;
    LFL_TRY(lfl_dataset_need_list(ds, who, "input_ids", &ci));
    LFL_TRY(lfl_dataset_need_list(ds, who, "labels", &cl));
    LFL_TRY(lfl_dataset_need_list(ds, who, "kl_input_ids", &cki));
    LFL_TRY(lfl_dataset_need_list(ds, who, "kl_labels", &ckl));
    int ct = lfl_dataset_find(ds, "kto_tag");
    if (ct < 0 || ds->cols[ct].kind == LFL_DS_LIST)
        return lfl_fail(LFL_ERR_ARG, "%s: the dataset needs a bool column 'kto_tag'", who);
    int64_t L = padded_length(ds, &ci, 1, idx, m, o), KL = padded_length(ds, &cki, 1, idx, m, o);
    int64_t *ids, *lab, *mask, *kids, *klab, *kmask, *tags, nlab = 0, knlab = 0;
    LFL_TRY(new_i64(m, L, &out->input_ids, &ids));
    LFL_TRY(new_i64(m, L, &out->labels, &lab));
    LFL_TRY(new_i64(m, L, &out->attention_mask, &mask));
    LFL_TRY(new_i64(m, KL, &out->kl_input_ids, &kids));
    LFL_TRY(new_i64(m, KL, &out->kl_labels, &klab));
    LFL_TRY(new_i64(m, KL, &out->kl_attention_mask, &kmask));
    LFL_TRY(lfl_empty(1, &m, LFL_I64, LFL_CPU, &out->kto_tags));
    tags = lfl_data(out->kto_tags);
    pad_rows(ds, ci, cl, idx, m, 0, L, o, ids, lab, mask, &nlab);
    pad_rows(ds, cki, ckl, idx, m, 0, KL, o, kids, klab, kmask, &knlab);
    /* Lua's `kto_tag and 1 or 0`: false is 0; any number (0 included) is true */
    for (int64_t r = 0; r < m; r++)
        tags[r] = ds->cols[ct].kind == LFL_DS_BOOL ? lfl_dataset_scalar(ds, ct, idx[r]) != 0 : 1;
    out->ntokens = m * L;
    out->nlabels = nlab;
    out->nexamples = m;
    return LFL_OK;
}

/* collate_pairwise_packed: one row [1, N], the m chosen sequences then the m
 * rejected ones, each its own segment (1..2m) with positions from 0 */
static lfl_status pairwise_packed(const lfl_dataset *ds, const int64_t *idx, int64_t m, lfl_ds_batch *out)
{
    static const char *who = "dataset.collate(pairwise_packed)";
    int cols[4]; /* chosen ids, chosen labels, rejected ids, rejected labels */
    LFL_TRY(lfl_dataset_need_list(ds, who, "chosen_input_ids", &cols[0]));
    LFL_TRY(lfl_dataset_need_list(ds, who, "chosen_labels", &cols[1]));
    LFL_TRY(lfl_dataset_need_list(ds, who, "rejected_input_ids", &cols[2]));
    LFL_TRY(lfl_dataset_need_list(ds, who, "rejected_labels", &cols[3]));
    int64_t N = 0;
    const int32_t *p;
    for (int h = 0; h < 2; h++)
        for (int64_t r = 0; r < m; r++) N += lfl_dataset_list(ds, cols[2 * h], idx[r], &p);
    int64_t *ids, *lab, *pos, *seg, *len, nseq = 2 * m;
    LFL_TRY(new_i64(1, N, &out->input_ids, &ids));
    LFL_TRY(new_i64(1, N, &out->labels, &lab));
    LFL_TRY(new_i64(1, N, &out->position_ids, &pos));
    LFL_TRY(new_i64(1, N, &out->segments, &seg));
    LFL_TRY(lfl_empty(1, &nseq, LFL_I64, LFL_CPU, &out->lengths));
    len = lfl_data(out->lengths);
    int64_t t = 0, nlab = 0;
    for (int h = 0; h < 2; h++)
        for (int64_t r = 0; r < m; r++) {
            const int32_t *xi, *xl;
            int64_t n = lfl_dataset_list(ds, cols[2 * h], idx[r], &xi);
            int64_t nl = lfl_dataset_list(ds, cols[2 * h + 1], idx[r], &xl);
            int64_t s = h * m + r;
            len[s] = n;
            for (int64_t k = 0; k < n; k++, t++) {
                ids[t] = xi[k];
                int64_t next = k + 1 < nl ? xl[k + 1] : LFL_DS_IGNORE;
                lab[t] = next;
                pos[t] = k;
                seg[t] = s + 1;
                nlab += next != LFL_DS_IGNORE;
            }
        }
    out->n = m;
    out->ntokens = N;
    out->nlabels = nlab;
    out->nexamples = m;
    return LFL_OK;
}

lfl_status lfl_dataset_collate(const lfl_dataset *ds, const int64_t *idx, int64_t m, lfl_ds_collate_kind kind,
                               const lfl_ds_collate_opts *opts, lfl_ds_batch *out)
{
    memset(out, 0, sizeof *out);
    if (m < 1) return lfl_fail(LFL_ERR_ARG, "dataset.collate: an empty batch");
    for (int64_t i = 0; i < m; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            return lfl_fail(LFL_ERR_ARG, "dataset.collate: entry %lld of the batch is row %lld, outside 0..%lld",
                            (long long)i, (long long)idx[i], (long long)ds->n - 1);
    lfl_ds_collate_opts o = {0, 0};
    if (opts) o = *opts;
    lfl_status st;
    switch (kind) {
    case LFL_DS_PACK: st = pack(ds, idx, m, out); break;
    case LFL_DS_STACK_PACKED: st = stack_packed(ds, idx, m, out); break;
    case LFL_DS_PAIRWISE: st = pairwise(ds, idx, m, &o, out); break;
    case LFL_DS_KTO: st = kto(ds, idx, m, &o, out); break;
    case LFL_DS_PAIRWISE_PACKED: st = pairwise_packed(ds, idx, m, out); break;
    default: st = lfl_fail(LFL_ERR_ARG, "dataset.collate: unknown kind %d", (int)kind);
    }
    if (st) lfl_ds_batch_clear(out);
    return st;
}
