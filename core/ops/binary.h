/* The shared broadcasting loop behind add/sub/mul/div (and CUDA dispatch). */
#ifndef LFL_OPS_BINARY_H
#define LFL_OPS_BINARY_H

#include "../ops.h"

typedef enum { LFL_B_ADD, LFL_B_SUB, LFL_B_MUL, LFL_B_DIV } lfl_binary_kind;

/* out = a (kind) b, broadcast; a and b share a dtype (f32, f64, i32, i64). No grad. */
lfl_status lfl_binary_raw(const char *op, lfl_binary_kind kind, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);

#endif
