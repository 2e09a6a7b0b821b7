r"""The paper's quantities and bounds on :math:`\lambda_{\min}(\mathcal T)` (Min, Vidal & Mallada, ICML 2023).

Every function takes weights ``(W_1, ..., W_L)`` with optional leading batch axes and
returns arrays of the input's namespace, batched the same way.  Each docstring names
the result it implements and any correction from the errata (the course's chapter *Errata and open problems*).  A bound
asked for outside its hypothesis raises :class:`HypothesisError`, a ``ValueError`` whose
message names the hypothesis.

================================  ===========================================================
two layers (§4.1)                 :func:`spread_gap`, :func:`lemma3`, :func:`two_layer`,
                                  :func:`margin`, :func:`margins`
three layers (§4.2)               :func:`wedge`, :func:`D_bar`, :func:`deltas`, :func:`delta_star`,
                                  :func:`delta_star_from`, :func:`lemma_g1`,
                                  :func:`tight_weights`, :func:`interlacing_converse`
deep (§4.3)                       :func:`unimodal_index`, :func:`cumulative_imbalance`,
                                  :func:`is_homogeneous`, :func:`unimodal` (18),
                                  :func:`homogeneous` (19), :func:`corollary2`
loss curves (eq. 7, Theorem 4)    :func:`loss_curve`, :func:`observed_rate`
prior work (Table 1)              :func:`arora`, :func:`yun`, :func:`min2021`, :func:`tarmoun`,
                                  :func:`scalar_ideal`, :func:`diagonal_rate`
printed (wrong) statements        :mod:`linflow.bounds.printed`
================================  ===========================================================
"""
from . import printed
from ._common import HypothesisError
from .classification import loss_curve, observed_rate
from .deep import (
    corollary2,
    cumulative_imbalance,
    homogeneous,
    is_homogeneous,
    unimodal,
    unimodal_index,
    unimodal_indices,
)
from .prior import arora, diagonal_rate, is_balanced, min2021, scalar_ideal, tarmoun, yun
from .interlacing import interlacing_converse
from .three_layer import D_bar, delta_star, delta_star_from, deltas, lemma_g1, tight_weights, wedge
from .two_layer import lemma3, margin, margins, spread_gap, two_layer

__all__ = [
    "HypothesisError",
    "D_bar",
    "arora",
    "corollary2",
    "cumulative_imbalance",
    "delta_star",
    "delta_star_from",
    "deltas",
    "diagonal_rate",
    "homogeneous",
    "interlacing_converse",
    "is_balanced",
    "is_homogeneous",
    "lemma3",
    "lemma_g1",
    "loss_curve",
    "observed_rate",
    "margin",
    "margins",
    "min2021",
    "printed",
    "scalar_ideal",
    "spread_gap",
    "tarmoun",
    "tight_weights",
    "two_layer",
    "unimodal",
    "unimodal_index",
    "unimodal_indices",
    "wedge",
    "yun",
]
