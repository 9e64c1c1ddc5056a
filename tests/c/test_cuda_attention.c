/* attention and attention_backward on CUDA (kernels/attention.cu) against the
 * CPU kernel: outputs, log-sum-exps and the gradients of q, k, v and the
 * sinks, for every option alone and combined (causal with cached keys, sliding
 * window, soft-capping, packed segments, kv_start, sinks, GQA 4:1, 2:1 and
 * 1:1, strided q/k/v), decoding (T = 1), head dims 8, 33, 64, 80, 128 and 256, f32
 * and f64, sizes that are not multiples of the tiles, rows that see no key,
 * NaN rows, no keys at all, and kv_start out of range (the CPU's message).
 * Runs on a GPU or the emulator (build-emu); skipped without either. */
#include <string.h>
#include "cuda_check.h"

typedef struct {
    const char *name;
    lfl_dtype dt;
    int64_t B, Hq, Hkv, T, S, D;
    bool causal;
    int64_t window;
    double softcap, scale;
    int seg;              /* 0: none, 1: packed (ids rise), 2: ids interleaved */
    const int64_t *kvs;   /* [B] or NULL */
    bool sinks, strided;
    int nan_row;          /* > 0: q[0, 0, nan_row - 1, 0] = NaN (forward only) */
} acase;

/* a [B, H, N, D] tensor: contiguous, or a transposed view of [B, N, H, D] storage */
static lfl_tensor *make_qkv(const acase *c, int64_t H, int64_t N, bool cuda, lfl_tensor *host)
{
    lfl_tensor *src = cuda ? cc_cuda(host) : lfl_tensor_retain(host), *view;
    if (!c->strided) return src;
    CC_OK(lfl_transpose(src, 1, 2, &view));
    lfl_tensor_release(src);
    (void)H, (void)N;
    return view;
}

static double tol_of(const acase *c, bool grad)
{
    if (c->dt == LFL_F64) return 1e-12;
    return grad ? 2e-5 : 1e-5;
}

