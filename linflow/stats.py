r"""Statistics of sweeps: Wilson intervals, level crossings, a power law fitted in logs.

The course's chapter *Open problems at scale* reports probabilities estimated from
many random initializations and the places where they cross a level; these are the
tools, kept here so that the studies (``studies/``) and the chapter call them and
re-implement nothing.

>>> import linflow.stats as st
>>> lo, hi = st.wilson(50, 100)
>>> round(lo, 4), round(hi, 4)
(0.4038, 0.5962)
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import boolean, real, real_array

__all__ = ["wilson", "crossing", "power_law"]

#: the 97.5 % quantile of the standard normal, for 95 % two-sided intervals
Z95 = 1.959963984540054


def _counts(k, n):
    k = np.asarray(k)
    n = np.asarray(n)
    for name, v in (("k", k), ("n", n)):
        if not np.issubdtype(v.dtype, np.number) or np.any(v != np.floor(v)):
            raise TypeError(f"linflow: wilson needs whole-number counts {name}; got {v!r}.")
    try:
        k, n = np.broadcast_arrays(k, n)
    except ValueError:
        raise ValueError(f"linflow: wilson needs k and n of shapes that broadcast; got {k.shape} and {n.shape}.") from None
    if k.size == 0:
        raise ValueError("linflow: wilson needs at least one count; got empty arrays.")
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"linflow: wilson needs 0 <= k <= n and n >= 1; got k = {k!r}, n = {n!r}.")
    if np.any(n > 2.0**53):   # counts beyond exact floats (and z^2 n would overflow)
        raise ValueError(f"linflow: wilson needs counts n <= 2**53; got n = {n!r}.")
    return k.astype(np.float64), n.astype(np.float64)


def wilson(k, n, z=Z95):
    r"""Wilson score interval for a binomial proportion (Wilson 1927): ``(lo, hi)``.

    With :math:`\hat p = k/n`,

    .. math::
        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}
             {1 + \frac{z^2}{n}},

    the set of ``p`` that the score test of :math:`H_0: p` does not reject at level
    ``2(1 - Phi(z))`` (95 % for the default ``z``).  Unlike the normal interval it stays
    inside ``[0, 1]`` and is not empty at ``k = 0`` or ``k = n``.

    Parameters
    ----------
    k, n : int or array of int
        Successes and trials, ``0 <= k <= n``, ``n >= 1``; broadcast together.
    z : float
        Normal quantile (default: 95 %).

    Returns
    -------
    (lo, hi) : floats, or arrays of the broadcast shape.
    """
    k, n = _counts(k, n)
    if not (isinstance(z, (int, float)) and math.isfinite(z) and z > 0):
        raise ValueError(f"linflow: wilson needs a positive finite z; got {z!r}.")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def crossing(x, p, level, *, log=True):
    r"""Where a tabulated, increasing probability first reaches ``level``.

    Linear interpolation of ``p`` between the two grid points that bracket the first
    up-crossing, in :math:`\log x` when ``log`` (the grids of the studies are geometric).

    Parameters
    ----------
    x : array, shape ``(S,)``
        Increasing grid (positive when ``log``).
    p : array, shape ``(S,)``
        Values at the grid points (estimated probabilities).
    level : float

    Returns
    -------
    float: the interpolated crossing point; ``x[0]`` if ``p[0] >= level``; ``None`` if
    ``p`` never reaches ``level`` on the grid (no crossing to report; a table of crossings
    shows it as missing).
    """
    x = real_array(x, "x")
    p = real_array(p, "p")
    level, log = real("level", level), boolean("log", log)
    if x.ndim != 1 or x.shape != p.shape or x.size < 1:
        raise ValueError(f"linflow: crossing needs x and p of one shape (S,); got {x.shape} and {p.shape}.")
    if np.any(np.diff(x) <= 0) or (log and np.any(x <= 0)):
        raise ValueError(f"linflow: crossing needs an increasing{' positive' if log else ''} grid x; got {x}.")
    if not np.all(np.isfinite(p)):
        raise ValueError("linflow: crossing needs finite p.")
    above = np.flatnonzero(p >= level)
    if above.size == 0:
        return None
    j = int(above[0])
    if j == 0:
        return float(x[0])
    u = np.log(x) if log else x
    w = (level - p[j - 1]) / (p[j] - p[j - 1])
    v = u[j - 1] + w * (u[j] - u[j - 1])
    return float(np.exp(v) if log else v)


def power_law(x, y):
    r"""Least-squares fit of :math:`y = c\,x^\beta` in logs: ``{"c", "beta", "beta_se", "r2", "max_rel_err"}``.

    Ordinary least squares of :math:`\log y` on :math:`\log x`; ``beta_se`` is the usual
    standard error of the slope (``nan`` with two points), ``r2`` the coefficient of
    determination in logs and ``max_rel_err`` the largest :math:`|\hat y/y - 1|`.
    Points with a non-finite or non-positive ``x`` or ``y`` are left out.
    """
    try:
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"linflow: power_law needs arrays of real numbers; got {x!r} and {y!r}.") from None
    if x.shape != y.shape:
        raise ValueError(f"linflow: power_law needs x and y of one length; got {x.size} and {y.size}.")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    u, v = np.log(x[ok]), np.log(y[ok])
    if u.size < 2 or np.ptp(u) == 0:
        raise ValueError(f"linflow: power_law needs two distinct positive x with positive y; got {int(ok.sum())} usable points.")
    beta, a = np.polyfit(u, v, 1)
    res = v - (a + beta * u)
    ss = float(np.sum((v - v.mean()) ** 2))
    se = math.sqrt(float(np.sum(res ** 2)) / (u.size - 2) / float(np.sum((u - u.mean()) ** 2))) if u.size > 2 else math.nan
    return {"c": float(math.exp(a)), "beta": float(beta), "beta_se": se,
            "r2": 1.0 - float(np.sum(res ** 2)) / ss if ss > 0 else 1.0,
            "max_rel_err": float(np.max(np.abs(np.exp(a + beta * u - v) - 1.0)))}
