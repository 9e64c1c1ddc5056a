/* Fuzz target: the safetensors reader (core/io/safetensors.c) and the dataset
 * cache reader built on it (lfl_dataset_load). A file that opens must satisfy
 * the format's rules (ranges inside the data, covering it exactly, sizes
 * matching shape x dtype); every tensor is read through in full (ASan catches
 * a byte past the mapping) and cast to f32; every failure names the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/dataset.h"
#include "common.h"
#include "io/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    return 0;
}

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_safetensors: accepted a file that breaks the format: %s\n", what);
    abort();
}

static int by_range(const void *a, const void *b)
{
    const lfl_st_entry *x = *(lfl_st_entry *const *)a, *y = *(lfl_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static void check_file(const lfl_st_file *f)
{
    size_t data_len = f->map->nbytes - f->data_start;
    const lfl_st_entry **order = malloc(sizeof *order * (size_t)(f->n ? f->n : 1));
    for (int i = 0; i < f->n; i++) order[i] = &f->entries[i];
    qsort(order, (size_t)f->n, sizeof *order, by_range);
    size_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const lfl_st_entry *e = order[i];
        if (e->begin != at) bug("a gap or an overlap between tensors");
        if (e->end < e->begin || e->end > data_len) bug("a range outside the data");
        size_t numel = 1;
        for (int d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
        if (numel * lfl_dtype_size(e->dtype) != e->end - e->begin) bug("a byte size that is not numel x dtype size");
        at = e->end;
        if (lfl_st_find(f, e->name) < 0) bug("a tensor that cannot be found by its name");
    }
    if (at != data_len) bug("bytes after the last tensor");
    free(order);
}

static volatile unsigned sink;

static void read_tensors(const lfl_st_file *f)
{
    for (int i = 0; i < f->n; i++) {
        lfl_tensor *t = NULL;
        if (lfl_st_tensor(f, i, &t) != LFL_OK) bug("an entry that does not give a tensor");
        const unsigned char *p = lfl_data(t);
        size_t nb = f->entries[i].end - f->entries[i].begin;
        unsigned s = 0;
        for (size_t k = 0; k < nb; k++) s += p[k];
        sink += s;
        lfl_tensor *c = NULL;
        if (lfl_numel(t) <= (1 << 16) && lfl_cast(t, LFL_F32, &c) == LFL_OK) lfl_tensor_release(c);
        lfl_tensor_release(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch(data, size, ".safetensors");
    lfl_st_file *f = NULL;
    if (lfl_st_open(path, &f) == LFL_OK) {
        check_file(f);
        read_tensors(f);
        lfl_st_close(f);
    } else {
        fuzz_check_error(path);
    }
    lfl_ds_file *ds = NULL;
    if (lfl_dataset_load(path, &ds) == LFL_OK) {
        for (int s = 0; s < ds->nsplits; s++) {
            const lfl_dataset *d = ds->sets[s];
            for (int c = 0; c < d->ncols; c++) {
                for (int64_t r = 0; r < d->n; r++) {
                    if (d->cols[c].kind == LFL_DS_LIST) {
                        const int32_t *v;
                        int64_t len = lfl_dataset_list(d, c, r, &v);
                        for (int64_t k = 0; k < len; k++) sink += (unsigned)v[k];
                    } else {
                        sink += (unsigned)lfl_dataset_scalar(d, c, r);
                    }
                }
            }
            sink += (unsigned)lfl_dataset_num_tokens(d);
        }
        lfl_ds_file_free(ds);
    } else {
        fuzz_check_error(path);
    }
    return 0;
}
