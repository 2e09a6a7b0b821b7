"""Deep, aligned and balanced: one mode's implicit time in elementary terms, and its inversion."""
from __future__ import annotations

import math

import numpy as np

from .._validate import nonnegative
from ._common import _QUIET, _checked_host, _depth, _finite_time, _float_range, _host_svd, _like, _modes_vector
from ._common import _path_end, _times
from ._saxe import saxe_learning_time, saxe_modes


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
    delta = c * ln_ratio + (lnphi0 - lnphi)  # grouped: both logs are O(1), their difference tiny
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


def _short_time(s, p0, L, ti):
    """``p(ti)`` by one Taylor term when the mode moves by less than 1e-9 of itself (relative error < 1e-17).

    There the implicit time is a difference of nearly equal terms; the first-order step is exact to
    :math:`O((L p_0^{c}|s - p_0| t / p_0)^2)`.  Returns None for longer times.
    """
    c = 2.0 - 2.0 / L
    ln_speed = math.log(L) + c * math.log(p0) + math.log(abs(s - p0)) - math.log(p0)  # |dp/dt| / p at t = 0
    if ln_speed + math.log(ti) > math.log(1e-9):
        return None
    return p0 * (1.0 + math.copysign(math.exp(ln_speed + math.log(ti)), s - p0))


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
        short = _short_time(s, p0, L, float(ti)) if ti > 0 else p0
        if short is not None:
            out[i] = short
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
        short = _short_time(s, p0, L, ti) if ti > 0 and s > 0 else (p0 if ti == 0 else None)
        if short is not None:
            out[i] = short
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
    L = _depth(L)
    if p0 == 0 and L >= 2 and p != 0:
        raise ValueError(f"linflow: deep_balanced_time: a mode that starts at p0 = 0 stays there for L >= 2; "
                         f"it never reaches p = {p!r}.")
    end = _path_end("deep_balanced_time", p, p0, s, ("p", "p0", "s"))
    return end if end is not None else _float_range("deep_balanced_time", "the scales of p, s and p0",
                                                    _deep_time, p, s, p0, L)


def _deep_time(p, s, p0, L):
    """The body of :func:`deep_balanced_time` for checked arguments (``p0 != p != s``)."""
    if L == 1:
        return _finite_time(math.log1p((p - p0) / (s - p)), "deep_balanced_time")
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
        return _finite_time(math.exp(-c * math.log(p0)) * val, "deep_balanced_time")
    if p < p0:  # decay towards s
        x = (p - p0) / p0
        lnt, _ = _decay_log_time(math.log1p(x) if x > -0.5 else math.log(p) - math.log(p0), (p - s) / p, s, p0, L)
        return _finite_time(math.exp(lnt), "deep_balanced_time")
    lnu0 = (math.log(p0) - math.log(s)) / L
    u0, om_u0 = math.exp(lnu0), -math.expm1(lnu0)
    x = (p - s) / s
    lnu = (math.log1p(x) if x > -0.5 else math.log(p) - math.log(s)) / L
    u, om_u = math.exp(lnu), -math.expm1(lnu)
    M = (2 - L) * lnu0  # ln u0^{2-L} >= 0
    first = -math.expm1((2 - L) * math.log1p((p - p0) / p0) / L) / (L - 2)  # (u0^{2-L} - u^{2-L}) / u0^{2-L} / (L-2)
    rest = _growth_J(u, om_u, L) - _growth_J(u0, om_u0, L)
    return _finite_time(math.exp(-c * math.log(s) + M + math.log(first + rest * math.exp(-M))), "deep_balanced_time")


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
    L = _depth(L)
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
        elif abs(pj - sj) <= 1e-13 * sj:  # at the fixed point to 1e-13: the linearized flow is exact to 1e-26
            out[:, j] = sj + (pj - sj) * np.exp(-L * math.exp((2.0 - 2.0 / L) * math.log(sj)) * t)
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
