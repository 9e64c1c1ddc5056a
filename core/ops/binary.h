/* The shared front and CPU loop behind add/sub/mul/div. */
#ifndef LFL_OPS_BINARY_H
#define LFL_OPS_BINARY_H

#include "optable.h"

typedef enum { LFL_B_ADD, LFL_B_SUB, LFL_B_MUL, LFL_B_DIV } lfl_binary_kind;

/* out = a (kind) b, broadcast; a and b share a dtype (f32, f64, i32, i64) and a
 * device; runs the kind's entry of the dispatch table. No grad. */
lfl_status lfl_binary_raw(const char *op, lfl_binary_kind kind, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);

/* The CPU kernel of all four (each op's lfl_cpu_<op> calls it). */
lfl_status lfl_binary_cpu(lfl_binary_kind kind, lfl_tensor *a, lfl_tensor *b, lfl_tensor *out);

#endif
