/* Fuzz target: the GGUF reader (core/io/gguf.c) over the input as a buffer,
 * everything a loader reads after it (typed lookups of every key, every
 * array element, nested arrays, each tensor's bytes and its dequantization
 * or cast to f32) and the tokenizer built from a GGUF vocabulary. A file that
 * opens keeps every tensor inside the buffer; every failure names the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "io/gguf.h"
#include "quant/ggml.h"
#include "tokenizer/tokenizer.h"

#define NAME "fuzz.gguf"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    return 0;
}

static volatile uint64_t sink;

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_gguf: %s\n", what);
    abort();
}

static void walk_array(const lfl_gguf_kv *kv, int depth)
{
    if (depth > 16) bug("arrays nested deeper than the reader allows");
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        switch (kv->arr_type) {
        case LFL_GGUF_STRING: {
            lfl_gguf_str s = lfl_gguf_arr_str(kv, i);
            for (uint64_t k = 0; k < s.len; k++) sink += (unsigned char)s.ptr[k];
            break;
        }
        case LFL_GGUF_ARRAY: walk_array(lfl_gguf_arr_sub(kv, i), depth + 1); break;
        case LFL_GGUF_F32: case LFL_GGUF_F64: sink += (uint64_t)(lfl_gguf_arr_float(kv, i) != 0); break;
        default: sink += (uint64_t)lfl_gguf_arr_int(kv, i) + (uint64_t)(lfl_gguf_arr_float(kv, i) != 0); break;
        }
    }
}

static void read_kvs(const lfl_gguf *g)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const lfl_gguf_kv *kv = &g->kv[i];
        if (lfl_gguf_find(g, kv->key) == NULL) bug("a key that cannot be found");
        const char *s;
        size_t len;
        int64_t iv;
        double fv;
        bool bv;
        lfl_gguf_type t;
        uint64_t n;
        if (lfl_gguf_get_str(g, kv->key, &s, &len) == LFL_OK)
            for (size_t k = 0; k < len; k++) sink += (unsigned char)s[k];
        if (lfl_gguf_get_int(g, kv->key, &iv) == LFL_OK) sink += (uint64_t)iv;
        if (lfl_gguf_get_float(g, kv->key, &fv) == LFL_OK) sink += fv != 0;
        if (lfl_gguf_get_bool(g, kv->key, &bv) == LFL_OK) sink += bv;
        if (lfl_gguf_get_arr(g, kv->key, &t, &n) == LFL_OK) {
            if (t != kv->arr_type || n != kv->arr_n) bug("get_arr disagrees with the kv");
            walk_array(kv, 0);
        }
    }
}

static void read_tensors(const lfl_gguf *g, const uint8_t *data, size_t size)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const lfl_gguf_tensor *ti = &g->tensors[i];
        if (lfl_gguf_find_tensor(g, ti->name) != ti) bug("a tensor that cannot be found by its name");
        const uint8_t *p = ti->data;
        if (p < data || (size_t)(p - data) > size || ti->nbytes > size - (size_t)(p - data))
            bug("a tensor whose bytes lie outside the file");
        uint64_t s = 0;
        for (uint64_t k = 0; k < ti->nbytes; k++) s += p[k];
        sink += s;
        int dt = lfl_ggml_type_to_dtype(ti->type);
        int64_t numel = 1;
        for (int d = 0; d < ti->ndim; d++) numel *= ti->ne[d];
        if (dt < 0 || numel > (1 << 16)) continue;
        /* the view lfl.gguf.tensors makes, then what loading it as f32 does */
        int64_t shape[LFL_GGUF_MAX_DIMS];
        for (int d = 0; d < ti->ndim; d++) shape[d] = ti->ne[ti->ndim - 1 - d];
        lfl_storage *st = lfl_storage_external((void *)data, size, NULL, NULL);
        lfl_tensor *t = NULL;
        lfl_status made = lfl_tensor_from_storage("fuzz_gguf", st, (size_t)(p - data), ti->ndim, shape,
                                                  (lfl_dtype)dt, &t);
        lfl_storage_release(st);
        if (made != LFL_OK) continue;
        lfl_tensor *f = NULL;
        lfl_status rc = lfl_dtype_is_block((lfl_dtype)dt) ? lfl_dequantize(t, &f) : lfl_cast(t, LFL_F32, &f);
        if (rc == LFL_OK) lfl_tensor_release(f);
        lfl_tensor_release(t);
    }
}

static void tokenizer(const lfl_gguf *g)
{
    lfl_tokenizer *tok = NULL;
    if (lfl_tokenizer_from_gguf(g, &tok) != LFL_OK) return;
    static const char text[] = "Hello world! <s> </s> <|im_start|>user\n  \xe2\x96\x81x \xc3\xa9\xe4\xbd\xa0 123 \xff";
    lfl_tok_encoding enc = {0};
    lfl_tok_encode_opts o = lfl_tok_encode_defaults();
    if (lfl_tokenizer_encode(tok, text, sizeof text - 1, &o, &enc) == LFL_OK) {
        char *out = NULL;
        size_t n = 0;
        if (lfl_tokenizer_decode(tok, enc.ids, enc.n, false, &out, &n) == LFL_OK) free(out);
        lfl_tok_encoding_free(&enc);
    }
    size_t v = lfl_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < v && i < 64; i++) {
        size_t len;
        const char *s = lfl_tokenizer_id_to_token(tok, (int32_t)i, &len);
        if (s && lfl_tokenizer_token_to_id(tok, s, len) < 0) bug("a vocabulary token without an id");
    }
    lfl_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lfl_gguf *g = NULL;
    if (lfl_gguf_open_memory(data, size, NAME, &g) != LFL_OK) {
        fuzz_check_error(NAME);
        return 0;
    }
    read_kvs(g);
    read_tensors(g, data, size);
    tokenizer(g);
    lfl_gguf_close(g);
    return 0;
}
