/* Loading a Hugging Face tokenizer.json (cJSON) into the pipeline, and the
 * special-token names of a tokenizer_config.json. Unsupported component
 * types fail with an error naming the file, the component and the type. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

typedef struct {
    const char *file;
    lfl_tokenizer *tok;
} ctx;

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while loading"); }

/* cJSON strings end at their first NUL, so "\u0000" inside a token would cut
 * it short. Such escapes are rewritten to U+10FFFF (a noncharacter no real
 * vocabulary uses) before parsing, and mapped back to NUL in every string
 * taken from the document (nul_text). */
#define NUL_STANDIN "\xF4\x8F\xBF\xBF"

static char *protect_nul(const char *json, size_t len, size_t *out_len)
{
    if (!memmem(json, len, "\\u0000", 6)) return NULL;
    char *out = malloc(len * 2 + 1);
    if (!out) return NULL;
    size_t o = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str && c == '\\' && i + 1 < len) {
            if (i + 5 < len && memcmp(json + i, "\\u0000", 6) == 0) {
                memcpy(out + o, "\\udbff\\udfff", 12);
                o += 12;
                i += 5;
            } else {
                out[o++] = c;
                out[o++] = json[++i];
            }
            continue;
        }
        if (c == '"') in_str = !in_str;
        out[o++] = c;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* s with the stand-in turned back into NUL bytes: into buf when needed */
static const char *nul_text(const char *s, size_t *n, tok_buf *buf)
{
    *n = strlen(s);
    if (!strstr(s, NUL_STANDIN)) return s;
    buf->n = 0;
    for (const char *p = s; *p;) {
        if (strncmp(p, NUL_STANDIN, 4) == 0) { /* (memcmp read past the end of a short tail) */
            if (!tok_buf_put(buf, "", 1)) return NULL;
            p += 4;
        } else {
            if (!tok_buf_put(buf, p, 1)) return NULL;
            p++;
        }
    }
    *n = buf->n;
    return buf->p;
}

