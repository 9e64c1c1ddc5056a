/* core/io/tfevents.c below the bridge: CRC32C test vectors, records sized
 * before they are written (a short buffer is never overrun and reports the
 * size), the framing's length and crcs, and appends that fail with a message.
 * Conformance with TensorBoard's writer is tests/lua/test_tfevents.lua (goldens). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/tfevents.h"

static int failed, cases;

#define CHECK(cond, ...) do { cases++; if (!(cond)) { failed++; printf("FAIL  " __VA_ARGS__); printf("\n"); } } while (0)

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int main(void)
{
    /* RFC 3720 B.4 */
    CHECK(lfl_tfevents_crc32c((const uint8_t *)"123456789", 9) == 0xe3069283u, "crc32c of 123456789");
    uint8_t zeros[32] = {0};
    CHECK(lfl_tfevents_crc32c(zeros, 32) == 0x8a9136aau, "crc32c of 32 zero bytes");
    CHECK(lfl_tfevents_crc32c(zeros, 0) == 0, "crc32c of nothing");

    /* sizing: NULL/0 gives the size; every shorter buffer is left untouched past its end */
    size_t need = lfl_tfevents_scalar_record(NULL, 0, 1.5, 300, "train/loss", 2.0f);
    CHECK(need == 16 + 9 + 3 + 2 + 2 + 2 + 10 + 5, "scalar record size %zu", need);
    uint8_t buf[128];
    for (size_t cap = 0; cap < need; cap++) {
        memset(buf, 0xAB, sizeof buf);
        size_t n = lfl_tfevents_scalar_record(buf, cap, 1.5, 300, "train/loss", 2.0f);
        int untouched = 1;
        for (size_t i = cap; i < sizeof buf; i++) untouched &= buf[i] == 0xAB;
        CHECK(n == need && untouched, "cap %zu: size %zu, buffer past cap untouched %d", cap, n, untouched);
    }
    size_t n = lfl_tfevents_scalar_record(buf, sizeof buf, 1.5, 300, "train/loss", 2.0f);
    CHECK(n == need, "full write %zu", n);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | buf[i];
    CHECK(len == need - 16, "length field %llu", (unsigned long long)len);
    CHECK(le32(buf + 8) == lfl_tfevents_masked_crc(buf, 8), "length crc");
    CHECK(le32(buf + 12 + len) == lfl_tfevents_masked_crc(buf + 12, len), "data crc");
    size_t vn = lfl_tfevents_version_record(NULL, 0, 1.5, NULL);
    CHECK(vn == 16 + 9 + 15, "version record without writer: %zu", vn);
    CHECK(lfl_tfevents_version_record(NULL, 0, 1.5, "lfl") == vn + 7, "writer adds its submessage");

    /* appends */
    char path[] = "/tmp/lfl_tfevents_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    const char *tags[2] = {"a", "b"};
    float vals[2] = {1, 2};
    CHECK(lfl_tfevents_write_version(path, 1.5, "lfl") == LFL_OK, "write_version: %s", lfl_last_error());
    CHECK(lfl_tfevents_write_scalars(path, 1.5, 7, 2, tags, vals) == LFL_OK, "write_scalars: %s", lfl_last_error());
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    remove(path);
    size_t want = vn + 7 + 2 * lfl_tfevents_scalar_record(NULL, 0, 1.5, 7, "a", 1);
    CHECK(size == (long)want, "file size %ld, want %zu", size, want);
    CHECK(lfl_tfevents_write_scalars("/nonexistent/x/ev", 1, 1, 2, tags, vals) == LFL_ERR_IO &&
              strstr(lfl_last_error(), "cannot open /nonexistent/x/ev"), "unwritable path: %s", lfl_last_error());

    printf("%d/%d checks passed\n", cases - failed, cases);
    return failed ? 1 : 0;
}
