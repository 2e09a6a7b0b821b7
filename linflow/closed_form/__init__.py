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
:func:`scalar_two_layer`               any two scalars                    scalar Riccati solution
:func:`scalar_deep` (reduced ODE)      non-zero scalars, ``p0 y >= 0``    exact reduced ODE
=====================================  =================================  ==========================

:func:`saxe` and :func:`riccati` are array-API functions (the namespace comes from
``Y`` or the weights; only ``eigh``/``svd`` are used, no ``expm``).  The others work on
the host in float64: :func:`scalar_two_layer` is explicit, :func:`deep_balanced_modes`
inverts its elementary implicit time by a bracketed Newton iteration (at most 200 steps),
:func:`scalar_deep` integrates one scalar ODE (``solve_ivp``) in variables whose speed stays
bounded.  Every form keeps about 1e-10 relative accuracy or better over its whole input range
(singular values zero, tiny or huge, starts zero, tiny or huge, any time), and refuses
non-finite or out-of-range input with a ValueError or TypeError that names the argument.
Random orthogonal factors are drawn on the host from ``numpy.random.default_rng(seed)``, like
every initialization in linflow.

Modules: ``_saxe`` (two layers, balanced), ``_deep`` (deep, balanced), ``_riccati``
(lambda-balanced), ``_scalar`` (scalar networks), ``_inits`` (the initializations),
``_common`` (host conversion and checks).
"""
from __future__ import annotations

from ._deep import deep_balanced, deep_balanced_modes, deep_balanced_time
from ._inits import aligned_balanced, lambda_balanced
from ._riccati import riccati
from ._saxe import saxe, saxe_learning_time, saxe_modes
from ._scalar import scalar_deep, scalar_two_layer, scalar_two_layer_time

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
