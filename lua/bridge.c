/* Lua state set-up: module registry, package paths, tensor boxing, errors. */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bridge.h"

#define MAX_MODULES 64
static struct { const char *name; lfl_lua_module_fn fn; } modules[MAX_MODULES];
static int n_modules;
static size_t gc_mark;  /* tensor heap bytes after the last forced collection */
static size_t gc_seen;  /* tensor heap bytes at the previous push */
static size_t gc_debt;  /* tensor bytes allocated since the last GC step */
bool lfl_lua_closing;  /* set while a state closes: callbacks must not run */

void lfl_lua_add_module(const char *name, lfl_lua_module_fn fn)
{
    LFL_ASSERT(n_modules < MAX_MODULES);
    modules[n_modules].name = name;
    modules[n_modules].fn = fn;
    n_modules++;
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *lfl_lua_home(void)
{
    static char home[4200];
    if (home[0]) return home;
    const char *env = getenv("LFL_HOME");
    char probe[4200];
    if (env && *env) {
        snprintf(home, sizeof home, "%s", env);
        return home;
    }
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        /* installed (cmake --install): P/bin/lfl reads P/share/lfl, checked
         * first so that no folder above P (a source tree) can win over it */
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            char *bin = strrchr(exe, '/');
            if (bin) {
                *bin = 0;
                snprintf(probe, sizeof probe, "%s/share/lfl/stdlib/lfl", exe);
                if (is_dir(probe)) { snprintf(home, sizeof home, "%s/share/lfl", exe); return home; }
                *bin = '/';
            }
            *slash = '/';
        }
        /* a build tree (build/lfl -> ..), then where it was built from */
        for (int up = 0; up < 3; up++) {
            slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            snprintf(probe, sizeof probe, "%s/stdlib/lfl", exe);
            if (is_dir(probe)) { snprintf(home, sizeof home, "%s", exe); return home; }
            snprintf(probe, sizeof probe, "%s/share/lfl/stdlib/lfl", exe);
            if (is_dir(probe)) { snprintf(home, sizeof home, "%s/share/lfl", exe); return home; }
        }
    }
#ifdef LFL_SOURCE_DIR
    snprintf(home, sizeof home, "%s", LFL_SOURCE_DIR);
#else
    snprintf(home, sizeof home, ".");
#endif
    return home;
}

/* ---- tensors ---- */

/* Lua sees only a small box per tensor, so its collector does not know how much
 * memory a dead box holds. Two measures keep garbage tensors bounded:
 * - a full cycle when the tensor heap exceeds what was live after the last
 *   forced cycle by max(256 MB, a quarter of it): bounded waste for small heaps
 *   and a bounded number of full cycles for big ones (a 20 GB model does not
 *   collect every 256 MB);
 * - incremental steps paid for by tensor allocation (1 KB of Lua GC work per
 *   64 KB of new tensor bytes), so a loop of temporaries is collected long
 *   before the hard limit without a full cycle per tensor. */
#define GC_MIN_ALLOWANCE ((size_t)256 << 20)
#define GC_STEP_RATIO 64

void lfl_lua_push_tensor(lua_State *L, lfl_tensor *t)
{
    size_t now = lfl_mem_current();
    size_t allowance = gc_mark / 4 > GC_MIN_ALLOWANCE ? gc_mark / 4 : GC_MIN_ALLOWANCE;
    if (now > gc_mark + allowance) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        gc_mark = gc_seen = lfl_mem_current();
        gc_debt = 0;
    } else {
        if (now > gc_seen) gc_debt += now - gc_seen;
        gc_seen = now;
        if (now < gc_mark) gc_mark = now;
        if (gc_debt >= (size_t)GC_STEP_RATIO << 10) {
            lua_gc(L, LUA_GCSTEP, (int)(gc_debt / ((size_t)GC_STEP_RATIO << 10)));
            gc_debt = 0;
        }
    }
    lfl_lua_release_refs(L);
    lfl_tensor **box = lua_newuserdata(L, sizeof *box);
    *box = t;
    luaL_getmetatable(L, LFL_TENSOR_MT);
    lua_setmetatable(L, -2);
}

bool lfl_lua_is_tensor(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return false;
    luaL_getmetatable(L, LFL_TENSOR_MT);
    bool eq = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return eq;
}

lfl_tensor *lfl_lua_check_tensor(lua_State *L, int idx)
{
    if (!lfl_lua_is_tensor(L, idx)) {
        luaL_typerror(L, idx, "Tensor");
        return NULL;
    }
    lfl_tensor *t = *(lfl_tensor **)lua_touserdata(L, idx);
    if (!t) luaL_argerror(L, idx, "tensor was freed");
    return t;
}

lfl_tensor *lfl_lua_opt_tensor(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : lfl_lua_check_tensor(L, idx);
}

void lfl_lua_check(lua_State *L, lfl_status st)
{
    if (st != LFL_OK) luaL_error(L, "%s", lfl_last_error());
}

int lfl_lua_check_dim(lua_State *L, int idx, int ndim)
{
    int d = (int)luaL_checkinteger(L, idx);
    if (d < 0) d += ndim + 1;
    if (d < 1 || d > ndim)
        luaL_error(L, "dim %d out of range for a %d-dim tensor (dims are 1-based)", (int)lua_tointeger(L, idx), ndim);
    return d - 1;
}

int lfl_lua_opt_dim(lua_State *L, int idx, int ndim, int def0)
{
    return lua_isnoneornil(L, idx) ? def0 : lfl_lua_check_dim(L, idx, ndim);
}

static bool int64_value(double v, int64_t *out)
{
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != floor(v)) return false;
    *out = (int64_t)v;
    return true;
}

