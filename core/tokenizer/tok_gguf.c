/* Tokenizers from GGUF metadata, rebuilt as the Hugging Face pipeline the
 * vocabulary came from: tokenizer.ggml.model "gpt2" is byte-level BPE with the
 * pre-tokenizer regexes llama.cpp uses for tokenizer.ggml.pre; "llama" is
 * SentencePiece-style BPE with byte fallback whose merges are derived from the
 * scores the way transformers converts a SentencePiece model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/gguf.h"
#include "tok_internal.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while loading GGUF"); }

/* llama.cpp's pre-tokenizer regex lists (llama-vocab.cpp), applied in order
 * as Isolated splits; the llama3 one is the tokenizer.json original */
#define LLAMA3_RE "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_RE "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

static const char *const RE_LLAMA3[] = {LLAMA3_RE, NULL};
static const char *const RE_QWEN2[] = {QWEN2_RE, NULL};
static const char *const RE_GPT2[] = {GPT2_RE, NULL};
static const char *const RE_STARCODER[] = {"\\p{N}", GPT2_RE, NULL};
static const char *const RE_FALCON[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]", NULL};
/* llama.cpp's lists; the letter class is written with code points because
 * its endpoints (e.g. U+1F7D, U+212A) would not survive Unicode normalization */
static const char *const RE_DEEPSEEK_CODER[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}", NULL};
static const char *const RE_DEEPSEEK_LLM[] = {
    "[\r\n]",
    "\\s?["
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
    "\\x{1E900}-\\x{1E943}"
    "]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL};
static const char *const RE_DEFAULT[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]", NULL};

static const struct {
    const char *name;
    const char *const *re;
    bool ignore_merges;
} PRE[] = {
    {"llama3", RE_LLAMA3, true}, {"llama-v3", RE_LLAMA3, true}, {"llama-bpe", RE_LLAMA3, true},
    {"falcon3", RE_LLAMA3, true}, {"dbrx", RE_LLAMA3, false}, {"smaug-bpe", RE_LLAMA3, false},
    {"qwen2", RE_QWEN2, false}, {"deepseek-r1-qwen", RE_QWEN2, false}, {"stablelm2", RE_QWEN2, false},
    {"gpt-2", RE_GPT2, false}, {"mpt", RE_GPT2, false}, {"olmo", RE_GPT2, false}, {"jais", RE_GPT2, false},
    {"starcoder", RE_STARCODER, false}, {"refact", RE_STARCODER, false}, {"command-r", RE_STARCODER, false},
    {"smollm", RE_STARCODER, false}, {"codeshell", RE_STARCODER, false}, {"exaone", RE_STARCODER, false},
    {"minerva-7b", RE_STARCODER, false},
    {"falcon", RE_FALCON, false}, {"deepseek-coder", RE_DEEPSEEK_CODER, false},
    {"deepseek-llm", RE_DEEPSEEK_LLM, false}, {"default", RE_DEFAULT, false},
};

typedef struct {
    const lfl_gguf *g;
    const lfl_gguf_kv *tokens, *types, *scores;
    uint64_t n;
} src;

static lfl_status get_arr(const lfl_gguf *g, const char *key, lfl_gguf_type want, bool required, const lfl_gguf_kv **kv)
{
    *kv = lfl_gguf_find(g, key);
    if (!*kv) {
        if (required) return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: GGUF has no '%s'", g->path, key);
        return LFL_OK;
    }
    if ((*kv)->type != LFL_GGUF_ARRAY ||
        ((*kv)->arr_type != want && !(want == LFL_GGUF_I32 && ((*kv)->arr_type == LFL_GGUF_U32 || (*kv)->arr_type == LFL_GGUF_I64))))
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: '%s' is not an array of %s", g->path, key, lfl_gguf_type_name(want));
    return LFL_OK;
}

static int32_t opt_id(const lfl_gguf *g, const char *key, uint64_t n)
{
    int64_t v;
    if (!lfl_gguf_find(g, key) || lfl_gguf_get_int(g, key, &v) != LFL_OK) return -1;
    return v >= 0 && (uint64_t)v < n ? (int32_t)v : -1;
}

static bool opt_bool(const lfl_gguf *g, const char *key, bool def)
{
    bool v;
    if (!lfl_gguf_find(g, key) || lfl_gguf_get_bool(g, key, &v) != LFL_OK) return def;
    return v;
}

static int token_type(const src *s, uint64_t i)
{
    return s->types ? (int)lfl_gguf_arr_int(s->types, i) : TT_NORMAL;
}

/* ---- SentencePiece scores -> merges (transformers' SentencePieceExtractor) ---- */

typedef struct {
    float score;
    int32_t l, r, order;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static lfl_status spm_merges(lfl_tokenizer *tok, const src *s)
{
    tok_bpe *m = &tok->bpe;
    size_t cap = 1024, n = 0;
    cand *c = malloc(sizeof *c * cap);
    if (!c) return oom();
    for (uint64_t id = 0; id < s->n; id++) {
        lfl_gguf_str piece = lfl_gguf_arr_str(s->tokens, id);
        if (tok_vocab_get(&m->vocab, piece.ptr, (size_t)piece.len) != (int32_t)id) continue;
        float score = (float)lfl_gguf_arr_float(s->scores, id);
        size_t first = n;
        /* every split at a char boundary whose halves are both pieces, ordered
         * by the halves' ids */
        for (size_t k = (size_t)tok_utf8_len((unsigned char)piece.ptr[0]); k < piece.len;
             k += (size_t)tok_utf8_len((unsigned char)piece.ptr[k])) {
            int32_t l = tok_vocab_get(&m->vocab, piece.ptr, k);
            int32_t r = tok_vocab_get(&m->vocab, piece.ptr + k, (size_t)piece.len - k);
            if (l < 0 || r < 0) continue;
            if (n == cap) {
                cap *= 2;
                cand *nc = realloc(c, sizeof *c * cap);
                if (!nc) { free(c); return oom(); }
                c = nc;
            }
            c[n++] = (cand){score, l, r, 0};
        }
        for (size_t i = first + 1; i < n; i++) /* insertion sort by (id l, id r): few entries */
            for (size_t j = i; j > first && (c[j].l < c[j - 1].l || (c[j].l == c[j - 1].l && c[j].r < c[j - 1].r)); j--) {
                cand t = c[j];
                c[j] = c[j - 1];
                c[j - 1] = t;
            }
    }
    for (size_t i = 0; i < n; i++) c[i].order = (int32_t)i;
    qsort(c, n, sizeof *c, cmp_cand); /* by score, high first; stable through `order` */
    lfl_status st = LFL_OK;
    if (!tok_pairmap_init(&m->merges, n)) st = oom();
    for (size_t i = 0; i < n && st == LFL_OK; i++) {
        size_t ln = 0, rn = 0;
        const char *ls = tok_vocab_str(&m->vocab, c[i].l, &ln), *rs = tok_vocab_str(&m->vocab, c[i].r, &rn);
        st = tok_bpe_add_merge(m, ls, ln, rs, rn, (int32_t)i, tok->name);
    }
    free(c);
    return st;
}

/* ---- assembly ---- */

static lfl_status template_post(lfl_tokenizer *tok, bool add_bos, bool add_eos, tok_post **out)
{
    *out = NULL;
    if (!(add_bos && tok->special.bos >= 0) && !(add_eos && tok->special.eos >= 0)) return LFL_OK;
    tok_post *p = tok_post_new(TOK_POST_TEMPLATE);
    if (!p) return oom();
    p->items = calloc(3, sizeof *p->items);
    if (!p->items) { tok_post_free(p); return oom(); }
    int32_t ids[3] = {add_bos ? tok->special.bos : -1, -2, add_eos ? tok->special.eos : -1};
    for (int i = 0; i < 3; i++) {
        if (ids[i] == -1) continue;
        tok_tpl_item *it = &p->items[p->n_items++];
        if (ids[i] == -2) { it->is_seq = true; continue; }
        it->ids = malloc(sizeof *it->ids);
        if (!it->ids) { tok_post_free(p); return oom(); }
        it->ids[0] = ids[i];
        it->n_ids = 1;
    }
    *out = p;
    return LFL_OK;
}

static lfl_status build_gpt2(lfl_tokenizer *tok, const src *s)
{
    const lfl_gguf *g = s->g;
    const lfl_gguf_kv *merges;
    LFL_TRY(get_arr(g, "tokenizer.ggml.merges", LFL_GGUF_STRING, true, &merges));
    const char *pre = "default";
    size_t pre_len = 7;
    if (lfl_gguf_find(g, "tokenizer.ggml.pre")) LFL_TRY(lfl_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pre_len));
    int which = -1;
    for (size_t i = 0; i < sizeof PRE / sizeof *PRE; i++)
        if (strlen(PRE[i].name) == pre_len && memcmp(PRE[i].name, pre, pre_len) == 0) which = (int)i;
    if (which < 0)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: tokenizer.ggml.pre '%.*s' is not supported", g->path,
                        (int)pre_len, pre);
    tok_bpe *m = &tok->bpe;
    m->ignore_merges = PRE[which].ignore_merges;
    if (!tok_pairmap_init(&m->merges, (size_t)merges->arr_n)) return oom();
    for (uint64_t i = 0; i < merges->arr_n; i++) {
        lfl_gguf_str mg = lfl_gguf_arr_str(merges, i);
        const char *sp = memchr(mg.ptr, ' ', (size_t)mg.len);
        if (!sp)
            return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: merge %llu '%.*s' has no space", g->path,
                            (unsigned long long)i + 1, (int)mg.len, mg.ptr);
        size_t an = (size_t)(sp - mg.ptr);
        LFL_TRY(tok_bpe_add_merge(m, mg.ptr, an, sp + 1, (size_t)mg.len - an - 1, (int32_t)i, g->path));
    }
    tok_pretok *seq = tok_pretok_new(TOK_PT_SEQ);
    if (!seq) return oom();
    tok->pretok = seq;
    char where[300];
    snprintf(where, sizeof where, "%s: pre-tokenizer '%s'", g->path, PRE[which].name);
    for (const char *const *re = PRE[which].re; *re; re++) {
        tok_pretok *sp;
        LFL_TRY(tok_pretok_split_regex(*re, strlen(*re), TOK_SPLIT_ISOLATED, false, where, &sp));
        if (!tok_pretok_add_sub(seq, sp)) { tok_pretok_free(sp); return oom(); }
    }
    tok_pretok *bl;
    LFL_TRY(tok_pretok_bytelevel(false, false, false, &bl));
    if (!tok_pretok_add_sub(seq, bl)) { tok_pretok_free(bl); return oom(); }
    tok->decoder = tok_dec_new(TOK_DEC_BYTELEVEL);
    if (!tok->decoder) return oom();
    return template_post(tok, opt_bool(g, "tokenizer.ggml.add_bos_token", false),
                         opt_bool(g, "tokenizer.ggml.add_eos_token", false), &tok->post);
}

