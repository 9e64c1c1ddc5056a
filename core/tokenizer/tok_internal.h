/* Internal types of the tokenizer: string tables and hash maps, the pipeline
 * components (normalizers, pre-tokenizers, BPE model, post-processors,
 * decoders), per-thread workspaces, and the "split" that flows between them. */
#ifndef LFL_TOK_INTERNAL_H
#define LFL_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tokenizer.h"

/* ---- small utilities (tok_util.c) ---- */

uint64_t tok_hash(const void *p, size_t n);
/* decodes one UTF-8 char of valid input; returns its byte length */
int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
int tok_utf8_encode(int32_t cp, char *out);
/* length of the valid UTF-8 sequence at s, or 0 with *sub = its maximal valid
 * prefix (Unicode's "maximal subpart": one U+FFFD replaces it) */
size_t tok_utf8_valid_len(const unsigned char *s, size_t n, size_t *sub);
static inline int tok_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Unicode classes as Rust's char methods / regex classes define them */
bool tok_is_whitespace(int32_t cp);   /* White_Space */
bool tok_is_word_char(int32_t cp);    /* regex \w */
bool tok_is_numeric(int32_t cp);      /* N* */
bool tok_is_punct(int32_t cp);        /* ASCII punctuation or P* */

/* Growable byte buffer */
typedef struct {
    char *p;
    size_t n, cap;
} tok_buf;
bool tok_buf_reserve(tok_buf *b, size_t extra);
bool tok_buf_put(tok_buf *b, const void *s, size_t n);
void tok_buf_free(tok_buf *b);
/* appends s with invalid sequences replaced by U+FFFD (as Rust's from_utf8_lossy) */
bool tok_utf8_lossy(const char *s, size_t n, tok_buf *out);

/* Bump allocator reset per encode call */
typedef struct tok_arena_block tok_arena_block;
typedef struct {
    tok_arena_block *head, *cur;
    size_t total;
} tok_arena;
void *tok_arena_alloc(tok_arena *a, size_t n);
void tok_arena_reset(tok_arena *a);
void tok_arena_free(tok_arena *a);

/* Token strings <-> ids: a string pool, per-id offsets, an open-addressing hash */
typedef struct {
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *off, *len;   /* per id; off == UINT32_MAX when the id has no string */
    uint32_t n_ids;        /* ids 0 .. n_ids-1 */
    uint32_t cap_ids;
    uint32_t count;        /* strings present */
    int32_t *slots;
    uint32_t mask;
} tok_vocab;
void tok_vocab_init(tok_vocab *v);
void tok_vocab_free(tok_vocab *v);
/* adds s with id; returns false on OOM. A second string for an existing id
 * replaces the first, a second id for an existing string is ignored (*dup = true). */
bool tok_vocab_add(tok_vocab *v, const char *s, size_t n, int32_t id, bool *dup);
int32_t tok_vocab_get(const tok_vocab *v, const char *s, size_t n);
static inline const char *tok_vocab_str(const tok_vocab *v, int32_t id, size_t *n)
{
    if (id < 0 || (uint32_t)id >= v->n_ids || v->off[id] == UINT32_MAX) return NULL;
    *n = v->len[id];
    return v->pool + v->off[id];
}

/* (id a, id b) -> (rank, merged id) */
typedef struct {
    uint64_t key;
    int32_t rank, id;
} tok_pair_slot;
typedef struct {
    tok_pair_slot *slots;
    uint64_t mask, count;
} tok_pairmap;
bool tok_pairmap_init(tok_pairmap *m, size_t expected);
void tok_pairmap_free(tok_pairmap *m);
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
static inline const tok_pair_slot *tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const tok_pair_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

/* GPT-2 byte <-> printable code point mapping */
extern int32_t tok_byte_to_cp[256];
int tok_cp_to_byte(int32_t cp); /* -1 when cp is not in the mapping */
void tok_bytes_map_init(void);

/* ---- patterns (tok_regex.c) ---- */

typedef struct {
    bool is_regex;
    char *lit;          /* literal pattern (String), or the regex as written (Oniguruma
                         * syntax, before translation: what a saved tokenizer.json holds) */
    size_t lit_len;
    pcre2_code *re;     /* Regex, compiled UTF+UCP, JIT when available */
    bool jit;
} tok_pattern;

struct tok_ws;
lfl_status tok_pattern_regex(tok_pattern *p, const char *src, size_t n, const char *where);
lfl_status tok_pattern_literal(tok_pattern *p, const char *s, size_t n);
void tok_pattern_free(tok_pattern *p);
/* next non-empty match in s[from..n): true with [*ms, *me) */
bool tok_pattern_find(const tok_pattern *p, struct tok_ws *ws, const char *s, size_t n, size_t from,
                      size_t *ms, size_t *me, lfl_status *err);

/* ---- the split: a piece of (normalized) text with its alignment ---- */

typedef struct {
    const char *s;
    uint32_t n;
    const uint32_t *al;   /* 2 per byte: original [start, end); NULL means identity */
    uint32_t base;        /* original offset of s[0] when al == NULL */
    int32_t token;        /* >= 0: an added token already decided (id) */
} tok_split;

