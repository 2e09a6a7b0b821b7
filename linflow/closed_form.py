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

from ._validate import check_matrix, check_weights, integer, nonnegative, positive, real, seed as _seed
from ._validate import widths as _widths
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
    check_matrix(Y, "Y")
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
    a0 = _host_float("closed_form", name, a0)
    try:
        a0 = np.broadcast_to(a0, (r,)).copy()
    except ValueError:
        raise ValueError(f"linflow: {name} must be one value or one per mode ({r}); got shape {a0.shape}.") from None
    if not (np.all(np.isfinite(a0)) and np.all(a0 >= 0)):
        raise ValueError(f"linflow: {name} must be finite and >= 0 (one value, or one per mode); got {a0}.")
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

_QUIET = dict(over="ignore", under="ignore", invalid="ignore", divide="ignore")


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


def _is_array(v):
    return isinstance(v, np.ndarray) or (hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic))


def _host_float(fn, name, v):
    """Host float64 array from a number or array-like, with a clear TypeError otherwise."""
    if v is None or isinstance(v, (str, bytes, bool, np.bool_)):
        raise TypeError(f"linflow: {fn}: {name} must be a number or an array of numbers; "
                        f"got {type(v).__name__} {v!r}.")
    try:
        a = np.asarray(to_numpy(v), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"linflow: {fn}: {name} must be a number or an array of numbers; "
                        f"got {type(v).__name__} {v!r}.") from None
    return a


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
    if not min(a0, s) <= af <= max(a0, s):
        raise ValueError(f"linflow: saxe_learning_time needs af between a0 = {a0!r} and s = {s!r} "
                         f"(a mode moves monotonically from a0 to s); got af = {af!r}.")
    if af == a0:
        return 0.0
    if af == s:
        return math.inf
    r = (a0 - af) / (af - s)  # > 0
    zr = r / a0
    z = s * zr
    if z < 1e-4:
        return 0.5 * zr * (1.0 - z / 2.0 + z * z / 3.0 - z**3 / 4.0)
    if z < 1e15:
        return math.log1p(z) / (2.0 * s)
    lnz = math.log(s) + math.log(abs(a0 - af)) - math.log(abs(af - s)) - math.log(a0)
    return (lnz + math.log1p(math.exp(-lnz))) / (2.0 * s)


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


def _device(a):
    import array_api_compat

    return array_api_compat.device(a)


def _on(like, v):
    """``v`` (a number, host data, or an array of ``like``'s library) as an array like ``like``."""
    if hasattr(v, "shape") and not isinstance(v, (np.ndarray, np.generic)):
        return v
    if isinstance(like, np.ndarray):
        return np.asarray(v, dtype=like.dtype if like.dtype.kind == "f" else np.float64)
    return asarray(np.asarray(v, dtype=np.float64), like=like)


def _checked_host(v, name, fn):
    a = _host_float(fn, name, v)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"linflow: {fn} needs finite {name}; got {v!r}.")
    return a


# --- deep aligned balanced -----------------------------------------------------------------
#
# A mode p = w^L of depth L >= 3 obeys  dp/dt = L p^c (s - p),  c = 2 - 2/L.  Its time is split
# by the partial fraction  1/(1 - v^L) = (1/L) sum_k 1/(1 - v w^-k)  (w = e^{2 pi i/L}) into
# elementary terms; the k = 0 term carries the logarithmic singularity at p = s, the others
# (_roots_log_sum) are smooth on [0, 1].  Growth (p0 < s) and decay (p0 > s) use different
# variables so that no term cancels another (course appendix Numerical methods, Closed-form
# solutions).


def _roots_log_sum(y, om_y, m, L):
    r""":math:`-\frac1L\,\mathrm{Re}\sum_{k=1}^{L-1}\omega^{k(m+1)}\,\mathrm{Log}(1 - y\,\omega^{-k})`, :math:`\omega = e^{2\pi i/L}`.

    With the :math:`k = 0` term :math:`-\frac1L\ln(1 - y)` it is :math:`\int_0^y v^m\,dv/(1 - v^L)`
    (``0 <= m <= L - 1``, :math:`0 \le y \le 1`).  ``om_y = 1 - y`` is passed separately:
    :math:`|1 - y\omega^{-k}|^2 = (1 - y)^2 + 4y\sin^2(\pi k/L)` keeps its digits near ``y = 1``.
    """
    th = 2.0 * np.pi * np.arange(1, L) / L
    half = np.sin(th / 2.0) ** 2
    re = om_y + 2.0 * y * half
    mod2 = om_y * om_y + 4.0 * y * half
    arg = np.arctan2(y * np.sin(th), re)
    phi = (m + 1) * th
    return float(-np.sum(np.cos(phi) * 0.5 * np.log(mod2) - np.sin(phi) * arg) / L)


