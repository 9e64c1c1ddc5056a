/* Bindings of the dim-wise and indexing ops: max/min/argmax, softmax,
 * log_softmax, embedding, index_select, nonzero, gather, scatter_add, cat, stack, split.
 * Lua-number dims are 1-based (negative from the end); index TENSORS are data
 * and stay 0-based like PyTorch's (token ids, argmax results): never shifted. */
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)

/* lfl.max(t, dim, keepdim) -> values, indices; without dim: over all elements
 * (the index is then the 0-based flat position). */
static int extremum(lua_State *L, bool is_min)
{
    lfl_tensor *a = T(1), *v = NULL, *i = NULL;
    lfl_status st;
    if (lua_isnoneornil(L, 2)) {
        int64_t all = -1;
        lfl_tensor *flat = NULL;
        st = lfl_reshape(a, 1, &all, &flat);
        if (st == LFL_OK) {
            st = is_min ? lfl_min(flat, 0, false, &v, &i) : lfl_max(flat, 0, false, &v, &i);
            lfl_tensor_release(flat);
        }
    } else {
        int d = lfl_lua_check_dim(L, 2, a->ndim);
        bool keep = lua_toboolean(L, 3);
        st = is_min ? lfl_min(a, d, keep, &v, &i) : lfl_max(a, d, keep, &v, &i);
    }
    lfl_lua_check(L, st);
    lfl_lua_push_tensor(L, v);
    lfl_lua_push_tensor(L, i);
    return 2;
}
static int l_max(lua_State *L) { return extremum(L, false); }
static int l_min(lua_State *L) { return extremum(L, true); }

