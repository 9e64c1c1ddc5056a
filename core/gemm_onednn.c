/* oneDNN's matmul as a bf16 GEMM (bf16 x bf16 -> f32, f32 sums): on a Xeon
 * with AMX it runs brg:avx512_core_amx_bf16, ~20x the vdpbf16ps kernel of
 * gemm_bf16.c per thread. Built only where CMake found oneDNN.
 *
 * Primitives: creating one costs ~0.3-1 ms (JIT code generation), so each
 * (shape, B strides, ldc, alpha, beta, thread count) gets one primitive, kept
 * in a cache of CACHE_N entries; a full cache evicts the least recently used
 * entry no thread is executing. Shapes are fixed, not DNNL_RUNTIME_DIM_VAL:
 * oneDNN 2.6 gives runtime-M matmuls only to its gemm:jit kernel, never the
 * brgemm (AMX) one, and that kernel was 3x slower on the 49152-wide LM head.
 *
 * Threads: Debian's oneDNN uses the same libgomp as lfl, takes
 * omp_get_max_threads() threads outside a parallel region and one inside it
 * (it never nests), so a call from a parallel loop of lfl's runs on its own
 * thread. The scratchpad is user-managed and passed per call (the library's
 * own one is shared per primitive and not safe to execute concurrently), and
 * each thread has its own stream.
 *
 * Operands: A (f32) is rounded into a contiguous bf16 [m, k] buffer (rows of
 * A^T are transposed on the way); a bf16 B with positive strides along one
 * unit dim is read where it lies (a linear's weight in either orientation);
 * any other B is rounded into a contiguous bf16 copy first. */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blas.h"
#include "dtype.h"
#include "gemm_bf16.h"
#include "gemm_onednn.h"

#ifdef LFL_HAVE_DNNL
#include <dnnl.h>
#include <dnnl_debug.h>

#define CACHE_N 64

typedef struct {
    int64_t m, n, k, sbk, sbn, ldc;
    float alpha, beta;
    int nthr;
} key_t_;

typedef struct {
    key_t_ key;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a_md, b_md, c_md, s_md;
    size_t scratch_bytes;
    char impl[64];
    int users;          /* threads executing it now (under `lock`) */
    uint64_t last_use;
    bool used;
} entry;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static bool ready;
static char describe_buf[192];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry cache[CACHE_N];
static uint64_t clock_;
static atomic_llong created;

static _Thread_local dnnl_stream_t stream;
static _Thread_local char last_impl[64];

/* per-thread conversion and scratchpad buffers, kept between calls */
typedef struct { void *p; size_t cap; } tbuf;
static _Thread_local tbuf buf_a, buf_b, buf_s;

static void *tbuf_get(tbuf *t, size_t bytes)
{
    if (bytes == 0) bytes = 64;
    if (bytes > t->cap) {
        void *q = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!q) return NULL;
        free(t->p);
        t->p = q;
        t->cap = bytes;
    }
    return t->p;
}

/* A buffer over 64 MB (a vocab-sized f32 operand) is not kept per thread */
static void tbuf_trim(tbuf *t)
{
    if (t->cap > ((size_t)64 << 20)) { free(t->p); t->p = NULL; t->cap = 0; }
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "other";
    }
}

static void init(void)
{
    dnnl_status_t s = dnnl_engine_create(&engine, dnnl_cpu, 0);
    const dnnl_version_t *v = dnnl_version();
    if (s != dnnl_success) {
        snprintf(describe_buf, sizeof describe_buf, "oneDNN %d.%d.%d: no CPU engine (%s)", v->major, v->minor,
                 v->patch, dnnl_status2str(s));
        return;
    }
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    /* its bf16 matmuls need AVX-512 (emulated bf16 on avx512_core); below
     * that, oneDNN 2.6 has none ("unimplemented") */
    bool bf16 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
    snprintf(describe_buf, sizeof describe_buf, "oneDNN %d.%d.%d (%s), ISA %s%s", v->major, v->minor, v->patch,
             dnnl_runtime2str(v->cpu_runtime), isa_name(isa), bf16 ? "" : ": no bf16 matmul below avx512_core");
    ready = bf16;
}

bool lfl_onednn_available(void)
{
    pthread_once(&once, init);
    return ready;
}

