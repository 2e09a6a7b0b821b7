"""Base losses: value and gradient, and the constants of Assumptions A1, A2, A1'."""
from __future__ import annotations

import numpy as np
import pytest
from support import assert_like, host, rel_err, tol

import linflow as lf


def _separable(rng, N=12, n=3):
    z = np.array([1.0, -0.7, 0.4][:n])
    X = rng.normal(size=(N, n))
    y = np.sign(X @ z)
    return X, y


def _losses(rng, backend):
    a = backend.asarray
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    Xu = rng.normal(size=(2, 4))  # under-determined
    Xc, yc = _separable(rng)
    return {
        "squared": lf.losses.Squared(a(rng.normal(size=(3, 2)))),
        "regression": lf.losses.Regression(a(X), a(Y)),
        "regression_rows": lf.losses.Regression(a(Xu), a(rng.normal(size=(2, 2)))),
        "exponential": lf.losses.Exponential(a(Xc), a(yc)),
        "logistic": lf.losses.Logistic(a(Xc), a(yc)),
    }


@pytest.mark.parametrize("name", ["squared", "regression", "regression_rows", "exponential", "logistic"])
def test_value_and_grad_finite_differences(backend, rng, name):
    loss = _losses(rng, backend)[name]
    n, m = loss.shape
    Wh = rng.normal(size=(4, n, m)) * 0.5  # a batch of products
    value, G = loss.value_and_grad(backend.asarray(Wh))
    assert_like(value, backend, shape=(4,))
    assert_like(G, backend, shape=(4, n, m))
    assert rel_err(loss.value(backend.asarray(Wh)), value) == 0.0
    assert rel_err(loss.grad(backend.asarray(Wh)), G) == 0.0
    # float64 host central differences of the backend's own value
    ref = lf.losses.__dict__[type(loss).__name__]
    hl = _host_copy(loss, ref)
    eps = 1e-6
    fd = np.zeros_like(Wh)
    for idx in np.ndindex(Wh.shape):
        Wp, Wm = Wh.copy(), Wh.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        fd[idx] = (float(np.sum(hl.value(Wp))) - float(np.sum(hl.value(Wm)))) / (2 * eps)
    assert rel_err(G, fd) < tol(backend, 1e-7, 1e-4)
    assert rel_err(value, hl.value(Wh)) < tol(backend, 1e-14, 1e-5)


def _host_copy(loss, cls):
    """The same loss on float64 NumPy data."""
    data = [host(d) for d in loss.data]
    if cls in (lf.losses.Exponential, lf.losses.Logistic):
        return cls(*data, margin=loss.margin)
    return cls(*data)


def test_squared_constants(rng):
    Y = rng.normal(size=(3, 4))
    loss = lf.losses.Squared(Y)
    assert (loss.gamma, loss.K, loss.mu, loss.f_star, loss.assumption) == (2.0, 1.0, 1.0, 0.0, "A1+A2")
    assert loss.minimizer is Y
    for _ in range(5):
        W = rng.normal(size=(3, 4))
        v, G = loss.value_and_grad(W)
        assert abs(np.sum(G**2) - 2 * (v - loss.f_star)) <= 1e-13 * v  # ||grad||^2 = 2 (f - f*)


def test_regression_full_column_rank(rng):
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    loss = lf.losses.Regression(X, Y)
    ev = np.linalg.eigvalsh(X.T @ X)
    assert loss.assumption == "A1+A2"
    assert loss.mu == pytest.approx(ev[0], rel=1e-12)
    assert loss.K == pytest.approx(ev[-1], rel=1e-12)
    assert loss.gamma == pytest.approx(2 * ev[0], rel=1e-12)
    Wstar = np.linalg.lstsq(X, Y, rcond=None)[0]
    assert np.allclose(loss.minimizer, Wstar, rtol=1e-12, atol=1e-12)
    assert loss.f_star == pytest.approx(0.5 * np.sum((X @ Wstar - Y) ** 2), rel=1e-12)
    assert np.max(np.abs(loss.grad(loss.minimizer))) < 1e-12
    for _ in range(20):
        W = rng.normal(size=(3, 2)) * rng.uniform(0.1, 3)
        v, G = loss.value_and_grad(W)
        gap = v - loss.f_star
        assert np.sum(G**2) >= loss.gamma * gap * (1 - 1e-12)  # A1 (PL)
        d2 = np.sum((W - Wstar) ** 2)
        assert loss.mu / 2 * d2 * (1 - 1e-12) <= gap <= loss.K / 2 * d2 * (1 + 1e-12)  # A2


