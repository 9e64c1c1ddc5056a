/* The bridge: the only C that includes lua.h. Registers core objects as
 * userdata, turns lfl_status into Lua errors, and runs Lua callbacks. */
#ifndef LFL_BRIDGE_H
#define LFL_BRIDGE_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include "lfl.h"

#define LFL_TENSOR_MT "lfl.Tensor"

/* A new state with the lfl library loaded (global `lfl`), package paths set. */
lua_State *lfl_lua_new(void);
void lfl_lua_close(lua_State *L);
/* The root holding stdlib/ and recipes/: $LFL_HOME, else P/share/lfl for an
 * installed P/bin/lfl, else the source root above a build tree's binary, else
 * the folder it was built from. */
const char *lfl_lua_home(void);

/* Pushes t and takes ownership of the caller's reference. */
void lfl_lua_push_tensor(lua_State *L, lfl_tensor *t);
lfl_tensor *lfl_lua_check_tensor(lua_State *L, int idx);
lfl_tensor *lfl_lua_opt_tensor(lua_State *L, int idx); /* NULL for nil/none */
bool lfl_lua_is_tensor(lua_State *L, int idx);
/* Raises the last core error as a Lua error when st != LFL_OK. */
void lfl_lua_check(lua_State *L, lfl_status st);
/* 1-based (negative from the end) Lua dim -> 0-based core dim, checked. */
int lfl_lua_check_dim(lua_State *L, int idx, int ndim);
int lfl_lua_opt_dim(lua_State *L, int idx, int ndim, int def0);
/* Reads a shape given as numbers (idx..top) or one table at idx; every
 * entry must be an integer in int64's range (signs are left to the op). */
int lfl_lua_check_shape(lua_State *L, int idx, int64_t *shape);
/* The number at idx as an int64: an error naming `what` for a fraction, NaN,
 * inf or a value outside int64 (a plain C cast of those is undefined). */
int64_t lfl_lua_check_int64(lua_State *L, int idx, const char *what);
/* The same without raising: false when the value at idx is not such a number. */
bool lfl_lua_to_int64(lua_State *L, int idx, int64_t *out);
/* dtype from a name string (or default when nil) */
lfl_dtype lfl_lua_opt_dtype(lua_State *L, int idx, lfl_dtype def);

/* Registers functions both as lfl.<name>(t, ...) and as methods t:<name>(...) */
void lfl_lua_register_ops(lua_State *L, const luaL_Reg *fns);
/* Registers functions into the lfl table only / into a sub-table lfl.<sub> */
void lfl_lua_register_funcs(lua_State *L, const char *sub, const luaL_Reg *fns);

/* Bridge modules announce themselves with LFL_LUA_MODULE(name) { ... } and are
 * run in link order when a state is created (after the tensor type exists). */
typedef void (*lfl_lua_module_fn)(lua_State *L);
void lfl_lua_add_module(const char *name, lfl_lua_module_fn fn);
#define LFL_LUA_MODULE(name)                                                  \
    static void lfl_mod_##name(lua_State *L);                                 \
    __attribute__((constructor)) static void lfl_mod_reg_##name(void)         \
    {                                                                         \
        lfl_lua_add_module(#name, lfl_mod_##name);                            \
    }                                                                         \
    static void lfl_mod_##name(lua_State *L)

/* Ctrl-C support (async-signal-safe): makes the running Lua code raise
 * "interrupted" at its next instruction. Returns false when the previous
 * request has not been served yet (the code runs in JIT-compiled machine code,
 * which does not check hooks). lfl_lua_interrupt_clear drops a pending request. */
bool lfl_lua_interrupt(lua_State *L);
void lfl_lua_interrupt_clear(lua_State *L);

/* Releases the registry references of Lua callbacks whose autograd nodes were
 * freed (a node can die inside any __gc, where they are only queued). */
void lfl_lua_release_refs(lua_State *L);

#endif