static int l_argmax(lua_State *L)
{
    lfl_tensor *a = T(1), *out = NULL;
    lfl_status st;
    if (lua_isnoneornil(L, 2)) {
        int64_t all = -1;
        lfl_tensor *flat = NULL;
        st = lfl_reshape(a, 1, &all, &flat);
        if (st == LFL_OK) {
            st = lfl_argmax(flat, 0, false, &out);
            lfl_tensor_release(flat);
        }
    } else {
        st = lfl_argmax(a, lfl_lua_check_dim(L, 2, a->ndim), lua_toboolean(L, 3), &out);
    }
    lfl_lua_check(L, st);
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* softmax has no default dim (as in PyTorch, where leaving it out is deprecated) */
static int softmax(lua_State *L, bool log)
{
    lfl_tensor *a = T(1), *out = NULL;
    const char *name = log ? "log_softmax" : "softmax";
    if (lua_isnoneornil(L, 2)) return luaL_error(L, "%s: dim is required (e.g. t:%s(-1))", name, name);
    int d = lfl_lua_check_dim(L, 2, a->ndim);
    lfl_lua_check(L, log ? lfl_log_softmax(a, d, &out) : lfl_softmax(a, d, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}
static int l_softmax(lua_State *L) { return softmax(L, false); }
static int l_log_softmax(lua_State *L) { return softmax(L, true); }

static int l_embedding(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_embedding(T(1), T(2), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_index_select(lua_State *L)
{
    lfl_tensor *a = T(1), *out = NULL;
    int d = lfl_lua_check_dim(L, 2, a->ndim);
    lfl_lua_check(L, lfl_index_select(a, d, T(3), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* nonzero(mask): 0-based i64 positions of a 1-D bool mask's true elements */
static int l_nonzero(lua_State *L)
{
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_nonzero(T(1), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_gather(lua_State *L)
{
    lfl_tensor *a = T(1), *out = NULL;
    int d = lfl_lua_check_dim(L, 2, a->ndim);
    lfl_lua_check(L, lfl_gather(a, d, T(3), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

static int l_scatter_add(lua_State *L)
{
    lfl_tensor *a = T(1), *out = NULL;
    int d = lfl_lua_check_dim(L, 2, a->ndim);
    lfl_lua_check(L, lfl_scatter_add(a, d, T(3), T(4), &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* The tensors of the list at idx, in a Lua-owned array (no leak on errors);
 * the list keeps them alive while the op runs. */
static lfl_tensor **tensor_list(lua_State *L, int idx, const char *op, int *n)
{
    if (!lua_istable(L, idx)) luaL_error(L, "%s: expected a list of tensors, got a %s", op, luaL_typename(L, idx));
    int cnt = (int)lua_objlen(L, idx);
    if (cnt < 1) luaL_error(L, "%s: the list of tensors is empty", op);
    lfl_tensor **ts = lua_newuserdata(L, sizeof *ts * (size_t)cnt);
    for (int j = 0; j < cnt; j++) {
        lua_rawgeti(L, idx, j + 1);
        if (!lfl_lua_is_tensor(L, -1))
            luaL_error(L, "%s: list entry %d is a %s, not a tensor", op, j + 1, luaL_typename(L, -1));
        ts[j] = lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    *n = cnt;
    return ts;
}

/* lfl.cat({a, b, ...}, dim = 1) */
static int l_cat(lua_State *L)
{
    int n;
    lua_settop(L, 2); /* the list array below must not land on the dim's slot */
    lfl_tensor **ts = tensor_list(L, 1, "cat", &n), *out = NULL;
    int d = lfl_lua_opt_dim(L, 2, ts[0]->ndim, 0);
    lfl_lua_check(L, lfl_cat(n, ts, d, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.stack({a, b, ...}, dim = 1): dim counts in the result (ndim + 1 dims) */
static int l_stack(lua_State *L)
{
    int n;
    lua_settop(L, 2);
    lfl_tensor **ts = tensor_list(L, 1, "stack", &n), *out = NULL;
    int d = lfl_lua_opt_dim(L, 2, ts[0]->ndim + 1, 0);
    lfl_lua_check(L, lfl_stack(n, ts, d, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* t:split(size, dim = 1): pieces of `size` (the last may be smaller);
 * t:split({s1, s2, ...}, dim): exactly those sizes. Returns a list. */
static int l_split(lua_State *L)
{
    lfl_tensor *a = T(1);
    lua_settop(L, 3);
    int d = lfl_lua_opt_dim(L, 3, a->ndim, 0);
    int64_t len = a->shape[d], *sizes;
    int n;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int64_t size = 0;
        if (!lfl_lua_to_int64(L, 2, &size) || size <= 0)
            return luaL_error(L, "split: piece size must be a positive integer, got %s", lua_tostring(L, 2));
        int64_t pieces = len == 0 ? 1 : len / size + (len % size != 0);
        if (pieces > (1 << 24)) return luaL_error(L, "split: %f pieces is too many", (double)pieces);
        n = (int)pieces;
        sizes = lua_newuserdata(L, sizeof *sizes * (size_t)n);
        for (int j = 0; j < n; j++) sizes[j] = len - (int64_t)j * size < size ? len - (int64_t)j * size : size;
    } else if (lua_istable(L, 2)) {
        n = (int)lua_objlen(L, 2);
        if (n < 1) return luaL_error(L, "split: the list of sizes is empty");
        sizes = lua_newuserdata(L, sizeof *sizes * (size_t)n);
        for (int j = 0; j < n; j++) {
            lua_rawgeti(L, 2, j + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "split: size %d is a %s, not a number", j + 1, luaL_typename(L, -1));
            if (!lfl_lua_to_int64(L, -1, &sizes[j]))
                luaL_error(L, "split: size %d is %s, not an integer", j + 1, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else {
        return luaL_error(L, "split: expected a piece size or a list of sizes, got a %s", luaL_typename(L, 2));
    }
    lfl_tensor **outs = lua_newuserdata(L, sizeof *outs * (size_t)n);
    lfl_lua_check(L, lfl_split(a, d, n, sizes, outs));
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) {
        lfl_lua_push_tensor(L, outs[j]);
        lua_rawseti(L, -2, j + 1);
    }
    return 1;
}

static const luaL_Reg ops[] = {
    {"max", l_max}, {"min", l_min}, {"argmax", l_argmax}, {"softmax", l_softmax}, {"log_softmax", l_log_softmax},
    {"embedding", l_embedding}, {"index_select", l_index_select}, {"nonzero", l_nonzero}, {"gather", l_gather},
    {"scatter_add", l_scatter_add}, {"cat", l_cat}, {"stack", l_stack}, {"split", l_split},
    {NULL, NULL},
};

LFL_LUA_MODULE(ops_reduce) { lfl_lua_register_ops(L, ops); }
