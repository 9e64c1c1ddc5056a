/* lfl.dataset: tokenized datasets held in C (core/data/dataset.h) as the
 * userdata "lfl.Dataset". Rows are 1-based here (negative: from the end);
 * token ids, labels and positions are data and keep their values.
 *   lfl.dataset.from_rows({{input_ids = {...}, labels = {...}}, ...}) -> ds
 *   lfl.dataset.from_tensors({input_ids = {values = i32, offsets = i64},
 *                             kto_tag = {scalar = i64, kind = "bool"}, labels = "input_ids"}, n?)
 *   lfl.dataset.load(path, split?) -> ds, meta     load_all(path) -> {split = ds}, meta
 *   lfl.dataset.save(path, {train = ds, eval = ds2}, meta?)
 *   #ds   ds[i] -> row table (aliased fields share one table, bool/number fields are
 *         Lua values)   ds:row(i, "tensors") -> list fields as 1-D i64 tensors
 *   ds:fields() -> {name = "list"|"bool"|"number"}, {alias = target}
 *   ds:num_tokens()   ds:column(name) -> values, offsets (tensors, no copy)
 *   ds:order(seed) -> permutation of 1..#ds (lfl.data.shuffle's)
 *   ds:collate(indices, "pack"|"stack_packed"|"pairwise"|"kto"|"pairwise_packed", {pad_id =, pad_to_multiple_of =})
 *   ds:batches{batch_size =, seed =, shuffle =, epoch =, start =, epochs =} -> iterator
 *       for indices, epoch, batch in it do ... end;  it:position() -> epoch, batch;
 *       it:seek(epoch, batch);  it:next();  it:batches_per_epoch()
 *   ds:save(path, meta?)   tostring(ds) */
#include <math.h>
#include <string.h>
#include "bridge.h"
#include "data/dataset.h"

#define DS_MT "lfl.Dataset"
#define BUILDER_MT "lfl.DatasetBuilder"
#define BATCHES_MT "lfl.DatasetBatches"

/* ---------------------------------------------------------------- boxes */

static lfl_dataset *check_ds(lua_State *L, int idx)
{
    lfl_dataset **box = luaL_checkudata(L, idx, DS_MT);
    if (!*box) luaL_error(L, "dataset: used after release");
    return *box;
}

/* pushes ds, taking the caller's reference */
static void push_ds(lua_State *L, lfl_dataset *ds)
{
    lfl_dataset **box = lua_newuserdata(L, sizeof *box);
    *box = ds;
    luaL_getmetatable(L, DS_MT);
    lua_setmetatable(L, -2);
}

static int l_ds_gc(lua_State *L)
{
    lfl_dataset **box = luaL_checkudata(L, 1, DS_MT);
    lfl_dataset_release(*box);
    *box = NULL;
    return 0;
}

/* a Lua row number (1-based, negative from the end) -> 0-based row */
static int64_t check_row(lua_State *L, const lfl_dataset *ds, int idx, const char *who)
{
    lua_Number x = luaL_checknumber(L, idx);
    if (x != floor(x) || fabs(x) > 9007199254740992.0) luaL_error(L, "%s: row %f is not an integer", who, x);
    int64_t r = (int64_t)x;
    if (r < 0) r += ds->n + 1;
    if (r < 1 || r > ds->n) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: row %.0f is out of range (1..%lld)", who, x, (long long)ds->n);
        luaL_error(L, "%s", msg);
    }
    return r - 1;
}

/* ---------------------------------------------------------------- rows */

static void push_list_table(lua_State *L, const lfl_dataset *ds, int col, int64_t r)
{
    const int32_t *p;
    int64_t n = lfl_dataset_list(ds, col, r, &p);
    lua_createtable(L, (int)n, 0);
    for (int64_t k = 0; k < n; k++) {
        lua_pushnumber(L, p[k]);
        lua_rawseti(L, -2, (int)k + 1);
    }
}

static void push_list_tensor(lua_State *L, const lfl_dataset *ds, int col, int64_t r)
{
    const int32_t *p;
    int64_t n = lfl_dataset_list(ds, col, r, &p);
    lfl_tensor *t = NULL;
    lfl_lua_check(L, lfl_empty(1, &n, LFL_I64, LFL_CPU, &t));
    int64_t *d = lfl_data(t);
    for (int64_t k = 0; k < n; k++) d[k] = p[k];
    lfl_lua_push_tensor(L, t);
}

