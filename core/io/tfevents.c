/* TensorBoard event files: a hand-written protobuf encoder for the few Event
 * fields a scalar log needs, TFRecord framing with masked CRC32C, and appends
 * that reach the file (fflush) before the call returns. */
#include "tfevents.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* bit by bit: event records are a few dozen bytes, and no shared table means no
 * first-use race between threads that log */
uint32_t lfl_tfevents_crc32c(const uint8_t *data, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= data[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

uint32_t lfl_tfevents_masked_crc(const uint8_t *data, size_t n)
{
    uint32_t c = lfl_tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* a growing-by-position encoder: writes past cap are counted, not stored */
typedef struct {
    uint8_t *buf;
    size_t cap, n;
} enc;

static void put(enc *e, const void *p, size_t n)
{
    if (e->n + n <= e->cap) memcpy(e->buf + e->n, p, n);
    e->n += n;
}

static void put_varint(enc *e, uint64_t v)
{
    uint8_t b[10];
    int k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) b[k] |= 0x80;
        k++;
    } while (v);
    put(e, b, (size_t)k);
}

static size_t varint_size(uint64_t v)
{
    size_t k = 1;
    while (v >>= 7) k++;
    return k;
}

static void put_le(enc *e, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(e, b, (size_t)bytes);
}

static void put_key(enc *e, int field, int wire) { put_varint(e, (uint64_t)(field << 3 | wire)); }

static void put_bytes(enc *e, int field, const char *s, size_t n)
{
    put_key(e, field, 2);
    put_varint(e, n);
    put(e, s, n);
}

static void put_double(enc *e, int field, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put_key(e, field, 1);
    put_le(e, u, 8);
}

/* Event.wall_time (1) and, when non-zero as proto3 omits defaults, Event.step (2) */
static void put_head(enc *e, double wall_time, int64_t step)
{
    put_double(e, 1, wall_time);
    if (step != 0) {
        put_key(e, 2, 0);
        put_varint(e, (uint64_t)step);
    }
}

/* frames the Event bytes at buf[12 ..) in place: 8-byte length and its crc before, the data's crc after */
static size_t frame(uint8_t *buf, size_t cap, size_t data_len)
{
    size_t total = 12 + data_len + 4;
    if (total > cap) return total;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)data_len >> (8 * i));
    memcpy(buf, len, 8);
    uint32_t c = lfl_tfevents_masked_crc(len, 8);
    for (int i = 0; i < 4; i++) buf[8 + i] = (uint8_t)(c >> (8 * i));
    c = lfl_tfevents_masked_crc(buf + 12, data_len);
    for (int i = 0; i < 4; i++) buf[12 + data_len + i] = (uint8_t)(c >> (8 * i));
    return total;
}

size_t lfl_tfevents_version_record(uint8_t *buf, size_t cap, double wall_time, const char *writer)
{
    enc e = {buf + (cap >= 12 ? 12 : 0), cap >= 16 ? cap - 16 : 0, 0};
    put_head(&e, wall_time, 0);
    put_bytes(&e, 3, "brain.Event:2", 13);
    if (writer) {
        /* Event.source_metadata (10) = SourceMetadata{writer (1)} */
        size_t wn = strlen(writer);
        put_key(&e, 10, 2);
        put_varint(&e, 1 + varint_size(wn) + wn);
        put_bytes(&e, 1, writer, wn);
    }
    if (e.n > e.cap) return 16 + e.n;
    return frame(buf, cap, e.n);
}

size_t lfl_tfevents_scalar_record(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                                  const char *tag, float value)
{
    enc e = {buf + (cap >= 12 ? 12 : 0), cap >= 16 ? cap - 16 : 0, 0};
    size_t tn = strlen(tag);
    /* Summary.Value{tag (1), simple_value (2, fixed32)} */
    size_t vlen = 1 + varint_size(tn) + tn + 1 + 4;
    size_t slen = 1 + varint_size(vlen) + vlen; /* Summary{value (1)} */
    put_head(&e, wall_time, step);
    put_key(&e, 5, 2);
    put_varint(&e, slen);
    put_key(&e, 1, 2);
    put_varint(&e, vlen);
    put_bytes(&e, 1, tag, tn);
    uint32_t u;
    memcpy(&u, &value, 4);
    if (value != value) u = 0x7fc00000u; /* x86's 0/0 sets the sign bit; Python's float('nan') does not */
    put_key(&e, 2, 5);
    put_le(&e, u, 4);
    if (e.n > e.cap) return 16 + e.n;
    return frame(buf, cap, e.n);
}

static lfl_status append(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "ab");
    if (!f) return lfl_fail(LFL_ERR_IO, "tfevents: cannot open %s: %s", path, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n && fflush(f) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) { ok = 0; err = errno; }
    if (!ok) return lfl_fail(LFL_ERR_IO, "tfevents: cannot write %s: %s", path, strerror(err));
    return LFL_OK;
}

lfl_status lfl_tfevents_write_version(const char *path, double wall_time, const char *writer)
{
    uint8_t buf[512];
    if (writer && strlen(writer) > 256) return lfl_fail(LFL_ERR_ARG, "tfevents: writer name over 256 bytes");
    size_t n = lfl_tfevents_version_record(buf, sizeof buf, wall_time, writer);
    LFL_ASSERT(n <= sizeof buf);
    return append(path, buf, n);
}

lfl_status lfl_tfevents_write_scalars(const char *path, double wall_time, int64_t step, int n,
                                      const char *const *tags, const float *values)
{
    size_t need = 0;
    for (int i = 0; i < n; i++) need += lfl_tfevents_scalar_record(NULL, 0, wall_time, step, tags[i], values[i]);
    uint8_t *buf = malloc(need ? need : 1);
    if (!buf) return lfl_fail(LFL_ERR_MEM, "tfevents: out of memory for %zu bytes", need);
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += lfl_tfevents_scalar_record(buf + off, need - off, wall_time, step, tags[i], values[i]);
    /* one write for a log's scalars: a crash leaves whole records, at most a torn last one */
    lfl_status s = append(path, buf, off);
    free(buf);
    return s;
}
