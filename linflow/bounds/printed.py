r"""**PRINTED (WRONG) STATEMENTS** of Min, Vidal & Mallada (ICML 2023), for the errata chapter only.

Do not use these as bounds.  Each function reproduces a formula *as printed* in the
ICML version, next to the erratum that fixes it (the course's chapter *Errata and open problems*); the corrected
versions live in :mod:`linflow.bounds`.  The tests in ``tests/test_errata.py`` hold a
concrete counterexample for each.

===========================  =====  ==============================================
printed                      error  corrected
===========================  =====  ==============================================
:func:`lemma3`               E2     :func:`linflow.bounds.lemma3`
:func:`theorem1`             E1,E2  :func:`linflow.bounds.two_layer`
:func:`delta_star`           E3     :func:`linflow.bounds.delta_star`
:func:`balanced`             E4     :func:`linflow.bounds.arora`
:func:`eq19`                 E4     :func:`linflow.bounds.homogeneous` (n = m only)
:func:`corollary2`           E5     :func:`linflow.bounds.corollary2`
:func:`delta_star_G17`       E8     :func:`linflow.bounds.delta_star`
:func:`figure1_bound`        E6     :func:`linflow.bounds.loss_curve`
===========================  =====  ==============================================
"""
from __future__ import annotations


import numpy as np

from .._validate import positive, real_array
from ..backend import to_numpy
from ._common import eig_desc, pick, product, sigma_desc, weights
from .deep import _eq19, _unimodal_product
from .three_layer import _D21_D23, _deltas_from_spectra, _pad, _star, _wedge_values
from .two_layer import _combine, _lemma3, _spread_gap, margin, margins

__all__ = ["lemma3", "theorem1", "delta_star", "balanced", "eq19", "corollary2", "delta_star_G17",
           "figure1_bound"]

_WARN = "PRINTED (WRONG) statement, for the errata only. "


def lemma3(Ws):
    r"""PRINTED (WRONG) Lemma 3, eq. (9): the σ-pairing swapped (E2).

    .. math::
        \lambda_{\min}\ \text{"}\ge\text{"}\ \tfrac12\Big[-\Delta_++\sqrt{(\Delta_++\underline\Delta)^2+4\sigma_n^2(W)}
        -\Delta_-+\sqrt{(\Delta_-+\underline\Delta)^2+4\sigma_m^2(W)}\Big].

    False for ``n != m`` (832 of 3000 random trials; see erratum E4).  Corrected:
    :func:`linflow.bounds.lemma3`.
    """
    return _lemma3(Ws, "Lemma 3 (printed)", printed_pairing=True)


def theorem1(Ws, loss):
    r"""PRINTED (WRONG) Theorem 1.2, eq. (12)/(F.3): no factor ½ (E1) and swapped pairing (E2).

    .. math::
        \alpha_2 = -\Delta_++\sqrt{(\Delta_++\underline\Delta)^2+4\nu_n^2}-\Delta_-+\sqrt{(\Delta_-+\underline\Delta)^2+4\nu_m^2}.

    With :math:`\nu = 0` it gives :math:`2\underline\Delta`, contradicting part 1.
    Corrected: :func:`linflow.bounds.two_layer`.
    """
    xp, Ws = weights(Ws, L=2, result="Theorem 1 (printed)")
    n, m = Ws[0].shape[-2], Ws[1].shape[-1]
    dp, dm, gap = _spread_gap(xp, Ws)
    nu = margins(Ws, loss)
    return 2.0 * _combine(xp, dp, dm, gap, pick(xp, nu, n), pick(xp, nu, m))


def delta_star(Ws):
    r"""PRINTED appendix normalization of :math:`\Delta^*` (Theorem G.2), read as a rate (E3).

    The appendix writes :math:`\Delta^* = \Delta^{(2)}_{21}+\Delta_{21}^2+2\Delta_{21}\Delta_{23}
    +\Delta^{(2)}_{23}+\Delta_{23}^2`, twice (15), and states :math:`\lambda_{\min}\ge\Delta^*/2`.
    Taken as the rate (as the main-text symbol suggests) it overstates it by 2: for
    unimodal three-layer weights (15) is attained.  Corrected: :func:`linflow.bounds.delta_star`.
    """
    xp, Ws = weights(Ws, L=3, result="Theorem G.2 (printed)")
    D21, D23 = _D21_D23(xp, Ws)
    n, m = Ws[0].shape[-2], Ws[2].shape[-1]
    return 2.0 * _star(_deltas_from_spectra(xp, eig_desc(xp, D21), eig_desc(xp, D23), n, m))