static void run_case(const acase *c)
{
    int64_t B = c->B, Hq = c->Hq, Hkv = c->Hkv, T = c->T, S = c->S, D = c->D;
    int64_t sq[4] = {B, Hq, T, D}, sk[4] = {B, Hkv, S, D};
    if (c->strided) {
        sq[1] = T, sq[2] = Hq;
        sk[1] = S, sk[2] = Hkv;
    }
    lfl_tensor *qh = cc_randn(4, sq, c->dt, 1.0), *kh = cc_randn(4, sk, c->dt, 1.0), *vh = cc_randn(4, sk, c->dt, 1.0);
    if (c->nan_row > 0) {
        int64_t i = c->nan_row - 1, at = c->strided ? i * Hq * D : i * D;
        if (c->dt == LFL_F32) ((float *)lfl_data(qh))[at] = NAN;
        else ((double *)lfl_data(qh))[at] = NAN;
    }
    lfl_tensor *q[2], *k[2], *v[2], *sk_[2] = {NULL, NULL}, *seg[2] = {NULL, NULL}, *kvs[2] = {NULL, NULL};
    lfl_tensor *sinks_h = NULL;
    if (c->sinks) sinks_h = cc_randn(1, (int64_t[]){Hq}, c->dt, 1.0);
    lfl_tensor *seg_h = NULL, *kvs_h = NULL;
    if (c->seg) {
        CC_OK(lfl_empty(2, (int64_t[]){B, T}, LFL_I64, LFL_CPU, &seg_h));
        int64_t *s = lfl_data(seg_h);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                s[b * T + t] = c->seg == 1 ? (t * 3 + b * 5) / 17 : (t / 5 + b) % 3; /* runs of 5 cycling ids */
    }
    if (c->kvs) {
        CC_OK(lfl_empty(1, (int64_t[]){B}, LFL_I64, LFL_CPU, &kvs_h));
        memcpy(lfl_data(kvs_h), c->kvs, sizeof(int64_t) * (size_t)B);
    }
    bool grad = c->nan_row == 0;
    for (int dev = 0; dev < 2; dev++) {
        q[dev] = make_qkv(c, Hq, T, dev, qh);
        k[dev] = make_qkv(c, Hkv, S, dev, kh);
        v[dev] = make_qkv(c, Hkv, S, dev, vh);
        q[dev]->requires_grad = k[dev]->requires_grad = v[dev]->requires_grad = grad;
        if (sinks_h) {
            sk_[dev] = dev ? cc_cuda(sinks_h) : lfl_tensor_retain(sinks_h);
            sk_[dev]->requires_grad = grad;
        }
        if (seg_h) seg[dev] = dev ? cc_cuda(seg_h) : lfl_tensor_retain(seg_h);
        if (kvs_h) kvs[dev] = dev ? cc_cuda(kvs_h) : lfl_tensor_retain(kvs_h);
    }
    lfl_tensor *out[2], *lse[2];
    for (int dev = 0; dev < 2; dev++) {
        lfl_attn_opts o = {.scale = c->scale, .window = c->window, .softcap = c->softcap, .causal = c->causal,
                           .segments = seg[dev], .kv_start = kvs[dev], .lse_out = &lse[dev], .sinks = sk_[dev]};
        CC_OK(lfl_attention(q[dev], k[dev], v[dev], &o, &out[dev]));
    }
    char what[200];
    double ft = tol_of(c, false), gt = tol_of(c, true);
    cc_check(out[1]->device == 0 && lse[1]->device == 0, "the outputs stay on cuda:0");
    /* out is a [B, Hq, T, D] view of [B, T, Hq, D] storage: compared as that storage (a device
     * tensor is copied to the host only when contiguous) */
    lfl_tensor *st[2];
    for (int dev = 0; dev < 2; dev++) CC_OK(lfl_transpose(out[dev], 1, 2, &st[dev]));
    snprintf(what, sizeof what, "%s: out", c->name);
    cc_close(what, st[0], st[1], ft, ft);
    lfl_tensor_release(st[0]), lfl_tensor_release(st[1]);
    snprintf(what, sizeof what, "%s: lse", c->name);
    cc_close(what, lse[0], lse[1], ft, ft);
    if (grad) {
        cc_backward_pair(out[0], out[1], 77);
        snprintf(what, sizeof what, "%s: dq", c->name);
        cc_close(what, q[0]->grad, q[1]->grad, gt, gt);
        snprintf(what, sizeof what, "%s: dk", c->name);
        cc_close(what, k[0]->grad, k[1]->grad, gt, gt);
        snprintf(what, sizeof what, "%s: dv", c->name);
        cc_close(what, v[0]->grad, v[1]->grad, gt, gt);
        if (c->sinks) {
            snprintf(what, sizeof what, "%s: dsinks", c->name);
            cc_close(what, sk_[0]->grad, sk_[1]->grad, gt, gt);
        }
        cc_check(q[1]->grad && q[1]->grad->device == 0 && k[1]->grad->device == 0, "the gradients are on cuda:0");
    }
    for (int dev = 0; dev < 2; dev++) {
        lfl_tensor_release(out[dev]), lfl_tensor_release(lse[dev]);
        lfl_tensor_release(q[dev]), lfl_tensor_release(k[dev]), lfl_tensor_release(v[dev]);
        lfl_tensor_release(sk_[dev]), lfl_tensor_release(seg[dev]), lfl_tensor_release(kvs[dev]);
    }
    lfl_tensor_release(qh), lfl_tensor_release(kh), lfl_tensor_release(vh);
    lfl_tensor_release(sinks_h), lfl_tensor_release(seg_h), lfl_tensor_release(kvs_h);
}

