/* The REPL: readline editing, ~/.lfl_history, multi-line chunks, printing of
 * results through lfl.pretty, tab completion of globals, fields, methods and
 * lazily loaded stdlib modules, Ctrl-C handling at the prompt. */
#define _GNU_SOURCE
#include <stdio.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <luajit.h>
#include "bridge.h"
#include "repl.h"

#define PROMPT "> "
#define PROMPT_MORE ">> "

static lua_State *RL;            /* for the completion callback */
static char history_path[4096];  /* empty: no history file (no $HOME) */

/* ---- compiling a chunk ---- */

/* An incomplete chunk fails to compile with "<eof>" at the end of the message
 * ("'end' expected near '<eof>'", "unfinished long string near '<eof>'"). */
static bool is_incomplete(const char *msg)
{
    size_t n = msg ? strlen(msg) : 0;
    return (n >= 7 && strcmp(msg + n - 7, "'<eof>'") == 0) || (n >= 5 && strcmp(msg + n - 5, "<eof>") == 0);
}

enum { CHUNK_OK, CHUNK_MORE, CHUNK_ERROR };

/* Compiles the chunk, as an expression first so its values get printed. The
 * expression goes through an identity function rather than a bare `return`:
 * `return f()` would be a tail call, and an error raised in f would lose the
 * "stdin:1:" position and the main chunk's traceback line. The chunk needs
 * more lines when it fails with "<eof>" both as a statement and as
 * `return <chunk>` ("{1," is only incomplete as an expression). Leaves the
 * function (CHUNK_OK) or the message (CHUNK_ERROR) on the stack. */
static int compile(lua_State *L, const char *src)
{
    char *expr = NULL;
    if (asprintf(&expr, "local function __lfl_values(...) return ... end return __lfl_values(%s\n)", src) < 0) {
        lua_pushliteral(L, "out of memory");
        return CHUNK_ERROR;
    }
    int st = luaL_loadbuffer(L, expr, strlen(expr), "=stdin");
    free(expr);
    if (st == 0) return CHUNK_OK;
    lua_pop(L, 1);
    st = luaL_loadbuffer(L, src, strlen(src), "=stdin");
    if (st == 0) return CHUNK_OK;
    if (st != LUA_ERRSYNTAX) return CHUNK_ERROR;
    if (is_incomplete(lua_tostring(L, -1))) {
        lua_pop(L, 1);
        return CHUNK_MORE;
    }
    char *ret = NULL;
    if (asprintf(&ret, "return %s", src) < 0) return CHUNK_ERROR;
    st = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    free(ret);
    if (st == 0) { /* "x;" is a valid `return x;` only */
        lua_remove(L, -2);
        return CHUNK_OK;
    }
    bool more = st == LUA_ERRSYNTAX && is_incomplete(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (more) {
        lua_pop(L, 1);
        return CHUNK_MORE;
    }
    return CHUNK_ERROR;
}

/* ---- printing ---- */

/* Drops the frames below the chunk (the REPL's own C call) from a traceback. */
static void print_error(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    const char *cut = strstr(msg, "\n\t[C]: ?");
    fflush(stdout);
    if (cut && !strchr(cut + 1, '\n')) fprintf(stderr, "%.*s\n", (int)(cut - msg), msg);
    else fprintf(stderr, "%s\n", msg);
}

/* prints its arguments with lfl.pretty (plain print if the user replaced lfl);
 * runs protected, since reaching lfl.pretty may load it */
static int show(lua_State *L)
{
    int n = lua_gettop(L);
    lua_getglobal(L, "lfl");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "pretty");
    else lua_pushnil(L);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getglobal(L, "print");
    }
    lua_remove(L, n + 1); /* lfl */
    lua_insert(L, 1);
    lua_call(L, n, 0);
    return 0;
}

static void print_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n <= 0) return;
    lua_pushcfunction(L, show);
    lua_insert(L, base + 1);
    if (lfl_docall(L, n, 0) != 0) {
        print_error(L);
        lua_pop(L, 1);
    }
}

/* ---- completion: keywords and globals, fields after '.', methods after ':',
 * and the stdlib modules that lfl loads lazily on first use ---- */

