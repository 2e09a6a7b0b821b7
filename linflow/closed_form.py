r"""Closed-form gradient flows: oracles for the tests and the chapters.

The derivations are in the course appendix *Numerical methods*, section Closed-form solutions.

Every function here solves :math:`\dot W_l = -\nabla_{W_l}\tfrac12\|W_1\cdots W_L - Y\|_F^2`
exactly for a special initialization, and every special initialization comes with
a builder, so a test reads ``Ws = aligned_balanced(Y, a0, L)`` followed by
``deep_balanced(Y, a0, L, t)`` against :func:`linflow.gradient_flow`.

=====================================  =================================  ==========================
solution                               initialization                     source
=====================================  =================================  ==========================
:func:`saxe` (two layers, logistic)    :func:`aligned_balanced`, ``L=2``  Saxe et al. (2014)
:func:`deep_balanced` (``L`` layers)   :func:`aligned_balanced`           Saxe et al. (2014)
:func:`riccati` (two layers)           :func:`lambda_balanced`            Fukumizu (1998)
:func:`scalar_two_layer`               any two scalars                    exact scalar flow
:func:`scalar_deep` (reduced ODE)      positive scalars, ``p0 < y``       exact reduced ODE
=====================================  =================================  ==========================

:func:`saxe` and :func:`riccati` are array-API functions (the namespace comes from
``Y`` or the weights; only ``eigh``/``svd`` are used, no ``expm``).  The others
invert an implicit solution ``t(p)`` with SciPy (``brentq``, ``quad``, ``solve_ivp``)
and work on the host in float64.  Random orthogonal factors are drawn on the host
from ``numpy.random.default_rng(seed)``, like every initialization in linflow.
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import check_matrix, check_weights, integer, real, seed as _seed, widths as _widths
from .backend import asarray, namespace, to_numpy

__all__ = [
    "saxe",
    "saxe_modes",
    "saxe_learning_time",
    "deep_balanced",
    "deep_balanced_modes",
    "deep_balanced_time",
    "riccati",
    "scalar_two_layer",
    "scalar_two_layer_time",
    "scalar_deep",
    "aligned_balanced",
    "lambda_balanced",
]


# --- helpers ----------------------------------------------------------------------------


def _orthonormal(rng, rows, cols):
    """A random ``rows x cols`` matrix with orthonormal columns (host, float64)."""
    if cols > rows:
        raise ValueError(f"linflow: cannot have {cols} orthonormal columns in dimension {rows}.")
    Q, R = np.linalg.qr(rng.normal(size=(rows, cols)))
    return Q * np.sign(np.diag(R))


def _host_svd(Y):
    Yh = np.asarray(to_numpy(Y), dtype=np.float64)
    if Yh.ndim != 2:
        raise ValueError(f"linflow: Y must be a matrix (n, m); got shape {Yh.shape}.")
    U, s, Vh = np.linalg.svd(Yh, full_matrices=False)
    return U, s, Vh.T


def _like(Y, a):
    """Host ``a`` moved to ``Y``'s namespace, device and dtype (or the default backend)."""
    if hasattr(Y, "shape") and not isinstance(Y, np.ndarray):
        return asarray(a, like=Y)
    if isinstance(Y, np.ndarray):
        return np.asarray(a, dtype=Y.dtype)
    return asarray(a)


def _modes_vector(a0, r, name="a0"):
    a0 = np.broadcast_to(np.asarray(to_numpy(a0), dtype=np.float64), (r,)).copy()
    if not np.all(a0 > 0):
        raise ValueError(f"linflow: {name} must be positive (one value, or one per mode); got {a0}.")
    return a0


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
    L = integer("L", L, minimum=1)
    widths = [r] * (L - 1) if widths is None else list(_widths("widths", widths))
    if len(widths) != L - 1 or any(h < r for h in widths):
        raise ValueError(f"linflow: need L-1 = {L - 1} hidden widths, each >= r = {r}; got {widths}.")
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
    return asarray(W1), asarray(W2)


# --- Saxe: two layers, aligned balanced ------------------------------------------------


