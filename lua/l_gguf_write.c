/* lfl.gguf.write(path, spec) writes a GGUF file (core/io/gguf_write.c);
 * lfl.gguf.quantize(t, "q8_0"|"q5_0"|"q4_k") quantizes a tensor into a ggml
 * block type (core/quant/ggml_quantize.c), which t:to("f32") reads back.
 *
 * spec = {
 *   kv = {{key, type, value}, ...},  -- in file order; type: u8 i8 u16 i16 u32
 *        -- i32 u64 i64 f32 f64 bool string, an array of one as "[f32]",
 *        -- "[string]", ..., or "copy": the key with its type and value taken
 *        -- from spec.copy_from (a GGUF file)
 *   copy_from = path,
 *   tensors = {{name, tensor, dtype}, ...}, -- dtype f32 f16 bf16 q8_0 q5_0 q4_k
 * } */
#include <string.h>
#include "bridge.h"
#include "io/gguf_write.h"
#include "quant/ggml_quantize.h"
#include "util/sha256.h"

#define WRITER_MT "lfl.GGUFWriter"
#define SRC_MT "lfl.GGUFWriterSource"

static int writer_gc(lua_State *L)
{
    lfl_gguf_writer **box = luaL_checkudata(L, 1, WRITER_MT);
    lfl_gguf_writer_free(*box);
    *box = NULL;
    return 0;
}

static int src_gc(lua_State *L)
{
    lfl_gguf **box = luaL_checkudata(L, 1, SRC_MT);
    lfl_gguf_close(*box);
    *box = NULL;
    return 0;
}

static const char *const TYPE_NAMES[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
                                         "u64", "i64", "f64"};

static int type_of(const char *s, size_t n)
{
    for (int i = 0; i < LFL_GGUF_NTYPES; i++)
        if (strlen(TYPE_NAMES[i]) == n && memcmp(TYPE_NAMES[i], s, n) == 0 && i != LFL_GGUF_ARRAY) return i;
    return -1;
}

/* the ggml type id of an lfl dtype name */
static int ggml_of(const char *name)
{
    int dt = lfl_dtype_from_name(name);
    if (dt < 0) return -1;
    for (int g = 0; g < LFL_GGML_NTYPES; g++)
        if (lfl_ggml_type_to_dtype(g) == dt) return g;
    return -1;
}

