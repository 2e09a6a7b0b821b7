"""Chapter 9 (Experiments at scale): the facts its text proves or uses, checked on random instances.

* the proposition *The bounds hold on every window*: the rate of the loss on any window
  [s, t] of a flow is at least the bound (two layers: the gap; three layers: Delta*);
* the Wilson interval: the quadratic q(p) of the chapter is <= 0 at p-hat and >= 0 at 0 and 1,
  so the interval lies in [0, 1] and contains p-hat; its ends are the roots; at k = N the
  lower end is 1 / (1 + z^2 / N); over the outcomes k it is widest next to N / 2, where its
  half-width is z / (2 sqrt(N + z^2)) (the sample-size exercise);
* Delta* is homogeneous of degree 2 in the imbalances: scaling every weight by c scales the
  imbalances by c^2 and Delta* by c^4 (the explanation of the ntk exponent).
"""
from __future__ import annotations

import numpy as np
import pytest

import linflow as lf
from linflow import stats

Z = stats.Z95


# --- the bounds hold on every window ----------------------------------------------------------

def _window_rates(t, loss, gamma):
    """All rates -log(L(t_j) / L(t_i)) / (gamma (t_j - t_i)), i < j, of one run (L* = 0)."""
    i, j = np.triu_indices(len(t), k=1)
    return -np.log(loss[j] / loss[i]) / (gamma * (t[j] - t[i]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_layer_rate_on_every_window_is_at_least_the_gap(seed):
    rng = np.random.default_rng(seed)
    Y = np.diag(rng.uniform(0.5, 2.0, 3))
    loss = lf.losses.Squared(Y)
    for lam in (0.25, 1.0, 3.0):
        Ws = lf.init.lambda_balanced((3, 3, 3), lam, seed=seed, scale=0.5)
        gap = float(lf.to_numpy(lf.bounds.two_layer(Ws, loss)))
        assert gap == pytest.approx(lam, abs=1e-9)  # D = lam I: spreads 0, gap lam
        t = np.linspace(0.0, 2.0, 21)
        traj = lf.gradient_flow(Ws, loss, t_end=2.0, t_eval=t, save=("loss",), rtol=1e-10,
                                atol=1e-13)
        L = lf.to_numpy(traj.loss)
        assert np.all(L > 0)
        rates = _window_rates(t, L, loss.gamma)
        assert rates.min() >= gap * (1 - 1e-6), (lam, rates.min())


@pytest.mark.parametrize("seed", [0, 1])
def test_three_layer_rate_on_every_window_is_at_least_delta_star(seed):
    Y = np.ones((5, 1))
    loss = lf.losses.Squared(Y)
    Ws = lf.init.gaussian((5, 30, 30, 1), "fan_in", batch=(6,), seed=seed)
    ds = lf.to_numpy(lf.bounds.delta_star(Ws))
    assert np.all(ds > 0)  # the chapter's first experiment: every fan_in sample at h >= 20
    t = np.linspace(0.0, 0.6, 13)
    traj = lf.gradient_flow(Ws, loss, t_end=0.6, t_eval=t, save=("loss",), rtol=1e-10,
                            atol=1e-13)
    L = lf.to_numpy(traj.loss)
    for b in range(L.shape[1]):
        rates = _window_rates(t, L[:, b], loss.gamma)
        assert rates.min() >= ds[b] * (1 - 1e-6), (b, rates.min(), ds[b])


def test_observed_rate_is_the_window_rate_of_the_chapter():
    t = np.array([0.5, 0.75, 1.0])
    L = np.exp(-2.0 * 3.0 * t)  # a loss with rate 3 for gamma = 2
    assert lf.bounds.observed_rate(t, L, gamma=2.0) == pytest.approx(3.0, rel=1e-12)


# --- the Wilson interval ---------------------------------------------------------------------

@pytest.mark.parametrize("N", [1, 2, 7, 40, 200, 381])
def test_wilson_interval_is_between_the_roots_of_the_quadratic(N):
    k = np.arange(N + 1)
    p_hat = k / N
    lo, hi = stats.wilson(k, np.full_like(k, N))
    c = Z**2 / N

    def q(p):
        return (1 + c) * p**2 - (2 * p_hat + c) * p + p_hat**2

    assert np.allclose(q(0.0), p_hat**2, atol=1e-15)
    assert np.allclose(q(1.0), (1 - p_hat) ** 2, atol=1e-15)
    assert np.allclose(q(p_hat), -c * p_hat * (1 - p_hat), atol=1e-15)
    assert np.all(q(p_hat) <= 1e-15)
    assert np.all((0 <= lo) & (lo <= p_hat + 1e-15) & (p_hat - 1e-15 <= hi) & (hi <= 1))
    assert np.allclose(q(lo), 0, atol=1e-12) and np.allclose(q(hi), 0, atol=1e-12)
    assert lo[-1] == pytest.approx(1 / (1 + c), rel=1e-12) and hi[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("N", [10, 11, 200, 380, 381])
def test_wilson_is_widest_next_to_half_with_the_closed_form_half_width(N):
    k = np.arange(N + 1)
    lo, hi = stats.wilson(k, np.full_like(k, N))
    half = (hi - lo) / 2
    widest = int(np.argmax(half))
    assert abs(widest - N / 2) <= 0.5
    if N % 2 == 0:
        assert half[N // 2] == pytest.approx(Z / (2 * np.sqrt(N + Z**2)), rel=1e-12)
    else:  # no outcome at p = 1/2; the nearest ones are narrower than the closed form
        assert half.max() < Z / (2 * np.sqrt(N + Z**2))


def test_sample_size_for_half_width_005():
    need = Z**2 / (4 * 0.05**2) - Z**2
    N = int(np.ceil(need))
    assert N == 381
    for n, ok in ((N - 1, False), (N, True), (N + 1, True)):
        lo, hi = stats.wilson(np.arange(n + 1), np.full(n + 1, n))
        assert bool(np.max(hi - lo) / 2 <= 0.05) == ok, n


# --- Delta* is homogeneous of degree 2 in the imbalances --------------------------------------

@pytest.mark.parametrize("scheme", ["fan_in", "fan_out", "ntk"])
def test_delta_star_scales_like_the_square_of_the_imbalances(scheme):
    Ws = lf.init.gaussian((5, 12, 12, 1), scheme, batch=(20,), seed=3)
    ds = lf.to_numpy(lf.bounds.delta_star(Ws))
    for c in (0.5, 3.0):
        scaled = tuple(c * lf.to_numpy(W) for W in Ws)  # imbalances times c^2
        ds_c = lf.to_numpy(lf.bounds.delta_star(scaled))
        assert np.allclose(ds_c, c**4 * ds, rtol=1e-9, atol=1e-12 * max(1.0, c**4))