/* row r as a table of its fields; an alias is the same value as its target */
static void push_row(lua_State *L, const lfl_dataset *ds, int64_t r, bool tensors)
{
    lua_createtable(L, 0, ds->ncols);
    for (int c = 0; c < ds->ncols; c++) {
        const lfl_ds_column *col = &ds->cols[c];
        if (col->alias_of >= 0) continue;
        if (col->kind == LFL_DS_LIST) {
            if (tensors) push_list_tensor(L, ds, c, r);
            else push_list_table(L, ds, c, r);
        } else if (col->kind == LFL_DS_BOOL) lua_pushboolean(L, lfl_dataset_scalar(ds, c, r) != 0);
        else lua_pushnumber(L, (lua_Number)lfl_dataset_scalar(ds, c, r));
        lua_setfield(L, -2, col->name);
    }
    for (int c = 0; c < ds->ncols; c++) {
        const lfl_ds_column *col = &ds->cols[c];
        if (col->alias_of < 0) continue;
        lua_getfield(L, -1, ds->cols[col->alias_of].name);
        lua_setfield(L, -2, col->name);
    }
}

static int l_ds_index(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        push_row(L, ds, check_row(L, ds, 2, "dataset[i]"), false);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1)); /* the methods */
    return 1;
}

static int l_ds_len(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)check_ds(L, 1)->n);
    return 1;
}

/* ds:row(i, "tables" | "tensors") */
static int l_ds_row(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    int64_t r = check_row(L, ds, 2, "dataset:row");
    const char *as = luaL_optstring(L, 3, "tables");
    bool tensors = strcmp(as, "tensors") == 0;
    if (!tensors && strcmp(as, "tables") != 0) return luaL_error(L, "dataset:row: '%s' is neither \"tables\" nor \"tensors\"", as);
    push_row(L, ds, r, tensors);
    return 1;
}

static int l_ds_fields(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    lua_createtable(L, 0, ds->ncols);
    lua_createtable(L, 0, 0);
    for (int c = 0; c < ds->ncols; c++) {
        const lfl_ds_column *col = &ds->cols[c];
        lua_pushstring(L, lfl_ds_kind_name(col->kind));
        lua_setfield(L, -3, col->name);
        if (col->alias_of >= 0) {
            lua_pushstring(L, ds->cols[col->alias_of].name);
            lua_setfield(L, -2, col->name);
        }
    }
    return 2;
}

static int l_ds_num_tokens(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_dataset_num_tokens(check_ds(L, 1)));
    return 1;
}

/* ds:column(name) -> values, offsets (list) or values (bool/number): the
 * dataset's own tensors, no copy */
static int l_ds_column(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int c = lfl_dataset_find(ds, name);
    if (c < 0) return luaL_error(L, "dataset:column: no column '%s'", name);
    lfl_lua_push_tensor(L, lfl_tensor_retain(ds->cols[c].values));
    if (!ds->cols[c].offsets) return 1;
    lfl_lua_push_tensor(L, lfl_tensor_retain(ds->cols[c].offsets));
    return 2;
}

static int l_ds_tostring(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "lfl.Dataset: %d rows (", (int)ds->n);
    luaL_addvalue(&b);
    for (int c = 0; c < ds->ncols; c++) {
        const lfl_ds_column *col = &ds->cols[c];
        if (col->alias_of >= 0) lua_pushfstring(L, "%s%s = %s", c ? ", " : "", col->name, ds->cols[col->alias_of].name);
        else lua_pushfstring(L, "%s%s %s", c ? ", " : "", col->name, lfl_ds_kind_name(col->kind));
        luaL_addvalue(&b);
    }
    char tail[64];
    snprintf(tail, sizeof tail, "), %lld tokens", (long long)lfl_dataset_num_tokens(ds));
    luaL_addstring(&b, tail);
    luaL_pushresult(&b);
    return 1;
}

/* ---------------------------------------------------------------- order, collate */

static int64_t check_int(lua_State *L, int idx, const char *what)
{
    lua_Number x = luaL_checknumber(L, idx);
    if (x != floor(x) || fabs(x) > 9007199254740992.0) luaL_error(L, "%s must be an integer (got %f)", what, x);
    return (int64_t)x;
}

