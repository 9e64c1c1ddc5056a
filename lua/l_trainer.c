/* lfl.Trainer: the C trainer state (core/train/trainer.h) boxed as a userdata.
 * The Lua-side parts (args, model, tokenizer, template, approach, data,
 * optimizer, schedule, hooks, log history) live in its environment table;
 * t.<counter> reads the C state, t.state is a plain-table snapshot, and the
 * methods table (lfl._trainer.methods) is completed by stdlib/lfl/train/trainer.lua
 * (step, evaluate, save, load, train, finish). */
#include <math.h>
#include <stddef.h>
#include "bridge.h"
#include "train/trainer.h"

#define TRAINER_MT "lfl.Trainer"
#define METHODS_KEY "lfl.Trainer.methods"

typedef struct { lfl_trainer *t; } trainer_box;

static lfl_trainer *check_trainer(lua_State *L, int idx)
{
    trainer_box *b = luaL_checkudata(L, idx, TRAINER_MT);
    if (!b->t) luaL_error(L, "trainer: used after it was freed");
    return b->t;
}

static int64_t opt_int_field(lua_State *L, int idx, const char *k, int64_t def)
{
    lua_getfield(L, idx, k);
    int64_t v = lua_isnil(L, -1) ? def : (int64_t)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* lfl._trainer.new{total_steps=, batches_per_epoch=, accum=, now=} */
static int l_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lfl_trainer_config cfg = {.total_steps = opt_int_field(L, 1, "total_steps", 0),
                              .batches_per_epoch = opt_int_field(L, 1, "batches_per_epoch", 1),
                              .accum = opt_int_field(L, 1, "accum", 1)};
    lua_getfield(L, 1, "now");
    double now = luaL_optnumber(L, -1, 0);
    lua_pop(L, 1);
    trainer_box *b = lua_newuserdata(L, sizeof *b);
    b->t = NULL;
    luaL_getmetatable(L, TRAINER_MT);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setfenv(L, -2);
    lfl_lua_check(L, lfl_trainer_new(&cfg, now, &b->t));
    return 1;
}

static int t_gc(lua_State *L)
{
    trainer_box *b = luaL_checkudata(L, 1, TRAINER_MT);
    lfl_trainer_free(b->t);
    b->t = NULL;
    return 0;
}

/* the C fields readable as t.<name> (and the ones t.<name> = v may set, for resuming) */
typedef enum { F_INT, F_NUM } field_kind;
typedef struct { const char *name; field_kind kind; size_t off; bool settable; } field;
#define I(n, s) {#n, F_INT, offsetof(lfl_trainer, n), s}
#define N(n, s) {#n, F_NUM, offsetof(lfl_trainer, n), s}
static const field fields[] = {
    I(global_step, true), I(epoch, true), I(batch_in_epoch, true), N(epoch_float, true),
    I(steps_per_epoch, false), I(accum_pos, false), I(micro_batches, false), I(tokens, false),
    N(t0, true), N(window_t0, true), N(logged_loss, false), N(loss, false), N(lr, false), N(grad_norm, false), N(tokens_per_second, false),
    I(nonfinite_streak, false), I(nonfinite_total, false), I(run_steps, false),
    {NULL, F_INT, 0, false},
};
#undef I
#undef N

static const field *find_field(const char *k)
{
    for (const field *f = fields; f->name; f++)
        if (strcmp(f->name, k) == 0) return f;
    return NULL;
}

static void push_field(lua_State *L, lfl_trainer *t, const field *f)
{
    const char *p = (const char *)t + f->off;
    if (f->kind == F_INT) lua_pushnumber(L, (lua_Number) * (const int64_t *)p);
    else lua_pushnumber(L, *(const double *)p);
}

