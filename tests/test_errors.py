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


# --- issue #16: fixed-step budgets, MAX_STEPS, and clear errors at every boundary ----------------


def test_fixed_step_budget_refused_before_integrating(problem):
    """A fixed-step run whose step count is known to exceed max_steps is refused at once."""
    import time

    Ws, loss = problem
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"gauss2.*dt = 0\.0001 .*1,000,000 steps.*t_end = 100.*max_steps = 1,000\b"
                                         r".*max_steps >= 1000000.*dopri5"):
        lf.gradient_flow(Ws, loss, 100.0, method="gauss2", dt=1e-4, max_steps=1000)
    # the default step: large weights make the sharpness estimate large and the step tiny
    big = tuple(30.0 * W for W in Ws)
    with pytest.raises(ValueError, match=r"midpoint.*the default step.*t_end = 50.*max_steps = 100,000"):
        lf.gradient_flow(big, loss, 50.0, method="midpoint")
    assert time.perf_counter() - t0 < 5.0  # refused, not integrated
    # within budget it runs (t_end / dt = 10 steps)
    traj = lf.gradient_flow(Ws, loss, 1.0, method="midpoint", dt=0.1, max_steps=20, t_eval=[0.0, 1.0])
    assert traj.ok.all()


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (2.5, ValueError), ("10", TypeError),
                                      (True, TypeError)])
def test_max_steps_must_be_a_positive_integer(problem, bad, exc):
    Ws, loss = problem
    with pytest.raises(exc, match="max_steps must be"):
        lf.gradient_flow(Ws, loss, 1.0, max_steps=bad)


def test_max_steps_warns_raises_and_marks_saved_points(problem):
    Ws, loss = problem
    batch = tuple(np.stack([W, 2.0 * W]) for W in Ws)
    with pytest.warns(lf.MaxStepsWarning, match=r"2 of 2 trajectories ran out of steps.*max_steps = 6.*Trajectory.saved"):
        traj = lf.gradient_flow(batch, loss, 50.0, max_steps=6, throw=False, save=("loss", "product"))
    assert np.all(traj.status == lf.Status.MAX_STEPS) and not traj.ok.any()
    saved = traj.saved
    assert saved.shape == (101, 2) and saved.dtype == bool
    # the mask is exactly the reached save times, and exactly the finite entries
    t = np.asarray(traj.t)
    np.testing.assert_array_equal(saved, t[:, None] <= np.asarray(traj.t_final)[None, :])
    np.testing.assert_array_equal(saved, np.isfinite(traj.loss))
    assert saved[0].all() and not saved[-1].any()
    assert np.all(np.isfinite(traj.product[saved])) and np.all(np.isnan(traj.product[~saved]))
    # throw=True (the default) raises, with the partial run on the exception
    with pytest.raises(lf.MaxStepsError, match="ran out of steps.*throw=False") as info:
        lf.gradient_flow(batch, loss, 50.0, max_steps=6)
    part = info.value.trajectory
    assert part.batch_shape == (2,) and np.all(part.status == lf.Status.MAX_STEPS)
    np.testing.assert_array_equal(part.saved, saved)
    assert issubclass(lf.MaxStepsWarning, RuntimeWarning) and issubclass(lf.MaxStepsError, RuntimeError)


def test_saved_marks_converged_and_complete_runs(problem):
    Ws, loss = problem
    traj = lf.gradient_flow(Ws, loss, 20.0)
    assert traj.saved.all() and np.all(np.isfinite(traj.loss))
    stop = lf.gradient_flow(Ws, loss, 200.0, loss_tol=1e-3 * float(traj.loss[0]))
    assert stop.status == lf.Status.CONVERGED
    np.testing.assert_array_equal(stop.saved, np.isfinite(stop.loss))
    assert stop.saved[0] and not stop.saved[-1]
    gd = lf.gradient_descent(Ws, loss, 0.05, 40)
    assert gd.saved.all()


