"""Integrators: conservation, GD imbalance identity, reference solver, orders, step control,
save points, backends and shapes (appendix *Numerical methods*, Test oracles)."""
from __future__ import annotations

import numpy as np
import pytest
from support import assert_like, host, random_weights, rel_err, tol

import linflow as lf

# --- helpers -------------------------------------------------------------------------


def reference(Wh, Y, t_eval, rtol=1e-12):
    """scipy solve_ivp(DOP853, rtol = atol = 1e-12) on the flattened weights (NumPy only)."""
    from scipy.integrate import solve_ivp

    shapes = [W.shape for W in Wh]
    sizes = [W.size for W in Wh]

    def unflat(z):
        out, i = [], 0
        for s, k in zip(shapes, sizes):
            out.append(z[i:i + k].reshape(s))
            i += k
        return tuple(out)

    def rhs(t, z):
        Ws = unflat(z)
        G = lf.product(Ws) - Y
        return -np.concatenate([g.ravel() for g in lf.layer_gradients(Ws, G)])

    z0 = np.concatenate([W.ravel() for W in Wh])
    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), z0, method="DOP853", t_eval=t_eval,
                    rtol=rtol, atol=rtol)
    assert sol.success
    Ws_t = [unflat(sol.y[:, k]) for k in range(len(t_eval))]
    prods = np.stack([lf.product(W) for W in Ws_t])
    losses = 0.5 * np.sum((prods - Y) ** 2, axis=(-2, -1))
    return losses, prods, Ws_t[-1]


def imbalance_drift(traj, Ws0):
    """max over l and save points of ||D_l(t) - D_l(0)||_F / max(1, ||D_l(0)||_F)."""
    D0 = [host(D) for D in lf.imbalance(Ws0)]
    worst = 0.0
    for l, d0 in enumerate(D0, 1):
        Dt = host(traj.diagnostics[f"imbalance_{l}"])
        Dt = Dt[np.all(np.isfinite(Dt), axis=(-2, -1))]
        scale = max(1.0, np.linalg.norm(d0))
        worst = max(worst, float(np.max(np.linalg.norm(Dt - d0, axis=(-2, -1)))) / scale)
    return worst


def squared_problem(rng, dims, scale=0.6, batch=()):
    Wh = random_weights(rng, dims, scale=scale, batch=batch)
    Y = rng.normal(size=(dims[0], dims[-1]))
    return Wh, Y


# --- conservation --------------------------------------------------------------------


def test_dopri5_conserves_imbalance(backend, rng):
    Wh, Y = squared_problem(rng, (3, 4, 3, 2))
    Ws = backend.weights(Wh)
    rtol = 1e-10 if backend.is64 else 1e-5
    traj = lf.gradient_flow(Ws, lf.losses.Squared(backend.asarray(Y)), 1.0, rtol=rtol, atol=rtol * 1e-2,
                            t_eval=np.linspace(0, 1, 9), diagnostics=("imbalance",))
    assert traj.ok.all()
    assert imbalance_drift(traj, Ws) < tol(backend, 1e-9, 1e-4)
    assert_like(traj.loss, backend, shape=(9,))
    assert_like(traj.diagnostics["imbalance_1"], backend, shape=(9, 4, 4))


@pytest.mark.parametrize("method", ["midpoint", "gauss2"])
def test_gauss_methods_conserve_imbalance(backend, rng, method):
    Wh, Y = squared_problem(rng, (3, 3, 3, 2))
    Ws = backend.weights(Wh)
    steps = 8
    traj = lf.gradient_flow(Ws, lf.losses.Squared(backend.asarray(Y)), 0.8, method=method,
                            dt=0.8 / steps, t_eval=np.linspace(0, 0.8, 3), diagnostics=("imbalance",))
    assert traj.ok.all()
    assert int(traj.stats["steps"]) == steps
    assert int(traj.stats["fixed_point_iterations"]) > steps
    # 1e-12 * scale * sqrt(steps) (row 4); float32: the same count of eps
    bound = np.sqrt(steps) * (1e-12 if backend.is64 else 5000 * backend.eps)
    assert imbalance_drift(traj, Ws) < bound


