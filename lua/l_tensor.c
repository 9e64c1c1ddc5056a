/* The Tensor userdata: metatable, indexing (1-based), creation and views. */
#include <math.h>
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)
#define PUSH_OR_RAISE(call)                                                   \
    do {                                                                      \
        lfl_tensor *out_ = NULL;                                              \
        lfl_lua_check(L, (call));                                             \
        lfl_lua_push_tensor(L, out_);                                         \
        return 1;                                                             \
    } while (0)

static int t_gc(lua_State *L)
{
    lfl_tensor **box = lua_touserdata(L, 1);
    if (box && *box) {
        lfl_tensor_release(*box);
        *box = NULL;
        /* a freed graph may have queued Lua callbacks: let them go now, so the
         * next cycle collects what they hold */
        lfl_lua_release_refs(L);
    }
    return 0;
}

/* ---- creation ---- */

static int l_empty_like_fill(lua_State *L, int kind)
{
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 1, shape);
    int next = lua_istable(L, 1) ? 2 : nd + 1;
    double v = 0;
    if (kind == 2) v = luaL_checknumber(L, next++);
    lfl_dtype dt = lfl_lua_opt_dtype(L, next, LFL_F32);
    lfl_tensor *out_ = NULL;
    if (kind == 0) lfl_lua_check(L, lfl_zeros(nd, shape, dt, LFL_CPU, &out_));
    else lfl_lua_check(L, lfl_full(nd, shape, kind == 1 ? 1.0 : v, dt, LFL_CPU, &out_));
    lfl_lua_push_tensor(L, out_);
    return 1;
}
static int l_zeros(lua_State *L) { return l_empty_like_fill(L, 0); }
static int l_ones(lua_State *L) { return l_empty_like_fill(L, 1); }
static int l_full(lua_State *L) { return l_empty_like_fill(L, 2); }

static int l_random(lua_State *L, int normal)
{
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 1, shape);
    int next = lua_istable(L, 1) ? 2 : nd + 1;
    lfl_dtype dt = LFL_F32;
    if (lua_type(L, next) == LUA_TSTRING) dt = lfl_lua_opt_dtype(L, next, LFL_F32);
    lfl_tensor *out_ = NULL;
    lfl_lua_check(L, lfl_empty(nd, shape, dt, LFL_CPU, &out_));
    lfl_status st = normal ? lfl_randn_(out_, 0, 1) : lfl_rand_(out_, 0, 1);
    if (st) { lfl_tensor_release(out_); lfl_lua_check(L, st); }
    lfl_lua_push_tensor(L, out_);
    return 1;
}
static int l_rand(lua_State *L) { return l_random(L, 0); }
static int l_randn(lua_State *L) { return l_random(L, 1); }

static int l_normal_(lua_State *L)
{
    lfl_lua_check(L, lfl_randn_(T(1), luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1)));
    lua_settop(L, 1);
    return 1;
}

static int l_uniform_(lua_State *L)
{
    lfl_lua_check(L, lfl_rand_(T(1), luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1)));
    lua_settop(L, 1);
    return 1;
}

static int l_manual_seed(lua_State *L)
{
    lfl_rng_seed((uint64_t)luaL_checknumber(L, 1));
    return 0;
}

static int l_rng_state(lua_State *L)
{
    if (lua_gettop(L) >= 2) {
        lfl_rng_state s = {(uint64_t)luaL_checknumber(L, 1), (uint64_t)luaL_checknumber(L, 2)};
        lfl_rng_set(s);
        return 0;
    }
    lfl_rng_state s = lfl_rng_get();
    lua_pushnumber(L, (lua_Number)s.seed);
    lua_pushnumber(L, (lua_Number)s.offset);
    return 2;
}

static int l_arange(lua_State *L)
{
    double a = luaL_checknumber(L, 1), b, step = 1;
    int next;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        b = lua_tonumber(L, 2);
        step = luaL_optnumber(L, 3, 1);
        next = lua_type(L, 3) == LUA_TNUMBER ? 4 : 3;
    } else {
        b = a;
        a = 0;
        next = 2;
    }
    PUSH_OR_RAISE(lfl_arange(a, b, step, lfl_lua_opt_dtype(L, next, LFL_F32), &out_));
}