/* ds:order(seed) -> {1-based permutation}; without a seed the identity */
static int l_ds_order(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    bool shuffle = !lua_isnoneornil(L, 2);
    int64_t seed = shuffle ? check_int(L, 2, "dataset:order: seed") : 0;
    int64_t *perm = lua_newuserdata(L, sizeof(int64_t) * (size_t)(ds->n ? ds->n : 1));
    if (!shuffle) for (int64_t i = 0; i < ds->n; i++) perm[i] = i;
    else lfl_dataset_order(ds->n, seed, perm);
    lua_createtable(L, (int)ds->n, 0);
    for (int64_t i = 0; i < ds->n; i++) {
        lua_pushnumber(L, (lua_Number)(perm[i] + 1));
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* options table at idx: every key must be one of `known` */
static void check_opts(lua_State *L, int idx, const char *who, const char *const *known)
{
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        bool ok = false;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (const char *const *k = known; *k; k++) ok |= strcmp(*k, lua_tostring(L, -1)) == 0;
        if (!ok) {
            luaL_Buffer b;
            const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
            luaL_buffinit(L, &b);
            for (const char *const *k = known; *k; k++) {
                if (k != known) luaL_addstring(&b, ", ");
                luaL_addstring(&b, *k);
            }
            luaL_pushresult(&b);
            luaL_error(L, "%s: unknown option '%s' (known: %s)", who, key, lua_tostring(L, -1));
        }
    }
}

/* opts[key] as an integer, or def when absent */
static int64_t opt_int(lua_State *L, int idx, const char *key, int64_t def, const char *who)
{
    if (lua_isnoneornil(L, idx)) return def;
    lua_getfield(L, idx, key);
    int64_t v = def;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: %s must be a number (got %s)", who, key, luaL_typename(L, -1));
        char what[128];
        snprintf(what, sizeof what, "%s: %s", who, key);
        v = check_int(L, lua_gettop(L), what);
    }
    lua_pop(L, 1);
    return v;
}

static void set_tensor(lua_State *L, const char *key, lfl_tensor **t)
{
    if (!*t) return;
    lfl_lua_push_tensor(L, *t);
    *t = NULL;
    lua_setfield(L, -2, key);
}

static void set_number(lua_State *L, const char *key, int64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, key);
}