static char **cand;
static int n_cand, cap_cand;
static const char *comp_text; /* the word being completed */

static void add_cand(const char *head, size_t hlen, const char *key, const char *prefix)
{
    if (strncmp(key, prefix, strlen(prefix)) != 0) return;
    if (n_cand == cap_cand) {
        cap_cand = cap_cand ? 2 * cap_cand : 64;
        cand = realloc(cand, sizeof *cand * (size_t)cap_cand);
    }
    if (asprintf(&cand[n_cand], "%.*s%s", (int)hlen, head, key) >= 0) n_cand++;
}

static bool is_ident(const char *s)
{
    if (!*s || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z'))) return false;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= '0' && *s <= '9') || ((*s | 32) >= 'a' && (*s | 32) <= 'z'))) return false;
    return true;
}

/* string keys of the table at idx, then of its __index tables (classes) */
static void collect_keys(lua_State *L, int idx, const char *head, size_t hlen, const char *prefix, int depth)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && is_ident(lua_tostring(L, -2)))
            add_cand(head, hlen, lua_tostring(L, -2), prefix);
        lua_pop(L, 1);
    }
    if (depth < 8 && lua_getmetatable(L, idx)) {
        lua_getfield(L, -1, "__index");
        if (lua_istable(L, -1)) collect_keys(L, -1, head, hlen, prefix, depth + 1);
        lua_pop(L, 2);
    }
}

/* lfl's lazily loaded modules: the short names of lfl._modules (stdlib/lfl/init.lua) */
static void collect_lazy_modules(lua_State *L, const char *head, size_t hlen, const char *prefix)
{
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "_modules");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING && is_ident(lua_tostring(L, -2)))
                add_cand(head, hlen, lua_tostring(L, -2), prefix);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
}

static const char *const keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while", NULL,
};

/* runs protected: walking "a.b" may call __index (a lazy require) and raise */
static int collect(lua_State *L)
{
    const char *text = comp_text;
    const char *sep = NULL;
    for (const char *p = text; *p; p++)
        if (*p == '.' || *p == ':') sep = p;
    if (!sep) {
        for (int i = 0; keywords[i]; i++) add_cand("", 0, keywords[i], text);
        collect_keys(L, LUA_GLOBALSINDEX, "", 0, text, 0);
        return 0;
    }
    size_t hlen = (size_t)(sep - text + 1);
    const char *prefix = sep + 1;
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    for (const char *p = text; p < sep;) {
        const char *q = p;
        while (q < sep && *q != '.' && *q != ':') q++;
        if (q == p) return 0; /* "a..b", ".x" */
        if (!lua_istable(L, -1) && !lua_isuserdata(L, -1)) return 0;
        lua_pushlstring(L, p, (size_t)(q - p));
        lua_gettable(L, -2);
        lua_remove(L, -2);
        if (q < sep && *q == ':') return 0; /* "a:b.c" is not an expression */
        p = q + 1;
    }
    int obj = lua_gettop(L);
    if (lua_istable(L, obj)) {
        collect_keys(L, obj, text, hlen, prefix, 0);
        lua_getglobal(L, "lfl");
        if (*sep == '.' && lua_rawequal(L, obj, -1)) collect_lazy_modules(L, text, hlen, prefix);
    } else if (lua_isuserdata(L, obj) && lua_getmetatable(L, obj)) {
        int mt = lua_gettop(L);
        lua_getfield(L, mt, "methods"); /* Tensor and the other core objects */
        if (lua_istable(L, -1)) collect_keys(L, -1, text, hlen, prefix, 0);
        lua_getfield(L, mt, "__index");
        if (lua_istable(L, -1)) collect_keys(L, -1, text, hlen, prefix, 0);
    }
    return 0;
}

static char *completion_gen(const char *text, int state)
{
    static int next;
    if (state == 0) {
        for (int i = 0; i < n_cand; i++) free(cand[i]);
        n_cand = 0;
        next = 0;
        comp_text = text;
        int top = lua_gettop(RL);
        lua_cpcall(RL, collect, NULL); /* an error just means no candidates */
        lua_settop(RL, top);
    }
    return next < n_cand ? strdup(cand[next++]) : NULL;
}