def test_regression_full_row_rank(rng):
    X, Y = rng.normal(size=(2, 5)), rng.normal(size=(2, 3))
    loss = lf.losses.Regression(X, Y)
    assert loss.assumption == "A1" and loss.mu is None and loss.f_star == 0.0
    assert loss.gamma == pytest.approx(2 * np.linalg.eigvalsh(X @ X.T)[0], rel=1e-12)
    assert loss.value(loss.minimizer) < 1e-24
    for _ in range(20):
        W = rng.normal(size=(5, 3))
        v, G = loss.value_and_grad(W)
        assert np.sum(G**2) >= loss.gamma * v * (1 - 1e-12)


def test_regression_rank_deficient_raises(rng):
    X = rng.normal(size=(6, 2)) @ rng.normal(size=(2, 3))  # rank 2 < min(6, 3)
    with pytest.raises(ValueError, match="full column rank or full row rank"):
        lf.losses.Regression(X, rng.normal(size=(6, 2)))


def test_max_margin_hand_built():
    # points y_i x_i = (2, 0) and (0, 1): max_{|z|=1} min(2 z1, z2) = 2/sqrt(5) at z = (1, 2)/sqrt(5)
    X = np.array([[2.0, 0.0], [0.0, -1.0]])
    y = np.array([1.0, -1.0])
    loss = lf.losses.Exponential(X, y)
    assert loss.margin == pytest.approx(2 / np.sqrt(5), rel=1e-8)
    assert np.allclose(loss.direction, np.array([1.0, 2.0]) / np.sqrt(5), atol=1e-7)
    assert loss.gamma == loss.margin and loss.assumption == "A1'" and loss.f_star == 0.0
    # three points, margin 1 at z = (1, 0)
    X3 = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 0.0]])
    assert lf.losses.Logistic(X3, np.array([1, 1, -1])).margin == pytest.approx(1.0, rel=1e-8)


def test_not_separable_raises():
    X = np.array([[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="not linearly separable"):
        lf.losses.Exponential(X, np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="-1 or \\+1"):
        lf.losses.Exponential(X, np.array([1.0, 0.5]))


def test_exponential_A1prime(rng):
    X, y = _separable(rng, N=15)
    loss = lf.losses.Exponential(X, y)
    # the QP margin is attained by the returned direction and beats random directions
    A = y[:, None] * X
    assert np.min(A @ loss.direction) == pytest.approx(loss.margin, rel=1e-6)
    Z = rng.normal(size=(2000, 3))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    assert np.max(np.min(Z @ A.T, axis=1)) <= loss.margin * (1 + 1e-8)
    for _ in range(30):
        W = rng.normal(size=(3, 1)) * rng.uniform(0.1, 5)
        v, G = loss.value_and_grad(W)
        assert np.linalg.norm(G) >= loss.gamma * v * (1 - 1e-10)  # A1': ||grad|| >= margin * f


def test_logistic_A1prime_on_sublevel_set(rng):
    X, y = _separable(rng, N=15)
    loss = lf.losses.Logistic(X, y)
    assert loss.gamma is None
    for _ in range(30):
        W = rng.normal(size=(3, 1)) * rng.uniform(0.1, 5)
        v, G = loss.value_and_grad(W)
        f0 = float(v) * rng.uniform(1.0, 2.0)  # W lies in {f <= f0}
        assert np.linalg.norm(G) >= loss.gamma_on_sublevel(f0) * v * (1 - 1e-10)
    # stable for huge margins (no overflow): value -> 0 and grad -> 0 without warnings
    v, G = loss.value_and_grad(1e4 * loss.direction[:, None])
    assert np.isfinite(v) and np.all(np.isfinite(G))


def test_integer_labels_take_feature_dtype(backend, rng):
    X, y = _separable(rng)
    loss = lf.losses.Exponential(backend.asarray(X), backend.xp.asarray(y.astype(np.int32), device=backend.device))
    assert loss.data[1].dtype == backend.dtype
    W = backend.asarray(rng.normal(size=(3, 1)))
    assert_like(loss.value(W), backend, shape=())
