r"""Rates from prior work, in this package's ordering :math:`W = W_1\cdots W_L` (Table 1 of the paper; the course's chapter *Case studies*).

Each function names its source and the hypothesis it needs; outside that hypothesis
it raises :class:`~linflow.bounds.HypothesisError` (a ``ValueError``).  All return a lower
bound on (or the value of) :math:`\lambda_{\min}(\mathcal T)`, so that the loss rate is
``gamma`` times it.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_matrix, check_power, integer, real_array
from ..backend import namespace, to_numpy
from ._common import HypothesisError, device, eig_desc, imbalances, pick, pos, product, sigma_desc, tolerance, weights
from .deep import _spectra
from .two_layer import _spread_gap

__all__ = ["arora", "yun", "min2021", "tarmoun", "scalar_ideal", "diagonal_rate", "is_balanced"]


def _balanced_mask(xp, Ws, tol):
    t = tolerance(xp, Ws, tol)
    ok = np.ones(tuple(Ws[0].shape[:-2]), dtype=bool)
    for ev in _spectra(xp, Ws):
        big = np.maximum(np.abs(to_numpy(ev[..., 0])), np.abs(to_numpy(ev[..., -1])))
        ok &= np.asarray(big, dtype=np.float64) <= t
    return ok


def is_balanced(Ws, *, tol=None):
    """Whether every imbalance vanishes, :math:`D_l = 0` (bool, or NumPy bool array for a batch)."""
    xp, Ws = weights(Ws)
    ok = _balanced_mask(xp, Ws, tol)
    return bool(ok) if ok.ndim == 0 else ok


def arora(Ws, *, tol=None):
    r"""Balanced weights (Arora, Cohen, Hazan 2018; Table 1): the exact :math:`\lambda_{\min}(\mathcal T)`.

    .. math::
        \lambda_{\min}(\mathcal T) = L\,\sigma_{\min}^{2-2/L}(W)\ \ (n = m),\qquad
        \lambda_{\min}(\mathcal T) = \sigma_{\min}^{2-2/L}(W)\ \ (n\ne m).

    Correction (erratum E4, chapter *Errata and open problems*): the paper states :math:`L\sigma_{\min}^{2-2/L}` for all
    ``n, m``; for ``n != m`` the preconditioner :math:`\sum_j(WW^\top)^{(j-1)/L}\otimes(W^\top W)^{(L-j)/L}`
    has a zero eigenvalue direction of :math:`W^\top W` (or :math:`WW^\top`) where only one
    term survives.  Printed form: :func:`linflow.bounds.printed.balanced`.

    Raises
    ------
    HypothesisError
        The weights are not balanced (some :math:`D_l\ne0` beyond ``tol``).
    """
    xp, Ws = weights(Ws)
    ok = _balanced_mask(xp, Ws, tol)
    if not np.all(ok):
        raise HypothesisError(
            "linflow: arora needs balanced weights (D_l = 0 for every l, Arora et al. 2018); "
            f"{int(np.sum(~ok))} of {ok.size} networks are not balanced."
        )
    L = len(Ws)
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    s = sigma_desc(xp, product(xp, Ws))[..., -1]
    return (float(L) if n == m else 1.0) * s ** (2.0 - 2.0 / L)


def yun(Ws, *, tol=None):
    r"""Yun, Krishnan & Mobahi (ICLR 2021; "Yun et al. 2020" in the paper), Table 1: :math:`\lambda^{L-1}`.

    Hypothesis, in this ordering: :math:`D_l\succeq0` for :math:`l\le L-2` and
    :math:`D_{L-1}\succeq\lambda I` (unimodal with :math:`l^* = L`).  The largest
    :math:`\lambda` for which the hypothesis holds is
    :math:`\lambda = [\lambda_{\min}(D_{L-1})]_+`, the least of **all**
    :math:`h_{L-1}` eigenvalues of :math:`D_{L-1}`; when it is 0 their theorem gives no
    positive rate and this returns 0 (also when :math:`h_{L-1} < n`: the product then has
    rank below ``n``, and :math:`\lambda_n(D_{L-1}) = 0` by the paper's convention).  (Theorem 3's :math:`\tilde d_{(L-1)}` uses
    :math:`\lambda_n(D_{L-1})` instead, which can be positive when :math:`h_{L-1} > n`
    although :math:`D_{L-1}` is singular: that is the paper's improvement, not Yun et al.'s
    hypothesis.)  Then :math:`\lambda^{L-1}\le\prod\tilde d_{(i)}` (Theorem 3).

    Raises
    ------
    HypothesisError
        Some :math:`D_l` is not PSD.
    """
    xp, Ws = weights(Ws)
    L = len(Ws)
    if L < 2:
        raise HypothesisError("linflow: yun needs L >= 2 layers.")
    spectra = _spectra(xp, Ws)
    t = tolerance(xp, Ws, tol)
    lo = np.stack([np.asarray(to_numpy(ev[..., -1]), dtype=np.float64) for ev in spectra], axis=-1)
    ok = np.all(lo >= -t[..., None], axis=-1)
    if not np.all(ok):
        raise HypothesisError(
            "linflow: yun needs D_l ⪰ 0 for l <= L-2 and D_{L-1} ⪰ lambda I (Yun et al.; "
            f"unimodal with l* = L); {int(np.sum(~ok))} of {ok.size} networks violate it."
        )
    # lambda_min over all h_{L-1} eigenvalues of D_{L-1}; and 0 when h_{L-1} < n, where the
    # product has rank < n and no rate follows (lambda_n = 0 by the paper's convention)
    n = Ws[0].shape[-2]
    lam = pos(xp, xp.minimum(spectra[-1][..., -1], pick(xp, spectra[-1], n)))
    return lam ** (L - 1)


def min2021(Ws):
    r"""Min, Tarmoun, Vidal & Mallada (ICML 2021), Thm 1, with :math:`X = I`: the constant ``c``.

    :math:`c = [\lambda_n(D)]_+ + [\lambda_m(-D)]_+` for :math:`D = W_1^\top W_1 - W_2W_2^\top`;
    the squared loss then decays at rate :math:`2c` (:math:`\gamma = 2`).  It equals
    :math:`\underline\Delta` of Theorem 1.1 (checked in ``tests/test_bounds.py``).

    Raises
    ------
    HypothesisError
        ``L != 2``.
    """
    xp, Ws = weights(Ws, L=2, result="Min et al. 2021 (min2021)")
    return _spread_gap(xp, Ws)[2]


def tarmoun(Ws, Y, *, tol=None):
    r"""Tarmoun, França, Haeffele & Vidal (ICML 2021): :math:`\sqrt{\lambda^2+4\sigma_{\min}^2(Y)}`.

    For two layers with :math:`D = \lambda I` and ``n = m``, the **asymptotic** (local)
    rate of :math:`\tfrac12\|Y-W_1W_2\|_F^2` is at least :math:`2\sqrt{\lambda^2+4\sigma_{\min}^2(Y)}`
    (as restated by Min et al. 2022); this returns the :math:`\lambda_{\min}(\mathcal T)`
    part, :math:`\sqrt{\lambda^2+4\sigma_{\min}^2(Y)}`, the value of :math:`\lambda_{\min}(\mathcal T)`
    at the λ-balanced factorizations of ``Y`` (with ``h = n``).  It is a limit, not a bound
    uniform in time; Theorem 1.2 replaces :math:`\sigma_{\min}(Y)` by the margin ν.

    Raises
    ------
    HypothesisError
        ``L != 2``, ``n != m``, or ``D`` is not a multiple of the identity.
    """
    xp, Ws = weights(Ws, L=2, result="Tarmoun et al. 2021")
    xp = namespace(*Ws, check_matrix(Y, "Y"))
    check_power(Y, "Y", 2)  # the rate holds sigma_min(Y)^2
    n, m = Ws[0].shape[-2], Ws[1].shape[-1]
    if tuple(Y.shape[-2:]) != (n, m):
        raise ValueError(
            f"linflow: tarmoun needs the target Y of the product's shape (..., {n}, {m}); got Y of "
            f"shape {tuple(Y.shape)}."
        )
    if n != m:
        raise HypothesisError(f"linflow: tarmoun is stated for n = m (square Y); got n = {n}, m = {m}.")
    ev = eig_desc(xp, imbalances(xp, Ws)[0])
    t = tolerance(xp, Ws, tol)
    spread = np.asarray(to_numpy(ev[..., 0] - ev[..., -1]), dtype=np.float64)
    if np.any(spread > t):
        raise HypothesisError(
            "linflow: tarmoun needs a homogeneous imbalance D = lambda I (Tarmoun et al. 2021); "
            f"the eigenvalues of D spread by up to {float(np.max(spread)):.3g}."
        )
    lam = xp.mean(ev, axis=-1)
    s = sigma_desc(xp, Y)[..., -1]
    return xp.sqrt(lam ** 2 + 4 * s ** 2)


_MAX_ITERS = 100_000


def scalar_ideal(ws, w=None, *, iters=200):
    r"""The ideal rate :math:`\alpha^*` of a deep scalar network (slides; Lemma I.2, §4.3).

    :math:`\alpha^*(\{d_l\}, w) = \min\tau = \sum_l\prod_{i\ne l}w_i^2` subject to the conserved
    imbalances :math:`w_i^2-w_j^2` and :math:`\prod_lw_l = w`.  Writing
    :math:`w_i^2 = u + c_i` with :math:`c_i = w_i^2-\min_jw_j^2\ge0`, the constraint is the
    degree-L polynomial equation :math:`p(u) = \prod_i(u+c_i) = w^2`, which has one root
    :math:`u^*\ge0` (``p`` increases on :math:`u\ge0`), and :math:`\alpha^* = p'(u^*)`.  The
    root is found by bisection (vectorized) and polished by Newton steps.

    With ``w = None`` the product of ``ws`` is used, and :math:`\alpha^* = \tau =
    \lambda_{\min}(\mathcal T)` exactly.  With ``w`` a smaller value (e.g. the margin ν),
    :math:`\alpha^*` is a bound uniform along the flow (τ increases with :math:`|w|`).
    Lemma I.2: :math:`\alpha^*\ge\sqrt{(\prod\tilde d_{(i)})^2+(L|w|^{2-2/L})^2}`.

    Parameters
    ----------
    ws : array, shape ``(..., L)``, or a tuple of ``1 x 1`` weights
    w : array or float, shape ``(...)``, optional

    Returns
    -------
    array of shape ``(...)``.
    """
    iters = integer("iters", iters, minimum=1)
    if iters > _MAX_ITERS:
        raise ValueError(f"linflow: iters must be at most {_MAX_ITERS} (bisection halves the bracket each time); "
                         f"got {iters}.")
    if isinstance(ws, tuple) or (isinstance(ws, list) and ws and hasattr(ws[0], "shape")):
        xp, Ws = weights(ws)
        if any(tuple(W.shape[-2:]) != (1, 1) for W in Ws):
            raise ValueError("linflow: scalar_ideal needs 1 x 1 layers; got shapes "
                             f"{[tuple(W.shape) for W in Ws]}.")
        ws = xp.stack([W[..., 0, 0] for W in Ws], axis=-1)
    ws = real_array(ws, "ws")
    xp = namespace(ws)
    L = ws.shape[-1]
    check_power(ws, "ws", 2 * L)
    sq = ws * ws
    base = xp.min(sq, axis=-1)
    c = sq - base[..., None]
    if w is None:
        target = xp.prod(sq, axis=-1)
    else:
        w = real_array(w, "w", ndim=0)
        check_power(w, "w", 2)
        w = xp.asarray(w, dtype=ws.dtype, device=device(ws)) if isinstance(w, np.ndarray) else w
        try:
            np.broadcast_shapes(tuple(w.shape), tuple(ws.shape[:-1]))
        except ValueError:
            raise ValueError(f"linflow: w must have the batch shape {tuple(ws.shape[:-1])} of ws; "
                             f"got shape {tuple(w.shape)}.") from None
        target = w * w
    # p(u) >= u^L, so u* <= target^(1/L)
    lo = xp.zeros_like(target)
    hi = target ** (1.0 / L)

    def p(u):
        return xp.prod(u[..., None] + c, axis=-1)

    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = p(mid) < target
        lo = xp.where(below, mid, lo)
        hi = xp.where(below, hi, mid)
        # stop early is a host sync; the fixed count is cheap
    u = 0.5 * (lo + hi)
    terms = u[..., None] + c  # (..., L)
    # p'(u) = sum_l prod_{i != l}(u + c_i), computed without division
    out = xp.zeros_like(u)
    for l in range(L):
        mask = [i for i in range(L) if i != l]
        if mask:
            out = out + xp.prod(xp.stack([terms[..., i] for i in mask], axis=-1), axis=-1)
        else:
            out = out + xp.ones_like(u)
    return out


def diagonal_rate(ws, w=None):
    r"""Diagonal linear networks (App. E.2): :math:`\min_i\tau_i`, the rate of :math:`f(w_1\odot\cdots\odot w_L)`.

    Each coordinate ``i`` is a deep scalar network with its own conserved imbalances, and
    the operator of the vector model acts on coordinate ``i`` by
    :math:`\tau_i = \sum_l\prod_{k\ne l}w_{k,i}^2`, so
    :math:`\dot{\mathcal L}\le-\gamma\min_i\tau_i(\mathcal L-\mathcal L^*)`.  Computed through
    :func:`scalar_ideal` per coordinate (with ``w``, of shape ``(..., n)``, the per-coordinate
    products to use instead of the current ones, e.g. margins).

    (The matrix network :func:`linflow.init.diagonal` acting on all ``n x n`` matrices has
    more directions, so :func:`linflow.lambda_min` of it can be smaller.)

    Parameters
    ----------
    ws : array, shape ``(..., L, n)``

    Returns
    -------
    array of shape ``(...)``.
    """
    ws = real_array(ws, "ws", ndim=2)
    xp = namespace(ws)
    tau = scalar_ideal(xp.matrix_transpose(ws), w)  # (..., n)
    return xp.min(tau, axis=-1)