def saxe_modes(s, a0, t):
    r"""Mode strengths :math:`a(t) = \dfrac{s}{1 - (1 - s/a_0)e^{-2st}}` (Saxe et al. 2014).

    Solves :math:`\dot a = 2a(s - a)`; for ``s = 0`` the limit :math:`a_0/(1 + 2a_0t)`.
    Array API: ``s``, ``a0`` and ``t`` broadcast (``t`` is usually ``t[:, None]``).
    """
    xp = namespace(*[v for v in (s, a0, t) if hasattr(v, "shape")])
    zero = s == 0
    s_safe = xp.where(zero, xp.ones_like(s * a0 * t), s * xp.ones_like(a0 * t))
    general = s_safe / (1.0 - (1.0 - s_safe / a0) * xp.exp(-2.0 * s_safe * t))
    return xp.where(zero, a0 / (1.0 + 2.0 * a0 * t), general)


def saxe_learning_time(s, a0, af):
    r"""Time for a mode to grow from ``a0`` to ``af``: :math:`\frac1{2s}\ln\frac{a_f(s-a_0)}{a_0(s-a_f)}`."""
    return math.log(af * (s - a0) / (a0 * (s - af))) / (2.0 * s)


def saxe(Y, a0, t):
    r"""Product :math:`W(t) = U\,\mathrm{diag}(a(t))\,V^\top` of a two-layer net from :func:`aligned_balanced`.

    Whitened squared loss :math:`\tfrac12\|W_1W_2 - Y\|_F^2`, balanced aligned start
    :math:`W(0) = U\,\mathrm{diag}(a_0)\,V^\top`; each mode follows :func:`saxe_modes`.

    Parameters
    ----------
    Y : array (n, m)
    a0 : float or array (r,)
    t : float or array (T,)

    Returns
    -------
    array of shape ``t.shape + (n, m)``, in ``Y``'s namespace.
    """
    xp = namespace(check_matrix(Y, "Y"))
    U, s, Vh = xp.linalg.svd(Y, full_matrices=False)
    a0, t_arr = _on(Y, a0), _on(Y, t)
    if not bool(xp.all(a0 > 0)) or not bool(xp.all(xp.isfinite(a0))):
        raise ValueError(f"linflow: saxe needs initial mode strengths a0 > 0 and finite; got {a0!r}.")
    if not bool(xp.all(t_arr >= 0)) or not bool(xp.all(xp.isfinite(t_arr))):
        raise ValueError(f"linflow: saxe needs finite times t >= 0; got {t_arr!r}.")
    a = saxe_modes(s, a0, t_arr[..., None])  # (..., r)
    W = (U * a[..., None, :]) @ Vh
    return xp.reshape(W, tuple(t_arr.shape) + tuple(Y.shape))


def _device(a):
    import array_api_compat

    return array_api_compat.device(a)


def _on(like, v):
    """``v`` (a number, host data, or an array of ``like``'s library) as an array like ``like``."""
    if hasattr(v, "shape") and not isinstance(v, (np.ndarray, np.generic)):
        return v
    if isinstance(like, np.ndarray):
        return np.asarray(v, dtype=like.dtype)
    return asarray(np.asarray(v, dtype=np.float64), like=like)


# --- deep aligned balanced -----------------------------------------------------------------


def deep_balanced_time(p, s, p0, L):
    r"""Time for a mode to go from ``p0`` to ``p``: :math:`t = \int_{p_0}^{p}\frac{dq}{L\,q^{2-2/L}(s-q)}`.

    In the layer variable :math:`w = p^{1/L}` the partial fraction
    :math:`\frac{1}{w^{L-1}(s-w^L)} = \frac1s\big[w^{1-L} + \frac{w}{s-w^L}\big]` gives

    .. math:: t = \frac1s\,\frac{w_0^{2-L}-w^{2-L}}{L-2} + \frac1s\int_{w_0}^{w}\frac{v\,dv}{s-v^L}
        \quad(L\ge3),

    and the log singularity at :math:`v_* = s^{1/L}` is subtracted analytically
    (residue :math:`v_*^{2-L}/L`), so ``quad`` integrates a smooth function.  Closed
    forms for ``L = 1, 2`` (Saxe) and ``L = 4``.  ``p`` must lie between ``p0`` and
    ``s`` (host, float64).
    """
    p, s, p0, L = float(p), float(s), float(p0), int(L)
    if p == p0:
        return 0.0
    if L == 1:
        return math.log((s - p0) / (s - p))
    if L == 2:
        return saxe_learning_time(s, p0, p)
    if L == 4:
        def F(q):  # s^{3/2} * (2 s^{1/2} atanh(sqrt(q/s)) - ...) written without cancellation
            x = math.sqrt(q / s)
            return -1 / (2 * s * math.sqrt(q)) + math.log(
                (1 + x) * (s + math.sqrt(s * q)) / abs(s - q)) / (4 * s**1.5)

        return F(p) - F(p0)
    from scipy.integrate import quad

    w0, w = p0 ** (1.0 / L), p ** (1.0 / L)
    vs = s ** (1.0 / L)
    A = vs ** (2 - L) / L  # residue of v / (s - v^L) at v_*

    def smooth(v):
        d = vs - v
        if abs(d) < 1e-6 * vs:  # Taylor limit of the difference at v_*
            return (L - 3) / (2 * L) * vs ** (1 - L)
        return v / (s - v**L) - A / d

    if w == vs:  # p within round-off of s: the time is infinite in floating point
        return math.inf
    reg, _ = quad(smooth, w0, w, epsabs=0.0, epsrel=1e-12, limit=200)
    sing = A * math.log(abs(vs - w0) / abs(vs - w))
    return ((w0 ** (2 - L) - w ** (2 - L)) / (L - 2) + reg + sing) / s


