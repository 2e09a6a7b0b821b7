r"""The explorers of the chapters book/01–04, each a pure ``compute`` and a ``plot`` on :mod:`linflow.plots`.

Each ``*_compute`` function returns a plain dict of host arrays (testable without a
browser or a kernel); each ``*_plot(data, fig)`` draws it; each constructor returns the
:class:`~linflow.widgets.Explorer` that joins them.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import losses as _losses
from ..backend import to_numpy
from ..flow import gradient_descent, gradient_flow
from .. import plots
from ._core import Explorer, Slider, check_figure, checked, choice, count, draws, number, seed
from ._data import rate_bound, regression_problem, weights

__all__ = [
    "depth_compute", "depth_plot", "depth_explorer",
    "pl_compute", "pl_plot", "pl_explorer",
    "preconditioner_compute", "preconditioner_plot", "preconditioner_explorer",
    "imbalance_compute", "imbalance_plot", "imbalance_explorer",
]

#: the target of the matrix-factorization examples, :math:`Y = \mathrm{diag}(3, 2, 1)`
TARGET = np.diag([3.0, 2.0, 1.0])


def _stacked(fig):
    """Two panels in one column, so that a frame stays legible on a phone."""
    with plots.style():  # tick sizes are fixed when the axes are made
        ax1, ax2 = check_figure(fig).subplots(2, 1)
    fig.subplots_adjust(hspace=0.55)  # room for the x labels of the upper panel
    return ax1, ax2


def _single(fig):
    """One styled panel."""
    with plots.style():
        return check_figure(fig).subplots()


def _host(x):
    return np.asarray(to_numpy(x), dtype=float)


# --- book/01: depth and initialization scale ------------------------------------------

@functools.lru_cache(maxsize=64)
def _factorization_run(L, scale, t_end, seed):
    loss = _losses.Squared(TARGET)
    t = np.linspace(0.0, float(t_end), 121)
    Ws = weights((3,) * (L + 1), scale, seed=seed)
    tr = gradient_flow(Ws, loss, float(t_end), t_eval=t, diagnostics=("singular_values",)).to_numpy()
    return t, _host(tr.loss) - float(loss.f_star), _host(tr.diagnostics["singular_values"])


@checked(depth=count(1, 8), scale=number(0, 10, above=True), t_end=number(0, 200, above=True), seed=seed)
def depth_compute(depth=2, scale=0.2, t_end=12.0, seed=0):
    r"""Gradient flow on :math:`\frac12\|Y-W_1\cdots W_L\|_F^2`, ``Y = diag(3, 2, 1)``, width 3.

    Returns ``t``, ``gap`` (loss minus :math:`f^*`) and ``sv`` (singular values of the
    product, shape ``(S, 3)``) for the depth ``depth`` and, as reference, for ``L = 1``
    (plain gradient flow on :math:`f(W)`) started at the same scale. Runs are cached.
    """
    out = {"depth": int(depth), "scale": float(scale), "sigma_Y": np.diag(TARGET).copy()}
    for key, L in (("ref", 1), ("deep", int(depth))):
        t, gap, sv = _factorization_run(L, float(scale), float(t_end), int(seed))
        out["t"], out[key + "_gap"], out[key + "_sv"] = t, gap, sv
    return out


@draws("depth_compute")
def depth_plot(data, fig):
    """Loss gaps (log axis) and the singular values of the product, for :func:`depth_compute` data."""
    ax1, ax2 = _stacked(fig)
    L = data["depth"]
    plots.loss_curves(data["t"], [data["ref_gap"], data["deep_gap"]],
                      ["$L=1$: $f(W)$", f"$L={L}$: $f(W_1\\cdots W_{L})$"], ax=ax1,
                      title=f"loss, init. scale {data['scale']:g}")
    ax2.set_title("singular values of the product")
    for i in range(data["deep_sv"].shape[1]):
        ax2.plot(data["t"], data["deep_sv"][:, i], color=plots.color(1), label=f"$L={L}$" if i == 0 else None)
        ax2.plot(data["t"], data["ref_sv"][:, i], color=plots.color(0), ls=":", label="$L=1$" if i == 0 else None)
        ax2.axhline(data["sigma_Y"][i], color=plots.color(6), lw=0.8, ls="--",
                    label=r"$\sigma_i(Y)$" if i == 0 else None)
    ax2.set_xlabel("flow time $t$")
    ax2.set_ylabel(r"$\sigma_i(W(t))$")
    ax2.legend(loc="lower right")


def depth_explorer():
    """book/01 (linear models): how depth and the initialization scale shape the loss curve."""
    return Explorer(
        depth_compute, depth_plot,
        [Slider("depth", (1, 2, 3, 4), "depth L", default=2),
         Slider("scale", (0.05, 0.2, 0.8), "init. scale", default=0.2, fmt="{:g}")],
        title="Depth and initialization scale",
        caption="Small scales and large depths give long plateaus; L = 1 is plain gradient flow on f.",
        size=(5.6, 6.4),
    )


# --- book/02: gradient dominance --------------------------------------------------------

@checked(kappa=number(1, 1e6), distance=number(0, 100), t_end=number(0, 200, above=True), seed=seed)
@functools.lru_cache(maxsize=64)
def pl_compute(kappa=10.0, distance=1.0, t_end=3.0, seed=0):
    r"""Gradient flow on a regression loss with :math:`K/\mu=\kappa` (no overparameterization).

    Returns the gap along the flow, the A1 bound :math:`e^{-\gamma t}` times the initial gap,
    and the constants.
    """
    loss = regression_problem(40, 4, 2, float(kappa), seed=seed)
    W0 = _host(loss.minimizer) + float(distance) * np.random.default_rng(seed + 1).standard_normal((4, 2))
    t = np.linspace(0.0, float(t_end), 121)
    tr = gradient_flow((W0,), loss, float(t_end), t_eval=t).to_numpy()
    gap = _host(tr.loss) - float(loss.f_star)
    return {"t": t, "gap": gap, "bound": rate_bound(t, gap[0], 1.0, float(loss.gamma)),
            "gamma": float(loss.gamma), "K": float(loss.K), "mu": float(loss.mu), "kappa": float(kappa)}


@draws("pl_compute")
def pl_plot(data, fig):
    """The loss gap and its A1 bound (log axis), for :func:`pl_compute` data."""
    ax = _single(fig)
    plots.loss_curves(data["t"], [data["gap"]], [r"$f(W(t))-f^*$"], bounds=[data["bound"]],
                      bound_labels=[rf"A1 bound $e^{{-\gamma t}}$, $\gamma={data['gamma']:.3g}$"], ax=ax,
                      ylabel=r"$f(W(t))-f^*$",
                      title=rf"regression, $K/\mu={data['kappa']:g}$ ($K={data['K']:.3g}$, $\mu={data['mu']:.3g}$)")


def pl_explorer():
    """book/02 (gradient dominance): the A1 rate against the actual decay, as the conditioning changes."""
    return Explorer(
        pl_compute, pl_plot,
        [Slider("kappa", (1.0, 3.0, 10.0, 30.0, 100.0), "condition K/μ", default=10.0, fmt="{:g}"),
         Slider("distance", (0.3, 3.0), "start distance", default=0.3, fmt="{:g}")],
        title="Gradient dominance (A1) for linear regression",
        caption="The dashed line is the guaranteed rate; the loss decays at least that fast.",
        size=(5.6, 3.4),
    )


# --- book/03: overparameterization as preconditioning -----------------------------------

@checked(depth=count(1, 8), scale=number(0, 10, above=True), t_end=number(0, 200, above=True), seed=seed)
@functools.lru_cache(maxsize=64)
def preconditioner_compute(depth=2, scale=0.5, t_end=6.0, seed=0):
    r"""Gradient flow for matrix factorization with :math:`\lambda_{\min}(\mathcal T)` saved.

    Returns ``t``, ``gap``, ``lam`` (:math:`\lambda_{\min}(\mathcal T_{\{W_l(t)\}})`) and the
    bound :math:`e^{-\gamma\alpha t}` with :math:`\alpha=\min_t\lambda_{\min}` along the run.
    """
    loss = _losses.Squared(TARGET)
    L = int(depth)
    Ws = weights((3,) + (4,) * (L - 1) + (3,), scale, seed=seed)
    t = np.linspace(0.0, float(t_end), 121)
    tr = gradient_flow(Ws, loss, float(t_end), t_eval=t, diagnostics=("lambda_min",)).to_numpy()
    gap = _host(tr.loss) - float(loss.f_star)
    lam = _host(tr.diagnostics["lambda_min"])
    alpha = float(lam.min())
    return {"t": t, "gap": gap, "lam": lam, "alpha": alpha, "gamma": float(loss.gamma),
            "bound": rate_bound(t, gap[0], alpha, float(loss.gamma)), "depth": L, "scale": float(scale)}


@draws("preconditioner_compute")
def preconditioner_plot(data, fig):
    """Loss gap with the eq. 7 bound, and :math:`\\lambda_{\\min}(\\mathcal T(t))`, for :func:`preconditioner_compute` data."""
    ax1, ax2 = _stacked(fig)
    plots.loss_curves(data["t"], [data["gap"]], [f"$L={data['depth']}$"], bounds=[data["bound"]],
                      bound_labels=[r"$e^{-\gamma\alpha t}$, $\alpha=\min_t\lambda_{\min}$"], ax=ax1,
                      title=f"loss, init. scale {data['scale']:g}")
    ax2.plot(data["t"], data["lam"], color=plots.color(2), label=r"$\lambda_{\min}(\mathcal{T}(t))$")
    ax2.axhline(data["alpha"], color=plots.color(6), ls="--", lw=1, label=r"$\alpha$")
    ax2.set_xlabel("flow time $t$")
    ax2.set_ylabel(r"$\lambda_{\min}(\mathcal{T}_{\{W_l(t)\}})$")
    ax2.set_title("the preconditioner's smallest eigenvalue")
    ax2.legend(loc="best")


def preconditioner_explorer():
    """book/03 (preconditioning): :math:`\\lambda_{\\min}(\\mathcal T)` along the flow sets the rate."""
    return Explorer(
        preconditioner_compute, preconditioner_plot,
        [Slider("depth", (2, 3, 4), "depth L", default=2),
         Slider("scale", (0.1, 0.5, 1.0), "init. scale", default=0.5, fmt="{:g}")],
        title="The preconditioner sets the rate",
        caption="Where λmin(T) is small the loss stalls; the dashed bound uses its minimum along the run.",
        size=(5.6, 6.4),
    )


# --- book/04: imbalance under GF and GD -------------------------------------------------

@checked(step=number(1e-3, 1), t_end=number(0, 50, above=True), scale=number(0, 10, above=True), seed=seed)
@functools.lru_cache(maxsize=64)
def imbalance_compute(step=0.02, t_end=6.0, scale=0.7, seed=0):
    r"""Imbalance drift :math:`\|D_1(t)-D_1(0)\|_F` under gradient descent (step ``step``) and
    gradient flow (dopri5), for a two-layer factorization of ``Y = diag(3, 2, 1)``.
    """
    loss = _losses.Squared(TARGET)
    Ws = weights((3, 4, 3), scale, seed=seed)
    n = max(1, int(round(float(t_end) / float(step))))
    every = max(1, n // 100)
    gd = gradient_descent(Ws, loss, float(step), n, save_every=every, diagnostics=("imbalance",),
                          throw=False).to_numpy()
    t = _host(gd.t)
    gf = gradient_flow(Ws, loss, float(t[-1]), t_eval=t, diagnostics=("imbalance",)).to_numpy()
    return {"t": t, "step": float(step),
            "gd_gap": _host(gd.loss) - float(loss.f_star), "gf_gap": _host(gf.loss) - float(loss.f_star),
            "gd_drift": plots.drift(gd.diagnostics["imbalance_1"]),
            "gf_drift": plots.drift(gf.diagnostics["imbalance_1"])}


@draws("imbalance_compute")
def imbalance_plot(data, fig):
    """Loss gaps and imbalance drifts of GD and GF (log axes), for :func:`imbalance_compute` data."""
    ax1, ax2 = _stacked(fig)
    lab = [f"GD, $\\eta={data['step']:g}$", "GF (dopri5)"]
    plots.loss_curves(data["t"], [data["gd_gap"], data["gf_gap"]], lab, ax=ax1,
                      xlabel=r"time $t=k\eta$", title="loss")
    plots.imbalance_drift(data["t"], [data["gd_drift"], data["gf_drift"]], lab, ax=ax2,
                          xlabel=r"time $t=k\eta$", ylabel=r"$\|D_1(t)-D_1(0)\|_F$", title="imbalance drift")


def imbalance_explorer():
    """book/04 (imbalance): gradient descent drifts off the imbalance that gradient flow conserves."""
    return Explorer(
        imbalance_compute, imbalance_plot,
        [Slider("step", (0.01, 0.02, 0.04, 0.08), "GD step η", default=0.02, fmt="{:g}")],
        title="Imbalance: conserved by the flow, drifting under descent",
        caption="Halve η and the drift of GD halves; the flow's stays at its tolerance.",
        size=(5.6, 6.4),
    )


# --- book/09: experiments at scale -------------------------------------------------------------------

@checked(width=count(1, 100), scheme=choice("fan_in", "fan_out", "ntk"), n_samples=count(1, 1000))
@functools.lru_cache(maxsize=32)
def width_compute(width=12, scheme="fan_out", n_samples=100):
    r""":math:`\Delta^*` (Theorem 2) of ``n_samples`` random networks of shape (5, h, h, 1), one batched call."""
    from .. import bounds, init

    Ws = init.gaussian((5, width, width, 1), scheme, batch=(n_samples,), seed=width)
    return {"width": width, "scheme": scheme,
            "delta_star": np.asarray(to_numpy(bounds.delta_star(Ws)), dtype=float)}


@draws("width_compute")
def width_plot(data, fig, tol=1e-10):
    """Histogram of the positive :math:`\\Delta^*` samples, with the fraction that is positive."""
    ax = _single(fig)
    d = data["delta_star"]
    positive = d[d > tol]
    if positive.size:
        ax.hist(np.log10(positive), bins=20, color=plots.color(0))
    ax.set_xlabel(r"$\log_{10}\Delta^*$ (positive samples)")
    ax.set_ylabel("number of networks")
    ax.set_title(f"{data['scheme']}, $h_1 = h_2 = {data['width']}$: {np.mean(d > tol):.0%} of "
                 f"{d.size} have $\\Delta^* > 0$, median {np.median(d):.3g}")


def width_explorer():
    """book/09 (experiments at scale): how the width of a random three-layer network shapes Delta*."""
    return Explorer(
        width_compute, width_plot,
        [Slider("width", (4, 8, 12, 20, 50), "width h", default=12),
         Slider("scheme", ("fan_in", "fan_out", "ntk"), "scheme", default="fan_out")],
        title="Delta* of random three-layer networks (n = 5, m = 1)",
        caption="Narrow networks often get no guarantee (Delta* = 0); at h = 50 every sample does.",
        size=(5.6, 3.2),
    )