def test_gd_imbalance_identity(backend, rng):
    """One GD step: D_l^+ = D_l + eta^2 (g_l^T g_l - g_{l+1} g_{l+1}^T) to round-off (row 6)."""
    Wh, Y = squared_problem(rng, (3, 4, 3, 2), scale=0.8)
    Ws = backend.weights(Wh)
    loss = lf.losses.Squared(backend.asarray(Y))
    eta = 0.07
    traj = lf.gradient_descent(Ws, loss, eta, 1, save=("loss",))
    assert list(traj.steps) == [0, 1]
    g = lf.layer_gradients(Ws, lf.product(Ws) - backend.asarray(Y))
    D0, D1 = lf.imbalance(Ws), lf.imbalance(traj.weights)
    for l in range(len(D0)):
        gl, gn = host(g[l]), host(g[l + 1])
        pred = host(D0[l]) + eta**2 * (gl.T @ gl - gn @ gn.T)
        scale = max(1.0, np.linalg.norm(host(D0[l])))
        assert np.linalg.norm(host(D1[l]) - pred) <= tol(backend, 1e-12, 1e-5) * scale
        # and the step itself is W - eta g
        assert rel_err(traj.weights[l], host(Ws[l]) - eta * gl) < tol(backend, 1e-15, 1e-6)
    assert_like(traj.t, backend, shape=(2,))
    assert np.allclose(host(traj.t), [0.0, eta])


# --- reference solver and orders (NumPy only) -------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dopri5_matches_solve_ivp(seed):
    rng = np.random.default_rng(seed)
    dims = [(3, 4, 2), (2, 3, 3, 2), (2, 2, 3, 2, 2)][seed]
    Wh, Y = squared_problem(rng, dims, scale=0.7)
    ts = np.linspace(0, 3, 13)
    ref_loss, ref_prod, ref_W = reference(Wh, Y, ts)
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 3.0, rtol=1e-11, atol=1e-13, t_eval=ts, save=("loss", "product"))
    assert rel_err(traj.product, ref_prod) < 1e-8
    assert np.max(np.abs(traj.loss - ref_loss) / np.maximum(ref_loss, 1e-3)) < 1e-8
    for W, R in zip(traj.weights, ref_W):
        assert rel_err(W, R) < 1e-8


def _final_error(Wh, Y, method, dt, T, ref_W):
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), T, method=method, dt=dt, t_eval=[0.0, T])
    return np.sqrt(sum(np.sum((W - R) ** 2) for W, R in zip(traj.weights, ref_W)))


@pytest.mark.parametrize("method,lo,hi", [("midpoint", 3.5, 4.5), ("gauss2", 12.0, 20.0)])
def test_gauss_orders(rng, method, lo, hi):
    Wh, Y = squared_problem(rng, (3, 3, 3, 3))
    T = 1.0
    _, _, ref_W = reference(Wh, Y, np.array([0.0, T]))
    e1 = _final_error(Wh, Y, method, 0.05, T, ref_W)
    e2 = _final_error(Wh, Y, method, 0.025, T, ref_W)
    assert lo <= e1 / e2 <= hi, (e1, e2)