static inline uint32_t tok_split_ostart(const tok_split *sp, uint32_t i)
{
    return sp->al ? sp->al[2 * i] : sp->base + i;
}
static inline uint32_t tok_split_oend(const tok_split *sp, uint32_t i) /* end of byte i */
{
    return sp->al ? sp->al[2 * i + 1] : sp->base + i + 1;
}
static inline tok_split tok_split_sub(const tok_split *sp, uint32_t a, uint32_t b)
{
    tok_split r = *sp;
    r.s = sp->s + a;
    r.n = b - a;
    if (sp->al) r.al = sp->al + 2 * a;
    else r.base = sp->base + a;
    r.token = -1;
    return r;
}

typedef struct {
    tok_split *v;
    size_t n, cap;
} tok_splits;
bool tok_splits_push(tok_splits *s, tok_split x);

/* Builds a new split's bytes and alignment, then freezes it into the arena */
typedef struct {
    tok_buf s;
    uint32_t *al;
    size_t al_cap;
} tok_builder;
bool tok_builder_put(tok_builder *b, const char *s, size_t n, uint32_t ostart, uint32_t oend);
/* copies src bytes [a, b) keeping their alignment */
bool tok_builder_copy(tok_builder *b, const tok_split *src, uint32_t a, uint32_t e);
bool tok_builder_freeze(tok_builder *b, tok_arena *arena, tok_split *out);
void tok_builder_free(tok_builder *b);

/* ---- pipeline components ---- */

enum { TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD, TOK_NORM_LOWERCASE, TOK_NORM_STRIP,
       TOK_NORM_PREPEND, TOK_NORM_APPEND, TOK_NORM_REPLACE, TOK_NORM_SEQ };

typedef struct tok_norm {
    int type;
    char *str;            /* Prepend/Append text, Replace content */
    size_t str_len;
    tok_pattern pat;      /* Replace */
    bool left, right;     /* Strip */
    struct tok_norm **subs;
    int n_subs;
} tok_norm;

enum { TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS };
enum { TOK_PT_SPLIT, TOK_PT_BYTELEVEL, TOK_PT_METASPACE, TOK_PT_DIGITS, TOK_PT_WHITESPACE,
       TOK_PT_WHITESPACE_SPLIT, TOK_PT_PUNCT, TOK_PT_SEQ };
enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };

typedef struct tok_pretok {
    int type;
    tok_pattern pat;      /* Split */
    int behavior;         /* Split, Punctuation */
    bool invert;
    bool add_prefix_space, use_regex, trim_offsets; /* ByteLevel */
    bool implicit;        /* ByteLevel whose byte mapping the model applies itself */
    char repl[8];         /* Metaspace replacement (UTF-8) */
    int repl_len;
    int32_t repl_cp;
    int prepend_scheme;
    bool split;           /* Metaspace */
    bool individual;      /* Digits */
    struct tok_pretok **subs;
    int n_subs;
} tok_pretok;

enum { TOK_POST_TEMPLATE, TOK_POST_BYTELEVEL, TOK_POST_BERT, TOK_POST_ROBERTA, TOK_POST_SEQ };
typedef struct {
    bool is_seq;          /* $A */
    int32_t *ids;         /* special token ids */
    int n_ids;
} tok_tpl_item;
typedef struct tok_post {
    int type;
    tok_tpl_item *items;  /* Template (single) */
    int n_items;
    int32_t cls_id, sep_id;  /* Bert/Roberta */
    bool trim_offsets, add_prefix_space;
    struct tok_post **subs;
    int n_subs;
} tok_post;

enum { TOK_DEC_BYTELEVEL, TOK_DEC_METASPACE, TOK_DEC_REPLACE, TOK_DEC_BYTEFALLBACK, TOK_DEC_FUSE,
       TOK_DEC_STRIP, TOK_DEC_SEQ, TOK_DEC_BPE };
typedef struct tok_dec {
    int type;
    tok_pattern pat;      /* Replace */
    char *str;            /* Replace content, BPE suffix */
    size_t str_len;
    int32_t ch;           /* Strip content / Metaspace replacement */
    int start, stop;      /* Strip */
    int prepend_scheme;   /* Metaspace */
    struct tok_dec **subs;
    int n_subs;
} tok_dec;

/* ---- the BPE model (tok_bpe.c) ---- */

typedef struct {
    tok_vocab vocab;
    tok_pairmap merges;
    int32_t unk_id;
    bool fuse_unk, byte_fallback, ignore_merges;
    char *prefix, *suffix;          /* continuing_subword_prefix, end_of_word_suffix ("" = none) */
    size_t prefix_len, suffix_len;
    int32_t byte_tok[256];          /* <0xHH> ids, -1 when absent */
    int32_t bl_id[256];             /* byte-level: id of the mapped char of byte b */
    int32_t *cp_id;                 /* single-char token id for code points < 0x10000 */
} tok_bpe;

/* BPE output for one word: ids with [start, end) byte spans in the word */
typedef struct {
    int32_t id;
    uint32_t start, end;
} tok_piece;