def _growth_J(u, om_u, L):
    r""":math:`J(u) = \int_0^u \frac{v\,dv}{1 - v^L}` for :math:`0 \le u < 1` (``om_u = 1 - u``)."""
    return -math.log(om_u) / L + _roots_log_sum(u, om_u, 1, L)


def _decay_phi(q, om_q, L):
    r""":math:`\varphi(q) = \int_0^1 \frac{\eta^{2L-3}\,d\eta}{1 - q\eta^L} = \sum_k \frac{q^k}{2L-2+kL}` for :math:`0 \le q < 1`.

    The series for :math:`q \le 1/2`; above, :math:`\varphi(q) = q^{-c}\big[\int_0^y \frac{\eta^{L-3}d\eta}{1-\eta^L}
    - \frac{y^{L-2}}{L-2}\big]` with :math:`y = q^{1/L}` (``om_q = 1 - q`` keeps the log's digits).
    """
    if q <= 0.5:
        k = np.arange(64)
        return float(np.sum(q**k / (2.0 * L - 2.0 + k * L)))
    lnq = math.log1p(-om_q)
    om_y = -math.expm1(lnq / L)
    y = math.exp(lnq / L)
    N = -math.log(om_y) / L + _roots_log_sum(y, om_y, L - 3, L) - y ** (L - 2) / (L - 2)
    return math.exp(-(2.0 - 2.0 / L) * lnq) * N


def _decay_log_time(ln_ratio, om_q, s, p0, L):
    r"""``(ln t, ln p)`` for a decaying mode at :math:`p = p_0e^{\rho}` (``ln_ratio`` :math:`= \rho < 0`), :math:`p > s`.

    ``om_q`` :math:`= 1 - s/p = (p - s)/p`, passed from the caller's exact difference.

    :math:`t = A(p) - A(p_0)`, :math:`A(p) = p^{-c}\varphi(s/p)` (:func:`_decay_phi`), in logarithms:
    :math:`\ln t = \ln A(p) + \ln(1 - e^{\Delta})`, :math:`\Delta = \ln A(p_0) - \ln A(p) = c\rho +
    \ln\varphi(q_0) - \ln\varphi(q) < 0`, so neither overflow nor cancellation occurs.
    """
    c = 2.0 - 2.0 / L
    lnp0 = math.log(p0)
    lnp = lnp0 + ln_ratio
    q0, om_q0 = s / p0, (p0 - s) / p0
    q = math.exp(math.log(s) - lnp) if s > 0 else 0.0
    lnphi0, lnphi = math.log(_decay_phi(q0, om_q0, L)), math.log(_decay_phi(min(q, 1.0), om_q, L))
    delta = c * ln_ratio + lnphi0 - lnphi
    if not delta < 0:
        return -math.inf, lnp
    return -c * lnp + lnphi + math.log(-math.expm1(delta)), lnp


def _safeguarded_newton(F, x, lo, hi, what, maxiter=200):
    """Root of an increasing ``F`` on ``[lo, hi]`` (``F(lo) <= 0 <= F(hi)``), from ``x``.

    ``F`` returns ``(value, derivative)``.  Newton steps that leave the bracket are replaced
    by bisection (geometric once ``lo > 0``), so the loop ends in at most ``maxiter`` steps;
    otherwise a RuntimeError names ``what``.
    """
    eps = np.finfo(float).eps
    for _ in range(maxiter):
        f, df = F(x)
        if f == 0:
            return x
        if f > 0:
            hi = x
        else:
            lo = x
        xn = x - f / df if (df > 0 and math.isfinite(f) and math.isfinite(df)) else math.nan
        if not lo < xn < hi:
            xn = math.sqrt(lo * hi) if lo > 0 and hi > 4 * lo else 0.5 * (lo + hi)
        if abs(xn - x) <= 4 * eps * abs(xn) or hi - lo <= 4 * eps * abs(hi):
            return xn
        x = xn
    raise RuntimeError(f"linflow: {what}: the root finder did not converge in {maxiter} iterations "
                       f"(bracket [{lo!r}, {hi!r}]); please report this input.")


