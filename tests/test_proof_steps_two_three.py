"""Every non-immediate inequality in the proofs of chapters 5 and 6, on random instances.

Chapter 5 (two layers): the exact formula for lambda_min(T), the one-factor bound
(steps F3, the bound on z_1^2, the key estimate, sigma_n^2 <= (a - d_+)(a + delta_-)) and its
transposed twin, and their sum, which is the corrected Lemma 3.
Chapter 6 (three layers): Lemma G.1, both inequalities of Lemma G.6 (with the rank-one split of
their proof), and the chain of Theorem 2 (g >= the middle-layer bound >= Delta*); then the
attainment of Theorem 2: the converse of rank-one interlacing (its formula and the ties), the
wedge between A and B (Lemma G.8), the converse of r-interlacing (the proof's induction, on
pairs drawn from their spectra, boundary cases included), equality in Lemma G.6 (Lemma G.7),
and each step of the attainment proposition (which pairs are imbalances, on weights and on
pairs drawn from the conditions; the construction; lambda_min(T) = g = Delta*, with Delta*
from its definition in NumPy; tight_weights refuses exactly the pairs that fail (a) or (b)).

Shapes include n != m, h < n + m and h >= n + m; several seeds.  Both sides of each inequality
are computed independently (linflow's bounds, or plain NumPy for the elementary steps) and
compared with a tolerance scaled to eps times the size of the numbers involved.
"""
from __future__ import annotations

import numpy as np
import pytest

import linflow as lf
from linflow.widgets import theory_explorers as tx

EPS = np.finfo(np.float64).eps
TWO_LAYER_SHAPES = [(3, 8, 2), (2, 7, 5), (5, 6, 2), (1, 4, 3), (4, 3, 2), (6, 10, 1), (3, 3, 3)]
THREE_LAYER_SHAPES = [(2, 6, 5, 1), (3, 8, 8, 2), (1, 10, 4, 3), (4, 5, 9, 2), (2, 3, 3, 2)]
SEEDS = [0, 1, 2]


def tol(*xs):
    """A tolerance scaled to eps and to the size of the numbers compared."""
    return 1e4 * EPS * (1.0 + max(float(np.max(np.abs(x))) for x in xs))


def eig_desc(M):
    return np.linalg.eigvalsh(0.5 * (M + M.T))[::-1]


def pos(x):
    return max(float(x), 0.0)


def ev(vals, k):
    """k-th largest (1-based) of a decreasing list; 0 past the end (the book's convention)."""
    return float(vals[k - 1]) if k <= len(vals) else 0.0


def sigma(W, k):
    s = np.linalg.svd(W, compute_uv=False)
    return float(s[k - 1]) if k <= len(s) else 0.0


def draws(shape, seed, count=40):
    """Gaussian two-layer weights at several scales, with a few of low rank."""
    rng = np.random.default_rng(seed)
    n, h, m = shape
    out = []
    for i in range(count):
        W1 = rng.standard_normal((n, h)) * rng.uniform(0.2, 2.0)
        W2 = rng.standard_normal((h, m)) * rng.uniform(0.2, 2.0)
        if i % 7 == 0:
            W1 = W1 * np.r_[np.ones(1), 0.05 * np.ones(h - 1)]  # one dominant column
        out.append((W1, W2))
    return out


def two_layer_quantities(W1, W2):
    n, m = W1.shape[0], W2.shape[1]
    D = W1.T @ W1 - W2 @ W2.T
    evD = eig_desc(D)
    evmD = eig_desc(-D)
    return dict(
        n=n, m=m, D=D, A=W1.T @ W1, B=W2 @ W2.T,
        a=float(eig_desc(W1 @ W1.T)[-1]), b=float(eig_desc(W2.T @ W2)[-1]),
        d_plus=pos(ev(evD, n)), d_minus=pos(ev(evmD, m)),
        delta_plus=pos(evD[0]), delta_minus=pos(evmD[0]),
        s_n=sigma(W1 @ W2, n), s_m=sigma(W1 @ W2, m),
    )


# ---------------------------------------------------------------------------- chapter 5
@pytest.mark.parametrize("shape", TWO_LAYER_SHAPES)
def test_exact_two_layer_lambda_min(shape):
    for W1, W2 in draws(shape, 0, 10):
        q = two_layer_quantities(W1, W2)
        exact = float(lf.lambda_min((W1, W2)))
        assert abs(exact - (q["a"] + q["b"])) <= tol(exact, q["a"], q["b"])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", TWO_LAYER_SHAPES)
