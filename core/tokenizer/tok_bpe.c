/* The BPE model as HF tokenizers runs it: a word starts as one symbol per
 * char (byte-level words: per byte through the GPT-2 mapping; unknown chars
 * fall back to <0xHH> byte tokens or unk), then the adjacent pair of lowest
 * merge rank (leftmost on ties) merges until none is left. Merges live in a
 * hash map keyed by the id pair; short words scan cached pair ranks, long ones
 * use a heap; finished words go to a per-thread word -> ids cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

typedef struct {
    int32_t id, prev, next, rank, new_id;
    uint32_t start, len;
} sym;

typedef struct {
    int32_t rank, pos, new_id;
} hent;

/* ---- the word cache ---- */

#define CACHE_MAX_ENTRIES 65536
#define CACHE_MAX_WORD 256

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len, val_off, n;
} centry;

struct tok_cache {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    uint32_t mask;
    centry *e;
    uint32_t n;
    tok_buf keys;
    tok_piece *vals;
    size_t n_vals, cap_vals;
};

static tok_cache *cache_new(void)
{
    tok_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->mask = 2 * CACHE_MAX_ENTRIES - 1;
    c->slots = calloc((size_t)c->mask + 1, sizeof *c->slots);
    c->e = malloc(sizeof *c->e * CACHE_MAX_ENTRIES);
    if (!c->slots || !c->e) {
        tok_cache_free(c);
        return NULL;
    }
    return c;
}

void tok_cache_free(tok_cache *c)
{
    if (!c) return;
    free(c->slots);
    free(c->e);
    tok_buf_free(&c->keys);
    free(c->vals);
    free(c);
}

static void cache_clear(tok_cache *c)
{
    memset(c->slots, 0, sizeof *c->slots * ((size_t)c->mask + 1));
    c->n = 0;
    c->keys.n = 0;
    c->n_vals = 0;
}

static const centry *cache_get(const tok_cache *c, const char *w, size_t n, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        uint32_t s = c->slots[i];
        if (!s) return NULL;
        const centry *e = &c->e[s - 1];
        if (e->hash == h && e->key_len == n && memcmp(c->keys.p + e->key_off, w, n) == 0) return e;
    }
}

static void cache_put(tok_cache *c, const char *w, size_t n, uint64_t h, const tok_piece *p, size_t np)
{
    if (c->n >= CACHE_MAX_ENTRIES || c->keys.n > ((size_t)8 << 20)) cache_clear(c);
    if (c->n_vals + np > c->cap_vals) {
        size_t cap = c->cap_vals ? c->cap_vals : 4096;
        while (cap < c->n_vals + np) cap *= 2;
        tok_piece *v = realloc(c->vals, sizeof *v * cap);
        if (!v) return; /* the cache is an optimisation: skip on OOM */
        c->vals = v;
        c->cap_vals = cap;
    }
    size_t koff = c->keys.n;
    if (!tok_buf_put(&c->keys, w, n)) return;
    centry *e = &c->e[c->n];
    e->hash = h;
    e->key_off = (uint32_t)koff;
    e->key_len = (uint32_t)n;
    e->val_off = (uint32_t)c->n_vals;
    e->n = (uint32_t)np;
    if (np) memcpy(c->vals + c->n_vals, p, sizeof *p * np); /* a word of no pieces leaves vals unallocated */
    c->n_vals += np;
    uint32_t i = (uint32_t)h & c->mask;
    while (c->slots[i]) i = (i + 1) & c->mask;
    c->slots[i] = ++c->n;
}

/* ---- set-up ---- */

