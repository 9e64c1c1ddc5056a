/* Fuzz target: the tokenizers. The first input byte picks what to do:
 *   < 0xe0  encode the rest with one of the real tokenizers (the byte picks
 *           which, and the encode options), check the offsets, decode the ids
 *           back, and decode the rest read as arbitrary ids;
 *   >= 0xe0 load the rest as a tokenizer.json (the loader on mutated JSON)
 *           and, when it loads, encode and decode a fixed text with it.
 * The real tokenizers: the synthetic ones of tests/golden/tokenizers, the
 * ../shared/data ones (llama3, qwen3, gemma3, llama2, deepseek_v3, and two
 * llama.cpp vocab GGUFs) and the small model's GGUF, whichever are present;
 * LFL_FUZZ_TOKENIZERS (paths separated by ':') replaces that list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "tokenizer/tokenizer.h"

#define MAX_TOKS 16
static lfl_tokenizer *toks[MAX_TOKS];
static int ntoks;

static void add(const char *path)
{
    lfl_tokenizer *t = NULL;
    if (ntoks < MAX_TOKS && lfl_tokenizer_load(path, &t) == LFL_OK) toks[ntoks++] = t;
    else if (getenv("LFL_FUZZ_VERBOSE")) fprintf(stderr, "fuzz_tokenizer: skipping %s: %s\n", path, lfl_last_error());
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    const char *list = getenv("LFL_FUZZ_TOKENIZERS");
    char p[1200];
    if (list && *list) {
        char *copy = strdup(list), *save = NULL;
        for (char *s = strtok_r(copy, ":", &save); s; s = strtok_r(NULL, ":", &save)) add(s);
        free(copy);
    } else {
        static const char *golden[] = {"synth-bytelevel", "synth-metaspace", "synth-splits", "synth-suffix"};
        for (size_t i = 0; i < sizeof golden / sizeof *golden; i++) {
            snprintf(p, sizeof p, "%s/tests/golden/tokenizers/%s.tokenizer.json", LFL_SOURCE_DIR, golden[i]);
            add(p);
        }
        static const char *shared[] = {"tokenizers/llama3", "tokenizers/qwen3", "tokenizers/gemma3", "tokenizers/llama2",
                                       "tokenizers/deepseek_v3", "tokenizer-vectors/ggml-vocab-llama-spm.gguf",
                                       "tokenizer-vectors/ggml-vocab-gpt-2.gguf"};
        for (size_t i = 0; i < sizeof shared / sizeof *shared; i++) {
            snprintf(p, sizeof p, "%s/../shared/data/%s", LFL_SOURCE_DIR, shared[i]);
            add(p);
        }
        const char *home = getenv("HOME");
        snprintf(p, sizeof p, "%s/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
        add(p);
    }
    fprintf(stderr, "fuzz_tokenizer: %d tokenizers\n", ntoks);
    return 0;
}

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_tokenizer: %s\n", what);
    abort();
}

static void encode_decode(const lfl_tokenizer *tok, const char *text, size_t n, lfl_tok_encode_opts o)
{
    lfl_tok_encoding enc = {0};
    if (lfl_tokenizer_encode(tok, text, n, &o, &enc) != LFL_OK) {
        fuzz_check_error(NULL);
        return;
    }
    size_t vocab = lfl_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < enc.n; i++) {
        if (enc.ids[i] < 0) bug("a negative id");
        /* a post-processor may add any id its template names (HF does not
         * check them against the vocabulary either); those have no text */
        bool from_text = !o.offsets || enc.offsets[2 * i] < enc.offsets[2 * i + 1];
        if (from_text && (size_t)enc.ids[i] >= vocab && !lfl_tokenizer_id_to_token(tok, enc.ids[i], NULL))
            bug("an id with no token for a piece of the text");
        if (o.offsets && (enc.offsets[2 * i] > enc.offsets[2 * i + 1] || enc.offsets[2 * i + 1] > n))
            bug("an offset outside the text");
    }
    for (int skip = 0; skip < 2; skip++) {
        char *out = NULL;
        size_t len = 0;
        if (lfl_tokenizer_decode(tok, enc.ids, enc.n, skip, &out, &len) == LFL_OK) free(out);
        else fuzz_check_error(NULL);
    }
    lfl_tok_encoding_free(&enc);
}

static void decode_ids(const lfl_tokenizer *tok, const uint8_t *data, size_t n)
{
    size_t m = n / 4;
    if (!m) return;
    int32_t *ids = malloc(m * sizeof *ids);
    size_t vocab = lfl_tokenizer_vocab_size(tok) + lfl_tokenizer_n_added(tok) + 2;
    for (size_t i = 0; i < m; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        /* mostly valid ids, now and then any int32 */
        ids[i] = (v >> 28) == 0xf ? (int32_t)v : (int32_t)(v % vocab);
    }
    char *out = NULL;
    size_t len = 0;
    if (lfl_tokenizer_decode(tok, ids, m, data[0] & 1, &out, &len) == LFL_OK) free(out);
    else fuzz_check_error(NULL);
    free(ids);
}

static void load_json(const uint8_t *data, size_t n)
{
    lfl_tokenizer *tok = NULL;
    if (lfl_tokenizer_from_json((const char *)data, n, "fuzz-tokenizer.json", &tok) != LFL_OK) {
        fuzz_check_error("fuzz-tokenizer.json");
        return;
    }
    static const char text[] = "Hello world! abc <x> <s>  \n\t\xe2\x96\x81z \xc3\xa9\xe4\xbd\xa0 123 \xff\xf0\x9f\xa6";
    encode_decode(tok, text, sizeof text - 1, lfl_tok_encode_defaults());
    lfl_tok_encode_opts o = {false, false, true};
    encode_decode(tok, text, sizeof text - 1, o);
    lfl_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    if (sel >= 0xe0) {
        load_json(data + 1, size - 1);
        return 0;
    }
    if (!ntoks) return 0;
    const lfl_tokenizer *tok = toks[(sel >> 2) % ntoks];
    lfl_tok_encode_opts o = {(sel & 1) != 0, (sel & 2) != 0, true};
    encode_decode(tok, (const char *)data + 1, size - 1, o);
    decode_ids(tok, data + 1, size - 1);
    return 0;
}
