/* Dense linear algebra for the optimizers and PiSSA: thin QR and SVD (exact,
 * one-sided Jacobi; randomized low-rank as torch.svd_lowrank). */
#ifndef LFL_LINALG_H
#define LFL_LINALG_H

#include "../tensor.h"

/* Thin SVD of a 2-D f32/f64 matrix A [m, n] = U diag(S) Vt, k = min(m, n):
 * U [m, k], S [k] descending, Vt [k, n], in A's dtype. One-sided Jacobi
 * (Hestenes) in f64 on the wider side's columns: accurate to working precision
 * even for small singular values; O(sweeps * k^2 * max(m, n)). Sign convention:
 * the largest-magnitude entry of every U column is positive. */
lfl_status lfl_linalg_svd(lfl_tensor *a, lfl_tensor **u, lfl_tensor **s, lfl_tensor **vt);

/* Thin QR of A [m, n] with m >= n: Q [m, n] with orthonormal columns, R [n, n]
 * upper triangular (modified Gram-Schmidt with one re-orthogonalization pass; a
 * column dependent on the previous ones is replaced by a unit vector orthogonal to
 * them, with a zero R diagonal). R may be NULL when not wanted. */
lfl_status lfl_linalg_qr(lfl_tensor *a, lfl_tensor **q, lfl_tensor **r);

/* Randomized rank-q SVD (torch.svd_lowrank(A, q, niter) without centring):
 * Q = orth(A G) for a Gaussian G [n, q] from the global RNG, niter rounds of
 * Q = orth(A^T Q), Q = orth(A Q); then the exact SVD of Q^T A (same sign
 * convention as lfl_linalg_svd). U [m, q], S [q], V [n, q] (V, not Vt, as torch
 * returns it). */
lfl_status lfl_linalg_svd_lowrank(lfl_tensor *a, int64_t q, int niter, lfl_tensor **u, lfl_tensor **s,
                                  lfl_tensor **v);

#endif