def test_gd_drift_first_order(rng):
    """Halving eta at a fixed horizon halves the imbalance drift (row 7)."""
    Wh, Y = squared_problem(rng, (3, 3, 3, 3))
    loss = lf.losses.Squared(Y)
    D0 = lf.imbalance(Wh)
    drift = []
    for eta in (0.01, 0.005):
        traj = lf.gradient_descent(Wh, loss, eta, int(round(1.0 / eta)), save=("loss",))
        D1 = lf.imbalance(traj.weights)
        drift.append(max(np.linalg.norm(a - b) for a, b in zip(D1, D0)))
    assert 1.8 <= drift[0] / drift[1] <= 2.2, drift
    # the drift bound ||D_K - D_0|| <= eta^2 sum_k (||g_l||^2 + ||g_{l+1}||^2) holds
    eta, Ws, acc = 0.005, Wh, np.zeros(len(Wh))
    for _ in range(200):
        _, g = lf.value_and_gradients(Ws, loss)
        acc += [np.sum(gl**2) for gl in g]
        Ws = tuple(W - eta * gl for W, gl in zip(Ws, g))
    traj = lf.gradient_descent(Wh, loss, eta, 200, save=("loss",))
    for l in range(len(Wh) - 1):
        np.testing.assert_allclose(traj.weights[l], Ws[l], rtol=1e-13, atol=1e-15)
        d = np.linalg.norm(lf.imbalance(traj.weights)[l] - D0[l])
        assert d <= eta**2 * (acc[l] + acc[l + 1]) * (1 + 1e-12)


# --- per-trajectory step control ---------------------------------------------------------


def _stack(*problems):
    return tuple(np.stack(ws) for ws in zip(*problems))


def test_plateau_does_not_affect_other_trajectories(rng):
    dims = (3, 3, 3)
    Y = rng.normal(size=(3, 3)) + 2 * np.eye(3)
    A = random_weights(rng, dims, scale=0.6)
    P = random_weights(rng, dims, scale=1e-4)  # a long plateau near the saddle at 0
    loss = lf.losses.Squared(Y)
    alone = lf.gradient_flow(A, loss, 10.0, save=("loss", "product"))
    both = lf.gradient_flow(_stack(A, P), loss, 10.0, save=("loss", "product"))
    assert np.array_equal(both.loss[:, 0], alone.loss)
    assert np.array_equal(both.product[:, 0], alone.product)
    assert both.stats["steps"][0] == alone.stats["steps"]
    assert both.stats["rejected"][0] == alone.stats["rejected"]
    assert both.stats["steps"][1] != alone.stats["steps"]
    for Wb, Wa in zip(both.weights, alone.weights):
        assert np.array_equal(Wb[0], Wa)


@pytest.mark.parametrize("method", ["dopri5", "midpoint"])
def test_compaction_matches_unbatched(rng, method):
    """20 trajectories, most converge early (loss_tol): batch compaction changes nothing."""
    dims = (2, 3, 2)
    B = 16
    scales = np.where(np.arange(B) < 3, 1e-3, 1.0)  # 4 slow ones keep the batch alive
    Wb = tuple(W * scales[:, None, None] for W in random_weights(rng, dims, batch=(B,)))
    Yb = rng.normal(size=(B, 2, 2)) + 2 * np.eye(2)  # per-network targets must follow compaction
    kw = dict(loss_tol=1e-6, t_eval=np.linspace(0, 12, 25), method=method,
              dt=None if method == "dopri5" else 0.05, diagnostics=("sigma_min",))
    batched = lf.gradient_flow(Wb, lf.losses.Squared(Yb), 12.0, **kw)
    status = batched.status
    assert np.sum(status == lf.Status.CONVERGED) >= 10
    for i in range(B) if method == "dopri5" else (0, 3, 4, B - 1):
        one = lf.gradient_flow(tuple(W[i] for W in Wb), lf.losses.Squared(Yb[i]), 12.0, **kw)
        assert one.status == status[i]
        np.testing.assert_allclose(batched.loss[:, i], one.loss, rtol=1e-14, atol=0)
        np.testing.assert_allclose(batched.diagnostics["sigma_min"][:, i], one.diagnostics["sigma_min"],
                                   rtol=1e-14, atol=0)
        assert batched.stats["steps"][i] == one.stats["steps"]
        assert batched.t_final[i] == one.t_final
        for Wbat, Wone in zip(batched.weights, one.weights):
            np.testing.assert_allclose(Wbat[i], Wone, rtol=1e-14, atol=1e-300)