def _deep_growth(s, p0, L, times):
    r"""Modes :math:`0 < p_0 < s` (``L >= 3``) at ``times``: the root :math:`\ell = -\ln(1 - u)` of

    .. math:: F(\ell) = -\frac{u^{2-L}}{L-2} + J(u) - J(u_0) - C_1,\qquad u = (p/s)^{1/L},\quad
        C_1 = s^{c}t - \frac{u_0^{2-L}}{L-2},

    where :math:`C_1` is formed in 50-digit decimal arithmetic (its two terms are huge and nearly
    equal on the plateau of a tiny start).  ``F`` is increasing and concave in :math:`\ell`.
    """
    from decimal import Decimal, localcontext

    c = 2.0 - 2.0 / L
    lnx0 = math.log(p0) - math.log(s)
    u0 = math.exp(lnx0 / L)
    J0 = _growth_J(u0, -math.expm1(lnx0 / L), L)
    l0 = -math.log1p(-u0)
    l_cap = 40.0 + math.log(L)
    out = np.empty(len(times))
    with localcontext() as ctx:
        ctx.prec = 50
        A0 = (Decimal(p0) / Decimal(s)) ** (Decimal(2 - L) / Decimal(L)) / (L - 2)
        S = Decimal(s) ** (Decimal(2 * L - 2) / Decimal(L))
        C1s = [S * Decimal(float(ti)) - A0 for ti in times]
        plateau = [(-C1).ln() if -C1 > Decimal(10) ** 20 else None for C1 in C1s]
    for i, (ti, C1, ln_mC1) in enumerate(zip(times, C1s, plateau)):
        if ti == 0:
            out[i] = p0
            continue
        if ln_mC1 is not None:  # still on the plateau: -u^{2-L}/(L-2) = C1 to 1e-20 relative
            lnu = -(float(ln_mC1) + math.log(L - 2)) / (L - 2)
            out[i] = math.exp(math.log(s) + L * lnu)
            continue
        C1 = float(C1)
        if C1 > 1e300:
            out[i] = s
            continue

        def F(ell, C1=C1):
            om_u = math.exp(-ell)
            lnu = math.log1p(-om_u)
            u = math.exp(lnu)
            val = -math.exp((2 - L) * lnu) / (L - 2) + _growth_J(u, om_u, L) - J0 - C1
            return val, om_u / (math.exp((L - 1) * lnu) * -math.expm1(L * lnu))

        if F(l_cap)[0] <= 0:
            out[i] = s
            continue
        g = C1 + J0
        x, lo, hi = l_cap, l0, l_cap
        if g < -1.0 / (L - 2):
            lg = -math.log1p(-((L - 2) * -g) ** (-1.0 / (L - 2)))
            if lo < lg < hi:
                x = lg
        ell = _safeguarded_newton(F, x, lo, hi, f"deep_balanced_modes(s={s!r}, p0={p0!r}, L={L}, t={ti!r})")
        out[i] = s * math.exp(L * math.log1p(-math.exp(-ell)))
    return out


def _deep_decay(s, p0, L, times):
    r"""Modes :math:`p_0 > s \ge 0` (``L >= 3``) at ``times``.

    ``s = 0``: :math:`p^{-c} = p_0^{-c} + (2L-2)t` (in logarithms).  ``s > 0``: the root
    :math:`\sigma` of :math:`\ln t(\sigma) = \ln t` with :math:`p = s + (p_0 - s)e^{-\sigma}`
    (:func:`_decay_log_time`), bracketed by :math:`Ls^ct \le \sigma \le Lp_0^ct` since
    :math:`d\sigma/dt = Lp^c`.
    """
    c = 2.0 - 2.0 / L
    out = np.empty(len(times))
    for i, ti in enumerate(times):
        ti = float(ti)
        if ti == 0:
            out[i] = p0
            continue
        if s == 0:
            out[i] = math.exp(-np.logaddexp(-c * math.log(p0), math.log((2 * L - 2) * ti)) / c)
            continue
        lnT = math.log(ti)
        om_q0 = (p0 - s) / p0
        ln_gap0 = math.log(p0 - s)
        sigma_cap = ln_gap0 - math.log(s) + 40.0

        def G(sig):
            gap = math.exp(ln_gap0 - sig)  # p - s
            p = s + gap
            drop = -om_q0 * math.expm1(-sig)  # 1 - p/p0
            ln_ratio = math.log1p(-drop) if drop < 0.5 else math.log(p) - math.log(p0)
            lnt, lnp = _decay_log_time(ln_ratio, gap / p, s, p0, L)
            return lnt - lnT, (math.exp(-lnt - math.log(L) - c * lnp) if lnt > -math.inf else math.inf)

        if G(sigma_cap)[0] <= 0:
            out[i] = s
            continue
        hi = min(math.exp(min(math.log(L) + c * math.log(p0) + lnT, 700.0)), sigma_cap)
        lo = min(math.exp(min(math.log(L) + c * math.log(s) + lnT, 700.0)), hi)
        if G(hi)[0] < 0:  # rounding at the bracket's end
            lo, hi = hi, sigma_cap
        sig = _safeguarded_newton(G, hi, lo, hi, f"deep_balanced_modes(s={s!r}, p0={p0!r}, L={L}, t={ti!r})")
        out[i] = s + math.exp(ln_gap0 - sig)
    return out


