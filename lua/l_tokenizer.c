/* The Tokenizer userdata: lfl._tokenizer.load(path) and the methods encode,
 * encode_batch, decode, token_to_id, id_to_token, vocab_size, special ids and
 * added tokens, to_json. stdlib/lfl/tokenizer.lua builds the public lfl.tokenizer on it. */
#include <stdlib.h>
#include <string.h>
#include "bridge.h"
#include "tokenizer/tokenizer.h"

#define TOK_MT "lfl.Tokenizer"
#define BATCH_MT "lfl.TokenizerBatch"

/* batch results held by a collectable box while Lua tables are built, so a
 * Lua memory error there does not leak them */
typedef struct {
    lfl_tok_encoding *encs;
    size_t n;
} batch_box;

static int batch_gc(lua_State *L)
{
    batch_box *b = luaL_checkudata(L, 1, BATCH_MT);
    for (size_t i = 0; i < b->n && b->encs; i++) lfl_tok_encoding_free(&b->encs[i]);
    free(b->encs);
    b->encs = NULL;
    b->n = 0;
    return 0;
}

static lfl_tokenizer *check_tok(lua_State *L, int idx)
{
    lfl_tokenizer **box = luaL_checkudata(L, idx, TOK_MT);
    if (!*box) luaL_argerror(L, idx, "tokenizer was freed");
    return *box;
}

static int l_gc(lua_State *L)
{
    lfl_tokenizer **box = luaL_checkudata(L, 1, TOK_MT);
    lfl_tokenizer_free(*box);
    *box = NULL;
    return 0;
}

static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lfl_tokenizer **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, TOK_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_tokenizer_load(path, box));
    return 1;
}

