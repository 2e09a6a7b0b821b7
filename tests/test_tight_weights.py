"""lf.bounds.tight_weights and lf.bounds.interlacing_converse: the attainment of Theorem 2.

Oracles, each computed independently of the construction: the imbalances of the returned
weights (plain NumPy products) must be the given ones; g of Lemma G.1 (plain NumPy
eigenvalues of the three Gram matrices) must equal Delta* (lf.bounds.delta_star_from, the
definition through the spectra of the imbalances); and lambda_min(T) (lf.lambda_min, the
exact smallest eigenvalue of the preconditioner) must be >= Delta* (Theorem 2) and, by the
attainment proposition of chapter 6, equal to it.  Inputs cover every order of n, h_1, h_2,
m, ties (low-rank and integer weights, a zero middle layer), zero and negative eigenvalues,
and pairs that are not imbalances of any weights (refused).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import linflow as lf

EPS = np.finfo(np.float64).eps
WIDTHS = list(itertools.product((1, 2, 4), (1, 3, 5), (1, 2, 4), (1, 3)))  # (n, h1, h2, m)


def tol(*xs):
    return 1e5 * EPS * (1.0 + max(float(np.max(np.abs(x))) for x in xs))


def low(M):
    return float(np.linalg.eigvalsh(0.5 * (M + M.T))[0])


def g_of(W1, W2, W3):
    """g of Lemma G.1 from its definition."""
    A, B = W1 @ W2, W2 @ W3
    return low(A @ A.T) + low(W1 @ W1.T) * low(W3.T @ W3) + low(B.T @ B)


def draw(widths, seed, kind):
    rng = np.random.default_rng(seed)
    n, h1, h2, m = widths
    Ws = [rng.standard_normal(s) * rng.uniform(0.3, 2.0) for s in ((n, h1), (h1, h2), (h2, m))]
    if kind == "low_rank":  # repeated zero eigenvalues in the imbalances
        Ws[0][:, : (h1 + 1) // 2] = 0.0
        Ws[2][: h2 // 2] = 0.0
    elif kind == "integer":  # exact ties between eigenvalues of D21, D23 and 0
        Ws = [np.round(W) for W in Ws]
    elif kind == "zero_middle":  # D21, D23 <= 0, D-bar = 0
        Ws[1] = np.zeros((h1, h2))
    elif kind == "balanced_middle":  # repeated eigenvalues of the middle Gram matrices
        Ws[1] = np.eye(h1, h2) * 1.5
    return tuple(Ws)


def imbalances(Ws):
    W1, W2, W3 = Ws
    return W2 @ W2.T - W1.T @ W1, W2.T @ W2 - W3 @ W3.T


def check_attains(D21, D23, n, m):
    T = lf.bounds.tight_weights(D21, D23, n, m)
    T = tuple(np.asarray(W) for W in T)
    h1, h2 = D21.shape[0], D23.shape[0]
    assert [W.shape for W in T] == [(n, h1), (h1, h2), (h2, m)]
    E21, E23 = imbalances(T)
    assert np.allclose(E21, D21, rtol=0, atol=tol(D21, D23))
    assert np.allclose(E23, D23, rtol=0, atol=tol(D21, D23))
    ds = float(lf.bounds.delta_star_from(D21, D23, n, m))
    g = g_of(*T)
    lam = float(lf.lambda_min(T))
    scale = tol(ds, D21, D23) * (1 + np.abs(D21).max() + np.abs(D23).max())
    assert ds >= -scale  # Delta* >= 0 always
    assert abs(g - ds) <= scale, (g, ds)
    assert lam >= ds - scale  # Theorem 2
    assert abs(lam - ds) <= scale, (lam, ds)  # attained on lambda_min itself
    return T


@pytest.mark.parametrize("kind", ["gaussian", "low_rank", "integer", "zero_middle", "balanced_middle"])
@pytest.mark.parametrize("widths", WIDTHS, ids=str)
def test_attains_delta_star_with_the_given_imbalances(widths, kind):
    n, h1, h2, m = widths
    for seed in range(4):
        D21, D23 = imbalances(draw(widths, 1000 * seed + sum(widths), kind))
        check_attains(D21, D23, n, m)


def test_delta_star_positive_and_negative_eigenvalues_in_both_imbalances():
    """Draws where D21 and D23 both have eigenvalues of each sign and Delta* > 0 (the case of
    interest: a positive rate); the attaining weights exist there too."""
    seen = 0
    for seed in range(60):
        Ws = lf.init.gaussian((2, 6, 5, 2), "fan_out", seed=seed)
        D21, D23 = imbalances(Ws)
        a, b = np.linalg.eigvalsh(D21), np.linalg.eigvalsh(D23)
        if a.min() < -1e-9 < 1e-9 < a.max() and b.min() < -1e-9 < 1e-9 < b.max():
            if float(lf.bounds.delta_star_from(D21, D23, 2, 2)) > 1e-6:
                check_attains(D21, D23, 2, 2)
                seen += 1
    assert seen >= 5


@pytest.mark.parametrize("seed", range(6))
def test_a_pair_is_feasible_exactly_when_the_conditions_hold(seed):
    """Random symmetric pairs: refused with the message of the proposition, or realized
    exactly (so the conditions (a), (b) are sufficient); both outcomes occur."""
    rng = np.random.default_rng(seed)
    outcomes = set()
    for _ in range(60):
        n, h1, h2, m = rng.integers(1, 5, size=4)
        A, B = rng.standard_normal((h1, h1)), rng.standard_normal((h2, h2))
        D21 = A + A.T + rng.integers(0, 4) * np.eye(h1)
        D23 = B + B.T + rng.integers(0, 4) * np.eye(h2)
        try:
            T = lf.bounds.tight_weights(D21, D23, int(n), int(m))
        except ValueError as exc:
            assert "not the imbalances of any weights" in str(exc)
            outcomes.add("refused")
            continue
        check_attains(D21, D23, int(n), int(m))
        assert T is not None
        outcomes.add("realized")
    assert outcomes == {"refused", "realized"}


def test_infeasible_pairs_name_the_condition():
    # D21 = -I of order 3 needs W_1^T W_1 >= I_3, of rank 3 > n = 1: condition (a) fails
    with pytest.raises(ValueError, match=r"not the imbalances.*D_bar.*r = n, D = D21"):
        lf.bounds.tight_weights(-np.eye(3), np.zeros((3, 3)), 1, 1)
    with pytest.raises(ValueError, match=r"not the imbalances.*r = m, D = D23"):
        lf.bounds.tight_weights(np.zeros((2, 2)), -np.eye(2), 2, 1)
    # h_1 = 3 > h_2 = 1: W_2 W_2^T has rank <= 1, so lambda_2(D21) <= 0; here it is 1
    with pytest.raises(ValueError, match=r"rank at most min\(h_1, h_2\) = 1.*lambda_2\(D21\) = 1"):
        lf.bounds.tight_weights(np.eye(3), np.ones((1, 1)), 3, 1)


def test_array_type_and_dtype_in_are_array_type_and_dtype_out():
    Ws = draw((2, 4, 3, 1), 7, "gaussian")
    D21, D23 = imbalances(Ws)
    T32 = lf.bounds.tight_weights(D21.astype(np.float32), D23.astype(np.float32), 2, 1)
    assert all(W.dtype == np.float32 for W in T32)
    E21, _ = imbalances(tuple(np.asarray(W, dtype=np.float64) for W in T32))
    assert np.allclose(E21, D21, atol=1e-4 * (1 + np.abs(D21).max()))
    xps = pytest.importorskip("array_api_strict")
    T = lf.bounds.tight_weights(xps.asarray(D21), xps.asarray(D23), 2, 1)
    assert all(type(W).__module__.startswith("array_api_strict") for W in T)
    assert np.allclose(lf.to_numpy(T[1]), np.asarray(lf.bounds.tight_weights(D21, D23, 2, 1)[1]))


def test_batched_input_is_each_instance():
    pairs = [imbalances(draw((2, 3, 4, 2), s, "gaussian")) for s in range(3)]
    D21 = np.stack([p[0] for p in pairs]).reshape(3, 1, 3, 3)
    D23 = np.stack([p[1] for p in pairs]).reshape(3, 1, 4, 4)
    T = lf.bounds.tight_weights(D21, D23, 2, 2)
    assert [W.shape for W in T] == [(3, 1, 2, 3), (3, 1, 3, 4), (3, 1, 4, 2)]
    for s in range(3):
        one = lf.bounds.tight_weights(*pairs[s], 2, 2)
        assert all(np.allclose(a[s, 0], b) for a, b in zip(T, one))


GOOD = (np.eye(2), np.eye(3))


@pytest.mark.parametrize("args,err,msg", [
    ((np.array([[1.0, 2.0], [0.0, 1.0]]), GOOD[1], 1, 1), ValueError, "D21 must be symmetric"),
    ((GOOD[0], np.ones((3, 2)), 1, 1), ValueError, "D23 must be square"),
    ((np.ones(3), GOOD[1], 1, 1), ValueError, "D21 must have at least 2 dimensions"),
    ((np.full((2, 2), np.nan), GOOD[1], 1, 1), ValueError, "D21 contains non-finite"),
    ((GOOD[0], np.full((3, 3), np.inf), 1, 1), ValueError, "D23 contains non-finite"),
    ((GOOD[0], GOOD[1], 0, 1), ValueError, "n must be a positive integer"),
    ((GOOD[0], GOOD[1], 1, 1.5), ValueError, "m must be an integer"),
    ((GOOD[0], GOOD[1], "2", 1), TypeError, "n must be a number"),
    ((np.eye(2, dtype=int), GOOD[1], 1, 1), TypeError, "D21 must have a real floating dtype"),
    (("D21", GOOD[1], 1, 1), TypeError, "D21 must be an array"),
    ((GOOD[0], GOOD[1].astype(np.float32), 1, 1), TypeError, "one dtype"),
    ((np.stack([GOOD[0]] * 2), GOOD[1], 1, 1), ValueError, "batch shape"),
    ((GOOD[0] * 1e200, GOOD[1], 1, 1), ValueError, "overflows"),
])
def test_bad_input_is_a_clear_error(args, err, msg):
    with pytest.raises(err, match=msg):
        lf.bounds.tight_weights(*args)


# ------------------------------------------------------------------ interlacing_converse
@pytest.mark.parametrize("k,r", [(1, 1), (4, 1), (5, 2), (5, 5), (3, 6), (6, 3)])
def test_interlacing_converse_realizes_the_update(k, r):
    rng = np.random.default_rng(10 * k + r)
    for i in range(20):
        G = rng.standard_normal((k, k))
        A = G + G.T
        if i % 4 == 1:
            A = np.round(A)  # ties
        Zr = rng.standard_normal((r, k)) * (i % 3 != 2)  # some Z = 0: B = A
        B = A - Zr.T @ Zr  # A >=_r B by Weyl (Lemma G.3)
        Z, V = (np.asarray(X) for X in lf.bounds.interlacing_converse(A, B, r))
        assert Z.shape == (r, k) and np.allclose(V.T @ V, np.eye(k), atol=1e-10)
        assert np.allclose(A - Z.T @ Z, V @ B @ V.T, atol=tol(A, B))
        y = Z[-1]
        mu = np.diag(np.asarray(lf.bounds.wedge(A, B, r)))
        assert np.allclose(np.linalg.eigvalsh(A - np.outer(y, y))[::-1], mu, atol=tol(A, B))


def test_interlacing_converse_refuses_a_pair_that_does_not_interlace():
    with pytest.raises(ValueError, match=r"A >=_r B.*at i = 1"):
        lf.bounds.interlacing_converse(np.eye(2), 2 * np.eye(2), 1)
    with pytest.raises(ValueError, match=r"A >=_r B.*at i = 1"):  # lambda_2(A) = 3 > lambda_1(B)
        lf.bounds.interlacing_converse(np.diag([4.0, 3.0]), np.diag([1.0, 0.0]), 1)
    with pytest.raises(ValueError, match="square A and B of one shape"):
        lf.bounds.interlacing_converse(np.eye(2), np.eye(3), 1)
    with pytest.raises(ValueError, match="r must be a positive integer"):
        lf.bounds.interlacing_converse(np.eye(2), np.eye(2), 0)