def test_one_factor_bound_and_its_steps(shape, seed):
    """Lemma 'One factor at a time': a >= d_+, (F3), z_1^2 bound, key estimate, sigma_n bound."""
    for W1, W2 in draws(shape, seed):
        q = two_layer_quantities(W1, W2)
        n, h = shape[0], shape[1]
        a, dp, dm_ = q["a"], q["d_plus"], q["delta_minus"]
        assert a >= dp - tol(a, dp)
        # the one-factor bound itself
        assert q["s_n"] ** 2 <= (a - dp) * (a + dm_) + tol(a * a, dp * dm_, q["s_n"] ** 2)
        if a <= 1e-12 or h < n:
            continue
        # Step 1: the subspace span{x} + ker A, with x a top-n eigenvector of A for a
        lam, U = np.linalg.eigh(q["A"])  # increasing
        order = np.argsort(lam)[::-1]
        lam, U = lam[order], U[:, order]
        x = U[:, n - 1]
        assert abs(lam[n - 1] - a) <= tol(lam)
        V = np.column_stack([x, U[:, n:]])  # orthonormal basis of S, first vector x
        D_S = V.T @ q["D"] @ V
        A_S = V.T @ q["A"] @ V
        assert np.allclose(A_S, np.diag(np.r_[a, np.zeros(V.shape[1] - 1)]), atol=tol(lam))
        # (F1), (F2), (F3)
        assert eig_desc(A_S - D_S)[-1] >= -tol(A_S, D_S)
        assert eig_desc(D_S)[-1] >= -dm_ - tol(D_S)
        assert eig_desc(D_S)[0] >= ev(eig_desc(q["D"]), n) - tol(D_S)
        # Step 2: the key estimate, and the bound on z_1^2 for one delta > delta_-
        xBx = float(x @ q["B"] @ x)
        assert xBx <= (a - dp) * (a + dm_) / a + tol(xBx, a + dm_)
        if dp > 0:
            delta = dm_ + 0.5
            E = D_S + delta * np.eye(V.shape[1])
            w, Z = np.linalg.eigh(E)
            eps_, z = w[-1], Z[:, -1]
            assert eps_ >= dp + delta - tol(E)
            assert z[0] ** 2 >= (a + delta) * (eps_ - delta) / (a * eps_) - tol(1.0, a + delta)
            assert E[0, 0] >= (a + delta) * dp / a - tol(E, a + delta)
        # Step 3: the test vector u = W_1 x / sqrt(a)
        u = W1 @ x / np.sqrt(a)
        assert abs(np.linalg.norm(u) - 1) <= tol(1.0, lam[0] / a)  # eigenvector error / a
        Wp = W1 @ W2
        assert q["s_n"] ** 2 <= float(u @ Wp @ Wp.T @ u) + tol(Wp @ Wp.T)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", TWO_LAYER_SHAPES)
def test_transposed_factor_and_the_sum_is_lemma3(shape, seed):
    """(b - d_-)(b + delta_+) >= sigma_m^2; the two halves add up to lf.bounds.lemma3 <= lambda_min."""
    for W1, W2 in draws(shape, seed):
        q = two_layer_quantities(W1, W2)
        b, dm, dpl = q["b"], q["d_minus"], q["delta_plus"]
        assert b >= dm - tol(b, dm)
        assert q["s_m"] ** 2 <= (b - dm) * (b + dpl) + tol(b * b, dm * dpl, q["s_m"] ** 2)
        gap = q["d_plus"] + q["d_minus"]
        Dp, Dm = q["delta_plus"] - q["d_plus"], q["delta_minus"] - q["d_minus"]
        half_a = q["d_plus"] - q["d_minus"] - Dm + np.sqrt((Dm + gap) ** 2 + 4 * q["s_n"] ** 2)
        half_b = q["d_minus"] - q["d_plus"] - Dp + np.sqrt((Dp + gap) ** 2 + 4 * q["s_m"] ** 2)
        assert 2 * q["a"] >= half_a - tol(q["a"], half_a)
        assert 2 * q["b"] >= half_b - tol(q["b"], half_b)
        bound = float(lf.bounds.lemma3((W1, W2)))
        assert abs(bound - 0.5 * (half_a + half_b)) <= tol(bound, half_a, half_b)
        assert bound <= float(lf.lambda_min((W1, W2))) + tol(bound)


def test_scalar_case_is_an_identity():
    rng = np.random.default_rng(5)
    for _ in range(50):
        w1, w2 = rng.standard_normal(2) * 2
        Ws = (np.array([[w1]]), np.array([[w2]]))
        assert abs(float(lf.bounds.lemma3(Ws)) - (w1 ** 2 + w2 ** 2)) <= tol(w1 ** 2, w2 ** 2)


