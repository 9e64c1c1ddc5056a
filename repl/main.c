/* The `lfl` executable: runs scripts, -e code and stdlib commands, prints the
 * versions, or opens the REPL. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bridge.h"
#include "comm/comm.h"
#include "device.h"
#include "gemm_bf16.h"
#include "ops/optable.h"
#include "repl.h"
#include "util/cpus.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lfl [options] [script.lua | recipe.yaml | command] [args...]\n"
            "  lfl                      open the REPL (runs stdin as a script when it is not a terminal)\n"
            "  lfl script.lua [args]    run a script: it sees `arg` (arg[0] = script) and `...`\n"
            "  lfl recipe.yaml          run a LlamaFactory-style recipe (same as `lfl train recipe.yaml`)\n"
            "  lfl <command> [args]     run a command from stdlib/lfl/cmd (`lfl help` lists them)\n"
            "  lfl - [args]             run stdin as a script\n"
            "options:\n"
            "  -e CODE        run CODE\n"
            "  -l MODULE      require MODULE into the global of its last name part\n"
            "                 (-l lfl.test sets `test`); -l NAME=MODULE picks the name\n"
            "  -i             open the REPL after running the script / -e code\n"
            "  -v, --version  print versions, the BLAS kernel set, CUDA and NCCL availability, op coverage\n"
            "  -h, --help     this help\n"
            "  --             stop handling options\n"
            "  --nproc N      (anywhere) train with N local ranks: starts `mpirun -n N lfl ...` (Open MPI)\n"
            "  --hostfile F   (with --nproc) spread the ranks over the machines listed in F (mpirun's hostfile)\n"
            "environment: LFL_HOME (where stdlib/ lives), LFL_PATH (extra Lua search path),\n"
            "  OPENBLAS_CORETYPE (force a BLAS kernel set), OMP_NUM_THREADS (fixes the thread count;\n"
            "  without it training uses the CPUs other processes leave free), LFL_ADAPT_THREADS=0\n"
            "  (keep every available CPU even when other processes are busy),\n"
            "  FORCE_TORCHRUN=1 + NPROC_PER_NODE=N (same as --nproc N),\n"
            "  LFL_TRACEBACK=1 (a command's error messages with their Lua traceback)\n");
}

/* set while a command (lfl train|chat|export ..., a recipe) runs: see traceback() */
static bool command_mode;

/* whether msg starts with a Lua source position ("file.lua:12: ...", "stdin:1: ..."):
 * error() with a level, or a runtime error such as "attempt to index a nil value" */
static bool has_position(const char *msg)
{
    for (const char *p = msg; *p && *p != '\n' && *p != ' '; p++) {
        if (*p != ':' || !isdigit((unsigned char)p[1])) continue;
        const char *q = p + 1;
        while (isdigit((unsigned char)*q)) q++;
        if (*q == ':') return true;
    }
    return false;
}

/* message + traceback for errors raised in scripts and the REPL. In a command,
 * an error without a source position is the stdlib telling the user what is
 * wrong (error(msg, 0), a core status message): the message alone, unless
 * LFL_TRACEBACK is set; bugs (positions, runtime errors) keep their traceback. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    const char *env = getenv("LFL_TRACEBACK");
    if (command_mode && !has_position(msg) && !(env && *env && strcmp(env, "0") != 0)) {
        lua_pushstring(L, msg);
        return 1;
    }
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushstring(L, msg);
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

/* ---- Ctrl-C: the first press interrupts the running Lua code at its next
 * instruction; a second press while that request is still pending (the code
 * sits in a JIT-compiled loop, which never checks hooks) ends the process. ---- */

static lua_State *running;

static void on_sigint(int sig)
{
    /* one Ctrl-C can arrive twice (a wrapper like timeout(1) forwards it and
     * also signals the process group): a repeat within a second is the same press */
    static struct timespec last;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double since = (double)(now.tv_sec - last.tv_sec) + 1e-9 * (double)(now.tv_nsec - last.tv_nsec);
    bool repeat = last.tv_sec != 0 && since < 1.0;
    last = now;
    if (running && lfl_lua_interrupt(running)) return;
    if (repeat) return;
    static const char msg[] = "\nlfl: the running code does not respond to the interrupt (a JIT-compiled loop?); quitting\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

int lfl_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    lua_State *prev_running = running;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    running = L;
    sigaction(SIGINT, &sa, &old);
    int st = lua_pcall(L, narg, nres, base);
    sigaction(SIGINT, &old, NULL);
    running = prev_running;
    if (!prev_running) lfl_lua_interrupt_clear(L);
    lua_remove(L, base);
    return st;
}