/* inside a string literal: let readline complete file names */
static bool in_string(int start)
{
    char quote = 0;
    for (int i = 0; i < start && rl_line_buffer[i]; i++) {
        char c = rl_line_buffer[i];
        if (quote) {
            if (c == '\\') i++;
            else if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '-' && rl_line_buffer[i + 1] == '-') {
            break;
        }
    }
    return quote != 0;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    if (in_string(start)) return NULL;
    rl_attempted_completion_over = 1;
    rl_completion_append_character = '\0';
    return rl_completion_matches(text, completion_gen);
}

/* ---- Ctrl-C at the prompt: clear the line (and a pending multi-line chunk) ----
 * readline catches SIGINT itself and calls this handler afterwards from its
 * own (synchronous) signal processing, so readline calls are safe here. */

static volatile sig_atomic_t in_readline, line_cancelled;

static void prompt_sigint(int sig)
{
    (void)sig;
    line_cancelled = 1;
    if (!in_readline) return;
    rl_replace_line("", 0);
    rl_set_prompt(PROMPT);
    rl_crlf();
    rl_on_new_line();
    rl_redisplay();
}

/* ---- history ---- */

static void history_open(void)
{
    const char *home = getenv("HOME");
    history_path[0] = 0;
    if (home && *home) snprintf(history_path, sizeof history_path, "%s/.lfl_history", home);
    using_history();
    /* timestamps mark where an entry begins, so multi-line chunks come back whole */
    history_comment_char = '#';
    history_write_timestamps = 1;
    history_multiline_entries = 1;
    if (history_path[0]) read_history(history_path);
}

static void history_add(const char *chunk)
{
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && strcmp(last->line, chunk) == 0) return;
    add_history(chunk);
    if (!history_path[0]) return;
    /* append at once, so a crash or a second REPL loses nothing */
    if (access(history_path, F_OK) == 0) {
        append_history(1, history_path);
    } else if (write_history(history_path) == 0) {
        chmod(history_path, 0600); /* it may hold tokens typed in */
    }
}

/* ---- the loop ---- */

int lfl_repl(lua_State *L)
{
    RL = L;
    history_open();
    rl_readline_name = "lfl";
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,[+-*/%^~#}])";
    rl_attempted_completion_function = complete;
    bool tty = isatty(STDIN_FILENO);
    if (tty) printf("lfl %s — Lua REPL (%s). Tab completes, Ctrl-C interrupts, Ctrl-D quits.\n", LFL_VERSION, LUAJIT_VERSION);
    /* Ctrl-C outside readline and the running code (while compiling, say) is
     * dropped rather than killing the REPL; lfl_docall installs its own */
    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = prompt_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_sa);
    char *chunk = NULL;
    for (;;) {
        line_cancelled = 0;
        in_readline = 1;
        char *line = readline(chunk ? PROMPT_MORE : PROMPT);
        in_readline = 0;
        if (line_cancelled && chunk) { /* Ctrl-C dropped the pending chunk */
            free(chunk);
            chunk = NULL;
        }
        if (!line) break;
        if (!chunk && !line[strspn(line, " \t")]) {
            free(line);
            continue;
        }
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s", chunk ? chunk : "", chunk ? "\n" : "", line) < 0) {
            free(line);
            break;
        }
        free(chunk);
        free(line);
        chunk = joined;
        int base = lua_gettop(L);
        int st = compile(L, chunk);
        if (st == CHUNK_MORE) continue;
        history_add(chunk);
        if (st == CHUNK_OK) {
            /* code typed here runs interpreted: a JIT-compiled loop does not
             * check hooks, so Ctrl-C could not stop `while true do end` */
            luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
            if (lfl_docall(L, 0, LUA_MULTRET) != 0) st = CHUNK_ERROR;
        }
        if (st == CHUNK_ERROR) print_error(L);
        else print_results(L, base);
        lua_settop(L, base);
        free(chunk);
        chunk = NULL;
        fflush(stdout);
    }
    free(chunk);
    sigaction(SIGINT, &old_sa, NULL);
    if (tty) printf("\n");
    if (history_path[0]) history_truncate_file(history_path, 1000);
    return 0;
}
