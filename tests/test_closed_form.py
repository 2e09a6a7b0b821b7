"""Closed-form solutions (appendix *Numerical methods*, Closed-form solutions) against lf.gradient_flow."""
from __future__ import annotations

import numpy as np
import pytest
from support import assert_like, host, rel_err, tol

import linflow as lf
from linflow import closed_form as cf

FLOW = dict(rtol=1e-12, atol=1e-14, save=("loss", "product"))


def _Y(rng, n, m, s):
    U = np.linalg.qr(rng.normal(size=(n, n)))[0][:, : len(s)]
    V = np.linalg.qr(rng.normal(size=(m, m)))[0][:, : len(s)]
    return (U * np.asarray(s)) @ V.T


def test_saxe_two_layer(rng):
    Y = _Y(rng, 3, 2, [2.5, 1.0])
    a0 = np.array([1e-2, 3e-2])
    Ws = cf.aligned_balanced(Y, a0, 2, widths=[4], seed=1)
    assert Ws[0].shape == (3, 4) and Ws[1].shape == (4, 2)
    assert np.max(np.abs(lf.imbalance(Ws)[0])) < 1e-14
    U, s, Vh = np.linalg.svd(Y, full_matrices=False)
    assert np.allclose(lf.product(Ws), (U * a0) @ Vh, atol=1e-15)
    ts = np.linspace(0, 4, 9)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), 4.0, t_eval=ts, **FLOW)
    exact = cf.saxe(Y, a0, ts)
    assert exact.shape == (9, 3, 2)
    assert np.max(np.abs(traj.product - exact)) < 1e-8 * np.linalg.norm(Y)
    # learning time of the first mode from a0 to s/2 (row 8)
    tl = cf.saxe_learning_time(s[0], a0[0], s[0] / 2)
    assert cf.saxe_modes(s[0], a0[0], tl) == pytest.approx(s[0] / 2, rel=1e-13)
    assert cf.saxe(Y, a0, 0.5).shape == (3, 2)


def test_saxe_array_api(backend, rng):
    Y = _Y(rng, 3, 3, [2.0, 1.0, 0.5])
    ts = np.linspace(0, 2, 5)
    ref = cf.saxe(Y, 0.1, ts)
    out = cf.saxe(backend.asarray(Y), 0.1, backend.asarray(ts))
    assert_like(out, backend, shape=(5, 3, 3))
    assert rel_err(out, ref) < tol(backend, 1e-13, 1e-5)
    # host times and per-mode a0 are moved to Y's backend
    out = cf.saxe(backend.asarray(Y), np.array([0.1, 0.2, 0.3]), ts)
    assert_like(out, backend, shape=(5, 3, 3))
    assert rel_err(out, cf.saxe(Y, np.array([0.1, 0.2, 0.3]), ts)) < tol(backend, 1e-13, 1e-5)


@pytest.mark.parametrize("L", [3, 4])
def test_deep_aligned_balanced(rng, L):
    Y = _Y(rng, 3, 3, [3.0, 2.0, 1.0])
    a0 = 0.05
    Ws = cf.aligned_balanced(Y, a0, L, seed=2)
    assert all(np.max(np.abs(D)) < 1e-14 for D in lf.imbalance(Ws))
    ts = np.linspace(0, 3, 7)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), 3.0, t_eval=ts, **FLOW)
    exact = cf.deep_balanced(Y, a0, L, ts)
    assert np.max(np.abs(traj.product - exact)) < 1e-8 * np.linalg.norm(Y)  # row 9
    U, s, Vh = np.linalg.svd(Y)
    M = U.T @ traj.product @ Vh.T  # stays diagonal
    off = M - np.einsum("tii->ti", M)[:, :, None] * np.eye(3)
    assert np.max(np.abs(off)) < 1e-12


def test_deep_time_closed_form_vs_quad():
    # the L = 4 closed form and the quad path agree; L = 2 matches Saxe
    s, p0, p = 2.0, 0.01, 1.7
    t4 = cf.deep_balanced_time(p, s, p0, 4)
    from scipy.integrate import quad

    q = quad(lambda x: 1 / (4 * x**1.5 * (s - x)), p0, p, epsabs=0, epsrel=1e-13, limit=200)[0]
    assert t4 == pytest.approx(q, rel=1e-10)
    assert cf.deep_balanced_time(p, s, p0, 2) == pytest.approx(cf.saxe_learning_time(s, p0, p), rel=1e-14)
    # inversion returns the start at t = 0 and approaches s
    P = cf.deep_balanced_modes([s], [p0], 3, [0.0, 1.0, 50.0])
    assert P[0, 0] == p0 and p0 < P[1, 0] < s and P[2, 0] == pytest.approx(s, rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0, -0.3])
