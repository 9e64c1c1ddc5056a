/* SHA-1 in plain C (no OpenSSL), one-shot over buffers: used for git blob ids,
 * never for security. */
#include "sha1.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

typedef struct {
    uint32_t h[5];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} sha1_state;

static void compress(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
        else { f = b ^ c ^ d; k = 0xca62c1d6; }
        uint32_t t = ROL(a, 5) + f + e + k + w[i];
        e = d; d = c; c = ROL(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

static void init(sha1_state *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->nbuf = 0;
}

static void update(sha1_state *s, const uint8_t *p, size_t n)
{
    s->len += n;
    if (s->nbuf) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        n -= take;
        if (s->nbuf < 64) return;
        compress(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64) compress(s->h, p);
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

static void final_hex(sha1_state *s, char out[41])
{
    uint64_t bits = s->len * 8;
    static const uint8_t pad[64] = {0x80};
    update(s, pad, s->nbuf < 56 ? 56 - s->nbuf : 120 - s->nbuf);
    uint8_t lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (uint8_t)(bits >> (56 - 8 * i));
    update(s, lb, 8);
    for (int i = 0; i < 5; i++) snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

void lfl_sha1_hex(const void *data, size_t n, char out[41])
{
    sha1_state s;
    init(&s);
    update(&s, data, n);
    final_hex(&s, out);
}

void lfl_git_blob_id(const void *data, size_t n, char out[41])
{
    char head[32];
    int len = snprintf(head, sizeof head, "blob %zu", n);
    sha1_state s;
    init(&s);
    update(&s, (const uint8_t *)head, (size_t)len + 1); /* with its NUL */
    update(&s, data, n);
    final_hex(&s, out);
}
