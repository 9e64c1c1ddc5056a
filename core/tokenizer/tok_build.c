/* Constructors for pipeline components and model pieces, shared by the
 * tokenizer.json and GGUF loaders. */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

/* GPT-2's pre-tokenization regex (ByteLevel with use_regex) */
const char TOK_GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

tok_norm *tok_norm_new(int type)
{
    tok_norm *n = calloc(1, sizeof *n);
    if (n) {
        n->type = type;
    }
    return n;
}

tok_pretok *tok_pretok_new(int type)
{
    tok_pretok *p = calloc(1, sizeof *p);
    if (p) {
        p->type = type;
        p->behavior = TOK_SPLIT_ISOLATED;
    }
    return p;
}

tok_post *tok_post_new(int type)
{
    tok_post *p = calloc(1, sizeof *p);
    if (p) {
        p->type = type;
        p->cls_id = p->sep_id = -1;
    }
    return p;
}

tok_dec *tok_dec_new(int type)
{
    tok_dec *d = calloc(1, sizeof *d);
    if (d) {
        d->type = type;
        d->ch = -1;
    }
    return d;
}

#define ADD_SUB(T, seq, x)                                                     \
    do {                                                                       \
        T **v = realloc((seq)->subs, sizeof *v * (size_t)((seq)->n_subs + 1)); \
        if (!v) return false;                                                  \
        (seq)->subs = v;                                                       \
        v[(seq)->n_subs++] = (x);                                              \
        return true;                                                           \
    } while (0)

bool tok_norm_add_sub(tok_norm *seq, tok_norm *x) { ADD_SUB(tok_norm, seq, x); }
bool tok_pretok_add_sub(tok_pretok *seq, tok_pretok *x) { ADD_SUB(tok_pretok, seq, x); }
bool tok_post_add_sub(tok_post *seq, tok_post *x) { ADD_SUB(tok_post, seq, x); }
bool tok_dec_add_sub(tok_dec *seq, tok_dec *x) { ADD_SUB(tok_dec, seq, x); }

lfl_status tok_pretok_bytelevel(bool add_prefix_space, bool use_regex, bool trim_offsets, tok_pretok **out)
{
    tok_pretok *p = tok_pretok_new(TOK_PT_BYTELEVEL);
    if (!p) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    p->add_prefix_space = add_prefix_space;
    p->use_regex = use_regex;
    p->trim_offsets = trim_offsets;
    if (use_regex) {
        lfl_status st = tok_pattern_regex(&p->pat, TOK_GPT2_REGEX, strlen(TOK_GPT2_REGEX), "ByteLevel");
        if (st != LFL_OK) {
            tok_pretok_free(p);
            return st;
        }
    }
    *out = p;
    return LFL_OK;
}

lfl_status tok_pretok_split_regex(const char *re, size_t n, int behavior, bool invert, const char *where,
                                  tok_pretok **out)
{
    tok_pretok *p = tok_pretok_new(TOK_PT_SPLIT);
    if (!p) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    p->behavior = behavior;
    p->invert = invert;
    lfl_status st = tok_pattern_regex(&p->pat, re, n, where);
    if (st != LFL_OK) {
        tok_pretok_free(p);
        return st;
    }
    *out = p;
    return LFL_OK;
}

lfl_status tok_bpe_add_merge(tok_bpe *m, const char *a, size_t an, const char *b, size_t bn, int32_t rank,
                             const char *where)
{
    int32_t ia = tok_vocab_get(&m->vocab, a, an), ib = tok_vocab_get(&m->vocab, b, bn);
    if (ia < 0 || ib < 0)
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: merge %d ('%.*s' '%.*s'): '%.*s' is not in the vocabulary",
                        where, rank + 1, (int)an, a, (int)bn, b, ia < 0 ? (int)an : (int)bn, ia < 0 ? a : b);
    /* the merged token drops the continuing-subword prefix of the right half */
    if (m->prefix_len && bn >= m->prefix_len && memcmp(b, m->prefix, m->prefix_len) == 0) {
        b += m->prefix_len;
        bn -= m->prefix_len;
    }
    char stack[256];
    char *cat = an + bn <= sizeof stack ? stack : malloc(an + bn);
    if (!cat) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    memcpy(cat, a, an);
    memcpy(cat + an, b, bn);
    int32_t id = tok_vocab_get(&m->vocab, cat, an + bn);
    if (cat != stack) free(cat);
    if (id < 0)
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: merge %d ('%.*s' '%.*s'): the merged token is not in the vocabulary",
                        where, rank + 1, (int)an, a, (int)bn, b);
    tok_pairmap_put(&m->merges, ia, ib, rank, id);
    return LFL_OK;
}

lfl_status tok_add_added(lfl_tokenizer *tok, const char *content, size_t n, int32_t id, bool special,
                         bool normalized, bool lstrip, bool rstrip, bool single_word)
{
    if (id < 0) return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: added token '%.*s' has a negative id", tok->name, (int)n, content);
    if (n == 0) return LFL_OK; /* HF ignores empty added tokens */
    tok_added *v = realloc(tok->added, sizeof *v * (tok->n_added + 1));
    if (!v) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    tok->added = v;
    tok_added *a = &v[tok->n_added];
    memset(a, 0, sizeof *a);
    a->content = malloc(n + 1);
    if (!a->content) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    memcpy(a->content, content, n);
    a->content[n] = 0;
    a->len = n;
    a->id = id;
    a->special = special;
    a->normalized = normalized;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->single_word = single_word;
    a->seq = (uint32_t)tok->n_added; /* a later entry for the same id wins (tok_finalize) */
    tok->n_added++;
    return LFL_OK;
}
