/* Post-processors: TemplateProcessing (single sequence), BertProcessing,
 * RobertaProcessing, ByteLevel (offset trimming only) and Sequence. Special
 * tokens are added only with add_special_tokens; their offsets are (0, 0). */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory in the post-processor"); }

/* rebuilds enc as: before ids, the sequence, after ids */
static lfl_status wrap(lfl_tok_encoding *enc, const int32_t *before, int nb, const int32_t *after, int na)
{
    if (nb == 0 && na == 0) return LFL_OK;
    size_t n = enc->n + (size_t)nb + (size_t)na;
    int32_t *ids = malloc(sizeof *ids * (n ? n : 1));
    uint32_t *off = enc->offsets ? malloc(sizeof *off * 2 * (n ? n : 1)) : NULL;
    if (!ids || (enc->offsets && !off)) {
        free(ids);
        free(off);
        return oom();
    }
    if (nb) memcpy(ids, before, sizeof *ids * (size_t)nb);
    if (enc->n) memcpy(ids + nb, enc->ids, sizeof *ids * enc->n);
    if (na) memcpy(ids + nb + enc->n, after, sizeof *ids * (size_t)na);
    if (off) {
        memset(off, 0, sizeof *off * 2 * n);
        if (enc->n) memcpy(off + 2 * nb, enc->offsets, sizeof *off * 2 * enc->n);
    }
    free(enc->ids);
    free(enc->offsets);
    enc->ids = ids;
    enc->offsets = off;
    enc->n = enc->cap = n;
    return LFL_OK;
}

static lfl_status template_apply(const tok_post *p, lfl_tok_encoding *enc)
{
    int32_t before[64], after[64];
    int nb = 0, na = 0;
    bool seen_seq = false;
    for (int i = 0; i < p->n_items; i++) {
        const tok_tpl_item *it = &p->items[i];
        if (it->is_seq) {
            if (seen_seq) return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: template with $A twice");
            seen_seq = true;
            continue;
        }
        for (int k = 0; k < it->n_ids; k++) {
            if ((seen_seq ? na : nb) >= 64) return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: template adds more than 64 tokens");
            if (seen_seq) after[na++] = it->ids[k];
            else before[nb++] = it->ids[k];
        }
    }
    return wrap(enc, before, nb, after, na);
}

static bool is_space_token_char(int32_t cp) { return cp == 0x120 /* Ġ */ || tok_is_whitespace(cp); }

/* ByteLevel::process_offsets: offsets skip the token's leading/trailing spaces.
 * The token string of a matched added token is the text it matched (with the
 * whitespace lstrip/rstrip took), as in HF; else the vocabulary string. */
static void trim_offsets(const lfl_tokenizer *tok, lfl_tok_encoding *enc, bool add_prefix_space, const char *text,
                         size_t text_len)
{
    if (!enc->offsets) return;
    for (size_t i = 0; i < enc->n; i++) {
        size_t len;
        const char *s;
        uint32_t a = enc->offsets[2 * i], b = enc->offsets[2 * i + 1];
        if (lfl_tokenizer_n_added(tok) && tok_is_added(tok, enc->ids[i]) && a < b && b <= text_len) {
            s = text + a;
            len = b - a;
        } else {
            s = lfl_tokenizer_id_to_token(tok, enc->ids[i], &len);
        }
        if (!s) continue;
        uint32_t lead = 0, trail = 0, nchars = 0;
        bool in_lead = true;
        for (size_t k = 0; k < len;) {
            int32_t cp;
            int l = tok_utf8_decode((const unsigned char *)s + k, len - k, &cp);
            bool sp = is_space_token_char(cp);
            if (in_lead && sp) lead++;
            else in_lead = false;
            trail = sp ? trail + 1 : 0;
            nchars++;
            k += (size_t)l;
        }
        if (lead == nchars) trail = nchars;
        uint32_t *o = &enc->offsets[2 * i];
        if (lead == 0 && trail == 0) continue;
        if (lead > 0) {
            bool first = i == 0 || o[0] == 0;
            if (first && add_prefix_space && lead == 1) lead = 0;
            o[0] = o[0] + lead < o[1] ? o[0] + lead : o[1];
        }
        if (trail > 0 && o[1] >= trail) o[1] = o[1] - trail > o[0] ? o[1] - trail : o[0];
    }
}

lfl_status tok_post_apply(const lfl_tokenizer *tok, const tok_post *p, lfl_tok_encoding *enc, bool add_special,
                          const char *text, size_t len)
{
    switch (p->type) {
    case TOK_POST_TEMPLATE:
        return add_special ? template_apply(p, enc) : LFL_OK;
    case TOK_POST_BYTELEVEL:
        if (p->trim_offsets) trim_offsets(tok, enc, p->add_prefix_space, text, len);
        return LFL_OK;
    case TOK_POST_BERT:
    case TOK_POST_ROBERTA:
        if (p->type == TOK_POST_ROBERTA && p->trim_offsets) trim_offsets(tok, enc, p->add_prefix_space, text, len);
        return add_special ? wrap(enc, &p->cls_id, 1, &p->sep_id, 1) : LFL_OK;
    case TOK_POST_SEQ:
        for (int i = 0; i < p->n_subs; i++) LFL_TRY(tok_post_apply(tok, p->subs[i], enc, add_special, text, len));
        return LFL_OK;
    default:
        return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: unknown post-processor %d", p->type);
    }
}

void tok_post_free(tok_post *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_items; i++) free(p->items[i].ids);
    free(p->items);
    for (int i = 0; i < p->n_subs; i++) tok_post_free(p->subs[i]);
    free(p->subs);
    free(p);
}
