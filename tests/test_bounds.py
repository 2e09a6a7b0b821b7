"""The bounds of linflow.bounds against the exact lambda_min(T) and along simulated flows.

Each lower bound is checked on >= 1000 random instances of its hypothesis class
(n != m and h_1 != h_2 included), with structured sampling that reaches the boundary
cases: rank-deficient factors, zero eigenvalues, balanced and lambda-balanced
weights, tiny and huge imbalance.  Identities (App. H, the two-layer formula, the
balanced formula, Tarmoun's value, the scalar ideal rate) are checked to round-off.
"""
from __future__ import annotations

import numpy as np
import pytest

import linflow as lf

B = lf.bounds
H = B.HypothesisError


# --- helpers ----------------------------------------------------------------------------

def scale_of(Ws):
    """(sum_l ||W_l||_F^2)^(L-1), at least 1: the size of T's entries, for tolerances."""
    s = sum(np.sum(np.asarray(W) ** 2, axis=(-2, -1)) for W in Ws)
    return np.maximum(1.0, s) ** (len(Ws) - 1)


def assert_below(bound, exact, Ws, rtol=1e-11, what=""):
    bound, exact = np.asarray(bound), np.asarray(exact)
    slack = rtol * scale_of(Ws)
    bad = bound > exact + slack
    assert not np.any(bad), (
        f"{what}: {int(np.sum(bad))} violations; worst bound {bound[bad].max()} vs exact "
        f"{exact[bad][np.argmax(bound[bad])]}"
    )


def low_rank(rng, shape, rank):
    a, b = shape[-2:]
    return rng.normal(size=shape[:-2] + (a, rank)) @ rng.normal(size=shape[:-2] + (rank, b)) / np.sqrt(max(rank, 1))


def two_layer_batch(rng, n, h, m, kind, B_=25):
    """A batch of two-layer weights of one structured kind."""
    s1, s2 = np.exp(rng.uniform(-2, 2, size=2))
    if kind == "generic":
        return (rng.normal(size=(B_, n, h)) * s1, rng.normal(size=(B_, h, m)) * s2)
    if kind == "rank_deficient":
        r1, r2 = rng.integers(0, min(n, h) + 1), rng.integers(0, min(h, m) + 1)
        return (low_rank(rng, (B_, n, h), r1) * s1, low_rank(rng, (B_, h, m), r2) * s2)
    if kind == "imbalanced":  # tiny W1, huge W2 or the reverse
        e = np.exp(rng.uniform(3, 6))
        W1, W2 = rng.normal(size=(B_, n, h)), rng.normal(size=(B_, h, m))
        return (W1 / e, W2 * e) if rng.random() < 0.5 else (W1 * e, W2 / e)
    if kind == "balanced":
        return tuple(np.asarray(W) for W in lf.init.balanced((n, h, m), batch=(B_,), seed=int(rng.integers(1 << 30)), scale=s1)) \
            if h >= min(n, m) else two_layer_batch(rng, n, h, m, "generic", B_)
    if kind == "lambda":
        lam = rng.normal() * s1
        if (lam > 0 and h > n) or (lam < 0 and h > m):
            lam = -lam
        if (lam > 0 and h > n) or (lam < 0 and h > m):
            lam = 0.0
        return tuple(np.asarray(W) for W in lf.init.lambda_balanced((n, h, m), lam, batch=(B_,), seed=int(rng.integers(1 << 30)), scale=s2))
    if kind == "zeros":
        W1 = rng.normal(size=(B_, n, h)) * s1
        W2 = np.zeros((B_, h, m))
        return (W1, W2) if rng.random() < 0.5 else (np.zeros((B_, n, h)), rng.normal(size=(B_, h, m)) * s2)
    raise AssertionError(kind)


KINDS2 = ("generic", "rank_deficient", "imbalanced", "balanced", "lambda", "zeros")


def two_layer_instances(seed, count=1200):
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < count:
        n, h, m = (int(x) for x in rng.integers(1, 6, size=3))
        kind = KINDS2[len(out) % len(KINDS2)]
        Ws = two_layer_batch(rng, n, h, m, kind)
        out.append(Ws)
        total += Ws[0].shape[0]
    return out


# --- two layers -------------------------------------------------------------------------

def test_exact_two_layer_formula():
    """lambda_min(T) = lambda_n(W1 W1^T) + lambda_m(W2^T W2) (Kronecker sum)."""
    rng = np.random.default_rng(5)
    for n, h, m in [(3, 2, 4), (2, 5, 1), (4, 4, 4), (1, 3, 2)]:
        Ws = (rng.normal(size=(30, n, h)), low_rank(rng, (30, h, m), 1))
        ref = np.linalg.eigvalsh(np.asarray(lf.T_matrix(Ws)))[..., 0]
        np.testing.assert_allclose(lf.lambda_min(Ws), ref, atol=1e-12 * scale_of(Ws).max())