def test_gd_per_network_steps_with_compaction(rng):
    B = 18
    Wb = random_weights(rng, (2, 3, 2), batch=(B,), scale=0.7)
    Y = rng.normal(size=(2, 2)) + 2 * np.eye(2)
    eta = np.linspace(0.02, 0.2, B)
    traj = lf.gradient_descent(Wb, lf.losses.Squared(Y), eta, 400, loss_tol=1e-8)
    assert traj.t.shape == (len(traj.steps), B)
    for i in (0, 7, B - 1):
        one = lf.gradient_descent(tuple(W[i] for W in Wb), lf.losses.Squared(Y), float(eta[i]), 400,
                                  loss_tol=1e-8)
        np.testing.assert_allclose(traj.loss[:, i], one.loss, rtol=1e-14, atol=0)
        assert traj.status[i] == one.status
        np.testing.assert_allclose(traj.t_final[i], one.t_final, rtol=1e-15)


# --- save points --------------------------------------------------------------------------


def test_save_points_match_reference(rng):
    Wh, Y = squared_problem(rng, (3, 4, 2))
    ts = np.sort(rng.uniform(0, 4, size=17))
    ts = np.concatenate([[0.0], ts, [4.0]])
    ref_loss, ref_prod, _ = reference(Wh, Y, ts)
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 4.0, rtol=1e-11, atol=1e-13, t_eval=ts, save=("loss", "product"))
    assert np.array_equal(traj.t, ts)
    assert np.max(np.abs(traj.loss - ref_loss) / np.maximum(ref_loss, 1e-3)) < 1e-8
    assert rel_err(traj.product, ref_prod) < 1e-8


def test_many_save_points_in_one_step(rng):
    """Loose tolerance: each step crosses dozens of save points (rollback with more passes)."""
    Wh, Y = squared_problem(rng, (3, 4, 2))
    loss = lf.losses.Squared(Y)
    dense_ts = np.linspace(0, 5, 1001)
    dense = lf.gradient_flow(Wh, loss, 5.0, rtol=1e-5, atol=1e-7, t_eval=dense_ts)
    sparse = lf.gradient_flow(Wh, loss, 5.0, rtol=1e-5, atol=1e-7, t_eval=dense_ts[::100])
    assert dense.stats["steps"] < 100  # so >= 10 save points per step on average
    assert not np.any(np.isnan(dense.loss))
    assert dense.stats["steps"] == sparse.stats["steps"]  # save points do not change the steps
    np.testing.assert_array_equal(dense.loss[::100], sparse.loss)
    ref_loss, _, _ = reference(Wh, Y, dense_ts)
    assert np.max(np.abs(dense.loss - ref_loss)) < 1e-4 * max(1.0, ref_loss[0])


def test_gauss_lands_on_save_points(rng):
    Wh, Y = squared_problem(rng, (2, 3, 2))
    ts = np.array([0.0, 0.013, 0.5, 0.5, 1.0])
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 1.0, method="gauss2", dt=0.1, t_eval=ts)
    assert not np.any(np.isnan(traj.loss))
    assert traj.loss[2] == traj.loss[3]
    ref_loss, _, _ = reference(Wh, Y, np.array([0.0, 0.013, 0.5, 1.0]))
    assert np.max(np.abs(traj.loss[[0, 1, 2, 4]] - ref_loss)) < 1e-5


# --- backends ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dopri5", "gauss2"])
def test_generic_path_gives_the_same_numbers_on_every_backend(backend, rng, method, monkeypatch):
    """With NumPy on the generic array-API path too, the same host data give the same
    numbers on every namespace (bitwise in practice; 1e-14 allowed)."""
    from linflow.flow import solvers

    monkeypatch.setattr(solvers, "PACKED", False)
    Wh, Y = squared_problem(rng, (2, 3, 2), batch=(3,))
    kw = dict(method=method, t_eval=np.linspace(0, 1, 5), save=("loss", "product"))
    if backend.is64:
        kw["rtol"] = 1e-9
    else:
        kw["rtol"], kw["atol"] = 1e-5, 1e-7
    cast = (lambda a: a) if backend.is64 else (lambda a: a.astype(np.float32))
    ref = lf.gradient_flow(tuple(cast(W) for W in Wh), lf.losses.Squared(cast(Y)), 1.0, **kw)
    traj = lf.gradient_flow(backend.weights(Wh), lf.losses.Squared(backend.asarray(Y)), 1.0, **kw)
    for a, b in [(traj.loss, ref.loss), (traj.product, ref.product)] + list(zip(traj.weights, ref.weights)):
        np.testing.assert_allclose(host(a), np.asarray(b, dtype=np.float64), rtol=1e-14 if backend.is64 else 1e-6,
                                   atol=0)
    assert np.array_equal(traj.stats["steps"], ref.stats["steps"])


