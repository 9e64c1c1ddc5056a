// The CUDA emulator (see cuda_emu.h): device memory as a guarded arena, the
// runtime calls, the fiber scheduler that runs each block's threads, and the
// cuBLAS GEMMs on the host. One device, "cuda:0"; launches and copies are
// synchronous; a launch error is kept for cudaGetLastError as CUDA does.
#include <map>
#include <mutex>
#include <vector>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ucontext.h>
#include "cuda_emu.h"

namespace lfl_emu {
Thread *g_cur;
uint3 g_block;
dim3 g_bdim, g_gdim;
} // namespace lfl_emu

using namespace lfl_emu;

static cudaError_t last_error = cudaSuccess;
static int current_device = 0;
static std::recursive_mutex emu_lock; // one launch or copy at a time

static cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

// ---- device memory: one arena, readable only inside launches and copies ----------
// Reserved once (no memory is committed until touched); a bump pointer with
// free lists per rounded size, which is all a test's steady shapes need. Each
// allocation ends against a guard page that is never readable, as an
// electric fence: a kernel reading or writing past the end of a buffer (by
// more than the rounding to 256 bytes) faults at once instead of corrupting
// or reading its neighbour. LFL_CUDA_EMU_PROTECT picks how much is checked:
//   strict (default): device memory is readable only inside launches and
//     copies, and then only the live allocations: host code touching device
//     memory and kernels touching freed buffers fault too. Costs a system call
//     per live buffer per launch: right for kernel tests, slow for training.
//   guard: the guard pages and freed buffers only (no cost per launch);
//   0: nothing (plain memory).
static const size_t ARENA_BYTES = (size_t)16 << 30, PAGE = 4096;
static char *arena;
static size_t arena_top;
struct Block {
    size_t size;  // rounded to 256
    char *pages;  // the first page of the data pages (the guard page follows them)
    size_t npages;
};
static std::map<void *, Block> live;                // pointer -> its block
static std::map<size_t, std::vector<Block>> freed; // rounded size -> free blocks
static int access_depth;
enum { PROTECT_OFF, PROTECT_GUARD, PROTECT_STRICT };
static int protect = PROTECT_STRICT;
static bool protect_on = true; // any protection

