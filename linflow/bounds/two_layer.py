r"""Two-layer bounds: Lemma 3, Theorem 1 and the margin of Lemma B.1 (Min, Vidal & Mallada 2023, §4.1).

For :math:`L = 2`, :math:`D = W_1^\top W_1 - W_2W_2^\top` (``h x h``) and :math:`W = W_1W_2`:

.. math::
    \Delta_+ = [\lambda_1(D)]_+ - [\lambda_n(D)]_+,\quad
    \Delta_- = [\lambda_1(-D)]_+ - [\lambda_m(-D)]_+,\quad
    \underline\Delta = [\lambda_n(D)]_+ + [\lambda_m(-D)]_+ .

Eigenvalue indices past ``h`` count as 0 under :math:`[\cdot]_+`; singular values
:math:`\sigma_k(W)` past ``min(n, m)`` are 0.  All functions are batched over leading
axes and return arrays of the input's namespace.
"""
from __future__ import annotations

import math

from .._validate import check_loss
from ._common import HypothesisError, eig_desc, mT, pick, pos, product, sigma_desc, weights

__all__ = ["spread_gap", "lemma3", "margin", "margins", "two_layer"]


def _spread_gap(xp, Ws):
    W1, W2 = Ws
    n, m = W1.shape[-2], W2.shape[-1]
    D = mT(xp, W1) @ W1 - W2 @ mT(xp, W2)
    ev = eig_desc(xp, D)  # lambda_i(D), decreasing
    evm = -xp.flip(ev, axis=-1)  # lambda_i(-D), decreasing
    l1, ln = pos(xp, ev[..., 0]), pos(xp, pick(xp, ev, n))
    k1, km = pos(xp, evm[..., 0]), pos(xp, pick(xp, evm, m))
    return l1 - ln, k1 - km, ln + km


def spread_gap(Ws):
    r"""Spectrum spreads and gap :math:`(\Delta_+, \Delta_-, \underline\Delta)` of Lemma 3 (L = 2).

    Parameters
    ----------
    Ws : (W_1, W_2), shapes ``(..., n, h)`` and ``(..., h, m)``

    Returns
    -------
    Delta_plus, Delta_minus, Delta_gap : arrays of shape ``(...)``

    Notes
    -----
    :math:`\underline\Delta` alone is Theorem 1.1's rate: :math:`\lambda_{\min}(\mathcal T)\ge\underline\Delta`.
    """
    xp, Ws = weights(Ws, L=2, result="spread_gap (Lemma 3)")
    return _spread_gap(xp, Ws)


def _sigma_k(xp, W, k):
    return pick(xp, sigma_desc(xp, W), k, 0.0)


def _combine(xp, dp, dm, gap, s_plus, s_minus):
    """½[-Δ+ + √((Δ+ + Δ)² + 4 s₊²) - Δ- + √((Δ- + Δ)² + 4 s₋²)]."""
    a = -dp + xp.sqrt((dp + gap) ** 2 + 4 * s_plus ** 2)
    b = -dm + xp.sqrt((dm + gap) ** 2 + 4 * s_minus ** 2)
    return 0.5 * (a + b)


def lemma3(Ws):
    r"""Lower bound on :math:`\lambda_{\min}(\mathcal T_{W_1,W_2})`: Lemma 3, **corrected pairing**.

    .. math::
        \lambda_{\min}(\mathcal T) \ge \tfrac12\Big[-\Delta_+ + \sqrt{(\Delta_++\underline\Delta)^2+4\sigma_m^2(W)}
        -\Delta_- + \sqrt{(\Delta_-+\underline\Delta)^2+4\sigma_n^2(W)}\Big].

    Correction (erratum E2, chapter *Errata and open problems*): the printed (9) pairs :math:`\Delta_+` with
    :math:`\sigma_n` and :math:`\Delta_-` with :math:`\sigma_m`, which is false for
    ``n != m``; the pairing above is Min et al. 2022, Prop. 1.  For ``n = m`` the two
    agree.  The printed form is :func:`linflow.bounds.printed.lemma3`.

    Raises
    ------
    HypothesisError (a ValueError)
        ``L != 2``.

    Examples
    --------
    >>> import linflow as lf
    >>> Ws = lf.init.gaussian((3, 4, 1), batch=(5,), seed=0)
    >>> bool((lf.bounds.lemma3(Ws) <= lf.lambda_min(Ws) + 1e-12).all())
    True
    """
    return _lemma3(Ws, "Lemma 3", printed_pairing=False)