@pytest.mark.parametrize("method", ["dopri5", "gauss2"])
def test_backends_agree_and_keep_device(backend, rng, method):
    Wh, Y = squared_problem(rng, (2, 3, 2), batch=(3,))
    kw = dict(method=method, t_eval=np.linspace(0, 1, 5), diagnostics=("imbalance", "sigma_min"), save=("loss", "product"))
    if backend.is64:
        kw["rtol"] = 1e-9
    else:
        kw["rtol"], kw["atol"] = 1e-5, 1e-7
    ref = lf.gradient_flow(Wh if backend.is64 else tuple(W.astype(np.float32) for W in Wh),
                           lf.losses.Squared(Y if backend.is64 else Y.astype(np.float32)), 1.0, **kw)
    traj = lf.gradient_flow(backend.weights(Wh), lf.losses.Squared(backend.asarray(Y)), 1.0, **kw)
    for a in (traj.t, traj.loss, traj.product, traj.t_final, *traj.weights, *traj.diagnostics.values()):
        assert_like(a, backend)
    assert traj.loss.shape == (5, 3) and traj.product.shape == (5, 3, 2, 2)
    assert isinstance(traj.status, np.ndarray)
    # same host data -> the same numbers as NumPy up to round-off: NumPy's dopri5 sums its
    # stages as small matrix products (linflow.flow.packed), the other namespaces term by term
    for a, b in [(traj.loss, ref.loss), (traj.product, ref.product)] + list(zip(traj.weights, ref.weights)):
        np.testing.assert_allclose(host(a), np.asarray(b, dtype=np.float64), rtol=1e-12 if backend.is64 else 1e-5,
                                   atol=0 if backend.is64 else 1e-6)
    assert np.array_equal(traj.stats["steps"], ref.stats["steps"])
    if backend.name == "strict-device1":
        with pytest.raises(RuntimeError):
            np.asarray(traj.loss)  # outputs stay on device1; only to_numpy brings them home
    t_np = traj.to_numpy()
    assert isinstance(t_np.loss, np.ndarray) and isinstance(t_np.weights[0], np.ndarray)


def test_gd_backend(backend, rng):
    Wh, Y = squared_problem(rng, (2, 3, 2), batch=(2,))
    traj = lf.gradient_descent(backend.weights(Wh), lf.losses.Squared(backend.asarray(Y)), 0.05, 50,
                               save_every=10, diagnostics=("imbalance",))
    assert list(traj.steps) == [0, 10, 20, 30, 40, 50]
    assert_like(traj.t, backend, shape=(6,))
    assert_like(traj.loss, backend, shape=(6, 2))
    assert np.all(np.diff(host(traj.loss), axis=0) < 0)
    np.testing.assert_allclose(host(traj.t_final), [2.5, 2.5], rtol=1e-6)


# --- shapes and diagnostics -----------------------------------------------------------------


