"""The NumPy fast path of the integrators (linflow/flow/packed.py).

Oracles: an explicit sum for the packed stage combinations, the generic
(array-API) step of the same method for a whole step, and bit-for-bit equality
of a trajectory run alone and inside batches of other sizes.
"""
import array_api_strict as xs
import numpy as np
import pytest

import linflow as lf
from linflow.flow.packed import Layout
from linflow.flow.solvers import Dopri5, Gauss, field
from tests.support import random_weights

DIMS = (3, 4, 2, 2)  # layers of different shapes: (3, 4), (4, 2), (2, 2)


def _layers(rng, b):
    return random_weights(rng, DIMS, batch=(b,))


def test_layout_views_round_trip(rng):
    y = _layers(rng, 5)
    lay = Layout(y)
    assert lay.n == sum(a * b for a, b in zip(DIMS[:-1], DIMS[1:]))
    row = lay.empty()
    lay.pack(y, row)
    for a, v in zip(y, lay.views(row)):
        assert np.array_equal(a, v)
        assert v.flags.c_contiguous  # layer-major: each layer block is contiguous
    scale = rng.uniform(0.5, 2.0, size=5)
    lay.pack(y, row, scale)
    for a, v in zip(y, lay.views(row)):
        np.testing.assert_array_equal(v, a * scale[:, None, None])


@pytest.mark.parametrize("kind", ["shared", "per_trajectory", "many"])
def test_combine_is_the_explicit_sum(rng, kind):
    b, k = 6, 5
    lay = Layout(_layers(rng, b))
    stack = [_layers(rng, b) for _ in range(k)]
    rows = lay.empty(k)
    for r, y in zip(rows, stack):
        lay.pack(y, r)
    if kind == "shared":
        C = rng.normal(size=k)
        out = [lay.views(lay.combine(C, rows))]
        want = [[sum(C[j] * stack[j][l] for j in range(k)) for l in range(3)]]
    elif kind == "per_trajectory":
        C = rng.normal(size=(b, k))
        out = [lay.views(lay.combine(C, rows))]
        want = [[sum(C[:, j, None, None] * stack[j][l] for j in range(k)) for l in range(3)]]
    else:
        C = rng.normal(size=(3, k))
        res = lay.views(lay.combine(C, rows, many=True))
        out = [[res[l][i] for l in range(3)] for i in range(3)]
        want = [[sum(C[i, j] * stack[j][l] for j in range(k)) for l in range(3)] for i in range(3)]
    for got_row, want_row in zip(out, want):
        for g, w in zip(got_row, want_row):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)


def _strict(a):
    return xs.asarray(a)


def test_dopri5_packed_step_matches_generic_step(rng):
    y = _layers(rng, 4)
    loss = lf.losses.Squared(rng.normal(size=(4, DIMS[0], DIMS[-1])))
    dt = rng.uniform(0.01, 0.2, size=4)
    v, f = field(np, y, loss)
    packed = Dopri5(1e-6, 1e-8).step(np, y, v, f, dt, loss)
    ys = tuple(_strict(a) for a in y)
    loss_s = lf.losses.Squared(_strict(np.asarray(loss.Y)))
    vs, fs = field(xs, ys, loss_s)
    generic = Dopri5(1e-6, 1e-8).step(xs, ys, vs, fs, _strict(dt), loss_s)
    for a, b in zip(packed.y1, generic.y1):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(packed.err, np.asarray(generic.err), rtol=1e-8)
    np.testing.assert_allclose(packed.value1, np.asarray(generic.value1), rtol=1e-13)
    theta = np.array([0.0, 0.3, 0.7, 1.0])
    dense_p = Dopri5().interpolate(np, y, dt, packed.dense, theta)
    dense_g = Dopri5().interpolate(xs, ys, _strict(dt), generic.dense, _strict(theta))
    for a, b, y0, y1 in zip(dense_p, dense_g, y, packed.y1):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(a[0], y0[0], rtol=1e-14, atol=1e-15)  # theta = 0: the start
        np.testing.assert_allclose(a[3], y1[3], rtol=1e-13, atol=1e-15)  # theta = 1: the end


