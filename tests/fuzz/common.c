/* Shared helpers of the fuzz targets (see common.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

static char scratch_dir[512];

static void remove_scratch(void)
{
    if (!scratch_dir[0]) return;
    char p[700];
    const char *names[] = {".safetensors", ".gguf", ".json", ".jsonl", ".csv", ".txt", ""};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/input%s", scratch_dir, names[i]);
        unlink(p);
    }
    rmdir(scratch_dir);
}

void fuzz_init(void)
{
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
}

const char *fuzz_scratch(const uint8_t *data, size_t n, const char *suffix)
{
    static char path[700];
    if (!scratch_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        /* tmpfs when there is one: a file per input is then a memory copy */
        if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(scratch_dir, sizeof scratch_dir, "%s/lfl-fuzz-%d", tmp, (int)getpid());
        if (mkdir(scratch_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "fuzz: cannot create %s: %s\n", scratch_dir, strerror(errno));
            abort();
        }
        atexit(remove_scratch);
    }
    snprintf(path, sizeof path, "%s/input%s", scratch_dir, suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) {
            fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
            abort();
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

void fuzz_check_error(const char *what)
{
    const char *e = lfl_last_error();
    if (!e || !*e || (what && !strstr(e, what))) {
        fprintf(stderr, "fuzz: an error without a message naming '%s': '%s'\n", what ? what : "", e ? e : "(null)");
        abort();
    }
}

static lua_State *state;

/* The Lua heap on malloc: LuaJIT's own allocator maps memory that
 * LeakSanitizer does not scan, so C objects owned by Lua userdata (a
 * tokenizer, a tensor) looked leaked; on malloc they are reachable, and ASan
 * checks the bridge's accesses to Lua memory too. This definition replaces
 * the library's luaL_newstate for the bridge compiled into the fuzz targets. */
static void *lua_heap(void *ud, void *p, size_t osize, size_t nsize)
{
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, nsize);
}

lua_State *luaL_newstate(void)
{
    return lua_newstate(lua_heap, NULL);
}

static void close_state(void)
{
    if (state) lfl_lua_close(state);
    state = NULL;
}

/* Coverage of the Lua code for libFuzzer: a line hook counts (chunk, line,
 * previous line) edges into counters that libFuzzer reads as extra features
 * (its __libfuzzer_extra_counters section), so inputs reaching new Lua
 * branches are kept. Hooks do not run inside JIT-compiled traces, so the JIT
 * is off in the fuzzed state. */
#define LUA_COV_SIZE (1u << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_cov[LUA_COV_SIZE];
static uintptr_t lua_cov_prev;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar)) return;
    uintptr_t h = ((uintptr_t)ar->source * 0x9E3779B97F4A7C15ull) ^ ((uintptr_t)ar->currentline * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 29;
    uint8_t *c = &lua_cov[(h ^ lua_cov_prev) & (LUA_COV_SIZE - 1)];
    if (*c < 255) (*c)++;
    lua_cov_prev = h >> 1;
}

lua_State *fuzz_lua(void)
{
    if (!state) {
        state = lfl_lua_new();
        if (!state) {
            fprintf(stderr, "fuzz: cannot create the Lua state\n");
            abort();
        }
        atexit(close_state); /* before LeakSanitizer's check at exit */
        lua_getglobal(state, "jit");
        lua_getfield(state, -1, "off");
        if (lua_pcall(state, 0, 0, 0) != 0) lua_pop(state, 1);
        lua_pop(state, 1);
        lua_sethook(state, line_hook, LUA_MASKLINE, 0);
        /* the harnesses' helpers: require("fuzzlib") */
        lua_getglobal(state, "package");
        lua_pushfstring(state, "%s/tests/fuzz/?.lua;", LFL_SOURCE_DIR);
        lua_getfield(state, -2, "path");
        lua_concat(state, 2);
        lua_setfield(state, -2, "path");
        lua_pop(state, 1);
    }
    return state;
}

void fuzz_lua_run(const char *name, const uint8_t *data, size_t n, const char *path)
{
    static int ref = LUA_NOREF;
    lua_State *L = fuzz_lua();
    if (ref == LUA_NOREF) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fuzz/%s.lua", LFL_SOURCE_DIR, name);
        if (luaL_loadfile(L, path) != 0 || lua_pcall(L, 0, 1, 0) != 0 || !lua_isfunction(L, -1)) {
            fprintf(stderr, "fuzz: cannot load the harness %s: %s\n", path, lua_tostring(L, -1));
            abort();
        }
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushlstring(L, (const char *)data, n);
    if (path) lua_pushstring(L, path);
    if (lua_pcall(L, path ? 2 : 1, 0, 0) != 0) {
        fprintf(stderr, "fuzz: %s: %s\n", name, lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
}
