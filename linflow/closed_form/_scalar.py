"""Scalar networks: two layers in closed form, L layers by the exact reduced ODE."""
from __future__ import annotations

import math

import numpy as np

from .._validate import positive, real
from ._common import _QUIET, _checked_host, _finite_time, _float_range, _path_end, _times


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
    end = _path_end("scalar_two_layer_time", p, p0, y, ("p", "p0", "y"))
    if c == 0 and p0 * y <= 0 and end != 0.0:
        raise ValueError(f"linflow: scalar_two_layer_time: a balanced start (c = 0) with p0 = {p0!r} "
                         f"never reaches p = {p!r} (p tends to 0 on the saddle manifold).")
    if end is not None:
        return end
    return _float_range("scalar_two_layer_time", "the scales of p, p0, y and c", _two_layer_time, p, p0, y, c)


def _two_layer_time(p, p0, y, c):
    """The body of :func:`scalar_two_layer_time` for checked arguments."""
    K = math.hypot(2.0 * y, c)
    ratio = _scalar_two_layer_N(p, y, c, K) / _scalar_two_layer_N(p0, y, c, K)
    log_ratio = math.log(ratio)
    if abs(log_ratio) >= 0.1:
        return _finite_time(log_ratio / K, "scalar_two_layer_time")
    from scipy.integrate import quad

    lo, hi = min(p0, p), max(p0, p)
    pts = [0.0] if lo < 0 < hi else None
    val, _ = quad(lambda q: 1.0 / (abs(y - q) * math.hypot(2.0 * q, c)), lo, hi, points=pts,
                  epsabs=0.0, epsrel=1e-13, limit=200)
    return _finite_time(val, "scalar_two_layer_time")


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
        Not two finite weights, a non-finite ``y``, or a product :math:`w_1w_2` that overflows.
    """
    wv = _checked_host(w, "w", "scalar_two_layer").ravel()
    if wv.size != 2:
        raise ValueError(f"linflow: scalar_two_layer needs two weights w = (w1, w2); got {wv.size} values.")
    w1, w2 = float(wv[0]), float(wv[1])
    y = real("y", y)
    t = _times(t)
    if not math.isfinite(w1 * w2):
        raise ValueError(f"linflow: scalar_two_layer: the product w1 w2 overflows float64 for "
                         f"w = ({w1!r}, {w2!r}); rescale the problem.")
    # invariance w -> w / a, y -> y / a^2, t -> t a^2: solve with max(|w1|, |w2|, sqrt|y|) = 1
    a = max(abs(w1), abs(w2), math.sqrt(abs(y)))
    if a == 0:
        return np.zeros(t.size)
    w1, w2, y0 = w1 / a, w2 / a, y
    y = y / a / a
    if y0 != 0 and abs(y) < 1e-280:
        raise ValueError(f"linflow: scalar_two_layer: y = {y0!r} is too small next to "
                         f"w = ({float(wv[0])!r}, {float(wv[1])!r}) for float64 (y / max|w|^2 underflows); "
                         "rescale the problem.")
    with np.errstate(over="ignore"):
        t = np.minimum(t * a * a, 1e300)
    r0 = w1 * w1 + w2 * w2
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
            out[i] = v1 * v2 / (1.0 + r0 * S * C + 0.5 * S * (S * (c * c + 4.0 * y * p0)))
        else:
            E = math.exp(-K * ti)
            if zp2 == 0:  # on the stable manifold (c = 0, p0 y < 0): numerator and denominator carry E
                out[i] = -y * E * zm2 / (K + (1.0 - E) * zm2)
                continue
            num = y * (zp2 - E * E * zm2) + E * c * c * (p0 - y) / K
            out[i] = num / (K * E + (1.0 - E) * (zp2 + E * zm2))
    return out * a * a


def scalar_deep(w, y, t, *, rtol=1e-13):
    r"""Product :math:`p(t) = \prod_i w_i(t)` of ``L`` scalar layers via the exact reduced ODE.

    Every :math:`w_j^2 - w_k^2` is conserved.  With :math:`k` the smallest weight,
    :math:`u = w_k^2` and :math:`d_j = w_j(0)^2 - w_k(0)^2 \ge 0`, :math:`w_j^2 = u + d_j` (a sum
    of non-negative terms) and

    .. math:: \dot u = 2p(y-p),\qquad p = \operatorname{sgn}\cdot\sqrt{\textstyle\prod_j(u+d_j)}.

    The limit :math:`u_*` (:math:`\prod_j(u_*+d_j) = y^2`) is found by ``brentq`` in
    :math:`\ln u`, and :math:`y^2 - p^2 = (u_* - u)\,Q(u)` with
    :math:`Q = \sum_i\prod_{j<i}(u+d_j)\prod_{j>i}(u_*+d_j) > 0` (no cancellation).  The ODE is
    integrated (``solve_ivp``, DOP853, tolerance ``rtol``) in variables whose speed stays
    bounded, so plateaus and long times cost few steps: on a plateau (:math:`u < u_*/2`) in
    :math:`r = |w_k| = \sqrt u`, :math:`\dot r = p(y - p)/r`; towards the limit in
    :math:`z = \ln|u - u_*|`, :math:`\dot z = -\frac{2pQ}{y+p}` (``y = 0``: :math:`-2Q`), where
    :math:`u` and :math:`u_* - u` both keep their digits.  Once :math:`u = u_*` to 1e-20 the
    later times take the limit.  Valid while no :math:`w_j` crosses zero: :math:`p_0` of the
    sign of ``y``, or ``y = 0``.

    Returns
    -------
    numpy array ``(T,)``, the product at each time of ``t``.

    Raises
    ------
    ValueError
        A zero or non-finite weight, squares or a product that overflow, ``p0`` of the other sign
        than ``y`` (a weight would cross zero), or ``rtol`` outside [2.3e-14, 1).
    """
    return _float_range("scalar_deep", "the scales of w and y", _scalar_deep, w, y, t, rtol)


def _scalar_deep(w, y, t, rtol):
    """The body of :func:`scalar_deep`."""
    from scipy.integrate import solve_ivp

    w = _checked_host(w, "w", "scalar_deep").ravel()
    if w.size == 0:
        raise ValueError("linflow: scalar_deep needs at least one weight; got none.")
    y = real("y", y)
    rtol = positive("rtol", rtol)
    if not 100 * np.finfo(float).eps <= rtol < 1:
        raise ValueError(f"linflow: scalar_deep needs 2.3e-14 <= rtol < 1 (100 machine epsilons at least); "
                         f"got rtol = {rtol!r}.")
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
    # The flow is invariant under w -> w / a, y -> y / a^L, t -> t a^(2L-2): solve with
    # max(|y|, |p0|) = 1, so that huge and tiny problems take the same steps.
    L = w.size
    ln_a = max(math.log(abs(y)) if y != 0 else -math.inf, math.log(abs(p0))) / L
    w = w / math.exp(ln_a)
    y0, y = y, y / math.exp(L * ln_a)
    scale_p = math.exp(L * ln_a)
    t_scale = math.exp(min((2 * L - 2) * ln_a, 700.0))
    with np.errstate(over="ignore"):
        t = np.minimum(t * t_scale, 1e300)
        w2, p0 = w * w, float(np.prod(w))
    if not (np.all(np.isfinite(w2)) and np.all(w2 > 1e-300) and math.isfinite(p0) and p0 != 0
            and (y0 == 0 or abs(y) > 1e-280)):
        raise ValueError(f"linflow: scalar_deep: the weights' scales and y's are too far apart for float64 "
                         f"(w / |y|^(1/L) over- or underflows); rescale the problem.")
    k = int(np.argmin(w2))
    u0 = float(w2[k])
    d = w2 - u0
    d[k] = 0.0
    if y == 0:
        us = 0.0
    else:
        us = _limit(y, d, k)

    zero = d == 0  # the smallest weight(s): w_j^2 = u
    m = int(zero.sum())

    def log_p2(u, lnu):
        """ln p^2 = sum_j ln(u + d_j), with ln u given (u itself may underflow)."""
        return float(np.sum(np.log(u + d[~zero]))) + m * lnu

    def Q(u):
        b, a = u + d, us + d
        return float(sum(np.prod(b[:i]) * np.prod(a[i + 1:]) for i in range(w.size)))

    if u0 == us or t.max() == 0:
        return np.full(t.size, p0 * scale_p)
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
        r = np.asarray(sol.y, dtype=np.float64).reshape(-1)
        n1 = r.size
        out[:n1] = [sgn * math.exp(0.5 * log_p2(ri * ri, 2.0 * math.log(ri))) for ri in r]
        if sol.status < 0:
            # The escape from a long plateau (at t_f ~ 1/p0^(1-2/L)) is sharper than the spacing of
            # float64 times there.  Times well past t_f see the limit (the escape lasts O(1) in these
            # units); times within the unresolved window get a clear error.
            tf = float(sol.t[-1]) if np.size(sol.t) else 0.0
            late = tu[n1:] > tf * (1.0 + 1e-6) + 1e3
            if not np.all(late):
                raise ValueError(f"linflow: scalar_deep: at t = {tu[n1:][~late][0] / t_scale!r} the product is "
                                 f"escaping a plateau more sharply than float64 times can resolve there "
                                 f"(near t = {tf / t_scale:.6g}); p(t) is ill-determined at that time.")
            out[n1:] = sgn * math.exp(0.5 * log_p2(us, math.log(us)))
            return out[inv.ravel()] * scale_p
        if sol.status != 1:
            return out[inv.ravel()] * scale_p
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
    return out[inv.ravel()] * scale_p


def _limit(y, d, k):
    """``u_*`` with ``prod_j (u_* + d_j) = y^2`` (``d_k = 0``), by ``brentq`` in ``ln u`` on a checked bracket."""
    from scipy.optimize import brentq

    lny2 = 2.0 * math.log(abs(y))

    def excess(v):  # ln prod_j (e^v + d_j) - ln y^2, increasing in v = ln u (-inf where e^v underflows)
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(math.exp(v) + d))) - lny2

    ln_hi = lny2 / d.size  # prod_j (u + d_j) >= u^L
    ln_lo = lny2 - float(np.sum(np.log(math.exp(ln_hi) + np.delete(d, k))))  # u_* prod_{j != k} <= y^2
    if excess(ln_lo) >= 0 or ln_lo >= ln_hi:
        ln_us = ln_lo
    elif excess(ln_hi) <= 0:
        ln_us = ln_hi
    else:
        ln_us = brentq(excess, ln_lo, ln_hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
    return math.exp(ln_us)


def _ode_ok(sol):
    if sol.status < 0:  # pragma: no cover - smooth scalar ODEs with bounded right-hand sides
        raise RuntimeError(f"linflow: scalar_deep: the reduced ODE failed: {sol.message}")
