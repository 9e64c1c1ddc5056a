/* Device memory hooks: implemented by kernels/ when CUDA is built, else errors. */
#ifndef LFL_DEVICE_H
#define LFL_DEVICE_H

#include <stddef.h>
#include "status.h"

int lfl_device_count(void);               /* 0 without CUDA or without a GPU */
const char *lfl_device_describe(void);    /* "CUDA 13.0, 1 device(s): ..." or why not */
lfl_status lfl_device_alloc(int device, size_t nbytes, void **ptr);
void lfl_device_free(int device, void *ptr);
lfl_status lfl_device_memset(int device, void *ptr, int v, size_t nbytes);
/* kind: 0 host->device, 1 device->host, 2 device->device */
lfl_status lfl_device_memcpy(int device, void *dst, const void *src, size_t nbytes, int kind);

#endif
