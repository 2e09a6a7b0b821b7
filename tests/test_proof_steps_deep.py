"""Numerical checks of every non-immediate step in the proofs of chapters 7 and 8.

Chapter 7 (deep networks): Lemma 4 (rank and compression of one layer), the compression of
unimodal weights, Lemma 5 (prefix products), the scalar inequality (Lemma I.2 of the paper),
Theorem 3 (18) and (19) step by step, the depth corollary and Corollary 2.  Chapter 8: the
spectral-initialization invariance, the A1' claim for the exponential loss and Theorem 4.

Each test draws random instances (several shapes, n != m, several seeds), computes both sides
of one step with linflow or plain NumPy, and asserts the inequality with a tolerance scaled to
the float64 epsilon.  No expected number is copied from the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import linflow as lf

EPS = np.finfo(np.float64).eps
SEEDS = [0, 1, 2]


def tol(*scales):
    """An absolute tolerance: 1e3 epsilon times the largest scale involved."""
    return 1e3 * EPS * max(1.0, *[float(np.max(np.abs(s))) for s in scales])


def eig_desc(A):
    return np.linalg.eigvalsh(A)[::-1]


def lam(A, j):
    """lambda_j(A), decreasing order, 1-based; 0 beyond the order (the book's convention)."""
    ev = eig_desc(A)
    return float(ev[j - 1]) if j <= len(ev) else 0.0


def random_psd(rng, h, rank, scale=1.0):
    G = rng.normal(size=(h, rank))
    return scale * G @ G.T / rank


def orthonormal(rng, h, k):
    Q, _ = np.linalg.qr(rng.normal(size=(h, k)))
    return Q[:, :k]


def T_dense(Ws):
    """The matrix of T on vec(E) (column-major), built from the definition, not from linflow."""
    L = len(Ws)
    n, m = Ws[0].shape[0], Ws[-1].shape[1]
    M = np.zeros((n * m, n * m))
    for l in range(L):
        P = np.eye(n)
        for W in Ws[:l]:
            P = P @ W
        Q = np.eye(m)
        for W in Ws[l + 1:][::-1]:
            Q = W @ Q
        M += np.kron(Q.T @ Q, P @ P.T)
    return M


def imbalances(Ws):
    return [Ws[l].T @ Ws[l] - Ws[l + 1] @ Ws[l + 1].T for l in range(len(Ws) - 1)]


def unimodal_square(n, m, L, l_star, rng):
    """Unimodal weights with h_l = n before l* and h_l = m from l* on, random PSD imbalances."""
    dims = [n] * l_star + [m] * (L + 1 - l_star)
    D = []
    for l in range(1, L):
        h = dims[l]
        S = random_psd(rng, h, h, scale=rng.uniform(0.2, 1.0))
        D.append(S if l < l_star else -S)
    Ws = lf.init.unimodal(tuple(dims), l_star, D, seed=int(rng.integers(1 << 30)))
    return tuple(np.asarray(lf.to_numpy(W)) for W in Ws)


def embed(Ws, widths, rng):
    """W_l -> V_{l-1} W_l V_l^T with orthonormal V_l (h_l x k_l), V_0 = I_n, V_L = I_m."""
    L = len(Ws)
    ks = [Ws[0].shape[0]] + [W.shape[1] for W in Ws]
    V = [np.eye(ks[0])] + [orthonormal(rng, widths[l - 1], ks[l]) for l in range(1, L)] + \
        [np.eye(ks[L])]
    return tuple(V[l] @ Ws[l] @ V[l + 1].T for l in range(L))


# ---------------------------------------------------------------- Lemma 4 (one layer)

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,h,p,r", [(3, 6, 4, 3), (2, 5, 7, 2), (4, 4, 2, 3)])
def test_lemma4_ranks_and_compression(seed, k, h, p, r):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(k, r)) @ rng.normal(size=(r, h))          # rank r
    C = rng.normal(size=(k, p))
    C *= 0.9 / np.linalg.norm(C, 2)                                  # ||C|| < 1
    B = A.T @ C                                                      # D = A^T (I - C C^T) A
    D = A.T @ A - B @ B.T
    t = tol(A.T @ A)
    assert eig_desc(D)[-1] >= -t                                     # hypothesis D >= 0
    # ker A in ker B^T and ker D
    N = np.linalg.svd(A)[2][r:].T                                    # basis of ker A
    assert np.abs(B.T @ N).max() <= 1e3 * t and np.abs(D @ N).max() <= 1e3 * t
    assert np.linalg.matrix_rank(B, tol=1e-9) <= r
    assert np.linalg.matrix_rank(D, tol=1e-9) <= r
    # U: orthonormal basis of range A^T (dimension r)
    U = np.linalg.svd(A.T)[0][:, :r]
    A2, B2 = A @ U, U.T @ B
    assert np.allclose(A2 @ B2, A @ B, atol=1e3 * t)
    assert np.allclose(A2 @ A2.T, A @ A.T, atol=1e3 * t)
    assert np.allclose(B2.T @ B2, B.T @ B, atol=1e3 * t)
    assert np.allclose(A2.T @ A2 - B2 @ B2.T, U.T @ D @ U, atol=1e3 * t)
    assert np.allclose(eig_desc(U.T @ D @ U), eig_desc(D)[:r], atol=1e3 * t)