static const cJSON *field(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = field(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool bool_field(const cJSON *o, const char *k, bool def)
{
    const cJSON *v = field(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return def;
}

static int int_field(const cJSON *o, const char *k, int def)
{
    const cJSON *v = field(o, k);
    return cJSON_IsNumber(v) ? v->valueint : def;
}

static lfl_status bad(const ctx *c, const char *what, const char *detail)
{
    return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: %s: %s", c->file, what, detail);
}

static lfl_status unsupported(const ctx *c, const char *what, const char *type)
{
    return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: %s type '%s' is not supported", c->file, what, type ? type : "?");
}

/* {"String": s} or {"Regex": r} */
static lfl_status parse_pattern(const ctx *c, const cJSON *o, const char *what, tok_pattern *p)
{
    const char *s = str_field(o, "String");
    if (s) return tok_pattern_literal(p, s, strlen(s));
    const char *r = str_field(o, "Regex");
    if (r) {
        char where[300];
        snprintf(where, sizeof where, "%s: %s", c->file, what);
        return tok_pattern_regex(p, r, strlen(r), where);
    }
    return bad(c, what, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

static int32_t decode_char(const char *s)
{
    if (!s || !*s) return -1;
    int32_t cp;
    tok_utf8_decode((const unsigned char *)s, strlen(s), &cp);
    return cp;
}

static int parse_prepend_scheme(const cJSON *o)
{
    const char *s = str_field(o, "prepend_scheme");
    if (s) {
        if (strcmp(s, "first") == 0) return TOK_PREPEND_FIRST;
        if (strcmp(s, "never") == 0) return TOK_PREPEND_NEVER;
        return TOK_PREPEND_ALWAYS;
    }
    return bool_field(o, "add_prefix_space", true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
}

/* ---- normalizers ---- */

static lfl_status parse_normalizer(const ctx *c, const cJSON *o, tok_norm **out)
{
    *out = NULL;
    if (!o || cJSON_IsNull(o)) return LFL_OK;
    const char *type = str_field(o, "type");
    if (!type) return bad(c, "normalizer", "missing \"type\"");
    static const struct { const char *name; int type; } simple[] = {
        {"NFC", TOK_NORM_NFC}, {"NFD", TOK_NORM_NFD}, {"NFKC", TOK_NORM_NFKC}, {"NFKD", TOK_NORM_NFKD},
        {"Lowercase", TOK_NORM_LOWERCASE},
    };
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++)
        if (strcmp(type, simple[i].name) == 0) {
            *out = tok_norm_new(simple[i].type);
            return *out ? LFL_OK : oom();
        }
    tok_norm *n = NULL;
    lfl_status st = LFL_OK;
    if (strcmp(type, "Sequence") == 0) {
        n = tok_norm_new(TOK_NORM_SEQ);
        if (!n) return oom();
        const cJSON *arr = field(o, "normalizers"), *it;
        cJSON_ArrayForEach(it, arr) {
            tok_norm *sub;
            st = parse_normalizer(c, it, &sub);
            if (st != LFL_OK) break;
            if (sub && !tok_norm_add_sub(n, sub)) { tok_norm_free(sub); st = oom(); break; }
        }
    } else if (strcmp(type, "Prepend") == 0 || strcmp(type, "Append") == 0) {
        bool pre = type[0] == 'P';
        const char *s = str_field(o, pre ? "prepend" : "append");
        if (!s) return bad(c, type, pre ? "missing \"prepend\"" : "missing \"append\"");
        n = tok_norm_new(pre ? TOK_NORM_PREPEND : TOK_NORM_APPEND);
        if (!n || !(n->str = strdup(s))) st = oom();
        else n->str_len = strlen(s);
    } else if (strcmp(type, "Replace") == 0) {
        const char *content = str_field(o, "content");
        if (!content) return bad(c, "Replace normalizer", "missing \"content\"");
        n = tok_norm_new(TOK_NORM_REPLACE);
        if (!n || !(n->str = strdup(content))) st = oom();
        else {
            n->str_len = strlen(content);
            st = parse_pattern(c, field(o, "pattern"), "Replace normalizer", &n->pat);
        }
    } else if (strcmp(type, "Strip") == 0) {
        n = tok_norm_new(TOK_NORM_STRIP);
        if (!n) return oom();
        n->left = bool_field(o, "strip_left", true);
        n->right = bool_field(o, "strip_right", true);
    } else {
        return unsupported(c, "normalizer", type);
    }
    if (st != LFL_OK) {
        tok_norm_free(n);
        return st;
    }
    *out = n;
    return LFL_OK;
}

/* ---- pre-tokenizers ---- */

static int parse_behavior(const cJSON *o, int def)
{
    const char *b = str_field(o, "behavior");
    if (!b) return def;
    if (strcmp(b, "Removed") == 0) return TOK_SPLIT_REMOVED;
    if (strcmp(b, "Isolated") == 0) return TOK_SPLIT_ISOLATED;
    if (strcmp(b, "MergedWithPrevious") == 0) return TOK_SPLIT_MERGED_PREV;
    if (strcmp(b, "MergedWithNext") == 0) return TOK_SPLIT_MERGED_NEXT;
    if (strcmp(b, "Contiguous") == 0) return TOK_SPLIT_CONTIGUOUS;
    return -1;
}

static lfl_status parse_pretok(const ctx *c, const cJSON *o, tok_pretok **out)
{
    *out = NULL;
    if (!o || cJSON_IsNull(o)) return LFL_OK;
    const char *type = str_field(o, "type");
    if (!type) return bad(c, "pre_tokenizer", "missing \"type\"");
    tok_pretok *p = NULL;
    lfl_status st = LFL_OK;
    if (strcmp(type, "Sequence") == 0) {
        p = tok_pretok_new(TOK_PT_SEQ);
        if (!p) return oom();
        const cJSON *arr = field(o, "pretokenizers"), *it;
        cJSON_ArrayForEach(it, arr) {
            tok_pretok *sub;
            st = parse_pretok(c, it, &sub);
            if (st != LFL_OK) break;
            if (sub && !tok_pretok_add_sub(p, sub)) { tok_pretok_free(sub); st = oom(); break; }
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        return tok_pretok_bytelevel(bool_field(o, "add_prefix_space", true), bool_field(o, "use_regex", true),
                                    bool_field(o, "trim_offsets", true), out);
    } else if (strcmp(type, "Split") == 0) {
        p = tok_pretok_new(TOK_PT_SPLIT);
        if (!p) return oom();
        p->behavior = parse_behavior(o, -1);
        p->invert = bool_field(o, "invert", false);
        if (p->behavior < 0) st = bad(c, "Split pre-tokenizer", "unknown or missing \"behavior\"");
        else st = parse_pattern(c, field(o, "pattern"), "Split pre-tokenizer", &p->pat);
    } else if (strcmp(type, "Metaspace") == 0) {
        p = tok_pretok_new(TOK_PT_METASPACE);
        if (!p) return oom();
        const char *r = str_field(o, "replacement");
        if (!r) r = "\xe2\x96\x81";
        p->repl_len = (int)strlen(r);
        if (p->repl_len == 0 || p->repl_len > 4) st = bad(c, "Metaspace", "\"replacement\" must be one character");
        else {
            memcpy(p->repl, r, (size_t)p->repl_len);
            p->repl_cp = decode_char(r);
            p->prepend_scheme = parse_prepend_scheme(o);
            p->split = bool_field(o, "split", true);
            st = tok_pattern_literal(&p->pat, p->repl, (size_t)p->repl_len);
        }
    } else if (strcmp(type, "Digits") == 0) {
        p = tok_pretok_new(TOK_PT_DIGITS);
        if (!p) return oom();
        p->individual = bool_field(o, "individual_digits", false);
    } else if (strcmp(type, "Punctuation") == 0) {
        p = tok_pretok_new(TOK_PT_PUNCT);
        if (!p) return oom();
        p->behavior = parse_behavior(o, TOK_SPLIT_ISOLATED);
        if (p->behavior < 0) st = bad(c, "Punctuation pre-tokenizer", "unknown \"behavior\"");
    } else if (strcmp(type, "Whitespace") == 0) {
        p = tok_pretok_new(TOK_PT_WHITESPACE);
        if (!p) return oom();
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        p = tok_pretok_new(TOK_PT_WHITESPACE_SPLIT);
        if (!p) return oom();
    } else {
        return unsupported(c, "pre_tokenizer", type);
    }
    if (st != LFL_OK) {
        tok_pretok_free(p);
        return st;
    }
    *out = p;
    return LFL_OK;
}

/* ---- post-processors ---- */

/* ["[SEP]", 102] */
static lfl_status parse_pair_id(const ctx *c, const cJSON *o, const char *what, int32_t *id)
{
    const cJSON *v = cJSON_GetArrayItem(o, 1);
    if (!cJSON_IsArray(o) || !cJSON_IsNumber(v)) return bad(c, what, "expected [token, id]");
    *id = (int32_t)v->valuedouble;
    return LFL_OK;
}

static lfl_status parse_post(const ctx *c, const cJSON *o, tok_post **out)
{
    *out = NULL;
    if (!o || cJSON_IsNull(o)) return LFL_OK;
    const char *type = str_field(o, "type");
    if (!type) return bad(c, "post_processor", "missing \"type\"");
    tok_post *p = NULL;
    lfl_status st = LFL_OK;
    if (strcmp(type, "Sequence") == 0) {
        p = tok_post_new(TOK_POST_SEQ);
        if (!p) return oom();
        const cJSON *arr = field(o, "processors"), *it;
        cJSON_ArrayForEach(it, arr) {
            tok_post *sub;
            st = parse_post(c, it, &sub);
            if (st != LFL_OK) break;
            if (sub && !tok_post_add_sub(p, sub)) { tok_post_free(sub); st = oom(); break; }
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        p = tok_post_new(TOK_POST_BYTELEVEL);
        if (!p) return oom();
        p->trim_offsets = bool_field(o, "trim_offsets", true);
        p->add_prefix_space = bool_field(o, "add_prefix_space", true);
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        p = tok_post_new(TOK_POST_TEMPLATE);
        if (!p) return oom();
        const cJSON *single = field(o, "single"), *specials = field(o, "special_tokens"), *it;
        int n = cJSON_GetArraySize(single);
        p->items = calloc((size_t)(n ? n : 1), sizeof *p->items);
        if (!p->items) { tok_post_free(p); return oom(); }
        cJSON_ArrayForEach(it, single) {
            tok_tpl_item *item = &p->items[p->n_items++];
            const cJSON *sp = field(it, "SpecialToken");
            if (field(it, "Sequence")) { item->is_seq = true; continue; }
            const char *name = str_field(sp, "id");
            if (!name) { st = bad(c, "TemplateProcessing", "item is neither Sequence nor SpecialToken"); break; }
            const cJSON *ids = field(field(specials, name), "ids");
            if (!cJSON_IsArray(ids)) { st = bad(c, "TemplateProcessing", "special token without ids"); break; }
            int k = cJSON_GetArraySize(ids);
            item->ids = malloc(sizeof *item->ids * (size_t)(k ? k : 1));
            if (!item->ids) { st = oom(); break; }
            const cJSON *idv;
            cJSON_ArrayForEach(idv, ids) item->ids[item->n_ids++] = (int32_t)idv->valuedouble;
        }
    } else if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        bool roberta = type[0] == 'R';
        p = tok_post_new(roberta ? TOK_POST_ROBERTA : TOK_POST_BERT);
        if (!p) return oom();
        st = parse_pair_id(c, field(o, "cls"), "cls", &p->cls_id);
        if (st == LFL_OK) st = parse_pair_id(c, field(o, "sep"), "sep", &p->sep_id);
        p->trim_offsets = bool_field(o, "trim_offsets", true);
        p->add_prefix_space = bool_field(o, "add_prefix_space", true);
    } else {
        return unsupported(c, "post_processor", type);
    }
    if (st != LFL_OK) {
        tok_post_free(p);
        return st;
    }
    *out = p;
    return LFL_OK;
}

/* ---- decoders ---- */

static lfl_status parse_decoder(const ctx *c, const cJSON *o, tok_dec **out)
{
    *out = NULL;
    if (!o || cJSON_IsNull(o)) return LFL_OK;
    const char *type = str_field(o, "type");
    if (!type) return bad(c, "decoder", "missing \"type\"");
    tok_dec *d = NULL;
    lfl_status st = LFL_OK;
    if (strcmp(type, "Sequence") == 0) {
        d = tok_dec_new(TOK_DEC_SEQ);
        if (!d) return oom();
        const cJSON *arr = field(o, "decoders"), *it;
        cJSON_ArrayForEach(it, arr) {
            tok_dec *sub;
            st = parse_decoder(c, it, &sub);
            if (st != LFL_OK) break;
            if (sub && !tok_dec_add_sub(d, sub)) { tok_dec_free(sub); st = oom(); break; }
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        d = tok_dec_new(TOK_DEC_BYTELEVEL);
        if (!d) return oom();
    } else if (strcmp(type, "ByteFallback") == 0) {
        d = tok_dec_new(TOK_DEC_BYTEFALLBACK);
        if (!d) return oom();
    } else if (strcmp(type, "Fuse") == 0) {
        d = tok_dec_new(TOK_DEC_FUSE);
        if (!d) return oom();
    } else if (strcmp(type, "Metaspace") == 0) {
        d = tok_dec_new(TOK_DEC_METASPACE);
        if (!d) return oom();
        const char *r = str_field(o, "replacement");
        d->ch = decode_char(r ? r : "\xe2\x96\x81");
        d->prepend_scheme = parse_prepend_scheme(o);
    } else if (strcmp(type, "Replace") == 0) {
        const char *content = str_field(o, "content");
        if (!content) return bad(c, "Replace decoder", "missing \"content\"");
        d = tok_dec_new(TOK_DEC_REPLACE);
        if (!d || !(d->str = strdup(content))) st = oom();
        else {
            d->str_len = strlen(content);
            st = parse_pattern(c, field(o, "pattern"), "Replace decoder", &d->pat);
        }
    } else if (strcmp(type, "Strip") == 0) {
        d = tok_dec_new(TOK_DEC_STRIP);
        if (!d) return oom();
        d->ch = decode_char(str_field(o, "content"));
        d->start = int_field(o, "start", 0);
        d->stop = int_field(o, "stop", 0);
    } else if (strcmp(type, "BPEDecoder") == 0) {
        const char *suffix = str_field(o, "suffix");
        d = tok_dec_new(TOK_DEC_BPE);
        if (!d || !(d->str = strdup(suffix ? suffix : "</w>"))) st = oom();
        else d->str_len = strlen(d->str);
    } else {
        return unsupported(c, "decoder", type);
    }
    if (st != LFL_OK) {
        tok_dec_free(d);
        return st;
    }
    *out = d;
    return LFL_OK;
}

/* ---- model ---- */

static lfl_status parse_model(const ctx *c, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return bad(c, "model", "missing");
    const char *type = str_field(o, "type");
    if (type && strcmp(type, "BPE") != 0) return unsupported(c, "model", type);
    if (!type && !field(o, "merges")) return unsupported(c, "model", "(untyped, without merges)");
    tok_bpe *m = &c->tok->bpe;
    if (field(o, "dropout") && cJSON_IsNumber(field(o, "dropout")) && field(o, "dropout")->valuedouble > 0)
        return unsupported(c, "BPE dropout", "dropout > 0");
    m->fuse_unk = bool_field(o, "fuse_unk", false);
    m->byte_fallback = bool_field(o, "byte_fallback", false);
    m->ignore_merges = bool_field(o, "ignore_merges", false);
    const char *pre = str_field(o, "continuing_subword_prefix"), *suf = str_field(o, "end_of_word_suffix");
    m->prefix = strdup(pre ? pre : "");
    m->suffix = strdup(suf ? suf : "");
    if (!m->prefix || !m->suffix) return oom();
    m->prefix_len = strlen(m->prefix);
    m->suffix_len = strlen(m->suffix);

    const cJSON *vocab = field(o, "vocab"), *it;
    if (!cJSON_IsObject(vocab)) return bad(c, "model.vocab", "expected an object {token: id}");
    tok_buf nb = {0};
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 0x7fffffff) {
            tok_buf_free(&nb);
            return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: model.vocab: '%s' has no valid id", c->file, it->string);
        }
        size_t kn;
        const char *k = nul_text(it->string, &kn, &nb);
        if (!k || !tok_vocab_add(&m->vocab, k, kn, (int32_t)it->valuedouble, NULL)) {
            tok_buf_free(&nb);
            return oom();
        }
    }
    const char *unk = str_field(o, "unk_token");
    if (unk) {
        m->unk_id = tok_vocab_get(&m->vocab, unk, strlen(unk));
        if (m->unk_id < 0) {
            tok_buf_free(&nb);
            return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: unk_token '%s' is not in the vocabulary", c->file, unk);
        }
    }
    const cJSON *merges = field(o, "merges");
    int n = cJSON_GetArraySize(merges);
    if (!tok_pairmap_init(&m->merges, (size_t)n)) { tok_buf_free(&nb); return oom(); }
    tok_buf nb2 = {0};
    lfl_status st = LFL_OK;
    int32_t rank = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t an, bn;
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                st = lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: merge %d '%s' is not two tokens separated by one space",
                              c->file, rank + 1, s);
                break;
            }
            a = s;
            an = (size_t)(sp - s);
            b = sp + 1;
            bn = strlen(b);
            if (strstr(s, NUL_STANDIN)) {
                /* rare: split after restoring NULs */
                size_t tn;
                const char *t = nul_text(s, &tn, &nb);
                const char *tsp = t ? memchr(t, ' ', tn) : NULL;
                if (!tsp) { st = oom(); break; }
                a = t;
                an = (size_t)(tsp - t);
                b = tsp + 1;
                bn = tn - an - 1;
            }
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = nul_text(cJSON_GetArrayItem(it, 0)->valuestring, &an, &nb);
            b = nul_text(cJSON_GetArrayItem(it, 1)->valuestring, &bn, &nb2);
            if (!a || !b) { st = oom(); break; }
        } else {
            st = lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", c->file, rank + 1);
            break;
        }
        st = tok_bpe_add_merge(m, a, an, b, bn, rank, c->file);
        if (st != LFL_OK) break;
        rank++;
    }
    tok_buf_free(&nb);
    tok_buf_free(&nb2);
    return st;
}

/* ---- top level ---- */

static void infer_special_ids(lfl_tokenizer *tok)
{
    const tok_post *p = tok->post;
    while (p && p->type == TOK_POST_SEQ) {
        const tok_post *found = NULL;
        for (int i = 0; i < p->n_subs && !found; i++)
            if (p->subs[i]->type != TOK_POST_BYTELEVEL) found = p->subs[i];
        p = found;
    }
    if (!p) return;
    if (p->type == TOK_POST_TEMPLATE) {
        bool seen = false;
        for (int i = 0; i < p->n_items; i++) {
            if (p->items[i].is_seq) { seen = true; continue; }
            if (p->items[i].n_ids < 1) continue;
            if (!seen && tok->special.bos < 0) tok->special.bos = p->items[i].ids[0];
            if (seen && tok->special.eos < 0) tok->special.eos = p->items[i].ids[0];
        }
    } else if (p->type == TOK_POST_BERT || p->type == TOK_POST_ROBERTA) {
        tok->special.bos = p->cls_id;
        tok->special.eos = p->sep_id;
    }
}

lfl_status lfl_tokenizer_from_json(const char *json, size_t len, const char *name, lfl_tokenizer **out)
{
    *out = NULL;
    size_t plen;
    char *prot = protect_nul(json, len, &plen);
    cJSON *root = prot ? cJSON_ParseWithLength(prot, plen) : cJSON_ParseWithLength(json, len);
    free(prot);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: invalid JSON near byte %zu", name, off);
    }
    lfl_tokenizer *tok = tok_new(name);
    if (!tok) {
        cJSON_Delete(root);
        return oom();
    }
    ctx c = {tok->name, tok};
    lfl_status st = LFL_OK;
    if (!cJSON_IsObject(root)) st = bad(&c, "top level", "expected an object");
    if (st == LFL_OK) st = parse_model(&c, field(root, "model"));
    if (st == LFL_OK) {
        const cJSON *it;
        cJSON_ArrayForEach(it, field(root, "added_tokens")) {
            const char *content = str_field(it, "content");
            const cJSON *id = field(it, "id");
            if (!content || !cJSON_IsNumber(id)) {
                st = bad(&c, "added_tokens", "entry without \"content\" or \"id\"");
                break;
            }
            bool special = bool_field(it, "special", false);
            size_t cn;
            tok_buf cb = {0};
            const char *cs = nul_text(content, &cn, &cb);
            st = cs ? tok_add_added(tok, cs, cn, (int32_t)id->valuedouble, special,
                               bool_field(it, "normalized", !special), bool_field(it, "lstrip", false),
                               bool_field(it, "rstrip", false), bool_field(it, "single_word", false))
                    : oom();
            tok_buf_free(&cb);
            if (st != LFL_OK) break;
        }
    }
    if (st == LFL_OK) st = parse_normalizer(&c, field(root, "normalizer"), &tok->normalizer);
    if (st == LFL_OK) st = parse_pretok(&c, field(root, "pre_tokenizer"), &tok->pretok);
    if (st == LFL_OK) st = parse_post(&c, field(root, "post_processor"), &tok->post);
    if (st == LFL_OK) st = parse_decoder(&c, field(root, "decoder"), &tok->decoder);
    cJSON_Delete(root);
    if (st == LFL_OK) st = tok_finalize(tok);
    if (st != LFL_OK) {
        lfl_tokenizer_free(tok);
        return st;
    }
    infer_special_ids(tok);
    if (tok->bpe.unk_id >= 0) tok->special.unk = tok->bpe.unk_id;
    *out = tok;
    return LFL_OK;
}

