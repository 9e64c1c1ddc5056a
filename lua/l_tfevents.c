/* lfl._tfevents: TensorBoard event records (core/io/tfevents.h).
 *   version_record(wall_time, writer?) -> bytes    scalar_record(wall_time, step, tag, value) -> bytes
 *   write_version(path, wall_time, writer?)        write_scalars(path, wall_time, step, {tag...}, {value...})
 *   masked_crc(bytes) -> TFRecord's masked CRC32C    walltime() -> seconds since the epoch (sub-second)
 *   hostname() -> name */
#define _GNU_SOURCE
#include "bridge.h"
#include "io/tfevents.h"
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t check_step(lua_State *L, int idx)
{
    lua_Number s = luaL_checknumber(L, idx);
    if (s != s || s < -9.2e18 || s > 9.2e18 || s != (lua_Number)(int64_t)s)
        return luaL_error(L, "tfevents: step must be an integer, got %f", (double)s);
    return (int64_t)s;
}

static void push_record(lua_State *L, size_t (*make)(uint8_t *, size_t, void *), void *ctx)
{
    size_t n = make(NULL, 0, ctx);
    uint8_t *buf = lua_newuserdata(L, n);
    make(buf, n, ctx);
    lua_pushlstring(L, (const char *)buf, n);
}

typedef struct { double wall; int64_t step; const char *tag, *writer; float value; } rec_args;

static size_t make_version(uint8_t *b, size_t cap, void *c)
{
    rec_args *a = c;
    return lfl_tfevents_version_record(b, cap, a->wall, a->writer);
}

static size_t make_scalar(uint8_t *b, size_t cap, void *c)
{
    rec_args *a = c;
    return lfl_tfevents_scalar_record(b, cap, a->wall, a->step, a->tag, a->value);
}

static int l_version_record(lua_State *L)
{
    rec_args a = {.wall = luaL_checknumber(L, 1), .writer = luaL_optstring(L, 2, NULL)};
    push_record(L, make_version, &a);
    return 1;
}

static int l_scalar_record(lua_State *L)
{
    rec_args a = {.wall = luaL_checknumber(L, 1), .step = check_step(L, 2), .tag = luaL_checkstring(L, 3),
                  .value = (float)luaL_checknumber(L, 4)};
    push_record(L, make_scalar, &a);
    return 1;
}

static int l_write_version(lua_State *L)
{
    lfl_lua_check(L, lfl_tfevents_write_version(luaL_checkstring(L, 1), luaL_checknumber(L, 2),
                                                luaL_optstring(L, 3, NULL)));
    return 0;
}

static int l_write_scalars(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    double wall = luaL_checknumber(L, 2);
    int64_t step = check_step(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    luaL_checktype(L, 5, LUA_TTABLE);
    int n = (int)lua_objlen(L, 4);
    if ((int)lua_objlen(L, 5) != n)
        return luaL_error(L, "tfevents.write_scalars: %d tags but %d values", n, (int)lua_objlen(L, 5));
    const char **tags = lua_newuserdata(L, sizeof *tags * (size_t)(n ? n : 1));
    float *vals = lua_newuserdata(L, sizeof *vals * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 4, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "tfevents.write_scalars: tag %d is not a string", i + 1);
        tags[i] = lua_tostring(L, -1); /* anchored by the tags table */
        lua_pop(L, 1);
        lua_rawgeti(L, 5, i + 1);
        if (lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "tfevents.write_scalars: the value of '%s' is not a number", tags[i]);
        vals[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lfl_lua_check(L, lfl_tfevents_write_scalars(path, wall, step, n, tags, vals));
    return 0;
}

static int l_masked_crc(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushnumber(L, (lua_Number)lfl_tfevents_masked_crc((const uint8_t *)s, n));
    return 1;
}

static int l_walltime(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
    return 1;
}

static int l_hostname(lua_State *L)
{
    char buf[256];
    if (gethostname(buf, sizeof buf) != 0) strcpy(buf, "localhost");
    buf[sizeof buf - 1] = 0;
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"version_record", l_version_record}, {"scalar_record", l_scalar_record}, {"write_version", l_write_version},
    {"write_scalars", l_write_scalars}, {"masked_crc", l_masked_crc},
    {"walltime", l_walltime}, {"hostname", l_hostname}, {NULL, NULL},
};

LFL_LUA_MODULE(tfevents) { lfl_lua_register_funcs(L, "_tfevents", funcs); }
