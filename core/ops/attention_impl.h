/* The tiled (flash-style) attention forward and backward, written once and
 * included by attention.c for each compute type. Before including, attention.c
 * defines AT (the element type), AS (the name suffix), ATILE (query and key
 * tile size), AEXP/ATANH (exp and tanh for AT), the two tile kernels
 * k_abt_<AS> and k_acc_<AS>, and the row helpers row_max_<AS> and
 * row_exp_sum_<AS>. Nothing here is a public interface. */

#define ATT_CAT_(a, b) a##_##b
#define ATT_CAT(a, b) ATT_CAT_(a, b)
#define FN(name) ATT_CAT(name, AS)

/* Copies K transposed tile by tile (Kt[nkb][D][TILE]: each key tile one
 * contiguous block, no cache-set conflicts from a long row stride), V the
 * same way (Vt), and K/V rows padded (Kp/Vp[Sp][Dp]), per (batch, kv head);
 * NULL targets are skipped. Padding is zero, so padded keys add nothing once
 * their scores are masked. Strides are read into locals: the loops are
 * memory-bound and reloading them through the tensor pointers was not free. */
static void FN(prep_kv)(const att_geo *g, const lfl_tensor *k, const lfl_tensor *v, AT *Kt, AT *Vt, AT *Kp, AT *Vp)
{
    const int64_t S = g->S, D = g->D, Dp = g->Dp, Sp = g->Sp, nkb = g->nkb, nkv = g->B * g->Hkv;
    const int64_t ks2 = k->stride[2], ks3 = k->stride[3], vs2 = v->stride[2], vs3 = v->stride[3];
    const AT *kd = lfl_data(k), *vd = lfl_data(v);
#pragma omp parallel for if (nkv * Sp * Dp > LFL_OMP_MIN)
    for (int64_t bh = 0; bh < nkv; bh++) {
        int64_t b = bh / g->Hkv, hk = bh % g->Hkv;
        const AT *kb = kd + b * k->stride[0] + hk * k->stride[1], *vb = vd + b * v->stride[0] + hk * v->stride[1];
        for (int64_t j = 0; j < Sp && (Kp || Vp); j++) {
            AT *kp = Kp ? Kp + (bh * Sp + j) * Dp : NULL, *vp = Vp ? Vp + (bh * Sp + j) * Dp : NULL;
            for (int64_t d = 0; d < Dp; d++) {
                bool in = j < S && d < D;
                if (kp) kp[d] = in ? kb[j * ks2 + d * ks3] : 0;
                if (vp) vp[d] = in ? vb[j * vs2 + d * vs3] : 0;
            }
        }
        for (int64_t t = 0; t < nkb && (Kt || Vt); t++)
            for (int64_t d = 0; d < D; d++) {
                AT *kt = Kt ? Kt + ((bh * nkb + t) * D + d) * ATILE : NULL;
                AT *vt = Vt ? Vt + ((bh * nkb + t) * D + d) * ATILE : NULL;
                for (int64_t c = 0; c < ATILE; c++) {
                    int64_t j = t * ATILE + c;
                    if (kt) kt[c] = j < S ? kb[j * ks2 + d * ks3] : 0;
                    if (vt) vt[c] = j < S ? vb[j * vs2 + d * vs3] : 0;
                }
            }
    }
}

/* Sets the scores of keys query i may not see to -inf (boundary tiles only). */
static void FN(mask_row)(const att_geo *g, int64_t b, int64_t i, int64_t j0, AT *s)
{
    int64_t lo = att_row_lo(g, b, i) - j0, hi = att_row_hi(g, i) - j0;
    /* the window as one compare per lane (vectorised), segments apart */
#pragma omp simd
    for (int64_t c = 0; c < ATILE; c++)
        if (c < lo || c >= hi) s[c] = -(AT)INFINITY;
    if (g->seg) { /* only the keys inside the window (hi <= S == T), as one vectorised compare */
        const int64_t *sj = g->seg + b * g->T + j0, si = g->seg[b * g->T + i];
        int64_t c0 = lo > 0 ? lo : 0, c1 = hi < ATILE ? hi : ATILE;
#pragma omp simd
        for (int64_t c = c0; c < c1; c++)
            if (sj[c] != si) s[c] = -(AT)INFINITY;
    }
}