bool lfl_onednn_has_amx(void)
{
    return lfl_onednn_available() && dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx512_core_amx;
}

const char *lfl_onednn_describe(void)
{
    pthread_once(&once, init);
    return describe_buf;
}

const char *lfl_onednn_last_impl(void) { return last_impl; }

int64_t lfl_onednn_created(void) { return atomic_load(&created); }

static lfl_status fail_dnnl(dnnl_status_t s, const char *what, const key_t_ *kk)
{
    return lfl_fail(LFL_ERR_UNSUPPORTED, "gemm (oneDNN): %s failed (%s) for %lld x %lld by %lld x %lld", what,
                    dnnl_status2str(s), (long long)kk->m, (long long)kk->k, (long long)kk->k, (long long)kk->n);
}

static lfl_status md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t s0, int64_t s1, dnnl_data_type_t dt,
                      const key_t_ *kk)
{
    dnnl_dims_t dims = {d0, d1}, strides = {s0, s1};
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
    return s == dnnl_success ? LFL_OK : fail_dnnl(s, "a memory descriptor", kk);
}

/* a primitive for kk into e (not yet in the cache) */
static lfl_status create(const key_t_ *kk, entry *e)
{
    memset(e, 0, sizeof *e);
    e->key = *kk;
    lfl_status st = md2(&e->a_md, kk->m, kk->k, kk->k, 1, dnnl_bf16, kk);
    if (st == LFL_OK) st = md2(&e->b_md, kk->k, kk->n, kk->sbk, kk->sbn, dnnl_bf16, kk);
    if (st == LFL_OK) st = md2(&e->c_md, kk->m, kk->n, kk->ldc, 1, dnnl_f32, kk);
    if (st != LFL_OK) return st;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_matmul_desc_init(&desc, &e->a_md, &e->b_md, NULL, &e->c_md);
    const char *what = "matmul_desc_init";
    if (s == dnnl_success) { what = "attr_create"; s = dnnl_primitive_attr_create(&attr); }
    if (s == dnnl_success) { what = "scratchpad mode"; s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user); }
    if (s == dnnl_success && kk->alpha != 1.0f) {
        what = "output scales";
        s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &kk->alpha);
    }
    if (s == dnnl_success && kk->beta != 0.0f) {
        what = "sum post-op";
        s = dnnl_post_ops_create(&ops);
        if (s == dnnl_success) s = dnnl_post_ops_append_sum(ops, kk->beta);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    if (s == dnnl_success) { what = "primitive_desc_create"; s = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL); }
    if (s == dnnl_success) { what = "primitive_create"; s = dnnl_primitive_create(&e->prim, pd); }
    if (s == dnnl_success) {
        const char *impl = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "");
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (smd) e->s_md = *smd;
        e->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        atomic_fetch_add(&created, 1);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s == dnnl_success ? LFL_OK : fail_dnnl(s, what, kk);
}

static bool key_eq(const key_t_ *x, const key_t_ *y)
{
    return x->m == y->m && x->n == y->n && x->k == y->k && x->sbk == y->sbk && x->sbn == y->sbn &&
           x->ldc == y->ldc && x->alpha == y->alpha && x->beta == y->beta && x->nthr == y->nthr;
}

/* the cached entry for kk with one more user, or NULL */
static entry *lookup(const key_t_ *kk)
{
    for (int i = 0; i < CACHE_N; i++)
        if (cache[i].used && key_eq(&cache[i].key, kk)) {
            cache[i].users++;
            cache[i].last_use = ++clock_;
            return &cache[i];
        }
    return NULL;
}

/* The entry to run kk with: from the cache, or made and inserted; *tmp is set
 * when it could not be inserted (every slot busy) and must be destroyed. */