static double num_at(lua_State *L, int tbl, int i, const char *key)
{
    lua_rawgeti(L, tbl, i);
    double v;
    if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
    else if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
    else return luaL_error(L, "gguf.write: key '%s': element %d is a %s, expected a number", key, i, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

/* one kv entry (the table at idx) */
static void set_kv(lua_State *L, lfl_gguf_writer *w, int idx, int n, const lfl_gguf *src, const char *src_path)
{
    lua_rawgeti(L, idx, 1);
    lua_rawgeti(L, idx, 2);
    const char *key = lua_tostring(L, -2), *ty = lua_tostring(L, -1);
    if (!key || !ty) luaL_error(L, "gguf.write: kv entry %d: expected {key, type, value}", n);
    int val = lua_gettop(L) + 1;
    lua_rawgeti(L, idx, 3);
    size_t tl = strlen(ty);
    if (strcmp(ty, "copy") == 0) {
        if (!src) luaL_error(L, "gguf.write: key '%s' is to be copied, but spec.copy_from is not set", key);
        const lfl_gguf_kv *kv = lfl_gguf_find(src, key);
        if (!kv) luaL_error(L, "gguf.write: key '%s' is not in %s", key, src_path);
        lfl_lua_check(L, lfl_gguf_writer_copy_kv(w, kv));
    } else if (tl > 2 && ty[0] == '[' && ty[tl - 1] == ']') {
        int et = type_of(ty + 1, tl - 2);
        if (et < 0) luaL_error(L, "gguf.write: key '%s': unknown array type '%s'", key, ty);
        if (!lua_istable(L, val)) luaL_error(L, "gguf.write: key '%s': expected a list for type %s", key, ty);
        size_t cnt = lua_objlen(L, val);
        if (et == LFL_GGUF_STRING) {
            const char **s = lua_newuserdata(L, (cnt ? cnt : 1) * sizeof *s);
            size_t *len = lua_newuserdata(L, (cnt ? cnt : 1) * sizeof *len);
            /* the strings stay reachable from the list at val while written */
            for (size_t i = 0; i < cnt; i++) {
                lua_rawgeti(L, val, (int)i + 1);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "gguf.write: key '%s': element %d is a %s, expected a string", key, (int)i + 1,
                               luaL_typename(L, -1));
                s[i] = lua_tolstring(L, -1, &len[i]);
                lua_pop(L, 1);
            }
            lfl_lua_check(L, lfl_gguf_writer_set_arr_str(w, key, s, len, cnt));
            lua_pop(L, 2);
        } else {
            double *v = lua_newuserdata(L, (cnt ? cnt : 1) * sizeof *v);
            for (size_t i = 0; i < cnt; i++) v[i] = num_at(L, val, (int)i + 1, key);
            lfl_lua_check(L, lfl_gguf_writer_set_arr_num(w, key, (lfl_gguf_type)et, v, cnt));
            lua_pop(L, 1);
        }
    } else {
        int t = type_of(ty, tl);
        if (t < 0) luaL_error(L, "gguf.write: key '%s': unknown type '%s'", key, ty);
        if (t == LFL_GGUF_STRING) {
            size_t len;
            const char *s = lua_tolstring(L, val, &len);
            if (lua_type(L, val) != LUA_TSTRING) luaL_error(L, "gguf.write: key '%s': expected a string", key);
            lfl_lua_check(L, lfl_gguf_writer_set_str(w, key, s, len));
        } else if (t == LFL_GGUF_BOOL) {
            if (!lua_isboolean(L, val)) luaL_error(L, "gguf.write: key '%s': expected a boolean", key);
            lfl_lua_check(L, lfl_gguf_writer_set_bool(w, key, lua_toboolean(L, val)));
        } else {
            if (lua_type(L, val) != LUA_TNUMBER) luaL_error(L, "gguf.write: key '%s': expected a number", key);
            double v = lua_tonumber(L, val);
            if (t == LFL_GGUF_F32 || t == LFL_GGUF_F64)
                lfl_lua_check(L, lfl_gguf_writer_set_float(w, key, (lfl_gguf_type)t, v));
            else if (t == LFL_GGUF_U64 || t == LFL_GGUF_I64)
                lfl_lua_check(L, lfl_gguf_writer_set_int(w, key, (lfl_gguf_type)t, lfl_lua_check_int64(L, val, key)));
            else {
                if (v != (double)(int64_t)v) luaL_error(L, "gguf.write: key '%s': %f is not an integer", key, v);
                lfl_lua_check(L, lfl_gguf_writer_set_int(w, key, (lfl_gguf_type)t, (int64_t)v));
            }
        }
    }
    lua_settop(L, val - 3);
}

static int l_write(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lfl_gguf_writer **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, WRITER_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_gguf_writer_new(box));
    lfl_gguf_writer *w = *box;
    lfl_gguf **sbox = lua_newuserdata(L, sizeof *sbox);
    *sbox = NULL;
    luaL_getmetatable(L, SRC_MT);
    lua_setmetatable(L, -2);
    lua_getfield(L, 2, "copy_from");
    const char *src_path = lua_tostring(L, -1);
    if (src_path) lfl_lua_check(L, lfl_gguf_open(src_path, sbox));
    lua_getfield(L, 2, "kv");
    int kvs = lua_gettop(L);
    if (!lua_isnil(L, kvs)) {
        luaL_checktype(L, kvs, LUA_TTABLE);
        int n = (int)lua_objlen(L, kvs);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, kvs, i);
            if (!lua_istable(L, -1)) return luaL_error(L, "gguf.write: kv entry %d is not a table", i);
            set_kv(L, w, lua_gettop(L), i, *sbox, src_path);
            lua_pop(L, 1);
        }
    }
    lua_getfield(L, 2, "tensors");
    int ts = lua_gettop(L);
    if (!lua_isnil(L, ts)) {
        luaL_checktype(L, ts, LUA_TTABLE);
        int n = (int)lua_objlen(L, ts);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, ts, i);
            int e = lua_gettop(L);
            if (!lua_istable(L, e)) return luaL_error(L, "gguf.write: tensor entry %d is not a table", i);
            lua_rawgeti(L, e, 1);
            lua_rawgeti(L, e, 2);
            lua_rawgeti(L, e, 3);
            const char *name = lua_tostring(L, e + 1), *ty = lua_tostring(L, e + 3);
            if (!name || !lfl_lua_is_tensor(L, e + 2) || !ty)
                return luaL_error(L, "gguf.write: tensor entry %d: expected {name, tensor, dtype}", i);
            int g = ggml_of(ty);
            if (g < 0) return luaL_error(L, "gguf.write: tensor '%s': unknown type '%s'", name, ty);
            lfl_lua_check(L, lfl_gguf_writer_add_tensor(w, name, lfl_lua_check_tensor(L, e + 2), g));
            lua_settop(L, e - 1);
        }
    }
    lfl_lua_check(L, lfl_gguf_writer_save(w, path));
    return 0;
}

static int l_quantize(lua_State *L)
{
    lfl_tensor *t = lfl_lua_check_tensor(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int dt = lfl_dtype_from_name(name);
    if (dt < 0) return luaL_error(L, "gguf.quantize: unknown type '%s' (q8_0, q5_0, q4_k)", name);
    lfl_tensor *out = NULL;
    lfl_lua_check(L, lfl_quantize(t, (lfl_dtype)dt, &out));
    lfl_lua_push_tensor(L, out);
    return 1;
}

/* lfl.gguf.sha256(s) -> hex digest (the pre-tokenizer probe of lfl.model.gguf_export) */
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    lfl_sha256_buf(s, n, hex);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg funcs[] = {{"write", l_write}, {"quantize", l_quantize}, {"sha256", l_sha256}, {NULL, NULL}};

LFL_LUA_MODULE(gguf_write)
{
    luaL_newmetatable(L, WRITER_MT);
    lua_pushcfunction(L, writer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, SRC_MT);
    lua_pushcfunction(L, src_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lfl_lua_register_funcs(L, "gguf", funcs);
}