def test_lemma3_and_theorem1_gap_below_lambda_min():
    """Corrected Lemma 3 (E2) and Theorem 1.1's gap, >= 1000 instances incl. n != m."""
    count, n_ne_m = 0, 0
    for Ws in two_layer_instances(11):
        lm = lf.lambda_min(Ws)
        dp, dm, gap = B.spread_gap(Ws)
        assert np.all(dp >= 0) and np.all(dm >= 0) and np.all(gap >= 0)
        l3 = B.lemma3(Ws)
        assert_below(gap, lm, Ws, what="gap")
        assert_below(l3, lm, Ws, what="lemma3")
        assert_below(gap, l3, Ws, what="gap <= lemma3")  # sigma >= 0 only adds
        np.testing.assert_array_equal(B.two_layer(Ws), gap)
        np.testing.assert_array_equal(B.min2021(Ws), gap)
        # Theorem 1.2 at t = 0: nu_k <= sigma_k(W(0)) (Weyl), so alpha_2 <= Lemma 3 <= lambda_min
        W0 = np.asarray(lf.product(Ws))
        rng = np.random.default_rng(count)
        Y = W0 + rng.normal(size=W0.shape) * rng.uniform(0, 1, size=W0.shape[:1] + (1, 1)) * (1 + np.abs(W0).max())
        a2 = B.two_layer(Ws, lf.losses.Squared(Y))
        assert_below(gap, a2, Ws, what="gap <= alpha_2")
        assert_below(a2, l3, Ws, what="alpha_2 <= lemma3")
        count += lm.shape[0]
        n_ne_m += lm.shape[0] * (Ws[0].shape[-2] != Ws[1].shape[-1])
    assert count >= 1000 and n_ne_m >= 500


def test_lemma3_reduces_when_balanced_spreads_vanish():
    """Delta_+- = 0, n = m: the bound is sqrt(gap^2 + 4 sigma_min^2) (remark after Lemma 3)."""
    Ws = lf.init.lambda_balanced((3, 3, 3), 0.7, batch=(10,), seed=3)
    dp, dm, gap = B.spread_gap(Ws)
    np.testing.assert_allclose(dp, 0, atol=1e-12)
    np.testing.assert_allclose(dm, 0, atol=1e-12)
    np.testing.assert_allclose(gap, 0.7, atol=1e-12)
    s = lf.sigma_min(Ws)
    np.testing.assert_allclose(B.lemma3(Ws), np.sqrt(0.49 + 4 * s ** 2), rtol=1e-12)
    # and here the bound is exact: lambda_min = sqrt(lam^2 + 4 sigma_min^2) at D = lam I, h = n = m
    np.testing.assert_allclose(lf.lambda_min(Ws), np.sqrt(0.49 + 4 * s ** 2), rtol=1e-10)


def test_margin_lemma_B1():
    rng = np.random.default_rng(8)
    Y = rng.normal(size=(3, 2))
    Ws = lf.init.gaussian((3, 4, 2), "custom", std=0.5, batch=(6,), seed=2)
    loss = lf.losses.Squared(Y)
    W0 = np.asarray(lf.product(Ws))
    dist = np.linalg.norm(W0 - Y, axis=(-2, -1))
    s = np.linalg.svd(Y, compute_uv=False)
    np.testing.assert_allclose(B.margin(Ws, loss), np.maximum(s[-1] - dist, 0), atol=1e-14)
    np.testing.assert_allclose(B.margins(Ws, loss), np.maximum(s[None, :] - dist[:, None], 0), atol=1e-14)
    # Regression: K/mu enters
    X = rng.normal(size=(6, 3))
    reg = lf.losses.Regression(X, rng.normal(size=(6, 2)))
    Wst = np.asarray(reg.minimizer)
    nu = np.maximum(np.linalg.svd(Wst, compute_uv=False)[-1]
                    - np.sqrt(reg.K / reg.mu) * np.linalg.norm(W0 - Wst, axis=(-2, -1)), 0)
    np.testing.assert_allclose(B.margin(Ws, reg), nu, atol=1e-13)


def near_target(rng, dims, Y, noise, B_):
    """Weights whose product is close to Y (positive margin): balanced factors of Y + noise."""
    P = Y + noise * rng.normal(size=(B_,) + Y.shape)
    Ws = lf.init.balanced(dims, product=P, seed=int(rng.integers(1 << 30)))
    # add some imbalance
    return tuple(np.asarray(W) + 0.1 * rng.normal(size=np.shape(W)) for W in Ws)


@pytest.mark.parametrize("n,h,m", [(2, 3, 2), (3, 4, 2), (2, 2, 3), (1, 3, 1)])
def test_theorem1_along_gradient_flow(n, h, m):
    """alpha_2 (corrected, with the margin) <= lambda_min(T(t)) and the loss bound (7)."""
    rng = np.random.default_rng(n * 100 + h * 10 + m)
    Y = rng.normal(size=(n, m)) + 2 * np.eye(n, m)
    Ws = near_target(rng, (n, h, m), Y, 0.05, 8)
    loss = lf.losses.Squared(Y)
    alpha = np.asarray(B.two_layer(Ws, loss))
    assert np.all(alpha >= np.asarray(B.two_layer(Ws)) - 1e-12)  # the margin only helps
    assert np.all(alpha > 0)
    traj = lf.gradient_flow(Ws, loss, 3.0, rtol=1e-10, atol=1e-12, diagnostics=("lambda_min",),
                            progress=False)
    lam = np.asarray(traj.diagnostics["lambda_min"])
    assert np.all(lam.min(axis=0) >= alpha - 1e-9)
    t = np.asarray(traj.t)
    bound = np.asarray(B.loss_curve(t, traj.loss[0], alpha, loss.gamma))
    assert np.all(np.asarray(traj.loss) <= bound * (1 + 1e-7) + 1e-14)


