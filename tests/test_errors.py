"""Bad input gives a clear exception naming the problem; divergence is never a silent NaN."""
from __future__ import annotations

import numpy as np
import pytest
from support import random_weights

import linflow as lf


@pytest.fixture
def problem(rng):
    return random_weights(rng, (3, 4, 2)), lf.losses.Squared(rng.normal(size=(3, 2)))


def test_chain_does_not_fit(rng, problem):
    _, loss = problem
    Ws = (rng.normal(size=(3, 4)), rng.normal(size=(5, 2)))
    for fn in (lf.product, lf.imbalance, lf.lambda_min, lambda W: lf.gradient_flow(W, loss, 1.0)):
        with pytest.raises(ValueError, match=r"does not fit.*W_1 has shape \(3, 4\).*W_2 has shape \(5, 2\)"):
            fn(Ws)


def test_wrong_rank_and_type(rng, problem):
    _, loss = problem
    with pytest.raises(ValueError, match=r"W_2.*at least 2 dimensions.*\(4,\)"):
        lf.gradient_flow((rng.normal(size=(3, 4)), rng.normal(size=4)), loss, 1.0)
    with pytest.raises(TypeError, match="tuple of weight matrices"):
        lf.gradient_flow(rng.normal(size=(3, 2)), loss, 1.0)
    with pytest.raises(TypeError, match="real floating"):
        lf.product((np.ones((3, 4), dtype=np.int64), np.ones((4, 2), dtype=np.int64)))
    with pytest.raises(ValueError, match="batch shape"):
        lf.product((rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 4, 2))))
    with pytest.raises(TypeError, match="linflow loss"):
        lf.gradient_flow(problem[0], lambda W: 0.0, 1.0)
    with pytest.raises(ValueError, match=r"product W_1...W_L has shape \(\.\.\., 3, 2\).*expects \(\.\.\., 2, 2\)"):
        lf.gradient_flow(problem[0], lf.losses.Squared(np.eye(2)), 1.0)
    with pytest.raises(ValueError, match=r"G must have shape \(\.\.\., 3, 2\)"):
        lf.layer_gradients(problem[0], np.ones((2, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite(rng, problem, bad):
    Ws, loss = problem
    W1 = Ws[0].copy()
    W1[1, 2] = bad
    with pytest.raises(ValueError, match=r"W_1.*non-finite"):
        lf.gradient_flow((W1, Ws[1]), loss, 1.0)
    with pytest.raises(ValueError, match=r"W_1.*non-finite"):
        lf.gradient_descent((W1, Ws[1]), loss, 0.1, 3)
    Y = np.ones((3, 2))
    Y[0, 0] = bad
    with pytest.raises(ValueError, match="Y contains non-finite"):
        lf.losses.Squared(Y)
    X = np.ones((4, 3))
    X[0, 0] = bad
    with pytest.raises(ValueError, match="X contains non-finite"):
        lf.losses.Regression(X, np.ones((4, 2)))


def test_bad_times_methods_and_options(problem):
    Ws, loss = problem
    for t_end in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="t_end must be positive and finite"):
            lf.gradient_flow(Ws, loss, t_end)
    with pytest.raises(TypeError, match="t_end must be a number"):
        lf.gradient_flow(Ws, loss, "soon")
    with pytest.raises(ValueError, match=r"unknown method 'rk45'.*dopri5"):
        lf.gradient_flow(Ws, loss, 1.0, method="rk45")
    with pytest.raises(ValueError, match=r"t_eval must lie in \[0, t_end"):
        lf.gradient_flow(Ws, loss, 1.0, t_eval=[0.0, 2.0])
    with pytest.raises(ValueError, match="sorted"):
        lf.gradient_flow(Ws, loss, 1.0, t_eval=[0.5, 0.2])
    with pytest.raises(ValueError, match="dt must be positive"):
        lf.gradient_flow(Ws, loss, 1.0, method="midpoint", dt=-0.1)
    with pytest.raises(ValueError, match="unknown diagnostic 'energy'"):
        lf.gradient_flow(Ws, loss, 1.0, diagnostics=("energy",))
    with pytest.raises(ValueError, match="save takes"):
        lf.gradient_flow(Ws, loss, 1.0, save=("weights",))
    with pytest.raises(ValueError, match="step must be positive"):
        lf.gradient_descent(Ws, loss, 0.0, 10)
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        lf.gradient_descent(Ws, loss, 0.1, 0)
    with pytest.raises(ValueError, match="every step size must be positive"):
        lf.gradient_descent(tuple(np.stack([W, W]) for W in Ws), loss, np.array([0.1, -0.1]), 3)


def test_mixed_dtypes(rng, problem):
    Ws, loss = problem
    with pytest.raises(TypeError, match=r"one dtype.*W_1: float32, W_2: float64"):
        lf.gradient_flow((Ws[0].astype(np.float32), Ws[1]), loss, 1.0)
    Ws32 = tuple(W.astype(np.float32) for W in Ws)
    with pytest.raises(TypeError, match=r"weights have dtype float32 but the data of Squared has dtype float64"):
        lf.gradient_flow(Ws32, loss, 1.0)


def test_mixed_backends(problem):
    import array_api_strict as xs

    Ws, loss = problem
    mixed = (Ws[0], xs.asarray(Ws[1]))
    with pytest.raises(TypeError, match="one array library"):
        lf.product(mixed)
    with pytest.raises(TypeError, match="one array library"):
        lf.gradient_flow(tuple(xs.asarray(W) for W in Ws), loss, 1.0)  # strict weights, NumPy target
    d1 = xs.Device("device1")
    with pytest.raises(ValueError, match="different devices"):
        lf.product((xs.asarray(Ws[0]), xs.asarray(Ws[1], device=d1)))


def test_gd_divergence_reports_step_and_estimate(rng, problem):
    Ws, loss = problem
    lam = float(lf.lambda_max_bound(Ws))
    eta = 4.0 / lam * 3  # well above the stability limit
    with pytest.raises(lf.DivergenceError) as info:
        lf.gradient_descent(Ws, loss, eta, 500)
    msg = str(info.value)
    assert f"eta = {eta:.3g}" in msg
    assert f"2/lambda_max ≈ {2 / lam:.3g}" in msg
    assert "throw=False" in msg
    traj = info.value.trajectory
    assert traj is not None and traj.status == lf.Status.DIVERGED
    k = np.nonzero(~np.isnan(traj.loss))[0]
    assert len(k) >= 2 and np.all(np.diff(k) == 1)  # saved losses up to the blow-up, then NaN
    assert np.all(np.isfinite(traj.loss[k]))
    assert all(np.all(np.isfinite(W)) for W in traj.weights)  # the last sane state is kept
    # GD reports flow time t = k * eta, also in the partial results
    assert np.allclose(traj.t, traj.steps * eta)
    assert 0 < traj.t_final < 500 * eta and np.isclose(traj.t_final / eta, round(traj.t_final / eta))
    assert traj.t_final == traj.t[k[-1]] or traj.t_final > traj.t[k[-1]]


def test_throw_false_keeps_other_trajectories(rng, problem):
    Ws, loss = problem
    lam = float(lf.lambda_max_bound(Ws))
    B = 3
    Wb = tuple(np.stack([W] * B) for W in Ws)
    eta = np.array([0.2 / lam, 12.0 / lam, 0.5 / lam])
    traj = lf.gradient_descent(Wb, loss, eta, 300, throw=False)
    assert list(traj.status) == [lf.Status.DONE, lf.Status.DIVERGED, lf.Status.DONE]
    assert list(traj.ok) == [True, False, True]
    for i in (0, 2):
        one = lf.gradient_descent(Ws, loss, float(eta[i]), 300)
        np.testing.assert_array_equal(traj.loss[:, i], one.loss)
    assert all(np.all(np.isfinite(W[1])) for W in traj.weights)
    assert "diverged" in lf.Status.DIVERGED.message
    # the same run with throw=True raises and carries the batch
    with pytest.raises(lf.DivergenceError, match="1 of 3 trajectories diverged") as info:
        lf.gradient_descent(Wb, loss, eta, 300)
    assert info.value.trajectory.loss.shape[1:] == (B,)


def test_overflowing_step_is_divergence_not_a_warning(problem):
    # one step overflows to inf: reported as DIVERGED (pyproject turns RuntimeWarnings into errors)
    Ws, loss = problem
    traj = lf.gradient_descent(Ws, loss, 1e80, 5, throw=False)
    assert traj.status == lf.Status.DIVERGED
    assert np.isfinite(traj.loss[0]) and np.all(np.isnan(traj.loss[1:]))
    assert all(np.array_equal(W, W0) for W, W0 in zip(traj.weights, Ws))
    with pytest.raises(lf.DivergenceError, match="step size eta = 1e\\+80"):
        lf.gradient_descent(Ws, loss, 1e80, 5)


def test_data_errors(rng):
    with pytest.raises(ValueError, match="same number of rows"):
        lf.losses.Regression(rng.normal(size=(4, 3)), rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="vector of N = 4 labels"):
        lf.losses.Exponential(rng.normal(size=(4, 3)), np.ones(3))
    with pytest.raises(TypeError, match="must be an array"):
        lf.losses.Squared([[1.0, 2.0]])


def test_gauss_step_too_large(rng):
    Ws = random_weights(rng, (3, 3, 3, 2))
    loss = lf.losses.Squared(rng.normal(size=(3, 2)))
    dt = 2.5 / float(lf.lambda_max_bound(Ws))
    with pytest.raises(lf.DivergenceError, match="fixed-point iteration for the implicit stages did not converge"):
        lf.gradient_flow(Ws, loss, 1.0, method="midpoint", dt=dt, t_eval=[0.0, 1.0])
    traj = lf.gradient_flow(Ws, loss, 1.0, method="gauss2", dt=dt, throw=False, t_eval=[0.0, 1.0])
    assert traj.status == lf.Status.DIVERGED
    assert all(np.all(np.isfinite(W)) for W in traj.weights)