def delta_star_G17(Ws):
    r"""PRINTED (typo) :math:`\bar D = \mathrm{diag}\{\max\{\lambda_i(D_{21}),\lambda_i(D_{21}),0\}\}` of App. G.4 / (G.17) (E8).

    The second argument should be :math:`D_{23}`.  This computes (15) with :math:`\bar D`
    built from :math:`D_{21}` alone (both :math:`\bar D_{h_1}` and :math:`\bar D_{h_2}`, the
    latter padded with 0 past :math:`h_1`).  Corrected: :func:`linflow.bounds.delta_star`.
    """
    xp, Ws = weights(Ws, L=3, result="App. G.4 (printed)")
    D21, D23 = _D21_D23(xp, Ws)
    n, m = Ws[0].shape[-2], Ws[2].shape[-1]
    a, b = eig_desc(xp, D21), eig_desc(xp, D23)


    zero = xp.zeros_like(a[..., :1])
    d1 = xp.maximum(a, zero)
    d2 = xp.maximum(_pad(xp, a, b.shape[-1], 0.0), xp.zeros_like(b[..., :1]))
    w1, w2 = _wedge_values(xp, d1, a, n), _wedge_values(xp, d2, b, m)
    s = lambda v: xp.sum(v, axis=-1)  # noqa: E731
    q = {"Delta_21": s(d1) - s(w1), "Delta_21_2": s(d1 * d1) - s(w1 * w1),
         "Delta_23": s(d2) - s(w2), "Delta_23_2": s(d2 * d2) - s(w2 * w2)}
    return _star(q)


def balanced(Ws):
    r"""PRINTED (WRONG for n ≠ m) balanced value :math:`\lambda_{\min}(\mathcal T) = L\sigma_{\min}^{2-2/L}(W)` (E4).

    Section 3, Table 1, proof of Theorem I.3.  True for ``n = m``; for ``n != m`` the value
    is :math:`\sigma_{\min}^{2-2/L}` (ratio exactly L).  No balance check is made.
    Corrected: :func:`linflow.bounds.arora`.
    """
    xp, Ws = weights(Ws)
    L = len(Ws)
    s = sigma_desc(xp, product(xp, Ws))[..., -1]
    return float(L) * s ** (2.0 - 2.0 / L)


def eq19(Ws, *, tol=None):
    r"""PRINTED (WRONG for n ≠ m) Theorem 3 (19), applied for any ``n, m`` (E4).

    :math:`\sqrt{(\prod\tilde d_{(i)})^2+(L\sigma_{\min}^{2-2/L}(W))^2}`; the weights must be
    unimodal (homogeneity is not checked).  For ``n != m`` it exceeds
    :math:`\lambda_{\min}(\mathcal T)` (ratio down to 0.2).  Corrected:
    :func:`linflow.bounds.homogeneous` (refuses ``n != m``).
    """
    xp, Ws = weights(Ws)
    Ws, _, P = _unimodal_product(xp, Ws, tol, "eq. (19) (printed)")
    L = len(Ws)
    s = sigma_desc(xp, product(xp, Ws))[..., -1]
    return _eq19(xp, P, s, L, float(L))


def corollary2(Ws, loss, *, tol=None):
    r"""PRINTED (WRONG) Corollary 2.2: :math:`\alpha_L = \sqrt{(\prod\tilde d_{(i)})^2+(L\nu_{\min})^2}` (E5).

    The exponent :math:`2-2/L` on :math:`\nu_{\min}` is missing; for :math:`\nu_{\min}<1` the
    printed rate is too fast.  Corrected: :func:`linflow.bounds.corollary2`.
    """
    xp, Ws0 = weights(Ws)
    Ws, _, P = _unimodal_product(xp, Ws0, tol, "Corollary 2 (printed)")
    nu = margin(Ws0, loss)
    return xp.sqrt(P ** 2 + (len(Ws) * nu) ** 2)


def figure1_bound(k, eta, delta, gamma, L0):
    r"""PRINTED dashed line of Figure 1 / App. A: :math:`\exp(1-\gamma\Delta^*k\eta)\mathcal L(0)` (E6).

    The "1 −" is likely a typo: it starts at :math:`e\,\mathcal L(0)`, a factor ``e`` above
    the corrected :math:`\exp(-\gamma\Delta^*k\eta)\mathcal L(0)`
    (:func:`linflow.bounds.loss_curve`).  Host NumPy in and out.
    """
    k, delta, L0 = (np.asarray(to_numpy(real_array(a, name, ndim=0)), dtype=np.float64)
                    for a, name in ((k, "k"), (delta, "delta"), (L0, "L0")))
    eta, gamma = positive("eta", eta), positive("gamma", gamma)
    try:
        np.broadcast_shapes(k.shape, delta.shape, L0.shape)
    except ValueError:
        raise ValueError(f"linflow: figure1_bound needs k, delta and L0 of shapes that broadcast; got "
                         f"{k.shape}, {delta.shape} and {L0.shape}.") from None
    for a, name, why in ((k, "k", "step counts"), (delta, "delta", "a rate (Delta* <= 0 gives no bound)"),
                         (L0, "L0", "an initial loss")):
        if np.any(a < 0):
            raise ValueError(f"linflow: figure1_bound needs {name} >= 0 ({why}); got {name} down to {a.min():.3g}.")
    with np.errstate(over="ignore", under="ignore"):  # exp(1 - huge) = 0: the limit
        out = np.exp(1.0 - gamma * delta * k * eta) * L0
    if not np.all(np.isfinite(out)):
        raise ValueError(f"linflow: figure1_bound overflows: L0 = {L0.max():.3g} is too large for float64.")
    return out
