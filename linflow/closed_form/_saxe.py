"""Two layers, aligned and balanced: the logistic modes of Saxe et al. (2014)."""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_matrix, nonnegative, positive
from ..backend import namespace
from ._common import _QUIET, _checked_host, _finite_time, _host_float, _is_array, _on, _path_end


# --- Saxe: two layers, aligned balanced ------------------------------------------------


def _saxe_h(xp, s, t):
    r""":math:`h = \frac{1 - e^{-2st}}{2s}` (``t`` for ``s = 0``), without cancellation for any ``s t``.

    ``-expm1`` where :math:`|2st| \ge 10^{-4}`, the series :math:`t(1 - x/2 + x^2/6 - x^3/24)`
    in :math:`x = 2st` below (truncation error under :math:`10^{-17}` relative).
    """
    x = 2.0 * s * t
    small = xp.abs(x) < 1e-4
    xs = xp.where(small, x, xp.zeros_like(x))
    series = t * (1.0 - xs / 2.0 + xs * xs / 6.0 - xs * xs * xs / 24.0)
    xl = xp.where(small, xp.ones_like(x), x)
    sl = xp.where(small, xp.ones_like(x), s * xp.ones_like(x))
    return xp.where(small, series, (-xp.expm1(-xl) / sl) * 0.5)


def saxe_modes(s, a0, t):
    r"""Mode strengths :math:`a(t)` solving :math:`\dot a = 2a(s - a)`, :math:`a(0) = a_0` (Saxe et al. 2014).

    The logistic solution :math:`a = \dfrac{s}{1 - (1 - s/a_0)e^{-2st}}` is evaluated as

    .. math:: \frac1{a(t)} = 2h + \frac{e^{-2st}}{a_0},\qquad h = \frac{1 - e^{-2st}}{2s}
        \ (= t \text{ for } s = 0),

    a sum of two non-negative terms, so every digit survives for singular values zero, tiny or
    huge, starts tiny or huge and any time (the quotient form cancels when :math:`st` is small).
    A zero start stays at zero.  Array API: ``s``, ``a0`` and ``t`` broadcast (``t`` is usually
    ``t[:, None]``).

    Raises
    ------
    ValueError
        A non-finite value, ``a0 < 0`` or ``t < 0``.
    """
    vals = [v if _is_array(v) else _host_float("saxe_modes", k, v) for k, v in (("s", s), ("a0", a0), ("t", t))]
    args = [v for v, orig in zip(vals, (s, a0, t)) if _is_array(orig)]
    like = args[0] if args else vals[0]
    xp = namespace(*args) if args else np
    s, a0, t = (_on(like, v) for v in vals)
    try:
        np.broadcast_shapes(*(tuple(v.shape) for v in (s, a0, t)))
    except ValueError:
        raise ValueError(f"linflow: saxe_modes needs s, a0 and t that broadcast (t is usually t[:, None]); got "
                         f"shapes {tuple(s.shape)}, {tuple(a0.shape)}, {tuple(t.shape)}.") from None
    for name, v in (("s", s), ("a0", a0), ("t", t)):
        if not bool(xp.all(xp.isfinite(v))):
            raise ValueError(f"linflow: saxe_modes needs finite {name}; got {v!r}.")
    if not (bool(xp.all(a0 >= 0)) and bool(xp.all(t >= 0))):
        raise ValueError(f"linflow: saxe_modes needs a0 >= 0 and t >= 0; got a0 = {a0!r}, t = {t!r}.")
    with np.errstate(**_QUIET):
        h = _saxe_h(xp, s, t)
        E = xp.exp(-2.0 * s * t)
        a0b = a0 * xp.ones_like(h)
        big = a0b > 1.0
        a0_big = xp.where(big, a0b, xp.ones_like(h))
        a0_small = xp.where(big, xp.zeros_like(h), a0b)
        den = a0_small * h + 0.5 * E
        den = xp.where(den > 0, den, xp.ones_like(den))
        return xp.where(big, 0.5 / (h + 0.5 * E / a0_big), 0.5 * a0_small / den)


