/* The encode/decode pipeline in HF order: added tokens split out of the raw
 * text (non-normalized ones), each remaining piece normalized, normalized added
 * tokens split out, pre-tokenization, the BPE model per word, then the
 * post-processor. Also: invalid UTF-8 handling, per-thread workspaces, batch
 * encoding over OpenMP, decoding, lookups and the loader dispatch. */
#define _GNU_SOURCE
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "tok_internal.h"

/* ---- workspaces ---- */

static tok_ws *ws_new(void)
{
    tok_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->md = pcre2_match_data_create(32, NULL);
    ws->mctx = pcre2_match_context_create(NULL);
    ws->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!ws->md || !ws->mctx || !ws->jit_stack) {
        if (ws->md) pcre2_match_data_free(ws->md);
        if (ws->mctx) pcre2_match_context_free(ws->mctx);
        if (ws->jit_stack) pcre2_jit_stack_free(ws->jit_stack);
        free(ws);
        return NULL;
    }
    pcre2_jit_stack_assign(ws->mctx, NULL, ws->jit_stack);
    return ws;
}

static void ws_free(tok_ws *ws)
{
    if (!ws) return;
    tok_arena_free(&ws->arena);
    free(ws->a.v);
    free(ws->b.v);
    free(ws->segs.v);
    tok_builder_free(&ws->bld);
    tok_buf_free(&ws->buf);
    tok_buf_free(&ws->buf2);
    pcre2_match_data_free(ws->md);
    pcre2_match_context_free(ws->mctx);
    pcre2_jit_stack_free(ws->jit_stack);
    free(ws->syms);
    free(ws->heap);
    free(ws->pieces);
    tok_cache_free(ws->cache);
    free(ws);
}

static tok_ws *ws_acquire(const lfl_tokenizer *ctok)
{
    lfl_tokenizer *tok = (lfl_tokenizer *)ctok; /* the pool is the one mutable part */
    pthread_mutex_lock(&tok->pool_lock);
    tok_ws *ws = tok->pool;
    if (ws) tok->pool = ws->next;
    pthread_mutex_unlock(&tok->pool_lock);
    return ws ? ws : ws_new();
}

static void ws_release(const lfl_tokenizer *ctok, tok_ws *ws)
{
    if (!ws) return;
    lfl_tokenizer *tok = (lfl_tokenizer *)ctok;
    pthread_mutex_lock(&tok->pool_lock);
    ws->next = tok->pool;
    tok->pool = ws;
    pthread_mutex_unlock(&tok->pool_lock);
}

/* ---- invalid UTF-8 ---- */

/* the text as a split; invalid sequences become U+FFFD aligned to their bytes */
static lfl_status sanitize(tok_ws *ws, const char *text, size_t len, tok_split *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, sub;
    while (i < len) {
        if (s[i] < 0x80) { i++; continue; }
        size_t v = tok_utf8_valid_len(s + i, len - i, &sub);
        if (!v) break;
        i += v;
    }
    out->token = -1;
    if (i == len) {
        out->s = text;
        out->n = (uint32_t)len;
        out->al = NULL;
        out->base = 0;
        return LFL_OK;
    }
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    tok_split raw = {text, (uint32_t)len, NULL, 0, -1};
    size_t run = 0;
    i = 0;
    while (i < len) {
        if (s[i] < 0x80) { i++; continue; }
        size_t v = tok_utf8_valid_len(s + i, len - i, &sub);
        if (v) { i += v; continue; }
        if (!tok_builder_copy(b, &raw, (uint32_t)run, (uint32_t)i) ||
            !tok_builder_put(b, "\xEF\xBF\xBD", 3, (uint32_t)i, (uint32_t)(i + sub)))
            return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
        i += sub;
        run = i;
    }
    if (!tok_builder_copy(b, &raw, (uint32_t)run, (uint32_t)len) || !tok_builder_freeze(b, &ws->arena, out))
        return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    return LFL_OK;
}

/* ---- added tokens ---- */

static int32_t prev_char_start(const char *s, int32_t i)
{
    int32_t k = i - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return k;
}

