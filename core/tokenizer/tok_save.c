/* A loaded tokenizer written back as a Hugging Face tokenizer.json: the BPE
 * model (vocab in id order, merges in rank order), added tokens, normalizer,
 * pre-tokenizer, post-processor and decoder exactly as lfl runs them. This is
 * how a GGUF vocabulary becomes a tokenizer.json that `tokenizers` and
 * transformers load (the pipeline tok_gguf.c rebuilt, its regexes as written).
 * A post-processor keeps only what lfl reads from one: the single-sequence
 * template; the pair template is derived from it (transformers' Llama rule). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

typedef struct {
    tok_buf *b;
    const lfl_tokenizer *tok;
    bool oom;
} jw;

static void raw(jw *w, const char *s, size_t n)
{
    if (!w->oom && !tok_buf_put(w->b, s, n)) w->oom = true;
}

static void lit(jw *w, const char *s) { raw(w, s, strlen(s)); }

static void num(jw *w, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", v);
    raw(w, t, (size_t)n);
}

static void boolean(jw *w, bool v) { lit(w, v ? "true" : "false"); }

/* a JSON string; false when s is not valid UTF-8 (JSON cannot hold it) */
static bool str(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    raw(w, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t sub, v = tok_utf8_valid_len((const unsigned char *)s + i, n - i, &sub);
            if (!v) return false;
            i += v;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') { i++; continue; }
        raw(w, s + run, i - run);
        char e[7] = {'\\', 0};
        size_t en = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
            en = 6;
        }
        raw(w, e, en);
        run = ++i;
    }
    raw(w, s + run, n - run);
    raw(w, "\"", 1);
    return true;
}

static lfl_status bad_text(const jw *w, const char *what, const char *s, size_t n)
{
    return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: %s '%.*s' is not valid UTF-8 and cannot be written to tokenizer.json",
                    w->tok->name, what, (int)(n > 60 ? 60 : n), s);
}

static lfl_status key_str(jw *w, const char *key, const char *s, size_t n)
{
    lit(w, "\"");
    lit(w, key);
    lit(w, "\": ");
    return str(w, s, n) ? LFL_OK : bad_text(w, key, s, n);
}

static void key_bool(jw *w, const char *key, bool v)
{
    lit(w, "\"");
    lit(w, key);
    lit(w, "\": ");
    boolean(w, v);
}

/* one code point as a JSON string */
static void cp_str(jw *w, int32_t cp)
{
    char u[4];
    int n = tok_utf8_encode(cp < 0 ? ' ' : cp, u);
    str(w, u, (size_t)n);
}

static lfl_status pattern(jw *w, const tok_pattern *p)
{
    lit(w, p->is_regex ? "{\"Regex\": " : "{\"String\": ");
    if (!str(w, p->lit ? p->lit : "", p->lit_len)) return bad_text(w, "pattern", p->lit, p->lit_len);
    lit(w, "}");
    return LFL_OK;
}

static const char *prepend_scheme(int s)
{
    return s == TOK_PREPEND_FIRST ? "first" : s == TOK_PREPEND_NEVER ? "never" : "always";
}

static const char *behavior(int b)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    return b >= 0 && b <= TOK_SPLIT_CONTIGUOUS ? names[b] : "Isolated";
}

/* ---- components ---- */