def deep_balanced_time(p, s, p0, L):
    r"""Time for a mode of :func:`deep_balanced_modes` to go from ``p0`` to ``p``: :math:`t = \int_{p_0}^{p}\frac{dq}{L\,q^{2-2/L}(s-q)}`.

    ``L = 1``: :math:`\ln\frac{s - p_0}{s - p}`; ``L = 2``: :func:`saxe_learning_time`.  For
    ``L >= 3``, with :math:`c = 2 - 2/L`, the partial fraction
    :math:`\frac1{1 - v^L} = \frac1L\sum_{k=0}^{L-1}\frac1{1 - v\omega^{-k}}` (:math:`\omega = e^{2\pi i/L}`)
    makes the integral elementary:

    * growth, :math:`p_0 < p < s`, :math:`u = (p/s)^{1/L}`:
      :math:`s^c\,t = \frac{u_0^{2-L} - u^{2-L}}{L-2} + J(u) - J(u_0)`,
      :math:`J(u) = \int_0^u\frac{v\,dv}{1 - v^L} = -\frac1L\sum_k\omega^{2k}\ln(1 - u\omega^{-k})`;
    * decay, :math:`s \le p < p_0`, :math:`q = s/p`: :math:`t = A(p) - A(p_0)`,
      :math:`A(p) = p^{-c}\varphi(q)`, :math:`\varphi(q) = \int_0^1\frac{\eta^{2L-3}d\eta}{1 - q\eta^L}
      = \sum_{j\ge0}\frac{q^j}{2L-2+jL}` (``s = 0``: :math:`t = \frac{p^{-c} - p_0^{-c}}{2L-2}`).

    Differences are formed with ``expm1``/``log1p`` of :math:`(p - p_0)/p_0`, and in logarithms
    where a power would overflow; a short step (:math:`|p - p_0| < \frac14\min(p_0, |s - p|)`),
    where the elementary terms would nearly cancel, is integrated by ``quad`` (a smooth
    integrand there).  So the result keeps its relative accuracy for singular values zero, tiny
    or huge and starts tiny or huge.  ``p = s`` gives ``inf`` (reached only in the limit).

    Raises
    ------
    ValueError
        A non-finite or negative value, ``L < 1``, ``p`` not between ``p0`` and ``s``, or
        ``p0 = 0 < p`` with ``L >= 2`` (a zero mode never moves).
    """
    p, s, p0 = nonnegative("p", p), nonnegative("s", s), nonnegative("p0", p0)
    L = integer("L", L, minimum=1)
    if not min(p0, s) <= p <= max(p0, s):
        raise ValueError(f"linflow: deep_balanced_time needs p between p0 = {p0!r} and s = {s!r} "
                         f"(a mode moves monotonically from p0 to s); got p = {p!r}.")
    if p == p0:
        return 0.0
    if p0 == 0 and L >= 2:
        raise ValueError(f"linflow: deep_balanced_time: a mode that starts at p0 = 0 stays there for L >= 2; "
                         f"it never reaches p = {p!r}.")
    if p == s:
        return math.inf
    if L == 1:
        return math.log1p((p - p0) / (s - p))
    if L == 2:
        return saxe_learning_time(s, p0, p)
    c = 2.0 - 2.0 / L
    if abs(p - p0) < 0.25 * min(p0, abs(s - p)):
        # a short step away from 0 and s: the elementary terms would nearly cancel, while the
        # integrand is smooth; in q = p0 (1 + x), t = p0^{-c} int dx / (L (1+x)^c (s/p0 - 1 - x))
        from scipy.integrate import quad

        q0 = s / p0
        val, _ = quad(lambda x: 1.0 / (L * (1.0 + x) ** c * (q0 - 1.0 - x)), 0.0, (p - p0) / p0,
                      epsabs=0.0, epsrel=1e-13, limit=100)
        return math.exp(-c * math.log(p0)) * val
    if p < p0:  # decay towards s
        x = (p - p0) / p0
        lnt, _ = _decay_log_time(math.log1p(x) if x > -0.5 else math.log(p) - math.log(p0), (p - s) / p, s, p0, L)
        return math.exp(lnt)
    lnu0 = (math.log(p0) - math.log(s)) / L
    u0, om_u0 = math.exp(lnu0), -math.expm1(lnu0)
    x = (p - s) / s
    lnu = (math.log1p(x) if x > -0.5 else math.log(p) - math.log(s)) / L
    u, om_u = math.exp(lnu), -math.expm1(lnu)
    M = (2 - L) * lnu0  # ln u0^{2-L} >= 0
    first = -math.expm1((2 - L) * math.log1p((p - p0) / p0) / L) / (L - 2)  # (u0^{2-L} - u^{2-L}) / u0^{2-L} / (L-2)
    rest = _growth_J(u, om_u, L) - _growth_J(u0, om_u0, L)
    return math.exp(-c * math.log(s) + M + math.log(first + rest * math.exp(-M)))


