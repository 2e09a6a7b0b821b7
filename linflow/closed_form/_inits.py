"""The special initializations that have a closed-form flow (course appendix *Numerical methods*, Closed-form solutions)."""
from __future__ import annotations

import math

import numpy as np

from .._validate import integer, real, seed as _seed
from .._validate import widths as _widths
from ..backend import asarray
from ._common import _depth, _host_svd, _like, _modes_vector, _orthonormal


# --- initializations ---------------------------------------------------------------------


def aligned_balanced(Y, a0, L=2, *, widths=None, seed=0):
    r"""Aligned balanced start: :math:`W_l = R_{l-1}\,\mathrm{diag}(a_0^{1/L})\,R_l^\top` (course appendix *Numerical methods*, Closed-form solutions).

    With :math:`Y = U\,\mathrm{diag}(s)\,V^\top` (thin SVD, ``r = min(n, m)`` modes),
    :math:`R_0 = U`, :math:`R_L = V` and random :math:`R_l` with orthonormal columns,
    the product is :math:`U\,\mathrm{diag}(a_0)\,V^\top` and every :math:`D_l = 0`.
    For ``L = 2`` this is the Saxe et al. (2014) start.

    Parameters
    ----------
    Y : array (n, m)
    a0 : float or array (r,)
        Initial mode strengths, positive.
    L : int
        Depth.
    widths : sequence of L-1 ints, optional
        Hidden widths, each ``>= r``; default ``r``.
    seed : int

    Returns
    -------
    tuple of L arrays, in ``Y``'s namespace (host data moved once).
    """
    U, s, V = _host_svd(Y)
    r = s.size
    a0 = _modes_vector(a0, r)
    L = _depth(L)
    widths = [r] * (L - 1) if widths is None else list(_widths("widths", widths))
    if len(widths) != L - 1 or any(h < r for h in widths):
        raise ValueError(f"linflow: need L-1 = {L - 1} hidden widths, each >= r = {r}; got {widths}.")
    if any(h * r > 2**31 for h in widths):
        raise ValueError(f"linflow: hidden widths {widths} too large: a factor of h x r = {max(widths)} x {r} "
                         "entries would not fit in memory.")
    rng = np.random.default_rng(_seed(seed))
    R = [U] + [_orthonormal(rng, h, r) for h in widths] + [V]
    w = a0 ** (1.0 / L)
    return tuple(_like(Y, (R[l] * w) @ R[l + 1].T) for l in range(L))


def lambda_balanced(n, h, m, lam, *, scale=1.0, seed=0):
    r"""Two layers with :math:`D_1 = W_1^\top W_1 - W_2W_2^\top = \lambda I_h` (course appendix *Numerical methods*, Closed-form solutions).

    For :math:`\lambda \ge 0` (needs ``h <= n``): draw :math:`W_2` (``h x m``), then
    :math:`W_1 = O\,(W_2W_2^\top + \lambda I)^{1/2}` with :math:`O^\top O = I_h`.
    For :math:`\lambda < 0` (needs ``h <= m``): draw :math:`W_1`, then
    :math:`W_2^\top = O\,(W_1^\top W_1 - \lambda I)^{1/2}`.

    Returns
    -------
    (W1, W2) on the default backend.
    """
    n, h, m = (integer(k, v, minimum=1) for k, v in (("n", n), ("h", h), ("m", m)))
    rng = np.random.default_rng(_seed(seed))
    lam = real("lam", lam)
    scale = real("scale", scale)

    def sqrtm(A):
        ev, E = np.linalg.eigh(A)
        return (E * np.sqrt(np.maximum(ev, 0.0))) @ E.T

    if max(n, m) * h > 2**31:
        raise ValueError(f"linflow: lambda_balanced: n, h, m = {n}, {h}, {m} too large (a layer of more than "
                         "2**31 entries would not fit in memory).")
    try:
        with np.errstate(over="raise", invalid="raise"):
            if lam >= 0:
                if h > n:
                    raise ValueError(f"linflow: lambda >= 0 needs h <= n; got h = {h}, n = {n}.")
                W2 = rng.normal(size=(h, m)) * scale / math.sqrt(h)
                W1 = _orthonormal(rng, n, h) @ sqrtm(W2 @ W2.T + lam * np.eye(h))
            else:
                if h > m:
                    raise ValueError(f"linflow: lambda < 0 needs h <= m; got h = {h}, m = {m}.")
                W1 = rng.normal(size=(n, h)) * scale / math.sqrt(h)
                W2 = (_orthonormal(rng, m, h) @ sqrtm(W1.T @ W1 - lam * np.eye(h))).T
    except FloatingPointError:
        raise ValueError(f"linflow: lambda_balanced: scale = {scale!r} and lam = {lam!r} make weights whose Gram "
                         "matrices overflow float64; use smaller values.") from None
    return asarray(W1), asarray(W2)
