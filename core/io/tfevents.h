/* TensorBoard event files (TFRecord framing of Event protobufs), written
 * without TensorFlow: the scalars a training run reports (report_to tensorboard). */
#ifndef LFL_TFEVENTS_H
#define LFL_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>
#include "../status.h"

/* CRC32C (Castagnoli) and TFRecord's mask of it: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t lfl_tfevents_crc32c(const uint8_t *data, size_t n);
uint32_t lfl_tfevents_masked_crc(const uint8_t *data, size_t n);

/* The framed record (length, masked crc of length, data, masked crc of data) of one Event:
 * file_version "brain.Event:2" with source_metadata.writer = writer (NULL: none), or one
 * scalar (summary.value {tag, simple_value}). Writes at most cap bytes and returns the
 * record's full size (a size above cap means nothing usable was written). */
size_t lfl_tfevents_version_record(uint8_t *buf, size_t cap, double wall_time, const char *writer);
size_t lfl_tfevents_scalar_record(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                                  const char *tag, float value);

/* Appends records to path (created if missing) and flushes them: the version record,
 * or one scalar Event per tag, as TensorBoard's SummaryWriter.add_scalar writes them. */
lfl_status lfl_tfevents_write_version(const char *path, double wall_time, const char *writer);
lfl_status lfl_tfevents_write_scalars(const char *path, double wall_time, int64_t step, int n,
                                      const char *const *tags, const float *values);

#endif