def test_gradient_flow_options_rejected(problem):
    Ws, loss = problem
    cases = [
        (dict(t_end="1"), TypeError, "t_end must be a number"),
        (dict(check_every=0), ValueError, "check_every must be a positive integer"),
        (dict(check_every=2.5), ValueError, "check_every must be an integer"),
        (dict(loss_tol=np.nan), ValueError, "loss_tol must be non-negative and finite; got nan"),
        (dict(loss_tol=-1), ValueError, "loss_tol must be non-negative and finite; got -1"),
        (dict(rtol=0.0), ValueError, "rtol must be positive"),
        (dict(atol=-1e-3), ValueError, "atol must be non-negative"),
        (dict(t_eval="abc"), TypeError, "t_eval must be a 1-D array"),
    ]
    for kw, exc, msg in cases:
        kw = dict(dict(t_end=1.0), **kw)
        with pytest.raises(exc, match=msg):
            lf.gradient_flow(Ws, loss, **kw)


def test_gradient_descent_options_rejected(problem):
    Ws, loss = problem
    for every in (0, -1, 1.5):
        with pytest.raises(ValueError, match="save_every must be"):
            lf.gradient_descent(Ws, loss, 0.1, 10, save_every=every)
    with pytest.raises(ValueError, match=r"n_steps must be an integer; got 2\.7"):
        lf.gradient_descent(Ws, loss, 0.1, 2.7)
    assert lf.gradient_descent(Ws, loss, 0.1, 3.0).steps[-1] == 3  # an integral float is fine
    with pytest.raises(ValueError, match=r"check_every must be a positive integer"):
        lf.gradient_descent(Ws, loss, 0.1, 3, check_every=0)
    batch = tuple(np.stack([W] * 3) for W in Ws)
    with pytest.raises(ValueError, match=r"step must be .*broadcasts to the batch shape \(3,\).*got shape \(2,\)"):
        lf.gradient_descent(batch, loss, np.array([0.1, 0.1]), 3)
    with pytest.raises(ValueError, match=r"batch shape \(3,\).*got shape \(3, 2\)"):
        lf.gradient_descent(batch, loss, np.full((3, 2), 0.1), 3)
    traj = lf.gradient_descent(batch, loss, np.array([0.1]), 3)  # broadcasts: fine
    assert traj.batch_shape == (3,)


def test_float32_rtol_below_round_off_warns(problem):
    Ws, _ = problem
    W32 = tuple(W.astype(np.float32) for W in Ws)
    loss32 = lf.losses.Squared(np.ones((3, 2), dtype=np.float32))
    with pytest.warns(RuntimeWarning, match=r"rtol = 1e-07 is below 10 machine epsilons of float32"):
        lf.gradient_flow(W32, loss32, 0.5, rtol=1e-7)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lf.gradient_flow(W32, loss32, 0.5)  # the default does not warn
        lf.gradient_flow(W32, loss32, 0.5, rtol=1e-5)
        lf.gradient_flow(Ws, lf.losses.Squared(np.ones((3, 2))), 0.5, rtol=1e-12)  # float64: fine


