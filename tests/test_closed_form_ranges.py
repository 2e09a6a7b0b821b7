"""Closed forms over their whole input range (issue 22.1-3): singular values zero and tiny, starts
zero, tiny and huge, long times; no hang; a clear error for every bad input.

The oracles are independent of the code under test: the flow (``lf.gradient_flow`` at tight
tolerance), explicit limits (``s = 0``), and the defining integrals evaluated in 25- to 40-digit
arithmetic with mpmath.  A mode ``p`` is "right to 1e-10 relative" when the exact time to reach
``p(1 - 1e-10)`` and ``p(1 + 1e-10)`` brackets the requested time: this needs no inversion in
the oracle and is exactly the claimed accuracy.
"""
from __future__ import annotations

import contextlib
import math
import signal

import numpy as np
import pytest

import linflow as lf
from linflow import closed_form as cf

mp = pytest.importorskip("mpmath")

FLOW = dict(rtol=1e-12, atol=1e-14, save=("loss", "product"))
DELTA = 1e-10


@contextlib.contextmanager
def deadline(seconds):
    """Fail (instead of hanging the run) when the block takes longer than ``seconds``."""
    def _raise(signum, frame):
        raise TimeoutError(f"did not return within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- oracles -------------------------------------------------------------------------------------


def _quad_log(f, a, b):
    """``int_a^b f(q) dq`` for ``0 < a, b`` in mpmath, through ``q = e^x`` (pieces of width <= 8)."""
    xa, xb = mp.log(a), mp.log(b)
    n = 2 + int(abs(xb - xa) / 8)
    return mp.quad(lambda x: f(mp.exp(x)) * mp.exp(x), [xa + (xb - xa) * k / n for k in range(n + 1)])


def deep_time(a, b, s, L):
    """Exact time from ``a`` to ``b`` for ``dp/dt = L p^(2-2/L) (s - p)`` (mpmath)."""
    a, b, s = mp.mpf(a), mp.mpf(b), mp.mpf(s)
    if a == b:
        return mp.mpf(0)
    if b == s:
        return mp.inf
    c = 2 - mp.mpf(2) / L
    return _quad_log(lambda q: 1 / (L * q**c * (s - q)), a, b)


def brackets(time, p, p0, target, t):
    """``time(p0 -> p(1 -+ DELTA))`` brackets ``t`` (the side towards ``target`` may be the target)."""
    lo, hi = sorted((p * (1 - DELTA), p * (1 + DELTA)))
    lo, hi = max(lo, min(p0, target)), min(hi, max(p0, target))
    near, far = (lo, hi) if p0 < target else (hi, lo)
    t_near = time(p0, near) if near != p0 else 0
    return t_near <= t <= time(p0, far), (float(t_near), float(time(p0, far)))


# --- deep aligned balanced ------------------------------------------------------------------------

DEEP_CASES = [  # (L, s, p0): growth, decay, tiny and huge on both sides
    (3, 1.0, 0.3), (3, 1.0, 1e-12), (3, 1.0, 1e-300), (3, 1e-12, 1.0), (3, 1.0, 1e20), (3, 1.0, 1e200),
    (4, 1e-12, 1.0), (4, 1e3, 1e-300), (4, 2.0, 5.0), (4, 1e-300, 1e-12),
    (7, 1.0, 1e-12), (7, 1e-8, 1e200), (7, 0.5, 0.4999),
]


@pytest.mark.parametrize("L,s,p0", DEEP_CASES)
def test_deep_modes_to_1e10_against_extended_precision(L, s, p0):
    mp.mp.dps = 20
    ts = [1e-8, 1e-2, 1.0, 30.0, 1e6]
    P = cf.deep_balanced_modes(np.array([s]), p0, L, np.array(ts))[:, 0]
    assert np.all(np.isfinite(P)) and np.all(P > 0)
    for t, p in zip(ts, P):
        ok, span = brackets(lambda a, b: deep_time(a, b, s, L), float(p), p0, s, t)
        assert ok, (t, p, span)


@pytest.mark.parametrize("L", [3, 4, 6])
def test_deep_time_against_extended_precision(L):
    """The time function itself, relative 1e-12, growth and decay, tiny and huge ends."""
    mp.mp.dps = 30
    for s, p0, p in [(1.0, 1e-12, 0.5), (1.0, 0.3, 0.3 + 1e-9), (1.0, 1e-300, 1e-290), (1.0, 0.2, 1 - 1e-12),
                     (1e-12, 1.0, 1e-6), (1.0, 1e200, 2.0), (2.0, 5.0, 2.0 + 1e-13), (0.0, 3.0, 1e-5)]:
        t = cf.deep_balanced_time(p, s, p0, L)
        ref = deep_time(p0, p, s, L)
        assert abs(t - ref) <= 1e-12 * ref, (s, p0, p, t, float(ref))


@pytest.mark.parametrize("L", [2, 3, 4, 5])
def test_deep_zero_singular_value_is_explicit(L):
    """``s = 0``: :math:`p^{-(2-2/L)} = p_0^{-(2-2/L)} + (2L-2)t` (the issue's ZeroDivisionError case)."""
    c = 2 - 2 / L
    ts = np.array([0.0, 1e-9, 0.1, 1.0, 1e3, 1e12])
    for p0 in (1e-12, 1.0, 1e20):
        exact = (p0 ** -c + (2 * L - 2) * ts) ** (-1 / c)
        np.testing.assert_allclose(cf.deep_balanced_modes([0.0], p0, L, ts)[:, 0], exact, rtol=1e-13)
    P = cf.deep_balanced(np.diag([1.0, 0.0]), 1.0, 4, [1.0])[0]
    assert P[1, 1] == pytest.approx(7.0 ** (-2 / 3), rel=1e-13) and P[0, 1] == 0


def test_deep_zero_start_and_fixed_point():
    P = cf.deep_balanced_modes([1.0, 2.0, 0.0], [0.0, 2.0, 0.0], 3, [0.0, 1.0, 1e9])
    assert np.all(P == np.array([0.0, 2.0, 0.0]))
    L1 = cf.deep_balanced_modes([2.0], 0.0, 1, [1.0])  # L = 1 is linear: a zero start moves
    assert L1[0, 0] == pytest.approx(2.0 * (1 - math.exp(-1.0)), rel=1e-15)


@pytest.mark.parametrize("L,t", [(4, 1.0), (3, 0.1)])
def test_deep_balanced_tiny_singular_value_issue_case(L, t):
    """Issue 22: ``np.diag([1, 1e-12])`` gave 0.844 (L = 4) and 0.884 (L = 3) where the flow gives 0.273 / 0.777."""
    Y = np.diag([1.0, 1e-12])
    Ws = cf.aligned_balanced(Y, 1.0, L, seed=0)
    ts = np.linspace(0.0, t, 11)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), t, t_eval=ts, **FLOW)
    exact = cf.deep_balanced(Y, 1.0, L, ts)
    np.testing.assert_allclose(exact[:, 1, 1], traj.product[:, 1, 1], rtol=1e-9)
    np.testing.assert_allclose(exact, traj.product, atol=1e-10)


