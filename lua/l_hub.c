/* lfl._hub: the C Hub client for Lua (download, upload_folder, info, cache
 * paths, pattern matching, sha256). stdlib/lfl/hub.lua wraps it as lfl.hub with resolve(). */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include "bridge.h"
#include "hub/hub.h"
#include "hub/post.h"

#define MAX_PATTERNS 256

typedef struct {
    lfl_hub_opts o;
    const char *allow[MAX_PATTERNS], *ignore[MAX_PATTERNS];
    const char *filename;
} hub_args;

static const char *opt_str(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "hub: option '%s' must be a string", key);
        s = lua_tostring(L, -1); /* the string stays alive: it is in the options table */
    }
    lua_pop(L, 1);
    return s;
}

static int opt_bool(lua_State *L, int t, const char *key, int def)
{
    lua_getfield(L, t, key);
    int v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "hub: option '%s' must be true or false", key);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int opt_int(lua_State *L, int t, const char *key, int def)
{
    lua_getfield(L, t, key);
    int v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "hub: option '%s' must be a number", key);
        v = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* a pattern option: one string or a list of strings; returns the count */
static int opt_patterns(lua_State *L, int t, const char *key, const char **out)
{
    lua_getfield(L, t, key);
    int n = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        out[n++] = lua_tostring(L, -1);
    } else if (lua_istable(L, -1)) {
        int len = (int)lua_objlen(L, -1);
        if (len > MAX_PATTERNS) luaL_error(L, "hub: option '%s' has %d patterns (at most %d)", key, len, MAX_PATTERNS);
        for (int i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "hub: option '%s' entry %d must be a string", key, i);
            out[n++] = lua_tostring(L, -1); /* kept alive by the list */
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "hub: option '%s' must be a string or a list of strings", key);
    }
    lua_pop(L, 1);
    return n;
}

/* reads the options table at index t (may be none/nil); `extra`: more keys
 * the caller reads itself (NULL-terminated, or NULL) */
static void read_opts_ex(lua_State *L, int t, hub_args *a, const char *const *extra)
{
    memset(a, 0, sizeof *a);
    lfl_hub_opts_init(&a->o);
    if (lua_isnoneornil(L, t)) return;
    luaL_checktype(L, t, LUA_TTABLE);
    static const char *known[] = {"revision", "filename", "allow_patterns", "ignore_patterns", "repo_type", "token",
                                  "local_dir", "cache_dir", "endpoint", "offline", "max_workers", "progress",
                                  "retries", "force", NULL};
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        bool ok = false;
        if (lua_type(L, -1) == LUA_TSTRING) {
            for (const char **k = known; *k && !ok; k++) ok = strcmp(*k, lua_tostring(L, -1)) == 0;
            for (const char *const *k = extra; k && *k && !ok; k++) ok = strcmp(*k, lua_tostring(L, -1)) == 0;
        }
        if (!ok) {
            char more[256] = "";
            for (const char *const *k = extra; k && *k; k++) {
                size_t len = strlen(more);
                snprintf(more + len, sizeof more - len, ", %s", *k);
            }
            luaL_error(L, "hub: unknown option '%s' (known: revision, filename, allow_patterns, ignore_patterns, "
                          "repo_type, token, local_dir, cache_dir, endpoint, offline, max_workers, progress, "
                          "retries, force%s)", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1),
                       more);
        }
    }
    a->o.revision = opt_str(L, t, "revision");
    a->filename = opt_str(L, t, "filename");
    a->o.n_allow = opt_patterns(L, t, "allow_patterns", a->allow);
    a->o.allow = a->allow;
    a->o.n_ignore = opt_patterns(L, t, "ignore_patterns", a->ignore);
    a->o.ignore = a->ignore;
    const char *type = opt_str(L, t, "repo_type");
    if (!type || !strcmp(type, "model")) a->o.repo_type = LFL_HUB_MODEL;
    else if (!strcmp(type, "dataset")) a->o.repo_type = LFL_HUB_DATASET;
    else if (!strcmp(type, "space")) a->o.repo_type = LFL_HUB_SPACE;
    else luaL_error(L, "hub: repo_type must be \"model\", \"dataset\" or \"space\", not \"%s\"", type);
    lua_getfield(L, t, "token");
    if (lua_type(L, -1) == LUA_TSTRING) a->o.token = lua_tostring(L, -1);
    else if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) a->o.no_token = true;
    else if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) luaL_error(L, "hub: option 'token' must be a string or false");
    lua_pop(L, 1);
    a->o.local_dir = opt_str(L, t, "local_dir");
    a->o.cache_dir = opt_str(L, t, "cache_dir");
    a->o.endpoint = opt_str(L, t, "endpoint");
    a->o.offline = opt_bool(L, t, "offline", -1);
    a->o.progress = opt_bool(L, t, "progress", -1);
    a->o.force = opt_bool(L, t, "force", 0) != 0;
    a->o.max_workers = opt_int(L, t, "max_workers", 0);
    a->o.retries = opt_int(L, t, "retries", -1);
}