static lfl_status normalizer(jw *w, const tok_norm *n)
{
    if (!n) { lit(w, "null"); return LFL_OK; }
    static const char *const simple[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"};
    switch (n->type) {
    case TOK_NORM_NFC: case TOK_NORM_NFD: case TOK_NORM_NFKC: case TOK_NORM_NFKD: case TOK_NORM_LOWERCASE:
        lit(w, "{\"type\": \"");
        lit(w, simple[n->type]);
        lit(w, "\"}");
        return LFL_OK;
    case TOK_NORM_STRIP:
        lit(w, "{\"type\": \"Strip\", ");
        key_bool(w, "strip_left", n->left);
        lit(w, ", ");
        key_bool(w, "strip_right", n->right);
        lit(w, "}");
        return LFL_OK;
    case TOK_NORM_PREPEND: case TOK_NORM_APPEND: {
        bool pre = n->type == TOK_NORM_PREPEND;
        lit(w, pre ? "{\"type\": \"Prepend\", " : "{\"type\": \"Append\", ");
        LFL_TRY(key_str(w, pre ? "prepend" : "append", n->str, n->str_len));
        lit(w, "}");
        return LFL_OK;
    }
    case TOK_NORM_REPLACE:
        lit(w, "{\"type\": \"Replace\", \"pattern\": ");
        LFL_TRY(pattern(w, &n->pat));
        lit(w, ", ");
        LFL_TRY(key_str(w, "content", n->str, n->str_len));
        lit(w, "}");
        return LFL_OK;
    case TOK_NORM_SEQ:
        lit(w, "{\"type\": \"Sequence\", \"normalizers\": [");
        for (int i = 0; i < n->n_subs; i++) {
            if (i) lit(w, ", ");
            LFL_TRY(normalizer(w, n->subs[i]));
        }
        lit(w, "]}");
        return LFL_OK;
    }
    return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: normalizer kind %d cannot be written", w->tok->name, n->type);
}

static void bytelevel_fields(jw *w, bool add_prefix_space, bool trim_offsets, bool use_regex)
{
    key_bool(w, "add_prefix_space", add_prefix_space);
    lit(w, ", ");
    key_bool(w, "trim_offsets", trim_offsets);
    lit(w, ", ");
    key_bool(w, "use_regex", use_regex);
}

static lfl_status pretokenizer(jw *w, const tok_pretok *p)
{
    if (!p) { lit(w, "null"); return LFL_OK; }
    switch (p->type) {
    case TOK_PT_SPLIT:
        lit(w, "{\"type\": \"Split\", \"pattern\": ");
        LFL_TRY(pattern(w, &p->pat));
        lit(w, ", \"behavior\": \"");
        lit(w, behavior(p->behavior));
        lit(w, "\", ");
        key_bool(w, "invert", p->invert);
        lit(w, "}");
        return LFL_OK;
    case TOK_PT_BYTELEVEL:
        lit(w, "{\"type\": \"ByteLevel\", ");
        bytelevel_fields(w, p->add_prefix_space, p->trim_offsets, p->use_regex);
        lit(w, "}");
        return LFL_OK;
    case TOK_PT_METASPACE:
        lit(w, "{\"type\": \"Metaspace\", ");
        LFL_TRY(key_str(w, "replacement", p->repl, (size_t)p->repl_len));
        lit(w, ", \"prepend_scheme\": \"");
        lit(w, prepend_scheme(p->prepend_scheme));
        lit(w, "\", ");
        key_bool(w, "split", p->split);
        lit(w, "}");
        return LFL_OK;
    case TOK_PT_DIGITS:
        lit(w, "{\"type\": \"Digits\", ");
        key_bool(w, "individual_digits", p->individual);
        lit(w, "}");
        return LFL_OK;
    case TOK_PT_WHITESPACE:
        lit(w, "{\"type\": \"Whitespace\"}");
        return LFL_OK;
    case TOK_PT_WHITESPACE_SPLIT:
        lit(w, "{\"type\": \"WhitespaceSplit\"}");
        return LFL_OK;
    case TOK_PT_PUNCT:
        lit(w, "{\"type\": \"Punctuation\", \"behavior\": \"");
        lit(w, behavior(p->behavior));
        lit(w, "\"}");
        return LFL_OK;
    case TOK_PT_SEQ:
        lit(w, "{\"type\": \"Sequence\", \"pretokenizers\": [");
        for (int i = 0; i < p->n_subs; i++) {
            if (i) lit(w, ", ");
            LFL_TRY(pretokenizer(w, p->subs[i]));
        }
        lit(w, "]}");
        return LFL_OK;
    }
    return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: pre-tokenizer kind %d cannot be written", w->tok->name, p->type);
}

/* the name a template uses for a special token: its string when it is one
 * token, else the strings joined */
static lfl_status special_name(jw *w, const tok_tpl_item *it, tok_buf *name)
{
    name->n = 0;
    for (int k = 0; k < it->n_ids; k++) {
        size_t n;
        const char *s = lfl_tokenizer_id_to_token(w->tok, it->ids[k], &n);
        if (!s) return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: the post-processor adds id %d, which has no token",
                                w->tok->name, it->ids[k]);
        if (!tok_buf_put(name, s, n)) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    }
    return LFL_OK;
}