def test_explorer_draws_one_bound_when_the_margin_is_zero():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = tx.two_layer_compute(lam=1.0, t_end=2.0)
    assert data["alpha2"] == pytest.approx(data["gap"], rel=1e-12)  # zero margin at this start
    fig = plt.figure()
    tx.two_layer_draw(data, fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert sum("bound" in s for s in labels) == 1 and "parts 1 = 2" in labels[-1]


# ---------------------------------------------------------------------------- chapter 6
def three_layer_draws(shape, seed, count=30):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        Ws = tuple(rng.standard_normal((a, b)) * rng.uniform(0.3, 1.5)
                   for a, b in zip(shape[:-1], shape[1:]))
        out.append(Ws)
    return out


def wedge_diag(A, B, r):
    return np.diag(np.asarray(lf.bounds.wedge(A, B, r)))


def g6_sides(A, B, r):
    mu = wedge_diag(A, B, r)
    alpha = eig_desc(A)
    E = float(np.sum(alpha) - np.sum(mu))
    Phi = float(np.sum(alpha ** 2) - np.sum(mu ** 2) + E ** 2)
    return E, Phi, mu, alpha


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,r", [(6, 1), (6, 2), (7, 3), (5, 5), (9, 4)])
def test_lemma_g6_and_the_rank_one_split(k, r, seed):
    rng = np.random.default_rng(100 * k + 10 * r + seed)
    for _ in range(25):
        G = rng.standard_normal((k, k + rng.integers(-2, 3)))
        A = G @ G.T * rng.uniform(0.2, 2.0)
        Z = rng.standard_normal((r, k)) * rng.uniform(0.2, 2.0)
        B = A - Z.T @ Z
        E, Phi, mu, alpha = g6_sides(A, B, r)
        lam_ZZ = float(eig_desc(Z @ Z.T)[-1])
        lam_ZAZ = float(eig_desc(Z @ A @ Z.T)[-1])
        assert lam_ZZ >= E - tol(E, alpha)
        assert 2 * lam_ZAZ >= Phi - tol(Phi, alpha ** 2)
        # the split for a random unit w: lambda(A') <= mu, E <= |y|^2, Phi <= 2 y^T A y
        w = rng.standard_normal(r)
        w /= np.linalg.norm(w)
        y = Z.T @ w
        A1 = A - np.outer(y, y)
        C1 = Z.T @ (np.eye(r) - np.outer(w, w)) @ Z
        assert np.allclose(A1, B + C1, atol=tol(A, Z.T @ Z))
        assert np.linalg.matrix_rank(C1, tol=1e-9 * (1 + np.abs(C1).max())) <= r - 1
        assert np.all(eig_desc(A1) <= mu + tol(A, mu))
        assert E <= y @ y + tol(E, y @ y)
        assert Phi <= 2 * y @ A @ y + tol(Phi, alpha ** 2, y @ y)
        if r == 1:  # both inequalities are equalities
            assert abs(lam_ZZ - E) <= tol(E, alpha) and abs(2 * lam_ZAZ - Phi) <= tol(Phi, alpha ** 2)


def g_of(Ws):
    W1, W2, W3 = Ws
    return (float(eig_desc(W1 @ W2 @ W2.T @ W1.T)[-1])
            + float(eig_desc(W1 @ W1.T)[-1]) * float(eig_desc(W3.T @ W3)[-1])
            + float(eig_desc(W3.T @ W2.T @ W2 @ W3)[-1]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", THREE_LAYER_SHAPES)
def test_theorem2_chain(shape, seed):
    """lambda_min >= g (Lemma G.1) >= middle-layer bound (Step 1) >= Delta* (Steps 2-4)."""
    n, h1, h2, m = shape
    for Ws in three_layer_draws(shape, seed):
        W1, W2, W3 = Ws
        lam = float(lf.lambda_min(Ws))
        g = g_of(Ws)
        assert abs(g - float(lf.bounds.lemma_g1(Ws))) <= tol(g)
        assert lam >= g - tol(lam, g)
        D21 = W2 @ W2.T - W1.T @ W1
        D23 = W2.T @ W2 - W3 @ W3.T
        E1, P1, _, _ = g6_sides(W2 @ W2.T, D21, n)
        E3, P3, _, _ = g6_sides(W2.T @ W2, D23, m)
        assert float(eig_desc(W1 @ W1.T)[-1]) >= E1 - tol(E1, W2 @ W2.T)
        assert float(eig_desc(W3.T @ W3)[-1]) >= E3 - tol(E3, W2.T @ W2)
        middle = 0.5 * P1 + E1 * E3 + 0.5 * P3
        assert g >= middle - tol(g, middle, P1, P3)
        # Step 3: D-bar below the spectra of the middle layer
        Dbar1, Dbar2 = (np.diag(np.asarray(M)) for M in lf.bounds.D_bar(D21, D23))
        assert np.all(eig_desc(W2 @ W2.T) >= Dbar1 - tol(W2 @ W2.T, Dbar1))
        assert np.all(eig_desc(W2.T @ W2) >= Dbar2 - tol(W2.T @ W2, Dbar2))
        # Step 4: the same functionals at D-bar are the four deltas, and are smaller
        d = {k: float(v) for k, v in lf.bounds.deltas(Ws).items()}
        E1b, P1b, _, _ = g6_sides(np.diag(Dbar1), D21, n)
        E3b, P3b, _, _ = g6_sides(np.diag(Dbar2), D23, m)
        assert abs(E1b - d["Delta_21"]) <= tol(E1b) and abs(E3b - d["Delta_23"]) <= tol(E3b)
        assert abs(P1b - (d["Delta_21_2"] + d["Delta_21"] ** 2)) <= tol(P1b, Dbar1 ** 2)
        assert E1 >= E1b - tol(E1, E1b) and E3 >= E3b - tol(E3, E3b)
        assert P1 >= P1b - tol(P1, P1b) and P3 >= P3b - tol(P3, P3b)
        ds = float(lf.bounds.delta_star(Ws))
        assert middle >= ds - tol(middle, ds, P1b, P3b)


def test_theorem2_monotonicity_of_psi():
    """psi(x, beta) = x^2 - min(x, beta)^2 is non-decreasing on x >= 0 (Step 2)."""
    xs = np.linspace(0, 5, 501)
    for beta in (-3.0, -0.5, 0.0, 0.7, 2.0, np.inf):
        psi = xs ** 2 - np.minimum(xs, beta) ** 2
        assert np.all(np.diff(psi) >= -1e-12)


def test_three_layer_explorer_caption_claims():
    """The caption: within a factor 2 of min_t lambda_min for n = 1; far below for n = 5, h = 32."""
    for h in (4, 32):
        d = tx.three_layer_compute(h=h, n=1)
        ratio = float(np.min(d["lambda_min"])) / d["delta_star"]
        assert 1.0 <= ratio < 2.0, (h, ratio)
    d = tx.three_layer_compute(h=32, n=5)
    assert float(np.min(d["lambda_min"])) > 10 * d["delta_star"] > 0


def test_two_layer_explorer_text_claims():
    """Chapter 5's explorer text: flat bound at lambda = 0 and a flow stuck on the plateau of the
    s = 0.5 mode (loss 0.5**2 / 2); bound and flow steeper as lambda grows; one bound per frame."""
    frames = [tx.two_layer_compute(lam=lam) for lam in (0.0, 1.0, 2.0, 4.0)]
    assert abs(frames[0]["alpha2"]) < 1e-12
    assert abs(frames[0]["loss"][-1] - 0.125) < 0.01
    assert all(f["loss"][-1] < 1e-6 for f in frames[1:])
    assert all(abs(f["alpha2"] - f["gap"]) <= 1e-12 * (1 + f["gap"]) for f in frames)
    assert np.all(np.diff([f["alpha2"] for f in frames]) > 0)
    assert np.all(np.diff([f["measured"] for f in frames]) > 0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(2, 6, 3, 1), (3, 2, 7, 2), (1, 9, 4, 3), (2, 5, 2, 1)])
def test_dbar_convention_for_unequal_middle_widths(shape, seed):
    """Erratum E13: with h_1 != h_2 the missing eigenvalues of Definition 2 may be read as
    -inf (linflow) or as any value <= 0 (here 0, computed with NumPy): the same D-bar, and Step 3
    of the proof of Theorem 2 (lambda_i(W_2W_2^T) >= D-bar_ii for every i) holds."""
    n, h1, h2, m = shape
    for Ws in three_layer_draws(shape, seed):
        W1, W2, W3 = Ws
        D21 = W2 @ W2.T - W1.T @ W1
        D23 = W2.T @ W2 - W3 @ W3.T
        a, b = eig_desc(D21), eig_desc(D23)
        h = max(h1, h2)
        a0, b0 = (np.concatenate([v, np.zeros(h - len(v))]) for v in (a, b))
        zero_pad = np.maximum(np.maximum(a0, b0), 0.0)
        Dbar1, Dbar2 = (np.diag(np.asarray(M)) for M in lf.bounds.D_bar(D21, D23))
        assert np.allclose(Dbar1, zero_pad[:h1], rtol=0, atol=tol(a, b))
        assert np.allclose(Dbar2, zero_pad[:h2], rtol=0, atol=tol(a, b))
        assert np.all(eig_desc(W2 @ W2.T) >= zero_pad[:h1] - tol(W2 @ W2.T, a, b))
        assert np.all(eig_desc(W2.T @ W2) >= zero_pad[:h2] - tol(W2.T @ W2, a, b))
        lam, ds = float(lf.lambda_min(Ws)), float(lf.bounds.delta_star(Ws))
        assert lam >= ds - tol(lam, ds)


# ------------------------------------------------- chapter 6: the bound is attained
def interlacing_pair(rng, k, ties):
    """Decreasing alpha and mu with alpha_1 >= mu_1 >= alpha_2 >= ... >= alpha_k >= mu_k."""
    alpha = np.sort(rng.standard_normal(k))[::-1]
    if ties:
        alpha = np.sort(np.round(alpha))[::-1]  # runs of equal values
    lower = np.r_[alpha[1:], alpha[-1] - 1.0]
    mu = lower + rng.uniform(0, 1, k) * (alpha - lower)
    if ties:  # some mu at an end of its interval
        pick = rng.random(k)
        mu = np.where(pick < 0.3, alpha, np.where(pick > 0.7, lower, mu))
    return alpha, mu


def rank_one_y(alpha, mu):
    """The proof's y for decreasing interlacing alpha, mu (exact ties), checking its steps: a
    run of equal alpha forces mu_i = ... = mu_{i+s-1} = alpha_i, the shortened lists
    interlace, every factor of the product is >= 0; y is 0 on the deleted indices."""
    k = len(alpha)
    keep = [0] + [i for i in range(1, k) if alpha[i] < alpha[i - 1]]
    ends = keep[1:] + [k]
    for i0, i1 in zip(keep, ends):  # the run i0..i1-1 forces mu_{i0..i1-2} = alpha_{i0}
        assert np.all(mu[i0:i1 - 1] == alpha[i0])
    a = alpha[keep]
    c = np.array([mu[e - 1] for e in ends])
    assert np.all(a[:-1] >= c[:-1]) and np.all(c[:-1] >= a[1:]) and a[-1] >= c[-1]
    y = np.zeros(k)
    for t, i in enumerate(keep):
        factors = [(a[t] - c[j]) / (a[t] - a[j]) for j in range(len(a)) if j != t]
        assert all(f >= 0 for f in factors)
        y[i] = np.sqrt((a[t] - c[t]) * np.prod(factors))
    return y


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_rank_one_converse(k, seed):
    """Lemma (converse of rank-one interlacing): with distinct alpha, every factor of the
    product is >= 0 and the formula's y gives diag(alpha) - y y^T the spectrum mu; with runs of
    equal alpha the run forces mu_i = ... = mu_{i+s-1} = alpha_i, the shortened lists interlace,
    and y (zero on the deleted indices) still gives mu."""
    rng = np.random.default_rng(10 * k + seed)
    for trial in range(30):
        ties = trial % 2 == 1
        alpha, mu = interlacing_pair(rng, k, ties)
        y = rank_one_y(alpha, mu)
        lam = eig_desc(np.diag(alpha) - np.outer(y, y))
        assert np.allclose(lam, mu, atol=tol(alpha, mu) * k)
        if not ties:  # the polynomial identities of the proof (distinct alpha)
            p = lambda x: np.prod(alpha - x)  # noqa: E731
            q = lambda x: np.prod(mu - x)  # noqa: E731
            p_i = lambda i, x: np.prod(np.delete(alpha, i) - x)  # noqa: E731
            for x in rng.uniform(-3, 3, 4):  # det(diag(alpha) - yy^T - xI) = p - sum y_i^2 p_i
                det = np.linalg.det(np.diag(alpha - x) - np.outer(y, y))
                terms = [y[i] ** 2 * p_i(i, x) for i in range(k)]
                rhs = p(x) - sum(terms)
                scale = 1 + abs(p(x)) + sum(abs(v) for v in terms)
                assert abs(det - rhs) <= tol(alpha, mu, y * y) * scale
            for i in range(k):  # (p - q)(alpha_i) = y_i^2 p_i(alpha_i)
                lhs, rhs = p(alpha[i]) - q(alpha[i]), y[i] ** 2 * p_i(i, alpha[i])
                assert abs(lhs - rhs) <= tol(alpha, mu) * (1 + abs(q(alpha[i])))


def random_interlaced(rng, k, r):
    """A >=_r B from a rank-r positive update (Weyl, Lemma G.3), A positive semidefinite."""
    G = rng.standard_normal((k, k + rng.integers(-2, 3)))
    A = G @ G.T * rng.uniform(0.2, 2.0)
    if rng.random() < 0.3:  # repeated eigenvalues (and 0), still positive semidefinite
        Q = np.linalg.qr(rng.standard_normal((k, k)))[0]
        A = Q @ np.diag(np.round(eig_desc(A))) @ Q.T
    Z = rng.standard_normal((r, k)) * rng.uniform(0.2, 2.0)
    return A, A - Z.T @ Z


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,r", [(6, 1), (6, 2), (7, 3), (5, 5), (4, 6)])
def test_wedge_lies_between_A_and_B(k, r, seed):
    """Lemma G.8, as proved: alpha_{i+1} <= mu_i <= alpha_i and mu_{i+r-1} <= beta_i <= mu_i."""
    rng = np.random.default_rng(7 * k + r + seed)
    for _ in range(25):
        A, B = random_interlaced(rng, k, r)
        alpha, beta = eig_desc(A), eig_desc(B)
        mu = wedge_diag(A, B, r)
        t = tol(A, B)
        assert np.all(np.diff(mu) <= t)
        assert np.all(mu <= alpha + t) and np.all(mu[:-1] >= alpha[1:] - t)
        assert np.all(beta <= mu + t)
        if 2 <= r <= k:
            assert np.all(mu[r - 1:] <= beta[: k - r + 1] + t)


def interlaced_from_spectra(rng, k, r, psd):
    """A >=_r B drawn from the spectra, not from a rank-r update: beta_i anywhere in
    [alpha_(i+r), alpha_i] (below alpha_k past the end), some on an end of the range, some
    alpha tied; random eigenbases.  A is positive semidefinite when psd."""
    alpha = np.sort(rng.standard_normal(k) * rng.uniform(0.5, 2))[::-1]
    if psd:
        alpha = np.sort(np.abs(alpha))[::-1]
    if rng.random() < 0.4:
        alpha = np.sort(np.round(alpha))[::-1]  # runs of equal values (and 0)
    lower = np.concatenate([alpha[r:], alpha[-1] - rng.uniform(0.1, 2, min(r, k))])
    beta = lower + rng.uniform(0, 1, k) * (alpha - lower)
    pick = rng.random(k)
    beta = np.where(pick < 0.2, alpha, np.where(pick > 0.8, lower, np.clip(beta, lower, alpha)))
    beta = np.sort(beta)[::-1]  # sorting keeps lower_i <= beta_i <= alpha_i (both decrease)
    P, U = (np.linalg.qr(rng.standard_normal((k, k)))[0] for _ in range(2))
    A, B = P @ np.diag(alpha) @ P.T, U @ np.diag(beta) @ U.T
    return 0.5 * (A + A.T), 0.5 * (B + B.T), alpha, beta


def converse_by_the_proof(alpha, beta, r):
    """Z, V with diag(alpha) - Z^T Z = V diag(beta) V^T, built as the induction of the proof
    (P = U = I here), checking Lemma G.8 and the rank-one step at each level."""
    k = len(alpha)
    mu = np.minimum(alpha, shifted(beta, r))  # the wedge
    assert np.all(mu <= alpha) and np.all(alpha[1:] <= mu[:-1])  # alpha, mu interlace
    assert np.all(beta <= mu) and np.all(mu[r - 1:] <= beta[: max(k - r + 1, 0)])
    y = rank_one_y(alpha, mu)
    lam, Q = np.linalg.eigh(np.diag(alpha) - np.outer(y, y))
    lam, Q = lam[::-1], Q[:, ::-1]
    assert np.allclose(lam, mu, atol=1e4 * EPS * (1 + np.abs(alpha).max()) * k)
    if r == 1:
        assert np.array_equal(mu, beta)
        return y[None, :], Q
    Z1, V1 = converse_by_the_proof(mu, beta, r - 1)
    return np.vstack([Z1 @ Q.T, y[None, :]]), Q @ V1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,r", [(1, 1), (5, 1), (6, 2), (7, 3), (5, 5), (4, 6)])
def test_converse_of_r_interlacing_on_any_interlacing_pair(k, r, seed):
    """Converse of r-interlacing on pairs drawn from their spectra (boundary cases and ties
    included): the proof's induction and lf.bounds.interlacing_converse both give
    A - Z^T Z = V B V^T with V orthogonal and the wedge's spectrum for A - y y^T, y the last
    row; for A >= 0 and r <= k both inequalities of Lemma G.6 are equalities (Lemma G.7)."""
    rng = np.random.default_rng(13 * k + r + seed)
    for trial in range(15):
        A, B, alpha, beta = interlaced_from_spectra(rng, k, r, psd=trial % 2 == 0)
        t = tol(A, B) * k
        assert np.all(beta <= alpha) and np.all(beta[: max(k - r, 0)] >= alpha[r:])  # A >=_r B
        Zd, Vd = converse_by_the_proof(alpha, beta, r)
        P, U = np.linalg.eigh(A)[1][:, ::-1], np.linalg.eigh(B)[1][:, ::-1]
        proof = (Zd @ P.T, P @ Vd @ U.T)  # back from the eigenbases
        package = tuple(np.asarray(X) for X in lf.bounds.interlacing_converse(A, B, r))
        mu = wedge_diag(A, B, r)
        for Z, V in (proof, package):
            assert Z.shape == (r, k) and np.allclose(V.T @ V, np.eye(k), atol=t)
            assert np.allclose(A - Z.T @ Z, V @ B @ V.T, atol=t * (1 + np.abs(Z).max()) ** 2)
            assert np.allclose(eig_desc(A - np.outer(Z[-1], Z[-1])), mu, atol=t)
            if trial % 2 == 0 and r <= k:
                E, Phi, _, _ = g6_sides(A, B, r)
                assert abs(eig_desc(Z @ Z.T)[-1] - E) <= t
                assert abs(2 * eig_desc(Z @ A @ Z.T)[-1] - Phi) <= t * (1 + abs(Phi))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,r", [(6, 1), (6, 2), (7, 3), (5, 5), (9, 4)])
def test_lemma_g7_equality(k, r, seed):
    """The converse lemma's Z: A - Z^T Z = V B V^T; its last row y gives A - y y^T the spectrum
    of the wedge; |y|^2 = E(mu), 2 y^T A y = Phi(mu) (the traces); and both inequalities of
    Lemma G.6 are equalities, with e_r an eigenvector of ZZ^T and ZAZ^T for their smallest
    eigenvalues."""
    rng = np.random.default_rng(11 * k + r + seed)
    for _ in range(20):
        A, B = random_interlaced(rng, k, r)
        Z, V = (np.asarray(X) for X in lf.bounds.interlacing_converse(A, B, r))
        t = tol(A, B, Z.T @ Z)
        assert np.allclose(A - Z.T @ Z, V @ B @ V.T, atol=t)
        E, Phi, mu, alpha = g6_sides(A, B, r)
        y = Z[-1]
        assert np.allclose(eig_desc(A - np.outer(y, y)), mu, atol=t)
        A1 = A - np.outer(y, y)
        assert abs(np.trace(A1 @ A1) - (np.trace(A @ A) - 2 * y @ A @ y + (y @ y) ** 2)) <= t * (1 + np.trace(A @ A))
        assert abs(y @ y - E) <= t and abs(2 * y @ A @ y - Phi) <= t * (1 + abs(Phi))
        ZZ, ZAZ = Z @ Z.T, Z @ A @ Z.T
        assert abs(eig_desc(ZZ)[-1] - E) <= t and abs(2 * eig_desc(ZAZ)[-1] - Phi) <= t * (1 + abs(Phi))
        e = np.eye(r)[-1]
        for M in (ZZ, ZAZ):  # e_r is an eigenvector for lambda_min, up to round-off in the
            # form |(M - lambda_min) e|^2 <= ||M - lambda_min|| e^T (M - lambda_min) e
            lam = eig_desc(M)
            res = M @ e - lam[-1] * e
            assert res @ res <= (lam[0] - lam[-1]) * (e @ M @ e - lam[-1]) + t * (1 + lam[0]) ** 2
            assert abs(e @ M @ e - lam[-1]) <= t * (1 + lam[0])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", THREE_LAYER_SHAPES + [(3, 2, 5, 1), (1, 4, 2, 5), (4, 3, 3, 4)])
def test_attainment_proposition_steps(shape, seed):
    """Necessity of (a) and (b) on random weights; the construction: S S^T = D-bar_h1,
    S^T S = D-bar_h2, the imbalances, the four Gram matrices of g, E = u v^T with
    <T E, E> = g = Delta*, and lambda_min(T) = Delta*."""
    n, h1, h2, m = shape
    k = min(h1, h2)
    for Ws in three_layer_draws(shape, seed, count=10):
        W1, W2, W3 = Ws
        D21, D23 = W2 @ W2.T - W1.T @ W1, W2.T @ W2 - W3 @ W3.T
        a, b = eig_desc(D21), eig_desc(D23)
        d1, d3 = (np.diag(np.asarray(M)) for M in lf.bounds.D_bar(D21, D23))
        t = tol(D21, D23)
        # (b): lambda_i(D21) <= 0 for i > h2 and lambda_i(D23) <= 0 for i > h1; D-bar is 0 there
        assert np.all(a[k:] <= t) and np.all(b[k:] <= t)
        assert np.all(np.abs(d1[k:]) <= t) and np.all(np.abs(d3[k:]) <= t)
        # (a): D-bar_h1 >=_n D21 and D-bar_h2 >=_m D23
        assert np.all(a <= d1 + t) and np.all(d1[n:] <= a[: max(h1 - n, 0)] + t)
        assert np.all(b <= d3 + t) and np.all(d3[m:] <= b[: max(h2 - m, 0)] + t)
        check_construction(D21, D23, n, m)


def check_construction(D21, D23, n, m):
    """The proof's construction, step by step, for a pair satisfying (a) and (b)."""
    h1, h2 = D21.shape[0], D23.shape[0]
    k = min(h1, h2)
    d1, d3 = (np.diag(np.asarray(M)) for M in lf.bounds.D_bar(D21, D23))
    t = tol(D21, D23)
    d = d1[:k]
    S = np.zeros((h1, h2))
    S[:k, :k] = np.diag(np.sqrt(np.maximum(d, 0)))
    assert np.allclose(S @ S.T, np.diag(d1), atol=t) and np.allclose(S.T @ S, np.diag(d3), atol=t)
    Z1, V1 = (np.asarray(X) for X in lf.bounds.interlacing_converse(np.diag(d1), D21, n))
    Z3, V3 = (np.asarray(X) for X in lf.bounds.interlacing_converse(np.diag(d3), D23, m))
    T1, T2, T3 = Z1 @ V1, V1.T @ S @ V3, V3.T @ Z3.T
    assert np.allclose(T2 @ T2.T - T1.T @ T1, D21, atol=t)
    assert np.allclose(T2.T @ T2 - T3 @ T3.T, D23, atol=t)
    assert np.allclose(T1 @ T1.T, Z1 @ Z1.T, atol=t)
    assert np.allclose(T1 @ T2 @ T2.T @ T1.T, Z1 @ np.diag(d1) @ Z1.T, atol=t * (1 + d1.max()))
    # the common eigenvectors u, v and g = Delta*
    q = lf.bounds.deltas((T1, T2, T3))
    q = {key: float(v) for key, v in q.items()}
    if n > h1:
        assert q["Delta_21"] == 0 and q["Delta_21_2"] == 0
        u = np.linalg.svd(T1.T)[2][-1]  # a unit vector of ker W_1^T
        assert np.allclose(T1.T @ u, 0, atol=t)
    else:
        u = np.eye(n)[-1]
    v = np.linalg.svd(T3)[2][-1] if m > h2 else np.eye(m)[-1]
    for M, w in ((T1 @ T1.T, u), (T1 @ T2 @ T2.T @ T1.T, u), (T3.T @ T3, v),
                 (T3.T @ T2.T @ T2 @ T3, v)):  # w: a unit eigenvector for lambda_min
        lam = eig_desc(M)
        assert abs(w @ M @ w - lam[-1]) <= t * (1 + lam[0]) ** 2
    assert abs(eig_desc(T1 @ T1.T)[-1] - q["Delta_21"]) <= t
    E = np.outer(u, v)
    TE = np.asarray(lf.T_matrix((T1, T2, T3))) @ E.reshape(-1, order="F")
    ds = delta_star_by_definition(D21, D23, n, m)
    g = g_of((T1, T2, T3))
    big = t * (1 + abs(ds)) * (1 + np.abs(D21).max() + np.abs(D23).max())
    assert abs(float(lf.bounds.delta_star((T1, T2, T3))) - ds) <= big
    assert abs(float(E.reshape(-1, order="F") @ TE) - g) <= big
    assert abs(g - ds) <= big
    assert abs(float(lf.lambda_min((T1, T2, T3))) - ds) <= big


def padded(v, h, fill):
    return np.concatenate([v, np.full(h - len(v), fill)])[:h] if len(v) < h else v[:h]


def shifted(v, r):
    """(v_{i+1-r})_i, i = 1..len(v), with +inf where i + 1 - r <= 0 (Definition 1)."""
    return np.concatenate([np.full(r - 1, np.inf), v])[: len(v)]


def dbar_by_definition(D21, D23):
    """The diagonals of D-bar_h1 and D-bar_h2 from Definition 2 (-inf past each order)."""
    a, b = eig_desc(D21), eig_desc(D23)
    h = max(len(a), len(b))
    d = np.maximum(np.maximum(padded(a, h, -np.inf), padded(b, h, -np.inf)), 0.0)
    return d[: len(a)], d[: len(b)]


def delta_star_by_definition(D21, D23, n, m):
    """Delta* from Definitions 1 and 2 and Theorem 2, in plain NumPy."""
    d1, d3 = dbar_by_definition(D21, D23)
    total = []
    for d, lam, r in ((d1, eig_desc(D21), n), (d3, eig_desc(D23), m)):
        mu = np.minimum(d, shifted(lam, r))  # the diagonal of D-bar ^_r D
        E = float(np.sum(d - mu))
        total.append((E, float(np.sum(d ** 2 - mu ** 2)) + E ** 2))
    (E1, P1), (E3, P3) = total
    return 0.5 * P1 + E1 * E3 + 0.5 * P3


def conditions_slack(D21, D23, n, m):
    """The least slack of the inequalities (a) and (b) of the attainment proposition (> 0: all
    hold strictly; < 0: one fails by that much), from the definitions, in plain NumPy.  The
    upper halves of (a), lambda_i(D21) <= lambda_i(D-bar_h1) and its twin, hold by the
    definition of D-bar (often with equality) and are checked, not counted in the slack."""
    a, b = eig_desc(D21), eig_desc(D23)
    h1, h2 = len(a), len(b)
    d1, d3 = dbar_by_definition(D21, D23)
    assert np.all(a <= d1) and np.all(b <= d3)
    gaps = [a[: max(h1 - n, 0)] - d1[n:], b[: max(h2 - m, 0)] - d3[m:]]  # (a), lower halves
    gaps += [-a[h2:], -b[h1:]]                                             # (b)
    return min([float(np.min(g)) for g in gaps if g.size] + [np.inf])


def feasible_pair(rng, shape):
    """Symmetric (D21, D23) satisfying (a) and (b) by construction from spectra, not from
    weights: random spectra pushed into the ranges the conditions allow, some eigenvalues on
    the boundary of their range (ties), in random eigenbases."""
    n, h1, h2, m = shape
    k = min(h1, h2)
    a = np.sort(rng.standard_normal(h1) * rng.uniform(0.5, 2))[::-1]
    b = np.sort(rng.standard_normal(h2) * rng.uniform(0.5, 2))[::-1]
    a[k:], b[k:] = np.minimum(a[k:], 0), np.minimum(b[k:], 0)          # (b)
    D21, D23 = np.diag(a), np.diag(b)
    d1, d3 = dbar_by_definition(D21, D23)
    lo1 = padded(d1[n:], h1, -np.inf)                                  # lambda_(i+n)(D-bar)
    lo3 = padded(d3[m:], h2, -np.inf)
    a, b = np.maximum(a, lo1), np.maximum(b, lo3)                       # (a), D-bar unchanged
    if rng.random() < 0.5:  # put some eigenvalues on an end of their range
        pick = rng.random(h1) < 0.3
        a = np.where(pick & np.isfinite(lo1), lo1, a)
        pick = rng.random(h2) < 0.3
        b = np.where(pick & np.isfinite(lo3), lo3, b)
    Q1 = np.linalg.qr(rng.standard_normal((h1, h1)))[0]
    Q3 = np.linalg.qr(rng.standard_normal((h2, h2)))[0]
    D21, D23 = Q1 @ np.diag(a) @ Q1.T, Q3 @ np.diag(b) @ Q3.T
    return 0.5 * (D21 + D21.T), 0.5 * (D23 + D23.T)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(2, 6, 5, 1), (3, 8, 8, 2), (1, 4, 2, 5), (4, 3, 3, 4),
                                   (2, 3, 6, 1), (5, 7, 4, 3)])