def test_theorem1_regression_loss_along_flow():
    rng = np.random.default_rng(21)
    X = rng.normal(size=(8, 3)) + 2 * np.eye(8, 3)
    Wst = rng.normal(size=(3, 2)) + 2 * np.eye(3, 2)
    loss = lf.losses.Regression(X, X @ Wst)
    Ws = near_target(rng, (3, 3, 2), Wst, 0.01, 6)
    alpha = np.asarray(B.two_layer(Ws, loss))
    traj = lf.gradient_flow(Ws, loss, 1.0, rtol=1e-10, atol=1e-12, diagnostics=("lambda_min",),
                            progress=False)
    assert np.all(np.asarray(traj.diagnostics["lambda_min"]).min(axis=0) >= alpha - 1e-9)
    gap = np.asarray(traj.loss) - loss.f_star
    bound = np.asarray(B.loss_curve(traj.t, gap[0], alpha, loss.gamma))
    assert np.all(gap <= bound * (1 + 1e-6) + 1e-12)


def test_theorem1_part1_underdetermined_regression_A1_only():
    """A1 only (X of full row rank): alpha_2 = gap, and (7) holds with gamma = 2 lambda_min(X X^T)."""
    rng = np.random.default_rng(22)
    X = rng.normal(size=(2, 3))
    loss = lf.losses.Regression(X, rng.normal(size=(2, 2)))
    assert loss.assumption == "A1" and loss.mu is None
    Ws = lf.init.lambda_balanced((3, 3, 2), 0.8, batch=(3,), seed=2)  # h <= n: D = 0.8 I, gap = 0.8
    alpha = np.asarray(B.two_layer(Ws, loss))
    np.testing.assert_allclose(alpha, 0.8, rtol=1e-12)
    traj = lf.gradient_flow(Ws, loss, 3.0, rtol=1e-10, atol=1e-12, progress=False)
    gap = np.asarray(traj.loss) - loss.f_star
    assert np.all(gap <= np.asarray(B.loss_curve(traj.t, gap[0], alpha, loss.gamma)) * (1 + 1e-6) + 1e-12)
    with pytest.raises(H, match="A2"):
        B.margin(Ws, loss)


# --- three layers -----------------------------------------------------------------------

def three_layer_instances(seed, count=1100):
    rng = np.random.default_rng(seed)
    out, total, i = [], 0, 0
    while total < count:
        n, h1, h2, m = (int(x) for x in rng.integers(1, 5, size=4))
        if n * m > 9:
            continue
        kind = i % 5
        i += 1
        s = np.exp(rng.uniform(-1.5, 1.5, size=3))
        shapes = [(n, h1), (h1, h2), (h2, m)]
        if kind == 0:  # generic
            Ws = tuple(rng.normal(size=(25,) + sh) * c for sh, c in zip(shapes, s))
        elif kind == 1:  # rank deficient
            Ws = tuple(low_rank(rng, (25,) + sh, int(rng.integers(0, min(sh) + 1))) * c for sh, c in zip(shapes, s))
        elif kind == 2:  # unimodal, any l*
            ls = int(rng.integers(1, 4))
            try:
                Ws = lf.init.unimodal((n, h1, h2, m), ls,
                                      [(1 if l < ls else -1) * rand_psd(rng, h, int(rng.integers(0, h + 1)))
                                       for l, h in ((1, h1), (2, h2))], batch=(25,), seed=i)
            except ValueError:
                continue
            Ws = tuple(np.asarray(W) for W in Ws)
        elif kind == 3:  # huge / tiny imbalance
            e = np.exp(rng.uniform(2, 4))
            f = [e, 1 / e, 1.0]
            rng.shuffle(f)
            Ws = tuple(rng.normal(size=(25,) + sh) * c for sh, c in zip(shapes, f))
        else:  # balanced
            if min(h1, h2) < min(n, m):
                continue
            Ws = tuple(np.asarray(W) for W in lf.init.balanced((n, h1, h2, m), batch=(25,), seed=i))
        out.append(Ws)
        total += 25
    return out


def rand_psd(rng, h, rank):
    G = rng.normal(size=(h, rank))
    return G @ G.T


def test_theorem2_chain_delta_star_le_g_le_lambda_min():
    """Theorem 2: Delta* <= g (Lemma G.1) <= lambda_min(T), >= 1000 instances, any init."""
    count = 0
    for Ws in three_layer_instances(12):
        lm = lf.lambda_min(Ws)
        g = B.lemma_g1(Ws)
        d = B.delta_star(Ws)
        assert_below(g, lm, Ws, what="Lemma G.1")
        assert_below(d, g, Ws, what="Theorem 2 (Delta* <= g)")
        count += lm.shape[0]
    assert count >= 1000


def test_definition1_wedge_against_loop():
    rng = np.random.default_rng(3)
    for r in (1, 2, 3, 5, 7):
        A = rng.normal(size=(5, 5)); A = A + A.T
        Bm = rng.normal(size=(5, 5)); Bm = Bm + Bm.T
        a = np.sort(np.linalg.eigvalsh(A))[::-1]
        b = np.sort(np.linalg.eigvalsh(Bm))[::-1]
        ref = [min(a[i], b[i - r + 1] if i - r + 1 >= 0 else np.inf) for i in range(5)]
        np.testing.assert_allclose(np.diag(np.asarray(B.wedge(A, Bm, r))), ref, atol=1e-13)
    # not commutative
    A, Bm = np.diag([3.0, 1.0]), np.diag([2.0, 0.0])
    assert not np.allclose(B.wedge(A, Bm, 2), B.wedge(Bm, A, 2))
    with pytest.raises(ValueError, match="r must be a positive integer"):
        B.wedge(A, Bm, 0)