def _invert_time(time, p0, target, ti):
    """The ``p`` between ``p0`` and ``target`` with ``time(p) = ti``, for an increasing learning time.

    Brackets by halving the gap to ``target`` until ``time`` exceeds ``ti``, then ``brentq``.
    Near the target ``t(p)`` is ill-conditioned (course appendix *Numerical methods*, Closed-form solutions), so ``p`` is compared, not ``t``.
    """
    from scipy.optimize import brentq

    if ti == 0 or p0 == target:
        return p0
    gap = target - p0
    k = 1
    while True:
        hi = target - gap * 2.0**-k
        if hi == target or time(hi) >= ti:
            break
        k += 1
    if hi == target or math.isinf(time(hi)):
        return hi  # converged to the target within round-off
    return brentq(lambda p: time(p) - ti, p0, hi, xtol=1e-15 * max(abs(target), abs(p0)),
                  rtol=4 * np.finfo(float).eps, maxiter=200)


def deep_balanced_modes(s, p0, L, t):
    r"""Mode strengths :math:`p(t)` solving :math:`\dot p = L\,p^{2-2/L}(s-p)`.

    :func:`deep_balanced_time` is inverted with ``brentq`` on the interval between
    ``p0`` and ``s`` (never near convergence in ``t``, where ``t(p)`` is ill-conditioned).

    Parameters
    ----------
    s, p0 : array_like (r,)
        Target singular values and initial mode strengths (``p0 > 0``).
    L : int
    t : array_like (T,)

    Returns
    -------
    numpy array (T, r).
    """
    s = np.atleast_1d(np.asarray(to_numpy(s), dtype=np.float64))
    p0 = np.broadcast_to(np.asarray(to_numpy(p0), dtype=np.float64), s.shape)
    t = _times(t)
    out = np.empty((t.size, s.size))
    for j, (sj, pj) in enumerate(zip(s, p0)):
        for i, ti in enumerate(t):
            out[i, j] = _invert_time(lambda p: deep_balanced_time(p, sj, pj, L), pj, sj, ti)
    return out


def deep_balanced(Y, a0, L, t):
    r"""Product :math:`W(t) = U\,\mathrm{diag}(p(t))\,V^\top` of a depth-``L`` net from :func:`aligned_balanced`.

    The modes stay decoupled and balanced; each follows :func:`deep_balanced_modes`
    with :math:`p(0) = a_0`.  Host computation; the result is moved to ``Y``'s namespace.

    Returns
    -------
    array of shape ``(T, n, m)``.
    """
    U, s, V = _host_svd(Y)
    a0 = _modes_vector(a0, s.size)
    P = deep_balanced_modes(s, a0, L, t)
    return _like(Y, np.einsum("ir,tr,jr->tij", U, P, V))


# --- lambda-balanced Riccati --------------------------------------------------------------


