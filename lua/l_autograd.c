/* Autograd from Lua: backward, grad mode, custom nodes with Lua forward and
 * backward, and gradient checkpointing (recompute a region in backward). */
#include "bridge.h"

#define T(i) lfl_lua_check_tensor(L, i)

extern bool lfl_lua_closing;
/* The Lua thread running backward: callbacks run on it. */
static _Thread_local lua_State *current_L;

/* Registry refs of freed nodes, released at the next safe point: a node can be
 * freed from any __gc, where touching the Lua stack is not safe. */
static int *dead_refs;
static int n_dead, cap_dead;

void lfl_lua_release_refs(lua_State *L)
{
    if (lfl_lua_closing) return;
    for (int i = 0; i < n_dead; i++) luaL_unref(L, LUA_REGISTRYINDEX, dead_refs[i]);
    n_dead = 0;
}

typedef struct {
    int ref;            /* registry: {fn=..., bwd=..., ctx=..., args=..., n=...} */
    lfl_rng_state rng;  /* checkpoint: RNG at forward, replayed on recompute */
} lua_node_ctx;

static void ctx_free(void *p)
{
    lua_node_ctx *c = p;
    if (!lfl_lua_closing) {
        if (n_dead == cap_dead) {
            cap_dead = cap_dead ? cap_dead * 2 : 64;
            dead_refs = realloc(dead_refs, sizeof *dead_refs * (size_t)cap_dead);
        }
        dead_refs[n_dead++] = c->ref;
    }
    free(c);
}

/* ---- backward and grad mode ---- */

static int l_backward(lua_State *L)
{
    lfl_tensor *t = T(1), *g = lfl_lua_opt_tensor(L, 2);
    lua_State *prev = current_L;
    current_L = L;
    lfl_status st = lfl_backward(t, g);
    current_L = prev;
    lfl_lua_release_refs(L);
    lfl_lua_check(L, st);
    return 0;
}

/* lfl.backward({outs...}, {grads...}) */
static int l_backward_multi(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)lua_objlen(L, 1);
    lfl_tensor **outs = lua_newuserdata(L, sizeof *outs * (size_t)(n ? n : 1) * 2);
    lfl_tensor **grads = outs + n;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        outs[i] = lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
        grads[i] = NULL;
        if (lua_istable(L, 2)) {
            lua_rawgeti(L, 2, i + 1);
            grads[i] = lfl_lua_opt_tensor(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_State *prev = current_L;
    current_L = L;
    lfl_status st = lfl_backward_multi(n, outs, grads);
    current_L = prev;
    lfl_lua_check(L, st);
    return 0;
}

static int l_is_grad_enabled(lua_State *L) { lua_pushboolean(L, lfl_grad_enabled()); return 1; }

static int l_set_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, lfl_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

/* lfl.no_grad(fn, ...) -> fn's results, with grad mode restored even on error */
static int l_no_grad(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    bool prev = lfl_set_grad_enabled(false);
    int base = 1;
    int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    lfl_set_grad_enabled(prev);
    if (st != 0) return lua_error(L);
    return lua_gettop(L) - base + 1;
}

/* ---- custom nodes ---- */

/* Pushes the grads, calls the Lua backward, fills gin from its results. */
static lfl_status custom_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lua_State *L = current_L;
    if (!L || lfl_lua_closing) return lfl_fail(LFL_ERR_CALLBACK, "custom node: backward needs a Lua caller");
    lua_node_ctx *c = n->ctx;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    lua_getfield(L, -1, "bwd");
    lua_getfield(L, -2, "ctx");
    for (int i = 0; i < n->n_out; i++) lfl_lua_push_tensor(L, lfl_tensor_retain(gout[i]));
    if (lua_pcall(L, 1 + n->n_out, n->n_in, 0) != 0) {
        lfl_status st = lfl_fail(LFL_ERR_CALLBACK, "custom backward: %s", lua_tostring(L, -1));
        lua_settop(L, top);
        return st;
    }
    int first = lua_gettop(L) - n->n_in + 1;
    for (int i = 0; i < n->n_in; i++) {
        int idx = first + i;
        if (lua_isnil(L, idx) || !lfl_node_needs(n, i)) continue;
        if (!lfl_lua_is_tensor(L, idx)) {
            lua_settop(L, top);
            return lfl_fail(LFL_ERR_CALLBACK, "custom backward: result %d is not a tensor or nil", i + 1);
        }
        lfl_tensor *g = *(lfl_tensor **)lua_touserdata(L, idx);
        if (g->ndim != n->in[i].ndim || memcmp(g->shape, n->in[i].shape, sizeof(int64_t) * (size_t)g->ndim)) {
            lua_settop(L, top);
            return lfl_fail(LFL_ERR_CALLBACK, "custom backward: gradient %d has the wrong shape", i + 1);
        }
        gin[i] = lfl_tensor_retain(g);
    }
    lua_settop(L, top);
    return LFL_OK;
}