// A fault in the arena, explained before the process dies: inside a launch it
// is a kernel's out-of-bounds or use-after-free access, outside one it is host
// code reading device memory (both bugs a GPU would show too).
static void on_fault(int sig, siginfo_t *si, void *)
{
    char *addr = (char *)si->si_addr;
    if (arena && addr >= arena && addr < arena + ARENA_BYTES) {
        char msg[320];
        int n;
        if (lfl_emu::g_cur)
            n = snprintf(msg, sizeof msg, "cuda emulator: a kernel accessed device memory at %p outside every live "
                         "buffer (past an end, or freed): block (%u, %u, %u), thread (%u, %u, %u)\n", (void *)addr,
                         lfl_emu::g_block.x, lfl_emu::g_block.y, lfl_emu::g_block.z, lfl_emu::g_cur->tid.x,
                         lfl_emu::g_cur->tid.y, lfl_emu::g_cur->tid.z);
        else
            n = snprintf(msg, sizeof msg, "cuda emulator: host code read or wrote device memory at %p (only kernels "
                         "and cudaMemcpy may)\n", (void *)addr);
        if (n > 0) (void)!write(2, msg, (size_t)n);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void arena_init(void)
{
    if (arena) return;
    // the handler runs on its own stack: a fiber's may be the one that faulted
    static char altstack[64 << 10];
    stack_t ss = {};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, NULL);
    struct sigaction sa = {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    void *p = mmap(NULL, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "cuda emulator: cannot reserve the device arena\n");
        abort();
    }
    arena = (char *)p;
    const char *e = getenv("LFL_CUDA_EMU_PROTECT");
    protect = !e || !*e || !strcmp(e, "strict") ? PROTECT_STRICT : !strcmp(e, "guard") ? PROTECT_GUARD : PROTECT_OFF;
    if (e && *e && protect == PROTECT_OFF && strcmp(e, "0"))
        fprintf(stderr, "cuda emulator: LFL_CUDA_EMU_PROTECT=%s is not strict, guard or 0; protection is off\n", e);
    protect_on = protect != PROTECT_OFF;
    if (!protect_on) mprotect(arena, ARENA_BYTES, PROT_READ | PROT_WRITE);
}

static void set_access(bool on)
{
    if (protect != PROTECT_STRICT || !arena_top) return;
    if (!on) {
        mprotect(arena, arena_top, PROT_NONE);
        return;
    }
    for (auto &kv : live) mprotect(kv.second.pages, kv.second.npages * PAGE, PROT_READ | PROT_WRITE);
}

Access::Access()
{
    emu_lock.lock();
    if (access_depth++ == 0) set_access(true);
}
Access::~Access()
{
    if (--access_depth == 0) set_access(false);
    emu_lock.unlock();
}

static bool is_device(const void *p)
{
    return arena && (const char *)p >= arena && (const char *)p < arena + ARENA_BYTES;
}

cudaError_t cudaMalloc(void **p, size_t n)
{
    std::lock_guard<std::recursive_mutex> g(emu_lock);
    arena_init();
    size_t r = (n + 255) & ~(size_t)255;
    if (!r) r = 256;
    Block b;
    auto f = freed.find(r);
    if (f != freed.end() && !f->second.empty()) {
        b = f->second.back();
        f->second.pop_back();
    } else {
        b.size = r;
        b.npages = (r + PAGE - 1) / PAGE;
        if (arena_top + (b.npages + 1) * PAGE > ARENA_BYTES) return fail(cudaErrorMemoryAllocation);
        b.pages = arena + arena_top;
        arena_top += (b.npages + 1) * PAGE; // + the guard page (PROT_NONE since the arena was reserved)
    }
    // right-aligned against the guard page
    *p = b.pages + b.npages * PAGE - r;
    live[*p] = b;
    if (protect == PROTECT_GUARD || (protect == PROTECT_STRICT && access_depth > 0))
        mprotect(b.pages, b.npages * PAGE, PROT_READ | PROT_WRITE);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    std::lock_guard<std::recursive_mutex> g(emu_lock);
    auto it = live.find(p);
    if (it == live.end()) return fail(cudaErrorInvalidValue);
    freed[it->second.size].push_back(it->second);
    if (protect == PROTECT_GUARD || (protect == PROTECT_STRICT && access_depth > 0))
        mprotect(it->second.pages, it->second.npages * PAGE, PROT_NONE);
    live.erase(it);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t n)
{
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void *p)
{
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    std::lock_guard<std::recursive_mutex> g(emu_lock);
    size_t used = 0;
    for (auto &kv : live) used += kv.second.size;
    *total_b = ARENA_BYTES;
    *free_b = ARENA_BYTES - used;
    return cudaSuccess;
}

// a device range [p, p + n) inside one live allocation
static bool device_range(const void *p, size_t n)
{
    if (!is_device(p)) return false;
    auto it = live.upper_bound((void *)p);
    if (it == live.begin()) return false;
    --it;
    return (const char *)p + n <= (const char *)it->first + it->second.size;
}

cudaError_t cudaMemset(void *p, int v, size_t n)
{
    Access a;
    if (!device_range(p, n)) return fail(cudaErrorInvalidValue);
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { return cudaMemset(p, v, n); }

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k)
{
    Access a;
    bool dd = k == cudaMemcpyDeviceToDevice || k == cudaMemcpyHostToDevice;
    bool sd = k == cudaMemcpyDeviceToDevice || k == cudaMemcpyDeviceToHost;
    if (k == cudaMemcpyDefault) dd = is_device(dst), sd = is_device(src);
    // a host pointer said to be a device one (or the reverse) is the bug a GPU would fault on
    if (n && (dd != is_device(dst) || sd != is_device(src) || (dd && !device_range(dst, n)) ||
              (sd && !device_range(src, n))))
        return fail(cudaErrorInvalidValue);
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t)
{
    return cudaMemcpy(dst, src, n, k);
}

// ---- the rest of the runtime -----------------------------------------------------------
cudaError_t cudaGetDeviceCount(int *n)
{
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? (current_device = d, cudaSuccess) : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *d)
{
    *d = current_device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d)
{
    if (d != 0) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "lfl CUDA emulator (host fibers)");
    p->totalGlobalMem = ARENA_BYTES;
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 2;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) { return cudaRuntimeGetVersion(v); }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
struct lfl_emu_event { int recorded; };
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
    *e = new lfl_emu_event{0};
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t)
{
    if (!e) return fail(cudaErrorInvalidValue);
    e->recorded = 1;
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return e ? cudaSuccess : fail(cudaErrorInvalidValue); }
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }
const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