def test_definition2_D_bar_convention_unequal_widths():
    """For h1 != h2, lambda_i of the shorter matrix past its order is -inf (ignored)."""
    D21 = np.diag([2.0, -1.0, -3.0])
    D23 = np.diag([1.0, 0.5])
    Db1, Db2 = B.D_bar(D21, D23)
    np.testing.assert_allclose(np.diag(Db1), [2.0, 0.5, 0.0])
    np.testing.assert_allclose(np.diag(Db2), [2.0, 0.5])
    # Lemma G.5: D_bar_h1 >=_n D21 (r-interlacing), here n = 1 means D_bar >= D21 entrywise
    assert np.all(np.diag(Db1) >= np.sort(np.diag(D21))[::-1])


def test_deltas_keys_and_delta_star_from():
    Ws = lf.init.gaussian((2, 5, 4, 3), batch=(4,), seed=9)
    q = B.deltas(Ws)
    assert set(q) == {"Delta_21", "Delta_21_2", "Delta_23", "Delta_23_2"}
    star = 0.5 * (q["Delta_21_2"] + q["Delta_21"] ** 2) + q["Delta_21"] * q["Delta_23"] + 0.5 * (q["Delta_23_2"] + q["Delta_23"] ** 2)
    np.testing.assert_allclose(B.delta_star(Ws), star, rtol=1e-14)
    D = lf.imbalance(Ws)
    np.testing.assert_allclose(B.delta_star_from(-D[0], D[1], 2, 3), star, rtol=1e-14)


@pytest.mark.parametrize("l_star", [1, 2, 3])
def test_appendix_H_delta_star_equals_product_for_unimodal(l_star):
    """App. H: unimodal L = 3 => Delta* = prod d~ (and the other two terms vanish)."""
    rng = np.random.default_rng(l_star)
    dims = {1: (2, 2, 3, 4), 2: (3, 2, 2, 3), 3: (4, 3, 2, 2)}[l_star]
    for trial in range(5):
        D = [rand_psd(rng, h, int(rng.integers(0, h + 1))) * (1 if l < l_star else -1)
             for l, h in ((1, dims[1]), (2, dims[2]))]
        Ws = lf.init.unimodal(dims, l_star, D, batch=(10,), seed=trial)
        prod = B.unimodal(Ws)
        np.testing.assert_allclose(B.delta_star(Ws), prod, atol=1e-11 * scale_of(Ws).max())
        q = B.deltas(Ws)
        terms = {1: 0.5 * (q["Delta_23_2"] + q["Delta_23"] ** 2), 2: q["Delta_21"] * q["Delta_23"],
                 3: 0.5 * (q["Delta_21_2"] + q["Delta_21"] ** 2)}
        np.testing.assert_allclose(terms[l_star], prod, atol=1e-11 * scale_of(Ws).max())
        assert_below(prod, lf.lambda_min(Ws), Ws, what="(18)")


def test_corollary1_loss_bound_along_flow():
    """L = 3: L(t) <= exp(-2 Delta* t) L(0) and min_t lambda_min(T(t)) >= Delta*."""
    rng = np.random.default_rng(4)
    Ws = lf.init.gaussian((2, 6, 6, 1), "fan_out", batch=(6,), seed=4)
    d = np.asarray(B.delta_star(Ws))
    assert np.all(d > 0)
    Y = rng.normal(size=(2, 1))
    loss = lf.losses.Squared(Y)
    traj = lf.gradient_flow(Ws, loss, 2.0, rtol=1e-10, atol=1e-12, diagnostics=("lambda_min",), progress=False)
    assert np.all(np.asarray(traj.diagnostics["lambda_min"]).min(axis=0) >= d - 1e-9)
    bound = np.asarray(B.loss_curve(traj.t, traj.loss[0], d, loss.gamma))
    assert np.all(np.asarray(traj.loss) <= bound * (1 + 1e-7) + 1e-14)


# --- deep -------------------------------------------------------------------------------

def unimodal_config(rng, full_rank_neighbours=False, l_star=None):
    L = int(rng.integers(2, 6))
    ls = int(rng.integers(1, L + 1)) if l_star is None else L
    dims = [0] * (L + 1)
    dims[ls - 1], dims[ls] = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    for l in range(ls - 2, -1, -1):
        dims[l] = dims[l + 1] + int(rng.integers(0, 2))
    for l in range(ls + 1, L + 1):
        dims[l] = dims[l - 1] + int(rng.integers(0, 2))
    D = []
    for l in range(1, L):
        kind = rng.integers(0, 4)
        h = dims[l]
        if kind == 0:
            M = rand_psd(rng, h, h) * np.exp(rng.uniform(-5, 2))
        elif kind == 1:
            M = rand_psd(rng, h, int(rng.integers(0, h + 1)))
        elif kind == 2:
            M = abs(rng.normal()) * np.eye(h)
        else:
            M = np.zeros((h, h)) if not full_rank_neighbours else rand_psd(rng, h, h)
        if full_rank_neighbours and l in (ls - 1, ls):
            M = rand_psd(rng, h, h) + 0.1 * np.eye(h)
        D.append(M if l < ls else -M)
    return dims, ls, D


def test_theorem3_eq18_unimodal_all_lstar():
    """(18) <= lambda_min on >= 1000 unimodal instances, every l*, n != m included."""
    rng = np.random.default_rng(13)
    count, seen, n_ne_m = 0, set(), 0
    while count < 1000:
        dims, ls, D = unimodal_config(rng)
        if dims[0] * dims[-1] > 25:
            continue
        Ws = lf.init.unimodal(dims, ls, D, batch=(20,), seed=count)
        for got, want in zip(lf.imbalance(Ws), D):
            np.testing.assert_allclose(got, np.broadcast_to(want, np.shape(got)), atol=1e-10 * max(1, np.abs(want).max()))
        b = B.unimodal(Ws)
        assert np.all(np.asarray(b) >= 0)
        assert_below(b, lf.lambda_min(Ws), Ws, what=f"(18) dims={dims} l*={ls}")
        # Yun's lambda^(L-1) sits below (18) when l* = L
        if ls == len(dims) - 1:
            assert_below(B.yun(Ws), b, Ws, what="yun <= (18)")
        count += 20
        seen.add((len(dims) - 1, ls))
        n_ne_m += 20 * (dims[0] != dims[-1])
    assert n_ne_m > 0 and len(seen) >= 10