lfl_status tok_bpe_prepare(tok_bpe *m)
{
    tok_bytes_map_init();
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_tok[b] = tok_vocab_get(&m->vocab, name, 6);
        char enc[4];
        int en = tok_utf8_encode(tok_byte_to_cp[b], enc);
        m->bl_id[b] = tok_vocab_get(&m->vocab, enc, (size_t)en);
    }
    free(m->cp_id);
    m->cp_id = malloc(sizeof *m->cp_id * 0x10000);
    if (!m->cp_id) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    memset(m->cp_id, 0xff, sizeof *m->cp_id * 0x10000);
    for (uint32_t id = 0; id < m->vocab.n_ids; id++) {
        size_t n;
        const char *s = tok_vocab_str(&m->vocab, (int32_t)id, &n);
        if (!s || n == 0 || n > 3 || (size_t)tok_utf8_len((unsigned char)s[0]) != n) continue;
        int32_t cp;
        tok_utf8_decode((const unsigned char *)s, n, &cp);
        if (cp < 0x10000 && m->cp_id[cp] < 0) m->cp_id[cp] = (int32_t)id;
    }
    return LFL_OK;
}

void tok_bpe_free(tok_bpe *m)
{
    tok_vocab_free(&m->vocab);
    tok_pairmap_free(&m->merges);
    free(m->prefix);
    free(m->suffix);
    free(m->cp_id);
    memset(m, 0, sizeof *m);
}

/* ---- one word ---- */

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory in BPE"); }

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

typedef struct {
    sym *s;
    int32_t n;
    int32_t unk_pos;  /* pending unknown (for fuse_unk), -1 none */
} symlist;

static void sym_add(symlist *l, int32_t id, uint32_t start, uint32_t len)
{
    sym *x = &l->s[l->n];
    x->id = id;
    x->start = start;
    x->len = len;
    x->prev = l->n - 1;
    x->next = l->n + 1;
    l->n++;
}

/* a char with no token: byte fallback, else unk (fused or not), else dropped */
static void add_unknown(const tok_bpe *m, symlist *l, const char *s, size_t sn, uint32_t start, uint32_t len)
{
    if (m->byte_fallback) {
        bool ok = true;
        for (size_t k = 0; k < sn && ok; k++) ok = m->byte_tok[(unsigned char)s[k]] >= 0;
        if (ok) {
            l->unk_pos = -1;
            for (size_t k = 0; k < sn; k++) {
                uint32_t at = start + (k < len ? (uint32_t)k : len - 1);
                sym_add(l, m->byte_tok[(unsigned char)s[k]], at, k < len ? 1 : 0);
            }
            return;
        }
    }
    if (m->unk_id < 0) return;
    if (m->fuse_unk && l->unk_pos >= 0 && l->unk_pos == l->n - 1) {
        l->s[l->unk_pos].len = start + len - l->s[l->unk_pos].start;
        return;
    }
    sym_add(l, m->unk_id, start, len);
    l->unk_pos = l->n - 1;
}

static int32_t pair_rank(const tok_bpe *m, const sym *a, const sym *b, int32_t *new_id)
{
    const tok_pair_slot *p = tok_pairmap_get(&m->merges, a->id, b->id);
    if (!p) return INT32_MAX;
    *new_id = p->id;
    return p->rank;
}

static void merge_at(const tok_bpe *m, sym *s, int32_t i, int32_t new_id, int32_t count)
{
    int32_t j = s[i].next;
    s[i].id = new_id;
    s[i].len += s[j].len;
    s[i].next = s[j].next;
    s[j].len = 0;
    s[j].id = -1;
    if (s[i].next < count) s[s[i].next].prev = i;
    (void)m;
}

/* cached-rank scan for short words: rank[i] is the pair (i, next(i)) */
static void merge_scan(const tok_bpe *m, sym *s, int32_t count)
{
    for (int32_t i = 0; i < count; i++)
        s[i].rank = i + 1 < count ? pair_rank(m, &s[i], &s[i + 1], &s[i].new_id) : INT32_MAX;
    for (;;) {
        int32_t best = -1, br = INT32_MAX;
        for (int32_t i = 0; i < count; i = s[i].next)
            if (s[i].rank < br) { br = s[i].rank; best = i; }
        if (best < 0) break;
        merge_at(m, s, best, s[best].new_id, count);
        int32_t nx = s[best].next;
        s[best].rank = nx < count ? pair_rank(m, &s[best], &s[nx], &s[best].new_id) : INT32_MAX;
        int32_t pv = s[best].prev;
        if (pv >= 0) s[pv].rank = pair_rank(m, &s[pv], &s[best], &s[pv].new_id);
    }
}