/* ---- added tokens (tok_added.c) ---- */

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    bool special, normalized, lstrip, rstrip, single_word;
    char *norm;           /* content after the normalizer (normalized tokens) */
    size_t norm_len;
    uint32_t seq;         /* insertion order */
} tok_added;

typedef struct {
    int32_t *root;        /* 256 entries: first node per byte, -1 none */
    struct tok_trie_node *nodes;
    size_t n_nodes, cap;
    bool any;
} tok_trie;
struct tok_trie_node {
    int32_t child, sibling, token; /* token: index into added[], -1 none */
    uint8_t byte;
};
lfl_status tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t token);
void tok_trie_free(tok_trie *t);

/* ---- per-thread scratch ---- */

typedef struct tok_cache tok_cache;
typedef struct tok_ws {
    tok_arena arena;
    tok_splits a, b;          /* ping-pong split lists */
    tok_splits segs;          /* added-token segmentation */
    tok_builder bld;
    tok_buf buf, buf2;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    /* BPE scratch */
    void *syms;
    size_t syms_cap;
    void *heap;
    size_t heap_cap;
    tok_piece *pieces;
    size_t pieces_cap;
    tok_cache *cache;
    struct tok_ws *next;
} tok_ws;

/* ---- the tokenizer ---- */

struct lfl_tokenizer {
    char *name;
    tok_bpe bpe;
    tok_added *added;          /* sorted by id */
    size_t n_added;
    tok_vocab added_vocab;     /* content -> id for added tokens */
    tok_trie trie_raw, trie_raw_nospecial, trie_norm, trie_norm_nospecial;
    tok_norm *normalizer;
    tok_pretok *pretok;
    bool implicit_bytelevel;   /* words reach the model as raw bytes to be mapped */
    bool spm_split;            /* words may be cut before "▁" (no token spans "x▁") */
    bool post_trims;           /* the post-processor trims offsets */
    tok_post *post;
    tok_dec *decoder;
    lfl_tok_special_ids special;
    size_t vocab_size;
    char desc[256];
    pthread_mutex_t pool_lock;
    tok_ws *pool;
};

/* construction helpers (tok_build.c), shared by the JSON and GGUF loaders */
extern const char TOK_GPT2_REGEX[];
tok_norm *tok_norm_new(int type);
tok_pretok *tok_pretok_new(int type);
tok_post *tok_post_new(int type);
tok_dec *tok_dec_new(int type);
bool tok_norm_add_sub(tok_norm *seq, tok_norm *x);
bool tok_pretok_add_sub(tok_pretok *seq, tok_pretok *x);
bool tok_post_add_sub(tok_post *seq, tok_post *x);
bool tok_dec_add_sub(tok_dec *seq, tok_dec *x);
lfl_status tok_pretok_bytelevel(bool add_prefix_space, bool use_regex, bool trim_offsets, tok_pretok **out);
lfl_status tok_pretok_split_regex(const char *re, size_t n, int behavior, bool invert, const char *where,
                                  tok_pretok **out);
/* a merge (a, b) of rank `rank`: ids from the vocab, merged token a + b */
lfl_status tok_bpe_add_merge(tok_bpe *m, const char *a, size_t an, const char *b, size_t bn, int32_t rank,
                             const char *where);
lfl_status tok_add_added(lfl_tokenizer *tok, const char *content, size_t n, int32_t id, bool special,
                         bool normalized, bool lstrip, bool rstrip, bool single_word);

/* component lifecycles */
void tok_norm_free(tok_norm *n);
void tok_pretok_free(tok_pretok *p);
void tok_post_free(tok_post *p);
void tok_dec_free(tok_dec *d);
void tok_bpe_free(tok_bpe *m);

/* loaders share: finish set-up once model, added tokens and components exist */
lfl_status tok_finalize(lfl_tokenizer *tok);
lfl_tokenizer *tok_new(const char *name);

/* stages */
lfl_status tok_normalize(const tok_norm *n, tok_ws *ws, const tok_split *in, tok_split *out);
lfl_status tok_pretokenize(const tok_pretok *p, tok_ws *ws, tok_splits *io);
lfl_status tok_bpe_prepare(tok_bpe *m);
lfl_status tok_bpe_word(const tok_bpe *m, tok_ws *ws, const char *w, size_t n, bool bytelevel,
                        tok_piece **out, size_t *n_out);
void tok_cache_free(tok_cache *c);
/* text: the encoded text (trimming reads the spans of matched added tokens) */
lfl_status tok_post_apply(const lfl_tokenizer *tok, const tok_post *p, lfl_tok_encoding *enc, bool add_special,
                          const char *text, size_t len);
lfl_status tok_decode_tokens(const tok_dec *d, char ***toks, size_t **lens, size_t *n);

bool tok_is_added(const lfl_tokenizer *tok, int32_t id);

/* tokenizer.json writer (tok_save.c) */
lfl_status tok_to_json(const lfl_tokenizer *tok, tok_buf *out);

/* encoding buffer */
bool tok_enc_push(lfl_tok_encoding *e, int32_t id, uint32_t s, uint32_t t, bool offsets);

#endif
