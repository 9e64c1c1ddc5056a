/* core/util/sha1.c: the FIPS 180 vectors (one and two blocks, a million 'a'),
 * lengths around the padding boundaries against Python's hashlib, and git
 * blob ids as `git hash-object` gives them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/sha1.h"

static int passed, failed;

static void check(const char *what, const char *got, const char *want)
{
    if (!strcmp(got, want)) passed++;
    else { failed++; printf("FAIL  %s: got %s, want %s\n", what, got, want); }
}

int main(void)
{
    char h[41];
    lfl_sha1_hex("abc", 3, h);
    check("abc", h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    lfl_sha1_hex("", 0, h);
    check("empty", h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    lfl_sha1_hex(two, strlen(two), h);
    check("two blocks", h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *m = malloc(1000000);
    memset(m, 'a', 1000000);
    lfl_sha1_hex(m, 1000000, h);
    check("a million a", h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(m);
    /* bytes (i * 7 + 3) & 255, digests from hashlib.sha1 */
    static const struct { int n; const char *sha; } lens[] = {
        {55, "ddf57317ef34bfee3b6df83d359098930eb278bc"}, {56, "a0d492bb0fc889d0eca3bc137066ab6f4f74f369"},
        {57, "11a02dcf95859677a62e75024067c22b165d890f"}, {63, "c55856749bef509bdfe6bfebfc7bf4e793e82132"},
        {64, "bede92be29c3874e1b54ddc77988d606fc857a8e"}, {65, "b05a80522b053d6dc7e0a517d0e70212c7dad11f"},
        {119, "504e27376a6e0f0dba8295b85cb25dc4dfa17d23"}, {120, "82134b02fb3f702491be9bed581eeab59334acb2"},
        {128, "a09133e6730ffe899efb70204cb5646cd5dc24ee"},
    };
    unsigned char buf[128];
    for (int i = 0; i < 128; i++) buf[i] = (unsigned char)((i * 7 + 3) & 255);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        char what[32];
        snprintf(what, sizeof what, "%d bytes", lens[k].n);
        lfl_sha1_hex(buf, (size_t)lens[k].n, h);
        check(what, h, lens[k].sha);
    }
    /* git hash-object of an empty file and of "hello\n" */
    lfl_git_blob_id("", 0, h);
    check("git empty", h, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    lfl_git_blob_id("hello\n", 6, h);
    check("git hello", h, "ce013625030ba8dba906f756967f9e9ca394464a");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
