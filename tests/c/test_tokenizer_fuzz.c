/* Tokenizer robustness with a fixed seed: random bytes (invalid UTF-8, special
 * token fragments) encode without crashing, with offsets inside the text and
 * exact round trips for valid text; a small tokenizer.json and a real GGUF
 * vocabulary, truncated and mutated, either load or fail with an error. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

static int failures;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            if (++failures > 20) exit(1);                                     \
        }                                                                     \
    } while (0)

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *pieces[] = {"<s>", "</s>", "<|", "|>", "<|begin_of_text|>", "<unk>", " ", "  ", "\n", "\t",
                               "\xe2\x96\x81", "\xc3\xa9", "e\xcc\x81", "\xe4\xbd\xa0", "\xf0\x9f\xa6\x99", "'s",
                               "123", "\xef\xbf\xbd", "\x80", "\xe2\x82", "\xf0\x9f", "\xed\xa0\x80", "\xff", "a", "Z"};

static size_t random_text(char *buf, size_t cap, bool valid_only)
{
    size_t n = 0, want = (size_t)(rnd() % 120);
    while (n < want) {
        const char *p;
        char one[2] = {0, 0};
        if (rnd() % 3 == 0) {
            one[0] = (char)(valid_only ? 0x20 + rnd() % 95 : rnd() % 256);
            p = one;
        } else {
            size_t k = (size_t)(rnd() % (sizeof pieces / sizeof *pieces));
            /* valid text for round trips: no invalid fragments, and no "▁",
             * which SentencePiece-style decoders turn into a space (as HF) */
            if (valid_only && ((k >= 18 && k <= 22) || k == 10)) continue;
            p = pieces[k];
        }
        size_t len = p == one ? 1 : strlen(p);
        if (n + len >= cap) break;
        memcpy(buf + n, p, len);
        n += len;
    }
    return n;
}

static void fuzz_encode(const char *path, bool round_trip)
{
    if (access(path, R_OK) != 0) return;
    lfl_tokenizer *tok;
    if (lfl_tokenizer_load(path, &tok) != LFL_OK) {
        fprintf(stderr, "%s: %s\n", path, lfl_last_error());
        failures++;
        return;
    }
    char buf[1024];
    lfl_tok_encoding e = {0};
    for (int it = 0; it < 1500; it++) {
        bool valid = it % 2 == 0;
        size_t n = random_text(buf, sizeof buf, valid);
        lfl_tok_encode_opts o = {rnd() % 2 == 0, rnd() % 2 == 0, true};
        if (valid && round_trip) o.add_special_tokens = o.parse_special = false;
        CHECK(lfl_tokenizer_encode(tok, buf, n, &o, &e) == LFL_OK);
        for (size_t i = 0; i < e.n; i++) {
            CHECK(e.offsets[2 * i] <= e.offsets[2 * i + 1] && e.offsets[2 * i + 1] <= n);
            CHECK(e.ids[i] >= 0 && (size_t)e.ids[i] < lfl_tokenizer_vocab_size(tok));
        }
        char *dec;
        size_t dn;
        CHECK(lfl_tokenizer_decode(tok, e.ids, e.n, rnd() % 2 == 0, &dec, &dn) == LFL_OK);
        if (valid && round_trip && (dn != n || memcmp(dec, buf, n) != 0)) {
            fprintf(stderr, "%s: round trip failed for '%.*s' -> '%s'\n", path, (int)n, buf, dec);
            failures++;
        }
        free(dec);
    }
    /* decode of ids outside the vocabulary: a clean error */
    int32_t bad[2] = {1, (int32_t)lfl_tokenizer_vocab_size(tok) + 5};
    char *dec = NULL;
    CHECK(lfl_tokenizer_decode(tok, bad, 2, false, &dec, NULL) == LFL_ERR_ARG && !dec);
    lfl_tok_encoding_free(&e);
    lfl_tokenizer_free(tok);
}

static const char small_json[] =
    "{\"added_tokens\": [{\"id\": 6, \"content\": \"<x>\", \"special\": true, \"lstrip\": true}],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Prepend\", \"prepend\": \"_\"}]},"
    " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+|[a-c]+\"}, \"behavior\": \"Isolated\"},"
    " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<x>\"}},"
    " {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<x>\": {\"id\": \"<x>\", \"ids\": [6]}}},"
    " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"_\"},"
    " \"content\": \" \"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
    " \"model\": {\"type\": \"BPE\", \"unk_token\": \"?\", \"fuse_unk\": true,"
    " \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3, \"abc\": 4, \"?\": 5, \"_\": 7},"
    " \"merges\": [\"a b\", [\"ab\", \"c\"]]}}";