/* out[B, T, Hq, D] (the storage behind the [B, Hq, T, D] view) and lse[B, Hq, T]. */
static lfl_status FN(att_forward)(const att_geo *g, const lfl_tensor *q, const lfl_tensor *k, const lfl_tensor *v,
                                  AT *out, AT *lse)
{
    const int64_t TL = ATILE, T = g->T, D = g->D, Dp = g->Dp, Sp = g->Sp, Hq = g->Hq, nqb = g->nqb;
    const int64_t nkv = g->B * g->Hkv;
    AT *Kt = att_alloc((size_t)(nkv * D * Sp) * sizeof(AT)), *Vp = att_alloc((size_t)(nkv * Sp * Dp) * sizeof(AT));
    if (!Kt || !Vp) {
        free(Kt);
        free(Vp);
        return lfl_fail(LFL_ERR_MEM, "attention: out of memory for the K/V copies (%lld keys)", (long long)(nkv * Sp));
    }
    FN(prep_kv)(g, k, v, Kt, NULL, NULL, Vp);
    const AT *qd = lfl_data(q);
    const AT scale = (AT)g->scale, cap = (AT)g->softcap, icap = cap > 0 ? (AT)1 / cap : 0;
    const int64_t ntask = g->B * Hq * nqb, qs2 = q->stride[2], qs3 = q->stride[3];
    int failed = 0;
#pragma omp parallel if (g->work > ATT_PAR_MIN)
    {
        AT *Qs = att_alloc((size_t)(TL * Dp) * sizeof(AT)), *Ob = att_alloc((size_t)(TL * Dp) * sizeof(AT));
        AT *Sb = att_alloc((size_t)(TL * TL) * sizeof(AT)), *m = att_alloc((size_t)TL * sizeof(AT));
        AT *l = att_alloc((size_t)TL * sizeof(AT));
        bool ok = Qs && Ob && Sb && m && l;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        /* heaviest query tiles (last ones under a causal mask) first */
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntask; t++) {
            if (!ok) continue;
            int64_t bh = t / nqb, qb = nqb - 1 - t % nqb, b = bh / Hq, h = bh % Hq, hk = h / g->G;
            int64_t i0 = qb * TL, br = T - i0 < TL ? T - i0 : TL, nr = (br + 3) & ~(int64_t)3;
            const AT *qp = qd + b * q->stride[0] + h * q->stride[1];
            memset(Qs, 0, (size_t)(nr * Dp) * sizeof(AT));
            for (int64_t r = 0; r < br; r++) {
                const AT *src = qp + (i0 + r) * qs2;
                AT *dst = Qs + r * Dp;
                if (qs3 == 1) {
#pragma omp simd
                    for (int64_t d = 0; d < D; d++) dst[d] = src[d] * scale;
                } else {
                    for (int64_t d = 0; d < D; d++) dst[d] = src[d * qs3] * scale;
                }
            }
            memset(Ob, 0, (size_t)(nr * Dp) * sizeof(AT));
            for (int64_t r = 0; r < TL; r++) { m[r] = -(AT)INFINITY; l[r] = 0; }
            int64_t lo = att_row_lo(g, b, i0), hi = att_row_hi(g, i0 + br - 1);
            int64_t kb0 = lo / TL, kb1 = hi > 0 ? (hi + TL - 1) / TL : 0;
            const AT *Ktb = Kt + (b * g->Hkv + hk) * D * Sp, *Vpb = Vp + (b * g->Hkv + hk) * Sp * Dp;
            for (int64_t kb = kb0; kb < kb1; kb++) {
                int kind = att_tile_kind(g, b, qb, kb);
                if (!kind) continue;
                int64_t j0 = kb * TL;
                FN(k_abt)(Qs, Dp, nr, Ktb + j0 * D, TL, D, Sb);
                for (int64_t r = 0; r < br; r++) {
                    AT *s = Sb + r * TL;
                    if (cap > 0) {
#pragma omp simd
                        for (int64_t c = 0; c < TL; c++) s[c] = cap * ATANH(s[c] * icap);
                    }
                    if (kind == 1) FN(mask_row)(g, b, i0 + r, j0, s);
                    AT mx = FN(row_max)(s);
                    if (mx == -(AT)INFINITY) { /* nothing visible in this tile */
                        memset(s, 0, (size_t)TL * sizeof(AT));
                        continue;
                    }
                    AT mn = m[r] > mx ? m[r] : mx;
                    AT alpha = m[r] == -(AT)INFINITY ? 0 : AEXP(m[r] - mn);
                    AT sum = FN(row_exp_sum)(s, mn);
                    l[r] = l[r] * alpha + sum;
                    m[r] = mn;
                    if (alpha != 1) {
                        AT *o = Ob + r * Dp;
#pragma omp simd
                        for (int64_t d = 0; d < Dp; d++) o[d] *= alpha;
                    }
                }
                FN(k_acc)(Ob, Dp, nr, Sb, TL, 1, TL, Vpb + j0 * Dp, Dp, Dp);
            }
            for (int64_t r = 0; r < br; r++) {
                AT *dst = out + ((b * T + i0 + r) * Hq + h) * D;
                if (l[r] != 0) { /* also NaN: a NaN score poisons the row */
                    AT inv = (AT)1 / l[r];
                    const AT *src = Ob + r * Dp;
#pragma omp simd
                    for (int64_t d = 0; d < D; d++) dst[d] = src[d] * inv;
                    lse[bh * T + i0 + r] = m[r] + (AT)log((double)l[r]);
                } else { /* a query that sees no key: zeros, as if its softmax were empty */
                    for (int64_t d = 0; d < D; d++) dst[d] = 0;
                    lse[bh * T + i0 + r] = -(AT)INFINITY;
                }
            }
        }
        free(Qs);
        free(Ob);
        free(Sb);
        free(m);
        free(l);
    }
    free(Kt);
    free(Vp);
    if (failed) return lfl_fail(LFL_ERR_MEM, "attention: out of memory for the per-thread tiles");
    return LFL_OK;
}

