/* lfl.fs: file work for Lua code through core/fs.h, so no stdlib, recipe or
 * REPL code builds a shell command. Failing calls raise the core message
 * ("mkdir 'x/y': 'x' is not a directory"); read returns nil + message. Paths
 * are byte strings; one holding a NUL byte is refused, never truncated.
 *   fs.mkdir(path)                  fs.list(dir) -> {names, sorted}
 *   fs.remove(path) -> removed?     fs.write(path, text)   (atomic)
 *   fs.read(path) -> text | nil, message
 *   fs.exists(path) -> bool         fs.isdir(path) -> bool   (follow links)
 *   fs.stat(path [, follow]) -> {kind = "file"|"directory"|"link"|"other",
 *                                size =, mtime =, mode =} | nil
 *   fs.copy(src, dst)  (atomic; into dst when dst is a folder)
 *   fs.walk(dir) -> {relative paths of regular files, sorted; find -L}
 *   fs.symlink(target, path)
 *   fs.isatty(fd) -> bool           fs.writable_dir(path [, label])
 *   fs.realpath(path) -> absolute path, links resolved | nil, message
 *   fs.read_at(path, offset [, max]) -> the bytes from offset (at most max,
 *                                   default 1 MiB; "" at the end) | nil, message */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include "bridge.h"
#include "fs.h"

static const char *check_path(lua_State *L, int idx)
{
    size_t n;
    const char *p = luaL_checklstring(L, idx, &n);
    if (strlen(p) != n) luaL_error(L, "fs: path contains a NUL byte: '%s...'", p);
    return p;
}

static void push_names(lua_State *L, lfl_fs_names *names)
{
    lua_createtable(L, (int)names->n, 0);
    for (size_t i = 0; i < names->n; i++) {
        lua_pushstring(L, names->items[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lfl_fs_names_free(names);
}

static int l_mkdir(lua_State *L)
{
    lfl_lua_check(L, lfl_fs_mkdir(check_path(L, 1)));
    return 0;
}

static int l_list(lua_State *L)
{
    lfl_fs_names names;
    lfl_lua_check(L, lfl_fs_list(check_path(L, 1), &names));
    push_names(L, &names);
    return 1;
}

static int l_walk(lua_State *L)
{
    lfl_fs_names names;
    lfl_lua_check(L, lfl_fs_walk(check_path(L, 1), &names));
    push_names(L, &names);
    return 1;
}

static int l_remove(lua_State *L)
{
    bool removed;
    lfl_lua_check(L, lfl_fs_remove(check_path(L, 1), &removed));
    lua_pushboolean(L, removed);
    return 1;
}

static int l_write(lua_State *L)
{
    const char *path = check_path(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    lfl_lua_check(L, lfl_fs_write(path, text, n));
    return 0;
}

static int l_read(lua_State *L)
{
    char *data;
    size_t n;
    if (lfl_fs_read(check_path(L, 1), &data, &n) != LFL_OK) {
        lua_pushnil(L);
        lua_pushstring(L, lfl_last_error());
        return 2;
    }
    lua_pushlstring(L, data, n);
    free(data);
    return 1;
}

static lfl_fs_kind kind_of(lua_State *L, const char *path)
{
    lfl_fs_info info;
    lfl_lua_check(L, lfl_fs_stat(path, true, &info));
    return info.kind;
}

static int l_exists(lua_State *L)
{
    lua_pushboolean(L, kind_of(L, check_path(L, 1)) != LFL_FS_NONE);
    return 1;
}

static int l_isdir(lua_State *L)
{
    lua_pushboolean(L, kind_of(L, check_path(L, 1)) == LFL_FS_DIR);
    return 1;
}

static int l_stat(lua_State *L)
{
    const char *path = check_path(L, 1);
    lfl_fs_info info;
    lfl_lua_check(L, lfl_fs_stat(path, lua_toboolean(L, 2), &info));
    if (info.kind == LFL_FS_NONE) {
        lua_pushnil(L);
        return 1;
    }
    static const char *kinds[] = {"none", "file", "directory", "link", "other"};
    lua_createtable(L, 0, 4);
    lua_pushstring(L, kinds[info.kind]);
    lua_setfield(L, -2, "kind");
    lua_pushnumber(L, (lua_Number)info.size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)info.mtime);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)info.mode);
    lua_setfield(L, -2, "mode");
    return 1;
}

static int l_copy(lua_State *L)
{
    lfl_lua_check(L, lfl_fs_copy(check_path(L, 1), check_path(L, 2)));
    return 0;
}

static int l_symlink(lua_State *L)
{
    lfl_lua_check(L, lfl_fs_symlink(check_path(L, 1), check_path(L, 2)));
    return 0;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, lfl_fs_isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_writable_dir(lua_State *L)
{
    const char *path = check_path(L, 1);
    lfl_lua_check(L, lfl_fs_writable_dir(path, luaL_optstring(L, 2, NULL)));
    return 0;
}

static int l_realpath(lua_State *L)
{
    const char *p = check_path(L, 1);
    char buf[PATH_MAX];
    if (!realpath(p, buf)) {
        lua_pushnil(L);
        lua_pushfstring(L, "'%s': %s", p, strerror(errno));
        return 2;
    }
    lua_pushstring(L, buf);
    return 1;
}

/* for following a file another process appends to (a training run's logs) */
static int l_read_at(lua_State *L)
{
    const char *p = check_path(L, 1);
    lua_Number off = luaL_checknumber(L, 2);
    lua_Integer max = luaL_optinteger(L, 3, 1 << 20);
    if (off < 0 || max < 0) return luaL_error(L, "fs.read_at: offset and max must be >= 0");
    FILE *f = fopen(p, "rb");
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "'%s': %s", p, strerror(errno));
        return 2;
    }
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) {
        fclose(f);
        lua_pushliteral(L, "");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t left = (size_t)max;
    while (left > 0) {
        char *dst = luaL_prepbuffer(&b);
        size_t want = left < LUAL_BUFFERSIZE ? left : LUAL_BUFFERSIZE;
        size_t got = fread(dst, 1, want, f);
        luaL_addsize(&b, got);
        left -= got;
        if (got < want) break;
    }
    fclose(f);
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"mkdir", l_mkdir}, {"list", l_list}, {"remove", l_remove}, {"write", l_write},
    {"read", l_read}, {"exists", l_exists}, {"isdir", l_isdir}, {"stat", l_stat},
    {"copy", l_copy}, {"walk", l_walk}, {"symlink", l_symlink}, {"isatty", l_isatty}, {"writable_dir", l_writable_dir},
    {"realpath", l_realpath}, {"read_at", l_read_at},
    {NULL, NULL},
};

LFL_LUA_MODULE(fs)
{
    lfl_lua_register_funcs(L, "fs", funcs);
}