static lfl_status build_spm(lfl_tokenizer *tok, const src *s)
{
    const lfl_gguf *g = s->g;
    tok_bpe *m = &tok->bpe;
    m->byte_fallback = true;
    m->fuse_unk = true;
    m->unk_id = tok->special.unk;
    LFL_TRY(spm_merges(tok, s));
    bool space_prefix = opt_bool(g, "tokenizer.ggml.add_space_prefix", true);
    const char *sp = "\xe2\x96\x81"; /* ▁ */
    tok_norm *seq = tok_norm_new(TOK_NORM_SEQ);
    if (!seq) return oom();
    tok->normalizer = seq;
    if (space_prefix) {
        tok_norm *pre = tok_norm_new(TOK_NORM_PREPEND);
        if (!pre || !(pre->str = strdup(sp)) || !tok_norm_add_sub(seq, pre)) { tok_norm_free(pre); return oom(); }
        pre->str_len = 3;
    }
    tok_norm *rep = tok_norm_new(TOK_NORM_REPLACE);
    if (!rep || !(rep->str = strdup(sp)) || !tok_norm_add_sub(seq, rep)) { tok_norm_free(rep); return oom(); }
    rep->str_len = 3;
    LFL_TRY(tok_pattern_literal(&rep->pat, " ", 1));

    tok_dec *dseq = tok_dec_new(TOK_DEC_SEQ);
    if (!dseq) return oom();
    tok->decoder = dseq;
    tok_dec *d = tok_dec_new(TOK_DEC_REPLACE);
    if (!d || !(d->str = strdup(" ")) || !tok_dec_add_sub(dseq, d)) { tok_dec_free(d); return oom(); }
    d->str_len = 1;
    LFL_TRY(tok_pattern_literal(&d->pat, sp, 3));
    int more[] = {TOK_DEC_BYTEFALLBACK, TOK_DEC_FUSE};
    for (int i = 0; i < 2; i++) {
        d = tok_dec_new(more[i]);
        if (!d || !tok_dec_add_sub(dseq, d)) { tok_dec_free(d); return oom(); }
    }
    if (space_prefix) {
        d = tok_dec_new(TOK_DEC_STRIP);
        if (!d || !tok_dec_add_sub(dseq, d)) { tok_dec_free(d); return oom(); }
        d->ch = ' ';
        d->start = 1;
    }
    return template_post(tok, opt_bool(g, "tokenizer.ggml.add_bos_token", true),
                         opt_bool(g, "tokenizer.ggml.add_eos_token", false), &tok->post);
}