def test_pairs_from_spectra_satisfy_the_conditions_and_are_realized(shape, seed):
    """Sufficiency on pairs that do not come from weights: the construction realizes every
    pair satisfying (a) and (b), boundary cases included, with lambda_min(T) = g = Delta*."""
    n, h1, h2, m = shape
    rng = np.random.default_rng(1000 * seed + sum(shape))
    for _ in range(8):
        D21, D23 = feasible_pair(rng, shape)
        d1, d3 = dbar_by_definition(D21, D23)
        assert conditions_slack(D21, D23, n, m) >= -tol(D21, D23)
        check_construction(D21, D23, n, m)
        Ts = tuple(np.asarray(W) for W in lf.bounds.tight_weights(D21, D23, n, m))
        ds = delta_star_by_definition(D21, D23, n, m)
        big = tol(D21, D23) * (1 + abs(ds)) * (1 + np.abs(D21).max() + np.abs(D23).max())
        assert abs(g_of(Ts) - ds) <= big and abs(float(lf.lambda_min(Ts)) - ds) <= big
        assert ds >= -big  # Delta* >= 0 on a pair that occurs


@pytest.mark.parametrize("seed", SEEDS)
def test_tight_weights_refuses_exactly_the_pairs_that_fail_the_conditions(seed):
    """The package decides feasibility as the proposition does: conditions (a) and (b)
    evaluated here from the definitions agree with tight_weights refusing or realizing."""
    rng = np.random.default_rng(seed)
    seen = {True: 0, False: 0}
    for _ in range(80):
        n, h1, h2, m = (int(x) for x in rng.integers(1, 6, size=4))
        A, B = rng.standard_normal((h1, h1)), rng.standard_normal((h2, h2))
        D21 = A + A.T + rng.integers(-1, 4) * np.eye(h1)
        D23 = B + B.T + rng.integers(-1, 4) * np.eye(h2)
        slack = conditions_slack(D21, D23, n, m)
        if abs(slack) < 1e-6:
            continue  # too close to the boundary to call
        feasible = slack > 0
        seen[feasible] += 1
        if feasible:
            Ts = tuple(np.asarray(W) for W in lf.bounds.tight_weights(D21, D23, n, m))
            W1, W2, W3 = Ts
            t = tol(D21, D23)
            assert np.allclose(W2 @ W2.T - W1.T @ W1, D21, atol=t)
            assert np.allclose(W2.T @ W2 - W3 @ W3.T, D23, atol=t)
        else:
            with pytest.raises(ValueError, match="not the imbalances of any weights"):
                lf.bounds.tight_weights(D21, D23, n, m)
    assert seen[True] >= 3 and seen[False] >= 3, seen