def deep_balanced_modes(s, p0, L, t):
    r"""Mode strengths :math:`p(t)` solving :math:`\dot p = L\,p^{2-2/L}(s-p)`, :math:`p(0) = p_0`.

    ``L = 1``: :math:`p = s(1 - e^{-t}) + p_0e^{-t}`; ``L = 2``: :func:`saxe_modes`.  For
    ``L >= 3`` the implicit solution of :func:`deep_balanced_time` is inverted by a safeguarded
    Newton iteration (at most 200 steps, each inside a bracket) in a variable where the time is
    well conditioned: :math:`\ell = -\ln(1 - (p/s)^{1/L})` for growth and
    :math:`\sigma = \ln\frac{p_0 - s}{p - s}` for decay, so ``p`` keeps its relative accuracy up to
    convergence and beyond.  For growth the constant :math:`s^ct - u_0^{2-L}/(L-2)` is formed in
    50-digit decimal arithmetic: on the plateau of a tiny start both terms are huge and cancel.
    A zero start stays at zero; ``s = 0`` decays explicitly.

    Parameters
    ----------
    s : array_like (r,)
        Target singular values, ``>= 0``.
    p0 : float or array_like (r,)
        Initial mode strengths, ``>= 0``.
    L : int
    t : float or array_like (T,)
        Times, ``>= 0``.

    Returns
    -------
    numpy array (T, r).
    """
    s = _checked_host(s, "s", "deep_balanced_modes")
    if s.ndim > 1:
        raise ValueError(f"linflow: deep_balanced_modes needs s of shape (r,); got shape {s.shape}.")
    s = np.atleast_1d(s)
    p0 = _checked_host(p0, "p0", "deep_balanced_modes")
    try:
        p0 = np.broadcast_to(p0, s.shape)
    except ValueError:
        raise ValueError(f"linflow: deep_balanced_modes needs p0 as one value or one per mode ({s.size}); "
                         f"got shape {p0.shape}.") from None
    if np.any(s < 0) or np.any(p0 < 0):
        raise ValueError(f"linflow: deep_balanced_modes needs s >= 0 and p0 >= 0; got s = {s}, p0 = {p0}.")
    L = integer("L", L, minimum=1)
    t = _times(t)
    out = np.empty((t.size, s.size))
    for j, (sj, pj) in enumerate(zip(s.tolist(), p0.tolist())):
        if L == 1:
            with np.errstate(**_QUIET):
                out[:, j] = -sj * np.expm1(-t) + pj * np.exp(-t)
        elif L == 2:
            out[:, j] = saxe_modes(np.float64(sj), np.float64(pj), t)
        elif pj == 0 or pj == sj:
            out[:, j] = pj
        elif pj < sj:
            out[:, j] = _deep_growth(sj, pj, L, t)
        else:
            out[:, j] = _deep_decay(sj, pj, L, t)
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
    t = np.atleast_1d(_host_float("closed_form", name, t))
    if t.ndim != 1:
        raise ValueError(f"linflow: {name} must be a number or a 1-d array of times; got shape {t.shape}.")
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError(f"linflow: {name} must hold finite times >= 0; got {t}.")
    return t


# --- scalar networks ---------------------------------------------------------------------


def _scalar_two_layer_N(q, y, c, K):
    r""":math:`\frac{4yq + c^2 + K\sqrt{4q^2+c^2}}{2|q - y|}`, rationalized where the numerator cancels.

    :math:`K^2(4q^2+c^2) - (4yq+c^2)^2 = 4c^2(q-y)^2`, so for :math:`4yq + c^2 < 0` it equals
    :math:`\frac{2c^2|q - y|}{K\sqrt{4q^2+c^2} - 4yq - c^2}` (a sum of positive terms below).
    """
    a = 4.0 * y * q + c * c
    R = math.hypot(2.0 * q, c)
    if a >= 0:
        return (a + K * R) / (2.0 * abs(q - y))
    return 2.0 * c * c * abs(q - y) / (K * R - a)