/* dq[B, Hq, T, D], dk/dv[B, Hkv, S, D] (contiguous) from dout[B, Hq, T, D]
 * (contiguous), the output o (any strides) and the saved lse. Work is split
 * over (batch, kv head, key-tile partition); each task owns its key tiles'
 * dK/dV outright and writes dQ into its partition's buffer, summed in
 * partition order at the end, so the result does not depend on threads. */
static lfl_status FN(att_backward)(const att_geo *g, const lfl_tensor *q, const lfl_tensor *k, const lfl_tensor *v,
                                   const lfl_tensor *o, const AT *lse, const AT *dout, AT *dq, AT *dk, AT *dv)
{
    const int64_t TL = ATILE, B = g->B, Hq = g->Hq, Hkv = g->Hkv, G = g->G, T = g->T, S = g->S, D = g->D;
    const int64_t Dp = g->Dp, Sp = g->Sp, Tp = g->Tp, nqb = g->nqb, nkb = g->nkb, P = g->parts;
    const int64_t nq = B * Hq, nkv = B * Hkv;
    size_t qsz = (size_t)(nq * Tp * Dp), ksz = (size_t)(nkv * Sp * Dp);
    AT *Qp = att_alloc(qsz * sizeof(AT)), *dOp = att_alloc(qsz * sizeof(AT)), *Dv = att_alloc((size_t)(nq * T) * sizeof(AT));
    AT *Kt = att_alloc(ksz * sizeof(AT)), *Vt = att_alloc(ksz * sizeof(AT)), *Kp = att_alloc(ksz * sizeof(AT));
    AT *dQb = att_alloc(qsz * (size_t)P * sizeof(AT));
    if (!Qp || !dOp || !Dv || !Kt || !Vt || !Kp || !dQb) {
        free(Qp); free(dOp); free(Dv); free(Kt); free(Vt); free(Kp); free(dQb);
        return lfl_fail(LFL_ERR_MEM, "attention backward: out of memory for the tiles (%zu bytes)",
                        (qsz * (size_t)(P + 2) + 3 * ksz) * sizeof(AT));
    }
    FN(prep_kv)(g, k, v, Kt, Vt, Kp, NULL);
    const AT scale = (AT)g->scale, cap = (AT)g->softcap, icap = cap > 0 ? (AT)1 / cap : 0;
    const AT *qd = lfl_data(q), *od = lfl_data(o);
    /* scaled, padded Q and padded dO; D_i = rowsum(dO * O) */
#pragma omp parallel for if (nq * T * D > LFL_OMP_MIN)
    for (int64_t bh = 0; bh < nq; bh++) {
        int64_t b = bh / Hq, h = bh % Hq;
        const AT *qp = qd + b * q->stride[0] + h * q->stride[1], *op = od + b * o->stride[0] + h * o->stride[1];
        const int64_t qs2 = q->stride[2], os2 = o->stride[2];
        if (q->stride[3] == 1 && o->stride[3] == 1) { /* the usual layout: unit strides along D, vectorised */
            for (int64_t i = 0; i < Tp; i++) {
                AT *qr = Qp + (bh * Tp + i) * Dp, *gr = dOp + (bh * Tp + i) * Dp;
                if (i >= T) {
                    memset(qr, 0, (size_t)Dp * sizeof(AT));
                    memset(gr, 0, (size_t)Dp * sizeof(AT));
                    continue;
                }
                const AT *gi = dout + (bh * T + i) * D, *qi = qp + i * qs2, *oi = op + i * os2;
                double acc = 0;
#pragma omp simd reduction(+ : acc)
                for (int64_t d = 0; d < D; d++) {
                    qr[d] = qi[d] * scale;
                    gr[d] = gi[d];
                    acc += (double)gi[d] * oi[d];
                }
                for (int64_t d = D; d < Dp; d++) qr[d] = gr[d] = 0;
                Dv[bh * T + i] = (AT)acc;
            }
            continue;
        }
        for (int64_t i = 0; i < Tp; i++) {
            AT *qr = Qp + (bh * Tp + i) * Dp, *gr = dOp + (bh * Tp + i) * Dp;
            const AT *gi = dout + (bh * T + i) * D;
            double acc = 0;
            for (int64_t d = 0; d < Dp; d++) {
                bool in = i < T && d < D;
                qr[d] = in ? qp[i * q->stride[2] + d * q->stride[3]] * scale : 0;
                gr[d] = in ? gi[d] : 0;
                if (in) acc += (double)gi[d] * op[i * o->stride[2] + d * o->stride[3]];
            }
            if (i < T) Dv[bh * T + i] = (AT)acc;
        }
    }
    /* Task (batch, kv head, partition p) owns key tiles p, p + P, ...: it keeps
     * their dK/dV accumulators (in L2) while it walks the query tiles of its
     * heads once, each query tile's dQ partial staying hot across the key
     * tiles; every dQ partial row of partition p is written by that task. */
    const int64_t ntask = nkv * P, mk = (nkb + P - 1) / P;
    int failed = 0;
#pragma omp parallel if (g->work > ATT_PAR_MIN)
    {
        AT *Sb = att_alloc((size_t)(TL * TL) * sizeof(AT)), *dPb = att_alloc((size_t)(TL * TL) * sizeof(AT));
        AT *Tb = att_alloc((size_t)(TL * TL) * sizeof(AT));
        AT *dKa = att_alloc((size_t)(mk * TL * Dp) * sizeof(AT)), *dVa = att_alloc((size_t)(mk * TL * Dp) * sizeof(AT));
        bool ok = Sb && dPb && Tb && dKa && dVa;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntask; t++) {
            if (!ok) continue;
            int64_t bhk = t / P, p = t % P, b = bhk / Hkv, hk = bhk % Hkv, nkt = p < nkb ? (nkb - p + P - 1) / P : 0;
            const AT *Ktb = Kt + bhk * D * Sp, *Vtb = Vt + bhk * D * Sp, *Kpb = Kp + bhk * Sp * Dp;
            AT *dQp = dQb + (size_t)p * qsz;
            memset(dKa, 0, (size_t)(nkt * TL * Dp) * sizeof(AT));
            memset(dVa, 0, (size_t)(nkt * TL * Dp) * sizeof(AT));
            for (int64_t gi = 0; gi < G; gi++) {
                int64_t h = hk * G + gi, bh = b * Hq + h;
                for (int64_t qb = 0; qb < nqb; qb++) {
                    int64_t i0 = qb * TL, br = T - i0 < TL ? T - i0 : TL, nr = (br + 3) & ~(int64_t)3;
                    const AT *Qs = Qp + (bh * Tp + i0) * Dp, *dOs = dOp + (bh * Tp + i0) * Dp;
                    AT *dQs = dQp + (bh * Tp + i0) * Dp;
                    memset(dQs, 0, (size_t)(TL * Dp) * sizeof(AT));
                    for (int64_t m = 0; m < nkt; m++) {
                        int64_t kb = p + m * P, j0 = kb * TL;
                        int kind = att_tile_kind(g, b, qb, kb);
                        if (!kind) continue;
                        FN(k_abt)(Qs, Dp, nr, Ktb + j0 * D, TL, D, Sb);
                        for (int64_t r = 0; r < br; r++) {
                            AT L = lse[bh * T + i0 + r], *s = Sb + r * TL, *tt = Tb + r * TL;
                            if (L == -(AT)INFINITY) { /* a query that saw nothing: no gradient */
                                memset(s, 0, (size_t)TL * sizeof(AT));
                                memset(tt, 0, (size_t)TL * sizeof(AT));
                                continue;
                            }
                            if (cap > 0) {
#pragma omp simd
                                for (int64_t c = 0; c < TL; c++) {
                                    AT th = ATANH(s[c] * icap);
                                    tt[c] = th;
                                    s[c] = cap * th;
                                }
                            }
                            if (kind == 1) FN(mask_row)(g, b, i0 + r, j0, s);
#pragma omp simd
                            for (int64_t c = 0; c < TL; c++) s[c] = AEXP(s[c] - L);
                        }
                        AT *dKt = dKa + m * TL * Dp, *dVt = dVa + m * TL * Dp;
                        /* dV += P^T dO */
                        FN(k_acc)(dVt, Dp, TL, Sb, 1, TL, nr, dOs, Dp, Dp);
                        /* dP = dO V^T, then dS = P * (dP - D_i), through the softcap's tanh */
                        FN(k_abt)(dOs, Dp, nr, Vtb + j0 * D, TL, D, dPb);
                        for (int64_t r = 0; r < br; r++) {
                            AT Di = Dv[bh * T + i0 + r], *s = Sb + r * TL, *dp = dPb + r * TL, *tt = Tb + r * TL;
                            if (cap > 0) {
#pragma omp simd
                                for (int64_t c = 0; c < TL; c++) dp[c] = s[c] * (dp[c] - Di) * (1 - tt[c] * tt[c]);
                            } else {
#pragma omp simd
                                for (int64_t c = 0; c < TL; c++) dp[c] = s[c] * (dp[c] - Di);
                            }
                        }
                        /* dK += dS^T (Q * scale); dQ (unscaled) += dS K */
                        FN(k_acc)(dKt, Dp, TL, dPb, 1, TL, nr, Qs, Dp, Dp);
                        FN(k_acc)(dQs, Dp, nr, dPb, TL, 1, TL, Kpb + j0 * Dp, Dp, Dp);
                    }
                }
            }
            for (int64_t m = 0; m < nkt; m++) {
                int64_t j0 = (p + m * P) * TL, bc = S - j0 < TL ? S - j0 : TL;
                for (int64_t c = 0; c < bc; c++) {
                    AT *kr = dk + (bhk * S + j0 + c) * D, *vr = dv + (bhk * S + j0 + c) * D;
                    const AT *ka = dKa + (m * TL + c) * Dp, *va = dVa + (m * TL + c) * Dp;
                    for (int64_t d = 0; d < D; d++) {
                        kr[d] = ka[d];
                        vr[d] = va[d];
                    }
                }
            }
        }
        free(Sb);
        free(dPb);
        free(Tb);
        free(dKa);
        free(dVa);
    }
    if (!failed) {
        /* partitions added in order, 0 first, as rows (vectorised along D) */
#pragma omp parallel for if (nq * T * D > LFL_OMP_MIN)
        for (int64_t bh = 0; bh < nq; bh++)
            for (int64_t i = 0; i < T; i++) {
                AT *dst = dq + (bh * T + i) * D;
                const AT *src = dQb + (size_t)((bh * Tp + i) * Dp);
                memcpy(dst, src, (size_t)D * sizeof(AT));
                for (int64_t p = 1; p < P; p++) {
                    const AT *sp = src + (size_t)p * qsz;
#pragma omp simd
                    for (int64_t d = 0; d < D; d++) dst[d] += sp[d];
                }
#pragma omp simd
                for (int64_t d = 0; d < D; d++) dst[d] *= scale;
            }
    }
    free(Qp); free(dOp); free(Dv); free(Kt); free(Vt); free(Kp); free(dQb);
    if (failed) return lfl_fail(LFL_ERR_MEM, "attention backward: out of memory for the per-thread tiles");
    return LFL_OK;
}

#undef FN
#undef ATT_CAT
#undef ATT_CAT_