/* Turns the tensors among results [first, top] into outputs of node n. */
static void attach_outputs(lua_State *L, lfl_node *n, int first, int nres)
{
    int k = 0;
    for (int i = 0; i < nres; i++) {
        int idx = first + i;
        if (!lfl_lua_is_tensor(L, idx)) continue;
        lfl_tensor **box = lua_touserdata(L, idx);
        if ((*box)->grad_fn || (*box)->requires_grad) {
            /* an input passed through: give the output its own header */
            lfl_tensor *d = lfl_detach(*box);
            lfl_lua_push_tensor(L, d);
            lua_replace(L, idx);
            box = lua_touserdata(L, idx);
        }
        lfl_node_set_output(n, *box, k++);
    }
}

/* Collects tensor arguments [first, top] as node inputs. */
static int tensor_args(lua_State *L, int first, lfl_tensor **ins, int max)
{
    int n = 0;
    for (int i = first; i <= lua_gettop(L) && n < max; i++)
        if (lfl_lua_is_tensor(L, i)) ins[n++] = *(lfl_tensor **)lua_touserdata(L, i);
    return n;
}

static int count_tensors(lua_State *L, int first, int nres)
{
    int k = 0;
    for (int i = 0; i < nres; i++) k += lfl_lua_is_tensor(L, first + i);
    return k;
}

/* the function returned by lfl.custom(forward, backward) */
static int custom_call(lua_State *L)
{
    lfl_lua_release_refs(L);
    int nargs = lua_gettop(L);
    lfl_tensor *ins[64];
    int nin = tensor_args(L, 1, ins, 64);
    lua_newtable(L); /* ctx */
    int ctx = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, ctx);
    for (int i = 1; i <= nargs; i++) lua_pushvalue(L, i);
    bool prev = lfl_set_grad_enabled(false);
    int st = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
    lfl_set_grad_enabled(prev);
    if (st != 0) return lua_error(L);
    int first = ctx + 1, nres = lua_gettop(L) - ctx;
    int nout = count_tensors(L, first, nres);
    lfl_node *n = nout ? lfl_node_begin("custom", custom_backward, nin, ins, nout) : NULL;
    if (n) {
        lua_node_ctx *c = calloc(1, sizeof *c);
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_setfield(L, -2, "bwd");
        lua_pushvalue(L, ctx);
        lua_setfield(L, -2, "ctx");
        c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        n->ctx = c;
        n->ctx_free = ctx_free;
        attach_outputs(L, n, first, nres);
        lfl_node_release(n);
    }
    return nres;
}

static int l_custom(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_pushcclosure(L, custom_call, 2);
    return 1;
}

/* ---- checkpointing ---- */