static lfl_status template_items(jw *w, const tok_post *p, bool pair, tok_buf *name)
{
    bool first = true;
    for (int pass = 0; pass < (pair ? 2 : 1); pass++) {
        for (int i = 0; i < p->n_items; i++) {
            const tok_tpl_item *it = &p->items[i];
            if (!first) lit(w, ", ");
            first = false;
            if (it->is_seq) {
                lit(w, pass ? "{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}" : "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}");
                continue;
            }
            LFL_TRY(special_name(w, it, name));
            lit(w, "{\"SpecialToken\": {");
            LFL_TRY(key_str(w, "id", name->p, name->n));
            lit(w, pass ? ", \"type_id\": 1}}" : ", \"type_id\": 0}}");
        }
    }
    return LFL_OK;
}

static lfl_status post_template(jw *w, const tok_post *p)
{
    tok_buf name = {0};
    lfl_status st = LFL_OK;
    lit(w, "{\"type\": \"TemplateProcessing\", \"single\": [");
    st = template_items(w, p, false, &name);
    if (st == LFL_OK) {
        lit(w, "], \"pair\": [");
        st = template_items(w, p, true, &name);
    }
    if (st == LFL_OK) lit(w, "], \"special_tokens\": {");
    bool any = false;
    for (int i = 0; i < p->n_items && st == LFL_OK; i++) {
        const tok_tpl_item *it = &p->items[i];
        if (it->is_seq) continue;
        bool dup = false; /* one entry per name */
        for (int j = 0; j < i && !dup; j++)
            dup = !p->items[j].is_seq && p->items[j].n_ids == it->n_ids &&
                  memcmp(p->items[j].ids, it->ids, sizeof *it->ids * (size_t)it->n_ids) == 0;
        if (dup) continue;
        st = special_name(w, it, &name);
        if (st != LFL_OK) break;
        if (any) lit(w, ", ");
        any = true;
        if (!str(w, name.p, name.n)) { st = bad_text(w, "special token", name.p, name.n); break; }
        lit(w, ": {");
        st = key_str(w, "id", name.p, name.n);
        lit(w, ", \"ids\": [");
        for (int k = 0; k < it->n_ids; k++) {
            if (k) lit(w, ", ");
            num(w, it->ids[k]);
        }
        lit(w, "], \"tokens\": [");
        for (int k = 0; k < it->n_ids && st == LFL_OK; k++) {
            size_t n;
            const char *s = lfl_tokenizer_id_to_token(w->tok, it->ids[k], &n);
            if (k) lit(w, ", ");
            if (!str(w, s, n)) st = bad_text(w, "special token", s, n);
        }
        lit(w, "]}");
    }
    lit(w, "}}");
    tok_buf_free(&name);
    return st;
}

static lfl_status pair_id(jw *w, const char *key, int32_t id)
{
    size_t n;
    const char *s = lfl_tokenizer_id_to_token(w->tok, id, &n);
    if (!s) return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: the post-processor's %s id %d has no token", w->tok->name, key, id);
    lit(w, "\"");
    lit(w, key);
    lit(w, "\": [");
    if (!str(w, s, n)) return bad_text(w, key, s, n);
    lit(w, ", ");
    num(w, id);
    lit(w, "]");
    return LFL_OK;
}

static lfl_status post_processor(jw *w, const tok_post *p)
{
    if (!p) { lit(w, "null"); return LFL_OK; }
    switch (p->type) {
    case TOK_POST_TEMPLATE:
        return post_template(w, p);
    case TOK_POST_BYTELEVEL:
        lit(w, "{\"type\": \"ByteLevel\", ");
        bytelevel_fields(w, p->add_prefix_space, p->trim_offsets, true);
        lit(w, "}");
        return LFL_OK;
    case TOK_POST_BERT: case TOK_POST_ROBERTA:
        lit(w, p->type == TOK_POST_BERT ? "{\"type\": \"BertProcessing\", " : "{\"type\": \"RobertaProcessing\", ");
        LFL_TRY(pair_id(w, "sep", p->sep_id));
        lit(w, ", ");
        LFL_TRY(pair_id(w, "cls", p->cls_id));
        if (p->type == TOK_POST_ROBERTA) {
            lit(w, ", ");
            key_bool(w, "trim_offsets", p->trim_offsets);
            lit(w, ", ");
            key_bool(w, "add_prefix_space", p->add_prefix_space);
        }
        lit(w, "}");
        return LFL_OK;
    case TOK_POST_SEQ:
        lit(w, "{\"type\": \"Sequence\", \"processors\": [");
        for (int i = 0; i < p->n_subs; i++) {
            if (i) lit(w, ", ");
            LFL_TRY(post_processor(w, p->subs[i]));
        }
        lit(w, "]}");
        return LFL_OK;
    }
    return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: post-processor kind %d cannot be written", w->tok->name, p->type);
}

