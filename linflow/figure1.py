r"""Data for Figure 1 of Min, Vidal & Mallada (ICML 2023): "Three-layer network under random
initialization most likely converges exponentially" (the paper's Figure 1).

* :func:`left` — the box plot: :math:`\Delta^*(D_{21}, D_{23})` (Theorem 2, eq. 15) over random
  draws of three Gaussian schemes, ``n = 5``, ``m = 1``, ``h_1 = h_2 = 200``.
* :func:`gd` — the middle and right panels: gradient descent on
  :math:`\tfrac12\|Y - W_1W_2W_3\|_F^2` (fan-out initialization, :math:`\eta = 5\times10^{-6}`)
  against the bound of Corollary 1, :math:`\mathcal L(k)\le\exp(-\gamma\Delta^*k\eta)\mathcal L(0)`
  with :math:`\gamma = 2`.  The paper prints :math:`\exp(1-\gamma\Delta^*k\eta)`; the "1 −" is
  taken as a typo (E6).

The functions compute and return data (NumPy arrays, one :func:`linflow.to_numpy` at the
end); drawing is left to :mod:`linflow.plots`.
"""
from __future__ import annotations

import numpy as np

from . import bounds as _bounds
from . import init as _init
from ._validate import integer, widths as _widths
from .backend import asarray, to_numpy
from .flow import gradient_descent
from .losses import Squared

__all__ = ["left", "gd", "SCHEMES", "WIDTHS", "NTK_SCALINGS"]

#: Schemes of the left panel, in the paper's order.
SCHEMES = ("ntk", "fan_in", "fan_out")
#: Widths ``(h_1, h_2)`` of the middle and right panels.
WIDTHS = ((100, 200), (200, 300), (300, 500))
#: Conventions for the NTK box (see :func:`left`).
NTK_SCALINGS = ("paper", "exact", "none")


def left(n_samples=100, seed=0, *, dims=(5, 200, 200, 1), ntk_scaling="paper", schemes=SCHEMES):
    r"""Left panel: :math:`\Delta^*` for ``n_samples`` draws of each initialization scheme.

    Schemes (App. A; the second argument of :math:`\mathcal N` is the variance):
    ``"ntk"`` :math:`\mathcal N(0,1)`; ``"fan_in"`` :math:`[W_l]\sim\mathcal N(0,1/h_{l-1})`;
    ``"fan_out"`` :math:`[W_l]\sim\mathcal N(0,1/h_l)`.

    **NTK scaling convention.**  Du & Hu (2019) train :math:`f(cW_1W_2W_3)` with
    :math:`c = 1/\sqrt{m h_1 h_2}`.  Under that loss the product :math:`cW` moves with the
    operator :math:`c^2\mathcal T_{\{W_l\}}`, so the rate bound scales by :math:`c^2`
    (erratum E6), whereas App. A says the rate is scaled by :math:`c`.

    * ``ntk_scaling="paper"`` (default): :math:`c\,\Delta^*` with :math:`c = 1/\sqrt{m h_1h_2}`, as
      App. A states (the figure's convention as printed);
    * ``"exact"``: :math:`c^2\Delta^*`, the bound for Du & Hu's scaled model;
    * ``"none"``: :math:`\Delta^*` of the unscaled :math:`\mathcal N(0,1)` weights.

    With ``seed=0`` and 100 draws the medians are about 45.5 (NTK, ``"paper"``; 0.23 with
    ``"exact"``), 14.9 (fan-in) and 91.4 (fan-out); the paper's boxes read about 24, 15.5
    and 100.  Fan-in and fan-out match; the printed NTK box matches neither convention,
    so the figure's NTK normalization is not pinned down (erratum E6).

    Parameters
    ----------
    n_samples : int
    seed : int
        Scheme ``i`` (in ``schemes`` order) uses ``seed + i``.
    dims : (n, h_1, h_2, m)
    ntk_scaling : {"paper", "exact", "none"}
    schemes : sequence of scheme names

    Returns
    -------
    dict scheme -> NumPy array of shape ``(n_samples,)``.
    """
    if ntk_scaling not in NTK_SCALINGS:
        raise ValueError(f"linflow: ntk_scaling must be one of {NTK_SCALINGS}; got {ntk_scaling!r}.")
    dims = _widths("dims", dims)
    n_samples = integer("n_samples", n_samples, minimum=1)
    seed = integer("seed", seed, minimum=0)
    if len(dims) != 4:
        raise ValueError(f"linflow: Figure 1 uses three layers, dims = (n, h_1, h_2, m); got {dims}.")
    n, h1, h2, m = dims
    out = {}
    for i, scheme in enumerate(schemes):
        Ws = _init.gaussian(dims, scheme, batch=(n_samples,), seed=seed + i)
        d = _bounds.delta_star(Ws)
        if scheme == "ntk":
            c2 = 1.0 / (m * h1 * h2)
            d = d * {"paper": np.sqrt(c2), "exact": c2, "none": 1.0}[ntk_scaling]
        out[scheme] = np.asarray(to_numpy(d), dtype=np.float64)
    return out


