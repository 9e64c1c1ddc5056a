/* lfl._stream: the record reader of core/io/linereader.h for Lua.
 *   local r = lfl._stream.open(path)
 *   r:line() / r:json_item() / r:csv_record() -> string, or nil at the end
 *   r:lines(n) -> up to n lines in a table (fewer at the end; empty when done)
 *   r:tell() -> byte offset of the next record   r:seek(offset)
 *   r:bytes_read()   r:close()   (also closed by the garbage collector) */
#include "bridge.h"
#include "io/linereader.h"

#define READER_MT "lfl.StreamReader"

static lfl_linereader **box_of(lua_State *L)
{
    lfl_linereader **box = luaL_checkudata(L, 1, READER_MT);
    if (!*box) luaL_error(L, "stream reader: used after close()");
    return box;
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lfl_linereader **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, READER_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_linereader_open(path, box));
    return 1;
}

typedef lfl_status (*next_fn)(lfl_linereader *, const char **, size_t *, int *);

static int push_next(lua_State *L, next_fn fn)
{
    lfl_linereader **box = box_of(L);
    const char *s;
    size_t n;
    int eof;
    lfl_lua_check(L, fn(*box, &s, &n, &eof));
    if (eof) lua_pushnil(L);
    else lua_pushlstring(L, s, n);
    return 1;
}

static int l_line(lua_State *L) { return push_next(L, lfl_linereader_line); }
static int l_json_item(lua_State *L) { return push_next(L, lfl_linereader_json_item); }
static int l_csv_record(lua_State *L) { return push_next(L, lfl_linereader_csv_record); }

/* several lines per call: fewer crossings of the Lua/C boundary for JSONL */
static int l_lines(lua_State *L)
{
    lfl_linereader **box = box_of(L);
    int want = (int)luaL_optinteger(L, 2, 256);
    lua_createtable(L, want > 0 ? want : 0, 0);
    for (int i = 1; i <= want; i++) {
        const char *s;
        size_t n;
        int eof;
        lfl_lua_check(L, lfl_linereader_line(*box, &s, &n, &eof));
        if (eof) break;
        lua_pushlstring(L, s, n);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

static int l_tell(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_linereader_tell(*box_of(L)));
    return 1;
}

static int l_seek(lua_State *L)
{
    lfl_linereader **box = box_of(L);
    lfl_lua_check(L, lfl_linereader_seek(*box, (int64_t)luaL_checknumber(L, 2)));
    return 0;
}

static int l_bytes_read(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lfl_linereader_bytes_read(*box_of(L)));
    return 1;
}

static int l_close(lua_State *L)
{
    lfl_linereader **box = luaL_checkudata(L, 1, READER_MT);
    lfl_linereader_close(*box);
    *box = NULL;
    return 0;
}

static const luaL_Reg methods[] = {
    {"line", l_line}, {"json_item", l_json_item}, {"csv_record", l_csv_record}, {"lines", l_lines},
    {"tell", l_tell}, {"seek", l_seek}, {"bytes_read", l_bytes_read}, {"close", l_close}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"open", l_open}, {NULL, NULL},
};

LFL_LUA_MODULE(linereader)
{
    luaL_newmetatable(L, READER_MT);
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    for (const luaL_Reg *m = methods; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lfl_lua_register_funcs(L, "_stream", funcs);
}