static lfl_status decoder(jw *w, const tok_dec *d)
{
    if (!d) { lit(w, "null"); return LFL_OK; }
    switch (d->type) {
    case TOK_DEC_BYTELEVEL:
        lit(w, "{\"type\": \"ByteLevel\", ");
        bytelevel_fields(w, true, true, true);
        lit(w, "}");
        return LFL_OK;
    case TOK_DEC_METASPACE:
        lit(w, "{\"type\": \"Metaspace\", \"replacement\": ");
        cp_str(w, d->ch);
        lit(w, ", \"prepend_scheme\": \"");
        lit(w, prepend_scheme(d->prepend_scheme));
        lit(w, "\", \"split\": true}");
        return LFL_OK;
    case TOK_DEC_REPLACE:
        lit(w, "{\"type\": \"Replace\", \"pattern\": ");
        LFL_TRY(pattern(w, &d->pat));
        lit(w, ", ");
        LFL_TRY(key_str(w, "content", d->str, d->str_len));
        lit(w, "}");
        return LFL_OK;
    case TOK_DEC_BYTEFALLBACK:
        lit(w, "{\"type\": \"ByteFallback\"}");
        return LFL_OK;
    case TOK_DEC_FUSE:
        lit(w, "{\"type\": \"Fuse\"}");
        return LFL_OK;
    case TOK_DEC_STRIP:
        lit(w, "{\"type\": \"Strip\", \"content\": ");
        cp_str(w, d->ch);
        lit(w, ", \"start\": ");
        num(w, d->start);
        lit(w, ", \"stop\": ");
        num(w, d->stop);
        lit(w, "}");
        return LFL_OK;
    case TOK_DEC_BPE:
        lit(w, "{\"type\": \"BPEDecoder\", ");
        LFL_TRY(key_str(w, "suffix", d->str, d->str_len));
        lit(w, "}");
        return LFL_OK;
    case TOK_DEC_SEQ:
        lit(w, "{\"type\": \"Sequence\", \"decoders\": [");
        for (int i = 0; i < d->n_subs; i++) {
            if (i) lit(w, ", ");
            LFL_TRY(decoder(w, d->subs[i]));
        }
        lit(w, "]}");
        return LFL_OK;
    }
    return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: decoder kind %d cannot be written", w->tok->name, d->type);
}

/* ---- the BPE model ---- */

