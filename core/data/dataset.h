/* Tokenized datasets held in C: n rows with named columns, each column a
 * flat buffer backed by lfl_tensor storage (heap, or mmapped straight from a
 * safetensors file), so a million rows cost bytes per token, not a Lua table
 * per row. Shuffle order, batch sampling with a resumable position, and the
 * collators of the training approaches (packing, stacking, padding) run here.
 * All row indices are 0-based; the Lua bridge (lua/l_dataset.c) converts.
 *
 *   lfl_ds_builder *b;  int ids, lab;
 *   lfl_ds_builder_new(&b);
 *   lfl_ds_builder_add_column(b, "input_ids", LFL_DS_LIST, -1, &ids);
 *   lfl_ds_builder_add_column(b, "labels", LFL_DS_LIST, -1, &lab);
 *   int32_t *p = lfl_ds_builder_list_append(b, ids, 3);  p[0] = ...;
 *   ...; lfl_ds_builder_end_row(b);
 *   lfl_dataset *ds;  lfl_ds_builder_finish(b, &ds);  lfl_ds_builder_free(b);
 *   int64_t idx[2] = {4, 1};  lfl_ds_batch batch;
 *   lfl_dataset_collate(ds, idx, 2, LFL_DS_PACK, NULL, &batch);
 *   ...; lfl_ds_batch_clear(&batch);  lfl_dataset_release(ds);
 *
 * Columns:
 *   list    values i32 [total], offsets i64 [n + 1] (row r is values[offsets[r]
 *           .. offsets[r + 1]); offsets[0] = 0, non-decreasing, last = total)
 *   bool    values i64 [n], 0 or 1
 *   number  values i64 [n]
 *   alias   another list column under a second name (pretraining rows whose
 *           labels are their input_ids): shares the target's tensors
 *
 * File format (lfl_dataset_save / lfl_dataset_load): one safetensors file
 * holding one or more named splits. Tensor names: "<prefix><column>.values",
 * "<prefix><column>.offsets" (lists), "<prefix><column>.scalar" (bool/number),
 * where prefix is "<split>." (empty for the split named ""). Every i64 tensor
 * comes before every i32 one, so each is 8-byte aligned in the file and can
 * be used in place from the mapping. The metadata key "lfl_dataset" holds
 *   {"version": 1, "splits": [{"name": "train", "n": 1000, "columns": [
 *      {"name": "input_ids", "kind": "list"}, {"name": "labels", "alias": "input_ids"},
 *      {"name": "kto_tag", "kind": "bool"}]}, ...]}
 * and the caller's own metadata strings sit beside it. */
#ifndef LFL_DATA_DATASET_H
#define LFL_DATA_DATASET_H

#include <stdbool.h>
#include <stdint.h>
#include "../tensor.h"

#define LFL_DATASET_FORMAT_VERSION 1
#define LFL_DS_IGNORE (-100) /* label value that predicts nothing */

typedef enum { LFL_DS_LIST, LFL_DS_BOOL, LFL_DS_NUMBER } lfl_ds_kind;

typedef struct {
    char *name;
    lfl_ds_kind kind;
    int alias_of;          /* index of the list column this one repeats, or -1 */
    lfl_tensor *values;    /* list: i32 [total]; bool/number: i64 [n] */
    lfl_tensor *offsets;   /* list: i64 [n + 1]; NULL otherwise */
    const int32_t *v;      /* data of values (list) */
    const int64_t *o;      /* data of offsets (list) */
    const int64_t *s;      /* data of values (bool/number) */
} lfl_ds_column;

typedef struct lfl_dataset {
    int refcount;
    int64_t n;
    int ncols;
    lfl_ds_column *cols;   /* in the order they were added */
} lfl_dataset;

/* ---------------------------------------------------------------- building */

/* An empty dataset of n rows; columns are added next. */
lfl_status lfl_dataset_new(int64_t n, lfl_dataset **out);
/* A list column over existing tensors (retained, not copied, when they are
 * contiguous CPU i32 values / i64 offsets; i64 values are narrowed into a
 * copy after a range check). Offsets are validated; errors name the column. */
