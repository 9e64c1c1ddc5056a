/* Thread-local last-error buffer behind lfl_fail / lfl_last_error. */
#include <stdarg.h>
#include "status.h"

static _Thread_local char last_error[1024];

lfl_status lfl_fail(lfl_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *lfl_last_error(void) { return last_error[0] ? last_error : "no error"; }

void lfl_clear_error(void) { last_error[0] = 0; }