static int l_eye(lua_State *L)
{
    int64_t n = lfl_lua_check_int64(L, 1, "eye: the row count");
    int64_t m = lua_type(L, 2) == LUA_TNUMBER ? lfl_lua_check_int64(L, 2, "eye: the column count") : n;
    PUSH_OR_RAISE(lfl_eye(n, m, lfl_lua_opt_dtype(L, lua_type(L, 2) == LUA_TNUMBER ? 3 : 2, LFL_F32), &out_));
}

/* shape of a nested Lua table of numbers */
static int table_shape(lua_State *L, int idx, int64_t *shape, int depth)
{
    if (depth >= LFL_MAX_DIMS) luaL_error(L, "tensor: table nested deeper than %d", LFL_MAX_DIMS);
    shape[depth] = (int64_t)lua_objlen(L, idx);
    if (shape[depth] == 0) return depth + 1;
    lua_rawgeti(L, idx, 1);
    int nd = depth + 1;
    if (lua_istable(L, -1)) nd = table_shape(L, lua_gettop(L), shape, depth + 1);
    else if (!lua_isnumber(L, -1) && !lua_isboolean(L, -1)) luaL_error(L, "tensor: element is a %s, expected a number", luaL_typename(L, -1));
    lua_pop(L, 1);
    return nd;
}

static void table_fill(lua_State *L, int idx, lfl_tensor *t, int depth, int64_t *pos)
{
    int64_t n = (int64_t)lua_objlen(L, idx);
    if (n != t->shape[depth]) luaL_error(L, "tensor: ragged table (dim %d has %d and %d entries)", depth + 1, (int)t->shape[depth], (int)n);
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        if (depth + 1 < t->ndim) {
            if (!lua_istable(L, -1)) luaL_error(L, "tensor: ragged table at dim %d", depth + 2);
            table_fill(L, lua_gettop(L), t, depth + 1, pos);
        } else if (lua_isboolean(L, -1)) {
            lfl_set(t, (*pos)++, lua_toboolean(L, -1));
        } else {
            if (!lua_isnumber(L, -1)) luaL_error(L, "tensor: element is a %s, expected a number", luaL_typename(L, -1));
            lfl_set(t, (*pos)++, lua_tonumber(L, -1));
        }
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L)
{
    lfl_dtype dt = lfl_lua_opt_dtype(L, 2, LFL_F32);
    lfl_tensor *t = NULL;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        lfl_lua_check(L, lfl_full(0, NULL, lua_tonumber(L, 1), dt, LFL_CPU, &t));
    } else if (lfl_lua_is_tensor(L, 1)) {
        lfl_lua_check(L, lfl_cast(T(1), dt, &t));
        lfl_tensor *c = NULL;
        lfl_status st = lfl_clone(t, &c);
        lfl_tensor_release(t);
        lfl_lua_check(L, st);
        t = lfl_detach(c);
        lfl_tensor_release(c);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        int64_t shape[LFL_MAX_DIMS];
        int nd = table_shape(L, 1, shape, 0);
        lfl_lua_check(L, lfl_empty(nd, shape, dt, LFL_CPU, &t));
        lfl_lua_push_tensor(L, t); /* owned by Lua while filling (errors may raise) */
        int64_t pos = 0;
        table_fill(L, 1, t, 0, &pos);
        return 1;
    }
    lfl_lua_push_tensor(L, t);
    return 1;
}

/* ---- queries ---- */

