/* Status codes, the thread-local last-error message and LFL_ASSERT. */
#ifndef LFL_STATUS_H
#define LFL_STATUS_H

#include <stdio.h>
#include <stdlib.h>

typedef enum {
    LFL_OK = 0,
    LFL_ERR_ARG,      /* bad argument: shape, dtype, dim, value */
    LFL_ERR_MEM,      /* out of memory */
    LFL_ERR_IO,       /* file could not be opened, read, written */
    LFL_ERR_FORMAT,   /* file content does not match its format */
    LFL_ERR_DEVICE,   /* device mismatch or device unavailable */
    LFL_ERR_UNSUPPORTED,
    LFL_ERR_CALLBACK, /* a Lua callback raised an error */
    LFL_ERR_NET,
} lfl_status;

/* Formats the message and returns `code`, so callers write
 * `return lfl_fail(LFL_ERR_ARG, "matmul: ...", ...);` */
lfl_status lfl_fail(lfl_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *lfl_last_error(void);
void lfl_clear_error(void);

/* Programming errors (broken invariants), never bad user input. */
#define LFL_ASSERT(c)                                                        \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define LFL_TRY(expr)                                                        \
    do {                                                                     \
        lfl_status s_ = (expr);                                              \
        if (s_ != LFL_OK) return s_;                                         \
    } while (0)

#endif