/* ds:collate(indices, kind, opts) -> the batch table of the Lua collator */
static int l_ds_collate(lua_State *L)
{
    static const char *const known[] = {"pad_id", "pad_to_multiple_of", NULL};
    lfl_dataset *ds = check_ds(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *kname = luaL_checkstring(L, 3);
    int kind = lfl_ds_collate_kind_from_string(kname);
    if (kind < 0) return luaL_error(L, "dataset:collate: unknown kind '%s' (pack, stack_packed, pairwise, kto, pairwise_packed)", kname);
    check_opts(L, 4, "dataset:collate", known);
    lfl_ds_collate_opts o = {opt_int(L, 4, "pad_id", 0, "dataset:collate"),
                             opt_int(L, 4, "pad_to_multiple_of", 0, "dataset:collate")};
    int64_t m = (int64_t)lua_objlen(L, 2);
    if (m == 0) return luaL_error(L, "dataset:collate: no indices");
    int64_t *idx = lua_newuserdata(L, sizeof(int64_t) * (size_t)m);
    for (int64_t i = 0; i < m; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        if (lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "dataset:collate: indices[%d] is a %s, not a row number", (int)i + 1, luaL_typename(L, -1));
        char who[64];
        snprintf(who, sizeof who, "dataset:collate: indices[%d]", (int)i + 1);
        idx[i] = check_row(L, ds, -1, who);
        lua_pop(L, 1);
    }
    lfl_ds_batch b;
    lfl_lua_check(L, lfl_dataset_collate(ds, idx, m, (lfl_ds_collate_kind)kind, &o, &b));
    lua_createtable(L, 0, 12);
    /* from here the tensors belong to Lua one by one; nothing below raises
     * before the last is handed over except out-of-memory */
    set_tensor(L, "input_ids", &b.input_ids);
    set_tensor(L, "labels", &b.labels);
    set_tensor(L, "position_ids", &b.position_ids);
    set_tensor(L, "segments", &b.segments);
    set_tensor(L, "attention_mask", &b.attention_mask);
    set_tensor(L, "kl_input_ids", &b.kl_input_ids);
    set_tensor(L, "kl_labels", &b.kl_labels);
    set_tensor(L, "kl_attention_mask", &b.kl_attention_mask);
    set_tensor(L, "kto_tags", &b.kto_tags);
    set_tensor(L, "lengths", &b.lengths);
    set_number(L, "ntokens", b.ntokens);
    set_number(L, "nlabels", b.nlabels);
    set_number(L, "nexamples", b.nexamples);
    if (kind == LFL_DS_PAIRWISE || kind == LFL_DS_PAIRWISE_PACKED) set_number(L, "n", b.n);
    return 1;
}

/* ---------------------------------------------------------------- batches */

typedef struct {
    lfl_ds_sampler *s;
    double end_epoch;  /* first epoch not to enter (inf: endless) */
} batches_box;

static batches_box *check_batches(lua_State *L, int idx)
{
    batches_box *b = luaL_checkudata(L, idx, BATCHES_MT);
    if (!b->s) luaL_error(L, "dataset batches: used after release");
    return b;
}

static int l_batches_gc(lua_State *L)
{
    batches_box *b = luaL_checkudata(L, 1, BATCHES_MT);
    lfl_ds_sampler_free(b->s);
    b->s = NULL;
    return 0;
}

/* ds:batches{batch_size, seed = 42, shuffle = true, epoch = 0, start = 0, epochs = 1}:
 * start = batches of `epoch` already consumed (a checkpoint's position) */
static int l_ds_batches(lua_State *L)
{
    static const char *const known[] = {"batch_size", "seed", "shuffle", "epoch", "start", "epochs", NULL};
    static const char *who = "dataset:batches";
    lfl_dataset *ds = check_ds(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    check_opts(L, 2, who, known);
    lua_getfield(L, 2, "batch_size");
    if (lua_isnil(L, -1)) return luaL_error(L, "%s: batch_size is required", who);
    lua_pop(L, 1);
    int64_t bs = opt_int(L, 2, "batch_size", 1, who), seed = opt_int(L, 2, "seed", 42, who);
    int64_t epoch = opt_int(L, 2, "epoch", 0, who), start = opt_int(L, 2, "start", 0, who);
    lua_getfield(L, 2, "shuffle");
    bool shuffle = lua_isnil(L, -1) ? true : lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "epochs");
    double epochs = lua_isnil(L, -1) ? 1 : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (!(epochs >= 0)) return luaL_error(L, "%s: epochs must be >= 0 (math.huge: endless)", who);
    batches_box *b = lua_newuserdata(L, sizeof *b);
    b->s = NULL;
    luaL_getmetatable(L, BATCHES_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_ds_sampler_new(ds->n, bs, seed, shuffle, &b->s));
    lfl_lua_check(L, lfl_ds_sampler_seek(b->s, epoch, start));
    b->end_epoch = (double)epoch + epochs;
    return 1;
}

/* the next batch: indices (1-based), epoch, batch number in the epoch
 * (1-based: the position after it); nothing past the last epoch */
static int l_batches_next(lua_State *L)
{
    batches_box *b = check_batches(L, 1);
    int64_t epoch, batch, nb = lfl_ds_sampler_batches_per_epoch(b->s);
    lfl_ds_sampler_position(b->s, &epoch, &batch);
    if (nb == 0 || (double)(batch >= nb ? epoch + 1 : epoch) >= b->end_epoch) return 0;
    const int64_t *idx;
    int64_t m;
    lfl_lua_check(L, lfl_ds_sampler_next(b->s, &idx, &m));
    lua_createtable(L, (int)m, 0);
    for (int64_t i = 0; i < m; i++) {
        lua_pushnumber(L, (lua_Number)(idx[i] + 1));
        lua_rawseti(L, -2, (int)i + 1);
    }
    lfl_ds_sampler_position(b->s, &epoch, &batch);
    lua_pushnumber(L, (lua_Number)epoch);
    lua_pushnumber(L, (lua_Number)batch);
    return 3;
}

static int l_batches_position(lua_State *L)
{
    int64_t epoch, batch;
    lfl_ds_sampler_position(check_batches(L, 1)->s, &epoch, &batch);
    lua_pushnumber(L, (lua_Number)epoch);
    lua_pushnumber(L, (lua_Number)batch);
    return 2;
}

static int l_batches_seek(lua_State *L)
{
    batches_box *b = check_batches(L, 1);
    lfl_lua_check(L, lfl_ds_sampler_seek(b->s, check_int(L, 2, "batches:seek: epoch"), check_int(L, 3, "batches:seek: batch")));
    return 0;
}

static int l_batches_per_epoch(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_ds_sampler_batches_per_epoch(check_batches(L, 1)->s));
    return 1;
}

