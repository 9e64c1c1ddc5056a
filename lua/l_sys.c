/* lfl.sys: build and run-time facts (BLAS kernel, CUDA, which device kinds
 * implement which ops), threads, matmul precision, timing; child processes
 * (spawn without a shell, signal, reap) for `lfl board`'s training runs. */
#include <errno.h>
#include <fcntl.h>
#include <luajit.h>
#include <omp.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bridge.h"
#include "gemm_bf16.h"
#include "ops/optable.h"
#include "util/cpus.h"

static int l_blas(lua_State *L)
{
    lua_pushstring(L, lfl_blas_describe());
    lua_pushstring(L, lfl_blas_corename());
    const char *note = lfl_blas_note();
    if (note) lua_pushstring(L, note);
    else lua_pushnil(L);
    return 3;
}

static int l_cuda(lua_State *L)
{
    lua_pushstring(L, lfl_device_describe());
    lua_pushinteger(L, lfl_device_count());
    return 2;
}

/* sys.device_memory(n) -> {in_use=, peak=, reserved=, free=, total=} in bytes
 * (the caching allocator's figures for cuda:n); sys.device_memory(n, "reset")
 * also starts a new peak; sys.device_memory(n, "empty") gives the cache back */
static int l_device_memory(lua_State *L)
{
    int dev = (int)luaL_optinteger(L, 1, 0);
    const char *act = luaL_optstring(L, 2, NULL);
    if (act && strcmp(act, "reset") && strcmp(act, "empty"))
        luaL_error(L, "sys.device_memory: '%s' is not an action (\"reset\" or \"empty\")", act);
    if (act && !strcmp(act, "empty")) lfl_device_empty_cache(dev);
    lfl_device_mem m;
    lfl_lua_check(L, lfl_device_memory(dev, &m));
    if (act && !strcmp(act, "reset")) lfl_device_reset_peak(dev);
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, (double)m.in_use), lua_setfield(L, -2, "in_use");
    lua_pushnumber(L, (double)m.peak), lua_setfield(L, -2, "peak");
    lua_pushnumber(L, (double)m.reserved), lua_setfield(L, -2, "reserved");
    lua_pushnumber(L, (double)m.free), lua_setfield(L, -2, "free");
    lua_pushnumber(L, (double)m.total), lua_setfield(L, -2, "total");
    return 1;
}

/* sys.ops() -> {cpu = {names...}, cuda = {names...}}: the entries of the op
 * dispatch table each device kind has a kernel for, in table order */
static int l_ops(lua_State *L)
{
    lua_createtable(L, 0, LFL_DEVKIND_COUNT);
    for (int kind = 0; kind < LFL_DEVKIND_COUNT; kind++) {
        lua_newtable(L);
        int k = 0;
        for (int op = 0; op < lfl_op_count(); op++) {
            if (!lfl_op_implemented(op, kind)) continue;
            lua_pushstring(L, lfl_op_name(op));
            lua_rawseti(L, -2, ++k);
        }
        lua_setfield(L, -2, lfl_devkind_name(kind));
    }
    return 1;
}

/* Test hooks: sys.op_remove(name, kind) takes one kernel out of the dispatch
 * table (kind "cpu" or "cuda"), sys.op_restore(name, kind) puts it back, so a
 * test can see the error of a missing kernel on the CPU. */
static lfl_kernel removed[LFL_OP_COUNT][LFL_DEVKIND_COUNT];
static bool is_removed[LFL_OP_COUNT][LFL_DEVKIND_COUNT];

static void check_op_kind(lua_State *L, int *op, int *kind)
{
    const char *name = luaL_checkstring(L, 1), *k = luaL_checkstring(L, 2);
    *op = lfl_op_find(name);
    if (*op < 0) luaL_error(L, "sys: '%s' is not an entry of the op dispatch table (see lfl.sys.ops())", name);
    *kind = -1;
    for (int i = 0; i < LFL_DEVKIND_COUNT; i++)
        if (strcmp(k, lfl_devkind_name(i)) == 0) *kind = i;
    if (*kind < 0) luaL_error(L, "sys: '%s' is not a device kind (\"cpu\" or \"cuda\")", k);
}