static lfl_status checkpoint_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lua_State *L = current_L;
    if (!L || lfl_lua_closing) return lfl_fail(LFL_ERR_CALLBACK, "checkpoint: backward needs a Lua caller");
    lua_node_ctx *c = n->ctx;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    int reg = lua_gettop(L);
    lua_getfield(L, reg, "args");
    int args = lua_gettop(L), nargs = (int)lua_objlen(L, args);
    lua_getfield(L, reg, "fn");
    /* fresh leaves standing for the inputs, so their grads are the node's gin */
    lfl_tensor *leaves[64];
    int k = 0;
    for (int i = 1; i <= nargs; i++) {
        lua_rawgeti(L, args, i);
        if (lfl_lua_is_tensor(L, -1)) {
            lfl_tensor *d = lfl_detach(*(lfl_tensor **)lua_touserdata(L, -1));
            d->requires_grad = k < n->n_in && lfl_node_needs(n, k);
            leaves[k++] = d;
            lua_pop(L, 1);
            lfl_lua_push_tensor(L, lfl_tensor_retain(d));
        }
    }
    int fnpos = args + 1;
    lfl_rng_state saved = lfl_rng_get();
    lfl_rng_set(c->rng);
    bool prev = lfl_set_grad_enabled(true);
    int rc = lua_pcall(L, nargs, LUA_MULTRET, 0);
    lfl_set_grad_enabled(prev);
    lfl_rng_set(saved);
    lfl_status st = LFL_OK;
    if (rc != 0) {
        st = lfl_fail(LFL_ERR_CALLBACK, "checkpoint recompute: %s", lua_tostring(L, -1));
    } else {
        int first = fnpos, nres = lua_gettop(L) - fnpos + 1;
        lfl_tensor *outs[64], *gs[64];
        int m = 0, j = 0;
        for (int i = 0; i < nres && j < n->n_out; i++) {
            if (!lfl_lua_is_tensor(L, first + i)) continue;
            lfl_tensor *o = *(lfl_tensor **)lua_touserdata(L, first + i);
            if (o->requires_grad) { outs[m] = o; gs[m] = gout[j]; m++; }
            j++;
        }
        if (m) st = lfl_backward_multi(m, outs, gs);
    }
    for (int i = 0; i < k; i++) {
        if (st == LFL_OK && i < n->n_in && leaves[i]->grad) gin[i] = lfl_tensor_retain(leaves[i]->grad);
        lfl_tensor_release(leaves[i]);
    }
    lua_settop(L, top);
    return st;
}

/* lfl.checkpoint(fn, ...): runs fn without keeping its activations; backward
 * runs it again (same RNG draws) and differentiates the recomputation. */
static int checkpoint(lua_State *L, bool always);

static int l_checkpoint(lua_State *L) { return checkpoint(L, false); }

/* lfl.checkpoint_trainable(fn, ...): records the region even when no tensor
 * argument needs grad, because parameters used inside it do (e.g. LoRA
 * weights in a layer whose input comes from a frozen embedding). */
static int l_checkpoint_trainable(lua_State *L) { return checkpoint(L, true); }

static int checkpoint(lua_State *L, bool always)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lfl_lua_release_refs(L);
    int nargs = lua_gettop(L) - 1;
    lfl_tensor *ins[64];
    int nin = tensor_args(L, 2, ins, 64);
    if (nin == 64) return luaL_error(L, "checkpoint: at most 63 tensor arguments");
    lfl_rng_state rng = lfl_rng_get();
    int base = lua_gettop(L);
    lua_pushvalue(L, 1);
    for (int i = 2; i <= nargs + 1; i++) lua_pushvalue(L, i);
    bool prev = lfl_set_grad_enabled(false);
    int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
    lfl_set_grad_enabled(prev);
    if (st != 0) return lua_error(L);
    int first = base + 1, nres = lua_gettop(L) - base;
    int nout = count_tensors(L, first, nres);
    lfl_node *n = !nout ? NULL
                 : always ? lfl_node_begin_always("checkpoint", checkpoint_backward, nin, ins, nout)
                          : lfl_node_begin("checkpoint", checkpoint_backward, nin, ins, nout);
    if (n) {
        lua_node_ctx *c = calloc(1, sizeof *c);
        c->rng = rng;
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, 1);
        lua_setfield(L, -2, "fn");
        lua_createtable(L, nargs, 0);
        for (int i = 2; i <= nargs + 1; i++) {
            lua_pushvalue(L, i);
            lua_rawseti(L, -2, i - 1);
        }
        lua_setfield(L, -2, "args");
        c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        n->ctx = c;
        n->ctx_free = ctx_free;
        attach_outputs(L, n, first, nres);
        lfl_node_release(n);
    }
    return nres;
}

static const luaL_Reg methods[] = {
    {"backward", l_backward},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"backward_multi", l_backward_multi}, {"is_grad_enabled", l_is_grad_enabled},
    {"set_grad_enabled", l_set_grad_enabled}, {"no_grad", l_no_grad}, {"custom", l_custom},
    {"checkpoint", l_checkpoint}, {"checkpoint_trainable", l_checkpoint_trainable},
    {NULL, NULL},
};

LFL_LUA_MODULE(autograd)
{
    lfl_lua_register_ops(L, methods);
    lfl_lua_register_funcs(L, NULL, funcs);
}
