"""Splitting a NumPy batch over threads changes no result (flow/parallel.py)."""
import numpy as np
import pytest

import linflow as lf
from linflow.flow import parallel


def _run(monkeypatch, threads, Ws, loss, **kw):
    monkeypatch.setenv("LINFLOW_THREADS", str(threads))
    return lf.gradient_flow(Ws, loss, 1.0, **kw)


@pytest.mark.parametrize("chunk_bytes", [parallel.CHUNK_BYTES, 1])
@pytest.mark.parametrize("method", ["dopri5", "gauss2"])
def test_threads_give_identical_results(monkeypatch, rng, method, chunk_bytes):
    """One batch, two threads, or many cache-sized chunks: the same numbers, bit for bit."""
    monkeypatch.setattr(parallel, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(parallel, "MIN_CHUNK_BYTES", 1)  # split these small networks too
    B = 2 * parallel.MIN_CHUNK + 3
    Ws = tuple(rng.normal(size=(B, a, b)) * 0.5 for a, b in [(3, 4), (4, 2)])
    Y = rng.normal(size=(B, 3, 2))  # one target per network: the data must follow its chunk
    loss = lf.losses.Squared(Y)
    kw = dict(method=method, t_eval=np.linspace(0, 1, 7), diagnostics=("imbalance",))
    if method == "gauss2":
        kw["dt"] = 0.05
    one = _run(monkeypatch, 1, Ws, loss, **kw)
    two = _run(monkeypatch, 2, Ws, loss, **kw)
    assert np.array_equal(one.loss, two.loss)
    assert np.array_equal(one.product, two.product)
    assert np.array_equal(one.diagnostics["imbalance_1"], two.diagnostics["imbalance_1"])
    for a, b in zip(one.weights, two.weights):
        assert np.array_equal(a, b)
    for k in one.stats:
        assert np.array_equal(one.stats[k], two.stats[k])


def test_threaded_divergence_keeps_the_other_trajectories(monkeypatch, rng):
    monkeypatch.setenv("LINFLOW_THREADS", "2")
    monkeypatch.setattr(parallel, "MIN_CHUNK_BYTES", 1)
    B = 2 * parallel.MIN_CHUNK
    Ws = tuple(rng.normal(size=(B, 3, 3)) * 0.5 for _ in range(2))
    step = np.full(B, 0.01)
    step[B - 1] = 5.0  # far beyond 2 / lambda_max for this network
    loss = lf.losses.Squared(rng.normal(size=(3, 3)))
    with pytest.raises(lf.DivergenceError, match=f"trajectory {B - 1}") as info:
        lf.gradient_descent(Ws, loss, step, 200)
    traj = info.value.trajectory
    assert traj.status[B - 1] == lf.Status.DIVERGED
    assert np.all(traj.status[:-1] == lf.Status.DONE)
    assert np.all(np.isfinite(traj.loss[:, :-1]))


def test_small_batches_stay_in_one_thread(monkeypatch):
    """Below MIN_CHUNK_BYTES of state per thread the batch is not split (threads would cost
    more than they give); above it, it is."""
    calls = []
    real = parallel.integrate

    def spy(xp, y0, *a, **kw):
        calls.append(y0[0].shape[0])
        return real(xp, y0, *a, **kw)

    monkeypatch.setattr(parallel, "integrate", spy)
    monkeypatch.setenv("LINFLOW_THREADS", "2")
    rng = np.random.default_rng(0)
    per_traj = 3 * 10 * 10 * 8
    least = -(-parallel.MIN_CHUNK_BYTES // per_traj)
    Y = rng.normal(size=(10, 10))
    for B, pieces in ((2 * least - 1, [2 * least - 1]), (2 * least, [least, least])):
        calls.clear()
        Ws = tuple(rng.normal(size=(B, 10, 10)) / 10 for _ in range(3))
        lf.gradient_flow(Ws, lf.losses.Squared(Y), 0.01, progress=False)
        assert calls == pieces, (B, calls)