@pytest.mark.parametrize("L", [3, 4])
@pytest.mark.parametrize("a0", [1e-3, 0.5, 4.0])
def test_deep_balanced_dense_grid_with_zero_and_tiny_modes(L, a0):
    """Singular values 2, 1e-8, 1e-300 and 0; starts below and above them; 121 times to convergence."""
    Y = np.zeros((4, 4))
    Y[np.arange(4), np.arange(4)] = [2.0, 1e-8, 1e-300, 0.0]
    Ws = cf.aligned_balanced(Y, a0, L, seed=1)
    t_end = 40.0 if a0 < 0.01 else 10.0
    ts = np.linspace(0.0, t_end, 121)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), t_end, t_eval=ts, **FLOW)
    exact = cf.deep_balanced(Y, a0, L, ts)
    modes_flow, modes = np.einsum("tii->ti", traj.product), np.einsum("tii->ti", exact)
    np.testing.assert_allclose(modes, modes_flow, rtol=1e-8, atol=1e-13)
    assert abs(modes[-1, 0] - 2.0) < 1e-12  # converged


def test_deep_modes_huge_start_issue_case():
    """Issue 22: relative error 1.2e-2 at p0 = 1e20 and 1.4e6 at p0 = 1e200 (true value 1.033)."""
    mp.mp.dps = 40
    for p0 in (1e20, 1e100, 1e200):
        p = float(cf.deep_balanced_modes(np.array([1.0]), p0, 3, [1.0])[0, 0])
        ok, span = brackets(lambda a, b: deep_time(a, b, 1.0, 3), p, p0, 1.0, 1.0)
        assert ok and abs(p - 1.0333) < 1e-3, (p0, p, span)