/* numbers that are NaN before the first step are nil in a snapshot */
static void set_num(lua_State *L, const char *k, double v)
{
    if (isnan(v)) return;
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void push_state(lua_State *L, lfl_trainer *t)
{
    lua_createtable(L, 0, 24);
    set_num(L, "global_step", (double)t->global_step);
    set_num(L, "total_steps", (double)t->cfg.total_steps);
    set_num(L, "epoch", t->epoch_float);
    set_num(L, "epoch_index", (double)t->epoch);
    set_num(L, "batch_in_epoch", (double)t->batch_in_epoch);
    set_num(L, "batches_per_epoch", (double)t->cfg.batches_per_epoch);
    set_num(L, "steps_per_epoch", (double)t->steps_per_epoch);
    set_num(L, "gradient_accumulation_steps", (double)t->cfg.accum);
    set_num(L, "accum_pos", (double)t->accum_pos);
    set_num(L, "micro_batches", (double)t->micro_batches);
    set_num(L, "tokens", (double)t->tokens);
    set_num(L, "loss", t->logged_loss);
    set_num(L, "step_loss", t->loss);
    set_num(L, "lr", t->lr);
    set_num(L, "grad_norm", t->grad_norm);
    set_num(L, "tokens_per_second", t->tokens_per_second);
    set_num(L, "train_loss", lfl_trainer_train_loss(t));
    set_num(L, "nonfinite_streak", (double)t->nonfinite_streak);
    set_num(L, "nonfinite_total", (double)t->nonfinite_total);
    set_num(L, "trainable_tensors", (double)t->nparams);
    lfl_rng_state r = lfl_trainer_rng(t);
    set_num(L, "rng_seed", (double)r.seed);
    set_num(L, "rng_offset", (double)r.offset);
    lua_pushboolean(L, lfl_trainer_done(t));
    lua_setfield(L, -2, "done");
    /* a NaN loss after a step is a diverged step: keep it (lfl.json writes the token NaN) */
    if (t->global_step > 0) {
        lua_pushnumber(L, t->loss);
        lua_setfield(L, -2, "step_loss");
    }
}

static int t_index(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        const field *f = find_field(k);
        if (f) { push_field(L, t, f); return 1; }
        if (strcmp(k, "state") == 0) { push_state(L, t); return 1; }
        if (strcmp(k, "total_steps") == 0) { lua_pushnumber(L, (lua_Number)t->cfg.total_steps); return 1; }
        if (strcmp(k, "batches_per_epoch") == 0) { lua_pushnumber(L, (lua_Number)t->cfg.batches_per_epoch); return 1; }
        if (strcmp(k, "gradient_accumulation_steps") == 0) { lua_pushnumber(L, (lua_Number)t->cfg.accum); return 1; }
        if (strcmp(k, "train_loss") == 0) { lua_pushnumber(L, lfl_trainer_train_loss(t)); return 1; }
    }
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) return 1;
    lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int t_newindex(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        const field *f = find_field(k);
        static const char *const computed[] = {"state", "total_steps", "batches_per_epoch",
                                               "gradient_accumulation_steps", "train_loss", NULL};
        bool is_computed = false;
        for (int i = 0; computed[i]; i++) is_computed |= strcmp(k, computed[i]) == 0;
        if (f || is_computed) {
            if (!f || !f->settable) return luaL_error(L, "trainer: '%s' is read-only", k);
            char *p = (char *)t + f->off;
            if (f->kind == F_INT) *(int64_t *)p = (int64_t)luaL_checknumber(L, 3);
            else *(double *)p = luaL_checknumber(L, 3);
            return 0;
        }
    }
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

static int t_tostring(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    char loss[32] = "-", lr[32] = "-";
    if (t->global_step > 0) {
        snprintf(loss, sizeof loss, "%.4f", t->loss);
        snprintf(lr, sizeof lr, "%.3e", t->lr);
    }
    char buf[256];
    snprintf(buf, sizeof buf, "Trainer(step %lld/%lld, epoch %.2f, loss %s, lr %s, %lld tokens%s)",
             (long long)t->global_step, (long long)t->cfg.total_steps, t->epoch_float, loss, lr,
             (long long)t->tokens, lfl_trainer_done(t) ? ", done" : "");
    lua_pushstring(L, buf);
    return 1;
}

/* t:set_params({tensors}): the trainable tensors clipping runs over */
static int m_set_params(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)lua_objlen(L, 2);
    lfl_tensor **ps = lua_newuserdata(L, sizeof *ps * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        ps[i] = lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    lfl_lua_check(L, lfl_trainer_set_params(t, ps, n));
    return 0;
}

/* t:micro_batch(loss, ntokens, epoch, batch) -> whether an optimizer step is due */
static int m_micro_batch(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    bool now;
    lfl_lua_check(L, lfl_trainer_micro_batch(t, luaL_checknumber(L, 2), (int64_t)luaL_checknumber(L, 3),
                                             (int64_t)luaL_checknumber(L, 4), (int64_t)luaL_checknumber(L, 5),
                                             &now));
    lua_pushboolean(L, now);
    return 1;
}

