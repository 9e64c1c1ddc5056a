/* Device memory hooks: implemented by kernels/ when CUDA is built, else errors.
 * Also the device kinds that index the op dispatch table (core/ops/optable.h). */
#ifndef LFL_DEVICE_H
#define LFL_DEVICE_H

#include <stddef.h>
#include "status.h"

/* What kind of device a tensor's device id names: -1 (LFL_CPU) is the host,
 * 0, 1, ... are CUDA devices. One column of the dispatch table per kind. */
typedef enum { LFL_DEVKIND_CPU, LFL_DEVKIND_CUDA, LFL_DEVKIND_COUNT } lfl_devkind;
static inline lfl_devkind lfl_device_kind(int device) { return device < 0 ? LFL_DEVKIND_CPU : LFL_DEVKIND_CUDA; }
/* "cpu", "cuda"; NULL for a value outside the enum */
const char *lfl_devkind_name(int kind);
/* "cpu" or "cuda:N" into buf */
const char *lfl_device_str(int device, char *buf, size_t n);

int lfl_device_count(void);               /* 0 without CUDA or without a GPU */
const char *lfl_device_describe(void);    /* "CUDA 13.0, 1 device(s): ..." or why not */
lfl_status lfl_device_alloc(int device, size_t nbytes, void **ptr);
void lfl_device_free(int device, void *ptr);
lfl_status lfl_device_memset(int device, void *ptr, int v, size_t nbytes);
/* The caching allocator's figures for one device, in bytes: what lfl's
 * tensors hold now and at most since the last reset, what the cache holds from
 * the driver (in use + cached), and the driver's free/total. */
typedef struct {
    size_t in_use, peak, reserved, free, total;
} lfl_device_mem;
lfl_status lfl_device_memory(int device, lfl_device_mem *m);
void lfl_device_reset_peak(int device);
void lfl_device_empty_cache(int device); /* gives cached blocks back to the driver */
/* kind: 0 host->device, 1 device->host, 2 device->device */
lfl_status lfl_device_memcpy(int device, void *dst, const void *src, size_t nbytes, int kind);

#endif