# --- Saxe (two layers) -----------------------------------------------------------------------------


def test_saxe_modes_against_extended_precision():
    """The textbook quotient at 700 digits (it cancels below ``st ~ 1e-300``), every digit of ``saxe_modes``:
    s and a0 from 0 and 1e-300 to 1e200, t up to 1e8."""
    mp.mp.dps = 700
    worst = 0.0
    for s in (0.0, 1e-300, 5e-14, 1e-8, 1.0, 1e10):
        for a0 in (0.0, 1e-300, 1e-12, 1.0, 1e20, 1e200):
            for t in (0.0, 1e-10, 1e-3, 1.0, 1e3, 1e8):
                a = float(cf.saxe_modes(np.float64(s), np.float64(a0), np.float64(t)))
                S, A, T = mp.mpf(s), mp.mpf(a0), mp.mpf(t)
                ref = A / (A * 2 * T + 1) if S == 0 else S / (1 - (1 - S / A) * mp.exp(-2 * S * T)) if A else 0
                if ref == 0:
                    assert a == 0
                    continue
                if ref < 1e-300:  # below the normal range: only absolute accuracy is possible
                    continue
                worst = max(worst, float(abs(a - ref) / ref))
    assert worst < 1e-13, worst


def test_saxe_tiny_singular_value_issue_case():
    """Issue 22: ``saxe`` was off by 2.7e-4 for a singular value 5e-14; against the flow and the s -> 0 limit."""
    Y = np.diag([1.0, 5e-14])
    Ws = cf.aligned_balanced(Y, 1.0, 2, seed=0)
    ts = np.linspace(0.0, 3.0, 31)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(Y), 3.0, t_eval=ts, **FLOW)
    W = cf.saxe(Y, 1.0, ts)
    np.testing.assert_allclose(W[:, 1, 1], traj.product[:, 1, 1], rtol=1e-9)
    np.testing.assert_allclose(W[:, 1, 1], 1.0 / (1.0 + 2.0 * ts), rtol=1e-12)  # s = 5e-14 is s = 0 to 1e-13


def test_saxe_learning_time_round_trip_and_limits():
    mp.mp.dps = 700  # the logarithm of 1 + 1e-300 needs 300 digits
    for s, a0, af in [(1.0, 1e-12, 0.5), (0.0, 1.0, 1e-3), (1e-300, 2.0, 1.0), (3.0, 1e200, 4.0),
                      (2.0, 1.0, 2.0 - 1e-12), (1e-14, 1.0, 0.5), (1.0, 0.5, 0.5 + 1e-12)]:
        t = cf.saxe_learning_time(s, a0, af)
        S, A, F = mp.mpf(s), mp.mpf(a0), mp.mpf(af)
        ref = (1 / F - 1 / A) / 2 if s == 0 else mp.log(F * (S - A) / (A * (S - F))) / (2 * S)
        assert abs(t - ref) <= 1e-12 * abs(ref), (s, a0, af, t, float(ref))
    assert cf.saxe_learning_time(2.0, 1.0, 2.0) == math.inf
    assert cf.saxe_learning_time(2.0, 1.0, 1.0) == 0.0


# --- scalar networks -------------------------------------------------------------------------------


def two_layer_time(a, b, y, c):
    a, b, y, c = (mp.mpf(v) for v in (a, b, y, c))
    if a == b:
        return mp.mpf(0)
    if b == y:
        return mp.inf
    pts = [a, b] if not (min(a, b) < 0 < max(a, b)) else [a, 0, b]
    return abs(mp.quad(lambda q: 1 / ((y - q) * mp.sqrt(4 * q * q + c * c)), pts))


@pytest.mark.parametrize("w,y", [((0.3, 1.2), 2.0), ((1.5, 0.2), 2.0), ((-0.4, 0.9), 2.0), ((1e-8, 1.0), 1.0),
                                 ((3.0, 2.0), 0.5), ((2.0, 2.0), 0.0), ((1e3, 1e-3), 1.0), ((1e-150, 1e-150), 1.0)])