/* t:clip_grad_norm(max_norm) -> the norm before clipping */
static int m_clip(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    double norm;
    lfl_lua_check(L, lfl_trainer_clip(t, luaL_optnumber(L, 2, 0), &norm));
    lua_pushnumber(L, norm);
    return 1;
}

/* t:reduce_step(): the step in progress summed over the job's ranks (lfl.comm) */
static int m_reduce_step(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    lfl_lua_check(L, lfl_trainer_reduce_step(t, lfl_comm_current()));
    return 0;
}

/* t:end_step(lr, grad_norm, now) */
static int m_end_step(lua_State *L)
{
    lfl_trainer *t = check_trainer(L, 1);
    lfl_trainer_end_step(t, luaL_checknumber(L, 2), luaL_checknumber(L, 3), luaL_checknumber(L, 4));
    return 0;
}

static int m_is_log_step(lua_State *L)
{
    lua_pushboolean(L, lfl_trainer_is_log_step(check_trainer(L, 1), (int64_t)luaL_checknumber(L, 2)));
    return 1;
}

static int m_reset_window(lua_State *L)
{
    lfl_trainer_reset_window(check_trainer(L, 1), luaL_checknumber(L, 2));
    return 0;
}

/* t:log_window(now) -> the logging window's mean step loss (and a new window) */
static int m_log_window(lua_State *L)
{
    lua_pushnumber(L, lfl_trainer_log_window(check_trainer(L, 1), luaL_checknumber(L, 2)));
    return 1;
}

static int m_done(lua_State *L)
{
    lua_pushboolean(L, lfl_trainer_done(check_trainer(L, 1)));
    return 1;
}

static int m_pending_loss(lua_State *L)
{
    lua_pushnumber(L, lfl_trainer_pending_loss(check_trainer(L, 1)));
    return 1;
}

/* t:rng_state() -> seed, offset (the position a checkpoint records) */
static int m_rng_state(lua_State *L)
{
    lfl_rng_state r = lfl_trainer_rng(check_trainer(L, 1));
    lua_pushnumber(L, (lua_Number)r.seed);
    lua_pushnumber(L, (lua_Number)r.offset);
    return 2;
}

/* t:parts() -> the environment table (the Lua-side parts), for inspection */
static int m_parts(lua_State *L)
{
    check_trainer(L, 1);
    lua_getfenv(L, 1);
    return 1;
}

/* lfl._trainer.clip_grad_norm({tensors}, max_norm) -> norm: the same clipping without a trainer */
static int l_clip(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)lua_objlen(L, 1);
    lfl_tensor **ps = lua_newuserdata(L, sizeof *ps * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        ps[i] = lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    double norm;
    lfl_lua_check(L, lfl_clip_grad_norm(ps, n, luaL_optnumber(L, 2, 0), &norm));
    lua_pushnumber(L, norm);
    return 1;
}

static int l_is_trainer(lua_State *L)
{
    lua_pushboolean(L, luaL_testudata(L, 1, TRAINER_MT) != NULL);
    return 1;
}

static const luaL_Reg methods[] = {
    {"set_params", m_set_params}, {"micro_batch", m_micro_batch}, {"clip_grad_norm", m_clip},
    {"end_step", m_end_step}, {"reduce_step", m_reduce_step}, {"is_log_step", m_is_log_step}, {"reset_window", m_reset_window},
    {"log_window", m_log_window},
    {"done", m_done}, {"pending_loss", m_pending_loss}, {"rng_state", m_rng_state}, {"parts", m_parts},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"new", l_new}, {"clip_grad_norm", l_clip}, {"is_trainer", l_is_trainer},
    {NULL, NULL},
};

LFL_LUA_MODULE(trainer)
{
    luaL_newmetatable(L, TRAINER_MT);
    lua_pushcfunction(L, t_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, t_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_newtable(L);
    for (const luaL_Reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
    /* the REPL completes t:<Tab> from the metatable's methods */
    luaL_getmetatable(L, TRAINER_MT);
    lua_insert(L, -2);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    lfl_lua_register_funcs(L, "_trainer", funcs);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "_trainer");
    lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 2);
}
