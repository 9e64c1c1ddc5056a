/* The REPL: readline editing, ~/.lfl_history, multi-line chunks, printing of
 * results through lfl.pretty, tab completion of globals and fields. */
#define _GNU_SOURCE
#include <stdio.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <luajit.h>
#include "bridge.h"
#include "repl.h"

static lua_State *RL; /* for the completion callback */
static char history_path[4096];

/* An incomplete chunk fails to compile with "<eof>" at the end of the message. */
static bool incomplete(lua_State *L, int st)
{
    if (st != LUA_ERRSYNTAX) return false;
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return n >= 5 && strcmp(msg + n - 5, "<eof>") == 0 ? (lua_pop(L, 1), true) : false;
}

/* Compiles "return <line>" first so expressions print their values. */
static int load_chunk(lua_State *L, const char *src)
{
    char *ret = NULL;
    if (asprintf(&ret, "return %s", src) < 0) return LUA_ERRMEM;
    int st = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    free(ret);
    if (st == 0) return 0;
    lua_pop(L, 1);
    return luaL_loadbuffer(L, src, strlen(src), "=stdin");
}

static void print_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n <= 0) return;
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "pretty");
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_getglobal(L, "print"); }
    lua_insert(L, base + 1);
    if (lfl_docall(L, n, 0) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

/* ---- completion: globals, and fields/methods after '.' or ':' ---- */

static char **candidates;
static int n_cand;

static void add_cand(const char *prefix, size_t plen, const char *key, const char *head)
{
    if (strncmp(key, prefix, plen) != 0) return;
    candidates = realloc(candidates, sizeof *candidates * (size_t)(n_cand + 1));
    if (asprintf(&candidates[n_cand], "%s%s", head, key) >= 0) n_cand++;
}

static void collect_table(lua_State *L, int idx, const char *prefix, const char *head)
{
    size_t plen = strlen(prefix);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) add_cand(prefix, plen, lua_tostring(L, -2), head);
        lua_pop(L, 1);
    }
}

static char *completion_gen(const char *text, int state)
{
    static int next;
    if (state == 0) {
        for (int i = 0; i < n_cand; i++) free(candidates[i]);
        n_cand = 0;
        next = 0;
        lua_State *L = RL;
        int top = lua_gettop(L);
        /* split "a.b.c" at the last '.' or ':' */
        const char *sep = NULL;
        for (const char *p = text; *p; p++) if (*p == '.' || *p == ':') sep = p;
        if (!sep) {
            lua_pushvalue(L, LUA_GLOBALSINDEX);
            collect_table(L, lua_gettop(L), text, "");
        } else {
            char *path = strndup(text, (size_t)(sep - text));
            char *head = strndup(text, (size_t)(sep - text + 1));
            lua_pushvalue(L, LUA_GLOBALSINDEX);
            bool ok = true;
            for (char *tok = strtok(path, ".:"); tok && ok; tok = strtok(NULL, ".:")) {
                if (!lua_istable(L, -1) && !lua_isuserdata(L, -1)) { ok = false; break; }
                lua_getfield(L, -1, tok);
                lua_remove(L, -2);
            }
            if (ok && lua_isuserdata(L, -1) && lua_getmetatable(L, -1)) {
                lua_getfield(L, -1, "methods");
                if (lua_istable(L, -1)) collect_table(L, lua_gettop(L), sep + 1, head);
            } else if (ok && lua_istable(L, -1)) {
                collect_table(L, lua_gettop(L), sep + 1, head);
                /* tables with a metatable __index table (classes) */
                if (lua_getmetatable(L, -1)) {
                    lua_getfield(L, -1, "__index");
                    if (lua_istable(L, -1)) collect_table(L, lua_gettop(L), sep + 1, head);
                }
            }
            free(path);
            free(head);
        }
        lua_settop(L, top);
    }
    return next < n_cand ? strdup(candidates[next++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)start; (void)end;
    rl_completion_append_character = '\0';
    return rl_completion_matches(text, completion_gen);
}

/* Ctrl-C at the prompt clears the line instead of quitting. */
static void prompt_sigint(int sig)
{
    (void)sig;
    write(STDOUT_FILENO, "\n", 1);
    rl_on_new_line();
    rl_replace_line("", 0);
    rl_redisplay();
}

int lfl_repl(lua_State *L)
{
    RL = L;
    const char *home = getenv("HOME");
    snprintf(history_path, sizeof history_path, "%s/.lfl_history", home ? home : ".");
    using_history();
    read_history(history_path);
    rl_readline_name = "lfl";
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,[+-*/%^~#";
    rl_attempted_completion_function = complete;
    if (isatty(STDIN_FILENO)) printf("lfl %s — Lua REPL (%s). Ctrl-D quits.\n", LFL_VERSION, LUAJIT_VERSION);
    char *chunk = NULL;
    for (;;) {
        signal(SIGINT, prompt_sigint);
        char *line = readline(chunk ? ">> " : "> ");
        signal(SIGINT, SIG_DFL);
        if (!line) break;
        if (!chunk && !*line) { free(line); continue; }
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s", chunk ? chunk : "", chunk ? "\n" : "", line) < 0) break;
        free(chunk);
        free(line);
        chunk = joined;
        int base = lua_gettop(L);
        int st = load_chunk(L, chunk);
        if (incomplete(L, st)) continue;
        add_history(chunk);
        append_history(1, history_path);
        if (st == 0) st = lfl_docall(L, 0, LUA_MULTRET);
        if (st != 0) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            lua_settop(L, base);
        } else {
            print_results(L, base);
            lua_settop(L, base);
        }
        free(chunk);
        chunk = NULL;
        fflush(stdout);
    }
    free(chunk);
    if (isatty(STDIN_FILENO)) printf("\n");
    /* keep the history file from growing without bound */
    write_history(history_path);
    history_truncate_file(history_path, 1000);
    return 0;
}