static lfl_status acquire(const key_t_ *kk, entry **out, entry *tmp, bool *is_tmp)
{
    *is_tmp = false;
    pthread_mutex_lock(&lock);
    entry *e = lookup(kk);
    pthread_mutex_unlock(&lock);
    if (e) { *out = e; return LFL_OK; }
    entry fresh;
    lfl_status st = create(kk, &fresh); /* outside the lock: it takes ~1 ms */
    if (st != LFL_OK) return st;
    pthread_mutex_lock(&lock);
    e = lookup(kk); /* another thread made the same one meanwhile */
    if (!e) {
        entry *victim = NULL;
        for (int i = 0; i < CACHE_N && !victim; i++)
            if (!cache[i].used) victim = &cache[i];
        for (int i = 0; i < CACHE_N && !victim; i++)
            if (cache[i].users == 0 && (!victim || cache[i].last_use < victim->last_use)) victim = &cache[i];
        if (victim) {
            if (victim->used) dnnl_primitive_destroy(victim->prim);
            *victim = fresh;
            victim->used = true;
            victim->users = 1;
            victim->last_use = ++clock_;
            e = victim;
        }
    } else {
        dnnl_primitive_destroy(fresh.prim);
    }
    pthread_mutex_unlock(&lock);
    if (!e) { *tmp = fresh; *is_tmp = true; e = tmp; }
    *out = e;
    return LFL_OK;
}

static void release(entry *e, bool is_tmp)
{
    if (is_tmp) { dnnl_primitive_destroy(e->prim); return; }
    pthread_mutex_lock(&lock);
    e->users--;
    pthread_mutex_unlock(&lock);
}

/* n contiguous f32 as bf16: vcvtne2ps2bf16 where the CPU has it (the scalar
 * rounding took 7% of a LoRA step's CPU time); the same round to nearest even */
static void row_bf16(const float *s, int64_t n, uint16_t *d)
{
    if (lfl_cpu_has_avx512bf16()) {
        /* an even count: lfl_bf16_pack_row pads an odd row past its end */
        lfl_bf16_pack_row(s, n & ~(int64_t)1, d);
        if (n & 1) d[n - 1] = lfl_f32_to_bf16(s[n - 1]);
    } else {
        lfl_f32_to_lowp(LFL_BF16, s, n, d);
    }
}

/* A (f32; ta: stored [k, m]) as contiguous bf16 [m, k] */
static void round_a(bool ta, int64_t m, int64_t k, const float *a, int64_t lda, uint16_t *d)
{
    if (!ta) {
#pragma omp parallel for schedule(static) if (m * k > (1 << 16))
        for (int64_t i = 0; i < m; i++) row_bf16(a + i * lda, k, d + i * k);
        return;
    }
    /* 32 x 32 blocks: both the reads along m and the writes along k stay in cache lines */
#pragma omp parallel for schedule(static) if (m * k > (1 << 16))
    for (int64_t i0 = 0; i0 < m; i0 += 32)
        for (int64_t j0 = 0; j0 < k; j0 += 32) {
            int64_t i1 = i0 + 32 < m ? i0 + 32 : m, j1 = j0 + 32 < k ? j0 + 32 : k;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) d[i * k + j] = lfl_f32_to_bf16(a[j * lda + i]);
        }
}

static inline uint16_t elem_bf16(lfl_dtype dt, const void *p, int64_t off)
{
    if (dt == LFL_BF16) return ((const uint16_t *)p)[off];
    if (dt == LFL_F16) return lfl_f32_to_bf16(lfl_f16_to_f32(((const uint16_t *)p)[off]));
    return lfl_f32_to_bf16(((const float *)p)[off]);
}

/* B[i][c] = b[i * sbk + c * sbn] as contiguous bf16, [n][k] when k is B's
 * faster dim (*rows_n), else [k][n] */
static void round_b(lfl_dtype dt, const void *b, int64_t sbk, int64_t sbn, int64_t k, int64_t n, uint16_t *d,
                    bool *rows_n)
{
    bool rn = (sbk < 0 ? -sbk : sbk) <= (sbn < 0 ? -sbn : sbn);
    *rows_n = rn;
    int64_t outer = rn ? n : k, inner = rn ? k : n, so = rn ? sbn : sbk, si = rn ? sbk : sbn;
#pragma omp parallel for schedule(static) if (n * k > (1 << 16))
    for (int64_t o = 0; o < outer; o++) {
        uint16_t *dr = d + o * inner;
        if (si == 1 && dt == LFL_F32) {
            row_bf16((const float *)b + o * so, inner, dr);
        } else {
            for (int64_t i = 0; i < inner; i++) dr[i] = elem_bf16(dt, b, o * so + i * si);
        }
    }
}