def test_yun_below_theorem3_and_lambda_min():
    """Yun et al.: D_l >= 0 (l <= L-2), D_{L-1} >= lambda I => lambda^(L-1) <= prod d~ <= lambda_min."""
    rng = np.random.default_rng(23)
    count = 0
    while count < 1000:
        dims, ls, D = unimodal_config(rng, l_star="L")
        if dims[0] * dims[-1] > 25:
            continue
        Ws = lf.init.unimodal(dims, ls, D, batch=(20,), seed=count)
        y = B.yun(Ws)
        assert_below(y, B.unimodal(Ws), Ws, what="yun <= (18)")
        assert_below(y, lf.lambda_min(Ws), Ws, what="yun")
        count += 20


def test_unimodal_super_exponential_depth():
    """D_l = eps I, l* = L: prod d~ = eps^(L-1) (L-1)!."""
    for L in (2, 3, 4, 5):
        eps = 0.3
        Ws = lf.init.homogeneous((2,) * (L + 1), [eps] * (L - 1), batch=(3,), seed=L)
        np.testing.assert_allclose(B.unimodal(Ws), eps ** (L - 1) * np.prod(np.arange(1, L)), rtol=1e-10)
        np.testing.assert_allclose(B.cumulative_imbalance(Ws)[0], eps * np.arange(L - 1, 0, -1), rtol=1e-10)


def test_theorem3_eq19_homogeneous_square():
    """(19), n = m, >= 1000 homogeneous instances (incl. balanced, scalar, tiny imbalance)."""
    rng = np.random.default_rng(14)
    count = 0
    while count < 1000:
        L = int(rng.integers(2, 6))
        n = int(rng.integers(1, 4))
        ls = int(rng.integers(1, L + 1))
        kind = count // 20 % 3
        d = [abs(rng.normal()) * np.exp(rng.uniform(-6, 1)) * (1 if l < ls else -1) for l in range(1, L)]
        if kind == 1:
            d = [0.0] * (L - 1)  # balanced: widths may be larger
            dims = (n,) + tuple(int(x) for x in rng.integers(n, n + 3, size=L - 1)) + (n,)
        else:
            dims = (n,) * (L + 1)
        Ws = lf.init.homogeneous(dims, d, batch=(20,), seed=count, scale=float(np.exp(rng.uniform(-1, 1))))
        assert np.all(B.is_homogeneous(Ws))
        b = B.homogeneous(Ws)
        lm = lf.lambda_min(Ws)
        assert_below(b, lm, Ws, what=f"(19) dims={dims} d={d}")
        assert_below(B.unimodal(Ws), b, Ws, what="(18) <= (19)")
        # Corollary 2.2 (corrected) at t = 0 sits below (19): nu_min <= sigma_min(W(0))
        W0 = np.asarray(lf.product(Ws))
        Y = W0 + 0.3 * rng.normal(size=W0.shape)
        c2 = B.corollary2(Ws, lf.losses.Squared(Y))
        assert_below(B.unimodal(Ws), c2, Ws, what="(18) <= Cor. 2.2")
        assert_below(c2, b, Ws, what="Cor. 2.2 <= (19)")
        count += 20


def test_scalar_networks_sorted_and_ideal_rate():
    """Scalar nets: tau = alpha* (polynomial root) >= (19) >= (18), for any order of layers."""
    rng = np.random.default_rng(15)
    ws = rng.normal(size=(1000, 4)) * np.exp(rng.uniform(-1, 1, size=(1000, 1)))
    Ws = lf.init.scalar(ws)
    tau = sum(np.prod(np.delete(ws ** 2, l, axis=-1), axis=-1) for l in range(4))
    np.testing.assert_allclose(lf.lambda_min(Ws), tau, rtol=1e-12)
    a = B.scalar_ideal(ws)
    np.testing.assert_allclose(a, tau, rtol=1e-10)
    np.testing.assert_allclose(B.scalar_ideal(Ws), tau, rtol=1e-10)
    h19 = B.homogeneous(Ws)  # scalar networks are reordered, so always unimodal (§4.3)
    assert_below(h19, tau, Ws, what="Lemma I.2")
    assert_below(B.unimodal(Ws), h19, Ws, what="(18) <= (19)")
    # d~ are the numbers w_l^2 - min_k w_k^2 (l != l*), in the given order if that is unimodal,
    # else after sorting: w_(i)^2 - w_(L)^2
    w2 = np.sort(ws ** 2, axis=-1)[:, ::-1]
    np.testing.assert_allclose(np.sort(np.asarray(B.cumulative_imbalance(Ws)), axis=-1),
                               np.sort(w2[:, :-1] - w2[:, -1:], axis=-1), atol=1e-12)
    # the worked example of book ch. 7: unimodal as given, l* = 3
    Wb = lf.init.scalar(np.array([1.5, 1.2, 0.7, 0.9, 1.1]))
    assert B.unimodal_index(Wb) == 3
    np.testing.assert_allclose(B.cumulative_imbalance(Wb), [1.76, 0.95, 0.32, 0.72], atol=1e-12)
    np.testing.assert_allclose(B.unimodal(Wb), 1.76 * 0.95 * 0.32 * 0.72, rtol=1e-12)
    # alpha* is increasing in |w|: with w = nu < |prod w| it is smaller
    w = np.abs(np.prod(ws, axis=-1))
    assert np.all(np.asarray(B.scalar_ideal(ws, 0.5 * w)) <= a * (1 + 1e-12))
    # L = 2 exact: w1^2 + w2^2 = sqrt(d^2 + 4 w^2)
    v = rng.normal(size=(50, 2))
    np.testing.assert_allclose(B.homogeneous(lf.init.scalar(v)), np.sum(v ** 2, axis=-1), rtol=1e-12)