def riccati(Ws, Y, t):
    r"""Product :math:`W(t)` of a :math:`\lambda`-balanced two-layer net, exactly (course appendix *Numerical methods*, Closed-form solutions).

    With :math:`Q = [W_1;\,W_2^\top]` and
    :math:`F = \begin{bmatrix}\tfrac\lambda2 I_n & Y\\ Y^\top & -\tfrac\lambda2 I_m\end{bmatrix}`,
    the flow is the matrix Riccati equation :math:`\dot Q = FQ - \tfrac12 QQ^\top Q`, solved by

    .. math:: QQ^\top(t) = e^{Ft}Q_0\Big[I_h + Q_0^\top\Big(\int_0^t e^{2Fs}ds\Big)Q_0\Big]^{-1}Q_0^\top e^{Ft}

    (Fukumizu 1998; Braun et al. 2022; Dominé et al. 2025), and :math:`W(t)` is its
    top-right block.  Only ``eigh`` of the symmetric :math:`F` and one small ``qr`` per
    time are used (array API, no ``expm``, nothing large inverted): in the eigenbasis of
    :math:`F` the factor :math:`Q(t)` (up to an orthogonal factor) is a row scaling of the
    ``Q`` factor of :math:`[G^{1/2}Z;\,I]`, whose rows are sorted by growth, so the
    evaluation stays well conditioned at every ``t`` up to convergence and beyond (the
    error stays near 1e-12 on a dense grid, where the asymptotic rate of the Riccati solution is measured;
    tested against :func:`linflow.gradient_flow` at tight tolerance).

    Parameters
    ----------
    Ws : (W1, W2), shapes (n, h) and (h, m), with :math:`D_1 = \lambda I_h`
    Y : array (n, m)
    t : float or array (T,)

    Returns
    -------
    array ``t.shape + (n, m)``.

    Raises
    ------
    ValueError
        :math:`D_1` is not a multiple of the identity (relative deviation above 1e-6).
    """
    xp, Ws = check_weights(Ws, min_layers=2)
    if len(Ws) != 2 or Ws[0].ndim != 2:
        raise ValueError(f"linflow: riccati solves two-layer networks (W1, W2), unbatched; got "
                         f"{len(Ws)} layers of shapes {[tuple(W.shape) for W in Ws]}.")
    W1, W2 = Ws
    xp = namespace(W1, W2, check_matrix(Y, "Y"))
    n, h = W1.shape
    m = W2.shape[1]
    if tuple(Y.shape) != (n, m):
        raise ValueError(f"linflow: riccati needs Y of the product's shape ({n}, {m}); got {tuple(Y.shape)}.")
    dev = _device(W1)
    D = xp.matrix_transpose(W1) @ W1 - W2 @ xp.matrix_transpose(W2)
    lam = xp.sum(xp.linalg.diagonal(D)) / h
    Ih = xp.eye(h, dtype=W1.dtype, device=dev)
    dev_rel = float(xp.max(xp.abs(D - lam * Ih))) / max(1.0, float(xp.max(xp.abs(D))))
    if dev_rel > 1e-6:
        raise ValueError(
            f"linflow: riccati needs a lambda-balanced start, D_1 = lambda I; D_1 deviates from "
            f"{float(lam):.4g} I by {dev_rel:.2g} (relative)."
        )
    In = xp.eye(n, dtype=W1.dtype, device=dev)
    Im = xp.eye(m, dtype=W1.dtype, device=dev)
    top = xp.concat([lam / 2 * In, Y], axis=1)
    bottom = xp.concat([xp.matrix_transpose(Y), -lam / 2 * Im], axis=1)
    F = xp.concat([top, bottom], axis=0)
    Q0 = xp.concat([W1, xp.matrix_transpose(W2)], axis=0)  # (n+m, h)
    ev, E = xp.linalg.eigh(F)
    ev, E = xp.flip(ev), xp.flip(E, axis=1)  # decreasing: the fastest-growing rows first
    Z = xp.matrix_transpose(E) @ Q0  # (n+m, h)
    t_arr = _on(W1, t)
    if not (bool(xp.all(xp.isfinite(t_arr))) and bool(xp.all(t_arr >= 0))):
        raise ValueError(f"linflow: riccati needs finite times t >= 0; got {t_arr!r}.")
    tt = t_arr[..., None]  # (..., n+m)
    # In the eigenbasis of F, with G = diag(int_0^t e^{2 ev s} ds) = diag(e^{2 max(ev,0) t} g),
    # g = -expm1(-2|ev|t)/(2|ev|) (-> t as ev -> 0), and K = [G^{1/2} Z; I] = Qk Rk:
    #   QQ^T = E e^{ev t} Z (I + Z^T G Z)^{-1} Z^T e^{ev t} E^T = (E V)(E V)^T,
    #   V = e^{ev t} Z Rk^{-1} = Dg Qk[:n+m],  Dg = e^{min(ev,0) t} / sqrt(g)  (bounded for t > 0).
    # Qk Qk^T (the projection on K's columns) does not change when K's columns are recombined,
    # so K is replaced by K C S^{-1}: C orthogonal makes Z C zero above its diagonal (column j
    # then grows like e^{ev_j t}), S scales each column to its largest entry (in log space, so
    # no exponential overflows or underflows at any t).  The rows stay sorted by decreasing
    # growth, so Householder QR keeps each row's relative accuracy, and V = Dg Qk inverts
    # nothing (a factor Rk^{-1} would cancel terms of size e^{(ev_1 - ev_h) t}).
    # For small t (|ev| t < 1: no grading) V = e^{ev t} Z Rk^{-1} by substitution instead.
    C, _ = xp.linalg.qr(xp.matrix_transpose(Z[:h, :]))
    ZC = Z @ C  # zero above the diagonal (to round-off)
    a = xp.abs(ev) * xp.ones_like(tt)
    small = a * xp.abs(tt) < 1e-8
    a_safe = xp.where(small, xp.ones_like(a), a)
    g = xp.where(small, tt * (1.0 - a * tt), -xp.expm1(-2.0 * a_safe * tt) / (2.0 * a_safe))
    zero = xp.zeros_like(a)
    absZC = xp.abs(ZC)
    nz = absZC > 0
    logZC = xp.log(xp.where(nz, absZC, xp.ones_like(absZC)))
    tiny = -float(xp.finfo(W1.dtype).max)
    grow = (xp.maximum(ev * tt, zero))[..., :, None] + logZC  # (..., n+m, h) log |G^{1/2}/sqrt(g) ZC|
    grow = xp.where(nz, grow, tiny * xp.ones_like(grow))
    logs = xp.max(grow, axis=-2, keepdims=True)  # (..., 1, h)
    logs = xp.where(logs == tiny, xp.zeros_like(logs), logs)  # an all-zero column: no scaling
    Gz = xp.sqrt(g)[..., :, None] * xp.sign(ZC) * xp.exp(xp.minimum(grow - logs, zero[..., :1, None]))
    Gz = xp.where(nz, Gz, xp.zeros_like(Gz))
    Iz = C * xp.exp(-logs)  # (..., h, h)
    Qk, Rk = xp.linalg.qr(xp.concat([Gz, Iz], axis=-2))
    g_safe = xp.where(g > 0, g, xp.ones_like(g))
    V_graded = (xp.exp(xp.minimum(ev * tt, zero)) / xp.sqrt(g_safe))[..., :, None] * Qk[..., : n + m, :]
    early = xp.max(a * xp.abs(tt), axis=-1) < 1.0
    Rk_early = xp.where(early[..., None, None], Rk, Ih)
    Yt = xp.exp(xp.where(early[..., None], ev * tt, zero))[..., :, None] * ZC * xp.exp(
        xp.where(early[..., None, None], -logs, zero[..., :1, None]))
    V_early = _solve_upper_right(xp, Rk_early, Yt)
    V = xp.where(early[..., None, None], V_early, V_graded)
    EV = E @ V  # (..., n+m, h): Q(t) up to an orthogonal factor on the right
    QQ = EV[..., :n, :] @ xp.matrix_transpose(EV[..., n:, :])
    return xp.reshape(QQ, tuple(t_arr.shape) + (n, m))