def _orthonormal(rng, h, k):
    return np.linalg.qr(rng.standard_normal((h, k)))[0]


def _unimodal_index_three(rng, n, h1, h2, m):
    """Weights with D_1, D_2 >= 0 and, when min(h1, h2) >= n, lambda_n(D_1), lambda_n(D_2) > 0:
    W_2 = V C U^T, W_3 = U B with B B^T <= s^2 C^T C, W_1 = [(C C^T + S_1)^{1/2} V^T; 0]."""
    k = min(n, h1, h2)
    V, U = _orthonormal(rng, h1, k), _orthonormal(rng, h2, k)
    C = rng.standard_normal((k, k)) + 2 * np.eye(k)
    w, Q = np.linalg.eigh(C.T @ C)
    G = rng.standard_normal((k, m))
    B = 0.6 * (Q * np.sqrt(w)) @ Q.T @ G / np.linalg.norm(G, 2)
    A = rng.standard_normal((k, k))
    S1 = A @ A.T + 0.5 * np.eye(k)
    w1, Q1 = np.linalg.eigh(C @ C.T + S1)
    W1 = np.zeros((n, h1))
    W1[:k] = (Q1 * np.sqrt(w1)) @ Q1.T @ V.T
    return W1, V @ C @ U.T, U @ B