static int l_op_remove(lua_State *L)
{
    int op, kind;
    check_op_kind(L, &op, &kind);
    if (!is_removed[op][kind]) {
        lfl_kernel none;
        memset(&none, 0, sizeof none);
        removed[op][kind] = lfl_op_set(op, kind, none);
        is_removed[op][kind] = true;
    }
    return 0;
}

static int l_op_restore(lua_State *L)
{
    int op, kind;
    check_op_kind(L, &op, &kind);
    if (is_removed[op][kind]) {
        lfl_op_set(op, kind, removed[op][kind]);
        is_removed[op][kind] = false;
    }
    return 0;
}

static int l_threads(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        int n = (int)luaL_checkinteger(L, 1);
        if (n < 1) return luaL_error(L, "sys.threads: expected a count >= 1, got %d", n);
        omp_set_num_threads(n);
        lfl_blas_set_threads(n);
        lfl_cpus_fix();
    }
    lua_pushinteger(L, omp_get_max_threads());
    return 1;
}

/* sys.adapt_threads() -> threads, changed, others: between units of work, the
 * thread count follows the CPUs other processes keep busy (core/util/cpus.c);
 * others is the CPUs' worth they used since the last reading (nil: no new one) */
static int l_adapt_threads(lua_State *L)
{
    bool changed;
    double others;
    int n = lfl_cpus_adapt(&changed, &others);
    lua_pushinteger(L, n);
    lua_pushboolean(L, changed);
    if (others >= 0) lua_pushnumber(L, others);
    else lua_pushnil(L);
    return 3;
}

/* sys.cpus() -> available CPUs, "affinity N, cgroup quota M|none", adapting */
static int l_cpus(lua_State *L)
{
    lua_pushinteger(L, lfl_cpus_available());
    lua_pushstring(L, lfl_cpus_describe());
    lua_pushboolean(L, lfl_cpus_adapting());
    return 3;
}

/* sys.matmul_precision(["highest" | "medium"]) -> the precision now, whether
 * "medium" multiplies bf16-rounded operands here (every CPU since the f32
 * fallback rounds them too) and the bf16 GEMM kernel ("onednn", "own", "f32") */
static int l_matmul_precision(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        const char *p = luaL_checkstring(L, 1);
        if (strcmp(p, "highest") == 0) lfl_set_matmul_precision(LFL_PRECISION_HIGHEST);
        else if (strcmp(p, "medium") == 0) lfl_set_matmul_precision(LFL_PRECISION_MEDIUM);
        else return luaL_error(L, "sys.matmul_precision: '%s' is not a precision (want \"highest\" or \"medium\")", p);
    }
    lua_pushstring(L, lfl_get_matmul_precision() == LFL_PRECISION_MEDIUM ? "medium" : "highest");
    lua_pushboolean(L, 1);
    lua_pushstring(L, lfl_gemm_path_name(lfl_gemm_bf16_path()));
    return 3;
}

/* sys.bf16_gemm(["onednn" | "own" | "f32"]) -> what runs the bf16 GEMMs
 * ("onednn: oneDNN 2.6.3 ...", lfl_gemm_bf16_describe) and the kernel's name;
 * with a name, that kernel runs from now on (as LFL_GEMM chooses at start),
 * an error when this build or CPU lacks it */
static int l_bf16_gemm(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        const char *p = luaL_checkstring(L, 1);
        lfl_gemm_path want;
        if (strcmp(p, "onednn") == 0) want = LFL_GEMM_PATH_ONEDNN;
        else if (strcmp(p, "own") == 0) want = LFL_GEMM_PATH_OWN;
        else if (strcmp(p, "f32") == 0) want = LFL_GEMM_PATH_F32;
        else return luaL_error(L, "sys.bf16_gemm: '%s' is not a kernel (want \"onednn\", \"own\" or \"f32\")", p);
        if (lfl_gemm_bf16_set_path(want) != LFL_OK) return luaL_error(L, "sys.bf16_gemm: %s", lfl_last_error());
    }
    lua_pushstring(L, lfl_gemm_bf16_describe());
    lua_pushstring(L, lfl_gemm_path_name(lfl_gemm_bf16_path()));
    return 2;
}

