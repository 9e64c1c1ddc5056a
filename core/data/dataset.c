/* Tokenized datasets (core/data/dataset.h): columns over tensors and their
 * validation, the row builder with growing buffers, the shuffle order and
 * the epoch/batch sampler. Collation is in dataset_collate.c, files in
 * dataset_file.c. */
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

/* ---------------------------------------------------------------- datasets */

lfl_status lfl_dataset_new(int64_t n, lfl_dataset **out)
{
    if (n < 0) return lfl_fail(LFL_ERR_ARG, "dataset: %lld rows", (long long)n);
    lfl_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return lfl_fail(LFL_ERR_MEM, "dataset: out of memory");
    ds->refcount = 1;
    ds->n = n;
    *out = ds;
    return LFL_OK;
}

lfl_dataset *lfl_dataset_retain(lfl_dataset *ds)
{
    __atomic_add_fetch(&ds->refcount, 1, __ATOMIC_RELAXED);
    return ds;
}

void lfl_dataset_release(lfl_dataset *ds)
{
    if (!ds || __atomic_sub_fetch(&ds->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (int i = 0; i < ds->ncols; i++) {
        lfl_tensor_release(ds->cols[i].values);
        lfl_tensor_release(ds->cols[i].offsets);
        free(ds->cols[i].name);
    }
    free(ds->cols);
    free(ds);
}

const char *lfl_ds_kind_name(lfl_ds_kind k)
{
    return k == LFL_DS_LIST ? "list" : k == LFL_DS_BOOL ? "bool" : "number";
}

int lfl_dataset_find(const lfl_dataset *ds, const char *name)
{
    for (int i = 0; i < ds->ncols; i++)
        if (strcmp(ds->cols[i].name, name) == 0) return i;
    return -1;
}

/* "input_ids, labels" into buf */
static const char *column_names(const lfl_dataset *ds, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < ds->ncols && k + 1 < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", ds->cols[i].name);
    if (ds->ncols == 0) snprintf(buf, n, "none");
    return buf;
}

lfl_status lfl_dataset_need_list(const lfl_dataset *ds, const char *who, const char *name, int *col)
{
    char names[512];
    int c = lfl_dataset_find(ds, name);
    if (c < 0)
        return lfl_fail(LFL_ERR_ARG, "%s: the dataset has no column '%s' (its columns: %s)", who, name,
                        column_names(ds, names, sizeof names));
    if (ds->cols[c].kind != LFL_DS_LIST)
        return lfl_fail(LFL_ERR_ARG, "%s: column '%s' is a %s, not a list", who, name, lfl_ds_kind_name(ds->cols[c].kind));
    *col = c;
    return LFL_OK;
}

static lfl_status check_new_name(const lfl_dataset *ds, const char *name)
{
    if (!name || !name[0]) return lfl_fail(LFL_ERR_ARG, "dataset: a column needs a non-empty name");
    if (lfl_dataset_find(ds, name) >= 0) return lfl_fail(LFL_ERR_ARG, "dataset: column '%s' is given twice", name);
    return LFL_OK;
}

static lfl_ds_column *push_column(lfl_dataset *ds, const char *name)
{
    lfl_ds_column *cols = realloc(ds->cols, sizeof *cols * (size_t)(ds->ncols + 1));
    if (!cols) return NULL;
    ds->cols = cols;
    lfl_ds_column *c = &cols[ds->ncols];
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    if (!c->name) return NULL;
    c->alias_of = -1;
    ds->ncols++;
    return c;
}

/* t as a contiguous 1-D CPU tensor of dtype want, naturally aligned: t itself
 * (retained) when it already is one, else a converted copy. i64 -> i32 checks
 * the range. */
static lfl_status as_flat(const char *col, const char *what, lfl_tensor *t, lfl_dtype want, lfl_tensor **out)
{
    if (t->device != LFL_CPU)
        return lfl_fail(LFL_ERR_DEVICE, "dataset: column '%s': %s must be on the CPU", col, what);
    if (t->ndim != 1)
        return lfl_fail(LFL_ERR_ARG, "dataset: column '%s': %s must be 1-D (got %d dims)", col, what, t->ndim);
    if (t->dtype != LFL_I32 && t->dtype != LFL_I64)
        return lfl_fail(LFL_ERR_ARG, "dataset: column '%s': %s must be i32 or i64 (got %s)", col, what,
                        lfl_dtype_name(t->dtype));
    size_t align = lfl_dtype_size(want);
    if (t->dtype == want && lfl_is_contiguous(t) && ((uintptr_t)lfl_data(t) % align == 0 || lfl_numel(t) == 0)) {
        *out = lfl_tensor_retain(t);
        return LFL_OK;
    }
    int64_t n = lfl_numel(t);
    if (want == LFL_I32 && t->dtype == LFL_I64) {
        for (int64_t i = 0; i < n; i++) {
            double x = lfl_get(t, i);
            if (x < INT32_MIN || x > INT32_MAX)
                return lfl_fail(LFL_ERR_ARG, "dataset: column '%s': %s[%lld] = %.0f does not fit in i32", col, what,
                                (long long)i, x);
        }
    }
    lfl_tensor *c = NULL;
    LFL_TRY(lfl_empty(1, &n, want, LFL_CPU, &c));
    lfl_status st = lfl_copy_(c, t);
    if (st) { lfl_tensor_release(c); return st; }
    *out = c;
    return LFL_OK;
}

lfl_status lfl_dataset_add_list(lfl_dataset *ds, const char *name, lfl_tensor *values, lfl_tensor *offsets)
{
    LFL_TRY(check_new_name(ds, name));
    lfl_tensor *v = NULL, *o = NULL;
    lfl_status st = as_flat(name, "values", values, LFL_I32, &v);
    if (st == LFL_OK) st = as_flat(name, "offsets", offsets, LFL_I64, &o);
    if (st == LFL_OK && lfl_numel(o) != ds->n + 1)
        st = lfl_fail(LFL_ERR_ARG, "dataset: column '%s': %lld offsets for %lld rows (expected rows + 1 = %lld)", name,
                      (long long)lfl_numel(o), (long long)ds->n, (long long)ds->n + 1);
    if (st == LFL_OK) {
        const int64_t *op = lfl_data(o);
        int64_t total = lfl_numel(v);
        if (op[0] != 0)
            st = lfl_fail(LFL_ERR_ARG, "dataset: column '%s': offsets start at %lld (expected 0)", name, (long long)op[0]);
        for (int64_t r = 0; r < ds->n && st == LFL_OK; r++)
            if (op[r + 1] < op[r])
                st = lfl_fail(LFL_ERR_ARG, "dataset: column '%s': offsets decrease at row %lld (%lld then %lld)", name,
                              (long long)r, (long long)op[r], (long long)op[r + 1]);
        if (st == LFL_OK && op[ds->n] != total)
            st = lfl_fail(LFL_ERR_ARG, "dataset: column '%s': offsets end at %lld but there are %lld values", name,
                          (long long)op[ds->n], (long long)total);
    }
    lfl_ds_column *c = st == LFL_OK ? push_column(ds, name) : NULL;
    if (st == LFL_OK && !c) st = lfl_fail(LFL_ERR_MEM, "dataset: out of memory");
    if (st) { lfl_tensor_release(v); lfl_tensor_release(o); return st; }
    c->kind = LFL_DS_LIST;
    c->values = v;
    c->offsets = o;
    c->v = lfl_data(v);
    c->o = lfl_data(o);
    return LFL_OK;
}

lfl_status lfl_dataset_add_scalar(lfl_dataset *ds, const char *name, lfl_ds_kind kind, lfl_tensor *values)
{
    LFL_ASSERT(kind == LFL_DS_BOOL || kind == LFL_DS_NUMBER);
    LFL_TRY(check_new_name(ds, name));
    lfl_tensor *v = NULL;
    LFL_TRY(as_flat(name, "values", values, LFL_I64, &v));
    lfl_status st = LFL_OK;
    if (lfl_numel(v) != ds->n)
        st = lfl_fail(LFL_ERR_ARG, "dataset: column '%s': %lld values for %lld rows", name, (long long)lfl_numel(v),
                      (long long)ds->n);
    const int64_t *p = lfl_data(v);
    for (int64_t r = 0; st == LFL_OK && kind == LFL_DS_BOOL && r < ds->n; r++)
        if (p[r] != 0 && p[r] != 1)
            st = lfl_fail(LFL_ERR_ARG, "dataset: column '%s' (bool): row %lld holds %lld (expected 0 or 1)", name,
                          (long long)r, (long long)p[r]);
    lfl_ds_column *c = st == LFL_OK ? push_column(ds, name) : NULL;
    if (st == LFL_OK && !c) st = lfl_fail(LFL_ERR_MEM, "dataset: out of memory");
    if (st) { lfl_tensor_release(v); return st; }
    c->kind = kind;
    c->values = v;
    c->s = p;
    return LFL_OK;
}

lfl_status lfl_dataset_add_alias(lfl_dataset *ds, const char *name, const char *target)
{
    LFL_TRY(check_new_name(ds, name));
    int t;
    LFL_TRY(lfl_dataset_need_list(ds, "dataset: alias", target, &t));
    if (ds->cols[t].alias_of >= 0) t = ds->cols[t].alias_of;
    lfl_ds_column *c = push_column(ds, name);
    if (!c) return lfl_fail(LFL_ERR_MEM, "dataset: out of memory");
    lfl_ds_column *tc = &ds->cols[t]; /* after the realloc in push_column */
    c->kind = LFL_DS_LIST;
    c->alias_of = t;
    c->values = lfl_tensor_retain(tc->values);
    c->offsets = lfl_tensor_retain(tc->offsets);
    c->v = tc->v;
    c->o = tc->o;
    return LFL_OK;
}

int64_t lfl_dataset_num_tokens(const lfl_dataset *ds)
{
    int64_t total = 0;
    for (int i = 0; i < ds->ncols; i++) {
        const lfl_ds_column *c = &ds->cols[i];
        size_t len = strlen(c->name);
        if (c->kind == LFL_DS_LIST && c->alias_of < 0 && len >= 9 && strcmp(c->name + len - 9, "input_ids") == 0)
            total += c->o[ds->n];
    }
    return total;
}

/* ---------------------------------------------------------------- builder */

typedef struct {
    char *name;
    lfl_ds_kind kind;
    int alias_of;
    int32_t *v;          /* list values */
    int64_t nv, cap_v;
    int64_t *o;          /* list: offsets (rows + 1 entries); scalar: values (rows entries) */
    int64_t no, cap_o;
} bcol;

struct lfl_ds_builder {
    int ncols;
    bcol *cols;
    int64_t n;           /* completed rows */
};

lfl_status lfl_ds_builder_new(lfl_ds_builder **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? LFL_OK : lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory");
}

void lfl_ds_builder_free(lfl_ds_builder *b)
{
    if (!b) return;
    for (int i = 0; i < b->ncols; i++) { free(b->cols[i].name); free(b->cols[i].v); free(b->cols[i].o); }
    free(b->cols);
    free(b);
}

int64_t lfl_ds_builder_rows(const lfl_ds_builder *b) { return b->n; }

/* makes room for `need` elements of `size` bytes in *buf (capacity *cap) */
static bool grow(void **buf, int64_t *cap, int64_t need, size_t size)
{
    if (need <= *cap) return true;
    int64_t c = *cap ? *cap : 256;
    while (c < need) c += c / 2 + 256;
    void *p = realloc(*buf, (size_t)c * size);
    if (!p) return false;
    *buf = p;
    *cap = c;
    return true;
}

lfl_status lfl_ds_builder_add_column(lfl_ds_builder *b, const char *name, lfl_ds_kind kind, int alias_of, int *col)
{
    if (!name || !name[0]) return lfl_fail(LFL_ERR_ARG, "dataset builder: a column needs a non-empty name");
    for (int i = 0; i < b->ncols; i++)
        if (strcmp(b->cols[i].name, name) == 0) return lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' is given twice", name);
    if (b->n > 0) return lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' added after rows", name);
    if (alias_of >= 0 && (alias_of >= b->ncols || b->cols[alias_of].kind != LFL_DS_LIST || b->cols[alias_of].alias_of >= 0
                          || kind != LFL_DS_LIST))
        return lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' can only alias an earlier list column", name);
    bcol *cols = realloc(b->cols, sizeof *cols * (size_t)(b->ncols + 1));
    if (!cols) return lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory");
    b->cols = cols;
    bcol *c = &cols[b->ncols];
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    c->kind = kind;
    c->alias_of = alias_of;
    if (!c->name) return lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory");
    if (kind == LFL_DS_LIST) {
        if (!grow((void **)&c->o, &c->cap_o, 1, sizeof(int64_t))) { free(c->name); return lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory"); }
        c->o[0] = 0;
        c->no = 1;
    }
    *col = b->ncols++;
    return LFL_OK;
}

/* entries a column holds once row `rows` (0-based) is complete */
static int64_t want_entries(const bcol *c, int64_t rows) { return c->kind == LFL_DS_LIST ? rows + 1 : rows; }

int32_t *lfl_ds_builder_list_append(lfl_ds_builder *b, int col, int64_t len)
{
    LFL_ASSERT(col >= 0 && col < b->ncols && len >= 0);
    bcol *c = &b->cols[col];
    if (c->kind != LFL_DS_LIST || c->alias_of >= 0) {
        lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' takes no list appends", c->name);
        return NULL;
    }
    if (c->no != want_entries(c, b->n)) {
        lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' got two lists in row %lld", c->name, (long long)b->n);
        return NULL;
    }
    /* at least one slot, so an empty first list still gets a valid pointer */
    if (!grow((void **)&c->v, &c->cap_v, c->nv + len + 1, sizeof(int32_t)) ||
        !grow((void **)&c->o, &c->cap_o, c->no + 1, sizeof(int64_t))) {
        lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory at row %lld (%lld values in column '%s')", (long long)b->n,
                 (long long)(c->nv + len), c->name);
        return NULL;
    }
    int32_t *p = c->v + c->nv;
    c->nv += len;
    c->o[c->no++] = c->nv;
    return p;
}

lfl_status lfl_ds_builder_scalar_append(lfl_ds_builder *b, int col, int64_t v)
{
    LFL_ASSERT(col >= 0 && col < b->ncols);
    bcol *c = &b->cols[col];
    if (c->kind == LFL_DS_LIST) return lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' is a list", c->name);
    if (c->no != want_entries(c, b->n))
        return lfl_fail(LFL_ERR_ARG, "dataset builder: column '%s' got two values in row %lld", c->name, (long long)b->n);
    if (!grow((void **)&c->o, &c->cap_o, c->no + 1, sizeof(int64_t)))
        return lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory at row %lld", (long long)b->n);
    c->o[c->no++] = v;
    return LFL_OK;
}

lfl_status lfl_ds_builder_unalias(lfl_ds_builder *b, int col)
{
    LFL_ASSERT(col >= 0 && col < b->ncols);
    bcol *c = &b->cols[col];
    if (c->alias_of < 0) return LFL_OK;
    const bcol *t = &b->cols[c->alias_of];
    int64_t nv = t->o[b->n]; /* the completed rows only */
    if (!grow((void **)&c->v, &c->cap_v, nv, sizeof(int32_t)) ||
        !grow((void **)&c->o, &c->cap_o, b->n + 1, sizeof(int64_t)))
        return lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory copying column '%s'", t->name);
    t = &b->cols[c->alias_of];
    if (nv) memcpy(c->v, t->v, (size_t)nv * sizeof(int32_t));
    memcpy(c->o, t->o, (size_t)(b->n + 1) * sizeof(int64_t));
    c->nv = nv;
    c->no = b->n + 1;
    c->alias_of = -1;
    return LFL_OK;
}

lfl_status lfl_ds_builder_end_row(lfl_ds_builder *b)
{
    for (int i = 0; i < b->ncols; i++) {
        const bcol *c = &b->cols[i];
        if (c->alias_of < 0 && c->no != want_entries(c, b->n + 1))
            return lfl_fail(LFL_ERR_ARG, "dataset builder: row %lld has no value for column '%s'", (long long)b->n, c->name);
    }
    b->n++;
    return LFL_OK;
}

/* the buffer as a tensor that frees it (shrunk to its size first) */
static lfl_status wrap(void *buf, int64_t n, lfl_dtype dt, lfl_tensor **out)
{
    size_t nb = lfl_dtype_nbytes(dt, n);
    void *p = nb ? realloc(buf, nb) : buf;
    if (!p) p = buf; /* shrinking failed: keep the larger block */
    lfl_storage *s = lfl_storage_external(p, nb, free, p);
    if (!s) { free(p); return lfl_fail(LFL_ERR_MEM, "dataset builder: out of memory"); }
    lfl_status st = lfl_tensor_from_storage("dataset builder", s, 0, 1, &n, dt, out);
    lfl_storage_release(s);
    return st;
}

lfl_status lfl_ds_builder_finish(lfl_ds_builder *b, lfl_dataset **out)
{
    for (int i = 0; i < b->ncols; i++) {
        const bcol *c = &b->cols[i];
        if (c->alias_of < 0 && c->no != want_entries(c, b->n))
            return lfl_fail(LFL_ERR_ARG, "dataset builder: row %lld is not finished (column '%s')", (long long)b->n, c->name);
    }
    lfl_dataset *ds = NULL;
    LFL_TRY(lfl_dataset_new(b->n, &ds));
    lfl_status st = LFL_OK;
    for (int pass = 0; pass < 2 && st == LFL_OK; pass++) {
        for (int i = 0; i < b->ncols && st == LFL_OK; i++) {
            bcol *c = &b->cols[i];
            if ((c->alias_of >= 0) != (pass == 1)) continue; /* aliases after their targets */
            if (c->alias_of >= 0) { st = lfl_dataset_add_alias(ds, c->name, b->cols[c->alias_of].name); continue; }
            lfl_tensor *v = NULL, *o = NULL;
            if (c->kind == LFL_DS_LIST) {
                st = wrap(c->v, c->nv, LFL_I32, &v);
                c->v = NULL;
                if (st == LFL_OK) st = wrap(c->o, c->no, LFL_I64, &o);
                c->o = NULL;
                if (st == LFL_OK) st = lfl_dataset_add_list(ds, c->name, v, o);
            } else {
                st = wrap(c->o, c->no, LFL_I64, &v);
                c->o = NULL;
                if (st == LFL_OK) st = lfl_dataset_add_scalar(ds, c->name, c->kind, v);
            }
            lfl_tensor_release(v);
            lfl_tensor_release(o);
            c->nv = c->no = c->cap_v = c->cap_o = 0;
        }
    }
    if (st) { lfl_dataset_release(ds); return st; }
    /* the builder is spent: columns gone, ready to be freed */
    for (int i = 0; i < b->ncols; i++) { free(b->cols[i].name); free(b->cols[i].v); free(b->cols[i].o); }
    free(b->cols);
    b->cols = NULL;
    b->ncols = 0;
    b->n = 0;
    *out = ds;
    return LFL_OK;
}

/* ---------------------------------------------------------------- order */

void lfl_dataset_order(int64_t n, int64_t seed, int64_t *perm)
{
    const int64_t m = 2147483647;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    int64_t s = seed % m;
    if (s < 0) s += m; /* Lua's % floors */
    if (s <= 0) s += 2147483646;
    for (int64_t i = n - 1; i >= 1; i--) {
        s = s * 48271 % m;
        int64_t j = s % (i + 1);
        int64_t x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
}

struct lfl_ds_sampler {
    int64_t n, batch_size, seed;
    bool shuffle;
    int64_t epoch, batch;  /* position: batches of `epoch` handed out */
    int64_t order_epoch;   /* the epoch `order` holds, -1 for none */
    int64_t *order;
};

lfl_status lfl_ds_sampler_new(int64_t n, int64_t batch_size, int64_t seed, bool shuffle, lfl_ds_sampler **out)
{
    if (n < 0) return lfl_fail(LFL_ERR_ARG, "dataset batches: %lld rows", (long long)n);
    if (batch_size < 1) return lfl_fail(LFL_ERR_ARG, "dataset batches: batch_size must be at least 1 (got %lld)", (long long)batch_size);
    lfl_ds_sampler *s = calloc(1, sizeof *s);
    if (!s) return lfl_fail(LFL_ERR_MEM, "dataset batches: out of memory");
    s->order = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!s->order) { free(s); return lfl_fail(LFL_ERR_MEM, "dataset batches: out of memory for %lld indices", (long long)n); }
    s->n = n;
    s->batch_size = batch_size;
    s->seed = seed;
    s->shuffle = shuffle;
    s->order_epoch = -1;
    *out = s;
    return LFL_OK;
}

void lfl_ds_sampler_free(lfl_ds_sampler *s)
{
    if (!s) return;
    free(s->order);
    free(s);
}

int64_t lfl_ds_sampler_batches_per_epoch(const lfl_ds_sampler *s) { return (s->n + s->batch_size - 1) / s->batch_size; }

void lfl_ds_sampler_position(const lfl_ds_sampler *s, int64_t *epoch, int64_t *batch)
{
    *epoch = s->epoch;
    *batch = s->batch;
}

lfl_status lfl_ds_sampler_seek(lfl_ds_sampler *s, int64_t epoch, int64_t batch)
{
    int64_t nb = lfl_ds_sampler_batches_per_epoch(s);
    if (epoch < 0) return lfl_fail(LFL_ERR_ARG, "dataset batches: epoch %lld is negative", (long long)epoch);
    if (batch < 0 || batch > nb)
        return lfl_fail(LFL_ERR_ARG, "dataset batches: batch %lld is outside 0..%lld (batches per epoch)", (long long)batch,
                        (long long)nb);
    s->epoch = epoch;
    s->batch = batch;
    return LFL_OK;
}

lfl_status lfl_ds_sampler_next(lfl_ds_sampler *s, const int64_t **idx, int64_t *count)
{
    int64_t nb = lfl_ds_sampler_batches_per_epoch(s);
    *idx = s->order;
    *count = 0;
    if (nb == 0) return LFL_OK;
    if (s->batch >= nb) { s->epoch++; s->batch = 0; }
    if (s->order_epoch != s->epoch) {
        if (s->shuffle) lfl_dataset_order(s->n, s->seed + s->epoch, s->order);
        else for (int64_t i = 0; i < s->n; i++) s->order[i] = i;
        s->order_epoch = s->epoch;
    }
    int64_t first = s->batch * s->batch_size;
    *idx = s->order + first;
    *count = s->n - first < s->batch_size ? s->n - first : s->batch_size;
    s->batch++;
    return LFL_OK;
}