# ------------------------------------------------- compression of unimodal weights

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,m,L,l_star,widths", [
    (2, 3, 4, 2, (4, 5, 6)), (3, 2, 3, 3, (5, 4)), (2, 2, 5, 1, (3, 4, 5, 3)),
    (3, 1, 4, 4, (6, 4, 3)),
])
def test_compression_keeps_T_and_cumulative_imbalances(seed, n, m, L, l_star, widths):
    rng = np.random.default_rng(seed)
    Wsq = unimodal_square(n, m, L, l_star, rng)
    Ws = embed(Wsq, widths, rng)                       # wide, unimodal, same T as Wsq
    # the construction of the proof: S_l = range W_l^T + range W_{l+1}, U_l a basis
    ks = [n] * l_star + [m] * (L + 1 - l_star)
    U = [np.eye(n)]
    for l in range(1, L):
        M = np.hstack([Ws[l - 1].T, Ws[l]])            # columns span S_l
        u, s, _ = np.linalg.svd(M)
        rank = int(np.sum(s > 1e-9 * s[0]))
        assert rank <= ks[l] <= widths[l - 1]          # dim S_l <= k_l <= h_l
        U.append(u[:, :ks[l]])
    U.append(np.eye(m))
    Wc = tuple(U[l].T @ Ws[l] @ U[l + 1] for l in range(L))
    E = rng.normal(size=(n, m))
    TE, TcE = lf.to_numpy(lf.T_apply(Ws, E)), lf.to_numpy(lf.T_apply(Wc, E))
    assert np.allclose(TE, TcE, atol=tol(TE) * 10)
    assert np.allclose(np.linalg.multi_dot(Wc) if L > 2 else Wc[0] @ Wc[1],
                       np.linalg.multi_dot(Ws) if L > 2 else Ws[0] @ Ws[1], atol=tol(*Ws) * 10)
    for l, (D, Dc) in enumerate(zip(imbalances(Ws), imbalances(Wc)), start=1):
        k = ks[l]
        if l < l_star:
            assert eig_desc(Dc)[-1] >= -tol(D) * 10
            assert np.allclose(eig_desc(Dc), eig_desc(D)[:k], atol=tol(D) * 10)
        else:
            assert eig_desc(-Dc)[-1] >= -tol(D) * 10
            assert np.allclose(eig_desc(-Dc), eig_desc(-D)[:k], atol=tol(D) * 10)
    dt = lf.to_numpy(lf.bounds.cumulative_imbalance(Ws, l_star))
    dtc = lf.to_numpy(lf.bounds.cumulative_imbalance(Wc, l_star))
    assert np.allclose(dt, dtc, atol=tol(dt) * 10)