static bool hent_less(const hent *a, const hent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(hent *h, size_t *n, hent x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hent_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static hent heap_pop(hent *h, size_t *n)
{
    hent top = h[0];
    hent x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const hent *cur = &x;
        if (l < *n && hent_less(&h[l], cur)) { m = l; cur = &h[l]; }
        if (r < *n && hent_less(&h[r], cur)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = x;
    return top;
}

static lfl_status merge_heap(const tok_bpe *m, tok_ws *ws, sym *s, int32_t count)
{
    /* each merge pushes at most two entries */
    if (!grow(&ws->heap, &ws->heap_cap, (size_t)count * 3 + 4, sizeof(hent))) return oom();
    hent *h = ws->heap;
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < count; i++) {
        int32_t nid;
        int32_t r = pair_rank(m, &s[i], &s[i + 1], &nid);
        if (r != INT32_MAX) heap_push(h, &hn, (hent){r, i, nid});
    }
    while (hn) {
        hent top = heap_pop(h, &hn);
        int32_t i = top.pos;
        if (s[i].id < 0) continue; /* merged away */
        int32_t j = s[i].next;
        if (j >= count) continue;
        int32_t nid;
        if (pair_rank(m, &s[i], &s[j], &nid) == INT32_MAX || nid != top.new_id) continue;
        merge_at(m, s, i, top.new_id, count);
        int32_t pv = s[i].prev;
        if (pv >= 0) {
            int32_t r = pair_rank(m, &s[pv], &s[i], &nid);
            if (r != INT32_MAX) heap_push(h, &hn, (hent){r, pv, nid});
        }
        int32_t nx = s[i].next;
        if (nx < count) {
            int32_t r = pair_rank(m, &s[i], &s[nx], &nid);
            if (r != INT32_MAX) heap_push(h, &hn, (hent){r, i, nid});
        }
    }
    return LFL_OK;
}

static lfl_status build_symbols(const tok_bpe *m, tok_ws *ws, const char *w, size_t n, bool bytelevel, symlist *l)
{
    l->n = 0;
    l->unk_pos = -1;
    /* each byte can become at most (prefix + suffix + 4) byte-fallback symbols */
    size_t worst = n * (4 + m->prefix_len + m->suffix_len) + 1;
    if (!grow(&ws->syms, &ws->syms_cap, worst, sizeof(sym))) return oom();
    l->s = ws->syms;
    bool plain = m->prefix_len == 0 && m->suffix_len == 0;
    if (bytelevel && plain) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = m->bl_id[(unsigned char)w[i]];
            if (id >= 0) {
                l->unk_pos = -1;
                sym_add(l, id, (uint32_t)i, 1);
            } else {
                char enc[4];
                int en = tok_utf8_encode(tok_byte_to_cp[(unsigned char)w[i]], enc);
                add_unknown(m, l, enc, (size_t)en, (uint32_t)i, 1);
            }
        }
        return LFL_OK;
    }
    tok_buf *tmp = &ws->buf2;
    size_t i = 0;
    while (i < n) {
        /* one char of the word: for byte-level words the mapped char of one byte */
        char enc[4];
        const char *c;
        size_t clen, span;
        if (bytelevel) {
            clen = (size_t)tok_utf8_encode(tok_byte_to_cp[(unsigned char)w[i]], enc);
            c = enc;
            span = 1;
        } else {
            span = (size_t)tok_utf8_len((unsigned char)w[i]);
            if (i + span > n) span = n - i;
            c = w + i;
            clen = span;
        }
        bool first = i == 0, last = i + span == n;
        int32_t id = -1;
        const char *key = c;
        size_t klen = clen;
        if ((first || !m->prefix_len) && (!last || !m->suffix_len)) {
            int32_t cp;
            tok_utf8_decode((const unsigned char *)c, clen, &cp);
            id = cp < 0x10000 ? m->cp_id[cp] : tok_vocab_get(&m->vocab, c, clen);
        } else {
            tmp->n = 0;
            if ((!first && !tok_buf_put(tmp, m->prefix, m->prefix_len)) || !tok_buf_put(tmp, c, clen) ||
                (last && !tok_buf_put(tmp, m->suffix, m->suffix_len)))
                return oom();
            key = tmp->p;
            klen = tmp->n;
            id = tok_vocab_get(&m->vocab, key, klen);
        }
        if (id >= 0) {
            l->unk_pos = -1;
            sym_add(l, id, (uint32_t)i, (uint32_t)span);
        } else {
            add_unknown(m, l, key, klen, (uint32_t)i, (uint32_t)span);
        }
        i += span;
    }
    return LFL_OK;
}