/* a kv_start beyond the key count: the CPU's error, from the device kernel */
static void kv_start_range(void)
{
    int64_t sq[4] = {2, 2, 3, 64}, sk[4] = {2, 1, 5, 64};
    lfl_tensor *q = cc_randn(4, sq, LFL_F32, 1.0), *k = cc_randn(4, sk, LFL_F32, 1.0), *kvs_h, *out = NULL;
    CC_OK(lfl_empty(1, (int64_t[]){2}, LFL_I64, LFL_CPU, &kvs_h));
    ((int64_t *)lfl_data(kvs_h))[0] = 1;
    ((int64_t *)lfl_data(kvs_h))[1] = 6;
    lfl_tensor *qd = cc_cuda(q), *kd = cc_cuda(k), *kvs = cc_cuda(kvs_h);
    lfl_attn_opts o = {.causal = true, .kv_start = kvs};
    lfl_status st = lfl_attention(qd, kd, kd, &o, &out);
    char want[] = "attention: kv_start[1] = 6 is outside [0, 5] (the key count)";
    cc_check(st != LFL_OK && strcmp(lfl_last_error(), want) == 0, "kv_start out of range gives the CPU's message");
    if (st == LFL_OK || strcmp(lfl_last_error(), want)) fprintf(stderr, "  got: %s\n", st ? lfl_last_error() : "ok");
    cc_check(out == NULL, "nothing is returned on the error");
    o.kv_start = NULL;
    lfl_tensor *cpu_kvs = kvs_h; /* the CPU says the same */
    o.kv_start = cpu_kvs;
    st = lfl_attention(q, k, k, &o, &out);
    cc_check(st != LFL_OK && strcmp(lfl_last_error(), want) == 0, "the CPU's message is the same");
    lfl_tensor_release(q), lfl_tensor_release(k), lfl_tensor_release(kvs_h);
    lfl_tensor_release(qd), lfl_tensor_release(kd), lfl_tensor_release(kvs);
}