/* HF AddedVocabulary::find_matches over one split */
static lfl_status split_added(const lfl_tokenizer *tok, const tok_trie *t, const tok_split *in, tok_splits *out)
{
    const char *s = in->s;
    uint32_t n = in->n, start_offset = 0, i = 0;
    while (i < n) {
        int32_t node = t->root[(uint8_t)s[i]], best = -1;
        uint32_t best_end = 0, j = i + 1;
        while (node >= 0) {
            if (t->nodes[node].token >= 0) { best = t->nodes[node].token; best_end = j; }
            if (j >= n) break;
            int32_t c = t->nodes[node].child;
            while (c >= 0 && t->nodes[c].byte != (uint8_t)s[j]) c = t->nodes[c].sibling;
            node = c;
            j++;
        }
        if (best < 0) { i++; continue; }
        const tok_added *a = &tok->added[best];
        uint32_t ms = i, me = best_end;
        i = best_end; /* the matcher resumes after the raw match, kept or not */
        if (a->single_word) {
            bool start_ok = true, stop_ok = true;
            if (ms > 0) {
                int32_t cp;
                int32_t k = prev_char_start(s, (int32_t)ms);
                tok_utf8_decode((const unsigned char *)s + k, ms - (uint32_t)k, &cp);
                start_ok = !tok_is_word_char(cp);
            }
            if (me < n) {
                int32_t cp;
                tok_utf8_decode((const unsigned char *)s + me, n - me, &cp);
                stop_ok = !tok_is_word_char(cp);
            }
            if (!start_ok || !stop_ok) continue;
        }
        if (a->lstrip) {
            uint32_t ns = ms;
            while (ns > 0) {
                int32_t k = prev_char_start(s, (int32_t)ns), cp;
                tok_utf8_decode((const unsigned char *)s + k, ns - (uint32_t)k, &cp);
                if (!tok_is_whitespace(cp)) break;
                ns = (uint32_t)k;
            }
            ms = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (me < n) {
                int32_t cp;
                int len = tok_utf8_decode((const unsigned char *)s + me, n - me, &cp);
                if (!tok_is_whitespace(cp)) break;
                me += (uint32_t)len;
            }
        }
        if (start_offset < ms && !tok_splits_push(out, tok_split_sub(in, start_offset, ms)))
            return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
        tok_split tk = tok_split_sub(in, ms, me);
        tk.token = a->id;
        if (!tok_splits_push(out, tk)) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
        start_offset = me;
    }
    if (start_offset < n && !tok_splits_push(out, tok_split_sub(in, start_offset, n)))
        return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    return LFL_OK;
}

/* ---- encode ---- */

static lfl_status push_token(lfl_tok_encoding *out, int32_t id, const tok_split *sp, uint32_t a, uint32_t e, bool offsets)
{
    uint32_t os = 0, oe = 0;
    if (offsets && e > a) {
        os = tok_split_ostart(sp, a);
        oe = tok_split_oend(sp, e - 1);
    }
    if (!tok_enc_push(out, id, os, oe, offsets)) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    return LFL_OK;
}

static lfl_status encode_word(const lfl_tokenizer *tok, tok_ws *ws, const tok_split *word, uint32_t a0, uint32_t e0,
                              const lfl_tok_encode_opts *opts, lfl_tok_encoding *out)
{
    tok_piece *pc;
    size_t np;
    LFL_TRY(tok_bpe_word(&tok->bpe, ws, word->s + a0, e0 - a0, tok->implicit_bytelevel, &pc, &np));
    for (size_t k = 0; k < np; k++) {
        uint32_t a = a0 + pc[k].start, e = a0 + pc[k].end;
        if (opts->offsets) {
            /* a token inside a multi-byte char covers the whole char, as in HF */
            while (a > 0 && ((unsigned char)word->s[a] & 0xC0) == 0x80) a--;
            while (e < word->n && ((unsigned char)word->s[e] & 0xC0) == 0x80) e++;
            if (e == a && a < word->n) e = a + 1;
        }
        LFL_TRY(push_token(out, pc[k].id, word, a, e, opts->offsets));
    }
    return LFL_OK;
}