static int m_size(lua_State *L)
{
    lfl_tensor *t = T(1);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, (lua_Integer)t->shape[lfl_lua_check_dim(L, 2, t->ndim)]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, (lua_Integer)t->shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int m_stride(lua_State *L)
{
    lfl_tensor *t = T(1);
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, (lua_Integer)t->stride[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int m_dim(lua_State *L) { lua_pushinteger(L, T(1)->ndim); return 1; }
static int m_numel(lua_State *L) { lua_pushnumber(L, (lua_Number)lfl_numel(T(1))); return 1; }
static int m_dtype(lua_State *L) { lua_pushstring(L, lfl_dtype_name(T(1)->dtype)); return 1; }
static int m_is_contiguous(lua_State *L) { lua_pushboolean(L, lfl_is_contiguous(T(1))); return 1; }
/* t:data_ptr(): the address of the first element (as torch's), so two boxes of one view compare equal */
static int m_data_ptr(lua_State *L) { lua_pushnumber(L, (lua_Number)(uintptr_t)lfl_data(T(1))); return 1; }

static int m_device(lua_State *L)
{
    lfl_tensor *t = T(1);
    if (t->device == LFL_CPU) lua_pushstring(L, "cpu");
    else lua_pushfstring(L, "cuda:%d", t->device);
    return 1;
}

static int m_is_leaf(lua_State *L) { lua_pushboolean(L, T(1)->grad_fn == NULL); return 1; }

static int m_grad_fn(lua_State *L)
{
    lfl_tensor *t = T(1);
    if (!t->grad_fn) return 0;
    lua_pushstring(L, t->grad_fn->name);
    return 1;
}

/* element i (flat, row-major) of t as a number; a device tensor's element is
 * copied to the host first (as torch's item() synchronises) */
static double host_get(lua_State *L, lfl_tensor *t, int64_t i)
{
    if (t->device == LFL_CPU) return lfl_get(t, i);
    lfl_tensor *h;
    bool g = lfl_set_grad_enabled(false);
    lfl_status st = lfl_to_device(t, LFL_CPU, &h);
    lfl_set_grad_enabled(g);
    lfl_lua_check(L, st);
    double x = lfl_get(h, i);
    lfl_tensor_release(h);
    return x;
}

/* t:item() -> number for one-element tensors; t:_at(i) -> 1-based flat element */
static int m_item(lua_State *L)
{
    lfl_tensor *t = T(1);
    if (lfl_numel(t) != 1) {
        char b[128];
        return luaL_error(L, "item: tensor %s has %d elements, not 1", lfl_shape_str(t, b, sizeof b), (int)lfl_numel(t));
    }
    lua_pushnumber(L, host_get(L, t, 0));
    return 1;
}

static int m_at(lua_State *L)
{
    lfl_tensor *t = T(1);
    int64_t i = lfl_lua_check_int64(L, 2, "_at: the index");
    if (lfl_dtype_is_block(t->dtype)) return luaL_error(L, "_at: not for a %s tensor", lfl_dtype_name(t->dtype));
    if (i < 1 || i > lfl_numel(t)) return luaL_error(L, "_at: index %d out of range", (int)i);
    lua_pushnumber(L, host_get(L, t, i - 1));
    return 1;
}

/* ---- copies and conversions ---- */

static int m_contiguous(lua_State *L) { PUSH_OR_RAISE(lfl_contiguous(T(1), &out_)); }
static int m_clone(lua_State *L) { PUSH_OR_RAISE(lfl_clone(T(1), &out_)); }
static int m_detach(lua_State *L) { lfl_lua_push_tensor(L, lfl_detach(T(1))); return 1; }
static int m_float(lua_State *L) { PUSH_OR_RAISE(lfl_cast(T(1), LFL_F32, &out_)); }
static int m_double(lua_State *L) { PUSH_OR_RAISE(lfl_cast(T(1), LFL_F64, &out_)); }
static int m_long(lua_State *L) { PUSH_OR_RAISE(lfl_cast(T(1), LFL_I64, &out_)); }

/* t:to("bf16") / t:to("cuda") / t:to("cuda:1") / t:to("cpu") */
static int m_to(lua_State *L)
{
    lfl_tensor *t = T(1);
    const char *what = luaL_checkstring(L, 2);
    if (strcmp(what, "cpu") == 0) PUSH_OR_RAISE(lfl_to_device(t, LFL_CPU, &out_));
    if (strncmp(what, "cuda", 4) == 0) {
        int dev = what[4] == ':' ? atoi(what + 5) : 0;
        PUSH_OR_RAISE(lfl_to_device(t, dev, &out_));
    }
    PUSH_OR_RAISE(lfl_cast(t, lfl_lua_opt_dtype(L, 2, t->dtype), &out_));
}

static int m_copy_(lua_State *L)
{
    lfl_lua_check(L, lfl_copy_(T(1), T(2)));
    lua_settop(L, 1);
    return 1;
}

static int m_fill_(lua_State *L)
{
    lfl_lua_check(L, lfl_fill_(T(1), luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_zero_(lua_State *L)
{
    lfl_lua_check(L, lfl_fill_(T(1), 0));
    lua_settop(L, 1);
    return 1;
}

static int m_requires_grad(lua_State *L)
{
    lfl_tensor *t = T(1);
    bool on = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
    if (t->grad_fn && !on) return luaL_error(L, "requires_grad: only leaf tensors can be switched off (use detach)");
    if (on && !lfl_dtypes[t->dtype].is_float)
        return luaL_error(L, "requires_grad: only floating tensors can require grad (this is %s)", lfl_dtype_name(t->dtype));
    t->requires_grad = on;
    lua_settop(L, 1);
    return 1;
}

static int m_get_requires_grad(lua_State *L) { lua_pushboolean(L, T(1)->requires_grad); return 1; }

/* ---- views ---- */

static int m_view(lua_State *L)
{
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 2, shape);
    PUSH_OR_RAISE(lfl_view(T(1), nd, shape, &out_));
}

static int m_reshape(lua_State *L)
{
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 2, shape);
    PUSH_OR_RAISE(lfl_reshape(T(1), nd, shape, &out_));
}

static int m_expand(lua_State *L)
{
    int64_t shape[LFL_MAX_DIMS];
    int nd = lfl_lua_check_shape(L, 2, shape);
    PUSH_OR_RAISE(lfl_expand(T(1), nd, shape, &out_));
}

static int m_permute(lua_State *L)
{
    lfl_tensor *t = T(1);
    int perm[LFL_MAX_DIMS];
    int64_t p64[LFL_MAX_DIMS];
    int n = lfl_lua_check_shape(L, 2, p64);
    if (n != t->ndim) return luaL_error(L, "permute: %d dims given for a %d-dim tensor", n, t->ndim);
    for (int i = 0; i < n; i++) {
        int64_t d = p64[i] < 0 ? p64[i] + n + 1 : p64[i];
        if (d < 1 || d > n) return luaL_error(L, "permute: dim %d out of range (dims are 1-based)", (int)p64[i]);
        perm[i] = (int)d - 1;
    }
    PUSH_OR_RAISE(lfl_permute(t, perm, &out_));
}

static int m_transpose(lua_State *L)
{
    lfl_tensor *t = T(1);
    int a = lfl_lua_opt_dim(L, 2, t->ndim, t->ndim - 2), b = lfl_lua_opt_dim(L, 3, t->ndim, t->ndim - 1);
    PUSH_OR_RAISE(lfl_transpose(t, a, b, &out_));
}

/* narrow(dim, start, len) with a 1-based start */
static int m_narrow(lua_State *L)
{
    lfl_tensor *t = T(1);
    int d = lfl_lua_check_dim(L, 2, t->ndim);
    int64_t s = lfl_lua_check_int64(L, 3, "narrow: the start");
    s = s < 0 ? s + t->shape[d] : s - 1;
    PUSH_OR_RAISE(lfl_narrow(t, d, s, lfl_lua_check_int64(L, 4, "narrow: the length"), &out_));
}

/* select(dim, index) with a 1-based index */
static int m_select(lua_State *L)
{
    lfl_tensor *t = T(1);
    int d = lfl_lua_check_dim(L, 2, t->ndim);
    int64_t i = lfl_lua_check_int64(L, 3, "select: the index");
    if (i == 0) return luaL_error(L, "select: index 0 (indices are 1-based)");
    PUSH_OR_RAISE(lfl_select(t, d, i < 0 ? i : i - 1, &out_));
}

static int m_unsqueeze(lua_State *L)
{
    lfl_tensor *t = T(1);
    PUSH_OR_RAISE(lfl_unsqueeze(t, lfl_lua_check_dim(L, 2, t->ndim + 1), &out_));
}

static int m_squeeze(lua_State *L)
{
    lfl_tensor *t = T(1);
    if (lua_isnoneornil(L, 2)) PUSH_OR_RAISE(lfl_squeeze_all(t, &out_));
    PUSH_OR_RAISE(lfl_squeeze(t, lfl_lua_check_dim(L, 2, t->ndim), &out_));
}

/* t[i], t[{i, {a, b}, {}}]: numbers select (1-based, negative from the end),
 * {a, b} takes a..b inclusive, {a} or {} keep the rest. Leaves the view on top. */
static lfl_tensor *index_view(lua_State *L, lfl_tensor *t, int key)
{
    lfl_tensor *v = lfl_tensor_retain(t);
    if (lua_type(L, key) == LUA_TNUMBER) {
        int64_t i = 0;
        lfl_tensor *o = NULL;
        if (!lfl_lua_to_int64(L, key, &i)) {
            lfl_tensor_release(v);
            luaL_error(L, "index %s is not an integer", lua_tostring(L, key));
        }
        if (v->ndim == 0) { lfl_tensor_release(v); luaL_error(L, "cannot index a 0-dim tensor"); }
        lfl_status st = i == 0 ? lfl_fail(LFL_ERR_ARG, "index 0 (indices are 1-based)") : lfl_select(v, 0, i < 0 ? i : i - 1, &o);
        lfl_tensor_release(v);
        lfl_lua_check(L, st);
        return o;
    }
    int n = (int)lua_objlen(L, key), dim = 0;
    for (int k = 1; k <= n; k++) {
        lua_rawgeti(L, key, k);
        lfl_tensor *o = NULL;
        lfl_status st = LFL_OK;
        if (dim >= v->ndim) {
            st = lfl_fail(LFL_ERR_ARG, "index: %d indices for a %d-dim tensor", n, t->ndim);
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            int64_t i = 0;
            if (!lfl_lua_to_int64(L, -1, &i))
                st = lfl_fail(LFL_ERR_ARG, "index: entry %d (%s) is not an integer", k, lua_tostring(L, -1));
            else st = i == 0 ? lfl_fail(LFL_ERR_ARG, "index 0 (indices are 1-based)") : lfl_select(v, dim, i < 0 ? i : i - 1, &o);
        } else if (lua_istable(L, -1)) {
            int64_t size = v->shape[dim], a = 1, b = size;
            lua_rawgeti(L, -1, 1);
            bool ok = true;
            if (lua_isnumber(L, -1)) ok = lfl_lua_to_int64(L, -1, &a);
            lua_pop(L, 1);
            lua_rawgeti(L, -1, 2);
            if (lua_isnumber(L, -1)) ok = lfl_lua_to_int64(L, -1, &b) && ok;
            lua_pop(L, 1);
            if (a < 0) a += size + 1;
            if (b < 0) b += size + 1;
            if (!ok)
                st = lfl_fail(LFL_ERR_ARG, "index: entry %d has a bound that is not an integer", k);
            else if (a < 1 || b > size || b < a - 1)
                st = lfl_fail(LFL_ERR_ARG, "index: range {%lld, %lld} out of bounds for dim %d of size %lld",
                              (long long)a, (long long)b, dim + 1, (long long)size);
            else
                st = lfl_slice(v, dim, a - 1, b, 1, &o);
            dim++;
        } else {
            st = lfl_fail(LFL_ERR_ARG, "index: entry %d is a %s (expected a number or {from, to})", k, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
        lfl_tensor_release(v);
        lfl_lua_check(L, st);
        v = o;
    }
    return v;
}

static int t_index(lua_State *L)
{
    int kt = lua_type(L, 2);
    if (kt == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (strcmp(k, "grad") == 0) {
            lfl_tensor *t = T(1);
            if (!t->grad) return 0;
            lfl_lua_push_tensor(L, lfl_tensor_retain(t->grad));
            return 1;
        }
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    if (kt != LUA_TNUMBER && kt != LUA_TTABLE) return luaL_error(L, "cannot index a tensor with a %s", lua_typename(L, kt));
    lfl_tensor *v = index_view(L, T(1), 2);
    if (v->ndim == 0) {
        lua_pushnumber(L, host_get(L, v, 0));
        lfl_tensor_release(v);
        return 1;
    }
    lfl_lua_push_tensor(L, v);
    return 1;
}

static int t_newindex(lua_State *L)
{
    lfl_tensor *t = T(1);
    int kt = lua_type(L, 2);
    if (kt == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, 2), "grad") != 0) return luaL_error(L, "cannot set field '%s' of a tensor", lua_tostring(L, 2));
        lfl_tensor *g = lfl_lua_opt_tensor(L, 3);
        if (g && !lfl_same_shape(g, t)) return luaL_error(L, "grad: shape differs from the tensor's");
        lfl_tensor_release(t->grad);
        t->grad = g ? lfl_detach(g) : NULL;
        return 0;
    }
    if (kt != LUA_TNUMBER && kt != LUA_TTABLE) return luaL_error(L, "cannot index a tensor with a %s", lua_typename(L, kt));
    lfl_tensor *v = index_view(L, t, 2);
    lfl_status st;
    if (lua_type(L, 3) == LUA_TNUMBER) st = lfl_fill_(v, lua_tonumber(L, 3));
    else if (lfl_lua_is_tensor(L, 3)) st = lfl_copy_(v, *(lfl_tensor **)lua_touserdata(L, 3));
    else st = lfl_fail(LFL_ERR_ARG, "cannot assign a %s to a tensor element", luaL_typename(L, 3));
    lfl_tensor_release(v);
    lfl_lua_check(L, st);
    return 0;
}

static int t_len(lua_State *L)
{
    lfl_tensor *t = T(1);
    lua_pushinteger(L, t->ndim ? (lua_Integer)t->shape[0] : 0);
    return 1;
}

/* lfl.memory_trim(): the heap's free pages back to the system */
static int l_mem_trim(lua_State *L)
{
    (void)L;
    lfl_mem_trim();
    return 0;
}

/* process-wide figures */
static int l_mem(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_mem_current());
    lua_pushnumber(L, (lua_Number)lfl_mem_peak());
    return 2;
}

static const luaL_Reg creation[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full},
    {"rand", l_rand}, {"randn", l_randn}, {"arange", l_arange}, {"eye", l_eye},
    {"manual_seed", l_manual_seed}, {"rng_state", l_rng_state}, {"memory", l_mem}, {"memory_trim", l_mem_trim},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"size", m_size}, {"stride", m_stride}, {"dim", m_dim}, {"numel", m_numel}, {"dtype", m_dtype}, {"data_ptr", m_data_ptr},
    {"device", m_device}, {"is_contiguous", m_is_contiguous}, {"is_leaf", m_is_leaf}, {"grad_fn", m_grad_fn},
    {"item", m_item}, {"_at", m_at}, {"contiguous", m_contiguous}, {"clone", m_clone}, {"detach", m_detach},
    {"float", m_float}, {"double", m_double}, {"long", m_long}, {"to", m_to}, {"copy_", m_copy_},
    {"fill_", m_fill_}, {"zero_", m_zero_}, {"normal_", l_normal_}, {"uniform_", l_uniform_},
    {"requires_grad", m_requires_grad}, {"get_requires_grad", m_get_requires_grad},
    {"view", m_view}, {"reshape", m_reshape}, {"expand", m_expand}, {"permute", m_permute},
    {"transpose", m_transpose}, {"narrow", m_narrow}, {"select", m_select}, {"unsqueeze", m_unsqueeze},
    {"squeeze", m_squeeze},
    {NULL, NULL},
};

void lfl_lua_tensor_open(lua_State *L)
{
    luaL_newmetatable(L, LFL_TENSOR_MT);
    lua_newtable(L); /* methods */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "methods");
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, t_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, t_len);
    lua_setfield(L, -2, "__len");
    lua_pushstring(L, "Tensor");
    lua_setfield(L, -2, "__name");
    /* lfl.Tensor is the metatable, so Lua code can add methods and operators */
    lua_getglobal(L, "lfl");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "Tensor");
    lua_pop(L, 2);
    lfl_lua_register_funcs(L, NULL, creation);
    lfl_lua_register_ops(L, methods);
}