static int l_batches_tostring(lua_State *L)
{
    batches_box *b = check_batches(L, 1);
    int64_t epoch, batch;
    lfl_ds_sampler_position(b->s, &epoch, &batch);
    lua_pushfstring(L, "lfl.DatasetBatches: epoch %d, %d of %d batches done", (int)epoch, (int)batch,
                    (int)lfl_ds_sampler_batches_per_epoch(b->s));
    return 1;
}

/* ---------------------------------------------------------------- building */

static lfl_ds_builder **check_builder(lua_State *L, int idx) { return luaL_checkudata(L, idx, BUILDER_MT); }

static int l_builder_gc(lua_State *L)
{
    lfl_ds_builder **box = check_builder(L, 1);
    lfl_ds_builder_free(*box);
    *box = NULL;
    return 0;
}

static const char *lua_kind(int t) { return t == LUA_TTABLE ? "list" : t == LUA_TBOOLEAN ? "boolean" : "number"; }

/* from_rows(rows): the fields of row 1 (sorted) become the columns; a list
 * field that is the very same table as an earlier one in every row is stored
 * once as an alias. Token lists go straight into the builder's buffers. */
static int l_from_rows(lua_State *L)
{
    static const char *who = "dataset.from_rows";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    int64_t n = (int64_t)lua_objlen(L, 1);
    lfl_ds_builder **box = lua_newuserdata(L, sizeof *box); /* 2: freed by __gc on any error */
    *box = NULL;
    luaL_getmetatable(L, BUILDER_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_ds_builder_new(box));
    lua_newtable(L); /* 3: field names, sorted */
    int nf = 0;
    if (n > 0) {
        lua_rawgeti(L, 1, 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "%s: row 1 is a %s, not a table", who, luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int t = lua_type(L, -1);
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "%s: row 1 has a %s key (field names are strings)", who, luaL_typename(L, -2));
            if (t != LUA_TTABLE && t != LUA_TBOOLEAN && t != LUA_TNUMBER)
                return luaL_error(L, "%s: row 1: field '%s' is a %s (lists, booleans and numbers can be stored)", who,
                                  lua_tostring(L, -2), luaL_typename(L, -1));
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawseti(L, 3, ++nf);
        }
        lua_pop(L, 1);
        lua_getglobal(L, "table");
        lua_getfield(L, -1, "sort");
        lua_pushvalue(L, 3);
        lua_call(L, 1, 0);
        lua_pop(L, 1);
    }
    const char **names = lua_newuserdata(L, sizeof(char *) * (size_t)(nf ? nf : 1)); /* 4 */
    int *types = lua_newuserdata(L, sizeof(int) * (size_t)(nf ? nf : 1));           /* 5 */
    int *alias = lua_newuserdata(L, sizeof(int) * (size_t)(nf ? nf : 1));           /* 6 */
    if (n > 0) {
        lua_rawgeti(L, 1, 1);
        for (int i = 0; i < nf; i++) {
            lua_rawgeti(L, 3, i + 1);
            names[i] = lua_tostring(L, -1); /* kept alive by table 3 */
            lua_pop(L, 1);
            lua_getfield(L, -1, names[i]);
            types[i] = lua_type(L, -1);
            alias[i] = -1;
            for (int j = 0; j < i && types[i] == LUA_TTABLE; j++) {
                if (types[j] != LUA_TTABLE || alias[j] >= 0) continue;
                lua_getfield(L, -2, names[j]);
                bool same = lua_rawequal(L, -1, -2);
                lua_pop(L, 1);
                if (same) { alias[i] = j; break; }
            }
            lua_pop(L, 1);
            lfl_ds_kind kind = types[i] == LUA_TTABLE ? LFL_DS_LIST : types[i] == LUA_TBOOLEAN ? LFL_DS_BOOL : LFL_DS_NUMBER;
            int col;
            lfl_lua_check(L, lfl_ds_builder_add_column(*box, names[i], kind, alias[i], &col));
        }
        lua_pop(L, 1);
    }
    luaL_checkstack(L, nf + 8, "dataset.from_rows: too many fields");
    for (int64_t r = 1; r <= n; r++) {
        lua_rawgeti(L, 1, (int)r);
        int row = lua_gettop(L);
        if (!lua_istable(L, row)) return luaL_error(L, "%s: row %d is a %s, not a table", who, (int)r, luaL_typename(L, row));
        int count = 0;
        lua_pushnil(L);
        while (lua_next(L, row)) { count++; lua_pop(L, 1); }
        for (int i = 0; i < nf; i++) {
            lua_getfield(L, row, names[i]);
            int t = lua_type(L, -1);
            if (t != types[i])
                return luaL_error(L, "%s: row %d: field '%s' is %s (row 1 has a %s)", who, (int)r, names[i],
                                  t == LUA_TNIL ? "missing" : luaL_typename(L, -1), lua_kind(types[i]));
        }
        if (count != nf)
            return luaL_error(L, "%s: row %d has %d fields, row 1 has %d (fields of every row: the same names)", who,
                              (int)r, count, nf);
        for (int i = 0; i < nf; i++) {
            int v = row + 1 + i;
            if (alias[i] >= 0) {
                if (lua_rawequal(L, v, row + 1 + alias[i])) continue;
                lfl_lua_check(L, lfl_ds_builder_unalias(*box, i)); /* this row breaks the sharing */
                alias[i] = -1;
            }
            if (types[i] == LUA_TBOOLEAN) {
                lfl_lua_check(L, lfl_ds_builder_scalar_append(*box, i, lua_toboolean(L, v)));
            } else if (types[i] == LUA_TNUMBER) {
                lua_Number x = lua_tonumber(L, v);
                if (x != floor(x) || fabs(x) > 9007199254740992.0)
                    return luaL_error(L, "%s: row %d: field '%s' = %f is not an integer", who, (int)r, names[i], x);
                lfl_lua_check(L, lfl_ds_builder_scalar_append(*box, i, (int64_t)x));
            } else {
                int64_t len = (int64_t)lua_objlen(L, v);
                int32_t *p = lfl_ds_builder_list_append(*box, i, len);
                if (!p) lfl_lua_check(L, LFL_ERR_MEM);
                for (int64_t k = 1; k <= len; k++) {
                    lua_rawgeti(L, v, (int)k);
                    lua_Number x = lua_tonumber(L, -1);
                    if (lua_type(L, -1) != LUA_TNUMBER || x != floor(x) || x < -2147483648.0 || x > 2147483647.0)
                        return luaL_error(L, "%s: row %d: %s[%d] is %s (expected an integer token id that fits in i32)",
                                          who, (int)r, names[i], (int)k,
                                          lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
                    p[k - 1] = (int32_t)x;
                    lua_pop(L, 1);
                }
            }
        }
        lua_settop(L, row - 1);
        lfl_lua_check(L, lfl_ds_builder_end_row(*box));
    }
    lfl_dataset *ds = NULL;
    lfl_lua_check(L, lfl_ds_builder_finish(*box, &ds));
    push_ds(L, ds);
    return 1;
}