def saxe_learning_time(s, a0, af):
    r"""Time for a mode of :func:`saxe_modes` to go from ``a0`` to ``af``.

    .. math:: t = \frac1{2s}\ln\frac{a_f(s-a_0)}{a_0(s-a_f)} = \frac{\ln(1 + z)}{2s},\qquad
        z = \frac{s\,(a_0 - a_f)}{a_0\,(a_f - s)},

    evaluated as ``log1p(z)/(2s)``, by its series :math:`\frac{z}{2s}(1 - \frac z2 + \frac{z^2}3
    - \frac{z^3}4)` for :math:`|z| < 10^{-4}` (so ``s = 0`` gives :math:`\frac1{2a_f} - \frac1{2a_0}`),
    and through logarithms when :math:`z` overflows.  ``af`` must lie between ``a0`` and ``s``;
    ``af = s`` gives ``inf`` (the target is reached only in the limit).

    Raises
    ------
    ValueError
        A non-finite or negative argument, ``a0 = 0``, or ``af`` not between ``a0`` and ``s``.
    """
    s, a0, af = nonnegative("s", s), positive("a0", a0), positive("af", af)
    end = _path_end("saxe_learning_time", af, a0, s, ("af", "a0", "s"))
    if end is not None:
        return end
    if s == 0:
        return _finite_time(0.5 * ((a0 - af) / af) / a0, "saxe_learning_time")
    r = (a0 - af) / (af - s)  # > 0
    zr = r / a0
    z = s * zr
    if z < 1e-4:
        return _finite_time(0.5 * zr * (1.0 - z / 2.0 + z * z / 3.0 - z**3 / 4.0), "saxe_learning_time")
    if z < 1e15:
        return math.log1p(z) / (2.0 * s)
    lnz = math.log(s) + math.log(abs(a0 - af)) - math.log(abs(af - s)) - math.log(a0)
    return _finite_time((lnz + math.log1p(math.exp(-lnz))) / (2.0 * s), "saxe_learning_time")


def saxe(Y, a0, t):
    r"""Product :math:`W(t) = U\,\mathrm{diag}(a(t))\,V^\top` of a two-layer net from :func:`aligned_balanced`.

    Whitened squared loss :math:`\tfrac12\|W_1W_2 - Y\|_F^2`, balanced aligned start
    :math:`W(0) = U\,\mathrm{diag}(a_0)\,V^\top`; each mode follows :func:`saxe_modes`.

    Parameters
    ----------
    Y : array (n, m)
    a0 : float or array (r,)
        Initial mode strengths, ``>= 0`` (a zero mode stays zero).
    t : float or array (T,)

    Returns
    -------
    array of shape ``t.shape + (n, m)``, in ``Y``'s namespace.
    """
    xp = namespace(check_matrix(Y, "Y"))
    if Y.ndim != 2:
        raise ValueError(f"linflow: saxe needs Y of shape (n, m); got shape {tuple(Y.shape)}.")
    U, s, Vh = xp.linalg.svd(Y, full_matrices=False)
    a0 = _on(Y, _checked_host(a0, "a0", "saxe") if not hasattr(a0, "shape") else a0)
    t_arr = _on(Y, _checked_host(t, "t", "saxe") if not hasattr(t, "shape") else t)
    if not bool(xp.all(a0 >= 0)) or not bool(xp.all(xp.isfinite(a0))):
        raise ValueError(f"linflow: saxe needs initial mode strengths a0 >= 0 and finite; got {a0!r}.")
    if a0.ndim > 1 or (a0.ndim == 1 and a0.shape[0] not in (1, s.shape[0])):
        raise ValueError(f"linflow: saxe needs a0 as one value or one per mode ({s.shape[0]}); "
                         f"got shape {tuple(a0.shape)}.")
    if not bool(xp.all(t_arr >= 0)) or not bool(xp.all(xp.isfinite(t_arr))):
        raise ValueError(f"linflow: saxe needs finite times t >= 0; got {t_arr!r}.")
    a = saxe_modes(s, a0, t_arr[..., None])  # (..., r)
    W = (U * a[..., None, :]) @ Vh
    return xp.reshape(W, tuple(t_arr.shape) + tuple(Y.shape))