lfl_status lfl_dataset_add_list(lfl_dataset *ds, const char *name, lfl_tensor *values, lfl_tensor *offsets);
/* A bool or number column: values i64 (or i32, widened) [n]. */
lfl_status lfl_dataset_add_scalar(lfl_dataset *ds, const char *name, lfl_ds_kind kind, lfl_tensor *values);
/* name repeats the list column target. */
lfl_status lfl_dataset_add_alias(lfl_dataset *ds, const char *name, const char *target);

lfl_dataset *lfl_dataset_retain(lfl_dataset *ds);
void lfl_dataset_release(lfl_dataset *ds);

/* Rows appended one at a time into growing buffers. Columns are declared
 * first; an alias column (alias_of >= 0) takes no appends until
 * lfl_ds_builder_unalias gives it its own copy of the rows so far. */
typedef struct lfl_ds_builder lfl_ds_builder;
lfl_status lfl_ds_builder_new(lfl_ds_builder **out);
void lfl_ds_builder_free(lfl_ds_builder *b);
lfl_status lfl_ds_builder_add_column(lfl_ds_builder *b, const char *name, lfl_ds_kind kind, int alias_of, int *col);
/* Room for the current row's list of len values in column col; NULL (with
 * the error set) when out of memory. */
int32_t *lfl_ds_builder_list_append(lfl_ds_builder *b, int col, int64_t len);
lfl_status lfl_ds_builder_scalar_append(lfl_ds_builder *b, int col, int64_t v);
lfl_status lfl_ds_builder_unalias(lfl_ds_builder *b, int col);
/* Closes the current row: every column must have had exactly one append. */
lfl_status lfl_ds_builder_end_row(lfl_ds_builder *b);
int64_t lfl_ds_builder_rows(const lfl_ds_builder *b);
/* The dataset (the builder's buffers move into it; the builder is emptied). */
lfl_status lfl_ds_builder_finish(lfl_ds_builder *b, lfl_dataset **out);

/* ---------------------------------------------------------------- reading */

/* column index by name, or -1 */
int lfl_dataset_find(const lfl_dataset *ds, const char *name);
/* like find, but an error naming the dataset's columns when absent or not a list */
lfl_status lfl_dataset_need_list(const lfl_dataset *ds, const char *who, const char *name, int *col);
/* row r of list column col: pointer to its values and their count */
static inline int64_t lfl_dataset_list(const lfl_dataset *ds, int col, int64_t r, const int32_t **p)
{
    const lfl_ds_column *c = &ds->cols[col];
    if (c->alias_of >= 0) c = &ds->cols[c->alias_of];
    *p = c->v + c->o[r];
    return c->o[r + 1] - c->o[r];
}
static inline int64_t lfl_dataset_scalar(const lfl_dataset *ds, int col, int64_t r) { return ds->cols[col].s[r]; }
/* tokens held: the summed lengths of the list columns named *input_ids */
int64_t lfl_dataset_num_tokens(const lfl_dataset *ds);
/* "list", "bool" or "number" */
const char *lfl_ds_kind_name(lfl_ds_kind k);

/* ---------------------------------------------------------------- order */

/* perm[0..n) = a permutation of 0..n-1: the identity, shuffled from the end
 * (Fisher-Yates) by the Lehmer generator s = s * 48271 mod (2^31 - 1) seeded
 * with seed mod (2^31 - 1) (0 becomes 2^31 - 2): lfl.data.shuffle's order. */
void lfl_dataset_order(int64_t n, int64_t seed, int64_t *perm);

/* Batches of batch_size row indices over epochs (the last of an epoch may be
 * shorter); epoch e is shuffled with seed + e, as the trainer does. The
 * position is (epoch, batches of that epoch already handed out). */