def test_riccati_lambda_balanced(rng, lam):
    n, h, m = 3, 2, 3
    W1, W2 = cf.lambda_balanced(n, h, m, lam, seed=3)
    D = lf.imbalance((W1, W2))[0]
    assert np.allclose(D, lam * np.eye(h), atol=1e-13)
    Y = rng.normal(size=(n, m))
    ts = np.linspace(0, 3, 7)
    traj = lf.gradient_flow((W1, W2), lf.losses.Squared(Y), 3.0, t_eval=ts, **FLOW)
    exact = cf.riccati((W1, W2), Y, ts)
    assert exact.shape == (7, n, m)
    assert np.max(np.abs(traj.product - exact)) < 1e-8 * np.linalg.norm(Y)  # row 10
    assert np.allclose(cf.riccati((W1, W2), Y, 0.0), W1 @ W2, atol=1e-13)


def test_riccati_array_api(backend, rng):
    W1, W2 = cf.lambda_balanced(3, 3, 3, 0.7, seed=4)
    Y = rng.normal(size=(3, 3))
    ts = np.linspace(0, 2, 4)
    ref = cf.riccati((W1, W2), Y, ts)
    out = cf.riccati(backend.weights((W1, W2)), backend.asarray(Y), ts)
    assert_like(out, backend, shape=(4, 3, 3))
    assert rel_err(out, ref) < tol(backend, 1e-12, 1e-4)


def test_riccati_rejects_unbalanced(rng):
    with pytest.raises(ValueError, match="lambda-balanced"):
        cf.riccati((rng.normal(size=(3, 2)), rng.normal(size=(2, 3))), rng.normal(size=(3, 3)), 1.0)


@pytest.mark.parametrize("w", [(0.3, 1.2), (1.5, 0.2), (0.4, 0.4)])
def test_scalar_two_layer(w):
    y = 2.0
    ts = np.linspace(0, 3, 7)
    Ws = tuple(np.array([[v]]) for v in w)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(np.array([[y]])), 3.0, t_eval=ts, **FLOW)
    exact = cf.scalar_two_layer(w, y, ts)
    assert np.max(np.abs(traj.product[:, 0, 0] - exact)) < 1e-8 * y  # row 12
    # w1^2 - w2^2 is conserved
    assert abs((traj.weights[0] ** 2 - traj.weights[1].T ** 2).item() - (w[0] ** 2 - w[1] ** 2)) < 1e-10


def test_scalar_deep_reduced_ode():
    w = (0.5, 0.7, 0.9, 1.1)
    y = 1.5
    ts = np.linspace(0, 4, 9)
    Ws = tuple(np.array([[v]]) for v in w)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(np.array([[y]])), 4.0, t_eval=ts, **FLOW)
    exact = cf.scalar_deep(w, y, ts)
    assert np.max(np.abs(traj.product[:, 0, 0] - exact)) < 1e-8 * y  # row 13
    # the balanced case reduces to the deep aligned formula with s = y
    wb = (0.6,) * 3
    assert np.allclose(cf.scalar_deep(wb, y, ts), cf.deep_balanced_modes([y], [0.6**3], 3, ts)[:, 0],
                       rtol=1e-9)
    # and L = 2 matches the closed form
    assert np.allclose(cf.scalar_deep((0.3, 1.2), 2.0, ts), cf.scalar_two_layer((0.3, 1.2), 2.0, ts), rtol=1e-9)


def test_lambda_balanced_shapes_and_errors():
    W1, W2 = cf.lambda_balanced(4, 2, 3, -0.2, seed=0)
    assert W1.shape == (4, 2) and W2.shape == (2, 3)
    assert np.allclose(host(lf.imbalance((W1, W2))[0]), -0.2 * np.eye(2), atol=1e-13)
    with pytest.raises(ValueError, match="h <= n"):
        cf.lambda_balanced(2, 3, 4, 0.5)
    with pytest.raises(ValueError, match="h <= m"):
        cf.lambda_balanced(4, 3, 2, -0.5)
    with pytest.raises(ValueError, match="hidden widths"):
        cf.aligned_balanced(np.eye(3), 0.1, 3, widths=[2, 3])


@pytest.mark.parametrize("lam", [0.0, 1.0, -2.0])
def test_riccati_asymptotic_rate(rng, lam):
    """-d/dt log||W - Y|| -> sqrt(lambda^2 + 4 sigma_min(Y)^2): imbalance accelerates (row 11)."""
    Y = _Y(rng, 3, 3, [2.0, 1.2, 0.6])
    W1, W2 = cf.lambda_balanced(3, 3, 3, lam, seed=5)
    ts = np.linspace(0, 40, 4001)
    err = np.linalg.norm(cf.riccati((W1, W2), Y, ts) - Y, axis=(-2, -1))
    t1, t2 = (ts[np.argmax(err < e)] for e in (1e-5, 1e-8))
    assert t2 > t1 > 0
    rate = np.log(1e3) / (t2 - t1)
    assert rate == pytest.approx(np.sqrt(lam**2 + 4 * 0.6**2), rel=0.05)