def test_diagonal_rate_is_min_over_coordinates():
    """App. E.2: each coordinate is a scalar network; the vector model's rate is min_i tau_i."""
    rng = np.random.default_rng(24)
    ws = rng.normal(size=(7, 3, 4))  # batch 7, L = 3, n = 4
    tau = sum(np.prod(np.delete(ws ** 2, l, axis=1), axis=1) for l in range(3))  # (7, 4)
    np.testing.assert_allclose(B.diagonal_rate(ws), tau.min(axis=-1), rtol=1e-10)
    per = np.stack([np.asarray(lf.lambda_min(lf.init.scalar(ws[:, :, i]))) for i in range(4)], axis=-1)
    np.testing.assert_allclose(B.diagonal_rate(ws), per.min(axis=-1), rtol=1e-10)
    # the matrix diagonal network has more directions: its lambda_min is no larger
    assert np.all(np.asarray(lf.lambda_min(lf.init.diagonal(ws))) <= tau.min(axis=-1) * (1 + 1e-12))


def test_corollary2_along_flow_square_and_rectangular():
    """Corollary 2 (corrected) along gradient flow; part 2 needs n = m."""
    rng = np.random.default_rng(16)
    # part 2: homogeneous, n = m, near the target so the margin is positive
    Y = np.diag([1.5, 1.2])
    Wb = lf.init.balanced((2, 2, 2, 2), product=Y * 0.97 + 0.01 * rng.normal(size=(2, 2)), seed=2)
    loss = lf.losses.Squared(Y)
    a2 = np.asarray(B.corollary2(Wb, loss, part=2))
    assert a2 > 0 and np.isclose(a2, np.asarray(B.corollary2(Wb, loss)))
    traj = lf.gradient_flow(Wb, loss, 3.0, rtol=1e-10, atol=1e-12, diagnostics=("lambda_min",), progress=False)
    assert np.asarray(traj.diagnostics["lambda_min"]).min() >= a2 - 1e-9
    assert np.all(np.asarray(traj.loss) <= np.asarray(B.loss_curve(traj.t, traj.loss[0], a2, 2.0)) * (1 + 1e-7) + 1e-14)
    # part 1 for rectangular unimodal weights
    Ws = lf.init.unimodal((3, 2, 2, 1), 3, [0.5, 0.4], batch=(5,), seed=3)
    a1 = np.asarray(B.corollary2(Ws, lf.losses.Squared(rng.normal(size=(3, 1)))))
    np.testing.assert_allclose(a1, B.unimodal(Ws))
    traj = lf.gradient_flow(Ws, lf.losses.Squared(rng.normal(size=(3, 1))), 2.0, rtol=1e-10, atol=1e-12,
                            diagnostics=("lambda_min",), progress=False)
    assert np.all(np.asarray(traj.diagnostics["lambda_min"]).min(axis=0) >= a1 - 1e-9)
    with pytest.raises(H, match="n = m"):
        B.corollary2(Ws, lf.losses.Squared(np.ones((3, 1))), part=2)


def test_corollary2_scalar_margin_keeps_the_sign_of_the_product():
    """Scalar nets are reordered by |w| for (18)/(19), but the margin uses the true W(0)."""
    w = np.array([-1.0, 1.0, 1.0]) * 0.09 ** (1 / 3)
    Ws = lf.init.scalar(w)
    loss = lf.losses.Squared(np.array([[-0.1]]))
    assert float(B.margin(Ws, loss)) == pytest.approx(0.09)
    assert float(B.corollary2(Ws, loss)) == pytest.approx(3 * 0.09 ** (4 / 3))
    assert B.is_homogeneous(lf.init.scalar(np.array([0.5, 2.0, 1.0])))


def test_theorem4_exponential_loss_inverse_rate():
    """Exponential loss on separable data: L(t) <= L0 / (L0 alpha gamma^2 t + 1) (Theorem 4)."""
    rng = np.random.default_rng(17)
    z = np.array([1.0, -0.5, 0.3]) / np.linalg.norm([1.0, -0.5, 0.3])
    X = rng.normal(size=(12, 3))
    y = np.sign(X @ z)
    # any unit z with y_i x_i^T z >= gamma gives A1' with that gamma (Claim, App. C)
    loss = lf.losses.Exponential(X, y, margin=float(np.min(y * (X @ z))))
    Ws = lf.init.gaussian((3, 5, 1), "custom", std=0.4, batch=(4,), seed=1)
    alpha = np.asarray(B.two_layer(Ws))  # only the imbalance gap applies (no A2)
    assert np.all(alpha > 0)
    traj = lf.gradient_flow(Ws, loss, 6.0, rtol=1e-9, atol=1e-12, progress=False)
    bound = np.asarray(B.loss_curve(traj.t, traj.loss[0], alpha, loss.gamma, kind="inverse"))
    assert np.all(np.asarray(traj.loss) <= bound * (1 + 1e-6))
    # L = 3 with Delta*
    Ws3 = lf.init.gaussian((3, 6, 6, 1), "fan_out", batch=(3,), seed=2)
    d = np.asarray(B.delta_star(Ws3))
    assert np.all(d > 0)
    traj = lf.gradient_flow(Ws3, loss, 1.0, rtol=1e-9, atol=1e-12, progress=False)
    bound = np.asarray(B.loss_curve(traj.t, traj.loss[0], d, loss.gamma, kind="inverse"))
    assert np.all(np.asarray(traj.loss) <= bound * (1 + 1e-6))