def test_batched_shapes(rng):
    batch = (2, 3)
    Wh, Y = squared_problem(rng, (3, 4, 2), batch=batch)
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 1.0, t_eval=np.linspace(0, 1, 7), save=("loss", "product"),
                            diagnostics=("imbalance", "sigma_min", "lambda_min", "singular_values", "weights"))
    S = 7
    assert traj.t.shape == (S,)
    assert traj.loss.shape == (S,) + batch
    assert traj.product.shape == (S,) + batch + (3, 2)
    assert traj.diagnostics["imbalance_1"].shape == (S,) + batch + (4, 4)
    assert traj.diagnostics["sigma_min"].shape == (S,) + batch
    assert traj.diagnostics["lambda_min"].shape == (S,) + batch
    assert traj.diagnostics["singular_values"].shape == (S,) + batch + (2,)
    assert traj.diagnostics["weights_2"].shape == (S,) + batch + (4, 2)
    assert traj.status.shape == batch and traj.t_final.shape == batch
    assert traj.weights[0].shape == batch + (3, 4)
    assert traj.stats["steps"].shape == batch
    assert traj.batch_shape == batch
    # diagnostics agree with the network functions at the saved weights
    Wsaved = (traj.diagnostics["weights_1"][3], traj.diagnostics["weights_2"][3])
    np.testing.assert_allclose(traj.diagnostics["lambda_min"][3], lf.lambda_min(Wsaved), rtol=1e-13)
    np.testing.assert_allclose(traj.product[3], lf.product(Wsaved), rtol=1e-13)
    # callable diagnostics, dict form
    traj2 = lf.gradient_flow(Wh, lf.losses.Squared(Y), 1.0, t_eval=[0.0, 1.0],
                             diagnostics={"fro": lambda Ws: np.sum(Ws[0] ** 2, axis=(-2, -1))})
    assert traj2.diagnostics["fro"].shape == (2,) + batch
    # loss data batch broadcast against weights
    Yb = rng.normal(size=batch + (3, 2))
    traj3 = lf.gradient_flow(tuple(W[0, 0] for W in Wh), lf.losses.Squared(Yb), 1.0, t_eval=[0.0, 1.0])
    assert traj3.loss.shape == (2,) + batch
    assert traj3.weights[0].shape == batch + (3, 4)
    np.testing.assert_allclose(traj3.loss[0], 0.5 * np.sum((lf.product(tuple(W[0, 0] for W in Wh)) - Yb) ** 2,
                                                           axis=(-2, -1)), rtol=1e-14)
    # Trajectory.loss agrees with the loss of the saved product
    np.testing.assert_allclose(traj.loss, 0.5 * np.sum((traj.product - Y) ** 2, axis=(-2, -1)), rtol=1e-12)


def test_energy_dissipation_along_flow(rng):
    """d f / dt = -<G, T_W G> along the flow, from the dense output."""
    Wh, Y = squared_problem(rng, (3, 3, 2))
    ts = np.array([0.5 - 1e-4, 0.5, 0.5 + 1e-4])
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 1.0, rtol=1e-12, atol=1e-14, t_eval=ts,
                            diagnostics=("weights",))
    Wmid = tuple(traj.diagnostics[f"weights_{l}"][1] for l in (1, 2))
    dfdt = (traj.loss[2] - traj.loss[0]) / 2e-4
    e = lf.energy(Wmid, lf.product(Wmid) - Y)
    assert abs(dfdt + e) <= 1e-6 * e


def test_loss_tol_and_max_steps(rng):
    Wh, Y = squared_problem(rng, (2, 3, 2))
    Y = Y + 2 * np.eye(2)
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 50.0, loss_tol=1e-5)
    assert traj.status == lf.Status.CONVERGED and traj.t_final < 50
    last = np.nonzero(~np.isnan(traj.loss))[0][-1]
    assert traj.loss[last] > 1e-5 or traj.t[last] <= traj.t_final
    with pytest.warns(lf.MaxStepsWarning, match="max_steps"):
        traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 50.0, max_steps=5, throw=False)
    assert traj.status == lf.Status.MAX_STEPS and not traj.ok
    assert "max_steps" in lf.Status.MAX_STEPS.message


