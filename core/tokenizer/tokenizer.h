/* Tokenizers that reproduce Hugging Face `tokenizers` ids: BPE (byte-level or
 * SentencePiece-style with byte fallback), normalizers, pre-tokenizers, added
 * and special tokens, post-processors and decoders, loaded from tokenizer.json
 * or from GGUF metadata. Encoding is thread-safe (one tokenizer may be shared
 * by many threads); batch encoding runs texts in parallel with OpenMP. */
#ifndef LFL_TOKENIZER_H
#define LFL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef struct lfl_tokenizer lfl_tokenizer;
struct lfl_gguf;

typedef struct {
    bool add_special_tokens; /* run the post-processor (e.g. add BOS); HF default true */
    bool parse_special;      /* match special tokens written in the text; HF default true */
    bool offsets;            /* fill byte offsets */
} lfl_tok_encode_opts;

/* HF defaults: add_special_tokens and parse_special on, offsets on */
lfl_tok_encode_opts lfl_tok_encode_defaults(void);

typedef struct {
    int32_t *ids;
    uint32_t *offsets; /* 2 per token: [start, end) byte offsets into the input text
                        * (0, 0 for tokens the post-processor added); NULL unless asked */
    size_t n, cap;
} lfl_tok_encoding;

/* `path`: a tokenizer.json, a folder holding one, or a .gguf file. A
 * tokenizer_config.json next to a tokenizer.json supplies bos/eos/pad/unk. */
lfl_status lfl_tokenizer_load(const char *path, lfl_tokenizer **out);
lfl_status lfl_tokenizer_from_json_file(const char *path, lfl_tokenizer **out);
/* `name` appears in error messages */
lfl_status lfl_tokenizer_from_json(const char *json, size_t len, const char *name, lfl_tokenizer **out);
lfl_status lfl_tokenizer_from_gguf(const struct lfl_gguf *g, lfl_tokenizer **out);
lfl_status lfl_tokenizer_from_gguf_file(const char *path, lfl_tokenizer **out);
/* Reads bos/eos/pad/unk tokens from a tokenizer_config.json. */
lfl_status lfl_tokenizer_load_config(lfl_tokenizer *tok, const char *config_path);
void lfl_tokenizer_free(lfl_tokenizer *tok);

lfl_status lfl_tokenizer_encode(const lfl_tokenizer *tok, const char *text, size_t len,
                                const lfl_tok_encode_opts *opts, lfl_tok_encoding *out);
/* outs[i] receives texts[i]; runs in parallel over texts */
lfl_status lfl_tokenizer_encode_batch(const lfl_tokenizer *tok, size_t n, const char *const *texts,
                                      const size_t *lens, const lfl_tok_encode_opts *opts,
                                      lfl_tok_encoding *outs);
void lfl_tok_encoding_free(lfl_tok_encoding *enc);

/* Decodes to a malloc'd NUL-terminated string (*out_len excludes the NUL). */
lfl_status lfl_tokenizer_decode(const lfl_tokenizer *tok, const int32_t *ids, size_t n,
                                bool skip_special_tokens, char **out, size_t *out_len);

/* -1 when the string is not a token (added tokens first, then the model vocab) */
int32_t lfl_tokenizer_token_to_id(const lfl_tokenizer *tok, const char *s, size_t len);
/* NULL when no token has this id */
const char *lfl_tokenizer_id_to_token(const lfl_tokenizer *tok, int32_t id, size_t *len);
/* 1 + the highest id of the model vocab and the added tokens (embedding rows needed) */
size_t lfl_tokenizer_vocab_size(const lfl_tokenizer *tok);
bool lfl_tokenizer_is_special(const lfl_tokenizer *tok, int32_t id);

typedef struct {
    int32_t bos, eos, pad, unk; /* -1 when unknown */
} lfl_tok_special_ids;
lfl_tok_special_ids lfl_tokenizer_special_ids(const lfl_tokenizer *tok);

/* Added tokens (specials and user additions) in id order */
size_t lfl_tokenizer_n_added(const lfl_tokenizer *tok);
void lfl_tokenizer_added(const lfl_tokenizer *tok, size_t i, const char **content, size_t *len,
                         int32_t *id, bool *special);
/* how added token i matches (HF's AddedToken fields) */
typedef struct {
    bool lstrip, rstrip, normalized, single_word;
} lfl_tok_added_flags;
lfl_tok_added_flags lfl_tokenizer_added_flags(const lfl_tokenizer *tok, size_t i);

/* The tokenizer as a Hugging Face tokenizer.json (malloc'd, NUL-terminated;
 * *len excludes the NUL): model, added tokens and pipeline as lfl runs them,
 * so a GGUF vocabulary can be saved for `tokenizers` / transformers. */
lfl_status lfl_tokenizer_to_json(const lfl_tokenizer *tok, char **out, size_t *len);

/* One line: model kind, vocab size, pipeline summary */
const char *lfl_tokenizer_describe(const lfl_tokenizer *tok);

#endif