# ---------------------------------------------------------------- Lemma 5

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,m,L", [(2, 3, 3), (3, 2, 4), (2, 1, 5), (3, 3, 4)])
def test_lemma5_each_step(seed, n, m, L):
    rng = np.random.default_rng(seed)
    Ws = unimodal_square(n, m, L, L, rng)                  # D_l >= 0, W_1..W_{L-1} square
    D = imbalances(Ws)
    a = [lam(W @ W.T, n) for W in Ws[:-1]]
    t = tol(*[W.T @ W for W in Ws])
    # Weyl step: a_k >= lambda_n(W_{k+1} W_{k+1}^T) + lambda_n(D_k)
    for k in range(L - 1):
        assert a[k] >= lam(Ws[k + 1] @ Ws[k + 1].T, n) + lam(D[k], n) - t
    # unrolled: a_k >= sum_{l >= k} lambda_n(D_l)
    for k in range(L - 1):
        assert a[k] >= sum(lam(D[l], n) for l in range(k, L - 1)) - t
    # product step: lambda_n(M_k) >= a_k lambda_n(M_{k+1})
    M = [None] * (L + 1)
    M[L - 1] = np.eye(n)
    for k in range(L - 2, -1, -1):
        M[k] = Ws[k] @ M[k + 1] @ Ws[k].T
        assert lam(M[k], n) >= a[k] * lam(M[k + 1], n) - tol(M[k])
    rhs = math.prod(sum(lam(D[l], n) for l in range(i, L - 1)) for i in range(L - 1))
    assert lam(M[0], n) >= rhs - tol(M[0])
    assert rhs > 0                                            # the check is not vacuous


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,m,widths", [(2, 3, (4, 5)), (2, 2, (3, 6, 4))])
def test_lemma5_wide_layers(seed, n, m, widths):
    rng = np.random.default_rng(seed)
    L = len(widths) + 1
    Ws = embed(unimodal_square(n, m, L, L, rng), widths, rng)
    D = imbalances(Ws)
    P = np.linalg.multi_dot(Ws[:-1]) if L > 2 else Ws[0]
    rhs = math.prod(sum(lam(D[l], n) for l in range(i, L - 1)) for i in range(L - 1))
    assert lam(P @ P.T, n) >= rhs - tol(P @ P.T)


# ------------------------------------------------------ the scalar lemma (Lemma I.2)

def sym(a, k):
    """Elementary symmetric polynomial e_k(a)."""
    c = np.zeros(len(a) + 1)
    c[0] = 1.0
    for x in a:
        c[1:] = c[1:] + x * c[:-1]
    return c[k]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("L", [2, 3, 4, 5, 7])
def test_scalar_lemma_steps(seed, L):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 2.0, size=L) ** 2
    c, kstar = a.min(), int(np.argmin(a))
    e = a - c

    def at(t):
        at_ = e + t
        return sym(at_, L - 1), float(np.prod(at_)), sym(at_, L - 2)

    # derivatives: p' = tau and tau' = 2 s (central differences)
    for t in [0.1, 0.5, c + 0.3]:
        h = 1e-6
        tau, p, s = at(t)
        dp = (at(t + h)[1] - at(t - h)[1]) / (2 * h)
        dtau = (at(t + h)[0] - at(t - h)[0]) / (2 * h)
        assert abs(dp - tau) <= 1e-6 * max(1, tau)
        assert abs(dtau - 2 * s) <= 1e-6 * max(1, s)
        # AM-GM: 2 s >= L (L-1) p^(1 - 2/L)
        assert 2 * s >= L * (L - 1) * p ** (1 - 2 / L) * (1 - 1e-12)
    # F is non-decreasing on [0, c]
    ts = np.linspace(0.0, c, 50)
    F = [at(t)[0] ** 2 - L ** 2 * at(t)[1] ** (2 - 2 / L) for t in ts]
    assert np.all(np.diff(F) >= -tol(F) * 10)
    # F(0) = Pi^2
    Pi = float(np.prod(np.delete(e, kstar)))
    assert abs(F[0] - Pi ** 2) <= tol(Pi ** 2)
    # the lemma, against tau = lambda_min(T) of the scalar network (linflow)
    Ws = lf.init.scalar(np.sqrt(a))
    tau = float(lf.lambda_min(Ws))
    p = float(np.prod(a))
    rhs = math.sqrt(Pi ** 2 + (L * p ** (1 - 1 / L)) ** 2)
    assert tau >= rhs * (1 - 1e3 * EPS)
    if L == 2:
        assert abs(tau - rhs) <= 1e3 * EPS * max(1, tau)
    # Pi is the product of the cumulative imbalances of the (reordered) network
    assert abs(float(lf.bounds.unimodal(Ws)) - Pi) <= tol(Pi) * 10