def test_weights_and_targets_broadcast(rng):
    """Weights with batch (2, 1) and targets with batch (3,) run as a (2, 3) batch, each exactly as alone."""
    Ws = random_weights(rng, (3, 4, 2), batch=(2, 1), scale=0.5)
    Y = rng.normal(size=(3, 3, 2))
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), 1.0, t_eval=[0.0, 0.5, 1.0])
    assert traj.loss.shape == (3, 2, 3) and traj.status.shape == (2, 3)
    for i, j in [(0, 0), (1, 2)]:
        one = lf.gradient_flow(tuple(W[i, 0] for W in Ws), lf.losses.Squared(Y[j]), 1.0, t_eval=[0.0, 0.5, 1.0])
        np.testing.assert_array_equal(traj.loss[:, i, j], one.loss)
    with pytest.raises(ValueError, match="do not broadcast"):
        lf.gradient_flow(Ws, lf.losses.Squared(rng.normal(size=(3, 1, 3, 2))), 1.0)


def test_gauss_default_step_is_per_trajectory_and_stable(rng):
    """Default dt: from the Hessian at the start and the sharpness at the target, per trajectory."""
    dims = (3, 3, 3, 3)
    A = random_weights(rng, dims, scale=0.6)
    big = random_weights(rng, dims, scale=0.1)
    Y = rng.normal(size=(3, 3))
    Yb = np.stack([Y, 10 * Y])  # the second net aims at a much sharper minimum
    kw = dict(method="midpoint", t_eval=[0.0, 0.3], throw=False)
    both = lf.gradient_flow(_stack(A, big), lf.losses.Squared(Yb), 0.3, **kw)
    assert list(both.status) == [lf.Status.DONE, lf.Status.DONE]
    alone = lf.gradient_flow(A, lf.losses.Squared(Y), 0.3, **kw)
    assert both.stats["steps"][0] == alone.stats["steps"] < both.stats["steps"][1]
    np.testing.assert_array_equal(both.loss[:, 0], alone.loss)


# --- saving (issue 13: saving costs B x S, not B x S per step) -----------------------------


def test_default_saves_the_loss_only(rng):
    """The default call saves the loss (not the product), and its losses are bit for bit those
    of a call that also saves the product, at the same save times."""
    Wh, Y = squared_problem(rng, (3, 4, 2), batch=(40,))
    lean = lf.gradient_flow(Wh, lf.losses.Squared(Y), 2.0)
    full = lf.gradient_flow(Wh, lf.losses.Squared(Y), 2.0, save=("loss", "product"))
    assert lean.product is None and full.product.shape == (101, 40, 3, 2)
    assert np.array_equal(lean.loss, full.loss)
    # the saved loss is the loss of the saved product (one product serves both)
    assert np.array_equal(full.loss, lf.losses.Squared(Y).value(full.product))


def test_saved_buffers_fit_the_cost_model(rng):
    """The save buffers of a run hold what ``sweep.bytes_per_trajectory`` charges for them, and
    a default call saves less than the state (at width 64 the product would be 25x more)."""
    from linflow import sweep

    dims, B, S = (3, 4, 4, 2), 5, 9
    Wh, Y = squared_problem(rng, dims, batch=(B,))
    diags = ("imbalance", "sigma_min")
    traj = lf.gradient_flow(Wh, lf.losses.Squared(Y), 0.5, t_eval=np.linspace(0, 0.5, S),
                            save=("loss", "product"), diagnostics=diags)
    saved = traj.loss.nbytes + traj.product.nbytes + sum(v.nbytes for v in traj.diagnostics.values())
    base = sweep.bytes_per_trajectory(dims, n_saves=0)
    charged = sweep.bytes_per_trajectory(dims, n_saves=S, save_product=True, diagnostics=diags) - base
    assert charged * B == saved
    W64 = random_weights(rng, (64, 64, 64, 64, 64), scale=0.1, batch=(2,))
    default = lf.gradient_flow(W64, lf.losses.Squared(np.eye(64)), 0.01)
    assert default.product is None and default.loss.nbytes < sum(W.nbytes for W in W64)