/* prints the error on top of the stack (if any) and pops it; returns st */
static int report(lua_State *L, int st)
{
    if (st && !lua_isnil(L, -1)) {
        const char *msg = lua_tostring(L, -1);
        fflush(stdout);
        fprintf(stderr, "lfl: %s\n", msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return st;
}

/* The communicators this build can use: MPI for host buffers (the ranks),
 * NCCL for device buffers (dlopen'ed by kernels/comm_nccl.cu on first use;
 * the emulator build has its own over MPI) */
static void print_comms(void)
{
    printf("MPI: %s\n", lfl_comm_describe());
    bool ok = false;
    const char *nccl = lfl_comm_nccl_describe(&ok);
    if (ok && !lfl_comm_have_mpi()) printf("NCCL: %s, but unusable: its ranks are bootstrapped over MPI\n", nccl);
    else printf("NCCL: %s\n", nccl);
    printf("Communicators: host tensors %s; device tensors %s%s\n",
           lfl_comm_have_mpi() ? "mpi" : "none (one process)", ok && lfl_comm_have_mpi() ? "nccl" : "none (one process)",
           ok && lfl_device_count() < 1 ? " (no usable CUDA device here)" : "");
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
    if (lfl_blas_note()) printf("BLAS warning: %s\n", lfl_blas_note());
    printf("CPUs: %d (%s); %s\n", lfl_cpus_available(), lfl_cpus_describe(),
           lfl_cpus_adapting() ? "training follows other busy processes (LFL_ADAPT_THREADS=0 turns it off)"
           : getenv("OMP_NUM_THREADS") ? "threads fixed by OMP_NUM_THREADS"
           : getenv("LFL_ADAPT_THREADS") ? "threads fixed (LFL_ADAPT_THREADS=0)"
           : "threads fixed (a cgroup quota below the affinity mask, or one CPU)");
    printf("bf16 GEMM: %s\n", lfl_gemm_bf16_describe());
    printf("%s\n", lfl_device_describe());
    /* which ops each device kind has kernels for (lfl.sys.ops() lists them) */
    char cuda[1024];
    int ncpu = lfl_op_coverage(LFL_DEVKIND_CPU, NULL, 0), ncuda = lfl_op_coverage(LFL_DEVKIND_CUDA, cuda, sizeof cuda);
    printf("ops: %d kernels; CPU %d, CUDA %d%s%s%s\n", lfl_op_count(), ncpu, ncuda, ncuda ? " (" : "", cuda,
           ncuda ? ")" : "");
    print_comms();
    printf("home: %s\n", lfl_lua_home());
}

/* arg[0] = argv[script], arg[1..] after it, arg[-1..] before it (as lua.c) */
static void set_args(lua_State *L, char **argv, int argc, int script)
{
    lua_createtable(L, argc - script, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* `lfl <command> args` and `lfl recipe.yaml`: stdlib's lfl.cli.main(arg)
 * returns the exit status (nil = 0) or raises */
static int run_command(lua_State *L)
{
    command_mode = true;
    lua_getglobal(L, "require");
    lua_pushstring(L, "lfl.cli");
    if (report(L, lfl_docall(L, 1, 1))) return 1;
    lua_getfield(L, -1, "main");
    lua_remove(L, -2);
    lua_getglobal(L, "arg");
    if (report(L, lfl_docall(L, 1, 1))) return 1;
    int code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return code;
}

/* returns the exit status */
static int run_file(lua_State *L, char **argv, int argc, int script)
{
    set_args(L, argv, argc, script);
    const char *path = argv[script];
    struct stat sb;
    bool is_stdin = strcmp(path, "-") == 0;
    bool exists = is_stdin || (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode));
    if (!is_stdin && (ends_with(path, ".yaml") || ends_with(path, ".yml") || (!exists && !ends_with(path, ".lua"))))
        return run_command(L);
    if (luaL_loadfile(L, is_stdin ? NULL : path) != 0) return report(L, 1) ? 1 : 0;
    int nargs = argc - script - 1;
    luaL_checkstack(L, nargs + 2, "too many arguments");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    if (report(L, lfl_docall(L, nargs, 1))) return 1;
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    /* a recipe returns its arguments: train with them (later args are key=value overrides) */
    command_mode = true;
    lua_getglobal(L, "require");
    lua_pushstring(L, "lfl.cli");
    if (report(L, lfl_docall(L, 1, 1))) return 1;
    lua_getfield(L, -1, "run_recipe");
    lua_remove(L, -2);
    lua_insert(L, -2);
    lua_pushstring(L, path);
    lua_createtable(L, nargs, 0);
    for (int i = script + 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    return report(L, lfl_docall(L, 3, 0)) ? 1 : 0;
}

/* -l MODULE or -l NAME=MODULE */
static int load_module(lua_State *L, const char *spec)
{
    const char *eq = strchr(spec, '=');
    const char *mod = eq ? eq + 1 : spec;
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    int st = lfl_docall(L, 1, 1);
    if (st) return st;
    if (eq) {
        lua_pushlstring(L, spec, (size_t)(eq - spec));
    } else {
        const char *dot = strrchr(mod, '.');
        lua_pushstring(L, dot ? dot + 1 : mod);
    }
    lua_insert(L, -2);
    lua_settable(L, LUA_GLOBALSINDEX);
    return 0;
}

static bool truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "y") == 0 ||
                 strcasecmp(v, "yes") == 0);
}

static bool parse_count(const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 4096) return false;
    *out = (int)n;
    return true;
}

/* --nproc N / --hostfile F (taken out of argv wherever they are) and the
 * torchrun variables LlamaFactory users set. Returns -1 to go on in this
 * process, else the exit status of the launched job (or 2 for a refusal). */