def test_scalar_lemma_cumulative_imbalances_telescope():
    w = np.array([1.5, 1.2, 0.7, 0.9, 1.1])                   # unimodal, l* = 3
    a = w ** 2
    d = a[:-1] - a[1:]
    ls = 3
    dt = [sum(d[l - 1] for l in range(i, ls)) if i < ls else sum(-d[l - 1] for l in range(ls, i + 1))
          for i in range(1, 5)]
    expect = [a[i - 1] - a[ls - 1] if i < ls else a[i] - a[ls - 1] for i in range(1, 5)]
    assert np.allclose(dt, expect, atol=1e-14)
    assert np.allclose(lf.to_numpy(lf.bounds.cumulative_imbalance(lf.init.scalar(w))), dt,
                       atol=1e-13)


# ---------------------------------------------------------- Theorem 3 (18)

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,m,L", [(3, 2, 4), (2, 3, 3), (1, 3, 4), (3, 3, 5)])
def test_eq18_every_index(seed, n, m, L):
    rng = np.random.default_rng(seed)
    for l_star in range(1, L + 1):
        Ws = unimodal_square(n, m, L, l_star, rng)
        exact = float(np.linalg.eigvalsh(T_dense(Ws))[0])
        # the first step: lambda_min(T) >= lambda_min(T_{l*}) = lambda_n(PP^T) lambda_m(Q^TQ)
        P = np.eye(n)
        for W in Ws[:l_star - 1]:
            P = P @ W
        Q = np.eye(m)
        for W in Ws[l_star:][::-1]:
            Q = W @ Q
        term = lam(P @ P.T, n) * lam(Q.T @ Q, m)
        assert exact >= term - tol(exact)
        D = imbalances(Ws)
        pre = math.prod(sum(lam(D[l - 1], n) for l in range(i, l_star)) for i in range(1, l_star))
        suf = math.prod(sum(lam(-D[l - 1], m) for l in range(l_star, i + 1))
                        for i in range(l_star, L))
        assert lam(P @ P.T, n) >= pre - tol(P @ P.T)
        assert lam(Q.T @ Q, m) >= suf - tol(Q.T @ Q)
        bound = float(lf.bounds.unimodal(Ws))
        assert abs(bound - pre * suf) <= tol(bound) * 10
        assert exact >= bound - tol(exact)


@pytest.mark.parametrize("seed", SEEDS)
def test_eq18_narrow_layer_makes_a_factor_zero(seed):
    # h_1 = 2 < n = 3 before l* = 4: the proof shows d~_(l*-1) = lambda_n(D_3) = 0
    rng = np.random.default_rng(seed)

    def below(A, k):        # B = A^T C with ||C|| < 1, so A^T A - B B^T >= 0
        C = rng.normal(size=(A.shape[0], k))
        return A.T @ (C * 0.8 / np.linalg.norm(C, 2))

    W2 = rng.normal(size=(2, 4))
    W3 = below(W2, 3)                                     # 4 x 3
    W4 = below(W3, 2)                                     # 3 x 2
    # W1 (3 x 2) with W1^T W1 - W2 W2^T >= 0
    G = W2 @ W2.T + np.eye(2)
    W1 = orthonormal(rng, 3, 2) @ np.linalg.cholesky(G).T
    Ws = (W1, W2, W3, W4)
    D = imbalances(Ws)
    for Dl in D:
        assert eig_desc(Dl)[-1] >= -tol(Dl)               # unimodal with l* = L = 4
    assert lf.bounds.unimodal_index(Ws) == 4
    assert abs(lam(D[2], 3)) <= tol(D[2]) * 10             # rank W3 <= h_1 = 2 < n
    assert abs(float(lf.bounds.unimodal(Ws))) <= tol(D[2]) * 100
    assert float(lf.lambda_min(Ws)) >= -tol(D[2])


# ---------------------------------------------------------- Theorem 3 (19)

def homogeneous_square(n, L, d, rng, scale=1.0):
    Ws = lf.init.homogeneous((n,) * (L + 1), d, seed=int(rng.integers(1 << 30)), scale=scale)
    return tuple(np.asarray(lf.to_numpy(W)) for W in Ws)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,d", [(2, (0.3, -0.2)), (3, (0.5, 0.2, -0.1)), (2, (-0.4, -0.3, -0.2)),
                                 (3, (0.0, 0.4))])