static void fuzz_json(void)
{
    size_t n = strlen(small_json);
    lfl_tokenizer *tok;
    CHECK(lfl_tokenizer_from_json(small_json, n, "small.json", &tok) == LFL_OK);
    if (tok) {
        lfl_tok_encoding e = {0};
        lfl_tok_encode_opts o = lfl_tok_encode_defaults();
        CHECK(lfl_tokenizer_encode(tok, "abc ab zz<x>", 12, &o, &e) == LFL_OK);
        /* <x> (template), "_", "abc", " " (unk), "ab", " " (unk), "zz" (one fused unk), <x> */
        int32_t want[] = {6, 7, 4, 5, 2, 5, 5, 6};
        CHECK(e.n == 8 && memcmp(e.ids, want, sizeof want) == 0);
        lfl_tok_encoding_free(&e);
        lfl_tokenizer_free(tok);
    }
    char *m = malloc(n + 1);
    int loaded = 0;
    for (int it = 0; it < 3000; it++) {
        size_t len = n;
        memcpy(m, small_json, n);
        for (int k = 0; k < 1 + (int)(rnd() % 3) && len > 0; k++) {
            size_t at = (size_t)(rnd() % len);
            if (rnd() % 4 == 0) len = at;
            else m[at] = "{}[]\",:0123456789abc \\u"[rnd() % 24];
        }
        m[len] = 0;
        tok = NULL;
        lfl_status st = lfl_tokenizer_from_json(m, len, "mutated.json", &tok);
        if (st == LFL_OK) {
            loaded++;
            lfl_tok_encoding e = {0};
            lfl_tok_encode_opts o = lfl_tok_encode_defaults();
            CHECK(lfl_tokenizer_encode(tok, "abc ab c<x>", 11, &o, &e) == LFL_OK);
            lfl_tok_encoding_free(&e);
            lfl_tokenizer_free(tok);
        } else {
            CHECK(!tok && strstr(lfl_last_error(), "mutated.json"));
        }
    }
    free(m);
    printf("tokenizer.json mutations: 3000, %d loaded\n", loaded);
}

static void fuzz_gguf(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    rewind(f);
    uint8_t *orig = malloc(n);
    CHECK(fread(orig, 1, n, f) == n);
    fclose(f);
    uint8_t *m = malloc(n);
    int loaded = 0;
    for (int it = 0; it < 40; it++) {
        memcpy(m, orig, n);
        size_t len = n;
        for (int k = 0; k < 4 && len > 0; k++) {
            size_t at = (size_t)(rnd() % len);
            if (k == 0 && it % 4 == 0) len = at;
            else m[at] = (uint8_t)rnd();
        }
        lfl_gguf *g = NULL;
        if (lfl_gguf_open_memory(m, len, "mutated.gguf", &g) != LFL_OK) {
            CHECK(strstr(lfl_last_error(), "mutated.gguf"));
            continue;
        }
        lfl_tokenizer *tok = NULL;
        if (lfl_tokenizer_from_gguf(g, &tok) == LFL_OK) {
            loaded++;
            lfl_tok_encoding e = {0};
            lfl_tok_encode_opts o = lfl_tok_encode_defaults();
            CHECK(lfl_tokenizer_encode(tok, "Hello world <s>", 15, &o, &e) == LFL_OK);
            lfl_tok_encoding_free(&e);
            lfl_tokenizer_free(tok);
        } else {
            CHECK(!tok && strstr(lfl_last_error(), "mutated.gguf"));
        }
        lfl_gguf_close(g);
    }
    printf("GGUF vocabulary mutations: 40, %d loaded\n", loaded);
    free(m);
    free(orig);
}

int main(void)
{
    fuzz_json();
    fuzz_encode("../shared/data/tokenizers/llama3", true);
    fuzz_encode("../shared/data/tokenizers/llama2", true);
    fuzz_encode("../shared/data/tokenizers/qwen3", false);
    fuzz_gguf("../shared/data/tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    if (failures) {
        printf("%d failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
