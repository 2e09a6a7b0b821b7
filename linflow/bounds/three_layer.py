r"""Three-layer bound: Definitions 1–2, Theorem 2 / Corollary 1 (Min, Vidal & Mallada 2023, §4.2).

With :math:`D_{21} = W_2W_2^\top - W_1^\top W_1 = -D_1` (``h_1 x h_1``) and
:math:`D_{23} = W_2^\top W_2 - W_3W_3^\top = D_2` (``h_2 x h_2``) (eqs. 13–14),

.. math::
    \lambda_{\min}(\mathcal T)\ \ge\ \Delta^* = \tfrac12(\Delta_{21}^{(2)}+\Delta_{21}^2)+\Delta_{21}\Delta_{23}
    +\tfrac12(\Delta_{23}^{(2)}+\Delta_{23}^2)\qquad(15).

Eigenvalues are decreasing; in Definition 1 :math:`\lambda_j = +\infty` for :math:`j\le0`.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_matrix, check_power, integer
from ._common import device, eig_desc, like, mT, weights
from ._common import wedge_values as _wedge_values
from .interlacing import check_interlacing, check_size, converse_diag, host_spectrum, host_tolerance
from ..backend import namespace, to_numpy

__all__ = ["wedge", "D_bar", "deltas", "delta_star", "delta_star_from", "lemma_g1", "tight_weights"]


def _diag(xp, v):
    h = v.shape[-1]
    return v[..., :, None] * xp.eye(h, dtype=v.dtype, device=device(v))


def wedge(A, B, r):
    r""":math:`A\wedge_rB = \mathrm{diag}\{\min\{\lambda_i(A),\lambda_{i+1-r}(B)\}\}_{i=1}^n` (Definition 1).

    Eigenvalues decreasing; :math:`\lambda_j(B) = +\infty` for :math:`j\le0`, so the first
    ``r-1`` entries are :math:`\lambda_i(A)`.  Not commutative.

    Parameters
    ----------
    A, B : arrays, symmetric, shape ``(..., n, n)``
    r : int >= 1

    Returns
    -------
    array ``(..., n, n)``, diagonal.
    """
    xp = namespace(check_matrix(A, "A"), check_matrix(B, "B"))
    if A.shape[-1] != B.shape[-1] or A.shape[-1] != A.shape[-2] or B.shape[-1] != B.shape[-2]:
        raise ValueError(
            f"linflow: wedge needs square A and B of one order; got {tuple(A.shape)} and {tuple(B.shape)}."
        )
    return _diag(xp, _wedge_values(xp, eig_desc(xp, A), eig_desc(xp, B), integer("r", r, minimum=1)))


def _pad(xp, v, h, fill):
    k = v.shape[-1]
    if k >= h:
        return v[..., :h]
    extra = xp.full(tuple(v.shape[:-1]) + (h - k,), fill, dtype=v.dtype, device=device(v))
    return xp.concat([v, extra], axis=-1)


def _dbar_values(xp, a, b):
    """Diagonals of D̄_{h1}, D̄_{h2} from decreasing spectra a (D21, h1) and b (D23, h2)."""
    h1, h2 = a.shape[-1], b.shape[-1]
    zero = xp.zeros_like(a[..., :1])
    d1 = xp.maximum(xp.maximum(a, _pad(xp, b, h1, -math.inf)), zero)
    d2 = xp.maximum(xp.maximum(_pad(xp, a, h2, -math.inf), b), xp.zeros_like(b[..., :1]))
    return d1, d2


def D_bar(D21, D23):
    r""":math:`\bar D_{h_1}` and :math:`\bar D_{h_2}` of Definition 2.

    :math:`\bar D_{h_k} = \mathrm{diag}\{\max\{\lambda_i(D_{21}),\lambda_i(D_{23}),0\}\}_{i=1}^{h_k}`.
    When :math:`h_1\ne h_2` the paper does not say what :math:`\lambda_i(D_{23})` means for
    :math:`i>h_2` (or :math:`\lambda_i(D_{21})` for :math:`i>h_1`); we take
    :math:`-\infty`, i.e. the missing term is ignored (the convention of the course's chapter *Three layers*).
    (App. G.4 prints :math:`D_{21}` twice, a typo, E8; the definition above is used.)

    Returns
    -------
    (D̄_h1, D̄_h2) : diagonal arrays ``(..., h_1, h_1)`` and ``(..., h_2, h_2)``.
    """
    xp = namespace(check_matrix(D21, "D21"), check_matrix(D23, "D23"))
    d1, d2 = _dbar_values(xp, eig_desc(xp, D21), eig_desc(xp, D23))
    return _diag(xp, d1), _diag(xp, d2)


def _deltas_from_spectra(xp, a, b, n, m):
    d1, d2 = _dbar_values(xp, a, b)
    w1 = _wedge_values(xp, d1, a, n)
    w2 = _wedge_values(xp, d2, b, m)
    s = lambda v: xp.sum(v, axis=-1)  # noqa: E731
    return {
        "Delta_21": s(d1) - s(w1),
        "Delta_21_2": s(d1 * d1) - s(w1 * w1),
        "Delta_23": s(d2) - s(w2),
        "Delta_23_2": s(d2 * d2) - s(w2 * w2),
    }


def _D21_D23(xp, Ws):
    W1, W2, W3 = Ws
    return W2 @ mT(xp, W2) - mT(xp, W1) @ W1, mT(xp, W2) @ W2 - W3 @ mT(xp, W3)


def deltas(Ws):
    r"""The four quantities of Definition 2 for three-layer weights.

    .. math::
        \Delta_{21} = \mathrm{tr}\bar D_{h_1} - \mathrm{tr}(\bar D_{h_1}\wedge_nD_{21}),\quad
        \Delta^{(2)}_{21} = \mathrm{tr}\bar D_{h_1}^2 - \mathrm{tr}\big((\bar D_{h_1}\wedge_nD_{21})^2\big),

    and likewise :math:`\Delta_{23},\Delta^{(2)}_{23}` with :math:`\bar D_{h_2}`, ``m`` and
    :math:`D_{23}`.  :math:`\Delta^{(2)}` can be negative (large negative eigenvalues of
    :math:`D_{21}`); that is expected.

    Returns
    -------
    dict with keys ``"Delta_21"``, ``"Delta_21_2"``, ``"Delta_23"``, ``"Delta_23_2"``;
    arrays of shape ``(...)``.
    """
    xp, Ws = weights(Ws, L=3, result="Definition 2 (deltas)")
    D21, D23 = _D21_D23(xp, Ws)
    n, m = Ws[0].shape[-2], Ws[2].shape[-1]
    return _deltas_from_spectra(xp, eig_desc(xp, D21), eig_desc(xp, D23), n, m)


def _star(q):
    return (0.5 * (q["Delta_21_2"] + q["Delta_21"] ** 2) + q["Delta_21"] * q["Delta_23"]
            + 0.5 * (q["Delta_23_2"] + q["Delta_23"] ** 2))


def delta_star_from(D21, D23, n, m):
    r""":math:`\Delta^*(D_{21}, D_{23})` of (15) from the imbalances and the outer dimensions ``n, m``."""
    xp = namespace(check_matrix(D21, "D21"), check_matrix(D23, "D23"))
    check_power(D21, "D21", 2)  # Delta* is quadratic in the imbalances
    check_power(D23, "D23", 2)
    return _star(_deltas_from_spectra(xp, eig_desc(xp, D21), eig_desc(xp, D23),
                                         integer("n", n, minimum=1), integer("m", m, minimum=1)))


def delta_star(Ws):
    r"""Theorem 2 / Corollary 1: :math:`\lambda_{\min}(\mathcal T)\ge\Delta^*(D_{21},D_{23})`, eq. (15).

    .. math::
        \Delta^* = \tfrac12(\Delta^{(2)}_{21}+\Delta_{21}^2)+\Delta_{21}\Delta_{23}+\tfrac12(\Delta^{(2)}_{23}+\Delta_{23}^2)
        = \alpha_3 .

    Uses the **main-text normalization (15)**.  The appendix (Theorem G.2) calls twice
    this quantity ":math:`\Delta^*`" and states :math:`\lambda_{\min}\ge\Delta^*/2`
    (erratum E3 in the course's chapter *Errata and open problems*); reading the appendix's :math:`\Delta^*` as a rate is off by 2
    (see :func:`linflow.bounds.printed.delta_star`).  The bound depends only on the
    imbalances, so it holds uniformly along the flow, for any initialization;
    Corollary 1: :math:`\mathcal L(t)-\mathcal L^*\le e^{-\Delta^*\gamma t}(\mathcal L(0)-\mathcal L^*)`
    when :math:`\Delta^* > 0`.

    Raises
    ------
    HypothesisError
        ``L != 3``.

    Examples
    --------
    >>> import linflow as lf
    >>> Ws = lf.init.gaussian((5, 40, 40, 1), "fan_out", batch=(4,), seed=0)
    >>> d = lf.bounds.delta_star(Ws)
    >>> bool((d > 0).all() and (d <= lf.lambda_min(Ws)).all())
    True
    """
    xp, Ws = weights(Ws, L=3, result="Theorem 2 (delta_star)")
    D21, D23 = _D21_D23(xp, Ws)
    n, m = Ws[0].shape[-2], Ws[2].shape[-1]
    return _star(_deltas_from_spectra(xp, eig_desc(xp, D21), eig_desc(xp, D23), n, m))


def lemma_g1(Ws):
    r"""Lemma G.1: :math:`\lambda_{\min}(\mathcal T)\ge g(W_1,W_2,W_3)` for ``L = 3``.

    .. math::
        g = \lambda_n(W_1W_2W_2^\top W_1^\top) + \lambda_n(W_1W_1^\top)\lambda_m(W_3^\top W_3)
        + \lambda_m(W_3^\top W_2^\top W_2W_3) .

    Theorem 2 shows :math:`g\ge\Delta^*`.
    """
    xp, Ws = weights(Ws, L=3, result="Lemma G.1")
    W1, W2, W3 = Ws
    lo = lambda A: xp.linalg.eigvalsh(0.5 * (A + mT(xp, A)))[..., 0]  # noqa: E731
    A = W1 @ W2
    B = W2 @ W3
    return lo(A @ mT(xp, A)) + lo(W1 @ mT(xp, W1)) * lo(mT(xp, W3) @ W3) + lo(mT(xp, B) @ B)


def _check_pair(D21, D23, n, m):
    """Validated host copies of ``(D21, D23)``, ``n``, ``m`` for :func:`tight_weights`."""
    namespace(check_matrix(D21, "D21"), check_matrix(D23, "D23"))
    n, m = integer("n", n, minimum=1), integer("m", m, minimum=1)
    for S, name in ((D21, "D21"), (D23, "D23")):
        if S.shape[-1] != S.shape[-2]:
            raise ValueError(f"linflow: {name} must be square; got shape {tuple(S.shape)}.")
        check_power(S, name, 2)
    if tuple(D21.shape[:-2]) != tuple(D23.shape[:-2]):
        raise ValueError(f"linflow: D21 and D23 must share their batch shape; got {tuple(D21.shape)} "
                         f"and {tuple(D23.shape)}.")
    if str(D21.dtype) != str(D23.dtype):
        raise TypeError(f"linflow: D21 and D23 must share one dtype; got {D21.dtype} and {D23.dtype}.")
    check_size(tuple(D21.shape[:-2]) + (n, D21.shape[-1]), "W_1 (n x h_1)")
    check_size(tuple(D23.shape[:-2]) + (D23.shape[-1], m), "W_3 (h_2 x m)")
    return (np.asarray(to_numpy(D21), dtype=np.float64), np.asarray(to_numpy(D23), dtype=np.float64),
            n, m)


def _tight_one(D21, D23, n, m, dtype):
    """One unbatched instance of :func:`tight_weights` on the host."""
    h1, h2 = D21.shape[0], D23.shape[0]
    k = min(h1, h2)
    tol = host_tolerance(dtype, D21, D23)
    a, U1 = host_spectrum(D21, "D21", tol)
    b, U3 = host_spectrum(D23, "D23", tol)
    for tail, name, h in ((a[k:], "D21", h2), (b[k:], "D23", h1)):
        if tail.size and tail[0] > tol:
            raise ValueError(
                f"linflow: (D21, D23) are not the imbalances of any weights: W_2 has rank at most "
                f"min(h_1, h_2) = {k}, so lambda_i({name}) <= 0 for i > {h}; got "
                f"lambda_{k + 1}({name}) = {tail[0]:.6g}.")
    d1, d3 = _dbar_values(np, a, b)
    d1[k:], d3[k:] = 0.0, 0.0  # the tails checked above are <= 0 up to round-off
    why = "(D21, D23) are not the imbalances of any weights: they need D_bar_{h} >=_r D"
    a = check_interlacing(d1, a, n, tol, f"{why} with r = n, D = D21")
    b = check_interlacing(d3, b, m, tol, f"{why} with r = m, D = D23")
    Z1, V1 = converse_diag(d1, a, n, tol)  # D_bar_h1 - Z1^T Z1 = V1 diag(a) V1^T
    Z3, V3 = converse_diag(d3, b, m, tol)
    R1, R3 = V1 @ U1.T, V3 @ U3.T  # D21 = R1^T (D_bar_h1 - Z1^T Z1) R1
    S = np.zeros((h1, h2))
    S[:k, :k] = np.diag(np.sqrt(d1[:k]))
    return Z1 @ R1, R1.T @ S @ R3, R3.T @ Z3.T


def tight_weights(D21, D23, n, m):
    r"""Weights attaining Theorem 2: the optimal solution of problem (16) (Lemma G.7, App. G.4).

    Given :math:`D_{21}` (``h_1 x h_1``) and :math:`D_{23}` (``h_2 x h_2``), returns
    :math:`(W_1, W_2, W_3)` of shapes ``(n, h_1)``, ``(h_1, h_2)``, ``(h_2, m)`` with

    .. math::
        W_2W_2^\top - W_1^\top W_1 = D_{21},\qquad W_2^\top W_2 - W_3W_3^\top = D_{23},

    and :math:`\lambda_{\min}(\mathcal T) = g(W_1, W_2, W_3) = \Delta^*(D_{21}, D_{23})`
    (:func:`lemma_g1`, :func:`delta_star`): the bound of Theorem 2 is attained, on
    :math:`\lambda_{\min}(\mathcal T)` itself.  The construction is the paper's,
    :math:`W_1 = Z_1V_1`, :math:`W_2 = V_1^\top SV_3`, :math:`W_3 = V_3^\top Z_3^\top`,
    with ``S`` the ``h_1 x h_2`` matrix with :math:`\sqrt{d_i}` (:math:`d_i` the diagonal of
    :math:`\bar D_{h_1}`) at ``(i, i)`` for :math:`i\le\min(h_1, h_2)` and zeros elsewhere,
    and :math:`(Z_1, V_1)`, :math:`(Z_3, V_3)` the converse of :math:`\bar D_{h_1}\succeq_nD_{21}`
    and :math:`\bar D_{h_2}\succeq_mD_{23}` (:func:`~linflow.bounds.interlacing_converse`):
    :math:`\bar D_{h_1} - Z_1^\top Z_1 = V_1D_{21}V_1^\top`, and likewise with index 3.
    The proof is the attainment proposition of the course's chapter *Three layers*.

    A pair is the imbalances of some weights exactly when :math:`\bar D_{h_1}\succeq_nD_{21}`,
    :math:`\bar D_{h_2}\succeq_mD_{23}`, :math:`\lambda_i(D_{21})\le 0` for :math:`i > h_2`
    and :math:`\lambda_i(D_{23})\le 0` for :math:`i > h_1` (same proposition); otherwise a
    ValueError names the failing condition.  Round-off up to
    ``1e4 eps max(1, max |D|) max(h_1, h_2)`` is tolerated (and clipped).

    Parameters
    ----------
    D21, D23 : arrays ``(..., h_1, h_1)`` and ``(..., h_2, h_2)``, symmetric, one dtype
    n, m : int >= 1, the input and output dimensions

    Returns
    -------
    (W_1, W_2, W_3) : arrays of the input's namespace and dtype, batched like the input.

    Examples
    --------
    >>> import linflow as lf
    >>> Ws = lf.init.gaussian((2, 4, 3, 1), "fan_out", seed=0)
    >>> D21, D23 = -lf.imbalance(Ws)[0], lf.imbalance(Ws)[1]
    >>> T = lf.bounds.tight_weights(D21, D23, 2, 1)
    >>> d, g = float(lf.bounds.delta_star(T)), float(lf.bounds.lemma_g1(T))
    >>> abs(g - d) < 1e-9 and abs(float(lf.lambda_min(T)) - d) < 1e-9
    True
    """
    a21, a23, n, m = _check_pair(D21, D23, n, m)
    batch = tuple(D21.shape[:-2])
    h1, h2 = D21.shape[-1], D23.shape[-1]
    out = [np.zeros(batch + s) for s in ((n, h1), (h1, h2), (h2, m))]
    for idx in np.ndindex(*batch):
        for o, W in zip(out, _tight_one(a21[idx], a23[idx], n, m, D21.dtype)):
            o[idx] = W
    return tuple(like(None, W, D21) for W in out)