bool lfl_lua_to_int64(lua_State *L, int idx, int64_t *out)
{
    return lua_type(L, idx) == LUA_TNUMBER && int64_value(lua_tonumber(L, idx), out);
}

int64_t lfl_lua_check_int64(lua_State *L, int idx, const char *what)
{
    int64_t v = 0;
    if (!int64_value(luaL_checknumber(L, idx), &v))
        luaL_error(L, "%s is %s, expected an integer", what, lua_tostring(L, idx));
    return v;
}

/* A shape entry: an integer that fits int64 (a fraction, NaN or inf would
 * turn into some other size in the conversion). Signs are the op's business
 * (-1 infers a view's dim, permute takes negative dims). */
static int64_t shape_entry(lua_State *L, int idx, int i)
{
    int64_t v = 0;
    if (!int64_value(lua_tonumber(L, idx), &v))
        luaL_error(L, "shape entry %d is %s, expected an integer", i, lua_tostring(L, idx));
    return v;
}

int lfl_lua_check_shape(lua_State *L, int idx, int64_t *shape)
{
    int n = 0;
    if (lua_istable(L, idx)) {
        n = (int)lua_objlen(L, idx);
        if (n > LFL_MAX_DIMS) luaL_error(L, "shape has %d dims (at most %d)", n, LFL_MAX_DIMS);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, idx, i + 1);
            if (!lua_isnumber(L, -1)) luaL_error(L, "shape entry %d is not a number", i + 1);
            shape[i] = shape_entry(L, -1, i + 1);
            lua_pop(L, 1);
        }
        return n;
    }
    int top = lua_gettop(L);
    for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
        if (n == LFL_MAX_DIMS) luaL_error(L, "shape has more than %d dims", LFL_MAX_DIMS);
        shape[n] = shape_entry(L, i, n + 1);
        n++;
    }
    return n;
}

lfl_dtype lfl_lua_opt_dtype(lua_State *L, int idx, lfl_dtype def)
{
    if (lua_isnoneornil(L, idx)) return def;
    const char *name = luaL_checkstring(L, idx);
    int d = lfl_dtype_from_name(name);
    if (d < 0) luaL_error(L, "unknown dtype '%s' (f32 f64 f16 bf16 i32 i64 u8 bool)", name);
    return (lfl_dtype)d;
}

void lfl_lua_register_ops(lua_State *L, const luaL_Reg *fns)
{
    lua_getglobal(L, "lfl");
    luaL_getmetatable(L, LFL_TENSOR_MT);
    lua_getfield(L, -1, "methods");
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, r->name);  /* methods */
        lua_setfield(L, -4, r->name);  /* lfl */
    }
    lua_pop(L, 3);
}

void lfl_lua_register_funcs(lua_State *L, const char *sub, const luaL_Reg *fns)
{
    lua_getglobal(L, "lfl");
    if (sub) {
        lua_getfield(L, -1, sub);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, sub);
        }
    }
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_pop(L, sub ? 2 : 1);
}

/* ---- interrupt (Ctrl-C): a hook that raises at the next Lua instruction ---- */

/* set by lfl_lua_interrupt, cleared when the hook fires: still set at the next
 * Ctrl-C means the code runs where hooks are not checked (a JIT-compiled loop) */
static volatile sig_atomic_t interrupt_pending;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    interrupt_pending = 0;
    luaL_error(L, "interrupted");
}

bool lfl_lua_interrupt(lua_State *L)
{
    if (interrupt_pending) return false;
    interrupt_pending = 1;
    lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    return true;
}

/* Polled by long loops (generation, training) that may run as JIT-compiled
 * code, where the hook never fires: raises "interrupted" once per Ctrl-C. */
static int l_check_interrupt(lua_State *L)
{
    if (!interrupt_pending) return 0;
    lua_sethook(L, NULL, 0, 0);
    interrupt_pending = 0;
    return luaL_error(L, "interrupted");
}

void lfl_lua_interrupt_clear(lua_State *L)
{
    if (!interrupt_pending) return; /* leave the user's own debug hooks alone */
    lua_sethook(L, NULL, 0, 0);
    interrupt_pending = 0;
}

/* ---- state ---- */

void lfl_lua_tensor_open(lua_State *L); /* l_tensor.c */

lua_State *lfl_lua_new(void)
{
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    luaL_openlibs(L);
    const char *home = lfl_lua_home();
    /* package.path: stdlib, recipes, the user's recipes, LFL_PATH */
    lua_getglobal(L, "package");
    const char *user = getenv("HOME");
    const char *extra = getenv("LFL_PATH");
    lua_pushfstring(L, "%s/stdlib/?.lua;%s/stdlib/?/init.lua;%s/?.lua;%s/.lfl/?.lua;%s%s",
                    home, home, home, user ? user : "/nonexistent",
                    extra ? extra : "", extra ? ";" : "");
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    lua_newtable(L);
    lua_pushstring(L, LFL_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, home);
    lua_setfield(L, -2, "home");
    lua_setglobal(L, "lfl");
    lfl_lua_tensor_open(L);
    static const luaL_Reg sysfns[] = {{"check_interrupt", l_check_interrupt}, {NULL, NULL}};
    lfl_lua_register_funcs(L, "sys", sysfns);
    for (int i = 0; i < n_modules; i++) modules[i].fn(L);
    /* the Lua half of the library */
    lua_getglobal(L, "require");
    lua_pushstring(L, "lfl");
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "lfl: cannot load the standard library from %s/stdlib: %s\n", home, lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

void lfl_lua_close(lua_State *L)
{
    lfl_lua_closing = true;
    lua_close(L);
    lfl_lua_closing = false;
}