#define SPM_SPACE "\xe2\x96\x81" /* ▁ */

static lfl_status encode_words(const lfl_tokenizer *tok, tok_ws *ws, const tok_split *seg,
                               const lfl_tok_encode_opts *opts, lfl_tok_encoding *out)
{
    tok_splits *io = &ws->a;
    io->n = 0;
    if (!tok_splits_push(io, *seg)) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    LFL_TRY(tok_pretokenize(tok->pretok, ws, io));
    for (size_t w = 0; w < io->n; w++) {
        tok_split *word = &io->v[w];
        if (word->token >= 0) {
            LFL_TRY(push_token(out, word->token, word, 0, word->n, opts->offsets));
            continue;
        }
        if (!tok->spm_split) {
            LFL_TRY(encode_word(tok, ws, word, 0, word->n, opts, out));
            continue;
        }
        /* no token spans "x▁" (x not ▁): BPE runs on the pieces between such
         * points with the same result, and the pieces are cacheable words */
        uint32_t start = 0;
        for (uint32_t i = 1; i + 3 <= word->n; i++) {
            if (memcmp(word->s + i, SPM_SPACE, 3) != 0) continue;
            if (i >= 3 && memcmp(word->s + i - 3, SPM_SPACE, 3) == 0) continue;
            LFL_TRY(encode_word(tok, ws, word, start, i, opts, out));
            start = i;
            i += 2;
        }
        LFL_TRY(encode_word(tok, ws, word, start, word->n, opts, out));
    }
    return LFL_OK;
}

static lfl_status encode_one(const lfl_tokenizer *tok, tok_ws *ws, const char *text, size_t len,
                             const lfl_tok_encode_opts *opts, lfl_tok_encoding *out)
{
    if (len > UINT32_MAX / 4)
        return lfl_fail(LFL_ERR_ARG, "tokenizer: text of %zu bytes is too long (at most %u per text)", len, UINT32_MAX / 4);
    out->n = 0;
    if (opts->offsets && !out->offsets && out->cap) {
        out->offsets = malloc(sizeof *out->offsets * 2 * out->cap);
        if (!out->offsets) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    }
    tok_arena_reset(&ws->arena);
    tok_split whole;
    LFL_TRY(sanitize(ws, text, len, &whole));
    const tok_trie *raw = opts->parse_special ? &tok->trie_raw : &tok->trie_raw_nospecial;
    const tok_trie *norm = opts->parse_special ? &tok->trie_norm : &tok->trie_norm_nospecial;
    tok_splits *segs = &ws->segs;
    segs->n = 0;
    if (raw->any) LFL_TRY(split_added(tok, raw, &whole, segs));
    else if (whole.n && !tok_splits_push(segs, whole)) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    /* segs may grow below (normalized added tokens): walk it by index */
    size_t n_raw = segs->n;
    for (size_t si = 0; si < n_raw; si++) {
        tok_split seg = segs->v[si];
        if (seg.token >= 0) {
            LFL_TRY(push_token(out, seg.token, &seg, 0, seg.n, opts->offsets));
            continue;
        }
        tok_split nseg;
        LFL_TRY(tok_normalize(tok->normalizer, ws, &seg, &nseg));
        if (norm->any) {
            size_t first = segs->n;
            LFL_TRY(split_added(tok, norm, &nseg, segs));
            for (size_t k = first; k < segs->n; k++) {
                tok_split sub = segs->v[k];
                if (sub.token >= 0) LFL_TRY(push_token(out, sub.token, &sub, 0, sub.n, opts->offsets));
                else LFL_TRY(encode_words(tok, ws, &sub, opts, out));
            }
            segs->n = first;
        } else if (nseg.n) {
            LFL_TRY(encode_words(tok, ws, &nseg, opts, out));
        }
    }
    if (opts->offsets && !out->offsets) {
        out->offsets = malloc(sizeof *out->offsets * 2 * (out->cap ? out->cap : 1));
        if (!out->offsets) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    }
    if (tok->post) {
        LFL_TRY(tok_post_apply(tok, tok->post, out, opts->add_special_tokens, text, len));
        /* trimmed offsets can end inside a char (a space the pre-tokenizer
         * added is aligned to the first char); HF's char offsets floor them */
        if (opts->offsets && tok->post_trims && whole.al == NULL) {
            const unsigned char *u = (const unsigned char *)text;
            for (size_t i = 0; i < 2 * out->n; i++) {
                uint32_t o = out->offsets[i];
                for (int k = 0; k < 3 && o > 0 && o < len && (u[o] & 0xC0) == 0x80; k++) o--;
                out->offsets[i] = o;
            }
        }
    }
    if (!opts->offsets && out->offsets) {
        free(out->offsets);
        out->offsets = NULL;
    }
    return LFL_OK;
}