def test_scalar_two_layer_to_1e10_against_extended_precision(w, y):
    mp.mp.dps = 30
    c, p0 = w[0] ** 2 - w[1] ** 2, w[0] * w[1]
    ts = [1e-9, 1e-3, 0.5, 5.0, 1e4]
    P = cf.scalar_two_layer(w, y, ts)
    assert np.all(np.isfinite(P))
    for t, p in zip(ts, P):
        if p == y:
            continue
        if abs(p) < 1e-290:  # a tiny product: the bracket would sit in the subnormal range
            continue
        ok, span = brackets(lambda a, b: two_layer_time(a, b, y, c), float(p), p0, y, t)
        assert ok, (t, p, span)


def test_scalar_two_layer_time_against_extended_precision():
    mp.mp.dps = 30
    for p, p0, y, c in [(1.0, 0.1, 2.0, 0.5), (0.1 + 1e-9, 0.1, 2.0, 0.5), (-0.5, -1.0, 1.0, 2.0),
                        (1.999999, 1e-6, 2.0, 0.0), (0.5, 3.0, 0.0, 1e-9), (0.5, 0.4, 1.0, -3.0)]:
        t = cf.scalar_two_layer_time(p, p0, y, c)
        ref = two_layer_time(p0, p, y, c)
        assert abs(t - ref) <= 1e-12 * ref, (p, p0, y, c, t, float(ref))


@pytest.mark.parametrize("w,y", [((0.3, 1.2), 2.0), ((0.5, -0.5), 1.0), ((1.0, 1.0), 0.0), ((0.0, 0.7), 1.0),
                                 ((2.0, 1.5), 0.3)])
def test_scalar_two_layer_dense_grid_any_start(w, y):
    """Any start, including a balanced one of the other sign (p tends to 0) and y = 0, against the flow."""
    Ws = tuple(np.array([[v]]) for v in w)
    ts = np.linspace(0.0, 20.0, 201)
    traj = lf.gradient_flow(Ws, lf.losses.Squared(np.array([[y]])), 20.0, t_eval=ts, **FLOW)
    P = cf.scalar_two_layer(w, y, ts)
    np.testing.assert_allclose(P, traj.product[:, 0, 0], rtol=1e-8, atol=1e-11)


def _weights_flow(w, y, ts):
    """The scalar flow on the weights themselves, integrated by SciPy at tight tolerance (independent)."""
    from scipy.integrate import solve_ivp

    def rhs(_, v):
        p = np.prod(v)
        return (y - p) * np.array([np.prod(np.delete(v, i)) for i in range(v.size)])

    sol = solve_ivp(rhs, (0, ts[-1]), np.asarray(w, float), method="DOP853", t_eval=ts, rtol=1e-13, atol=1e-15)
    return np.prod(sol.y, axis=0)


@pytest.mark.parametrize("w,y", [((0.5, 0.7, 0.9), 2.0), ((1e-4, 1.0, 1.0), 1.0), ((2.0, 1.5, 1.2, 1.1), 0.5),
                                 ((0.9, 1.1, 0.8), 0.0), ((-0.5, 0.7, -0.9), 1.5), ((0.6, 0.6, 0.6), 1.5)])
def test_scalar_deep_against_the_weights_flow(w, y):
    ts = np.linspace(0.0, 30.0, 121)
    np.testing.assert_allclose(cf.scalar_deep(w, y, ts), _weights_flow(w, y, ts), rtol=1e-9, atol=1e-13)


# --- no hang -------------------------------------------------------------------------------------


def test_issue_hang_cases_return_quickly():
    """Issue 22.2: each call never returned; now each answers (or refuses) at once."""
    with deadline(20):
        with pytest.raises(ValueError, match="p0"):
            cf.deep_balanced_modes(np.array([1.0]), np.inf, 3, [1.0])
        with pytest.raises(ValueError, match="overflow"):
            cf.scalar_two_layer(np.array([1e200, 1e200]), 0.0, [0, 1])
        p = cf.scalar_deep(np.array([0.5, 0.7, 0.9]), 2.0, [1e6])
        assert p[0] == pytest.approx(2.0, rel=1e-14)
        # long and huge times everywhere
        assert cf.deep_balanced_modes([1.0, 0.0], [1e-300, 1e200], 5, [1e300])[0, 0] == 1.0
        assert np.all(np.isfinite(cf.saxe(np.eye(2), 1e-300, np.array([1e300]))))
        assert cf.scalar_two_layer((1e-100, 3.0), 2.0, [1e300])[0] == pytest.approx(2.0, rel=1e-15)
        assert cf.scalar_deep((1e-100, 3.0, 1.0), 2.0, [1e300])[0] == pytest.approx(2.0, rel=1e-13)