int main(void)
{
    if (!cc_begin("test_cuda_attention")) return 0;
    static const int64_t kv2[2] = {0, 9}, kvdec[2] = {5, 0}, kvpad[2] = {3, 41}, kvall[2] = {41, 2}, kvlate[3] = {100, 150, 0};
    const acase cases[] = {
        /* name, dt, B, Hq, Hkv, T, S, D, causal, window, softcap, scale, seg, kvs, sinks, strided, nan */
        {"plain gqa4 D64 T37 S45", LFL_F32, 1, 4, 1, 37, 45, 64, false, 0, 0, 0, 0, NULL, false, false, 0},
        {"causal mha D80 T45", LFL_F32, 2, 2, 2, 45, 45, 80, true, 0, 0, 0, 0, NULL, false, false, 0},
        {"causal cache gqa2 T20 S50", LFL_F32, 1, 4, 2, 20, 50, 64, true, 0, 0, 0, 0, NULL, false, false, 0},
        {"window 7 D64 T70", LFL_F32, 1, 2, 1, 70, 70, 64, true, 7, 0, 0, 0, NULL, false, false, 0},
        {"window 40 cache T30 S61", LFL_F32, 1, 2, 2, 30, 61, 64, true, 40, 0, 0, 0, NULL, false, false, 0},
        {"softcap 5 scale 0.4", LFL_F32, 1, 2, 1, 33, 40, 64, false, 0, 5.0, 0.4, 0, NULL, false, false, 0},
        {"segments packed causal", LFL_F32, 2, 2, 1, 50, 50, 64, true, 0, 0, 0, 1, NULL, false, false, 0},
        {"segments interleaved non-causal", LFL_F32, 1, 2, 2, 47, 47, 64, false, 0, 0, 0, 2, NULL, false, false, 0},
        {"kv_start causal", LFL_F32, 2, 2, 1, 40, 40, 64, true, 0, 0, 0, 0, kv2, false, false, 0},
        {"kv_start non-causal, a row sees nothing", LFL_F32, 2, 2, 1, 7, 41, 64, false, 0, 0, 0, 0, kvall, false, false, 0},
        {"sinks causal", LFL_F32, 1, 4, 1, 35, 35, 64, true, 0, 0, 0, 0, NULL, true, false, 0},
        {"sinks, rows that see nothing", LFL_F32, 2, 2, 2, 9, 41, 64, true, 0, 0, 0, 0, kvpad, true, false, 0},
        {"strided q/k/v D128", LFL_F32, 1, 2, 1, 35, 35, 128, true, 0, 0, 0, 0, NULL, false, true, 0},
        {"all options gqa4 strided", LFL_F32, 2, 4, 1, 40, 40, 64, true, 12, 4.0, 0, 1, kv2, true, true, 0},
        {"decode T1 gqa4 D128 kv_start (split keys)", LFL_F32, 2, 4, 1, 1, 150, 128, true, 0, 0, 0, 0, kvdec, false, false, 0},
        {"decode T1 window sinks softcap", LFL_F32, 2, 4, 2, 1, 130, 80, true, 20, 3.0, 0, 0, kvdec, true, true, 0},
        {"D256", LFL_F32, 1, 1, 1, 21, 37, 256, true, 0, 0, 0, 0, NULL, false, false, 0},
        {"no keys (S = 0) with sinks", LFL_F32, 1, 2, 1, 5, 0, 64, false, 0, 0, 0, 0, NULL, true, false, 0},
        {"a NaN row", LFL_F32, 1, 2, 1, 40, 40, 64, true, 0, 0, 0, 0, NULL, false, false, 34},
        {"a NaN row, split keys", LFL_F32, 1, 2, 1, 3, 150, 64, false, 0, 0, 0, 0, NULL, true, false, 2},
        {"split keys causal cache T20 S200", LFL_F32, 1, 1, 1, 20, 200, 64, true, 0, 0, 0, 0, NULL, true, false, 0},
        {"decode: a split all padding, a row all padding", LFL_F32, 3, 2, 1, 1, 150, 64, true, 0, 0, 0, 0, kvlate, true, false, 0},
        {"larger: gqa4 T160 D128 causal segments sinks", LFL_F32, 1, 8, 2, 160, 160, 128, true, 0, 0, 0, 1, NULL, true, false, 0},
        {"causal T > S: the first rows see nothing", LFL_F32, 1, 2, 1, 45, 20, 64, true, 0, 0, 0, 0, NULL, false, false, 0},
        {"head dim 8 (the golden llama's) gqa2 causal", LFL_F32, 2, 4, 2, 23, 23, 8, true, 0, 0, 0, 0, NULL, false, true, 0},
        {"head dim 33 softcap window", LFL_F32, 1, 2, 1, 29, 40, 33, true, 9, 2.0, 0, 0, NULL, true, false, 0},
        {"f64 plain D80", LFL_F64, 1, 2, 2, 19, 37, 80, false, 0, 0, 0, 0, NULL, false, false, 0},
        {"f64 all options gqa2 strided", LFL_F64, 2, 4, 2, 40, 40, 64, true, 12, 4.0, 0, 1, kv2, true, true, 0},
        {"f64 segments interleaved D128", LFL_F64, 1, 2, 1, 35, 35, 128, false, 0, 0, 0, 2, NULL, true, false, 0},
        {"f64 decode T1 kv_start (split keys)", LFL_F64, 2, 4, 1, 1, 100, 64, true, 9, 0, 0, 0, kvdec, true, false, 0},
        {"f64 causal T > S, head dim 33", LFL_F64, 1, 2, 2, 30, 17, 33, true, 0, 0, 0, 0, NULL, true, false, 0},
        {"f64 D256 causal cache", LFL_F64, 1, 2, 1, 11, 20, 256, true, 0, 0, 0, 0, NULL, false, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    kv_start_range();
    return cc_end();
}