lfl_tok_encode_opts lfl_tok_encode_defaults(void)
{
    lfl_tok_encode_opts o = {true, true, true};
    return o;
}

lfl_status lfl_tokenizer_encode(const lfl_tokenizer *tok, const char *text, size_t len,
                                const lfl_tok_encode_opts *opts, lfl_tok_encoding *out)
{
    lfl_tok_encode_opts def = lfl_tok_encode_defaults();
    if (!opts) opts = &def;
    tok_ws *ws = ws_acquire(tok);
    if (!ws) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    lfl_status st = encode_one(tok, ws, text, len, opts, out);
    ws_release(tok, ws);
    return st;
}

lfl_status lfl_tokenizer_encode_batch(const lfl_tokenizer *tok, size_t n, const char *const *texts,
                                      const size_t *lens, const lfl_tok_encode_opts *opts,
                                      lfl_tok_encoding *outs)
{
    lfl_tok_encode_opts def = lfl_tok_encode_defaults();
    if (!opts) opts = &def;
    lfl_status st = LFL_OK;
    char msg[1024] = "";
    int failed = 0;
#pragma omp parallel if (n > 1)
    {
        tok_ws *ws = ws_acquire(tok);
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < (long)n; i++) {
            int f;
#pragma omp atomic read
            f = failed;
            if (f) continue;
            lfl_status s = ws ? encode_one(tok, ws, texts[i], lens[i], opts, &outs[i])
                              : lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
            if (s != LFL_OK) {
#pragma omp critical(lfl_tok_batch_err)
                {
                    if (!failed) {
                        st = s;
                        snprintf(msg, sizeof msg, "text %ld: %s", i + 1, lfl_last_error());
                    }
                    failed = 1;
                }
            }
        }
        ws_release(tok, ws);
    }
    if (st != LFL_OK) return lfl_fail(st, "%s", msg);
    return LFL_OK;
}

void lfl_tok_encoding_free(lfl_tok_encoding *enc)
{
    if (!enc) return;
    free(enc->ids);
    free(enc->offsets);
    memset(enc, 0, sizeof *enc);
}

/* ---- decode ---- */

