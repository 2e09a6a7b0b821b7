r"""The measured asymptotic rate of a batch of loss curves, to set against a bound.

Corollary 1 (and eq. 7) bound the loss gap by :math:`e^{-\gamma\alpha t}` times its start;
the rate a flow actually reaches at the end is the slope of :math:`-\log(\mathcal L-\mathcal L^*)`
in its tail.  :func:`tail_rate` fits that slope, by least squares, on the saved points whose
gap lies in a window, for every trajectory of a batch at once (the single-curve helper of the
chapters, :func:`asymptotic_rate`, works on the absolute gap and falls back to the tail of the
curve when too few points fall in the window).
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import boolean, integer, nonnegative, positive, real
from .backend import to_numpy

__all__ = ["asymptotic_rate", "tail_rate"]


def tail_rate(t, loss, *, lo=1e-12, hi=1e-6, relative=True, L_star=0.0, min_points=3):
    r"""Least-squares slope of :math:`-\log(\mathcal L(t)-\mathcal L^*)` where the gap lies in ``[lo, hi]``.

    Parameters
    ----------
    t : array, shape ``(S,)``
        Save times (``Trajectory.t``).
    loss : array, shape ``(S, ...)``
        Losses at the save times, batched over trailing axes (``Trajectory.loss``).
    lo, hi : float
        The window of gaps used, ``0 < lo < hi``; with ``relative`` the gaps are divided
        by the gap at ``t[0]`` first.
    relative : bool
    L_star : float
        The optimal value :math:`\mathcal L^*`.
    min_points : int
        Fewer saved points in the window give ``nan`` for that trajectory.

    Returns
    -------
    numpy array of shape ``loss.shape[1:]`` (a float for one curve): the rate
    :math:`\hat r`, with :math:`\mathcal L-\mathcal L^*\approx Ce^{-\hat rt}` in the window,
    so that ``hat_r / (gamma * alpha) >= 1`` is what eq. (7) predicts asymptotically.
    """
    lo, hi, L_star = positive("lo", lo), positive("hi", hi), real("L_star", L_star)
    relative, min_points = boolean("relative", relative), integer("min_points", min_points, minimum=2)
    try:
        t = np.asarray(to_numpy(t), dtype=np.float64)
        gap = np.asarray(to_numpy(loss), dtype=np.float64) - L_star
    except (TypeError, ValueError):
        raise TypeError("linflow: tail_rate needs arrays of real numbers for t and loss.") from None
    if t.ndim != 1 or gap.ndim < 1 or gap.shape[0] != t.size or t.size < 2:
        raise ValueError(
            f"linflow: tail_rate needs t of shape (S,), S >= 2, and loss of shape (S, ...); got t of "
            f"shape {t.shape} and loss of shape {gap.shape}."
        )
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
        raise ValueError("linflow: tail_rate needs finite, strictly increasing save times t.")
    if not lo < hi:
        raise ValueError(f"linflow: tail_rate needs 0 < lo < hi; got lo = {lo!r}, hi = {hi!r}.")
    if relative:
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = gap / gap[:1]
    # one curve at a time, each a fresh contiguous copy: NumPy's vectorized log and its sums then
    # see the same memory layout whatever the batch around the curve, so a row of a study is
    # the same bits in any batch
    flat = np.moveaxis(gap, 0, -1).reshape(-1, t.size)
    k = np.zeros(flat.shape[0], dtype=np.int64)
    slope = np.full(flat.shape[0], np.nan)
    for b in range(flat.shape[0]):
        g = np.array(flat[b])
        w = np.isfinite(g) & (g >= lo) & (g <= hi)
        k[b] = int(w.sum())
        if k[b] >= 2:
            tb, yb = np.array(t[w]), np.log(np.array(g[w]))
            dt = tb - tb.mean()
            slope[b] = float((dt * (yb - yb.mean())).sum() / (dt * dt).sum())
    k, slope = k.reshape(gap.shape[1:]), slope.reshape(gap.shape[1:])
    out = np.where(k >= max(2, int(min_points)), -slope, np.nan)
    return float(out) if out.ndim == 0 else out


def _curve(t, loss):
    """Times and values of one curve as float64 NumPy arrays of one length."""
    try:
        t, y = (np.ravel(np.asarray(to_numpy(a), dtype=np.float64)) for a in (t, loss))
    except (TypeError, ValueError):
        raise TypeError("linflow: asymptotic_rate needs arrays of real numbers for t and loss.") from None
    if t.shape != y.shape:
        raise ValueError(f"linflow: loss has {y.size} values for {t.size} times.")
    return t, y


def asymptotic_rate(t, loss, lo=1e-12, hi=1e-6):
    r"""Decay rate :math:`-\tfrac{d}{dt}\log\mathcal L` fitted (least squares) where ``lo <= loss <= hi``.

    Falls back to the last third of the positive finite samples when fewer than three
    fall in the window.  With fewer than three positive finite samples there is no rate to
    measure: a ``ValueError`` says so (the callers decide what to show instead).

    Parameters
    ----------
    t, loss : array
        Times and loss gaps, shape ``(S,)``.
    lo, hi : float
        Window of loss values used for the fit.

    Returns
    -------
    float
    """
    t, y = _curve(t, loss)
    lo, hi = nonnegative("lo", lo), positive("hi", hi)
    if not np.all(np.isfinite(t)):
        raise ValueError("linflow: the times t must be finite.")
    ok = np.isfinite(y) & (y > 0)
    win = ok & (y >= lo) & (y <= hi)
    if win.sum() < 3:
        idx = np.flatnonzero(ok)
        if idx.size < 3:
            raise ValueError(f"linflow: no decay rate to measure: {idx.size} positive finite loss value(s) "
                             "(a fit needs at least three).")
        win = np.zeros_like(ok)
        win[idx[2 * idx.size // 3:]] = True
    tw = t[win]
    span = float(np.ptp(tw))
    if span == 0:
        raise ValueError("linflow: no decay rate to measure: the samples of the fit are all at one time.")
    with np.errstate(over="ignore"):  # the fit in a unit time (times may be tiny or huge), then rescaled
        rate = -float(np.polyfit((tw - tw[0]) / span, np.log(y[win]), 1)[0]) / span
    if not math.isfinite(rate):
        raise ValueError(f"linflow: the decay rate over a time span of {span:g} overflows a float.")
    return rate
