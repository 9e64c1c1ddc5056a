/* The dispatch table (see optable.h): the CPU column, built from the op list
 * (every op's lfl_cpu_<name>, defined in its own file), the uniform error of a
 * missing entry, and the introspection behind lfl.sys.ops and lfl --version. */
#include <string.h>
#include "optable.h"

lfl_kernel lfl_cpu_kernels[LFL_OP_COUNT] = {
#define CPU_ENTRY_(name, params) [LFL_OP_##name] = {.name = lfl_cpu_##name},
    LFL_OP_LIST(CPU_ENTRY_)
#undef CPU_ENTRY_
};

#ifndef LFL_HAVE_CUDA
/* a CPU-only build: the CUDA column is empty (kernels/optable.c fills it in a
 * CUDA build) */
lfl_kernel lfl_cuda_kernels[LFL_OP_COUNT];
#endif

lfl_kernel *const lfl_op_table[LFL_DEVKIND_COUNT] = {
    [LFL_DEVKIND_CPU] = lfl_cpu_kernels,
    [LFL_DEVKIND_CUDA] = lfl_cuda_kernels,
};

static const char *const names[LFL_OP_COUNT] = {
#define NAME_(name, params) [LFL_OP_##name] = #name,
    LFL_OP_LIST(NAME_)
#undef NAME_
};

const char *lfl_op_name(int op) { return op >= 0 && op < LFL_OP_COUNT ? names[op] : NULL; }

int lfl_op_find(const char *name)
{
    for (int op = 0; op < LFL_OP_COUNT; op++)
        if (strcmp(names[op], name) == 0) return op;
    return -1;
}

/* Each slot is read through its own member: the union is never type-punned. */
static bool slot_set(int op, const lfl_kernel *k)
{
    switch ((lfl_op)op) {
#define SET_(name, params) case LFL_OP_##name: return k->name != NULL;
        LFL_OP_LIST(SET_)
#undef SET_
    case LFL_OP_COUNT: break;
    }
    return false;
}

bool lfl_op_implemented(int op, int kind)
{
    if (op < 0 || op >= LFL_OP_COUNT || kind < 0 || kind >= LFL_DEVKIND_COUNT) return false;
    return slot_set(op, &lfl_op_table[kind][op]);
}

int lfl_op_coverage(int kind, char *buf, size_t n)
{
    int count = 0;
    size_t used = 0;
    if (n) buf[0] = 0;
    for (int op = 0; op < LFL_OP_COUNT; op++) {
        if (!lfl_op_implemented(op, kind)) continue;
        count++;
        if (used < n) {
            int k = snprintf(buf + used, n - used, used ? " %s" : "%s", names[op]);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    return count;
}

lfl_status lfl_op_missing(lfl_op op, int device, const char *caller)
{
    char dev[32];
    lfl_device_str(device, dev, sizeof dev);
    const char *entry = lfl_op_name(op);
    if (!caller || strcmp(caller, entry) == 0)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: not implemented on %s (no kernel in the dispatch table)", entry, dev);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: not implemented on %s (no %s kernel in the dispatch table)", caller, dev,
                    entry);
}

lfl_kernel lfl_op_set(int op, int kind, lfl_kernel k)
{
    LFL_ASSERT(op >= 0 && op < LFL_OP_COUNT && kind >= 0 && kind < LFL_DEVKIND_COUNT);
    lfl_kernel old = lfl_op_table[kind][op];
    lfl_op_table[kind][op] = k;
    return old;
}