static const tok_added *find_added(const lfl_tokenizer *tok, int32_t id)
{
    size_t lo = 0, hi = tok->n_added;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok->added[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < tok->n_added && tok->added[lo].id == id ? &tok->added[lo] : NULL;
}

bool tok_is_added(const lfl_tokenizer *tok, int32_t id) { return find_added(tok, id) != NULL; }

lfl_status lfl_tokenizer_decode(const lfl_tokenizer *tok, const int32_t *ids, size_t n,
                                bool skip_special_tokens, char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len) *out_len = 0;
    char **toks = malloc(sizeof *toks * (n ? n : 1));
    size_t *lens = malloc(sizeof *lens * (n ? n : 1));
    if (!toks || !lens) {
        free(toks);
        free(lens);
        return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    }
    size_t k = 0;
    lfl_status st = LFL_OK;
    for (size_t i = 0; i < n; i++) {
        const tok_added *a = find_added(tok, ids[i]);
        const char *s;
        size_t len;
        if (a) {
            if (skip_special_tokens && a->special) continue;
            s = a->content;
            len = a->len;
        } else {
            s = tok_vocab_str(&tok->bpe.vocab, ids[i], &len);
            if (!s) {
                st = lfl_fail(LFL_ERR_ARG, "tokenizer: decode: id %d at position %zu is not in the vocabulary (size %zu)",
                              ids[i], i + 1, tok->vocab_size);
                break;
            }
        }
        toks[k] = malloc(len + 1);
        if (!toks[k]) { st = lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory"); break; }
        memcpy(toks[k], s, len);
        toks[k][len] = 0;
        lens[k] = len;
        k++;
    }
    if (st == LFL_OK && tok->decoder) st = tok_decode_tokens(tok->decoder, &toks, &lens, &k);
    tok_buf b = {0};
    if (st == LFL_OK) {
        bool ok = tok_buf_put(&b, "", 0);
        /* no decoder: HF joins the tokens with spaces */
        for (size_t i = 0; i < k && ok; i++) {
            if (!tok->decoder && i > 0) ok = tok_buf_put(&b, " ", 1);
            if (ok) ok = tok_buf_put(&b, toks[i], lens[i]);
        }
        if (!ok) st = lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < k; i++) free(toks[i]);
    free(toks);
    free(lens);
    if (st != LFL_OK) {
        tok_buf_free(&b);
        return st;
    }
    *out = b.p;
    if (out_len) *out_len = b.n;
    return LFL_OK;
}

/* ---- lookups ---- */

int32_t lfl_tokenizer_token_to_id(const lfl_tokenizer *tok, const char *s, size_t len)
{
    int32_t id = tok_vocab_get(&tok->added_vocab, s, len);
    return id >= 0 ? id : tok_vocab_get(&tok->bpe.vocab, s, len);
}

const char *lfl_tokenizer_id_to_token(const lfl_tokenizer *tok, int32_t id, size_t *len)
{
    size_t n = 0;
    const tok_added *a = find_added(tok, id);
    const char *s = a ? a->content : tok_vocab_str(&tok->bpe.vocab, id, &n);
    if (a) n = a->len;
    if (len) *len = s ? n : 0;
    return s;
}

size_t lfl_tokenizer_vocab_size(const lfl_tokenizer *tok) { return tok->vocab_size; }

bool lfl_tokenizer_is_special(const lfl_tokenizer *tok, int32_t id)
{
    const tok_added *a = find_added(tok, id);
    return a && a->special;
}

lfl_tok_special_ids lfl_tokenizer_special_ids(const lfl_tokenizer *tok) { return tok->special; }

size_t lfl_tokenizer_n_added(const lfl_tokenizer *tok) { return tok->n_added; }

void lfl_tokenizer_added(const lfl_tokenizer *tok, size_t i, const char **content, size_t *len,
                         int32_t *id, bool *special)
{
    LFL_ASSERT(i < tok->n_added);
    const tok_added *a = &tok->added[i];
    if (content) *content = a->content;
    if (len) *len = a->len;
    if (id) *id = a->id;
    if (special) *special = a->special;
}

lfl_tok_added_flags lfl_tokenizer_added_flags(const lfl_tokenizer *tok, size_t i)
{
    LFL_ASSERT(i < tok->n_added);
    const tok_added *a = &tok->added[i];
    return (lfl_tok_added_flags){a->lstrip, a->rstrip, a->normalized, a->single_word};
}

const char *lfl_tokenizer_describe(const lfl_tokenizer *tok) { return tok->desc; }

/* ---- construction ---- */

lfl_tokenizer *tok_new(const char *name)
{
    lfl_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return NULL;
    tok->name = strdup(name ? name : "tokenizer");
    tok_vocab_init(&tok->bpe.vocab);
    tok_vocab_init(&tok->added_vocab);
    tok->bpe.unk_id = -1;
    tok->special = (lfl_tok_special_ids){-1, -1, -1, -1};
    pthread_mutex_init(&tok->pool_lock, NULL);
    if (!tok->name) {
        free(tok);
        return NULL;
    }
    return tok;
}

void lfl_tokenizer_free(lfl_tokenizer *tok)
{
    if (!tok) return;
    tok_bpe_free(&tok->bpe);
    for (size_t i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].norm);
    }
    free(tok->added);
    tok_vocab_free(&tok->added_vocab);
    tok_trie_free(&tok->trie_raw);
    tok_trie_free(&tok->trie_raw_nospecial);
    tok_trie_free(&tok->trie_norm);
    tok_trie_free(&tok->trie_norm_nospecial);
    tok_norm_free(tok->normalizer);
    tok_pretok_free(tok->pretok);
    tok_post_free(tok->post);
    tok_dec_free(tok->decoder);
    while (tok->pool) {
        tok_ws *n = tok->pool->next;
        ws_free(tok->pool);
        tok->pool = n;
    }
    pthread_mutex_destroy(&tok->pool_lock);
    free(tok->name);
    free(tok);
}