def _solve_upper_right(xp, R, B):
    """``B R^{-1}`` for upper-triangular ``R`` (batched), by substitution over its columns.

    A general ``solve`` pivots across the rows of a graded triangular factor and loses
    its accuracy; substitution keeps the backward error relative to each entry.  (The
    array API has no triangular solve; ``h`` is small here.)
    """
    h = R.shape[-1]
    cols = []
    for j in range(h):
        acc = B[..., :, j]
        for k in range(j):
            acc = acc - cols[k] * R[..., None, k, j]
        cols.append(acc / R[..., None, j, j])
    return xp.stack(cols, axis=-1)


def _times(t, name="t"):
    """Host float64 times, finite and >= 0 (the closed forms run forward from t = 0)."""
    t = np.atleast_1d(np.asarray(to_numpy(t), dtype=np.float64))
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError(f"linflow: {name} must hold finite times >= 0; got {t}.")
    return t


# --- scalar networks ---------------------------------------------------------------------


def scalar_two_layer_time(p, p0, y, c):
    r"""Time from ``p0`` to ``p`` for :math:`\dot p = (y-p)\sqrt{4p^2+c^2}` (two scalar layers).

    .. math:: t = \frac1K\ln\left|\frac{4yp + c^2 + K\sqrt{4p^2+c^2}}{2p-2y}\right|\Bigg|_{p_0}^{p},
        \qquad K = \sqrt{4y^2+c^2},\quad c = w_1^2 - w_2^2.
    """
    K = math.sqrt(4 * y * y + c * c)

    def F(q):
        return math.log(abs((4 * y * q + c * c + K * math.sqrt(4 * q * q + c * c)) / (2 * q - 2 * y))) / K

    return F(p) - F(p0)