# --- clear errors for bad input ---------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
Y2 = np.diag([2.0, 1.0])

BAD = [
    (cf.saxe, (Y2, NAN, 1.0), ValueError, "a0"),
    (cf.saxe, (Y2, 0.1, INF), ValueError, "t"),
    (cf.saxe, (Y2, None, 1.0), TypeError, "a0"),
    (cf.saxe, (Y2, 0.1, "1"), TypeError, "t"),
    (cf.saxe, (Y2, np.ones(3), 1.0), ValueError, "a0"),
    (cf.saxe, (np.full((2, 2), NAN), 0.1, 1.0), ValueError, "Y"),
    (cf.saxe_modes, (1.0, -1.0, 1.0), ValueError, "a0"),
    (cf.saxe_modes, (1.0, 1.0, NAN), ValueError, "t"),
    (cf.saxe_modes, (None, 1.0, 1.0), TypeError, "s"),
    (cf.saxe_learning_time, (1.0, NAN, 0.5), ValueError, "a0"),
    (cf.saxe_learning_time, (1.0, 0.1, INF), ValueError, "af"),
    (cf.saxe_learning_time, (None, 0.1, 0.5), TypeError, "s"),
    (cf.saxe_learning_time, (1.0, 0.1, 2.0), ValueError, "af between"),
    (cf.saxe_learning_time, (1.0, 0.0, 0.5), ValueError, "a0"),
    (cf.saxe_learning_time, (1.0, "0.1", 0.5), TypeError, "a0"),
    (cf.deep_balanced, (Y2, 0.1, 3, [NAN]), ValueError, "t"),
    (cf.deep_balanced, (Y2, -0.1, 3, [1.0]), ValueError, "a0"),
    (cf.deep_balanced, (Y2, 0.1, 2.5, [1.0]), ValueError, "L"),
    (cf.deep_balanced, (Y2, 0.1, None, [1.0]), TypeError, "L"),
    (cf.deep_balanced, (np.full((2, 2), INF), 0.1, 3, [1.0]), ValueError, "Y"),
    (cf.deep_balanced, (Y2, 0.1, 3, np.ones((2, 2))), ValueError, "t"),
    (cf.deep_balanced_modes, ([1.0], INF, 3, [1.0]), ValueError, "p0"),
    (cf.deep_balanced_modes, ([NAN], 0.1, 3, [1.0]), ValueError, "s"),
    (cf.deep_balanced_modes, ([-1.0], 0.1, 3, [1.0]), ValueError, "s >= 0"),
    (cf.deep_balanced_modes, ([1.0, 2.0], [0.1, 0.2, 0.3], 3, [1.0]), ValueError, "p0"),
    (cf.deep_balanced_modes, ([1.0], 0.1, 0, [1.0]), ValueError, "L"),
    (cf.deep_balanced_modes, ([1.0], 0.1, 3, None), TypeError, "t"),
    (cf.deep_balanced_modes, ([1.0], 0.1, 3, [-1.0]), ValueError, "t"),
    (cf.deep_balanced_time, (0.5, 1.0, NAN, 3), ValueError, "p0"),
    (cf.deep_balanced_time, (INF, 1.0, 0.1, 3), ValueError, "p"),
    (cf.deep_balanced_time, (0.5, None, 0.1, 3), TypeError, "s"),
    (cf.deep_balanced_time, (0.5, 1.0, 0.1, "3"), TypeError, "L"),
    (cf.deep_balanced_time, (2.0, 1.0, 0.1, 3), ValueError, "p between"),
    (cf.deep_balanced_time, (0.5, 1.0, 0.0, 3), ValueError, "p0 = 0"),
    (cf.deep_balanced_time, (np.ones(2), 1.0, 0.1, 3), TypeError, "p"),
    (cf.scalar_two_layer, ((0.3, NAN), 1.0, [1.0]), ValueError, "w"),
    (cf.scalar_two_layer, ((0.3, 1.2, 0.5), 1.0, [1.0]), ValueError, "two weights"),
    (cf.scalar_two_layer, ((0.3, 1.2), INF, [1.0]), ValueError, "y"),
    (cf.scalar_two_layer, ((0.3, 1.2), 1.0, [NAN]), ValueError, "t"),
    (cf.scalar_two_layer, (None, 1.0, [1.0]), TypeError, "w"),
    (cf.scalar_two_layer_time, (1.0, 0.1, 2.0, NAN), ValueError, "c"),
    (cf.scalar_two_layer_time, (1.0, None, 2.0, 0.5), TypeError, "p0"),
    (cf.scalar_two_layer_time, (3.0, 0.1, 2.0, 0.5), ValueError, "p between"),
    (cf.scalar_two_layer_time, (-0.5, -1.0, 1.0, 0.0), ValueError, "balanced"),
    (cf.scalar_two_layer_time, ("1", 0.1, 2.0, 0.5), TypeError, "p"),
    (cf.scalar_deep, ((0.5, 0.7), 1.0, [1.0]), None, None),  # valid: a sanity row
    (cf.scalar_deep, ((0.5, NAN), 1.0, [1.0]), ValueError, "w"),
    (cf.scalar_deep, ((0.5, 0.0), 1.0, [1.0]), ValueError, "non-zero"),
    (cf.scalar_deep, ((0.5, -0.7), 1.0, [1.0]), ValueError, "sign of y"),
    (cf.scalar_deep, ((1e200, 1e200), 1.0, [1.0]), ValueError, "overflow"),
    (cf.scalar_deep, ((0.5, 0.7), None, [1.0]), TypeError, "y"),
    (cf.scalar_deep, ((0.5, 0.7), 1.0, [INF]), ValueError, "t"),
    (cf.scalar_deep, ((), 1.0, [1.0]), ValueError, "w"),
]