static int cmp_added(const void *a, const void *b)
{
    const tok_added *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *pretok_name(const tok_pretok *p)
{
    static const char *names[] = {"Split", "ByteLevel", "Metaspace", "Digits", "Whitespace", "WhitespaceSplit",
                                  "Punctuation", "Sequence"};
    return p ? names[p->type] : "none";
}

static const char *norm_name(const tok_norm *n)
{
    static const char *names[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "Prepend", "Append",
                                  "Replace", "Sequence"};
    return n ? names[n->type] : "none";
}

lfl_status tok_finalize(lfl_tokenizer *tok)
{
    /* the model's byte-level mapping: the last ByteLevel of the pre-tokenizer
     * is applied by the model itself when nothing follows it */
    tok_pretok *last = tok->pretok;
    while (last && last->type == TOK_PT_SEQ && last->n_subs) last = last->subs[last->n_subs - 1];
    if (last && last->type == TOK_PT_BYTELEVEL) {
        last->implicit = true;
        tok->implicit_bytelevel = true;
    }
    LFL_TRY(tok_bpe_prepare(&tok->bpe));
    /* does the post-processor trim offsets (ByteLevel / Roberta)? */
    const tok_post *stack[16];
    int sp = 0;
    if (tok->post) stack[sp++] = tok->post;
    while (sp > 0) {
        const tok_post *p = stack[--sp];
        if ((p->type == TOK_POST_BYTELEVEL || p->type == TOK_POST_ROBERTA) && p->trim_offsets) tok->post_trims = true;
        for (int i = 0; i < p->n_subs && sp < 16; i++) stack[sp++] = p->subs[i];
    }
    /* SentencePiece-style text without a pre-tokenizer is one long word; it may
     * be cut before each ▁ that follows another char when no token spans such
     * a point */
    if (!tok->pretok && !tok->implicit_bytelevel && tok_vocab_get(&tok->bpe.vocab, SPM_SPACE, 3) >= 0) {
        bool spans = false;
        for (uint32_t id = 0; id < tok->bpe.vocab.n_ids && !spans; id++) {
            size_t n;
            const char *t = tok_vocab_str(&tok->bpe.vocab, (int32_t)id, &n);
            for (size_t i = 1; t && i + 3 <= n && !spans; i++)
                spans = memcmp(t + i, SPM_SPACE, 3) == 0 && !(i >= 3 && memcmp(t + i - 3, SPM_SPACE, 3) == 0);
        }
        tok->spm_split = !spans;
    }

    if (tok->n_added) qsort(tok->added, tok->n_added, sizeof *tok->added, cmp_added);
    /* one entry per id: the last one given */
    size_t k = 0;
    for (size_t i = 0; i < tok->n_added; i++) {
        if (k > 0 && tok->added[k - 1].id == tok->added[i].id) {
            free(tok->added[k - 1].content);
            tok->added[k - 1] = tok->added[i];
        } else {
            tok->added[k++] = tok->added[i];
        }
    }
    tok->n_added = k;
    tok_ws *ws = ws_new();
    if (!ws) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    lfl_status st = LFL_OK;
    /* HF matches specials first, then the other added tokens (first pattern wins ties) */
    for (int pass = 0; pass < 2 && st == LFL_OK; pass++) {
        for (size_t i = 0; i < tok->n_added && st == LFL_OK; i++) {
            tok_added *a = &tok->added[i];
            if (a->special != (pass == 0)) continue;
            if (!tok_vocab_add(&tok->added_vocab, a->content, a->len, a->id, NULL)) {
                st = lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
                break;
            }
            if (!a->normalized) {
                st = tok_trie_add(&tok->trie_raw, a->content, a->len, (int32_t)i);
                if (st == LFL_OK && !a->special) st = tok_trie_add(&tok->trie_raw_nospecial, a->content, a->len, (int32_t)i);
                continue;
            }
            tok_split in = {a->content, (uint32_t)a->len, NULL, 0, -1}, out;
            tok_arena_reset(&ws->arena);
            st = tok_normalize(tok->normalizer, ws, &in, &out);
            if (st != LFL_OK) break;
            a->norm = malloc(out.n + 1);
            if (!a->norm) { st = lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory"); break; }
            memcpy(a->norm, out.s, out.n);
            a->norm[out.n] = 0;
            a->norm_len = out.n;
            st = tok_trie_add(&tok->trie_norm, a->norm, a->norm_len, (int32_t)i);
            if (st == LFL_OK && !a->special) st = tok_trie_add(&tok->trie_norm_nospecial, a->norm, a->norm_len, (int32_t)i);
        }
    }
    ws_free(ws);
    if (st != LFL_OK) return st;

    size_t vs = tok->bpe.vocab.n_ids;
    for (size_t i = 0; i < tok->n_added; i++)
        if ((size_t)tok->added[i].id + 1 > vs) vs = (size_t)tok->added[i].id + 1;
    tok->vocab_size = vs;
    snprintf(tok->desc, sizeof tok->desc, "BPE%s, vocab %zu (%zu added), normalizer %s, pre-tokenizer %s%s",
             tok->implicit_bytelevel ? " (byte-level)" : tok->bpe.byte_fallback ? " (byte fallback)" : "",
             vs, tok->n_added, norm_name(tok->normalizer), pretok_name(tok->pretok),
             tok->post && tok->post->type == TOK_POST_TEMPLATE ? ", template post-processor" : "");
    return LFL_OK;
}

/* ---- loading ---- */

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

lfl_status lfl_tokenizer_load(const char *path, lfl_tokenizer **out)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return lfl_fail(LFL_ERR_IO, "tokenizer: %s does not exist", path);
    char buf[4096];
    const char *file = path;
    if (S_ISDIR(sb.st_mode)) {
        snprintf(buf, sizeof buf, "%s/tokenizer.json", path);
        if (stat(buf, &sb) != 0)
            return lfl_fail(LFL_ERR_IO, "tokenizer: the folder %s has no tokenizer.json", path);
        file = buf;
    }
    if (ends_with(file, ".gguf")) return lfl_tokenizer_from_gguf_file(file, out);
    /* GGUF files are recognised by their magic too */
    FILE *f = fopen(file, "rb");
    if (f) {
        char magic[4] = {0};
        size_t got = fread(magic, 1, 4, f);
        fclose(f);
        if (got == 4 && memcmp(magic, "GGUF", 4) == 0) return lfl_tokenizer_from_gguf_file(file, out);
    }
    LFL_TRY(lfl_tokenizer_from_json_file(file, out));
    /* tokenizer_config.json next to it: bos/eos/pad/unk */
    char cfg[4200];
    const char *slash = strrchr(file, '/');
    if (slash) snprintf(cfg, sizeof cfg, "%.*s/tokenizer_config.json", (int)(slash - file), file);
    else snprintf(cfg, sizeof cfg, "tokenizer_config.json");
    if (stat(cfg, &sb) == 0) {
        lfl_status st = lfl_tokenizer_load_config(*out, cfg);
        if (st != LFL_OK) {
            lfl_tokenizer_free(*out);
            *out = NULL;
            return st;
        }
    }
    return LFL_OK;
}