/* from_tensors({name = {values =, offsets =} | {scalar =, kind =} | "target"}, n?) */
static int l_from_tensors(lua_State *L)
{
    static const char *who = "dataset.from_tensors";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_newtable(L); /* 3: sorted names */
    int nf = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "%s: column names are strings (got a %s)", who, luaL_typename(L, -2));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, ++nf);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, 3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    /* the row count: given, or from the first column with tensors */
    int64_t n = -1;
    if (!lua_isnil(L, 2)) n = check_int(L, 2, "dataset.from_tensors: n");
    for (int i = 1; i <= nf && n < 0; i++) {
        lua_rawgeti(L, 3, i);
        lua_gettable(L, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "offsets");
            lua_getfield(L, -2, "scalar");
            if (lfl_lua_is_tensor(L, -2)) n = lfl_numel(lfl_lua_check_tensor(L, -2)) - 1;
            else if (lfl_lua_is_tensor(L, -1)) n = lfl_numel(lfl_lua_check_tensor(L, -1));
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    if (n < 0) n = 0;
    lfl_dataset *ds = NULL;
    lfl_lua_check(L, lfl_dataset_new(n, &ds));
    push_ds(L, ds); /* 4: owns ds from here */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i <= nf; i++) {
            lua_rawgeti(L, 3, i);
            const char *name = lua_tostring(L, -1);
            lua_gettable(L, 1);
            int spec = lua_gettop(L);
            if (lua_type(L, spec) == LUA_TSTRING) {
                if (pass == 1) lfl_lua_check(L, lfl_dataset_add_alias(ds, name, lua_tostring(L, spec)));
            } else if (pass == 0) {
                if (!lua_istable(L, spec))
                    return luaL_error(L, "%s: column '%s' is a %s (expected {values =, offsets =}, {scalar =, kind =} "
                                      "or the name of the column it repeats)", who, name, luaL_typename(L, spec));
                lua_getfield(L, spec, "values");
                lua_getfield(L, spec, "offsets");
                lua_getfield(L, spec, "scalar");
                lua_getfield(L, spec, "kind");
                if (!lua_isnil(L, spec + 3)) {
                    const char *k = lua_isnil(L, spec + 4) ? "number" : luaL_checkstring(L, spec + 4);
                    if (strcmp(k, "bool") != 0 && strcmp(k, "number") != 0)
                        return luaL_error(L, "%s: column '%s': kind '%s' (bool or number)", who, name, k);
                    if (!lfl_lua_is_tensor(L, spec + 3)) return luaL_error(L, "%s: column '%s': scalar is not a tensor", who, name);
                    lfl_lua_check(L, lfl_dataset_add_scalar(ds, name, k[0] == 'b' ? LFL_DS_BOOL : LFL_DS_NUMBER,
                                                            lfl_lua_check_tensor(L, spec + 3)));
                } else {
                    if (!lfl_lua_is_tensor(L, spec + 1) || !lfl_lua_is_tensor(L, spec + 2))
                        return luaL_error(L, "%s: column '%s' needs values and offsets tensors", who, name);
                    lfl_lua_check(L, lfl_dataset_add_list(ds, name, lfl_lua_check_tensor(L, spec + 1),
                                                          lfl_lua_check_tensor(L, spec + 2)));
                }
            }
            lua_settop(L, 4);
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- files */

/* the metadata table at idx (string -> string) as two arrays */
static int meta_arrays(lua_State *L, int idx, const char ***keys, const char ***values)
{
    *keys = *values = NULL;
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    int m = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { m++; lua_pop(L, 1); }
    *keys = lua_newuserdata(L, sizeof(char *) * (size_t)(m ? m : 1));
    *values = lua_newuserdata(L, sizeof(char *) * (size_t)(m ? m : 1));
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "dataset.save: metadata keys and values must be strings");
        (*keys)[k] = lua_tostring(L, -2);
        (*values)[k++] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return m;
}