def scalar_two_layer_time(p, p0, y, c):
    r"""Time from ``p0`` to ``p`` for :math:`\dot p = (y-p)\sqrt{4p^2+c^2}` (two scalar layers).

    .. math:: t = \frac1K\ln\left|\frac{4yp + c^2 + K\sqrt{4p^2+c^2}}{2p-2y}\right|\Bigg|_{p_0}^{p},
        \qquad K = \sqrt{4y^2+c^2},\quad c = w_1^2 - w_2^2,

    with the numerator rationalized where it cancels, and the two ends combined in one
    logarithm.  Where that logarithm is below 0.1 (short times, or :math:`K` tiny) the integral
    :math:`\int_{p_0}^{p}\frac{dq}{(y-q)\sqrt{4q^2+c^2}}` of a positive function is taken by
    ``quad`` instead (relative tolerance 1e-13).  ``p = y`` gives ``inf``.

    Raises
    ------
    ValueError
        A non-finite argument, ``p`` not between ``p0`` and ``y``, or a start that cannot move
        (``p0 = c = 0``) or cannot reach ``y`` (``c = 0`` and ``p0`` of the other sign than ``y``).
    """
    p, p0, y, c = real("p", p), real("p0", p0), real("y", y), real("c", c)
    if not min(p0, y) <= p <= max(p0, y):
        raise ValueError(f"linflow: scalar_two_layer_time needs p between p0 = {p0!r} and y = {y!r} "
                         f"(p moves monotonically from p0 to y); got p = {p!r}.")
    if p == p0:
        return 0.0
    if c == 0 and p0 * y <= 0:
        raise ValueError(f"linflow: scalar_two_layer_time: a balanced start (c = 0) with p0 = {p0!r} "
                         f"never reaches p = {p!r} (p tends to 0 on the saddle manifold).")
    if p == y:
        return math.inf
    K = math.hypot(2.0 * y, c)
    ratio = _scalar_two_layer_N(p, y, c, K) / _scalar_two_layer_N(p0, y, c, K)
    log_ratio = math.log(ratio)
    if abs(log_ratio) >= 0.1:
        return log_ratio / K
    from scipy.integrate import quad

    lo, hi = min(p0, p), max(p0, p)
    pts = [0.0] if lo < 0 < hi else None
    val, _ = quad(lambda q: 1.0 / (abs(y - q) * math.hypot(2.0 * q, c)), lo, hi, points=pts,
                  epsabs=0.0, epsrel=1e-13, limit=200)
    return val


def scalar_two_layer(w, y, t):
    r"""Product :math:`p(t) = w_1(t)w_2(t)` of two scalar layers, in closed form, for any start.

    The scalar case of :func:`riccati` (:math:`\lambda = c = w_1^2 - w_2^2`): with
    :math:`F = \begin{bmatrix}c/2 & y\\ y & -c/2\end{bmatrix}` (eigenvalues :math:`\pm K/2`,
    :math:`K = \sqrt{4y^2 + c^2}`), :math:`v = e^{Ft}w` and
    :math:`g = w^\top\!\int_0^te^{2Fs}ds\,w`, :math:`p = v_1v_2/(1 + g)`.  For :math:`Kt \le 2`
    it is evaluated with :math:`e^{Ft} = \cosh\frac{Kt}2 I + \frac{2}{K}\sinh\frac{Kt}2 F`; beyond, in
    the eigenbasis, multiplied through by :math:`Ke^{-Kt}`:

    .. math:: p = \frac{y(z_+^2 - E^2z_-^2) + E\,c^2(p_0 - y)/K}{KE + (1 - E)(z_+^2 + Ez_-^2)},
        \qquad E = e^{-Kt},

    with :math:`z_\pm^2 = \tfrac12\big(r_0 \pm (c^2 + 4yp_0)/K\big)`, :math:`r_0 = w_1^2 + w_2^2`, the
    smaller one from :math:`z_+^2z_-^2 = c^2(p_0-y)^2/K^2` (no cancellation; the denominator is a
    sum of non-negative terms).  A balanced start of the other sign than ``y`` tends to 0.

    Returns
    -------
    numpy array ``(T,)``.

    Raises
    ------
    ValueError
        Not two finite weights, a non-finite ``y``, or weights whose squares overflow (``|w| > 1e154``).
    """
    wv = _checked_host(w, "w", "scalar_two_layer").ravel()
    if wv.size != 2:
        raise ValueError(f"linflow: scalar_two_layer needs two weights w = (w1, w2); got {wv.size} values.")
    w1, w2 = float(wv[0]), float(wv[1])
    y = real("y", y)
    t = _times(t)
    r0 = w1 * w1 + w2 * w2
    if not math.isfinite(r0) or not math.isfinite(4.0 * y * y + r0 * r0):
        raise ValueError(f"linflow: scalar_two_layer: w1^2 + w2^2 or the rate K overflows float64 for "
                         f"w = ({w1!r}, {w2!r}), y = {y!r}; rescale the problem.")
    c, p0 = w1 * w1 - w2 * w2, w1 * w2
    K = math.hypot(2.0 * y, c)
    b = (c * c + 4.0 * y * p0) / K if K > 0 else 0.0
    zz = (c * (p0 - y) / K) ** 2 if K > 0 else 0.0
    if b >= 0:
        zp2 = 0.5 * (r0 + b)
        zm2 = zz / zp2 if zp2 > 0 else 0.0
    else:
        zm2 = 0.5 * (r0 - b)
        zp2 = zz / zm2 if zm2 > 0 else 0.0
    out = np.empty(t.size)
    for i, ti in enumerate(t.tolist()):
        x = 0.5 * K * ti
        if x <= 1.0:
            C = math.cosh(x)
            S = ti * (math.sinh(x) / x if x > 0 else 1.0)
            v1 = C * w1 + S * (0.5 * c * w1 + y * w2)
            v2 = C * w2 + S * (y * w1 - 0.5 * c * w2)
            out[i] = v1 * v2 / (1.0 + r0 * S * C + 0.5 * S * S * (c * c + 4.0 * y * p0))
        else:
            E = math.exp(-K * ti)
            num = y * (zp2 - E * E * zm2) + E * c * c * (p0 - y) / K
            out[i] = num / (K * E + (1.0 - E) * (zp2 + E * zm2))
    return out


