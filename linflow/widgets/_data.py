r"""Small experiment builders shared by the explorers and the chapters (presentation layer).

They assemble problems and reference curves from :mod:`linflow` calls so that a chapter's
cells stay one call each. Nothing here is new mathematics: bounds come from
:mod:`linflow.bounds` when it provides them.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..bounds.classification import observed_rate as observed_rate_of_run
from .._validate import (check_loss, check_matrix, check_weights, integer, nonnegative, positive, real_array,
                         seed as check_seed)
from ..backend import to_numpy

__all__ = ["weights", "regression_problem", "rate_bound", "inverse_bound", "pl_ratios", "rescale",
           "observed_rate", "T_spectrum"]


def weights(dims, scale, *, seed=0, batch=()):
    r"""Gaussian weights with i.i.d. :math:`\mathcal N(0, \mathrm{scale}^2)` entries (``lf.init.gaussian``)."""
    from .. import init

    return init.gaussian(dims, "custom", std=scale, batch=batch, seed=seed)


def regression_problem(n_samples, n, m, kappa, *, seed=0):
    r"""A regression loss :math:`\frac12\|Y-XW\|_F^2` whose data matrix has condition number ``kappa``.

    ``X`` (``n_samples x n``) has singular values spaced geometrically from 1 to
    :math:`\sqrt{\kappa}`, so :math:`X^\top X` has :math:`K/\mu = \kappa`; ``Y`` is Gaussian.

    Returns
    -------
    linflow.losses.Regression
    """
    from .. import losses

    n_samples, n, m = (_size(name, v) for name, v in (("n_samples", n_samples), ("n", n), ("m", m)))
    kappa = positive("kappa", kappa)
    if kappa < 1:
        raise ValueError(f"linflow: kappa is a condition number, at least 1; got {kappa!r}.")
    rng = np.random.default_rng(check_seed(seed))
    U, _ = np.linalg.qr(rng.standard_normal((n_samples, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.sqrt(np.geomspace(1.0, float(kappa), n))[::-1]
    X = (U * s) @ V.T
    Y = rng.standard_normal((n_samples, m))
    return losses.Regression(X, Y)


def rate_bound(t, gap0, alpha, gamma):
    r"""The Grönwall bound :math:`e^{-\alpha\gamma t}(\mathcal L(0)-\mathcal L^*)` (eq. 7).

    Uses ``lf.bounds.loss_curve`` when the theory layer provides it.
    """
    from ..bounds import loss_curve

    return np.asarray(to_numpy(loss_curve(t, gap0, alpha, gamma, kind="exp")))


def inverse_bound(t, gap0, gamma):
    r"""The A1' bound :math:`f_0/(1+\gamma^2 f_0 t)` for :math:`\dot f\le-\gamma^2 f^2` (Theorem 4 form)."""
    from ..bounds import loss_curve

    return np.asarray(to_numpy(loss_curve(t, gap0, 1.0, gamma, kind="inverse")))


def pl_ratios(loss, n_points=200, *, scale=1.0, power=2, seed=0):
    r"""Ratios :math:`\|\nabla f(W)\|_F^{p}/(f(W)-f^*)` at random points :math:`W` around the minimizer.

    ``power=2`` tests A1 (the ratio is at least :math:`\gamma`), ``power=1`` tests A1'.
    For classification losses (no minimizer) the points are drawn around 0.
    """
    check_loss(loss)
    n_points = _size("n_points", n_points)
    scale = nonnegative("scale", scale)
    if isinstance(power, bool) or not isinstance(power, numbers.Real) or power not in (1, 2):
        raise ValueError(f"linflow: power must be 1 (A1') or 2 (A1); got {power!r}.")
    rng = np.random.default_rng(check_seed(seed))
    W0 = getattr(loss, "minimizer", None)
    f_star = getattr(loss, "f_star", 0.0) or 0.0
    shape = _shape(loss)
    base = np.zeros(shape) if W0 is None else np.asarray(to_numpy(W0))
    out = []
    for _ in range(int(n_points)):
        W = base + float(scale) * rng.standard_normal(shape)
        with np.errstate(over="ignore", invalid="ignore"):
            v, g = loss.value_and_grad(W)
        if not (np.isfinite(float(to_numpy(v))) and np.all(np.isfinite(to_numpy(g)))):
            raise ValueError(f"linflow: the loss overflows at points drawn with scale = {scale:.3g}; "
                             "use a smaller scale.")
        gap = float(to_numpy(v)) - float(f_star)
        if gap > 1e-12:
            out.append(float(np.sqrt(np.sum(np.asarray(to_numpy(g)) ** 2))) ** power / gap)
    return np.asarray(out)


def _size(name, value):
    """A positive integer count, at most 10**7 (the examples stay small)."""
    v = integer(name, value, minimum=1)
    if v > 10**7:
        raise ValueError(f"linflow: {name} must be at most 10**7; got {value!r}.")
    return v


def _shape(loss):
    d = loss.data
    if type(loss).__name__ == "Squared":
        return tuple(d[0].shape)
    X, Y = d[0], d[1]
    m = Y.shape[-1] if Y.ndim > 1 else 1
    return (X.shape[-1], m)


def rescale(Ws, l, S):
    r"""The symmetry :math:`W_l\to W_lS`, :math:`W_{l+1}\to S^{-1}W_{l+1}` (1-based ``l``).

    The product is unchanged; the imbalance :math:`D_l` is not.
    """
    _, Ws = check_weights(Ws, min_layers=2)
    Ws = [np.asarray(to_numpy(W)) for W in Ws]
    l = integer("l", l, minimum=1)
    if l >= len(Ws):
        raise ValueError(f"linflow: l must be a layer 1..L-1 = {len(Ws) - 1} (W_l S, S^-1 W_(l+1)); got {l}.")
    h = Ws[l - 1].shape[-1]
    S = np.asarray(to_numpy(check_matrix(real_array(S, "S", ndim=2), "S")), dtype=np.float64)
    if S.shape[-2:] != (h, h):
        raise ValueError(f"linflow: S must be a ({h}, {h}) matrix (h_{l} = {h}); got shape {S.shape}.")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            Ws[l - 1], Ws[l] = Ws[l - 1] @ S, np.linalg.solve(S, Ws[l])
        except np.linalg.LinAlgError:
            raise ValueError("linflow: S must be invertible; got a singular matrix.") from None
    if not all(np.all(np.isfinite(W)) for W in Ws):
        raise ValueError("linflow: rescaling by S overflows (S is too large or too close to singular).")
    return tuple(Ws)


def observed_rate(t, gap):
    r"""Average exponential rate :math:`-\log(\mathrm{gap}(t)/\mathrm{gap}(0))/t` of a run (``t > 0``)."""
    return observed_rate_of_run(t, gap)


def T_spectrum(Ws):
    r"""All eigenvalues of the preconditioner :math:`\mathcal T_{\{W_l\}}` (increasing), from ``lf.T_matrix``."""
    from ..network import T_matrix

    return np.linalg.eigvalsh(np.asarray(to_numpy(T_matrix(Ws)), dtype=float))