// ---- the fiber scheduler ------------------------------------------------------------
enum { RUN, WAIT_BLOCK, WAIT_WARP, DONE };
static const size_t STACK_BYTES = 256 << 10;
static std::vector<Thread> threads;
// The context switch. On x86-64 a few instructions that save the callee-saved
// registers and the stack pointer (glibc's swapcontext also saves the signal
// mask: two system calls a switch, most of the emulator's time); elsewhere
// ucontext. A fiber's stack starts with a frame whose return address is
// fiber_entry, so the first switch to it starts the thread.
#if defined(__x86_64__)
#define LFL_EMU_FAST_SWITCH 1
extern "C" void lfl_emu_switch(void **save_sp, void *next_sp);
asm(".text\n"
    ".globl lfl_emu_switch\n"
    ".type lfl_emu_switch,@function\n"
    "lfl_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size lfl_emu_switch, .-lfl_emu_switch\n");
static std::vector<void *> fiber_sp;
static void *sched_sp;
#endif
static std::vector<ucontext_t> contexts;
static std::vector<char *> stacks;
static std::vector<uint64_t> slots; // 32 per warp
[[maybe_unused]] static ucontext_t sched_ctx;
static void (*cur_body)(void *);
static void *cur_ctx;
static std::vector<unsigned char> smem_buf;
static std::map<const void *, int> max_smem;
static unsigned long long launches;

void *lfl_emu::dyn_smem(void) { return smem_buf.data(); }
uint64_t *lfl_emu::warp_slots(void) { return &slots[(size_t)g_cur->warp * 32]; }

cudaError_t lfl_emu::set_max_smem(const void *fn, int bytes)
{
    if (bytes < 0 || bytes > (227 << 10)) return fail(cudaErrorInvalidValue);
    max_smem[fn] = bytes;
    return cudaSuccess;
}

static void wait_as(int state)
{
    Thread *t = g_cur;
    t->state = state;
#ifdef LFL_EMU_FAST_SWITCH
    lfl_emu_switch(&fiber_sp[t->linear], sched_sp);
#else
    swapcontext(&contexts[t->linear], &sched_ctx);
#endif
}
void lfl_emu::block_barrier(void) { wait_as(WAIT_BLOCK); }
void lfl_emu::warp_barrier(void) { wait_as(WAIT_WARP); }

[[maybe_unused]] static void fiber_main(int i)
{
    g_cur = &threads[i];
    cur_body(cur_ctx);
    threads[i].state = DONE;
    // returning resumes sched_ctx (uc_link)
}

#ifdef LFL_EMU_FAST_SWITCH
// where a fiber starts: its thread's body, then back to the scheduler for good
static void fiber_entry(void)
{
    int i = g_cur->linear;
    cur_body(cur_ctx);
    threads[i].state = DONE;
    lfl_emu_switch(&fiber_sp[i], sched_sp);
    abort(); // a finished fiber is never resumed
}

// a fresh stack whose first switch "returns" into fiber_entry: the 8 bytes of
// mxcsr / x87 control word, six callee-saved registers, then the return
// address, with the stack 16-byte aligned plus 8 at fiber_entry's start (as
// after a call)
static void *fresh_stack(char *stack)
{
    uintptr_t top = ((uintptr_t)(stack + STACK_BYTES)) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;                              // fiber_entry's own (unused) return address
    *--sp = (uint64_t)(uintptr_t)fiber_entry;
    for (int r = 0; r < 6; r++) *--sp = 0;  // rbp rbx r12 r13 r14 r15
    uint32_t csr[2];
    asm volatile("stmxcsr %0\n fnstcw %1" : "=m"(csr[0]), "=m"(csr[1]));
    *--sp = (uint64_t)csr[0] | ((uint64_t)(csr[1] & 0xffff) << 32);
    return sp;
}
#endif

static void deadlock(const void *fn, int n)
{
    fprintf(stderr,
            "cuda emulator: deadlock in the kernel at %p, block (%u, %u, %u): the live threads wait at "
            "different barriers (a __syncthreads or full-warp shuffle not reached by every live thread):",
            fn, g_block.x, g_block.y, g_block.z);
    for (int i = 0; i < n; i++)
        if (threads[i].state != DONE)
            fprintf(stderr, " t%d:%s", i, threads[i].state == WAIT_BLOCK ? "sync" : "warp");
    fprintf(stderr, "\n");
    abort();
}