def test_saved_points_do_not_depend_on_the_batch(rng, monkeypatch):
    """Each step saves every point it crossed, two at a time through the dense output; a
    trajectory's saved losses are bit for bit those it gets alone, whether its batch
    interpolates the whole batch or gathers the crossing rows, and however many points the
    others cross (1 to 5 per step here)."""
    from linflow.flow import driver

    Wh, Y = squared_problem(rng, (3, 4, 2), batch=(24,))
    Wh = tuple(W * np.linspace(0.2, 1.5, 24)[:, None, None] for W in Wh)  # different step sizes
    loss = lf.losses.Squared(Y)
    ts = np.linspace(0.0, 2.0, 301)
    kw = dict(t_eval=ts, rtol=1e-6, atol=1e-8)
    both = lf.gradient_flow(Wh, loss, 2.0, **kw)
    per_step = 300 / both.stats["steps"]
    assert per_step.max() > 2  # some steps cross several points
    for gather in (1, 10 ** 6):  # never gather / always gather the crossing rows
        monkeypatch.setattr(driver, "GATHER_BELOW", gather)
        again = lf.gradient_flow(Wh, loss, 2.0, **kw)
        assert np.array_equal(again.loss, both.loss)
    for b in (0, 7, 23):
        alone = lf.gradient_flow(tuple(W[b] for W in Wh), loss, 2.0, **kw)
        assert np.array_equal(alone.loss, both.loss[:, b])


@pytest.mark.parametrize("method", ["dopri5", "gauss2", "gd"])
def test_host_saves_match_the_device_path(rng, monkeypatch, method):
    """Oracle for the in-place host saves: NumPy sent through the device path, whose save
    passes rebuild every buffer with ``where`` (or scatter one entry per trajectory), gives
    bit-identical saves, also across rollbacks (missed save points, a too small Gauss budget)."""
    from linflow.flow import driver

    Wh, Y = squared_problem(rng, (3, 4, 2), batch=(37,))
    loss = lf.losses.Squared(Y)
    ts = np.sort(np.concatenate([[0.0, 0.0, 1.5], rng.uniform(0, 1.5, 60)]))  # many per step

    def run():
        kw = dict(save=("loss", "product"), diagnostics=("imbalance",), check_every=4)
        if method == "gd":
            return lf.gradient_descent(Wh, loss, 0.05, 40, save_every=3, **kw)
        if method == "dopri5":
            return lf.gradient_flow(Wh, loss, 1.5, rtol=1e-7, atol=1e-9, t_eval=ts, **kw)
        solver = lf.flow.Gauss(2)
        solver.budget = 2  # rollbacks to the last check for a larger budget
        return lf.gradient_flow(Wh, loss, 1.5, method=solver, t_eval=ts, dt=0.05, **kw)

    host_run = run()
    monkeypatch.setattr(driver, "HOST_SAVES", False)
    for how in ("where", "scatter"):
        monkeypatch.setattr(driver, "SCATTER", how)
        dev = run()
        for a, b in [(host_run.loss, dev.loss), (host_run.product, dev.product)] + [
                (host_run.diagnostics[k], dev.diagnostics[k]) for k in host_run.diagnostics]:
            assert np.array_equal(a, b) and np.all(np.isfinite(a)), how
        for a, b in zip(host_run.weights, dev.weights):
            assert np.array_equal(a, b)


def test_default_and_lean_agree_on_devices(backend, rng):
    """On every namespace the default call's losses equal those of a call saving the product."""
    Wh, Y = squared_problem(rng, (2, 3, 2), batch=(4,))
    kw = dict(t_eval=np.linspace(0, 1, 13)) if backend.is64 else dict(t_eval=np.linspace(0, 1, 13), rtol=1e-5,
                                                                        atol=1e-7)
    lean = lf.gradient_flow(backend.weights(Wh), lf.losses.Squared(backend.asarray(Y)), 1.0, **kw)
    full = lf.gradient_flow(backend.weights(Wh), lf.losses.Squared(backend.asarray(Y)), 1.0,
                            save=("loss", "product"), **kw)
    assert lean.product is None
    assert_like(lean.loss, backend, shape=(13, 4))
    assert np.array_equal(host(lean.loss), host(full.loss))
