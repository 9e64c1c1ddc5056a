/* lfl.sys: build and run-time facts (BLAS kernel, CUDA, which device kinds
 * implement which ops), threads, matmul precision, timing. */
#include <luajit.h>
#include <omp.h>
#include <time.h>
#include <unistd.h>
#include "bridge.h"
#include "gemm_bf16.h"
#include "ops/optable.h"
#include "util/cpus.h"

static int l_blas(lua_State *L)
{
    lua_pushstring(L, lfl_blas_describe());
    lua_pushstring(L, lfl_blas_corename());
    return 2;
}

static int l_cuda(lua_State *L)
{
    lua_pushstring(L, lfl_device_describe());
    lua_pushinteger(L, lfl_device_count());
    return 2;
}

/* sys.ops() -> {cpu = {names...}, cuda = {names...}}: the entries of the op
 * dispatch table each device kind has a kernel for, in table order */
static int l_ops(lua_State *L)
{
    lua_createtable(L, 0, LFL_DEVKIND_COUNT);
    for (int kind = 0; kind < LFL_DEVKIND_COUNT; kind++) {
        lua_newtable(L);
        int k = 0;
        for (int op = 0; op < lfl_op_count(); op++) {
            if (!lfl_op_implemented(op, kind)) continue;
            lua_pushstring(L, lfl_op_name(op));
            lua_rawseti(L, -2, ++k);
        }
        lua_setfield(L, -2, lfl_devkind_name(kind));
    }
    return 1;
}

/* Test hooks: sys.op_remove(name, kind) takes one kernel out of the dispatch
 * table (kind "cpu" or "cuda"), sys.op_restore(name, kind) puts it back, so a
 * test can see the error of a missing kernel on the CPU. */
static lfl_kernel removed[LFL_OP_COUNT][LFL_DEVKIND_COUNT];
static bool is_removed[LFL_OP_COUNT][LFL_DEVKIND_COUNT];

static void check_op_kind(lua_State *L, int *op, int *kind)
{
    const char *name = luaL_checkstring(L, 1), *k = luaL_checkstring(L, 2);
    *op = lfl_op_find(name);
    if (*op < 0) luaL_error(L, "sys: '%s' is not an entry of the op dispatch table (see lfl.sys.ops())", name);
    *kind = -1;
    for (int i = 0; i < LFL_DEVKIND_COUNT; i++)
        if (strcmp(k, lfl_devkind_name(i)) == 0) *kind = i;
    if (*kind < 0) luaL_error(L, "sys: '%s' is not a device kind (\"cpu\" or \"cuda\")", k);
}

static int l_op_remove(lua_State *L)
{
    int op, kind;
    check_op_kind(L, &op, &kind);
    if (!is_removed[op][kind]) {
        lfl_kernel none;
        memset(&none, 0, sizeof none);
        removed[op][kind] = lfl_op_set(op, kind, none);
        is_removed[op][kind] = true;
    }
    return 0;
}

static int l_op_restore(lua_State *L)
{
    int op, kind;
    check_op_kind(L, &op, &kind);
    if (is_removed[op][kind]) {
        lfl_op_set(op, kind, removed[op][kind]);
        is_removed[op][kind] = false;
    }
    return 0;
}

static int l_threads(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        int n = (int)luaL_checkinteger(L, 1);
        if (n < 1) return luaL_error(L, "sys.threads: expected a count >= 1, got %d", n);
        omp_set_num_threads(n);
        lfl_blas_set_threads(n);
        lfl_cpus_fix();
    }
    lua_pushinteger(L, omp_get_max_threads());
    return 1;
}

/* sys.adapt_threads() -> threads, changed, others: between units of work, the
 * thread count follows the CPUs other processes keep busy (core/util/cpus.c);
 * others is the CPUs' worth they used since the last reading (nil: no new one) */
static int l_adapt_threads(lua_State *L)
{
    bool changed;
    double others;
    int n = lfl_cpus_adapt(&changed, &others);
    lua_pushinteger(L, n);
    lua_pushboolean(L, changed);
    if (others >= 0) lua_pushnumber(L, others);
    else lua_pushnil(L);
    return 3;
}