static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
    return 1;
}

/* peak resident set size of the process in MB (VmHWM) */
static int l_rss(lua_State *L)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double cur = 0, peak = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) cur = atof(line + 6) / 1024.0;
        if (strncmp(line, "VmHWM:", 6) == 0) peak = atof(line + 6) / 1024.0;
    }
    if (f) fclose(f);
    lua_pushnumber(L, cur);
    lua_pushnumber(L, peak);
    return 2;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* path of the running lfl executable, for tests that spawn a child lfl */
static int l_exe(lua_State *L)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return luaL_error(L, "sys.exe: cannot read /proc/self/exe");
    buf[n] = 0;
    lua_pushstring(L, buf);
    return 1;
}

extern char **environ;

/* sys.spawn(argv, {stdout = path, stderr = path, cwd = dir, env = {K = "v"}}) -> pid.
 * argv[1] is run as is (no PATH search, no shell); stdout/stderr are appended
 * to the files (created 0644), stdin is /dev/null; env adds or replaces
 * variables of this process's environment. The child leads its own process
 * group, so sys.kill reaches whatever it starts and a Ctrl-C meant for the
 * parent's terminal does not stop it. */
static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)lua_objlen(L, 1);
    if (n < 1) return luaL_error(L, "sys.spawn: argv is empty (want {program, args...})");
    bool has_opts = lua_istable(L, 2);
    const char *out = NULL, *err = NULL, *cwd = NULL;
    if (has_opts) {
        lua_getfield(L, 2, "stdout");
        out = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "stderr");
        err = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "cwd");
        cwd = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_pop(L, 3); /* the strings stay alive in the options table */
    }
    /* argv and envp live in Lua userdata, freed by the GC even when an error is raised */
    const char **argv = lua_newuserdata(L, sizeof(char *) * (size_t)(n + 1));
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "sys.spawn: argv[%d] is a %s, expected a string", i, luaL_typename(L, -1));
        argv[i - 1] = lua_tostring(L, -1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 1, i); /* keeps a number's string form anchored */
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    /* the environment: this process's, with opts.env's entries replacing or added */
    int nenv = 0;
    while (environ[nenv]) nenv++;
    int nextra = 0;
    if (has_opts) {
        lua_getfield(L, 2, "env");
        if (lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2)) { nextra++; lua_pop(L, 1); }
        }
        lua_pop(L, 1);
    }
    const char **envp = lua_newuserdata(L, sizeof(char *) * (size_t)(nenv + nextra + 1));
    int ne = 0;
    int env_idx = 0;
    if (nextra) {
        lua_getfield(L, 2, "env");
        env_idx = lua_gettop(L);
    }
    for (int i = 0; i < nenv; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        if (env_idx) {
            lua_pushlstring(L, environ[i], klen);
            lua_rawget(L, env_idx);
            replaced = !lua_isnil(L, -1);
            lua_pop(L, 1);
        }
        if (!replaced) envp[ne++] = environ[i];
    }
    if (env_idx) {
        lua_newtable(L); /* keeps the "K=v" strings alive until the spawn */
        int anchor = lua_gettop(L), k = 0;
        lua_pushnil(L);
        while (lua_next(L, env_idx)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "sys.spawn: env entries must be string = string");
            lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            envp[ne++] = lua_tostring(L, -1);
            lua_rawseti(L, anchor, ++k);
            lua_pop(L, 1);
        }
    }
    envp[ne] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out) posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err) posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char oldcwd[4096];
    bool moved = false;
    int rc = 0;
    if (cwd) {
        /* glibc 2.36 has no posix_spawn_file_actions_addchdir_np in every build; the board
         * is single-threaded Lua, so a chdir around the spawn is safe */
        if (!getcwd(oldcwd, sizeof oldcwd) || chdir(cwd) != 0) rc = errno ? errno : ENOENT;
        else moved = true;
    }
    pid_t pid = -1;
    if (rc == 0) rc = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, (char *const *)envp);
    if (moved && chdir(oldcwd) != 0) rc = rc ? rc : errno;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return luaL_error(L, "sys.spawn: cannot start %s%s%s: %s", argv[0], cwd ? " in " : "", cwd ? cwd : "",
                          strerror(rc));
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