# --- prior work -------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [(3, 3, 3), (2, 4, 3), (4, 4, 4, 2), (2, 3, 5, 4, 2), (3, 3, 4, 3)])
def test_balanced_formula_exact(dims):
    """Balanced: lambda_min = L s^(2-2/L) if n = m, else s^(2-2/L) (E4 corrected), to round-off."""
    Ws = lf.init.balanced(dims, batch=(200,), seed=len(dims))  # 5 x 200 = 1000 instances
    assert np.all(B.is_balanced(Ws))
    np.testing.assert_allclose(B.arora(Ws), lf.lambda_min(Ws), rtol=1e-9, atol=1e-12)


def test_tarmoun_value_at_lambda_balanced_factorization():
    """sqrt(lam^2 + 4 sigma_min(Y)^2) = lambda_min(T) at the lambda-balanced factorizations of Y."""
    rng = np.random.default_rng(18)
    for lam in (0.8, -0.3, 0.0, 2.5):
        Y = rng.normal(size=(3, 3))
        U, s, Vt = np.linalg.svd(Y)
        a2 = (lam + np.sqrt(lam ** 2 + 4 * s ** 2)) / 2
        b2 = (-lam + np.sqrt(lam ** 2 + 4 * s ** 2)) / 2
        Ws = (U * np.sqrt(a2), np.sqrt(b2)[:, None] * Vt)
        np.testing.assert_allclose(lf.imbalance(Ws)[0], lam * np.eye(3), atol=1e-12)
        np.testing.assert_allclose(B.tarmoun(Ws, Y), lf.lambda_min(Ws), rtol=1e-12)
        # Theorem 1.2 at the optimum (nu = sigma(Y)) reproduces it
        np.testing.assert_allclose(B.two_layer(Ws, lf.losses.Squared(Y)), B.tarmoun(Ws, Y), rtol=1e-10)


def test_min2021_rate_two_c_matches_gap():
    Ws = lf.init.gaussian((3, 8, 2), batch=(5,), seed=3)
    D = np.asarray(lf.imbalance(Ws)[0])
    ev = np.sort(np.linalg.eigvalsh(D), axis=-1)[:, ::-1]
    c = np.maximum(ev[:, 2], 0) + np.maximum(-ev[:, -2], 0)  # lambda_n(D) (n=3), lambda_m(-D) (m=2)
    np.testing.assert_allclose(B.min2021(Ws), c, atol=1e-13)


# --- array type in, array type out ----------------------------------------------------------

def test_bounds_keep_namespace_and_match_numpy(backend):
    rng = np.random.default_rng(19)
    W2 = (rng.normal(size=(3, 2, 3)), rng.normal(size=(3, 3, 4)))
    W3 = tuple(np.asarray(W) for W in lf.init.unimodal((3, 2, 2, 2), 2, [0.5, -0.25], batch=(3,), seed=1))
    Y = rng.normal(size=(2, 4)) + 1
    tol = 1e-10 if backend.is64 else 2e-3
    cases = [
        (B.lemma3, W2), (B.two_layer, W2), (B.min2021, W2),
        (B.delta_star, W3), (B.lemma_g1, W3), (B.unimodal, W3),
        (lambda Ws: B.spread_gap(Ws)[0], W2),
        (lambda Ws: B.cumulative_imbalance(Ws), W3),
        (lambda Ws: B.deltas(Ws)["Delta_21_2"], W3),
    ]
    for fn, Wh in cases:
        ref = np.asarray(fn(Wh))
        got = fn(backend.weights(Wh))
        assert type(got).__module__.split(".")[0] == type(backend.asarray(0.0)).__module__.split(".")[0]
        np.testing.assert_allclose(lf.to_numpy(got), ref, rtol=tol, atol=tol * np.abs(ref).max())
    loss = lf.losses.Squared(backend.asarray(np.eye(2, 4) * 3))
    Wnear = (backend.asarray(np.eye(2, 3) * np.sqrt(3)), backend.asarray(np.eye(3, 4) * np.sqrt(3)))
    assert float(lf.to_numpy(B.margin(Wnear, loss))) == pytest.approx(3.0, rel=tol)
    t = backend.asarray(np.linspace(0, 1, 5))
    curve = B.loss_curve(t, 2.0, backend.asarray(np.ones(3)), 2.0)
    assert tuple(curve.shape) == (5, 3)


# --- hypotheses -----------------------------------------------------------------------------