def scalar_two_layer(w, y, t):
    r"""Product :math:`p(t) = w_1(t)w_2(t)` of two scalar layers, by ``brentq`` on :func:`scalar_two_layer_time`.

    Any imbalance :math:`c = w_1^2 - w_2^2`; :math:`p` moves monotonically from
    :math:`p_0 = w_1w_2` to ``y`` (requires :math:`p_0 \ne 0` or :math:`c \ne 0`).

    Returns
    -------
    numpy array ``(T,)``.
    """
    wv = np.asarray(to_numpy(w), dtype=np.float64).ravel()
    if wv.size != 2:
        raise ValueError(f"linflow: scalar_two_layer needs two weights w = (w1, w2); got {wv.size} values.")
    w1, w2 = real("w[0]", wv[0]), real("w[1]", wv[1])
    y = real("y", y)
    c = w1 * w1 - w2 * w2
    p0 = w1 * w2
    t = _times(t)
    if c == 0 and p0 * y <= 0 and p0 != y:
        raise ValueError(
            f"linflow: scalar_two_layer: a balanced start (w1^2 = w2^2) whose product p0 = {p0:.4g} is "
            f"0 or of the other sign than y = {y:.4g} cannot reach y (p stays on the saddle manifold "
            "and tends to 0); this closed form covers p moving monotonically from p0 to y."
        )
    out = np.empty(t.size)
    for i, ti in enumerate(t):
        out[i] = _invert_time(lambda p: scalar_two_layer_time(p, p0, y, c), p0, y, ti)
    return out


def scalar_deep(w, y, t, *, rtol=1e-13):
    r"""Product :math:`p(t) = \prod_i w_i(t)` of ``L`` scalar layers via the exact reduced ODE.

    With :math:`u = w_1^2` and :math:`c_j = w_1(0)^2 - w_j(0)^2` (conserved),
    :math:`w_j^2 = u - c_j` and

    .. math:: \dot u = 2p(y-p),\qquad p = \operatorname{sgn}\cdot\sqrt{\textstyle\prod_j(u-c_j)},

    integrated with ``solve_ivp(DOP853)``.  Valid while no :math:`w_j` crosses zero,
    e.g. all :math:`w_j(0) > 0` and :math:`0 < p(0) < y`.

    Returns
    -------
    numpy array ``(T,)``.
    """
    from scipy.integrate import solve_ivp

    w = np.asarray(to_numpy(w), dtype=np.float64).ravel()
    check_matrix(w, "w", ndim=1)
    y = real("y", y)
    if np.any(w == 0):
        raise ValueError("linflow: scalar_deep needs non-zero initial weights.")
    sign = float(np.prod(np.sign(w)))
    c = w[0] ** 2 - w**2
    y = float(y)
    t = _times(t)

    def rhs(_, u):
        p = sign * math.sqrt(max(float(np.prod(u[0] - c)), 0.0))
        return [2.0 * p * (y - p)]

    sol = solve_ivp(rhs, (0.0, float(t.max())), [w[0] ** 2], method="DOP853", t_eval=t,
                    rtol=rtol, atol=rtol * w[0] ** 2, dense_output=False)
    if not sol.success:  # pragma: no cover
        raise RuntimeError(f"linflow: scalar_deep: {sol.message}")
    u = sol.y[0]
    return sign * np.sqrt(np.maximum(np.prod(u[:, None] - c[None, :], axis=1), 0.0))