static int signal_number(lua_State *L, int idx)
{
    const char *s = luaL_optstring(L, idx, "TERM");
    static const struct { const char *name; int sig; } names[] = {
        {"TERM", SIGTERM}, {"INT", SIGINT}, {"KILL", SIGKILL}, {"HUP", SIGHUP}, {"0", 0}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) return names[i].sig;
    return luaL_error(L, "sys.kill: '%s' is not a signal name (TERM, INT, KILL, HUP, or \"0\" to probe)", s);
}

/* sys.kill(pid, sig = "TERM", group = true) -> true, or false and why: signals
 * the child's process group (what sys.spawn made), or the process alone */
static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    if (pid <= 1) return luaL_error(L, "sys.kill: %d is not a child's process id", (int)pid);
    int sig = signal_number(L, 2);
    bool group = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    if (kill(group ? -(pid_t)pid : (pid_t)pid, sig) != 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* sys.wait(pid, block = false) -> nil while it runs, else {code = n} when it
 * exited or {signal = "KILL"|n} when a signal ended it (the child is reaped) */
static int l_wait(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    bool block = lua_toboolean(L, 2);
    int st = 0;
    pid_t r;
    do r = waitpid((pid_t)pid, &st, block ? 0 : WNOHANG); while (r < 0 && errno == EINTR);
    if (r < 0) return luaL_error(L, "sys.wait: process %d: %s", (int)pid, strerror(errno));
    if (r == 0) return 0;
    lua_newtable(L);
    if (WIFEXITED(st)) {
        lua_pushinteger(L, WEXITSTATUS(st));
        lua_setfield(L, -2, "code");
    } else if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *name = sig == SIGTERM ? "TERM" : sig == SIGINT ? "INT" : sig == SIGKILL ? "KILL"
                         : sig == SIGSEGV ? "SEGV" : sig == SIGABRT ? "ABRT" : sig == SIGHUP ? "HUP" : NULL;
        if (name) lua_pushstring(L, name); else lua_pushinteger(L, sig);
        lua_setfield(L, -2, "signal");
    }
    return 1;
}

static const luaL_Reg funcs[] = {
    {"spawn", l_spawn}, {"kill", l_kill}, {"wait", l_wait},
    {"blas", l_blas}, {"cuda", l_cuda}, {"device_memory", l_device_memory}, {"pid", l_pid}, {"exe", l_exe}, {"threads", l_threads},
    {"adapt_threads", l_adapt_threads}, {"cpus", l_cpus}, {"clock", l_clock}, {"rss", l_rss},
    {"matmul_precision", l_matmul_precision}, {"bf16_gemm", l_bf16_gemm}, {"ops", l_ops}, {"op_remove", l_op_remove},
    {"op_restore", l_op_restore},
    {NULL, NULL},
};

LFL_LUA_MODULE(sys)
{
    (void)lfl_blas_init(); /* a missing BLAS is reported by lfl --version and the first GEMM */
    lfl_lua_register_funcs(L, "sys", funcs);
    lua_getglobal(L, "lfl");
    lua_getfield(L, -1, "sys");
    lua_pushstring(L, LUAJIT_VERSION);
    lua_setfield(L, -2, "luajit");
    lua_pop(L, 2);
}
