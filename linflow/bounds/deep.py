r"""Deep bounds: Definition 3, Theorem 3 (18)–(19), Corollary 2 (Min, Vidal & Mallada 2023, §4.3).

Weights are **unimodal with index** :math:`l^*` if :math:`D_l\succeq0` for :math:`l<l^*` and
:math:`D_l\preceq0` for :math:`l\ge l^*`; the **cumulative imbalances** are

.. math::
    \tilde d_{(i)} = \sum_{l=l^*}^{i}\lambda_m(-D_l)\ (i\ge l^*),\qquad
    \tilde d_{(i)} = \sum_{l=i}^{l^*-1}\lambda_n(D_l)\ (i<l^*),

and the imbalance is **homogeneous** if moreover :math:`D_l = d_lI`.  Where ``n`` (or
``m``) exceeds the order :math:`h_l` of :math:`D_l`, :math:`\lambda_n(D_l)` is taken as 0
(the imbalance is then rank deficient as an operator on :math:`\mathbb R^n`; this keeps
(18) valid, by Lemma 4).

Scalar networks (all widths 1) that are not unimodal in the order given are reordered by
decreasing :math:`|w_l|` before :func:`cumulative_imbalance`, the bounds (18), (19) and
Corollary 2 are applied: their dynamics do not depend on the order of the layers, and
sorted they are unimodal with :math:`l^* = L` and :math:`\tilde d_{(i)} = w_{(i)}^2 - w_{(L)}^2`
(Min, Vidal & Mallada 2023, §4.3).  Either way the :math:`\tilde d_{(i)}` are the numbers
:math:`w_l^2 - \min_k w_k^2`, :math:`l\ne l^*`, so the bounds do not depend on the order.
:func:`unimodal_index` itself reads the weights in the order given.

Sign tests use an absolute tolerance ``tol`` (default :math:`10^4\,\epsilon\max(1,\max_l\|W_l\|_F^2)`
per network) because the imbalances carry round-off of that size.  Where the
definition is combinatorial (finding :math:`l^*`) a few numbers per network go to the
host; the bounds come back in the input's namespace.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ._common import (
    HypothesisError,
    device,
    eig_desc,
    imbalances,
    like,
    pick,
    pos,
    product,
    sigma_desc,
    tolerance,
    weights,
)
from .two_layer import margin

__all__ = [
    "unimodal_index",
    "unimodal_indices",
    "cumulative_imbalance",
    "is_homogeneous",
    "unimodal",
    "homogeneous",
    "corollary2",
]


def _spectra(xp, Ws):
    return [eig_desc(xp, D) for D in imbalances(xp, Ws)]


def _is_scalar(Ws):
    return all(W.shape[-1] == 1 and W.shape[-2] == 1 for W in Ws)


def _sorted_scalar(xp, Ws):
    r"""A scalar network with its layers reordered by decreasing |w_l| (then unimodal, l* = L).

    The operator :math:`\tau = \sum_l\prod_{i\ne l}w_i^2` does not depend on the order, so
    neither does the flow of the loss (§4.3: "scalar networks are always unimodal").
    """
    w = xp.stack([W[..., 0, 0] for W in Ws], axis=-1)
    w = xp.flip(xp.sort(xp.abs(w), axis=-1), axis=-1)
    return tuple(w[..., l, None, None] for l in range(len(Ws)))


def _prepare(xp, Ws, tol=None):
    """Scalar networks that are not unimodal in the given order are reordered (per network)."""
    if not (_is_scalar(Ws) and len(Ws) > 1):
        return Ws
    idx = _indices(xp, Ws, _spectra(xp, Ws), tol)
    if np.all(idx > 0):
        return Ws
    srt = _sorted_scalar(xp, Ws)
    keep = like(xp, (idx > 0).astype(np.float64), Ws[0]) > 0.5  # (batch,)
    return tuple(xp.where(keep[..., None, None], W, S) for W, S in zip(Ws, srt))


def _indices(xp, Ws, spectra, tol):
    """Host int array (batch): smallest valid l* (1-based), 0 where not unimodal."""
    batch = tuple(Ws[0].shape[:-2])
    L = len(Ws)
    t = tolerance(xp, Ws, tol)
    if L == 1:
        return np.ones(batch, dtype=np.int64)
    hi = np.stack([np.asarray(to_numpy(ev[..., 0]), dtype=np.float64) for ev in spectra], axis=-1)
    lo = np.stack([np.asarray(to_numpy(ev[..., -1]), dtype=np.float64) for ev in spectra], axis=-1)
    psd = lo >= -t[..., None]  # (batch, L-1)
    nsd = hi <= t[..., None]
    out = np.zeros(batch, dtype=np.int64)
    for ls in range(L, 0, -1):  # keep the smallest valid l*
        ok = np.all(psd[..., : ls - 1], axis=-1) & np.all(nsd[..., ls - 1:], axis=-1)
        out = np.where(ok, ls, out)
    return out


def unimodal_indices(Ws, *, tol=None):
    r"""Batched :func:`unimodal_index`: a NumPy int array of shape ``batch``, 0 where not unimodal."""
    xp, Ws = weights(Ws)
    return _indices(xp, Ws, _spectra(xp, Ws), tol)


def unimodal_index(Ws, *, tol=None):
    r"""The unimodality index :math:`l^*` (1-based) of Definition 3, or ``None``.

    If several indices qualify (some :math:`D_l = 0`), the smallest is returned; the
    bound (18) is the same for all of them.  For a batch of networks, returns a NumPy
    int array of shape ``batch`` with 0 where the weights are not unimodal (the same as
    :func:`unimodal_indices`).
    """
    idx = unimodal_indices(Ws, tol=tol)
    if idx.ndim == 0:
        return int(idx) if idx > 0 else None
    return idx


def _cumulative(xp, Ws, spectra, ls):
    """d̃ (..., L-1) for host l* array ``ls`` (batch)."""
    L = len(Ws)
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    if L == 1:
        return xp.zeros(tuple(Ws[0].shape[:-2]) + (0,), dtype=Ws[0].dtype, device=device(Ws[0]))
    a = xp.stack([pos(xp, pick(xp, ev, n)) for ev in spectra], axis=-1)  # [lambda_n(D_l)]_+
    b = xp.stack([pos(xp, pick(xp, -xp.flip(ev, axis=-1), m)) for ev in spectra], axis=-1)
    i = np.arange(1, L)[:, None]  # row: i
    l = np.arange(1, L)[None, :]  # column: l
    ls = np.asarray(ls)[..., None, None]
    Ca = ((i < ls) & (l >= i) & (l <= ls - 1)).astype(np.float64)
    Cb = ((i >= ls) & (l >= ls) & (l <= i)).astype(np.float64)
    Ca, Cb = like(xp, Ca, Ws[0]), like(xp, Cb, Ws[0])
    return xp.sum(Ca * a[..., None, :], axis=-1) + xp.sum(Cb * b[..., None, :], axis=-1)


def _require_depth(Ws, result):
    if len(Ws) < 2:
        raise HypothesisError(f"linflow: {result} is stated for L >= 2 layers; got L = {len(Ws)}.")


def _require_unimodal(idx, result):
    if np.any(idx == 0):
        bad = int(np.sum(idx == 0))
        raise HypothesisError(
            f"linflow: {result} needs unimodal weights (Definition 3: D_l ⪰ 0 for l < l* and "
            f"D_l ⪯ 0 for l >= l*, for some l*); {bad} of {idx.size} networks are not unimodal."
        )


def _unimodal_product(xp, Ws, tol, result):
    """Prepared weights, their imbalance spectra, and :math:`\\prod_i \\tilde d_{(i)}` (eq. 18),
    after checking unimodality."""
    Ws = _prepare(xp, Ws, tol)
    spectra = _spectra(xp, Ws)
    ls = _indices(xp, Ws, spectra, tol)
    _require_unimodal(ls, result)
    return Ws, spectra, xp.prod(_cumulative(xp, Ws, spectra, ls), axis=-1)


def cumulative_imbalance(Ws, l_star=None, *, tol=None):
    r"""Cumulative imbalances :math:`\tilde d_{(i)}`, ``i = 1..L-1`` (Definition 3), shape ``(..., L-1)``.

    Parameters
    ----------
    Ws : tuple of arrays
    l_star : int or array of int (batch), optional
        The unimodality index; default :func:`unimodal_index`.  If given it is not
        checked against the weights.

    Raises
    ------
    HypothesisError
        ``l_star`` is not given and the weights are not unimodal.
    """
    xp, Ws = weights(Ws)
    Ws = _prepare(xp, Ws, tol)
    spectra = _spectra(xp, Ws)
    if l_star is None:
        ls = _indices(xp, Ws, spectra, tol)
        _require_unimodal(ls, "cumulative_imbalance")
    else:
        ls = np.broadcast_to(np.asarray(l_star, dtype=np.int64), tuple(Ws[0].shape[:-2]))
        if np.any((ls < 1) | (ls > len(Ws))):
            raise ValueError(f"linflow: l_star must be in 1..L = 1..{len(Ws)}; got {l_star}.")
    return _cumulative(xp, Ws, spectra, ls)


def _homogeneous_mask(xp, Ws, spectra, tol):
    t = tolerance(xp, Ws, tol)
    ok = np.ones(tuple(Ws[0].shape[:-2]), dtype=bool)
    for ev in spectra:
        spread = np.asarray(to_numpy(ev[..., 0] - ev[..., -1]), dtype=np.float64)
        ok &= spread <= t
    return ok


def is_homogeneous(Ws, *, tol=None):
    r"""Whether the imbalance is homogeneous: unimodal with every :math:`D_l = d_lI` (Definition 3).

    Returns a bool, or a NumPy bool array for a batch.  Scalar networks are always homogeneous
    (they are reordered by decreasing :math:`|w_l|` first, §4.3).
    """
    xp, Ws = weights(Ws)
    Ws = _prepare(xp, Ws, tol)
    spectra = _spectra(xp, Ws)
    ok = _homogeneous_mask(xp, Ws, spectra, tol) & (_indices(xp, Ws, spectra, tol) > 0)
    return bool(ok) if ok.ndim == 0 else ok


def unimodal(Ws, *, tol=None):
    r"""Theorem 3, eq. (18): :math:`\lambda_{\min}(\mathcal T)\ge\prod_{i=1}^{L-1}\tilde d_{(i)}` for unimodal weights.

    Proof (Theorem I.1): keep the term :math:`\mathcal T_{l^*}` and bound both factors by
    Lemma 5.  Verified for every :math:`l^*` and all ``(n, m)`` (``tests/test_bounds.py``).
    With :math:`\lambda_n(D_l)\ge\epsilon` for all ``l`` and :math:`l^*=L` it is at least
    :math:`\epsilon^{L-1}(L-1)!` (super-exponential in depth).

    Raises
    ------
    HypothesisError
        The weights are not unimodal.

    Examples
    --------
    >>> import linflow as lf
    >>> Ws = lf.init.homogeneous((2, 2, 2, 2, 2), [0.3, 0.3, 0.3], seed=0)  # l* = L = 4
    >>> lf.bounds.unimodal_index(Ws)
    4
    >>> round(float(lf.bounds.unimodal(Ws)), 6)  # 0.3^3 * 3!
    0.162
    """
    xp, Ws = weights(Ws)
    _require_depth(Ws, "Theorem 3 (18)")
    return _unimodal_product(xp, Ws, tol, "Theorem 3 (18)")[2]


def _eq19(xp, P, s, L, factor):
    return xp.sqrt(P ** 2 + (factor * s ** (2.0 - 2.0 / L)) ** 2)


def _check_homogeneous(xp, Ws, spectra, tol, result):
    ls = _indices(xp, Ws, spectra, tol)
    _require_unimodal(ls, result)
    hom = _homogeneous_mask(xp, Ws, spectra, tol)
    if not np.all(hom):
        raise HypothesisError(
            f"linflow: {result} needs homogeneous imbalance (Definition 3: every D_l = d_l I); "
            f"{int(np.sum(~hom))} of {hom.size} networks have an imbalance that is not a "
            "multiple of the identity."
        )
    return ls


def _check_square(Ws, result):
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    if n != m:
        raise HypothesisError(
            f"linflow: {result} holds only for n = m (erratum E4 in the course's chapter 'Errata and open problems': for n != m the "
            f"balanced value is sigma_min^(2-2/L), without the factor L, and (19) can fail); "
            f"got n = {n}, m = {m}. Use linflow.bounds.unimodal (eq. 18) instead."
        )


def homogeneous(Ws, *, tol=None):
    r"""Theorem 3, eq. (19): homogeneous imbalance and **n = m**.

    .. math::
        \lambda_{\min}(\mathcal T)\ \ge\ \sqrt{\Big(\prod_{i=1}^{L-1}\tilde d_{(i)}\Big)^2
        + \big(L\,\sigma_{\min}^{2-2/L}(W)\big)^2}.

    Correction (erratum E4, chapter *Errata and open problems*): the proof uses "balanced ⇒ :math:`\lambda_{\min} =
    L\sigma_{\min}^{2-2/L}`", true only for ``n = m``; for ``n != m`` (19) fails (ratio
    down to 0.2), so it is refused there.  The printed, unrestricted form is
    :func:`linflow.bounds.printed.eq19`.

    Raises
    ------
    HypothesisError
        ``n != m``, or the imbalance is not homogeneous (or not unimodal).
    """
    xp, Ws = weights(Ws)
    _require_depth(Ws, "Theorem 3 (19)")
    Ws = _prepare(xp, Ws, tol)
    _check_square(Ws, "Theorem 3 (19)")
    spectra = _spectra(xp, Ws)
    ls = _check_homogeneous(xp, Ws, spectra, tol, "Theorem 3 (19)")
    P = xp.prod(_cumulative(xp, Ws, spectra, ls), axis=-1)
    s = sigma_desc(xp, product(xp, Ws))[..., -1]
    return _eq19(xp, P, s, len(Ws), float(len(Ws)))


def corollary2(Ws, loss=None, *, part=None, tol=None):
    r"""The rate :math:`\alpha_L` of Corollary 2 (unimodal initial weights), **corrected** (E5).

    Then :math:`\mathcal L(t)-\mathcal L^*\le e^{-\alpha_L\gamma t}(\mathcal L(0)-\mathcal L^*)`.

    * Part 1 (A1): :math:`\alpha_L = \prod_{i=1}^{L-1}\tilde d_{(i)}`.
    * Part 2 (A1 + A2, homogeneous imbalance, **n = m**):
      :math:`\alpha_L = \sqrt{(\prod\tilde d_{(i)})^2 + (L\,\nu_{\min}^{2-2/L})^2}`, with the
      margin :math:`\nu_{\min}` of Lemma B.1 (:func:`linflow.bounds.margin`).

    Correction (E5): the printed part 2 has :math:`(L\nu_{\min})^2`; by (19) and Lemma B.1
    the exponent :math:`2-2/L` belongs on :math:`\nu_{\min}`.  Part 2 inherits the ``n = m``
    restriction of (19) (E4).  Printed form: :func:`linflow.bounds.printed.corollary2`.

    Parameters
    ----------
    Ws : tuple of arrays
        Initial weights.
    loss : linflow loss, optional
    part : {None, 1, 2}
        ``None``: part 2 when its hypotheses hold (loss with A2, homogeneous, n = m),
        else part 1.  ``2``: part 2, raising if a hypothesis fails.

    Raises
    ------
    HypothesisError
        Not unimodal; or ``part=2`` outside its hypotheses.
    """
    xp, Ws0 = weights(Ws)
    _require_depth(Ws0, "Corollary 2")
    Ws, spectra, P = _unimodal_product(xp, Ws0, tol, "Corollary 2")
    if part is not None and not (isinstance(part, int) and part in (1, 2)):
        raise ValueError(f"linflow: part must be None, 1 or 2; got {part!r}.")
    if part == 1:
        return P
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    has_a2 = loss is not None and getattr(loss, "mu", None) is not None
    if part is None:
        if not (has_a2 and n == m and np.all(_homogeneous_mask(xp, Ws, spectra, tol))):
            return P
    else:
        _check_square(Ws, "Corollary 2.2")
        _check_homogeneous(xp, Ws, spectra, tol, "Corollary 2.2")
    nu = margin(Ws0, loss)  # raises if no A2; the original order and signs give W(0)
    return _eq19(xp, P, nu, len(Ws), float(len(Ws)))