/* sys.cpus() -> available CPUs, "affinity N, cgroup quota M|none", adapting */
static int l_cpus(lua_State *L)
{
    lua_pushinteger(L, lfl_cpus_available());
    lua_pushstring(L, lfl_cpus_describe());
    lua_pushboolean(L, lfl_cpus_adapting());
    return 3;
}

/* sys.matmul_precision(["highest" | "medium"]) -> the precision now, whether
 * "medium" multiplies bf16-rounded operands here (every CPU since the f32
 * fallback rounds them too) and the bf16 GEMM kernel ("onednn", "own", "f32") */
static int l_matmul_precision(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        const char *p = luaL_checkstring(L, 1);
        if (strcmp(p, "highest") == 0) lfl_set_matmul_precision(LFL_PRECISION_HIGHEST);
        else if (strcmp(p, "medium") == 0) lfl_set_matmul_precision(LFL_PRECISION_MEDIUM);
        else return luaL_error(L, "sys.matmul_precision: '%s' is not a precision (want \"highest\" or \"medium\")", p);
    }
    lua_pushstring(L, lfl_get_matmul_precision() == LFL_PRECISION_MEDIUM ? "medium" : "highest");
    lua_pushboolean(L, 1);
    lua_pushstring(L, lfl_gemm_path_name(lfl_gemm_bf16_path()));
    return 3;
}

/* sys.bf16_gemm(["onednn" | "own" | "f32"]) -> what runs the bf16 GEMMs
 * ("onednn: oneDNN 2.6.3 ...", lfl_gemm_bf16_describe) and the kernel's name;
 * with a name, that kernel runs from now on (as LFL_GEMM chooses at start),
 * an error when this build or CPU lacks it */
static int l_bf16_gemm(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        const char *p = luaL_checkstring(L, 1);
        lfl_gemm_path want;
        if (strcmp(p, "onednn") == 0) want = LFL_GEMM_PATH_ONEDNN;
        else if (strcmp(p, "own") == 0) want = LFL_GEMM_PATH_OWN;
        else if (strcmp(p, "f32") == 0) want = LFL_GEMM_PATH_F32;
        else return luaL_error(L, "sys.bf16_gemm: '%s' is not a kernel (want \"onednn\", \"own\" or \"f32\")", p);
        if (lfl_gemm_bf16_set_path(want) != LFL_OK) return luaL_error(L, "sys.bf16_gemm: %s", lfl_last_error());
    }
    lua_pushstring(L, lfl_gemm_bf16_describe());
    lua_pushstring(L, lfl_gemm_path_name(lfl_gemm_bf16_path()));
    return 2;
}

static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
    return 1;
}

/* peak resident set size of the process in MB (VmHWM) */
static int l_rss(lua_State *L)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double cur = 0, peak = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) cur = atof(line + 6) / 1024.0;
        if (strncmp(line, "VmHWM:", 6) == 0) peak = atof(line + 6) / 1024.0;
    }
    if (f) fclose(f);
    lua_pushnumber(L, cur);
    lua_pushnumber(L, peak);
    return 2;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* path of the running lfl executable, for tests that spawn a child lfl */
static int l_exe(lua_State *L)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return luaL_error(L, "sys.exe: cannot read /proc/self/exe");
    buf[n] = 0;
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"blas", l_blas}, {"cuda", l_cuda}, {"pid", l_pid}, {"exe", l_exe}, {"threads", l_threads},
    {"adapt_threads", l_adapt_threads}, {"cpus", l_cpus}, {"clock", l_clock}, {"rss", l_rss},
    {"matmul_precision", l_matmul_precision}, {"bf16_gemm", l_bf16_gemm}, {"ops", l_ops}, {"op_remove", l_op_remove},
    {"op_restore", l_op_restore},
    {NULL, NULL},
};

LFL_LUA_MODULE(sys)
{
    (void)lfl_blas_init(); /* a missing BLAS is reported by lfl --version and the first GEMM */
    lfl_lua_register_funcs(L, "sys", funcs);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "sys");
    lua_pushstring(L, LUAJIT_VERSION);
    lua_setfield(L, -2, "luajit");
    lua_pop(L, 2);
}