static void read_opts(lua_State *L, int t, hub_args *a) { read_opts_ex(L, t, a, NULL); }

/* Ctrl-C during a download cancels it (the partial file stays resumable) */
static void on_sigint(int sig)
{
    (void)sig;
    lfl_hub_cancel();
}

static int l_download(lua_State *L)
{
    const char *repo = luaL_checkstring(L, 1);
    hub_args a;
    read_opts(L, 2, &a);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    char *path = NULL;
    lfl_status st = lfl_hub_download(repo, a.filename, &a.o, &path);
    sigaction(SIGINT, &old, NULL);
    lfl_lua_check(L, st);
    lua_pushstring(L, path);
    free(path);
    return 1;
}

static int l_info(lua_State *L)
{
    const char *repo = luaL_checkstring(L, 1);
    hub_args a;
    read_opts(L, 2, &a);
    lfl_hub_info info;
    lfl_lua_check(L, lfl_hub_repo_info(repo, &a.o, &info));
    lua_createtable(L, 0, 4);
    lua_pushstring(L, info.id ? info.id : repo);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, info.sha);
    lua_setfield(L, -2, "sha");
    lua_createtable(L, info.n_files, 0);
    double total = 0;
    for (int i = 0; i < info.n_files; i++) {
        const lfl_hub_file *f = &info.files[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, f->name);
        lua_setfield(L, -2, "name");
        if (f->size >= 0) {
            lua_pushnumber(L, (lua_Number)f->size);
            lua_setfield(L, -2, "size");
            total += (double)f->size;
        }
        lua_pushboolean(L, f->sha256 != NULL);
        lua_setfield(L, -2, "lfs");
        if (f->sha256) {
            lua_pushstring(L, f->sha256);
            lua_setfield(L, -2, "sha256");
        }
        if (f->blob_id) {
            lua_pushstring(L, f->blob_id);
            lua_setfield(L, -2, "blob_id");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "files");
    lua_pushnumber(L, total);
    lua_setfield(L, -2, "size");
    lfl_hub_info_free(&info);
    return 1;
}

static int l_cache_dir(lua_State *L)
{
    hub_args a;
    read_opts(L, 1, &a);
    char buf[4096];
    lfl_lua_check(L, lfl_hub_cache_dir(&a.o, buf, sizeof buf));
    lua_pushstring(L, buf);
    return 1;
}

static int l_repo_folder(lua_State *L)
{
    const char *repo = luaL_checkstring(L, 1);
    hub_args a;
    read_opts(L, 2, &a);
    char buf[4096];
    lfl_lua_check(L, lfl_hub_repo_folder(repo, &a.o, buf, sizeof buf));
    lua_pushstring(L, buf);
    return 1;
}

/* match(path, allow, ignore): allow/ignore as a string or a list */
static int l_match(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 3);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 2);
    lua_setfield(L, 4, "allow_patterns");
    lua_pushvalue(L, 3);
    lua_setfield(L, 4, "ignore_patterns");
    const char *allow[MAX_PATTERNS], *ignore[MAX_PATTERNS];
    int na = opt_patterns(L, 4, "allow_patterns", allow);
    int ni = opt_patterns(L, 4, "ignore_patterns", ignore);
    lua_pushboolean(L, lfl_hub_match(path, allow, na, ignore, ni));
    return 1;
}