def test_hypothesis_errors():
    W2 = lf.init.gaussian((2, 3, 2), seed=0)
    W3 = lf.init.gaussian((2, 3, 3, 2), seed=0)
    with pytest.raises(H, match="Theorem 2.*L = 3"):
        B.delta_star(W2)
    with pytest.raises(H, match="Lemma 3.*L = 2"):
        B.lemma3(W3)
    with pytest.raises(H, match="L = 2"):
        B.two_layer(W3)
    with pytest.raises(H, match="L = 3"):
        B.deltas(W2)
    generic = lf.init.gaussian((2, 4, 4, 2), seed=1)
    assert B.unimodal_index(generic) is None
    with pytest.raises(H, match="unimodal"):
        B.unimodal(generic)
    with pytest.raises(H, match="unimodal"):
        B.cumulative_imbalance(generic)
    rect = lf.init.homogeneous((3, 2, 2, 2), [0.5, 0.2], seed=0)
    with pytest.raises(H, match="n = m.*E4"):
        B.homogeneous(rect)
    nonhom = lf.init.unimodal((3, 3, 3, 3), 3, [np.diag([1.0, 2.0, 3.0]), np.eye(3)], seed=0)
    with pytest.raises(H, match="homogeneous"):
        B.homogeneous(nonhom)
    with pytest.raises(H, match="balanced"):
        B.arora(generic)
    with pytest.raises(H, match="Yun"):
        B.yun(lf.init.unimodal((2, 2, 2, 2), 2, [1.0, -1.0], seed=0))
    with pytest.raises(H, match="A2"):
        B.margin(W2, lf.losses.Exponential(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0])))
    with pytest.raises(H, match="A2"):
        B.corollary2(lf.init.homogeneous((2, 2, 2), [0.3], seed=0), None, part=2)
    with pytest.raises(H, match="D = lambda I"):
        B.tarmoun(lf.init.gaussian((2, 2, 2), seed=0), np.eye(2))
    with pytest.raises(H, match="n = m"):
        B.tarmoun(W2[:1] + (lf.init.gaussian((3, 3), seed=0)[0],), np.eye(2, 3))
    with pytest.raises(ValueError, match="kind"):
        B.loss_curve(np.ones(3), 1.0, 1.0, 2.0, kind="linear")
    assert issubclass(H, ValueError)


def test_multi_axis_batches_match_flat():
    Ws = lf.init.unimodal((3, 2, 2, 2), 2, [0.4, -0.3], batch=(2, 3), seed=4)
    flat = tuple(np.reshape(np.asarray(W), (6,) + np.shape(W)[-2:]) for W in Ws)
    for fn in (B.unimodal, B.delta_star, B.lemma_g1, lambda W: B.cumulative_imbalance(W),
               lambda W: B.corollary2(W)):
        got = np.asarray(fn(Ws))
        assert got.shape[:2] == (2, 3)
        np.testing.assert_allclose(got.reshape((6,) + got.shape[2:]), fn(flat), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(B.unimodal_index(Ws), np.full((2, 3), 2))
    W2 = lf.init.gaussian((3, 4, 2), batch=(2, 3), seed=5)
    flat2 = tuple(np.reshape(np.asarray(W), (6,) + np.shape(W)[-2:]) for W in W2)
    np.testing.assert_allclose(np.asarray(B.lemma3(W2)).reshape(6), B.lemma3(flat2), rtol=1e-13)
    one = tuple(W[0, 0] for W in W2)
    assert np.ndim(B.lemma3(one)) == 0 and np.ndim(B.spread_gap(one)[2]) == 0


def test_observed_rate_inverts_the_exponential_bound():
    """observed_rate of the curve exp(-gamma alpha t)(L0 - L*) + L* is alpha, batched too."""
    t = np.linspace(0.0, 3.0, 31)
    alphas = np.array([0.5, 2.0])
    curve = lf.bounds.loss_curve(t, 4.0, alphas[None, :], 2.0, L_star=0.25)
    assert np.allclose(lf.bounds.observed_rate(t, curve, L_star=0.25, gamma=2.0), alphas, rtol=1e-12)
    one = lf.bounds.loss_curve(t, 4.0, 0.5, 2.0)
    assert abs(lf.bounds.observed_rate(t, one, gamma=2.0) - 0.5) < 1e-12


def test_yun_uses_their_hypothesis_lambda_min_of_all_eigenvalues():
    """Issue #16.4: D_{L-1} >= lambda I needs lambda <= lambda_min over all h_{L-1} eigenvalues.

    The audit's case: W1 = [[1, 2, .5]], W2 = .5 W1^T/||W1||, so D_1 = 5 u u^T (u = W1/||W1||):
    lambda_n(D_1) = 5 (n = 1) but D_1 is singular, so Yun et al. give no positive rate.
    """
    W1 = np.array([[1.0, 2.0, 0.5]])
    W2 = 0.5 * W1.T / np.linalg.norm(W1)
    D = lf.imbalance((W1, W2))[0]
    ev = np.linalg.eigvalsh(D)
    assert ev[-1] == pytest.approx(5.0) and abs(ev[0]) < 1e-14  # the oracle: D_1 = 5 u u^T
    assert float(B.yun((W1, W2))) == 0.0
    assert float(B.unimodal((W1, W2))) == pytest.approx(5.0)  # Theorem 3 uses lambda_n: still 5
    # D_l = eps I (square layers, so lambda_min = lambda_n = eps): the rate eps^(L-1)
    for L in (2, 3, 4):
        Ws = lf.init.unimodal((2,) * (L + 1), L, [0.3] * (L - 1), seed=L)
        assert float(B.yun(Ws)) == pytest.approx(0.3 ** (L - 1), rel=1e-9)
    # a narrow last hidden layer (h_{L-1} = 1 < n = 2): D_{L-1} = 0.3 > 0, yet the product has
    # rank 1, lambda_min(T) = 0, and no rate follows
    Ws = lf.init.unimodal((2, 1, 2), 2, [0.3], seed=1)
    assert float(lf.lambda_min(Ws)) < 1e-12 and float(B.yun(Ws)) == 0.0