@pytest.mark.parametrize("fn,args,exc,what", BAD, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_gets_a_clear_error(fn, args, exc, what):
    if exc is None:
        assert np.all(np.isfinite(fn(*args)))
        return
    with deadline(20):
        with pytest.raises(exc) as info:
            fn(*args)
    msg = str(info.value)
    assert msg.startswith("linflow") and what in msg, msg


@pytest.mark.parametrize("rtol,exc", [(NAN, ValueError), (INF, ValueError), (None, TypeError), ("1e-8", TypeError),
                                      (-1e-8, ValueError), (0.0, ValueError), (2.0, ValueError),
                                      (np.ones(2), TypeError)])
def test_scalar_deep_rtol_is_checked(rtol, exc):
    with pytest.raises(exc, match="rtol"):
        cf.scalar_deep((0.5, 0.7), 1.0, [1.0], rtol=rtol)


@pytest.mark.parametrize("w,y", [((1e100, 1e49), 1e150), ((1e-100, 3e-100), 1e-199), ((2e-60, 1e-60), 0.0),
                                 ((1e-8, 1.0), 1.0), ((1e5, 1e-5), 2.0)])
def test_two_scalar_layers_two_methods_agree_at_any_scale(w, y):
    """The explicit two-layer form and the reduced ODE (L = 2) are independent computations; huge and tiny
    scales are reduced by the flow's invariance w -> w/a, y -> y/a^L, t -> t a^(2L-2)."""
    scale = max(abs(w[0]), abs(w[1]), math.sqrt(abs(y))) ** 2
    ts = np.array([0.0, 1e-3, 0.3, 3.0, 30.0]) / scale
    A, B = cf.scalar_two_layer(w, y, ts), cf.scalar_deep(w, y, ts)
    np.testing.assert_allclose(A, B, rtol=1e-10, atol=1e-12 * max(abs(y), abs(w[0] * w[1])))
    assert A[0] == pytest.approx(w[0] * w[1], rel=1e-15)


def test_scales_too_far_apart_are_refused():
    with pytest.raises(ValueError, match="rescale"):
        cf.scalar_two_layer((1e200, 1e-100), 1.0, [1.0])
    with pytest.raises(ValueError, match="rescale"):
        cf.scalar_deep((1e150, 1e150, 1e-300), 1e-300, [1.0])


def test_fuzz_found_cases():
    """Cases a random sweep found: the stable manifold at long times, a huge depth, a time that overflows,
    an rtol below SciPy's floor, a target far below the start."""
    # balanced start of the other sign than y: p decays like e^{-Kt}, K = 2|y| (was 0/0 at long times)
    # (then dp/dt = 2p(y - p): the logistic law of saxe_modes with s = y < 0, checked to 40 digits above)
    ts = np.array([0.0, 1e-201, 3e-201, 1e-12, 1e200])
    np.testing.assert_allclose(cf.scalar_two_layer((0.3, 0.3), -1e200, ts), cf.saxe_modes(-1e200, 0.09, ts),
                               rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="L must be at most"):
        cf.deep_balanced_modes([1.0, 2.0], 1e-12, 1e200, [1.0])
    with pytest.raises(ValueError, match="overflows float64"):
        cf.saxe_learning_time(0.0, 1.0, 5e-324)
    with pytest.raises(ValueError, match="rtol"):
        cf.scalar_deep((0.5, 0.7), 1.0, [1.0], rtol=1e-300)
    with pytest.raises(ValueError, match="rescale"):
        cf.scalar_deep((0.4, 1e20, -1.9, -1e20), 1e-300, [0.0, 1e20])


def test_random_sweep_gives_clear_errors_or_finite_answers():
    """1,200 calls on numbers, NaN, inf, None, strings, lists and matrices: every call returns finite values
    (``inf`` only for a learning time to the target itself) or raises a linflow ValueError/TypeError, in time."""
    rng = np.random.default_rng(22)
    vals = [0.0, -0.0, 1e-300, 5e-324, 1e-12, 0.3, 1.0, 2.0, 1e20, 1e200, -1.0, NAN, INF, -INF, None, "1",
            [1.0, 2.0], np.ones((2, 2))]

    def pick():
        return vals[rng.integers(len(vals))]

    def num():
        return float(rng.choice([0.0, 1e-300, 1e-12, 0.3, 1.0, 2.0, 1e20, 1e200]))

    def sign():
        return float(rng.choice([-1.0, 1.0]))

    counts = dict(finite=0, clear=0, limit=0)
    for _ in range(100):
        calls = [
            (cf.saxe_modes, (pick(), pick(), pick())),
            (cf.saxe_learning_time, (pick(), pick(), pick())),
            (cf.deep_balanced_time, (pick(), pick(), pick(), int(rng.integers(1, 7)))),
            (cf.scalar_two_layer_time, (pick(), pick(), pick(), pick())),
            (cf.deep_balanced_modes, ([num(), num()], num(), int(rng.integers(1, 7)), [0.0, num(), num()])),
            (cf.deep_balanced_modes, (pick(), pick(), pick(), pick())),
            (cf.saxe, (np.diag([num(), num()]), num(), np.array([0.0, num()]))),
            (cf.deep_balanced, (np.diag([num(), num()]), num(), int(rng.integers(1, 6)), [0.0, num()])),
            (cf.scalar_two_layer, ((num() * sign(), num()), num() * sign(), [0.0, num(), num()])),
            (cf.scalar_two_layer, (pick(), pick(), pick())),
            (cf.scalar_deep, (tuple(num() * sign() + 0.1 for _ in range(int(rng.integers(1, 5)))), num(), [0.0, num()])),
            (cf.scalar_deep, (pick(), pick(), pick())),
        ]
        for fn, args in calls:
            with deadline(20):
                try:
                    out = np.asarray(fn(*args), dtype=np.float64)
                except (ValueError, TypeError) as exc:
                    assert str(exc).startswith("linflow"), (fn.__name__, args, exc)
                    counts["clear"] += 1
                    continue
                except RuntimeError as exc:  # a solver that gave up: must not happen
                    pytest.fail(f"{fn.__name__}{args}: {exc}")
            assert not np.any(np.isnan(out)), (fn.__name__, args, out)
            if np.all(np.isfinite(out)):
                counts["finite"] += 1
            else:  # the time to reach the target itself: p == target
                where = {"saxe_learning_time": (2, 0), "deep_balanced_time": (0, 1), "scalar_two_layer_time": (0, 2)}
                i, j = where.get(fn.__name__, (None, None))
                assert i is not None and args[i] == args[j], (fn.__name__, args, out)
                counts["limit"] += 1
    assert sum(counts.values()) == 1200 and counts["finite"] > 300, counts