static lfl_status mem(dnnl_memory_t *mo, const dnnl_memory_desc_t *md, void *p, const key_t_ *kk)
{
    dnnl_status_t s = dnnl_memory_create(mo, md, engine, p);
    return s == dnnl_success ? LFL_OK : fail_dnnl(s, "memory_create", kk);
}

lfl_status lfl_gemm_onednn(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c,
                           int64_t ldc)
{
    LFL_ASSERT(m > 0 && n > 0 && k > 0);
    if (!lfl_onednn_available()) return lfl_fail(LFL_ERR_UNSUPPORTED, "gemm (oneDNN): %s", describe_buf);
    if (!stream) {
        dnnl_status_t s = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
        if (s != dnnl_success) { stream = NULL; return lfl_fail(LFL_ERR_UNSUPPORTED, "gemm (oneDNN): no stream (%s)", dnnl_status2str(s)); }
    }
    uint16_t *ab = tbuf_get(&buf_a, (size_t)(m * k) * 2);
    if (!ab) return lfl_fail(LFL_ERR_MEM, "gemm (oneDNN): out of memory for a %lld x %lld bf16 operand", (long long)m, (long long)k);
    round_a(ta, m, k, a, lda, ab);
    const void *bb = b;
    bool in_place = bdt == LFL_BF16 && sbk > 0 && sbn > 0 && (sbk == 1 || sbn == 1);
    if (!in_place) {
        uint16_t *d = tbuf_get(&buf_b, (size_t)(k * n) * 2);
        if (!d) return lfl_fail(LFL_ERR_MEM, "gemm (oneDNN): out of memory for a %lld x %lld bf16 operand", (long long)k, (long long)n);
        bool rows_n;
        round_b(bdt, b, sbk, sbn, k, n, d, &rows_n);
        bb = d;
        sbk = rows_n ? 1 : n;
        sbn = rows_n ? k : 1;
    }
    key_t_ kk = {m, n, k, sbk, sbn, ldc, alpha, beta, omp_in_parallel() ? 1 : omp_get_max_threads()};
    entry *e, tmp;
    bool is_tmp;
    lfl_status st = acquire(&kk, &e, &tmp, &is_tmp);
    if (st != LFL_OK) return st;
    void *sp = e->scratch_bytes ? tbuf_get(&buf_s, e->scratch_bytes) : NULL;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    if (e->scratch_bytes && !sp) st = lfl_fail(LFL_ERR_MEM, "gemm (oneDNN): out of memory for a %zu-byte scratchpad", e->scratch_bytes);
    if (st == LFL_OK) st = mem(&ma, &e->a_md, ab, &kk);
    if (st == LFL_OK) st = mem(&mb, &e->b_md, (void *)bb, &kk);
    if (st == LFL_OK) st = mem(&mc, &e->c_md, c, &kk);
    if (st == LFL_OK && sp) st = mem(&ms, &e->s_md, sp, &kk);
    if (st == LFL_OK) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        dnnl_status_t s = dnnl_primitive_execute(e->prim, stream, ms ? 4 : 3, args);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
        if (s != dnnl_success) st = fail_dnnl(s, "execute", &kk);
        memcpy(last_impl, e->impl, sizeof last_impl);
    }
    dnnl_memory_t all[4] = {ma, mb, mc, ms};
    for (int i = 0; i < 4; i++)
        if (all[i]) dnnl_memory_destroy(all[i]);
    release(e, is_tmp);
    tbuf_trim(&buf_a);
    tbuf_trim(&buf_b);
    return st;
}

#else /* built without oneDNN */

bool lfl_onednn_available(void) { return false; }
bool lfl_onednn_has_amx(void) { return false; }
const char *lfl_onednn_describe(void) { return "oneDNN not built in (install libdnnl-dev and rebuild)"; }
const char *lfl_onednn_last_impl(void) { return ""; }
int64_t lfl_onednn_created(void) { return 0; }

lfl_status lfl_gemm_onednn(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c,
                           int64_t ldc)
{
    return lfl_fail(LFL_ERR_UNSUPPORTED, "gemm (oneDNN): %s", lfl_onednn_describe());
}

#endif