static bool name_has(const lfl_gguf *g, const char *needle)
{
    const char *n;
    size_t len;
    if (!lfl_gguf_find(g, "general.name") || lfl_gguf_get_str(g, "general.name", &n, &len) != LFL_OK) return false;
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= len; i++)
        if (strncasecmp(n + i, needle, k) == 0) return true;
    return false;
}

lfl_status lfl_tokenizer_from_gguf(const lfl_gguf *g, lfl_tokenizer **out)
{
    *out = NULL;
    const char *model;
    size_t model_len;
    if (!lfl_gguf_find(g, "tokenizer.ggml.model"))
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: GGUF has no tokenizer (tokenizer.ggml.model)", g->path);
    LFL_TRY(lfl_gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len));
    bool gpt2 = model_len == 4 && memcmp(model, "gpt2", 4) == 0;
    bool llama = model_len == 5 && memcmp(model, "llama", 5) == 0;
    if (!gpt2 && !llama)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: %s: tokenizer.ggml.model '%.*s' is not supported (gpt2 and llama are)",
                        g->path, (int)model_len, model);
    src s = {g, NULL, NULL, NULL, 0};
    LFL_TRY(get_arr(g, "tokenizer.ggml.tokens", LFL_GGUF_STRING, true, &s.tokens));
    LFL_TRY(get_arr(g, "tokenizer.ggml.token_type", LFL_GGUF_I32, false, &s.types));
    if (llama) LFL_TRY(get_arr(g, "tokenizer.ggml.scores", LFL_GGUF_F32, true, &s.scores));
    s.n = s.tokens->arr_n;
    if (s.n == 0 || s.n > 0x7fffffff) return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: %llu tokens", g->path, (unsigned long long)s.n);
    if (s.types && s.types->arr_n != s.n)
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: %llu token types for %llu tokens", g->path,
                        (unsigned long long)s.types->arr_n, (unsigned long long)s.n);
    if (s.scores && s.scores->arr_n != s.n)
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: %llu scores for %llu tokens", g->path,
                        (unsigned long long)s.scores->arr_n, (unsigned long long)s.n);

    lfl_tokenizer *tok = tok_new(g->path);
    if (!tok) return oom();
    lfl_status st = LFL_OK;
    tok->special.bos = opt_id(g, "tokenizer.ggml.bos_token_id", s.n);
    tok->special.eos = opt_id(g, "tokenizer.ggml.eos_token_id", s.n);
    tok->special.unk = opt_id(g, "tokenizer.ggml.unknown_token_id", s.n);
    tok->special.pad = opt_id(g, "tokenizer.ggml.padding_token_id", s.n);
    /* phi-3's control tokens strip the whitespace after them (as llama.cpp sets) */
    bool phi3 = name_has(g, "phi-3") || name_has(g, "phi3");
    for (uint64_t i = 0; i < s.n && st == LFL_OK; i++) {
        lfl_gguf_str t = lfl_gguf_arr_str(s.tokens, i);
        if (!tok_vocab_add(&tok->bpe.vocab, t.ptr, (size_t)t.len, (int32_t)i, NULL)) { st = oom(); break; }
        int tt = token_type(&s, i);
        if (tt == TT_CONTROL || tt == TT_UNKNOWN || tt == TT_USER_DEFINED) {
            bool special = tt != TT_USER_DEFINED;
            bool rstrip = false;
            if (phi3 && tt == TT_CONTROL) {
                rstrip = !((t.len == 5 && !memcmp(t.ptr, "<unk>", 5)) || (t.len == 3 && !memcmp(t.ptr, "<s>", 3)) ||
                           (t.len == 13 && !memcmp(t.ptr, "<|endoftext|>", 13)));
            }
            st = tok_add_added(tok, t.ptr, (size_t)t.len, (int32_t)i, special, false, false, rstrip, false);
        }
    }
    if (st == LFL_OK) st = gpt2 ? build_gpt2(tok, &s) : build_spm(tok, &s);
    if (st == LFL_OK) st = tok_finalize(tok);
    if (st != LFL_OK) {
        lfl_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return LFL_OK;
}

lfl_status lfl_tokenizer_from_gguf_file(const char *path, lfl_tokenizer **out)
{
    lfl_gguf *g;
    LFL_TRY(lfl_gguf_open(path, &g));
    lfl_status st = lfl_tokenizer_from_gguf(g, out);
    lfl_gguf_close(g);
    return st;
}