def test_eq19_steps(seed, n, d):
    rng = np.random.default_rng(seed)
    L = len(d) + 1
    Ws = homogeneous_square(n, L, list(d), rng, scale=1.3)
    # step 2: common singular vectors, s_{l,j}^2 - s_{l+1,j}^2 = d_l
    U0, s1, U1t = np.linalg.svd(Ws[0])
    U = [U0, U1t.T]
    S = [s1]
    for l in range(1, L):
        X = U[l].T @ Ws[l]
        Lam = X @ X.T
        assert np.abs(Lam - np.diag(np.diag(Lam))).max() <= tol(Lam) * 10
        lam_d = np.clip(np.diag(Lam), 0, None)
        assert np.allclose(S[-1] ** 2 - lam_d, d[l - 1], atol=tol(Lam) * 10)
        Unext = np.zeros((n, n))
        nz = lam_d > 1e-12
        Unext[:, nz] = (X[nz] / np.sqrt(lam_d[nz])[:, None]).T
        if not nz.all():
            # complete with an orthonormal basis of the complement
            comp = np.linalg.svd(Unext[:, nz].T)[2][nz.sum():].T if nz.any() else np.eye(n)
            Unext[:, ~nz] = comp
        assert np.allclose(Unext.T @ Unext, np.eye(n), atol=1e-9)
        assert np.allclose(Ws[l], U[l] @ np.diag(np.sqrt(lam_d)) @ Unext.T, atol=1e-9)
        U.append(Unext)
        S.append(np.sqrt(lam_d))
    S = np.array(S)                                              # (L, n)
    # step 3: lambda_min(T) = min tau_jk; step 4: the worst mode is the same in every layer
    tau = np.array([[sum(np.prod(S[:l, j] ** 2) * np.prod(S[l + 1:, k] ** 2) for l in range(L))
                     for k in range(n)] for j in range(n)])
    exact = float(lf.lambda_min(Ws))
    assert abs(exact - tau.min()) <= tol(exact) * 10
    jstar = int(np.argmin(S[0]))
    assert np.all(S[:, jstar][:, None] <= S + 1e-12)
    assert abs(tau[jstar, jstar] - tau.min()) <= tol(exact) * 10
    smin = np.linalg.svd(np.linalg.multi_dot(Ws))[1][-1]
    assert abs(smin - np.prod(S[:, jstar])) <= tol(smin) * 100
    # (19) itself
    b19 = float(lf.bounds.homogeneous(Ws))
    Pi = float(lf.bounds.unimodal(Ws))
    assert abs(b19 - math.sqrt(Pi ** 2 + (L * smin ** (2 - 2 / L)) ** 2)) <= tol(b19) * 100
    assert exact >= b19 * (1 - 1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_eq19_wide_hidden_layers(seed):
    # n = m = 2, hidden widths 4 and 5: compression first (step 1)
    rng = np.random.default_rng(seed)
    Wsq = homogeneous_square(2, 3, [0.3, -0.2], rng, scale=1.2)
    Ws = embed(Wsq, (4, 5), rng)
    D = imbalances(Ws)
    assert abs(lam(D[0], 2) - 0.3) < 1e-9 and abs(lam(-D[1], 2) - 0.2) < 1e-9
    exact = float(np.linalg.eigvalsh(T_dense(Ws))[0])
    Pi = 0.3 * 0.2
    smin = np.linalg.svd(np.linalg.multi_dot(Ws))[1][-1]
    assert exact >= math.sqrt(Pi ** 2 + (3 * smin ** (4 / 3)) ** 2) * (1 - 1e-9)


# ------------------------------------------------------------ the depth corollary

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,m,L", [(2, 3, 4), (3, 1, 5), (2, 2, 6)])
def test_depth_corollary(seed, n, m, L):
    rng = np.random.default_rng(seed)
    eps = 0.3
    dims = [n] * L + [m]
    D = [random_psd(rng, n, n, 0.5) + eps * np.eye(n) for _ in range(L - 1)]
    Ws = lf.init.unimodal(tuple(dims), L, D, seed=seed)
    bound = float(lf.bounds.unimodal(Ws))
    assert bound >= eps ** (L - 1) * math.factorial(L - 1) * (1 - 1e-12)
    assert bound >= float(lf.bounds.yun(Ws)) * (1 - 1e-12)
    assert float(lf.lambda_min(Ws)) >= bound * (1 - 1e-9)


def test_yun_case_needs_the_width_condition():
    """Corollary (depth), Yun et al.'s case: with h_{L-1} >= n, lambda_n(D_{L-1}) >= lambda and
    lambda_min >= lambda^{L-1}; with h_{L-1} < n the hypothesis D_{L-1} >= lambda I can hold
    while lambda_min(T) < lambda^{L-1} (the counterexample of the chapter, by hand)."""
    W1, W2 = np.array([[math.sqrt(10.0)], [0.0]]), np.array([[0.1]])   # n = 2, h_1 = 1
    D1 = W1.T @ W1 - W2 @ W2.T
    assert float(D1[0, 0]) >= 1.0                                         # D_1 >= 1 * I
    lam_min = float(np.linalg.eigvalsh(W1 @ W1.T)[0] + (W2.T @ W2)[0, 0])  # Lemma (two layers)
    assert lam_min < 1.0 ** 1 and abs(float(lf.lambda_min((W1, W2))) - lam_min) < 1e-12
    assert float(lf.bounds.yun((W1, W2))) == 0.0 and float(lf.bounds.unimodal((W1, W2))) == 0.0
    rng = np.random.default_rng(7)
    for L in (2, 3, 4):
        n, lam_ = 2, 0.4
        D = [random_psd(rng, n, n, 0.5) for _ in range(L - 2)] + [lam_ * np.eye(n)]
        Ws = lf.init.unimodal(tuple([n] * L + [3]), L, D, seed=L)     # h_{L-1} = n
        Ws = [lf.to_numpy(W) for W in Ws]
        DL = imbalances(Ws)[-1]
        assert lam(DL, n) >= lam_ * (1 - 1e-9)
        assert float(np.linalg.eigvalsh(T_dense(Ws))[0]) >= lam_ ** (L - 1) * (1 - 1e-9)


# ---------------------------------------------------------------- Corollary 2

@pytest.mark.parametrize("seed", [0, 1])
def test_corollary2_along_the_flow(seed):
    rng = np.random.default_rng(seed)
    Ws = lf.init.homogeneous((2, 2, 2, 2), (0.3, -0.2), seed=seed, scale=1.2)
    Y = lf.to_numpy(lf.product(Ws)) + 0.05 * rng.standard_normal((2, 2))
    loss = lf.losses.Squared(Y)
    t = np.linspace(0, 3, 31)
    tr = lf.gradient_flow(Ws, loss, t_end=3.0, t_eval=t, diagnostics=("lambda_min",),
                          save=("loss", "product"), rtol=1e-9, atol=1e-13)
    a2 = float(lf.bounds.corollary2(Ws, loss))
    nu = float(lf.bounds.margin(Ws, loss))
    smin = np.linalg.svd(lf.to_numpy(tr.product), compute_uv=False)[:, -1]
    assert np.all(smin >= nu - 1e-9)                                   # Lemma B.1
    assert np.min(lf.to_numpy(tr.diagnostics["lambda_min"])) >= a2 * (1 - 1e-6)
    Lt = lf.to_numpy(tr.loss)
    assert np.all(Lt <= Lt[0] * np.exp(-a2 * loss.gamma * t) * (1 + 1e-6) + 1e-14)


# ------------------------------------------------------------ chapter 8

@pytest.mark.parametrize("seed", SEEDS)
def test_spectral_ansatz_is_kept(seed):
    rng = np.random.default_rng(seed)
    Y = np.diag([2.0, 1.0, 0.5])
    sig = rng.uniform(0.4, 1.3, size=(3, 3))
    Ws = lf.init.spectral(Y, sig, widths=(5, 4), seed=seed)
    t = np.linspace(0, 2, 11)
    tr = lf.gradient_flow(Ws, lf.losses.Squared(Y), t_end=2.0, t_eval=t,
                          save=("loss", "product"), rtol=1e-10, atol=1e-13)
    W = lf.to_numpy(tr.product)
    for i in range(3):
        tri = lf.gradient_flow(lf.init.scalar(sig[:, i]), lf.losses.Squared(Y[i:i + 1, i:i + 1]),
                               t_end=2.0, t_eval=t, save=("loss", "product"), rtol=1e-10,
                               atol=1e-13)
        assert np.allclose(W[:, i, i], lf.to_numpy(tri.product)[:, 0, 0], atol=1e-7)
    off = W - np.einsum("tii,ij->tij", W, np.eye(3))
    assert np.abs(off).max() <= 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_exponential_loss_claim(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=4)
    z /= np.linalg.norm(z)
    X = rng.normal(size=(20, 4))
    y = np.sign(X @ z)
    gamma = float(np.min(y * (X @ z)))
    assert gamma > 0
    for _ in range(5):
        w = rng.normal(size=4) * 2
        f = float(np.sum(np.exp(-y * (X @ w))))
        g = -(X * (y * np.exp(-y * (X @ w)))[:, None]).sum(axis=0)
        assert float(-g @ z) >= gamma * f * (1 - 1e-12)               # <-grad f, z> >= gamma f
        assert np.linalg.norm(g) >= float(-g @ z) * (1 - 1e-12)       # Cauchy-Schwarz


def test_theorem4_integrated_bound():
    # along dL/dt <= -a g^2 L^2 the bound L0 / (L0 a g^2 t + 1) holds; the flow of Theorem 4
    rng = np.random.default_rng(3)
    z = np.array([1.0, 0.0])
    X = rng.normal(size=(12, 2))
    y = np.sign(X @ z)
    X[:, 0] += 0.5 * y                                               # margin >= 0.5
    loss = lf.losses.Exponential(X, y)
    Ws = lf.init.lambda_balanced((2, 2, 1), 0.5, seed=1)
    alpha = float(lf.bounds.two_layer(Ws))
    t = np.linspace(0, 20, 41)
    tr = lf.gradient_flow(Ws, loss, t_end=20.0, t_eval=t, rtol=1e-9, atol=1e-13)
    L0, g = float(tr.loss[0]), float(loss.gamma)
    bound = L0 / (L0 * alpha * g ** 2 * t + 1)
    assert alpha > 0
    assert np.all(lf.to_numpy(tr.loss) <= bound * (1 + 1e-6))


@pytest.mark.parametrize("seed", SEEDS)
def test_diagonal_network_energy(seed):
    # chapter 8: for diagonal layers and a diagonal gradient g, <T g, g> = sum_i tau_i g_i^2
    # and lambda_min(T) of the matrix network is the min over (i, j) of the E_ij eigenvalues
    rng = np.random.default_rng(seed)
    L, n = 3, 4
    ws = np.abs(rng.normal(1.0, 0.3, size=(L, n)))
    Ws = tuple(np.diag(w) for w in ws)
    g = rng.normal(size=n)
    TG = lf.to_numpy(lf.T_apply(Ws, np.diag(g)))
    tau = [sum(np.prod(np.delete(ws[:, i], l) ** 2) for l in range(L)) for i in range(n)]
    energy = float(np.sum(TG * np.diag(g)))
    assert abs(energy - sum(t * gi ** 2 for t, gi in zip(tau, g))) <= tol(energy) * 10
    assert energy >= min(tau) * float(g @ g) * (1 - 1e-12)
    w2 = ws ** 2
    ev = [sum(np.prod(w2[:l, i]) * np.prod(w2[l + 1:, j]) for l in range(L))
          for i in range(n) for j in range(n)]
    exact = float(np.linalg.eigvalsh(T_dense(Ws))[0])
    assert abs(min(ev) - exact) <= tol(exact) * 10
    assert exact <= min(tau) * (1 + 1e-12)


@pytest.mark.parametrize("L", [2, 3, 4, 6])
def test_eq18_attained_by_scalar_networks_with_a_zero_peak(L):
    """Chapter 7 after Theorem 3: a unimodal scalar network with w_{l*} = 0 has
    lambda_min(T) = prod_{k != l*} w_k^2 = prod of its cumulative imbalances."""
    rng = np.random.default_rng(L)
    for l_star in range(1, L + 1):
        a = np.sort(rng.uniform(0.2, 2.0, size=L))
        w2 = np.concatenate([a[::-1][:l_star - 1], [0.0], a[:L - l_star]])  # down, 0, up
        Ws = [np.array([[np.sqrt(v)]]) for v in w2]
        exact = float(np.linalg.eigvalsh(T_dense(Ws))[0])
        d_tilde = [w2[i - 1] if i < l_star else w2[i] for i in range(1, L)]
        assert abs(exact - float(np.prod(d_tilde))) <= tol(exact) * 10
        assert abs(float(lf.bounds.unimodal(Ws)) - exact) <= tol(exact) * 10