def scalar_deep(w, y, t, *, rtol=1e-13):
    r"""Product :math:`p(t) = \prod_i w_i(t)` of ``L`` scalar layers via the exact reduced ODE.

    Every :math:`w_j^2 - w_k^2` is conserved.  With :math:`k` the smallest weight,
    :math:`u = w_k^2` and :math:`d_j = w_j(0)^2 - w_k(0)^2 \ge 0`, :math:`w_j^2 = u + d_j` (a sum
    of non-negative terms) and

    .. math:: \dot u = 2p(y-p),\qquad p = \operatorname{sgn}\cdot\sqrt{\textstyle\prod_j(u+d_j)}.

    The limit :math:`u_*` (:math:`\prod_j(u_*+d_j) = y^2`) is found by ``brentq`` in
    :math:`\ln u`, and :math:`y^2 - p^2 = (u_* - u)\,Q(u)` with
    :math:`Q = \sum_i\prod_{j<i}(u+d_j)\prod_{j>i}(u_*+d_j) > 0` (no cancellation).  The ODE is
    integrated (``solve_ivp``, DOP853, tolerance ``rtol``) in a variable whose speed stays bounded
    up to convergence and beyond, so long times cost a few steps:
    :math:`\psi = \ln\frac{u}{u_* - u}`, :math:`\dot\psi = \frac{2pQu_*}{u(y+p)}` while
    :math:`p` grows (:math:`u` and :math:`u_* - u` both keep their digits), and
    :math:`z = \ln(u - u_*)`, :math:`\dot z = -\frac{2pQ}{y+p}` while it decays.  Valid while no
    :math:`w_j` crosses zero: :math:`p_0` of the sign of ``y``, or ``y = 0``.

    Returns
    -------
    numpy array ``(T,)``.

    Raises
    ------
    ValueError
        A zero or non-finite weight, squares or a product that overflow, ``p0`` of the other sign
        than ``y`` (a weight would cross zero), or ``rtol`` outside (0, 1).
    """
    from scipy.integrate import solve_ivp
    from scipy.optimize import brentq

    w = _checked_host(w, "w", "scalar_deep").ravel()
    if w.size == 0:
        raise ValueError("linflow: scalar_deep needs at least one weight; got none.")
    y = real("y", y)
    rtol = positive("rtol", rtol)
    if not rtol < 1:
        raise ValueError(f"linflow: scalar_deep needs 0 < rtol < 1; got rtol = {rtol!r}.")
    if np.any(w == 0):
        raise ValueError(f"linflow: scalar_deep needs non-zero initial weights; got w = {w}.")
    t = _times(t)
    with np.errstate(**_QUIET):
        w2 = w * w
        p0 = float(np.prod(w))
    if not (np.all(np.isfinite(w2)) and np.all(w2 > 0) and math.isfinite(p0) and p0 != 0):
        raise ValueError(f"linflow: scalar_deep: the squares or the product of w = {w} overflow or underflow "
                         "float64; rescale the problem.")
    sgn = math.copysign(1.0, p0)
    if y != 0 and sgn * y < 0:
        raise ValueError(f"linflow: scalar_deep covers p moving from p0 = {p0!r} to y = {y!r} without a weight "
                         "crossing zero; p0 must have the sign of y (or y = 0).")
    k = int(np.argmin(w2))
    u0 = float(w2[k])
    d = w2 - u0
    d[k] = 0.0
    if y == 0:
        us = 0.0
    else:
        lny2 = 2.0 * math.log(abs(y))
        hi = abs(y) ** (2.0 / w.size)
        lo = y * y / float(np.prod(np.delete(hi + d, k))) if w.size > 1 else hi
        us = math.exp(brentq(lambda v: float(np.sum(np.log(math.exp(v) + d))) - lny2,
                             math.log(lo), math.log(hi), xtol=1e-300, rtol=4 * np.finfo(float).eps,
                             maxiter=200)) if lo < hi else hi

    zero = d == 0  # the smallest weight(s): w_j^2 = u
    m = int(zero.sum())

    def log_p2(u, lnu):
        """ln p^2 = sum_j ln(u + d_j), with ln u given (u itself may underflow)."""
        return float(np.sum(np.log(u + d[~zero]))) + m * lnu

    def Q(u):
        b, a = u + d, us + d
        return float(sum(np.prod(b[:i]) * np.prod(a[i + 1:]) for i in range(w.size)))

    if u0 == us or t.max() == 0:
        return np.full(t.size, p0)
    tu, inv = np.unique(t, return_inverse=True)
    out = np.full(tu.size, np.nan)
    t1, n1 = 0.0, 0
    if u0 < 0.5 * us:  # phase 1, the plateau: r = |w_k| = sqrt(u), dr/dt = p (y - p) / r (bounded)
        def rhs_r(_, v):
            r = v[0]
            lp = float(np.sum(np.log(r * r + d[~zero])))
            return [sgn * r ** (m - 1) * math.exp(0.5 * lp) * (y - sgn * r**m * math.exp(0.5 * lp))]

        half = lambda _, v: v[0] - math.sqrt(0.5 * us)  # noqa: E731
        half.terminal = True
        with np.errstate(**_QUIET):
            sol = solve_ivp(rhs_r, (0.0, float(tu[-1])), [math.sqrt(u0)], method="DOP853", t_eval=tu,
                            rtol=rtol, atol=1e-300, events=half)
        _ode_ok(sol)
        r = np.asarray(sol.y, dtype=np.float64).reshape(-1)
        n1 = r.size
        out[:n1] = [sgn * math.exp(0.5 * log_p2(ri * ri, 2.0 * math.log(ri))) for ri in r]
        if sol.status != 1:
            return out[inv.ravel()]
        t1, r1 = float(sol.t_events[0][0]), float(sol.y_events[0][0][0])
        z0 = math.log(us - r1 * r1)
    else:
        z0 = math.log(abs(u0 - us))
    # phase 2, towards the limit: z = ln|u - u_*|, dz/dt = -2 p Q / (y + p) (speed bounded as z -> -inf);
    # stopped once u equals u_* to 1e-20 (or underflows, for y = 0): later the state is its limit.
    sign_e = -1.0 if u0 < us else 1.0

    def u_of(z):
        u = us + sign_e * math.exp(z)
        return u, (math.log(u) if u > 0 else z)

    def rhs(_, v):
        u, lnu = u_of(v[0])
        p = sgn * math.exp(0.5 * log_p2(u, lnu))
        return [-2.0 * Q(u) * (p / (y + p) if y != 0 else 1.0)]

    z_end = math.log(us) - 46.0 if us > 0 else -1500.0
    done = lambda _, v: v[0] - z_end  # noqa: E731
    done.terminal = True
    rest = tu[n1:]
    z = np.full(rest.size, -math.inf)
    if rest.size:
        with np.errstate(**_QUIET):
            sol = solve_ivp(rhs, (t1, float(rest[-1])), [z0], method="DOP853", t_eval=rest,
                            rtol=rtol, atol=rtol, events=done)
        _ode_ok(sol)
        reached = np.asarray(sol.y, dtype=np.float64).reshape(-1)  # the times before the stop
        z[: reached.size] = reached
    with np.errstate(**_QUIET):
        out[n1:] = [sgn * math.exp(0.5 * log_p2(*u_of(zi))) for zi in z]
    return out[inv.ravel()]


def _ode_ok(sol):
    if sol.status < 0:  # pragma: no cover - smooth scalar ODEs with bounded right-hand sides
        raise RuntimeError(f"linflow: scalar_deep: the reduced ODE failed: {sol.message}")
