/* Tokenizer utilities: hashing, UTF-8, Unicode classes (as Rust defines them),
 * buffers and the per-call arena, the token string table, the merge-pair map,
 * the GPT-2 byte mapping, and the split builder that tracks alignment. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "tok_internal.h"

uint64_t tok_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return h;
}

/* ---- UTF-8 (input already validated) ---- */

int tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80 || n < 2) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0 || n < 4) {
        if (n < 3) { *cp = c; return 1; }
        *cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

int tok_utf8_encode(int32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* length of the valid UTF-8 sequence at s, or 0; *sub: the maximal valid
 * prefix length when invalid (Unicode's "maximal subpart", as Python's
 * errors='replace' and Rust's from_utf8_lossy use) */
size_t tok_utf8_valid_len(const unsigned char *s, size_t n, size_t *sub)
{
    unsigned char c = s[0];
    *sub = 1;
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c == 0xE0) { need = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) need = 3;
    else if (c == 0xED) { need = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) need = 3;
    else if (c == 0xF0) { need = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 4;
    else if (c == 0xF4) { need = 4; hi = 0x8F; }
    else return 0;
    for (size_t k = 1; k < need; k++) {
        if (k >= n) return 0;
        unsigned char x = s[k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (x < l || x > h) return 0;
        *sub = k + 1;
    }
    return need;
}

bool tok_utf8_lossy(const char *s, size_t n, tok_buf *out)
{
    size_t i = 0, sub;
    while (i < n) {
        size_t v = (unsigned char)s[i] < 0x80 ? 1 : tok_utf8_valid_len((const unsigned char *)s + i, n - i, &sub);
        if (v) {
            if (!tok_buf_put(out, s + i, v)) return false;
            i += v;
        } else {
            if (!tok_buf_put(out, "\xEF\xBF\xBD", 3)) return false;
            i += sub;
        }
    }
    return tok_buf_put(out, "", 0);
}

/* ---- Unicode classes ---- */

bool tok_is_whitespace(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

bool tok_is_word_char(int32_t c)
{
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return true; /* Join_Control */
    /* Other_Alphabetic symbols: circled and squared Latin letters */
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return true;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

bool tok_is_numeric(int32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool tok_is_punct(int32_t c)
{
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return true;
    default:
        return false;
    }
}

/* ---- buffers ---- */

bool tok_buf_reserve(tok_buf *b, size_t extra)
{
    if (b->cap - b->n >= extra) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

bool tok_buf_put(tok_buf *b, const void *s, size_t n)
{
    if (!tok_buf_reserve(b, n + 1)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

void tok_buf_free(tok_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- arena ---- */

struct tok_arena_block {
    tok_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

/* Blocks form a list; `cur` walks it, so blocks kept by a reset are reused in
 * order and every allocation looks at one block only. */
void *tok_arena_alloc(tok_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    while (a->cur) {
        tok_arena_block *b = a->cur;
        if (b->cap - b->used >= n) {
            void *p = b->data + b->used;
            b->used += n;
            return p;
        }
        if (!b->next) break;
        a->cur = b->next;
    }
    size_t cap = n > (1u << 20) ? n : (1u << 20);
    tok_arena_block *nb = malloc(sizeof *nb + cap);
    if (!nb) return NULL;
    nb->cap = cap;
    nb->used = n;
    nb->next = NULL;
    if (a->cur) a->cur->next = nb;
    else a->head = nb;
    a->cur = nb;
    a->total += cap;
    return nb->data;
}

void tok_arena_reset(tok_arena *a)
{
    /* keep up to 64 MB of blocks for the next call, free the rest */
    size_t kept = 0;
    tok_arena_block **pp = &a->head;
    while (*pp) {
        tok_arena_block *b = *pp;
        if (kept + b->cap > ((size_t)64 << 20) && kept > 0) {
            *pp = b->next;
            a->total -= b->cap;
            free(b);
            continue;
        }
        kept += b->cap;
        b->used = 0;
        pp = &b->next;
    }
    a->cur = a->head;
}

void tok_arena_free(tok_arena *a)
{
    tok_arena_block *b = a->head;
    while (b) {
        tok_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = a->cur = NULL;
    a->total = 0;
}

/* ---- vocab ---- */

void tok_vocab_init(tok_vocab *v) { memset(v, 0, sizeof *v); }

void tok_vocab_free(tok_vocab *v)
{
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

static bool vocab_rehash(tok_vocab *v, uint32_t nslots)
{
    int32_t *slots = malloc(sizeof *slots * nslots);
    if (!slots) return false;
    memset(slots, 0xff, sizeof *slots * nslots);
    uint32_t mask = nslots - 1;
    for (uint32_t id = 0; id < v->n_ids; id++) {
        if (v->off[id] == UINT32_MAX) continue;
        uint64_t h = tok_hash(v->pool + v->off[id], v->len[id]);
        uint32_t i = (uint32_t)h & mask;
        while (slots[i] >= 0) i = (i + 1) & mask;
        slots[i] = (int32_t)id;
    }
    free(v->slots);
    v->slots = slots;
    v->mask = mask;
    return true;
}

int32_t tok_vocab_get(const tok_vocab *v, const char *s, size_t n)
{
    if (!v->slots) return -1;
    uint64_t h = tok_hash(s, n);
    for (uint32_t i = (uint32_t)h & v->mask;; i = (i + 1) & v->mask) {
        int32_t id = v->slots[i];
        if (id < 0) return -1;
        if (v->len[id] == n && memcmp(v->pool + v->off[id], s, n) == 0) return id;
    }
}

bool tok_vocab_add(tok_vocab *v, const char *s, size_t n, int32_t id, bool *dup)
{
    if (dup) *dup = false;
    if (id < 0) return false;
    if (tok_vocab_get(v, s, n) >= 0) {
        if (dup) *dup = true;
        return true;
    }
    if ((uint32_t)id >= v->n_ids) {
        uint32_t nn = (uint32_t)id + 1;
        if (nn > v->cap_ids) {
            uint32_t cap = v->cap_ids ? v->cap_ids : 16;
            while (cap < nn) cap *= 2;
            uint32_t *off = realloc(v->off, sizeof *off * cap);
            if (!off) return false;
            v->off = off;
            uint32_t *len = realloc(v->len, sizeof *len * cap);
            if (!len) return false;
            v->len = len;
            for (uint32_t i = v->cap_ids; i < cap; i++) { v->off[i] = UINT32_MAX; v->len[i] = 0; }
            v->cap_ids = cap;
        }
        v->n_ids = nn;
    }
    if (v->pool_cap - v->pool_len < n + 1) {
        size_t cap = v->pool_cap ? v->pool_cap : 4096;
        while (cap - v->pool_len < n + 1) cap *= 2;
        char *p = realloc(v->pool, cap);
        if (!p) return false;
        v->pool = p;
        v->pool_cap = cap;
    }
    if (v->pool_len + n + 1 > UINT32_MAX) return false;
    bool replaced = v->off[id] != UINT32_MAX;
    memcpy(v->pool + v->pool_len, s, n);
    v->pool[v->pool_len + n] = 0;
    v->off[id] = (uint32_t)v->pool_len;
    v->len[id] = (uint32_t)n;
    v->pool_len += n + 1;
    if (!replaced) v->count++;
    /* keep the table at most half full; a replaced id needs a full rehash */
    if (replaced || (size_t)v->count * 2 > (size_t)v->mask + 1 || !v->slots) {
        uint32_t ns = v->slots ? v->mask + 1 : 1024;
        while ((size_t)v->count * 2 > ns) ns *= 2;
        return vocab_rehash(v, ns);
    }
    uint64_t h = tok_hash(s, n);
    uint32_t i = (uint32_t)h & v->mask;
    while (v->slots[i] >= 0) i = (i + 1) & v->mask;
    v->slots[i] = id;
    return true;
}

/* ---- pair map ---- */

bool tok_pairmap_init(tok_pairmap *m, size_t expected)
{
    uint64_t n = 1024;
    while (n < expected * 2) n *= 2;
    m->slots = malloc(sizeof *m->slots * n);
    if (!m->slots) return false;
    for (uint64_t i = 0; i < n; i++) m->slots[i].key = UINT64_MAX;
    m->mask = n - 1;
    m->count = 0;
    return true;
}

void tok_pairmap_free(tok_pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* a later put of the same pair overwrites (HF collects merges into a map) */
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        tok_pair_slot *s = &m->slots[i];
        if (s->key == key || s->key == UINT64_MAX) {
            if (s->key == UINT64_MAX) m->count++;
            s->key = key;
            s->rank = rank;
            s->id = id;
            return;
        }
    }
}

/* ---- GPT-2 bytes_to_unicode ---- */

int32_t tok_byte_to_cp[256];
static int16_t cp_to_byte[324];
static pthread_once_t bytes_once = PTHREAD_ONCE_INIT;

static void bytes_init_once(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        tok_byte_to_cp[b] = keep ? b : 256 + n++;
    }
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[tok_byte_to_cp[b]] = (int16_t)b;
}

void tok_bytes_map_init(void) { pthread_once(&bytes_once, bytes_init_once); }

int tok_cp_to_byte(int32_t cp)
{
    if (cp < 0 || cp >= 324) return -1;
    return cp_to_byte[cp];
}

/* ---- splits and the builder ---- */

bool tok_splits_push(tok_splits *s, tok_split x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        tok_split *v = realloc(s->v, sizeof *v * cap);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

static bool builder_reserve(tok_builder *b, size_t extra)
{
    if (!tok_buf_reserve(&b->s, extra + 1)) return false;
    size_t need = b->s.n + extra;
    if (need > b->al_cap) {
        size_t cap = b->al_cap ? b->al_cap : 256;
        while (cap < need) cap *= 2;
        uint32_t *al = realloc(b->al, sizeof *al * 2 * cap);
        if (!al) return false;
        b->al = al;
        b->al_cap = cap;
    }
    return true;
}

bool tok_builder_put(tok_builder *b, const char *s, size_t n, uint32_t ostart, uint32_t oend)
{
    if (!builder_reserve(b, n)) return false;
    for (size_t i = 0; i < n; i++) {
        b->al[2 * (b->s.n + i)] = ostart;
        b->al[2 * (b->s.n + i) + 1] = oend;
    }
    memcpy(b->s.p + b->s.n, s, n);
    b->s.n += n;
    return true;
}

bool tok_builder_copy(tok_builder *b, const tok_split *src, uint32_t a, uint32_t e)
{
    size_t n = e - a;
    if (!builder_reserve(b, n)) return false;
    memcpy(b->s.p + b->s.n, src->s + a, n);
    if (src->al) {
        memcpy(b->al + 2 * b->s.n, src->al + 2 * a, sizeof *b->al * 2 * n);
    } else {
        for (size_t i = 0; i < n; i++) {
            b->al[2 * (b->s.n + i)] = src->base + a + (uint32_t)i;
            b->al[2 * (b->s.n + i) + 1] = src->base + a + (uint32_t)i + 1;
        }
    }
    b->s.n += n;
    return true;
}

bool tok_builder_freeze(tok_builder *b, tok_arena *arena, tok_split *out)
{
    size_t n = b->s.n;
    char *s = tok_arena_alloc(arena, n + 1);
    uint32_t *al = tok_arena_alloc(arena, sizeof *al * 2 * (n ? n : 1));
    if (!s || !al) return false;
    if (n) {
        memcpy(s, b->s.p, n);
        memcpy(al, b->al, sizeof *al * 2 * n);
    }
    s[n] = 0;
    out->s = s;
    out->n = (uint32_t)n;
    out->al = al;
    out->base = 0;
    out->token = -1;
    b->s.n = 0;
    return true;
}

void tok_builder_free(tok_builder *b)
{
    tok_buf_free(&b->s);
    free(b->al);
    b->al = NULL;
    b->al_cap = 0;
}

bool tok_enc_push(lfl_tok_encoding *e, int32_t id, uint32_t s, uint32_t t, bool offsets)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        int32_t *ids = realloc(e->ids, sizeof *ids * cap);
        if (!ids) return false;
        e->ids = ids;
        if (offsets) {
            uint32_t *o = realloc(e->offsets, sizeof *o * 2 * cap);
            if (!o) return false;
            e->offsets = o;
        }
        e->cap = cap;
    }
    e->ids[e->n] = id;
    if (offsets) {
        e->offsets[2 * e->n] = s;
        e->offsets[2 * e->n + 1] = t;
    }
    e->n++;
    return true;
}