static bool opt_flag(lua_State *L, int idx, const char *key, bool def)
{
    if (!lua_istable(L, idx)) return def;
    lua_getfield(L, idx, key);
    bool v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static lfl_tok_encode_opts read_opts(lua_State *L, int idx)
{
    if (!lua_isnoneornil(L, idx)) luaL_checktype(L, idx, LUA_TTABLE);
    lfl_tok_encode_opts o = lfl_tok_encode_defaults();
    o.add_special_tokens = opt_flag(L, idx, "add_special_tokens", o.add_special_tokens);
    o.parse_special = opt_flag(L, idx, "parse_special", o.parse_special);
    o.offsets = opt_flag(L, idx, "offsets", o.offsets);
    return o;
}

static void push_ids(lua_State *L, const lfl_tok_encoding *e)
{
    lua_createtable(L, (int)e->n, 0);
    for (size_t i = 0; i < e->n; i++) {
        lua_pushinteger(L, e->ids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* {{start, end}, ...}: 0-based byte offsets, end exclusive (HF's meaning) */
static void push_offsets(lua_State *L, const lfl_tok_encoding *e)
{
    lua_createtable(L, (int)e->n, 0);
    for (size_t i = 0; i < e->n; i++) {
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, e->offsets[2 * i]);
        lua_rawseti(L, -2, 1);
        lua_pushinteger(L, e->offsets[2 * i + 1]);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* tok:encode(text, {add_special_tokens, parse_special, offsets}) -> ids, offsets */
static int l_encode(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    lfl_tok_encode_opts o = read_opts(L, 3);
    lfl_tok_encoding e = {0};
    lfl_status st = lfl_tokenizer_encode(tok, text, len, &o, &e);
    if (st != LFL_OK) {
        lfl_tok_encoding_free(&e);
        lfl_lua_check(L, st);
    }
    /* the encoding lives in C memory: a Lua memory error below would leak it,
     * so it is copied into a userdata-backed scratch first */
    size_t n = e.n;
    int32_t *ids = lua_newuserdata(L, sizeof *ids * (n ? n : 1));
    uint32_t *off = o.offsets ? lua_newuserdata(L, sizeof *off * 2 * (n ? n : 1)) : NULL;
    if (n) memcpy(ids, e.ids, sizeof *ids * n);
    if (off && n) memcpy(off, e.offsets, sizeof *off * 2 * n);
    lfl_tok_encoding_free(&e);
    lfl_tok_encoding view = {ids, off, n, n};
    push_ids(L, &view);
    if (!off) return 1;
    push_offsets(L, &view);
    return 2;
}

/* tok:encode_batch({text, ...}, opts) -> {ids, ...}, {offsets, ...} */
static int l_encode_batch(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lfl_tok_encode_opts o = read_opts(L, 3);
    size_t n = lua_objlen(L, 2);
    const char **texts = lua_newuserdata(L, sizeof *texts * (n ? n : 1));
    size_t *lens = lua_newuserdata(L, sizeof *lens * (n ? n : 1));
    /* the strings stay referenced by the argument table during the call */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "encode_batch: item %d is not a string", (int)i + 1);
        texts[i] = lua_tolstring(L, -1, &lens[i]);
        lua_pop(L, 1);
    }
    batch_box *box = lua_newuserdata(L, sizeof *box);
    box->encs = NULL;
    box->n = 0;
    luaL_getmetatable(L, BATCH_MT);
    lua_setmetatable(L, -2);
    box->encs = calloc(n ? n : 1, sizeof *box->encs);
    if (!box->encs) luaL_error(L, "encode_batch: out of memory");
    box->n = n;
    lfl_lua_check(L, lfl_tokenizer_encode_batch(tok, n, texts, lens, &o, box->encs));
    lua_createtable(L, (int)n, 0);
    int ids_idx = lua_gettop(L);
    lua_createtable(L, o.offsets ? (int)n : 0, 0);
    int off_idx = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        push_ids(L, &box->encs[i]);
        lua_rawseti(L, ids_idx, (int)i + 1);
        if (o.offsets) {
            push_offsets(L, &box->encs[i]);
            lua_rawseti(L, off_idx, (int)i + 1);
        }
        lfl_tok_encoding_free(&box->encs[i]);
    }
    if (!o.offsets) {
        lua_pop(L, 1);
        return 1;
    }
    return 2;
}

static int32_t *read_ids(lua_State *L, int idx, size_t *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    *n = lua_objlen(L, idx);
    int32_t *ids = lua_newuserdata(L, sizeof *ids * (*n ? *n : 1));
    for (size_t i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        if (!lua_isnumber(L, -1)) luaL_error(L, "decode: ids[%d] is not a number", (int)i + 1);
        ids[i] = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return ids;
}

/* tok:decode(ids, {skip_special_tokens}) -> string */
static int l_decode(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    size_t n;
    int32_t *ids = read_ids(L, 2, &n);
    bool skip = opt_flag(L, 3, "skip_special_tokens", false);
    char *s;
    size_t len;
    lfl_lua_check(L, lfl_tokenizer_decode(tok, ids, n, skip, &s, &len));
    lua_pushlstring(L, s, len);
    free(s);
    return 1;
}

static int l_token_to_id(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int32_t id = lfl_tokenizer_token_to_id(tok, s, len);
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
    return 1;
}

static int l_id_to_token(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    size_t len;
    const char *s = lfl_tokenizer_id_to_token(tok, (int32_t)luaL_checkinteger(L, 2), &len);
    if (!s) lua_pushnil(L);
    else lua_pushlstring(L, s, len);
    return 1;
}

static int l_vocab_size(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lfl_tokenizer_vocab_size(check_tok(L, 1)));
    return 1;
}

static int l_special_ids(lua_State *L)
{
    lfl_tok_special_ids s = lfl_tokenizer_special_ids(check_tok(L, 1));
    int32_t v[4] = {s.bos, s.eos, s.pad, s.unk};
    for (int i = 0; i < 4; i++) {
        if (v[i] < 0) lua_pushnil(L);
        else lua_pushinteger(L, v[i]);
    }
    return 4;
}

/* {{id =, content =, special =, lstrip =, rstrip =, normalized =, single_word =}, ...} in id order */
static int l_added_tokens(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    size_t n = lfl_tokenizer_n_added(tok);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const char *c;
        size_t len;
        int32_t id;
        bool special;
        lfl_tokenizer_added(tok, i, &c, &len, &id, &special);
        lfl_tok_added_flags f = lfl_tokenizer_added_flags(tok, i);
        lua_createtable(L, 0, 7);
        lua_pushinteger(L, id);
        lua_setfield(L, -2, "id");
        lua_pushlstring(L, c, len);
        lua_setfield(L, -2, "content");
        lua_pushboolean(L, special);
        lua_setfield(L, -2, "special");
        lua_pushboolean(L, f.lstrip);
        lua_setfield(L, -2, "lstrip");
        lua_pushboolean(L, f.rstrip);
        lua_setfield(L, -2, "rstrip");
        lua_pushboolean(L, f.normalized);
        lua_setfield(L, -2, "normalized");
        lua_pushboolean(L, f.single_word);
        lua_setfield(L, -2, "single_word");
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int l_is_special(lua_State *L)
{
    lua_pushboolean(L, lfl_tokenizer_is_special(check_tok(L, 1), (int32_t)luaL_checkinteger(L, 2)));
    return 1;
}

static int l_describe(lua_State *L)
{
    lua_pushstring(L, lfl_tokenizer_describe(check_tok(L, 1)));
    return 1;
}

/* tok:to_json() -> the tokenizer.json text (core/tokenizer/tok_save.c) */
static int l_to_json(lua_State *L)
{
    lfl_tokenizer *tok = check_tok(L, 1);
    char *s;
    size_t n;
    lfl_lua_check(L, lfl_tokenizer_to_json(tok, &s, &n));
    lua_pushlstring(L, s, n);
    free(s);
    return 1;
}

static const luaL_Reg methods[] = {
    {"encode", l_encode}, {"encode_batch", l_encode_batch}, {"decode", l_decode},
    {"token_to_id", l_token_to_id}, {"id_to_token", l_id_to_token}, {"vocab_size", l_vocab_size},
    {"special_ids", l_special_ids}, {"added_tokens", l_added_tokens}, {"is_special", l_is_special},
    {"describe", l_describe}, {"to_json", l_to_json}, {NULL, NULL},
};

LFL_LUA_MODULE(tokenizer)
{
    lua_getglobal(L, "lfl");
    lua_newtable(L); /* lfl._tokenizer */
    lua_pushcfunction(L, l_load);
    lua_setfield(L, -2, "load");
    luaL_newmetatable(L, BATCH_MT);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, TOK_MT);
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    for (const luaL_Reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_setfield(L, -3, "methods");   /* lfl._tokenizer.methods */
    lua_setfield(L, -2, "mt");        /* lfl._tokenizer.mt */
    lua_setfield(L, -2, "_tokenizer");
    lua_pop(L, 1);
}