def _panel(panel):
    if panel == "middle":
        return 1, 1, np.full((1, 1), -2.0), 5000
    if panel == "right":
        return 5, 1, np.ones((5, 1)), 15000
    raise ValueError(f"linflow: panel must be 'middle' or 'right'; got {panel!r}.")


def gd(panel="middle", widths=WIDTHS, n_steps=None, seed=0, *, eta=5e-6, save_every=None,
       progress=None):
    r"""Middle (``n = m = 1``, ``Y = -2``) or right (``n = 5``, ``m = 1``, ``Y = 1``) panel.

    For each width pair: a fan-out initialization (seed ``seed + i``), gradient descent
    with step ``eta`` (:func:`linflow.gradient_descent`; one call per width, since the
    shapes differ), :math:`\Delta^*` of the initial weights (Theorem 2) and the bound of
    Corollary 1, :math:`\exp(-\gamma\Delta^*k\eta)\mathcal L(0)` with :math:`\gamma = 2`.
    GD conserves the imbalance only approximately (drift :math:`O(\eta^2)` per step), so
    the bound is the gradient-flow bound evaluated at :math:`t = k\eta`.

    Parameters
    ----------
    panel : {"middle", "right"}
    widths : sequence of (h_1, h_2)
    n_steps : int, optional
        Default 5000 (middle) or 15000 (right), as in the paper; smaller for a quick build.
    seed : int
    eta : float
    save_every : int, optional
        Default ``max(1, n_steps // 250)``.

    Returns
    -------
    dict with ``"panel"``, ``"eta"``, ``"gamma"``, ``"Y"`` and ``"runs"``: a list with, per
    width, ``widths``, ``k`` (steps, ``(S,)``), ``loss`` ``(S,)``, ``bound`` ``(S,)``,
    ``delta_star``, ``L0`` and ``status``.
    """
    n, m, Y, default_steps = _panel(panel)
    n_steps = default_steps if n_steps is None else integer("n_steps", n_steps, minimum=1)
    every = max(1, n_steps // 250) if save_every is None else integer("save_every", save_every, minimum=1)
    seed = integer("seed", seed, minimum=0)
    if not isinstance(widths, (list, tuple)) or not widths:
        raise TypeError("linflow: widths must be a non-empty list of (h_1, h_2) pairs, "
                        f"got {widths!r}.")
    widths = [_widths("widths", hh) for hh in widths]
    loss = Squared(asarray(Y))
    nets = [_init.gaussian((n, h1, h2, m), "fan_out", seed=seed + i)
            for i, (h1, h2) in enumerate(widths)]
    deltas = [float(to_numpy(_bounds.delta_star(Ws))) for Ws in nets]
    losses, status = [], []
    for Ws in nets:  # one call per width: the shapes differ
        traj = gradient_descent(Ws, loss, eta, n_steps, save_every=every, progress=progress)
        losses.append(np.asarray(to_numpy(traj.loss), dtype=np.float64))
        status.append(int(np.asarray(traj.status)))
        steps = traj.steps
    k = np.asarray(steps, dtype=np.float64)
    runs = []
    for (h1, h2), delta, L, st in zip(widths, deltas, losses, status):
        L0 = float(L[0])
        bound = np.asarray(_bounds.loss_curve(k * eta, L0, delta, loss.gamma), dtype=np.float64)
        runs.append({"widths": (int(h1), int(h2)), "k": k, "loss": np.asarray(L), "bound": bound,
                     "delta_star": delta, "L0": L0, "status": int(st)})
    return {"panel": panel, "eta": float(eta), "gamma": float(loss.gamma), "Y": Y, "runs": runs}