@pytest.mark.parametrize("dims", [(2, 5, 4, 1), (3, 3, 6, 2), (2, 6, 1, 3), (4, 2, 2, 1),
                                  (3, 4, 4, 3), (2, 2, 2, 2)])
@pytest.mark.parametrize("seed", SEEDS)
def test_unimodal_index_three_steps(dims, seed):
    """Chapter 6, solution of the unimodal exercise, l* = 3: Delta_23 = Delta_23^(2) = 0,
    Delta_21 = delta_1 + delta_2, Delta_21^(2) = delta_2^2 - delta_1^2 (delta_l = lambda_n(D_l),
    0 when D_l has fewer than n rows), so Delta* = d~_(1) d~_(2); and l* = 1 by reversing the
    network."""
    n, h1, h2, m = dims
    Ws = _unimodal_index_three(np.random.default_rng(seed), n, h1, h2, m)
    D1, D2 = (lf.to_numpy(D) for D in lf.imbalance(Ws))
    assert np.min(eig_desc(D1)) > -1e-9 and np.min(eig_desc(D2)) > -1e-9       # unimodal, l* = 3

    def lam_n(D):
        return eig_desc(D)[n - 1] if D.shape[0] >= n else 0.0

    d1, d2 = lam_n(D1), lam_n(D2)
    q = {k: float(v) for k, v in lf.bounds.deltas(Ws).items()}
    t = tol(D1, D2, d1 * d1, d2 * d2)
    assert abs(q["Delta_23"]) <= t and abs(q["Delta_23_2"]) <= t
    if h1 >= n:
        assert abs(q["Delta_21"] - (d1 + d2)) <= t
        assert abs(q["Delta_21_2"] - (d2 * d2 - d1 * d1)) <= t
    else:
        assert abs(q["Delta_21"]) <= t and abs(d2) <= t
    dtil = lf.to_numpy(lf.bounds.cumulative_imbalance(Ws))
    assert abs(float(lf.bounds.delta_star(Ws)) - float(np.prod(dtil))) <= t
    # the reversed network: imbalances -D_2, -D_1, unimodal with index 1, the same Delta*
    R = tuple(np.ascontiguousarray(lf.to_numpy(W).T) for W in Ws[::-1])
    E1, E2 = (lf.to_numpy(D) for D in lf.imbalance(R))
    assert np.allclose(E1, -D2, atol=t) and np.allclose(E2, -D1, atol=t)
    assert abs(float(lf.bounds.delta_star(R)) - float(lf.bounds.delta_star(Ws))) <= t
    assert abs(float(lf.bounds.delta_star(R))
               - float(np.prod(lf.to_numpy(lf.bounds.cumulative_imbalance(R))))) <= t
