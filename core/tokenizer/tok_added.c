/* The byte trie behind added-token matching (leftmost-longest, like HF's
 * Aho-Corasick with MatchKind::LeftmostLongest): a 256-way root and sibling
 * lists below it. */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

static int32_t new_node(tok_trie *t, uint8_t byte)
{
    if (t->n_nodes == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct tok_trie_node *v = realloc(t->nodes, sizeof *v * cap);
        if (!v) return -1;
        t->nodes = v;
        t->cap = cap;
    }
    struct tok_trie_node *n = &t->nodes[t->n_nodes];
    n->child = n->sibling = n->token = -1;
    n->byte = byte;
    return (int32_t)t->n_nodes++;
}

lfl_status tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t token)
{
    if (n == 0) return LFL_OK;
    if (!t->root) {
        t->root = malloc(sizeof *t->root * 256);
        if (!t->root) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
        for (int i = 0; i < 256; i++) t->root[i] = -1;
    }
    const uint8_t *p = (const uint8_t *)s;
    int32_t cur = t->root[p[0]];
    if (cur < 0) {
        cur = new_node(t, p[0]);
        if (cur < 0) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
        t->root[p[0]] = cur;
    }
    for (size_t i = 1; i < n; i++) {
        int32_t c = t->nodes[cur].child, prev = -1;
        while (c >= 0 && t->nodes[c].byte != p[i]) { prev = c; c = t->nodes[c].sibling; }
        if (c < 0) {
            c = new_node(t, p[i]);
            if (c < 0) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
            if (prev >= 0) t->nodes[prev].sibling = c;
            else t->nodes[cur].child = c;
        }
        cur = c;
    }
    /* the first token added with this content keeps it */
    if (t->nodes[cur].token < 0) t->nodes[cur].token = token;
    t->any = true;
    return LFL_OK;
}

void tok_trie_free(tok_trie *t)
{
    free(t->root);
    free(t->nodes);
    memset(t, 0, sizeof *t);
}