typedef struct lfl_ds_sampler lfl_ds_sampler;
lfl_status lfl_ds_sampler_new(int64_t n, int64_t batch_size, int64_t seed, bool shuffle, lfl_ds_sampler **out);
void lfl_ds_sampler_free(lfl_ds_sampler *s);
int64_t lfl_ds_sampler_batches_per_epoch(const lfl_ds_sampler *s);
void lfl_ds_sampler_position(const lfl_ds_sampler *s, int64_t *epoch, int64_t *batch);
/* restores a position read earlier: batch in 0..batches_per_epoch */
lfl_status lfl_ds_sampler_seek(lfl_ds_sampler *s, int64_t epoch, int64_t batch);
/* The next batch (moving into the next epoch after the last one): its indices
 * (valid until the next call) and size; 0 for an empty dataset. */
lfl_status lfl_ds_sampler_next(lfl_ds_sampler *s, const int64_t **idx, int64_t *count);

/* ---------------------------------------------------------------- collate */

typedef enum {
    LFL_DS_PACK,          /* stdlib/lfl/data/collate.lua pack_row */
    LFL_DS_STACK_PACKED,  /* sft.lua collate, pre-packed rows */
    LFL_DS_PAIRWISE,      /* stdlib/lfl/data/pairwise.lua collate_pairwise */
    LFL_DS_KTO,           /* stdlib/lfl/data/pairwise.lua collate_kto */
    LFL_DS_PAIRWISE_PACKED, /* stdlib/lfl/data/pairwise.lua collate_pairwise_packed */
} lfl_ds_collate_kind;

typedef struct {
    int64_t pad_id;             /* pairwise / kto padding token (0) */
    int64_t pad_to_multiple_of; /* round the padded length up (<= 1: no) */
} lfl_ds_collate_opts;

/* What a collator returns; absent tensors are NULL. i64 tensors:
 *   pack          input_ids, labels (shifted), position_ids [1, N]; segments
 *                 [1, N] only for more than one example
 *   stack_packed  input_ids, labels (shifted inside segments), position_ids,
 *                 segments [m, L]
 *   pairwise      input_ids, labels, attention_mask [2m, L] (chosen rows first)
 *   kto           input_ids, labels, attention_mask [m, L], kl_input_ids,
 *                 kl_labels, kl_attention_mask [m, L'], kto_tags [m]
 *   pairwise_packed  input_ids, labels, position_ids, segments [1, N]: the m
 *                 chosen sequences then the m rejected ones (segments 1..2m),
 *                 lengths [2m] (each sequence's token count)
 * n is the example count of a pairwise batch (its sequences are 2n), else 0. */
typedef struct {
    lfl_tensor *input_ids, *labels, *position_ids, *segments, *attention_mask;
    lfl_tensor *kl_input_ids, *kl_labels, *kl_attention_mask, *kto_tags, *lengths;
    int64_t ntokens, nlabels, nexamples, n;
} lfl_ds_batch;

/* kind by name ("pack", "stack_packed", "pairwise", "kto", "pairwise_packed"); -1 when unknown */
int lfl_ds_collate_kind_from_string(const char *s);
/* Collates rows idx[0..m) (0-based, checked) into out; opts may be NULL. */
lfl_status lfl_dataset_collate(const lfl_dataset *ds, const int64_t *idx, int64_t m, lfl_ds_collate_kind kind,
                               const lfl_ds_collate_opts *opts, lfl_ds_batch *out);
/* releases the batch's tensors */
void lfl_ds_batch_clear(lfl_ds_batch *b);

/* ---------------------------------------------------------------- files */

typedef struct {
    int nsplits;
    char **names;
    lfl_dataset **sets;
    int n_meta;                      /* the file's other metadata strings */
    char **meta_keys, **meta_values;
} lfl_ds_file;

/* Writes the splits (names unique; "" allowed once) and the caller's metadata
 * (the key "lfl_dataset" is reserved) to path: temp file + rename. */
lfl_status lfl_dataset_save(const char *path, int nsplits, const char *const *names, lfl_dataset *const *sets,
                            int n_meta, const char *const *meta_keys, const char *const *meta_values);
/* Maps the file and builds its splits over the mapping (no copy); every
 * column is validated, so a corrupt file is an error, not a crash. */
lfl_status lfl_dataset_load(const char *path, lfl_ds_file **out);
void lfl_ds_file_free(lfl_ds_file *f);

#endif