static lfl_status read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return lfl_fail(LFL_ERR_IO, "tokenizer: cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return lfl_fail(LFL_ERR_IO, "tokenizer: cannot read %s", path); }
    long n = ftell(f);
    rewind(f);
    if (n < 0) { fclose(f); return lfl_fail(LFL_ERR_IO, "tokenizer: cannot read %s", path); }
    char *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(f); return oom(); }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) { free(buf); return lfl_fail(LFL_ERR_IO, "tokenizer: short read on %s", path); }
    buf[n] = 0;
    *data = buf;
    *len = (size_t)n;
    return LFL_OK;
}

lfl_status lfl_tokenizer_from_json_file(const char *path, lfl_tokenizer **out)
{
    char *data;
    size_t len;
    LFL_TRY(read_file(path, &data, &len));
    lfl_status st = lfl_tokenizer_from_json(data, len, path, out);
    free(data);
    return st;
}

/* bos_token etc.: a string, an AddedToken object {"content": ...}, or null */
static int32_t config_token(const lfl_tokenizer *tok, const cJSON *root, const char *key, bool *present)
{
    const cJSON *v = field(root, key);
    *present = v && !cJSON_IsNull(v);
    const char *s = cJSON_IsString(v) ? v->valuestring : str_field(v, "content");
    if (!s) return -1;
    return lfl_tokenizer_token_to_id(tok, s, strlen(s));
}

lfl_status lfl_tokenizer_load_config(lfl_tokenizer *tok, const char *config_path)
{
    char *data;
    size_t len;
    LFL_TRY(read_file(config_path, &data, &len));
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: invalid JSON", config_path);
    }
    static const char *keys[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    int32_t *slots[] = {&tok->special.bos, &tok->special.eos, &tok->special.pad, &tok->special.unk};
    for (int i = 0; i < 4; i++) {
        bool present;
        int32_t id = config_token(tok, root, keys[i], &present);
        /* a config that names the token decides, null included */
        if (field(root, keys[i])) *slots[i] = present ? id : -1;
    }
    cJSON_Delete(root);
    return LFL_OK;
}