static int l_sha256(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char hex[65];
    lfl_lua_check(L, lfl_hub_sha256_file(path, hex));
    lua_pushstring(L, hex);
    return 1;
}

/* "file", "directory", "other" or nil: what a local path is (symlinks followed) */
static int l_path_kind(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    lua_pushstring(L, S_ISREG(sb.st_mode) ? "file" : S_ISDIR(sb.st_mode) ? "directory" : "other");
    return 1;
}

/* post(url, json_body[, timeout_s = 300]) -> status, body: a JSON POST (hub/post.c) */
static int l_post(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1), *body = luaL_checkstring(L, 2);
    long timeout = (long)luaL_optinteger(L, 3, 300);
    long status;
    char *resp;
    lfl_lua_check(L, lfl_http_post_json(url, body, timeout, (size_t)64 << 20, &status, &resp));
    lua_pushinteger(L, status);
    lua_pushstring(L, resp);
    free(resp);
    return 2;
}

/* upload_folder(repo, folder, opts) -> {repo_id, commit_oid, commit_url, files, lfs_files, uploaded,
 * bytes_uploaded}: a commit of the folder's files (hub/upload.c). Beyond the
 * download options: path_in_repo, commit_message, commit_description,
 * create_repo (true: create it first, an existing one is fine), private. */
static int l_upload_folder(lua_State *L)
{
    const char *repo = luaL_checkstring(L, 1), *folder = luaL_checkstring(L, 2);
    static const char *const extra[] = {"path_in_repo", "commit_message", "commit_description", "create_repo",
                                        "private", NULL};
    hub_args a;
    read_opts_ex(L, 3, &a, extra);
    if (a.filename) luaL_error(L, "hub.upload_folder: option 'filename' does not apply (use path_in_repo)");
    if (a.o.local_dir || a.o.cache_dir || a.o.max_workers || a.o.force || a.o.offline > 0)
        luaL_error(L, "hub.upload_folder: the options local_dir, cache_dir, max_workers, force and offline are "
                      "download options");
    lfl_hub_upload_opts u;
    lfl_hub_upload_opts_init(&u);
    u.hub = a.o;
    if (!lua_isnoneornil(L, 3)) {
        u.path_in_repo = opt_str(L, 3, "path_in_repo");
        u.commit_message = opt_str(L, 3, "commit_message");
        u.commit_description = opt_str(L, 3, "commit_description");
        u.create_repo = opt_bool(L, 3, "create_repo", 0) != 0;
        u.private_repo = opt_bool(L, 3, "private", -1);
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    lfl_hub_commit out;
    lfl_status st = lfl_hub_upload_folder(repo, folder, &u, &out);
    sigaction(SIGINT, &old, NULL);
    lfl_lua_check(L, st);
    lua_createtable(L, 0, 7);
    lua_pushstring(L, out.repo_id);
    lua_setfield(L, -2, "repo_id");
    if (out.commit_oid) {
        lua_pushstring(L, out.commit_oid);
        lua_setfield(L, -2, "commit_oid");
    }
    if (out.commit_url) {
        lua_pushstring(L, out.commit_url);
        lua_setfield(L, -2, "commit_url");
    }
    lua_pushinteger(L, out.n_files);
    lua_setfield(L, -2, "files");
    lua_pushinteger(L, out.n_lfs);
    lua_setfield(L, -2, "lfs_files");
    lua_pushinteger(L, out.n_uploaded);
    lua_setfield(L, -2, "uploaded");
    lua_pushnumber(L, (lua_Number)out.bytes_uploaded);
    lua_setfield(L, -2, "bytes_uploaded");
    lfl_hub_commit_free(&out);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"upload_folder", l_upload_folder}, {"post", l_post}, {"download", l_download}, {"info", l_info}, {"cache_dir", l_cache_dir}, {"repo_folder", l_repo_folder},
    {"match", l_match}, {"sha256", l_sha256}, {"path_kind", l_path_kind}, {NULL, NULL},
};

LFL_LUA_MODULE(hub)
{
    lfl_lua_register_funcs(L, "_hub", funcs);
}