@pytest.mark.parametrize("stages", [1, 2])
def test_gauss_packed_step_matches_generic_step(rng, stages):
    y = _layers(rng, 3)
    loss = lf.losses.Squared(rng.normal(size=(DIMS[0], DIMS[-1])))
    dt = np.array([0.02, 0.05, 0.0])  # a zero step (an inactive trajectory) must stay put
    v, f = field(np, y, loss)

    def solver():
        g = Gauss(stages)
        g.budget = 100  # the driver raises the budget as needed; here one step must resolve
        return g

    packed = solver().step(np, y, v, f, dt, loss)
    ys = tuple(_strict(a) for a in y)
    loss_s = lf.losses.Squared(_strict(loss.Y))
    vs, fs = field(xs, ys, loss_s)
    generic = solver().step(xs, ys, vs, fs, _strict(dt), loss_s)
    for a, b, a0 in zip(packed.y1, generic.y1, y):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-13, atol=1e-15)
        assert np.array_equal(a[2], a0[2])
    assert not np.any(packed.failed[:2]) and not np.any(packed.unresolved)
    # both iterate to stagnation: the counts agree up to the last round-off iterations
    assert np.all(np.abs(packed.iterations - np.asarray(generic.iterations)) <= 2)


@pytest.mark.parametrize("method", ["dopri5", "midpoint", "gauss2"])
def test_a_trajectory_does_not_depend_on_its_batch(rng, method):
    """The packed sums treat every trajectory alike, so batch size changes no bit."""
    kw = dict(method=method, t_eval=np.linspace(0, 2, 5), diagnostics=("imbalance",))
    if method != "dopri5":
        kw["dt"] = 0.05
    Y = rng.normal(size=(DIMS[0], DIMS[-1]))
    loss = lf.losses.Squared(Y)
    first = _layers(rng, 1)
    alone = lf.gradient_flow(first, loss, 2.0, **kw)
    for b in (3, 17):
        others = _layers(rng, b - 1)
        batch = tuple(np.concatenate([a, o]) for a, o in zip(first, others))
        together = lf.gradient_flow(batch, loss, 2.0, **kw)
        assert np.array_equal(together.loss[:, :1], alone.loss)
        assert np.array_equal(together.diagnostics["imbalance_1"][:, :1], alone.diagnostics["imbalance_1"])
        for a, o in zip(together.weights, alone.weights):
            assert np.array_equal(a[:1], o)
        for key in alone.stats:
            assert np.array_equal(together.stats[key][:1], alone.stats[key])


def _loss(kind, ns, rng_data):
    X, y, Y = rng_data
    if kind == "squared":
        return lf.losses.Squared(ns.asarray(Y))
    if kind == "regression":
        return lf.losses.Regression(ns.asarray(X), ns.asarray(Y[: X.shape[0]]))
    return getattr(lf.losses, kind)(ns.asarray(X), ns.asarray(y))


@pytest.mark.parametrize("method", ["dopri5", "midpoint", "gauss2"])
@pytest.mark.parametrize("case", [("squared", (3, 2)), ("squared", (3, 4, 4, 2)), ("regression", (3, 4, 2)),
                                  ("Exponential", (3, 4, 1)), ("Logistic", (3, 1))])
def test_packed_runs_match_generic_runs(rng, method, case):
    """Whole runs on NumPy (packed) and on array_api_strict (generic) agree to round-off,
    for one to three layers and for every kind of loss (the Gauss stages are evaluated as
    one more leading axis, so each loss must broadcast over it)."""
    kind, dims = case
    X = rng.normal(size=(12, dims[0]))
    y = np.sign(X @ rng.normal(size=dims[0]))
    Y = rng.normal(size=(12, dims[-1])) if kind == "regression" else rng.normal(size=(dims[0], dims[-1]))
    data = (X, y, Y)
    Ws = random_weights(rng, dims, scale=0.5, batch=(3,))
    kw = dict(method=method, t_eval=np.linspace(0, 0.2, 3))
    if method != "dopri5":  # these data make steep losses: the stage iteration needs a short step
        kw["dt"] = 0.02 if kind == "squared" else 0.005
    a = lf.gradient_flow(Ws, _loss(kind, np, data), 0.2, **kw)
    b = lf.gradient_flow(tuple(xs.asarray(W) for W in Ws), _loss(kind, xs, data), 0.2, **kw)
    np.testing.assert_allclose(a.loss, lf.to_numpy(b.loss), rtol=1e-12, atol=0)
    for Wa, Wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(Wa, lf.to_numpy(Wb), rtol=1e-11, atol=1e-14)
