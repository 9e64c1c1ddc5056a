/* The `lfl` executable: runs scripts and commands, or opens the REPL. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bridge.h"
#include "repl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lfl [options] [script.lua | recipe.yaml | command] [args...]\n"
            "  lfl                      open the REPL\n"
            "  lfl script.lua [args]    run a script (it sees `arg`)\n"
            "  lfl <command> [args]     run a command from stdlib (train, chat, serve, eval,\n"
            "                           export, download, data)\n"
            "options:\n"
            "  -e CODE      run CODE\n"
            "  -l MODULE    require MODULE (sets the global of the same name)\n"
            "  -i           open the REPL after running the script / -e code\n"
            "  -v, --version  print versions, the BLAS kernel set and CUDA availability\n"
            "  -h, --help   this help\n");
}

/* message + traceback for errors raised in scripts */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushstring(L, msg);
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

static lua_State *running; /* for the SIGINT handler */

static void on_sigint(int sig)
{
    (void)sig;
    if (running) lfl_lua_interrupt(running);
}

int lfl_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    running = L;
    signal(SIGINT, on_sigint);
    int st = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    running = NULL;
    lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    return st;
}

static int report(lua_State *L, int st)
{
    if (st && !lua_isnil(L, -1)) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "lfl: %s\n", msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return st;
}

static void print_version(lua_State *L)
{
    printf("lfl %s\n", LFL_VERSION);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "sys");
    lua_getfield(L, -1, "luajit");
    printf("%s\n", lua_tostring(L, -1));
    lua_pop(L, 3);
    printf("BLAS: %s\n", lfl_blas_describe());
    printf("%s\n", lfl_device_describe());
    printf("home: %s\n", lfl_lua_home());
}

static void set_args(lua_State *L, char **argv, int argc, int script)
{
    lua_createtable(L, argc - script, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int run_file(lua_State *L, char **argv, int argc, int script)
{
    set_args(L, argv, argc, script);
    const char *path = argv[script];
    size_t n = strlen(path);
    /* a YAML recipe (LlamaFactory style) or a command name goes to stdlib's CLI */
    bool is_lua = n > 4 && strcmp(path + n - 4, ".lua") == 0;
    bool is_file = access(path, F_OK) == 0;
    if (!is_lua && (!is_file || (n > 5 && (strcmp(path + n - 5, ".yaml") == 0 || strcmp(path + n - 4, ".yml") == 0)))) {
        lua_getglobal(L, "require");
        lua_pushstring(L, "lfl.cli");
        if (report(L, lfl_docall(L, 1, 1))) return 1;
        lua_getfield(L, -1, "main");
        lua_remove(L, -2);
        lua_getglobal(L, "arg");
        return report(L, lfl_docall(L, 1, 0));
    }
    if (luaL_loadfile(L, path) != 0) return report(L, 1);
    int nargs = argc - script - 1;
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    return report(L, lfl_docall(L, nargs, 0));
}

int main(int argc, char **argv)
{
    lua_State *L = lfl_lua_new();
    if (!L) return 1;
    int i = 1, status = 0;
    bool interactive = false, ran = false;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *o = argv[i];
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            usage(stdout);
            lfl_lua_close(L);
            return 0;
        } else if (strcmp(o, "-v") == 0 || strcmp(o, "--version") == 0) {
            print_version(L);
            ran = true;
        } else if (strcmp(o, "-i") == 0) {
            interactive = true;
        } else if (strcmp(o, "-e") == 0 || strcmp(o, "-l") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "lfl: %s needs an argument\n", o);
                usage(stderr);
                lfl_lua_close(L);
                return 2;
            }
            const char *v = argv[++i];
            set_args(L, argv, argc, i);
            if (o[1] == 'e') {
                status = luaL_loadbuffer(L, v, strlen(v), "=(command line)") || lfl_docall(L, 0, 0);
            } else {
                lua_getglobal(L, "require");
                lua_pushstring(L, v);
                status = lfl_docall(L, 1, 1);
                if (!status) lua_setglobal(L, v);
            }
            ran = true;
            if (report(L, status)) break;
        } else if (strcmp(o, "--") == 0) {
            i++;
            break;
        } else if (strcmp(o, "-") == 0) {
            break;
        } else {
            fprintf(stderr, "lfl: unknown option %s\n", o);
            usage(stderr);
            lfl_lua_close(L);
            return 2;
        }
    }
    if (!status && i < argc) {
        status = run_file(L, argv, argc, i);
        ran = true;
    }
    if (!status && (interactive || !ran)) {
        if (!ran) set_args(L, argv, argc, 0);
        status = lfl_repl(L);
    }
    lfl_lua_close(L);
    return status ? 1 : 0;
}
