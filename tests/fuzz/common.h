/* Helpers shared by the libFuzzer targets of tests/fuzz: the input as a
 * scratch file (for readers that take a path), one Lua state with lfl loaded
 * per process, and Lua harnesses (tests/fuzz/<name>.lua) that return a
 * function of the input which raises only when it finds a bug. */
#ifndef LFL_FUZZ_COMMON_H
#define LFL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "bridge.h"

/* One thread for OpenMP and OpenBLAS (a fuzzer process is one core). */
void fuzz_init(void);
/* Writes the input to a per-process scratch file ending in suffix; the path. */
const char *fuzz_scratch(const uint8_t *data, size_t n, const char *suffix);
/* Aborts (a crash libFuzzer reports) unless the last core error names `what`. */
void fuzz_check_error(const char *what);
/* The process's Lua state (created on first use). */
lua_State *fuzz_lua(void);
/* Runs the harness tests/fuzz/<name>.lua on the input (and path, unless
 * NULL: a scratch file holding it): aborts when the harness raises. */
void fuzz_lua_run(const char *name, const uint8_t *data, size_t n, const char *path);

#endif