/* ds:save(path, meta?): one split, named "" */
static int l_ds_save(lua_State *L)
{
    lfl_dataset *ds = check_ds(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char **mk, **mv;
    int m = meta_arrays(L, 3, &mk, &mv);
    const char *name = "";
    lfl_lua_check(L, lfl_dataset_save(path, 1, &name, &ds, m, mk, mv));
    return 0;
}

/* lfl.dataset.save(path, {split = ds, ...}, meta?): splits sorted by name */
static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_newtable(L); /* 4 */
    int ns = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "dataset.save: split names are strings");
        check_ds(L, -1);
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 4, ++ns);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, 4);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    const char **names = lua_newuserdata(L, sizeof(char *) * (size_t)(ns ? ns : 1));
    lfl_dataset **sets = lua_newuserdata(L, sizeof(lfl_dataset *) * (size_t)(ns ? ns : 1));
    for (int i = 0; i < ns; i++) {
        lua_rawgeti(L, 4, i + 1);
        names[i] = lua_tostring(L, -1);
        lua_gettable(L, 2);
        sets[i] = check_ds(L, -1);
        lua_pop(L, 1);
    }
    const char **mk, **mv;
    int m = meta_arrays(L, 3, &mk, &mv);
    lfl_lua_check(L, lfl_dataset_save(path, ns, names, sets, m, mk, mv));
    return 0;
}