static int cmp_rank(const void *a, const void *b)
{
    const tok_pair_slot *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static lfl_status opt_str(jw *w, const char *key, const char *s, size_t n)
{
    if (!s || n == 0) {
        lit(w, "\"");
        lit(w, key);
        lit(w, "\": null");
        return LFL_OK;
    }
    return key_str(w, key, s, n);
}

static lfl_status model(jw *w)
{
    const tok_bpe *m = &w->tok->bpe;
    const tok_vocab *v = &m->vocab;
    lit(w, "{\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    ");
    size_t un = 0;
    const char *unk = tok_vocab_str(v, m->unk_id, &un);
    LFL_TRY(opt_str(w, "unk_token", unk, un));
    lit(w, ",\n    ");
    LFL_TRY(opt_str(w, "continuing_subword_prefix", m->prefix, m->prefix_len));
    lit(w, ",\n    ");
    LFL_TRY(opt_str(w, "end_of_word_suffix", m->suffix, m->suffix_len));
    lit(w, ",\n    ");
    key_bool(w, "fuse_unk", m->fuse_unk);
    lit(w, ",\n    ");
    key_bool(w, "byte_fallback", m->byte_fallback);
    lit(w, ",\n    ");
    key_bool(w, "ignore_merges", m->ignore_merges);
    lit(w, ",\n    \"vocab\": {");
    bool first = true;
    for (uint32_t id = 0; id < v->n_ids; id++) {
        size_t n;
        const char *s = tok_vocab_str(v, (int32_t)id, &n);
        /* a string given twice keeps its first id (the loaders' rule) */
        if (!s || tok_vocab_get(v, s, n) != (int32_t)id) continue;
        lit(w, first ? "\n      " : ",\n      ");
        first = false;
        if (!str(w, s, n)) return bad_text(w, "token", s, n);
        lit(w, ": ");
        num(w, id);
    }
    lit(w, "\n    },\n    \"merges\": [");
    size_t cnt = 0;
    tok_pair_slot *all = malloc(sizeof *all * (m->merges.count ? m->merges.count : 1));
    if (!all) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    for (uint64_t i = 0; m->merges.slots && i <= m->merges.mask; i++)
        if (m->merges.slots[i].key != UINT64_MAX) all[cnt++] = m->merges.slots[i];
    qsort(all, cnt, sizeof *all, cmp_rank);
    /* "a b" strings unless a half holds a space, then ["a", "b"] pairs */
    bool pairs = false;
    for (size_t i = 0; i < cnt && !pairs; i++) {
        size_t an, bn;
        const char *a = tok_vocab_str(v, (int32_t)(all[i].key >> 32), &an);
        const char *b = tok_vocab_str(v, (int32_t)(all[i].key & 0xffffffffu), &bn);
        pairs = (a && memchr(a, ' ', an)) || (b && memchr(b, ' ', bn));
    }
    lfl_status st = LFL_OK;
    tok_buf joined = {0};
    for (size_t i = 0; i < cnt && st == LFL_OK; i++) {
        size_t an = 0, bn = 0;
        const char *a = tok_vocab_str(v, (int32_t)(all[i].key >> 32), &an);
        const char *b = tok_vocab_str(v, (int32_t)(all[i].key & 0xffffffffu), &bn);
        lit(w, i ? ",\n      " : "\n      ");
        if (pairs) {
            lit(w, "[");
            if (!str(w, a, an)) { st = bad_text(w, "merge", a, an); break; }
            lit(w, ", ");
            if (!str(w, b, bn)) { st = bad_text(w, "merge", b, bn); break; }
            lit(w, "]");
        } else {
            joined.n = 0;
            if (!tok_buf_put(&joined, a, an) || !tok_buf_put(&joined, " ", 1) || !tok_buf_put(&joined, b, bn)) {
                st = lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
                break;
            }
            if (!str(w, joined.p, joined.n)) st = bad_text(w, "merge", joined.p, joined.n);
        }
    }
    tok_buf_free(&joined);
    free(all);
    LFL_TRY(st);
    lit(w, cnt ? "\n    ]\n  }" : "]\n  }");
    return LFL_OK;
}

lfl_status tok_to_json(const lfl_tokenizer *tok, tok_buf *out)
{
    jw w = {out, tok, false};
    lit(&w, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    for (size_t i = 0; i < tok->n_added; i++) {
        const tok_added *a = &tok->added[i];
        lit(&w, i ? ",\n    {\"id\": " : "\n    {\"id\": ");
        num(&w, a->id);
        lit(&w, ", ");
        LFL_TRY(key_str(&w, "content", a->content, a->len));
        lit(&w, ", ");
        key_bool(&w, "single_word", a->single_word);
        lit(&w, ", ");
        key_bool(&w, "lstrip", a->lstrip);
        lit(&w, ", ");
        key_bool(&w, "rstrip", a->rstrip);
        lit(&w, ", ");
        key_bool(&w, "normalized", a->normalized);
        lit(&w, ", ");
        key_bool(&w, "special", a->special);
        lit(&w, "}");
    }
    lit(&w, tok->n_added ? "\n  ],\n  \"normalizer\": " : "],\n  \"normalizer\": ");
    LFL_TRY(normalizer(&w, tok->normalizer));
    lit(&w, ",\n  \"pre_tokenizer\": ");
    LFL_TRY(pretokenizer(&w, tok->pretok));
    lit(&w, ",\n  \"post_processor\": ");
    LFL_TRY(post_processor(&w, tok->post));
    lit(&w, ",\n  \"decoder\": ");
    LFL_TRY(decoder(&w, tok->decoder));
    lit(&w, ",\n  \"model\": ");
    LFL_TRY(model(&w));
    lit(&w, "\n}\n");
    if (w.oom) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while writing tokenizer.json");
    return LFL_OK;
}

lfl_status lfl_tokenizer_to_json(const lfl_tokenizer *tok, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    tok_buf b = {0};
    lfl_status st = tok_to_json(tok, &b);
    if (st != LFL_OK) {
        tok_buf_free(&b);
        return st;
    }
    *out = b.p;
    *len = b.n;
    return LFL_OK;
}