def test_balanced_stays_balanced_end_to_end(rng):
    """Balanced start: D_l = 0 along the flow, W W^T = (W_1 W_1^T)^L, sigma(W_l) = sigma(W)^(1/L) (row 14)."""
    Y = _Y(rng, 3, 3, [2.0, 1.0, 0.5])
    L = 3
    Ws = cf.aligned_balanced(Y, [0.3, 0.2, 0.1], L, seed=7)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y + 0.3 * rng.normal(size=(3, 3))), 1.0,
                            t_eval=[0.0, 1.0], rtol=1e-11, atol=1e-13)
    Wt = traj.weights
    W = lf.product(Wt)
    assert all(np.max(np.abs(D)) < 1e-10 for D in lf.imbalance(Wt))
    np.testing.assert_allclose(W @ W.T, np.linalg.matrix_power(Wt[0] @ Wt[0].T, L), atol=1e-10)
    sv = np.linalg.svd(W, compute_uv=False)
    for Wl in Wt:
        np.testing.assert_allclose(np.linalg.svd(Wl, compute_uv=False), sv ** (1 / L), rtol=1e-9)


# --- every closed form on a dense time grid, up to convergence, against the integrator ----------

DENSE = dict(rtol=1e-12, atol=1e-14, save=("loss", "product"))


def _dense_check(Ws, Y, exact, t_end, tol_abs):
    """``exact(ts)`` against gradient_flow at tight tolerance on 241 times; the run must converge."""
    ts = np.linspace(0.0, t_end, 241)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), t_end, t_eval=ts, **DENSE)
    P = np.asarray(exact(ts))
    err = np.max(np.abs(P - traj.product), axis=(-2, -1))
    assert traj.loss[-1] < 1e-12 * max(1.0, traj.loss[0])  # the grid reaches convergence
    assert np.all(np.isfinite(P))
    return err.max(), tol_abs


def _audit_Y(seed, n, m):
    rng = np.random.default_rng(seed)
    rng.normal(size=(4, 3))
    rng.normal(size=(3, 4))
    return rng.normal(size=(n, m))


@pytest.mark.parametrize("seed", [4, 0, 2, 7])
@pytest.mark.parametrize("n,h,m,lam", [(5, 2, 2, 1.0), (3, 3, 3, 0.5), (4, 2, 3, 0.0), (3, 2, 4, -0.7),
                                       (2, 2, 2, 2.0), (4, 4, 4, -1.0)])
def test_riccati_dense_grid_to_convergence(seed, n, h, m, lam):
    """Issue #16: the Riccati form was off by O(1) at some later times (graded QR factor inverted).

    24 (seed, shape) cases, the audit's own case first, every time up to convergence.
    """
    Ws = cf.lambda_balanced(n, h, m, lam, seed=seed)
    Y = _audit_Y(seed, n, m)
    floor = 0.5 * np.sum(np.linalg.svd(Y, compute_uv=False)[h:] ** 2)  # h < rank: best rank-h fit
    ts = np.linspace(0.0, 150.0, 301)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), 150.0, t_eval=ts, **DENSE)
    P = cf.riccati(Ws, Y, ts)
    assert np.all(np.isfinite(P))
    err = np.max(np.abs(P - traj.product), axis=(-2, -1))
    assert err.max() < 1e-8 * np.linalg.norm(Y), (float(err.max()), ts[np.argmax(err)])
    assert traj.loss[-1] - floor < 1e-12  # the grid reaches convergence
    # and beyond: at late times the closed form sits at the limit, the best rank-h fit of Y
    # (Eckart-Young; Y itself when h >= rank Y), with no overflow or drift
    U, s, Vh = np.linalg.svd(Y, full_matrices=False)
    late = cf.riccati(Ws, Y, np.array([400.0, 1000.0]))
    assert np.max(np.abs(late - (U[:, :h] * s[:h]) @ Vh[:h])) < 1e-8 * np.linalg.norm(Y)


def test_saxe_and_deep_balanced_dense_grid_to_convergence(rng):
    Y = _Y(rng, 3, 3, [2.0, 1.3, 0.8])
    for L, t_end in ((2, 25.0), (3, 40.0)):
        Ws = cf.aligned_balanced(Y, 0.2, L, seed=3)
        exact = (lambda ts: cf.saxe(Y, 0.2, ts)) if L == 2 else (lambda ts: cf.deep_balanced(Y, 0.2, L, ts))
        err, tol_abs = _dense_check(Ws, Y, exact, t_end, 1e-8 * np.linalg.norm(Y))
        assert err < tol_abs, (L, err)


@pytest.mark.parametrize("w", [(0.3, 1.2), (1.5, 0.2), (-0.4, 0.9)])
def test_scalar_two_layer_dense_grid_to_convergence(w):
    y = np.array([[2.0]])
    Ws = tuple(np.array([[v]]) for v in w)
    err, tol_abs = _dense_check(Ws, y, lambda ts: cf.scalar_two_layer(w, 2.0, ts)[:, None, None], 20.0, 1e-8)
    assert err < tol_abs


def test_scalar_deep_dense_grid_to_convergence():
    w = (0.5, 0.7, 0.9, 1.1)
    y = np.array([[1.5]])
    Ws = tuple(np.array([[v]]) for v in w)
    err, tol_abs = _dense_check(Ws, y, lambda ts: cf.scalar_deep(w, 1.5, ts)[:, None, None], 20.0, 1e-8)
    assert err < tol_abs