typedef struct { lfl_ds_file *f; } file_box;

static int l_file_gc(lua_State *L)
{
    file_box *b = lua_touserdata(L, 1);
    lfl_ds_file_free(b->f);
    b->f = NULL;
    return 0;
}

/* opens path into a GC-guarded box on the stack */
static lfl_ds_file *open_file(lua_State *L, const char *path)
{
    file_box *b = lua_newuserdata(L, sizeof *b);
    b->f = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_file_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_dataset_load(path, &b->f));
    return b->f;
}

static void push_file_meta(lua_State *L, const lfl_ds_file *f)
{
    lua_createtable(L, 0, f->n_meta);
    for (int i = 0; i < f->n_meta; i++) {
        lua_pushstring(L, f->meta_values[i]);
        lua_setfield(L, -2, f->meta_keys[i]);
    }
}

/* load(path, split?) -> ds, meta; without a split name the file must hold one */
static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *want = luaL_optstring(L, 2, NULL);
    lfl_ds_file *f = open_file(L, path);
    int pick = -1;
    for (int i = 0; i < f->nsplits; i++)
        if (want ? strcmp(f->names[i], want) == 0 : f->nsplits == 1) pick = i;
    if (pick < 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int i = 0; i < f->nsplits; i++) {
            if (i) luaL_addstring(&b, ", ");
            lua_pushfstring(L, "'%s'", f->names[i]);
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        if (want) return luaL_error(L, "dataset.load: %s has no split '%s' (it has %s)", path, want, lua_tostring(L, -1));
        return luaL_error(L, "dataset.load: %s holds %d splits (%s): name one, or use load_all", path, f->nsplits,
                          lua_tostring(L, -1));
    }
    push_ds(L, lfl_dataset_retain(f->sets[pick]));
    push_file_meta(L, f);
    return 2;
}

static int l_load_all(lua_State *L)
{
    lfl_ds_file *f = open_file(L, luaL_checkstring(L, 1));
    lua_createtable(L, 0, f->nsplits);
    for (int i = 0; i < f->nsplits; i++) {
        push_ds(L, lfl_dataset_retain(f->sets[i]));
        lua_setfield(L, -2, f->names[i]);
    }
    push_file_meta(L, f);
    return 2;
}

static int l_is_dataset(lua_State *L)
{
    lua_pushboolean(L, luaL_testudata(L, 1, DS_MT) != NULL);
    return 1;
}

/* ---------------------------------------------------------------- registration */

static const luaL_Reg ds_methods[] = {
    {"row", l_ds_row}, {"fields", l_ds_fields}, {"num_tokens", l_ds_num_tokens}, {"column", l_ds_column},
    {"order", l_ds_order}, {"collate", l_ds_collate}, {"batches", l_ds_batches}, {"save", l_ds_save},
    {NULL, NULL},
};

static const luaL_Reg batches_methods[] = {
    {"next", l_batches_next}, {"position", l_batches_position}, {"seek", l_batches_seek},
    {"batches_per_epoch", l_batches_per_epoch}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"from_rows", l_from_rows}, {"from_tensors", l_from_tensors}, {"load", l_load}, {"load_all", l_load_all},
    {"save", l_save}, {"is_dataset", l_is_dataset}, {NULL, NULL},
};

static void set_funcs(lua_State *L, const luaL_Reg *r)
{
    for (; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
}

LFL_LUA_MODULE(dataset)
{
    luaL_newmetatable(L, DS_MT);
    lua_newtable(L);
    set_funcs(L, ds_methods);
    lua_pushcclosure(L, l_ds_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_ds_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, l_ds_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, l_ds_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, BATCHES_MT);
    lua_newtable(L);
    set_funcs(L, batches_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_batches_next);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, l_batches_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, l_batches_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, BUILDER_MT);
    lua_pushcfunction(L, l_builder_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lfl_lua_register_funcs(L, "dataset", funcs);
}