static void run_block(const void *fn, int n, bool reverse)
{
    int nwarps = (n + 31) / 32;
    for (int i = 0; i < n; i++) {
        Thread &t = threads[i];
        t.linear = i;
        t.tid.x = i % g_bdim.x;
        t.tid.y = (i / g_bdim.x) % g_bdim.y;
        t.tid.z = i / (g_bdim.x * g_bdim.y);
        t.lane = i & 31;
        t.warp = i >> 5;
        t.state = RUN;
#ifdef LFL_EMU_FAST_SWITCH
        fiber_sp[i] = fresh_stack(stacks[i]);
#else
        getcontext(&contexts[i]);
        contexts[i].uc_stack.ss_sp = stacks[i];
        contexts[i].uc_stack.ss_size = STACK_BYTES;
        contexts[i].uc_link = &sched_ctx;
        makecontext(&contexts[i], (void (*)(void))fiber_main, 1, i);
#endif
    }
    for (;;) {
        for (int j = 0; j < n; j++) {
            int i = reverse ? n - 1 - j : j;
            if (threads[i].state != RUN) continue;
            g_cur = &threads[i];
#ifdef LFL_EMU_FAST_SWITCH
            lfl_emu_switch(&sched_sp, fiber_sp[i]);
#else
            swapcontext(&sched_ctx, &contexts[i]);
#endif
        }
        bool any_live = false, released = false, all_block = true;
        for (int w = 0; w < nwarps; w++) {
            bool live = false, all_warp = true;
            for (int i = w * 32; i < n && i < w * 32 + 32; i++) {
                if (threads[i].state == DONE) continue;
                live = true;
                if (threads[i].state != WAIT_WARP) all_warp = false;
                if (threads[i].state != WAIT_BLOCK) all_block = false;
            }
            any_live |= live;
            if (live && all_warp) {
                for (int i = w * 32; i < n && i < w * 32 + 32; i++)
                    if (threads[i].state == WAIT_WARP) threads[i].state = RUN;
                released = true;
            }
        }
        if (!any_live) return;
        if (released) continue;
        if (all_block) {
            for (int i = 0; i < n; i++)
                if (threads[i].state == WAIT_BLOCK) threads[i].state = RUN;
            continue;
        }
        deadlock(fn, n);
    }
}

void lfl_emu::run_grid(const void *fn, dim3 g, dim3 b, size_t smem, void (*body)(void *), void *ctx)
{
    std::lock_guard<std::recursive_mutex> guard(emu_lock);
    unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
    auto ms = max_smem.find(fn);
    size_t smem_limit = ms != max_smem.end() && ms->second > (48 << 10) ? (size_t)ms->second : (size_t)48 << 10;
    if (nt == 0 || nt > 1024 || b.z > 64 || g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535 ||
        g.x > 2147483647u || smem > smem_limit) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    int n = (int)nt;
    while ((int)threads.size() < n) {
        threads.push_back(Thread());
        contexts.push_back(ucontext_t());
#ifdef LFL_EMU_FAST_SWITCH
        fiber_sp.push_back(NULL);
#endif
        void *s = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (s == MAP_FAILED) {
            fail(cudaErrorLaunchFailure);
            return;
        }
        stacks.push_back((char *)s);
    }
    slots.assign((size_t)((n + 31) / 32) * 32, 0);
    // fresh shared memory per launch, filled with a NaN pattern so reading what
    // was never written shows in the results
    smem_buf.assign(smem + 16, 0xff);
    const char *order = getenv("LFL_CUDA_EMU_ORDER");
    bool reverse = order && !strcmp(order, "reverse") ? true
                   : order && !strcmp(order, "forward") ? false
                                                        : (launches & 1) != 0;
    launches++;
    Access a;
    cur_body = body;
    cur_ctx = ctx;
    g_bdim = b;
    g_gdim = g;
    for (unsigned z = 0; z < g.z; z++)
        for (unsigned y = 0; y < g.y; y++)
            for (unsigned x = 0; x < g.x; x++) {
                g_block.x = x, g_block.y = y, g_block.z = z;
                run_block(fn, n, reverse);
            }
    g_cur = NULL;
}

// ---- cuBLAS on the host -------------------------------------------------------------------
struct lfl_emu_cublas { int unused; };

cublasStatus_t lfl_emu::cublas_create(cublasHandle_t *h)
{
    static lfl_emu_cublas one;
    *h = &one;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t lfl_emu::cublas_set_stream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }

static double load(const void *p, cudaDataType t, long long i)
{
    switch (t) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_64F: return ((const double *)p)[i];
    case CUDA_R_16BF: {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case CUDA_R_16F: return (double)(float)((const _Float16 *)p)[i];
    case CUDA_R_8I: return ((const int8_t *)p)[i];
    case CUDA_R_32I: return ((const int32_t *)p)[i];
    }
    return NAN;
}

static void store(void *p, cudaDataType t, long long i, double v)
{
    switch (t) {
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    case CUDA_R_64F: ((double *)p)[i] = v; break;
    case CUDA_R_16BF: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        uint16_t h = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40)
                                                     : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        ((uint16_t *)p)[i] = h;
        break;
    }
    case CUDA_R_16F: ((_Float16 *)p)[i] = (_Float16)(float)v; break;
    case CUDA_R_8I: ((int8_t *)p)[i] = (int8_t)v; break;
    case CUDA_R_32I: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

// column-major C[m, n] = alpha op(A) op(B) + beta C, as cuBLAS defines it;
// products summed in f32 for f32 compute (as the GPU does), in f64 for f64
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha,
                           const void *A, cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt,
                           int ldb, long long sb, double beta, void *C, cudaDataType ct, int ldc, long long sc,
                           int batch, bool f64)
{
    if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!is_device(A) || !is_device(B) || !is_device(C)) return CUBLAS_STATUS_INVALID_VALUE;
    Access acc;
    for (int bi = 0; bi < batch; bi++) {
        const char *pa = (const char *)A, *pb = (const char *)B;
        (void)pa, (void)pb;
#pragma omp parallel for schedule(static)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double s64 = 0;
                float s32 = 0;
                for (int l = 0; l < k; l++) {
                    double x = load(A, at, bi * sa + (ta == CUBLAS_OP_N ? (long long)l * lda + i : (long long)i * lda + l));
                    double y = load(B, bt, bi * sb + (tb == CUBLAS_OP_N ? (long long)j * ldb + l : (long long)l * ldb + j));
                    if (f64) s64 += x * y;
                    else s32 = fmaf((float)x, (float)y, s32);
                }
                double s = f64 ? s64 : s32;
                long long ci = bi * sc + (long long)j * ldc + i;
                double old = beta != 0 ? load(C, ct, ci) : 0;
                store(C, ct, ci, alpha * s + (beta != 0 ? beta * old : 0));
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t lfl_emu::cublas_sgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     const float *alpha, const float *A, int lda, const float *B, int ldb,
                                     const float *beta, float *C, int ldc)
{
    return gemm(ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0, *beta, C, CUDA_R_32F, ldc, 0,
                1, false);
}
cublasStatus_t lfl_emu::cublas_dgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     const double *alpha, const double *A, int lda, const double *B, int ldb,
                                     const double *beta, double *C, int ldc)
{
    return gemm(ta, tb, m, n, k, *alpha, A, CUDA_R_64F, lda, 0, B, CUDA_R_64F, ldb, 0, *beta, C, CUDA_R_64F, ldc, 0,
                1, true);
}

static bool scalars_f64(cublasComputeType_t c) { return c == CUBLAS_COMPUTE_64F; }

cublasStatus_t lfl_emu::cublas_gemm_strided_batched_ex(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                                       int m, int n, int k, const void *alpha, const void *A,
                                                       cudaDataType at, int lda, long long sa, const void *B,
                                                       cudaDataType bt, int ldb, long long sb, const void *beta,
                                                       void *C, cudaDataType ct, int ldc, long long sc, int batch,
                                                       cublasComputeType_t comp, cublasGemmAlgo_t)
{
    bool f64 = scalars_f64(comp);
    if (at != bt || (f64 && (at != CUDA_R_64F || ct != CUDA_R_64F)) || (!f64 && at == CUDA_R_64F))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    double al = f64 ? *(const double *)alpha : *(const float *)alpha;
    double be = f64 ? *(const double *)beta : *(const float *)beta;
    return gemm(ta, tb, m, n, k, al, A, at, lda, sa, B, bt, ldb, sb, be, C, ct, ldc, sc, batch, f64);
}

cublasStatus_t lfl_emu::cublas_gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                       int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                       const void *B, cudaDataType bt, int ldb, const void *beta, void *C,
                                       cudaDataType ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    return cublas_gemm_strided_batched_ex(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc,
                                          0, 1, comp, algo);
}