static int multi_process(int *argc, char **argv)
{
    int nproc = 0, k = 1;
    const char *hostfile = NULL;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc) argv[k++] = argv[i++];
            break;
        }
        const char *v = NULL;
        bool is_n = strncmp(a, "--nproc", 7) == 0 && (a[7] == 0 || a[7] == '=');
        bool is_h = strncmp(a, "--hostfile", 10) == 0 && (a[10] == 0 || a[10] == '=');
        if (!is_n && !is_h) {
            argv[k++] = argv[i];
            continue;
        }
        const char *eq = strchr(a, '=');
        if (eq) v = eq + 1;
        else if (i + 1 < *argc) v = argv[++i];
        if (!v) {
            fprintf(stderr, "lfl: %s needs a value\n", is_n ? "--nproc" : "--hostfile");
            return 2;
        }
        if (is_h) hostfile = v;
        else if (!parse_count(v, &nproc)) {
            fprintf(stderr, "lfl: --nproc takes a number of processes (1..4096), got '%s'\n", v);
            return 2;
        }
    }
    argv[k] = NULL;
    *argc = k;
    const char *nnodes = getenv("NNODES"), *node_rank = getenv("NODE_RANK");
    if ((nnodes && strcmp(nnodes, "1") != 0) || (node_rank && strcmp(node_rank, "0") != 0)) {
        fprintf(stderr, "lfl: NNODES=%s NODE_RANK=%s (torchrun's multi-machine launch) is not how lfl spans machines: "
                "run on one machine `lfl ... --nproc N --hostfile hosts` (mpirun starts the ranks on the listed "
                "machines; see README, multi-process training)\n", nnodes ? nnodes : "", node_rank ? node_rank : "");
        return 2;
    }
    if (nproc == 0 && truthy(getenv("FORCE_TORCHRUN"))) {
        const char *per = getenv("NPROC_PER_NODE");
        if (!per || !parse_count(per, &nproc)) {
            fprintf(stderr, "lfl: FORCE_TORCHRUN=%s needs NPROC_PER_NODE=<ranks> (lfl has no GPU count to take it "
                    "from), or use --nproc N\n", getenv("FORCE_TORCHRUN"));
            return 2;
        }
    }
    if (lfl_comm_launched()) {
        if (!lfl_comm_have_mpi()) {
            fprintf(stderr, "lfl: started by mpirun but built without MPI: install libopenmpi-dev and rebuild\n");
            return 2;
        }
        return -1; /* a rank: --nproc was for the launcher */
    }
    const char *ws = getenv("WORLD_SIZE");
    if (ws && strcmp(ws, "1") != 0 && strcmp(ws, "") != 0) {
        fprintf(stderr, "lfl: WORLD_SIZE=%s is set (torchrun / accelerate?) but lfl's ranks are MPI processes: run "
                "`lfl ... --nproc %s` (or mpirun -n %s lfl ...) instead\n", ws, ws, ws);
        return 2;
    }
    if (nproc <= 1 && !hostfile) return -1;
    if (!lfl_comm_have_mpi()) {
        fprintf(stderr, "lfl: --nproc %d needs MPI, and this lfl was built without it (install libopenmpi-dev and "
                "openmpi-bin, then rebuild: bash tests/setup.sh)\n", nproc);
        return 2;
    }
    if (nproc == 0) nproc = 1;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        argv[0] = exe;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = hostfile ? 0 : (int)(cores / nproc > 0 ? cores / nproc : 1);
    int code = 1;
    if (lfl_comm_launch(argv, nproc, threads, hostfile, &code)) {
        fprintf(stderr, "lfl: %s\n", lfl_last_error());
        return 2;
    }
    return code;
}

int main(int argc, char **argv)
{
    {
        int code = multi_process(&argc, argv);
        if (code >= 0) return code;
    }
    /* training logs are read as they come, also when piped to a file */
    setvbuf(stdout, NULL, _IOLBF, 0);
    lfl_cpus_default_threads();
    lua_State *L = lfl_lua_new();
    if (!L) return 1;
    int i = 1, status = 0;
    bool interactive = false, ran = false;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
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
            if (o[1] == 'e')
                status = luaL_loadbuffer(L, v, strlen(v), "=(command line)") || lfl_docall(L, 0, 0);
            else
                status = load_module(L, v);
            ran = true;
            if (report(L, status)) {
                status = 1;
                break;
            }
        } else if (strcmp(o, "--") == 0) {
            i++;
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
        if (isatty(STDIN_FILENO) || interactive) {
            status = lfl_repl(L);
        } else {
            /* `lfl < script.lua` and `... | lfl` run stdin, as lua does */
            status = (luaL_loadfile(L, NULL) ? report(L, 1) : report(L, lfl_docall(L, 0, 0))) ? 1 : 0;
        }
    }
    lfl_lua_close(L);
    /* a rank that failed must not wait in MPI_Finalize for ranks still in a collective */
    if (status && lfl_comm_current()) lfl_comm_current()->failed = true;
    lfl_comm_shutdown();
    return status;
}