def test_zero_widths_named(problem):
    _, loss = problem
    Z = (np.zeros((3, 0)), np.zeros((0, 2)))
    fns = [lambda W: lf.gradient_flow(W, loss, 1.0), lf.sigma_min, lf.lambda_min, lf.bounds.lemma3,
           lf.bounds.two_layer, lf.bounds.spread_gap, lf.bounds.min2021, lf.bounds.unimodal_indices]
    for fn in fns:
        with pytest.raises(ValueError, match=r"W_1\) must have non-zero widths.*\(3, 0\)"):
            fn(Z)
    Z3 = (np.ones((3, 2)), np.zeros((2, 0)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"W_2\) must have non-zero widths"):
        lf.bounds.lemma_g1(Z3)
    with pytest.raises(ValueError, match="Y must have non-zero dimensions"):
        lf.losses.Squared(np.ones((3, 0)))


def test_non_finite_weights_in_bounds(rng):
    Ws = tuple(rng.normal(size=s) for s in ((3, 3), (3, 3), (3, 3)))
    Ws[0][1, 1] = np.nan
    for fn in (lf.bounds.delta_star, lf.bounds.lemma_g1, lf.bounds.unimodal, lf.bounds.yun,
               lf.bounds.min2021, lf.bounds.arora, lf.bounds.corollary2, lf.bounds.homogeneous):
        with pytest.raises(ValueError, match=r"W_1\) contains non-finite"):
            fn(Ws)
    with pytest.raises(ValueError, match="A contains non-finite"):
        lf.bounds.wedge(np.full((2, 2), np.inf), np.eye(2), 1)


def test_init_and_closed_form_arguments(rng):
    with pytest.raises(ValueError, match=r"dims\[1\] must be an integer; got 4\.5"):
        lf.init.gaussian((3, 4.5, 2))
    with pytest.raises(ValueError, match="seed must be a non-negative integer.*got -1"):
        lf.init.gaussian((3, 4, 2), seed=-1)
    with pytest.raises(ValueError, match=r"batch\[0\] must be an integer; got 2\.5"):
        lf.init.gaussian((3, 4, 2), batch=(2.5,))
    with pytest.raises(ValueError, match="r must be a positive integer.*2.5|r must be an integer; got 2.5"):
        lf.bounds.wedge(np.eye(3), np.eye(3), 2.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        lf.closed_form.lambda_balanced(3, 2, 3, 0.5, seed=-1)
    with pytest.raises(ValueError, match=r"widths\[0\] must be an integer; got 2\.5"):
        lf.closed_form.aligned_balanced(np.eye(2), 0.1, 2, widths=[2.5])


def test_tarmoun_target_shape_and_observed_rate_span(rng):
    Ws = lf.closed_form.lambda_balanced(3, 3, 3, 0.5, seed=1)
    with pytest.raises(ValueError, match=r"tarmoun needs the target Y of the product's shape \(\.\.\., 3, 3\); "
                                         r"got Y of shape \(2, 2\)"):
        lf.bounds.tarmoun(Ws, np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive time span"):
        lf.bounds.observed_rate(np.array([1.0, 1.0]), np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="finite losses at both ends.*Trajectory.saved"):
        lf.bounds.observed_rate(np.array([0.0, 1.0]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="loss - L_star > 0"):
        lf.bounds.observed_rate(np.array([0.0, 1.0]), np.array([1.0, 0.5]), L_star=2.0)
    assert lf.bounds.observed_rate(np.array([0.0, 2.0]), np.array([1.0, np.exp(-2.0)])) == pytest.approx(1.0)
    assert lf.bounds.observed_rate(np.array([0.0, 1.0]), np.array([1.0, 0.0])) == np.inf  # documented


def test_saved_without_the_driver_count(problem):
    """A Trajectory assembled by hand (no ``saves`` count) derives the mask from t and t_final."""
    import dataclasses

    Ws, loss = problem
    with pytest.warns(lf.MaxStepsWarning):
        traj = lf.gradient_flow(Ws, loss, 50.0, max_steps=6, throw=False)
    bare = dataclasses.replace(traj, stats={k: v for k, v in traj.stats.items() if k != "saves"})
    np.testing.assert_array_equal(bare.saved, traj.saved)


# --- issue #22: the raw errors and silent NaN the auditor's fuzz found, each a clear error now ------------


def test_float32_default_rtol_fits_the_precision(problem):
    """rtol=None is 1e-8 in float64 and 100 eps (1.19e-5) in float32: no round-off chase, fewer steps."""
    import warnings

    from linflow.flow.api import default_rtol

    Ws, _ = problem
    assert default_rtol(np.float64) == 1e-8
    assert default_rtol(np.float32) == pytest.approx(100 * np.finfo(np.float32).eps)
    W32 = tuple(W.astype(np.float32) for W in Ws)
    loss32 = lf.losses.Squared(np.ones((3, 2), dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default never warns
        default = lf.gradient_flow(W32, loss32, 20.0)
    with pytest.warns(RuntimeWarning, match="below 10 machine epsilons"):
        tight = lf.gradient_flow(W32, loss32, 20.0, rtol=1e-8)
    assert int(default.stats["steps"].sum()) < int(tight.stats["steps"].sum())
    # the same final loss to float32 accuracy of the gap
    assert float(default.loss[-1]) == pytest.approx(float(tight.loss[-1]), rel=1e-3, abs=1e-6)
    # float64: rtol=None is exactly rtol=1e-8
    loss = lf.losses.Squared(np.ones((3, 2)))
    a, b = lf.gradient_flow(Ws, loss, 2.0), lf.gradient_flow(Ws, loss, 2.0, rtol=1e-8)
    assert np.array_equal(a.loss, b.loss)


def test_issue22_named_inputs_get_clear_errors(rng, problem):
    Ws, loss = problem
    with pytest.raises(ValueError, match="ws contains non-finite"):
        lf.bounds.scalar_ideal(np.array([0.5, np.nan, 1.0]))
    with pytest.raises(ValueError, match="iters must be at most"):
        lf.bounds.scalar_ideal(np.array([0.5, 1.0]), iters=10**9)
    with pytest.raises(ValueError, match=r"delta >= 0"):
        lf.bounds.printed.figure1_bound(np.arange(3), 0.1, -0.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="alpha contains non-finite"):
        lf.bounds.loss_curve(np.linspace(0, 1, 3), 1.0, np.nan, 1.0)
    with pytest.raises(ValueError, match="scale must be non-negative and finite"):
        lf.init.balanced((3, 4, 2), scale=np.nan)
    with pytest.raises(TypeError, match="scale must be a number"):
        lf.init.unimodal((3, 2, 2, 1), 3, [0.5, 0.4], scale=None)
    with pytest.raises(TypeError, match=r"D must be a number"):
        lf.init.unimodal((3, 2, 2, 1), 3, None)
    with pytest.raises(TypeError, match="loss must be a linflow loss"):
        lf.value_and_gradients(Ws, None)
    with pytest.raises(TypeError, match=r"Ws\[1\] \(W_2\) must be an array"):
        lf.product((Ws[0], None))
    with pytest.raises(ValueError, match="too large for float64"):
        lf.lambda_min(tuple(W * 1e200 for W in Ws))
    X = rng.normal(size=(6, 3))
    y = np.sign(X @ np.ones(3) + 0.1)
    with pytest.raises(TypeError, match="labels y must be numbers"):
        lf.losses.Exponential(X, np.where(y > 0, "a", "b"))
    for bad in (np.nan, np.inf, -1.0):
        with pytest.raises(ValueError, match="margin must be positive and finite"):
            lf.losses.Exponential(X, y, margin=bad)
    with pytest.raises(ValueError, match="margin = 100 is larger than these data can have"):
        lf.losses.Logistic(X, y, margin=100.0)
    with pytest.raises(ValueError, match="tol must be non-negative"):
        lf.bounds.unimodal_index(Ws, tol=-1.0)
    with pytest.raises(ValueError, match="n_steps must be at most"):
        lf.gradient_descent(Ws, loss, 0.1, 1e200)
    with pytest.raises(TypeError, match="diagnostics must be"):
        lf.gradient_flow(Ws, loss, 1.0, diagnostics=None)
    with pytest.raises(ValueError, match="rtol must be positive"):
        lf.flow.Dopri5(rtol=np.nan)
    with pytest.raises(TypeError, match="asarray takes numbers"):
        lf.asarray(None)


def test_scale_check_admits_what_fits():
    """check_scale refuses only what would overflow: a float64 chain with norms' product 4e69 runs."""
    Ws = (np.full((2, 2), 1e35), np.full((2, 2), 1e34))  # product of norms ~ 4e69
    assert np.isfinite(lf.product(Ws)).all()
    lf.singular_values(Ws)
    with pytest.raises(ValueError, match="too large for float32"):
        lf.singular_values(tuple(W.astype(np.float32) * 1e-20 for W in Ws))  # ~4e29 > 1e18, the float32 limit


def test_widget_computes_check_their_parameters():
    """Issue 22: the explorers' compute functions refuse what their cache or their flows cannot take."""
    import time

    from linflow.widgets import theory_explorers as tx

    with pytest.raises(TypeError, match=r"kappa must be a number.*list"):  # not lru_cache's "unhashable"
        lf.widgets.pl_compute([1.0, 2.0])
    with pytest.raises(ValueError, match=r"t_end must be a number in \(0, 200\]"):  # was a flow for ages
        lf.widgets.preconditioner_compute(2, 0.5, 1e200)
    with pytest.raises(ValueError, match=r"step must be a number in \[0.001, 1\]"):  # was ZeroDivisionError
        lf.widgets.imbalance_compute(0.0)
    with pytest.raises(ValueError, match=r"L must be an integer; got nan"):  # was int(nan)'s ValueError
        tx.depth_compute(L=float("nan"))
    with pytest.raises(ValueError, match=r"L must be an integer from 1 to 10"):
        tx.depth_compute(L=40)
    with pytest.raises(ValueError, match=r"lams must hold at least 2"):
        tx.two_layer_explorer((1.0,))
    with pytest.raises(TypeError, match=r"sliders must be a sequence of Slider"):
        lf.widgets.Explorer(lf.widgets.depth_compute, lf.widgets.depth_plot, ["depth"])
    t0 = time.process_time()
    d = tx.depth_compute(L=3, eps=0.4, t_end=60.0)  # stops at loss_tol: only the reached save points
    assert time.process_time() - t0 < 60  # (a backstop, not a timing test)
    assert d["t"].shape == d["loss"].shape == d["bound"].shape and np.all(np.isfinite(d["loss"]))


def test_asymptotic_rate_refuses_to_measure_nothing():
    """Issue 22: no silent NaN from finite input; the rate of an exponential is recovered at any time scale."""
    from linflow import rates

    with pytest.raises(ValueError, match="no decay rate to measure"):
        rates.asymptotic_rate(np.linspace(0, 1, 5), np.zeros(5))
    with pytest.raises(ValueError, match=r"loss has 4 values for 5 times"):
        rates.asymptotic_rate(np.linspace(0, 1, 5), np.ones(4))
    t = np.linspace(0, 20, 30)
    for scale in (1e-250, 1.0, 1e250):  # e^{-t/scale} sampled at t * scale: rate 1/scale
        assert rates.asymptotic_rate(t * scale, np.exp(-t)) == pytest.approx(1 / scale, rel=1e-9)


@pytest.mark.parametrize("widths", [None, (), 3, "32"])
def test_figure1_gd_widths_must_be_a_list_of_pairs(widths):
    import linflow.figure1 as f1

    with pytest.raises((TypeError, ValueError), match="linflow: widths"):
        f1.gd(widths=widths, n_steps=2)


def test_a_run_that_does_not_fit_in_memory_says_what_to_do(monkeypatch):
    """An out-of-memory error of the array library (CuPy's OutOfMemoryError is a MemoryError)
    becomes one linflow MemoryError that names the run and the remedies; it stays a
    MemoryError, so that lf.sweep.run still halves the batch."""
    import linflow as lf
    from linflow.flow import api

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Out of memory allocating 1,073,741,824 bytes")

    monkeypatch.setattr(api, "integrate_parallel", out_of_memory)
    Ws = lf.init.gaussian((2, 3, 1), batch=(4,), seed=0)
    with pytest.raises(MemoryError, match=r"run of 4 network\(s\) does not fit in memory") as info:
        lf.gradient_flow(Ws, lf.losses.Squared(np.ones((2, 1))), t_end=1.0)
    assert "1,073,741,824" in str(info.value) and "fewer networks" in str(info.value)


def test_linflow_distributed_loads_on_first_use():
    import subprocess
    import sys

    code = "import linflow as lf; print(lf.distributed.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "linflow.distributed", out.stderr
