"""Shared helpers of :mod:`linflow.bounds`: sorted spectra, padding, checks, tolerances.

Eigenvalues and singular values are in **decreasing** order (course appendix *Numerical methods*, Conventions), and
``lam(A, k)`` is the ``k``-th largest (1-based).  Past the order of the matrix the
paper's conventions are used: :math:`\\sigma_k = 0` for :math:`k > \\min(n, m)`, and
for the ``[.]_+``-clipped eigenvalues of an imbalance the value is 0.
"""
from __future__ import annotations

import math

import array_api_compat
import numpy as np

from .._validate import check_weights
from ..backend import asarray, to_numpy

__all__ = []


class HypothesisError(ValueError):
    """A bound was asked for weights (or a loss) outside the hypothesis of its result."""


def device(a):
    return array_api_compat.device(a)


def weights(Ws, *, L=None, result=None):
    """Validate weights; optionally require exactly ``L`` layers for ``result``."""
    xp, Ws = check_weights(Ws)  # non-finite weights: a clear error, not LinAlgError
    if L is not None and len(Ws) != L:
        raise HypothesisError(
            f"linflow: {result} is stated for L = {L} layers; got L = {len(Ws)} "
            f"(weights of shapes {[tuple(W.shape) for W in Ws]})."
        )
    return xp, Ws


def mT(xp, A):
    return xp.matrix_transpose(A)


def eig_desc(xp, A):
    """Eigenvalues of symmetric ``A`` in decreasing order, shape ``(..., h)``."""
    A = 0.5 * (A + mT(xp, A))
    return xp.flip(xp.linalg.eigvalsh(A), axis=-1)


def wedge_values(xp, a, b, r):
    r"""Diagonal of :math:`A\wedge_rB` from decreasing spectra ``a`` (of A) and ``b`` (of B)."""
    h = a.shape[-1]
    shift = r - 1  # entry i (1-based) pairs with b_{i+1-r}
    if shift >= h:
        return a
    if shift <= 0:
        if shift < 0:
            raise ValueError(f"linflow: the wedge index r must be >= 1; got {r}.")
        return xp.minimum(a, b)
    inf = xp.full(tuple(b.shape[:-1]) + (shift,), math.inf, dtype=b.dtype, device=device(b))
    bs = xp.concat([inf, b[..., : h - shift]], axis=-1)
    return xp.minimum(a, bs)


def pick(xp, v, k, fill=0.0):
    """The ``k``-th (1-based) entry of ``v`` along the last axis; ``fill`` if ``k`` is past the end."""
    h = v.shape[-1]
    if 1 <= k <= h:
        return v[..., k - 1]
    return xp.full(tuple(v.shape[:-1]), fill, dtype=v.dtype, device=device(v))


def pos(xp, x):
    """:math:`[x]_+`."""
    return xp.maximum(x, xp.zeros_like(x))


def imbalances(xp, Ws):
    return tuple(mT(xp, Ws[l]) @ Ws[l] - Ws[l + 1] @ mT(xp, Ws[l + 1]) for l in range(len(Ws) - 1))


def product(xp, Ws):
    W = Ws[0]
    for V in Ws[1:]:
        W = W @ V
    return W


def sigma_desc(xp, W):
    return xp.linalg.svdvals(W)


def tolerance(xp, Ws, tol=None):
    """Host array (batch) of absolute tolerances for sign tests on the imbalances.

    Default: ``1e4 * eps(dtype) * max(1, max_l ||W_l||_F^2)`` -- round-off in
    :math:`W_l^\\top W_l - W_{l+1}W_{l+1}^\\top` scales with the squared weights.
    """
    batch = tuple(Ws[0].shape[:-2])
    if tol is not None:
        return tolerance_given(tol, batch)
    s = 0
    for W in Ws:
        s = xp.maximum(s, xp.sum(W * W, axis=(-2, -1))) if not isinstance(s, int) else xp.sum(W * W, axis=(-2, -1))
    eps = host_eps(Ws[0].dtype)
    return 1e4 * eps * np.maximum(1.0, np.asarray(to_numpy(s), dtype=np.float64))


def host_eps(dtype):
    """Machine epsilon of a (any namespace's) float dtype: float32's for 32-bit floats, else float64's."""
    return float(np.finfo(np.float32 if "32" in str(dtype) else np.float64).eps)


def tolerance_given(tol, batch):
    """An explicit ``tol``: a non-negative finite number, or such numbers of the batch's shape."""
    if isinstance(tol, (str, bytes, bool, np.bool_)):
        raise TypeError(f"linflow: tol must be a non-negative number (or one per network); got {tol!r}.")
    try:
        t = np.asarray(tol, dtype=np.float64)
        t = np.broadcast_to(t, batch)
    except (TypeError, ValueError):
        raise (ValueError if hasattr(tol, "shape") or isinstance(tol, (list, tuple)) else TypeError)(
            f"linflow: tol must be a non-negative number, or one per network of the batch shape {batch}; "
            f"got {tol!r}."
        ) from None
    if not np.all(np.isfinite(t) & (t >= 0)):
        raise ValueError(f"linflow: tol must be non-negative and finite; got {tol!r}.")
    return t


def like(xp, host, ref):
    """Host data as an array of ``ref``'s namespace, dtype and device."""
    return asarray(np.asarray(host, dtype=np.float64), like=ref)


__all__ += ["HypothesisError"]