lfl_status tok_bpe_word(const tok_bpe *m, tok_ws *ws, const char *w, size_t n, bool bytelevel,
                        tok_piece **out, size_t *n_out)
{
    *n_out = 0;
    if (n == 0) return LFL_OK;
    if (!grow((void **)&ws->pieces, &ws->pieces_cap, n * (4 + m->prefix_len + m->suffix_len) + 1, sizeof(tok_piece)))
        return oom();
    *out = ws->pieces;
    uint64_t h = 0;
    bool cacheable = n <= CACHE_MAX_WORD;
    if (cacheable) {
        if (!ws->cache) ws->cache = cache_new();
        if (ws->cache) {
            h = tok_hash(w, n);
            const centry *e = cache_get(ws->cache, w, n, h);
            if (e) {
                if (e->n) memcpy(ws->pieces, ws->cache->vals + e->val_off, sizeof(tok_piece) * e->n);
                *n_out = e->n;
                return LFL_OK;
            }
        } else {
            cacheable = false;
        }
    }
    /* (HF checks ignore_merges before its cache; both give the same ids) */
    if (m->ignore_merges) {
        int32_t id;
        if (bytelevel) {
            tok_buf *t = &ws->buf2;
            t->n = 0;
            if (!tok_buf_reserve(t, 2 * n + 1)) return oom();
            for (size_t i = 0; i < n; i++) t->n += (size_t)tok_utf8_encode(tok_byte_to_cp[(unsigned char)w[i]], t->p + t->n);
            id = tok_vocab_get(&m->vocab, t->p, t->n);
        } else {
            id = tok_vocab_get(&m->vocab, w, n);
        }
        if (id >= 0) {
            ws->pieces[0] = (tok_piece){id, 0, (uint32_t)n};
            *n_out = 1;
            if (cacheable) cache_put(ws->cache, w, n, h, ws->pieces, 1);
            return LFL_OK;
        }
    }
    symlist l;
    LFL_TRY(build_symbols(m, ws, w, n, bytelevel, &l));
    if (l.n >= 2) {
        l.s[l.n - 1].next = l.n;
        if (l.n <= 64) merge_scan(m, l.s, l.n);
        else LFL_TRY(merge_heap(m, ws, l.s, l.n));
    }
    size_t k = 0;
    for (int32_t i = 0; i < l.n; i = l.s[i].next) {
        ws->pieces[k++] = (tok_piece){l.s[i].id, l.s[i].start, l.s[i].start + l.s[i].len};
    }
    *n_out = k;
    if (cacheable) cache_put(ws->cache, w, n, h, ws->pieces, k);
    return LFL_OK;
}