def _lemma3(Ws, result, printed_pairing):
    """Lemma 3 with the corrected pairing (Delta_+ with sigma_m), or the printed one (E2)."""
    xp, Ws = weights(Ws, L=2, result=result)
    n, m = Ws[0].shape[-2], Ws[1].shape[-1]
    dp, dm, gap = _spread_gap(xp, Ws)
    W = product(xp, Ws)
    first, second = (n, m) if printed_pairing else (m, n)
    return _combine(xp, dp, dm, gap, _sigma_k(xp, W, first), _sigma_k(xp, W, second))


def _check_A2(loss, result):
    if loss is not None:
        check_loss(loss)
    if loss is None or getattr(loss, "mu", None) is None or getattr(loss, "minimizer", None) is None:
        raise HypothesisError(
            f"linflow: {result} needs a loss satisfying Assumption A2 (K-smooth, mu-strongly "
            f"convex, with a unique minimizer W*); got {type(loss).__name__}"
            + (f" (assumption {loss.assumption!r})" if loss is not None else "")
            + "."
        )


def margins(Ws, loss):
    r"""All margins :math:`\nu_k = [\sigma_k(W^*) - \sqrt{K/\mu}\,\|W(0)-W^*\|_F]_+`, ``k = 1..min(n, m)``.

    Lemma B.1: under A2, :math:`\sigma_k(W(t))\ge\nu_k` for all ``t`` (Weyl's inequality
    plus :math:`\|W(t)-W^*\|_F\le\sqrt{K/\mu}\|W(0)-W^*\|_F`).  Shape ``(..., min(n, m))``,
    decreasing.
    """
    xp, Ws = weights(Ws)
    _check_A2(loss, "the margin (Lemma B.1)")
    loss.check(Ws)
    W = product(xp, Ws)
    Ws_ = loss.minimizer
    R = W - Ws_
    radius = math.sqrt(loss.K / loss.mu) * xp.sqrt(xp.sum(R * R, axis=(-2, -1)))
    s = sigma_desc(xp, Ws_)
    return pos(xp, s - radius[..., None])


def margin(Ws, loss):
    r"""The margin :math:`\nu = [\sigma_{\min}(W^*) - \sqrt{K/\mu}\,\|W(0)-W^*\|_F]_+` (Lemma B.1, eq. 10).

    ``W(0)`` is the product of ``Ws``; ``W*``, ``K``, ``mu`` come from the loss (A2).

    Raises
    ------
    HypothesisError
        The loss does not satisfy A2 (e.g. classification losses, under-determined regression).
    """
    return margins(Ws, loss)[..., -1]


def two_layer(Ws, loss=None):
    r"""The rate :math:`\alpha_2` of Theorem 1 (two layers), **corrected** (E1, E2).

    * Without a loss, or with a loss satisfying only A1 (Theorem 1.1):
      :math:`\alpha_2 = \underline\Delta`.
    * With a loss satisfying A1 and A2 (Theorem 1.2, corrected):

      .. math::
          \alpha_2 = \tfrac12\Big[-\Delta_+ + \sqrt{(\Delta_++\underline\Delta)^2+4\nu_m^2}
          -\Delta_- + \sqrt{(\Delta_-+\underline\Delta)^2+4\nu_n^2}\Big],

      :math:`\nu_k = [\sigma_k(W^*) - \sqrt{K/\mu}\|W(0)-W^*\|_F]_+` (0 for ``k > min(n, m)``).

    Corrections (chapter *Errata and open problems*): E1, the printed (12) drops the factor ½ that the
    proof (App. F) has; E2, the printed pairing of :math:`\nu_n,\nu_m` is swapped.  Then
    :math:`\mathcal L(t)-\mathcal L^*\le e^{-\alpha_2\gamma t}(\mathcal L(0)-\mathcal L^*)`
    and :math:`\lambda_{\min}(\mathcal T(t))\ge\alpha_2` along the flow.
    """
    xp, Ws = weights(Ws, L=2, result="Theorem 1")
    dp, dm, gap = _spread_gap(xp, Ws)
    if loss is None or getattr(loss, "mu", None) is None:
        return gap
    n, m = Ws[0].shape[-2], Ws[1].shape[-1]
    nu = margins(Ws, loss)
    return _combine(xp, dp, dm, gap, pick(xp, nu, m), pick(xp, nu, n))
