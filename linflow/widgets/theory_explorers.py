r"""Explorers and experiment helpers of the theory chapters (two layers to errata).

Every explorer is a pair of functions handed to :class:`linflow.widgets._core.Explorer`:
``*_compute(**params) -> dict`` (the numbers, all from linflow's theory and flow functions)
and ``*_draw(data, fig)`` (the picture, in the style of :mod:`linflow.plots`).  The framework
turns them into a live ipywidgets face and a kernel-free HTML slider face.  The compute
functions are plain functions, tested without a browser in ``tests/test_theory_explorers.py``.

The other helpers only draw and format (a loss plot with bound curves, a Markdown table,
the panels and table of Figure 1) or post-process a run (fit a slope): the chapters make
the flows and the theory calls (:mod:`linflow.bounds`, :mod:`linflow.init`,
:mod:`linflow.closed_form`) themselves, in plain sight.
"""
from __future__ import annotations

import math

import numpy as np

from ..rates import asymptotic_rate  # noqa: F401  (the chapters' older spelling)
from ._core import check_figure, checked, count, draws, grid_values, number, optional, seed

__all__ = [
    "plot_loss_and_bounds",
    "two_layer_compute",
    "two_layer_draw",
    "two_layer_explorer",
    "three_layer_compute",
    "three_layer_draw",
    "three_layer_explorer",
    "depth_compute",
    "depth_draw",
    "depth_explorer",
    "classification_compute",
    "classification_draw",
    "classification_explorer",
    "lemma3_compute",
    "lemma3_draw",
    "lemma3_explorer",
    "markdown_table",
]


#: size of a one-panel explorer frame, inches (at 80 dpi, ~450 px: legible on a phone)
FRAME = (5.6, 3.4)


def _lf():
    import linflow

    return linflow


def _host(x):
    return np.asarray(_lf().to_numpy(x), dtype=float)


def _f(x):
    """A host float (0-d) or NumPy array from a linflow result."""
    a = _host(x)
    return float(a) if a.ndim == 0 else a


def _axes(fig, ncols=1):
    """``ncols`` panels, stacked in one column (a frame must stay legible on a phone)."""
    from ..plots import style

    with style():
        axs = check_figure(fig).subplots(ncols, 1, squeeze=False)[:, 0]
    if ncols > 1:
        fig.subplots_adjust(hspace=0.55)  # room for the x labels of the upper panel
    return list(axs) if ncols > 1 else axs[0]


# ------------------------------------------------------------------------------ analysis
def plot_loss_and_bounds(ax, t, loss, bounds, *, label="gradient flow", title=None,
                         xlabel="flow time $t$"):
    """One loss curve (log scale) and dashed bound curves, in the book's style.

    Parameters
    ----------
    ax : matplotlib axes
    t, loss : array
        Times and loss gaps, shape ``(S,)``.
    bounds : dict
        Legend label -> bound curve, shape ``(S,)``.
    """
    from ..plots import color, style
    from ..plots._plotters import _ax, _host as _numbers, _pair

    if ax is None:
        raise TypeError("linflow: ax must be matplotlib Axes; got None.")
    ax = _ax(ax)
    if not isinstance(bounds, dict):
        raise TypeError(f"linflow: bounds must be a dict label -> bound curve; got {type(bounds).__name__}.")
    t = _numbers(t, "t")
    with style():
        ax.plot(*_pair(t, np.maximum(_numbers(loss, "loss"), 1e-300), "loss"), color=color(0), lw=2.2,
                label=label)
        for i, (name, curve) in enumerate(bounds.items()):
            ax.plot(*_pair(t, np.maximum(_numbers(curve, f"bounds[{name!r}]"), 1e-300), f"bounds[{name!r}]"),
                    "--", color=color(i + 1), lw=1.5, label=name)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(r"$\mathcal{L}(t)-\mathcal{L}^*$")
        if title:
            ax.set_title(title)
        ax.legend(loc="best")
    return ax


def markdown_table(header, rows):
    """A Markdown table (a string) from a header and rows of cells (numbers are formatted).

    Parameters
    ----------
    header : list of str
    rows : list of list
        Cells; floats are written with 4 significant digits, ``None`` and NaN as "n/a".
    """
    def cell(v):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.4g}"
        return str(v)

    if isinstance(header, (str, bytes)) or not isinstance(header, (list, tuple)) \
            or not all(isinstance(h, str) for h in header):
        raise TypeError(f"linflow: header must be a list of column names (strings); got {header!r}.")
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in rows):
        raise TypeError(f"linflow: rows must be a list of rows, each a list of cells; got {rows!r}"[:300] + ".")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- two layers
@checked(lam=number(-10, 10), scale=number(0, 10, above=True), t_end=number(0, 100, above=True), seed=seed)
def two_layer_compute(lam=1.0, *, Y=((2.0, 0.0), (0.0, 0.5)), scale=0.3, t_end=6.0, seed=2):
    r"""Loss of a :math:`\lambda`-balanced two-layer flow and its Theorem 1 bounds."""
    lf = _lf()
    Y = lf.asarray(np.asarray(Y, dtype=float))
    n, m = Y.shape
    loss = lf.losses.Squared(Y)
    Ws = lf.init.lambda_balanced((n, n, m), float(lam), seed=seed, scale=scale)
    t = np.linspace(0.0, t_end, 121)
    traj = lf.gradient_flow(Ws, loss, t_end=t_end, t_eval=t, rtol=1e-9, atol=1e-14,
                            save=("loss",))
    L0 = _f(traj.loss[0])
    a2 = _f(lf.bounds.two_layer(Ws, loss))
    gap = _f(lf.bounds.spread_gap(Ws)[2])
    return {
        "lam": float(lam),
        "t": _host(traj.t),
        "loss": _host(traj.loss),
        "bound_alpha2": _host(lf.bounds.loss_curve(t, L0, a2, loss.gamma)),
        "bound_gap": _host(lf.bounds.loss_curve(t, L0, gap, loss.gamma)),
        "alpha2": a2,
        "gap": gap,
        "measured": _measured_rate(traj.t, traj.loss),
    }


def _measured_rate(t, loss):
    """The flow's decay rate, or None where the run gives none to measure (too few positive samples)."""
    try:
        return asymptotic_rate(t, loss)
    except ValueError:
        return None


@draws("two_layer_compute")
def two_layer_draw(data, fig):
    """Draw :func:`two_layer_compute` output."""
    ax = _axes(fig)
    if math.isclose(data["alpha2"], data["gap"], rel_tol=1e-12, abs_tol=0.0):
        # zero margin: parts 1 and 2 of Theorem 1 give the same rate; draw it once
        bounds = {rf"bound, parts 1 = 2 (margin 0): $\alpha_2=\underline{{\Delta}}={data['gap']:.3g}$":
                  data["bound_gap"]}
    else:
        bounds = {rf"bound, part 2: $\alpha_2={data['alpha2']:.3g}$": data["bound_alpha2"],
                  rf"bound, part 1: $\underline{{\Delta}}={data['gap']:.3g}$": data["bound_gap"]}
    plot_loss_and_bounds(
        ax, data["t"], data["loss"], bounds,
        label="gradient flow" if data["measured"] is None else f"gradient flow (rate {data['measured']:.3g})",
        title=rf"two layers, imbalance $\lambda={data['lam']:.2g}$",
    )
    ax.set_ylim(1e-14, 1e2)


def two_layer_explorer(lams=(0.0, 1.0, 2.0, 4.0)):
    r"""Explorer: imbalance :math:`\lambda` -> loss curve against Theorem 1 (two layers)."""
    from ._core import Explorer, Slider

    lams = grid_values("lams", lams, two_layer_compute.checks["lam"], at_least=2)
    return Explorer(two_layer_compute, two_layer_draw,
                    [Slider("lam", lams, label="imbalance λ",
                            default=float(lams[1]), fmt="{:.2g}")],
                    title="Two layers: imbalance and the rate bound",
                    caption="A larger imbalance gives a larger guaranteed and actual rate. The starts are "
                            "far from Y (margin 0), so parts 1 and 2 of the two-layer theorem give one and the same bound.",
                    size=FRAME)


# -------------------------------------------------------------------------- three layers
@checked(h=count(1, 64), n=count(1, 10), t_end=optional(number(0, 1000, above=True)), seed=seed)
def three_layer_compute(h=20, n=2, *, scheme="fan_out", t_end=None, seed=1):
    r"""Three-layer flow from a random init: loss, Corollary 1 bound, :math:`\lambda_{\min}` path."""
    lf = _lf()
    dims = (int(n), int(h), int(h), 1)
    Ws = lf.init.gaussian(dims, scheme=scheme, seed=seed)
    loss = lf.losses.Squared(lf.asarray(np.ones((int(n), 1))))
    ds = _f(lf.bounds.delta_star(Ws))
    lam0 = _f(lf.lambda_min(Ws))
    if t_end is None:
        t_end = 30.0 / (loss.gamma * max(lam0, 1e-3))
    t = np.linspace(0.0, t_end, 101)
    traj = lf.gradient_flow(Ws, loss, t_end=t_end, t_eval=t, save=("loss",),
                            diagnostics=("lambda_min",), rtol=1e-8, atol=1e-14)
    L0 = _f(traj.loss[0])
    return {
        "h": int(h), "n": int(n), "t": _host(traj.t), "loss": _host(traj.loss),
        "bound": _host(lf.bounds.loss_curve(t, L0, max(ds, 0.0), loss.gamma)),
        "delta_star": ds, "lambda_min": _host(traj.diagnostics["lambda_min"]),
    }


@draws("three_layer_compute")
def three_layer_draw(data, fig):
    """Draw :func:`three_layer_compute` output: loss vs bound, and lambda_min(T(t)) vs Delta*."""
    from ..plots import color, style

    ax1, ax2 = _axes(fig, 2)
    plot_loss_and_bounds(ax1, data["t"], data["loss"],
                         {rf"bound $e^{{-\gamma\Delta^* t}}$, $\Delta^*={data['delta_star']:.3g}$": data["bound"]},
                         title=rf"$(n,h_1,h_2,m)=({data['n']},{data['h']},{data['h']},1)$")
    ax1.set_ylim(1e-14, 1e2)
    with style():
        ax2.plot(data["t"], data["lambda_min"], color=color(0), label=r"$\lambda_{\min}(\mathcal{T}(t))$")
        ax2.axhline(data["delta_star"], color=color(1), ls="--", label=r"$\Delta^*$ (imbalance-only bound)")
        ax2.set(xlabel="flow time $t$", ylabel="eigenvalue", title="the bound along the flow")
        ax2.set_ylim(bottom=min(0.0, data["delta_star"]))
        ax2.legend(loc="best")


def three_layer_explorer(hs=(4, 32), ns=(1, 5)):
    """Explorer: widths and input dimension of a Fan_out three-layer net -> Delta*, flow."""
    from ._core import Explorer, Slider

    checks = three_layer_compute.checks
    hs, ns = grid_values("hs", hs, checks["h"]), grid_values("ns", ns, checks["n"])
    return Explorer(three_layer_compute, three_layer_draw,
                    [Slider("h", hs, label="width h₁ = h₂", default=int(hs[-1])),
                     Slider("n", ns, label="input dimension n", default=int(ns[0]))],
                    title="Three layers: Δ* against the flow (Fan_out init, m = 1)",
                    caption="Δ* is a uniform lower bound on λ_min along the flow. In these frames it is within "
                            "a factor 2 of min λ_min for n = 1, and far below it for n = 5 at width 32.",
                    size=(FRAME[0], 2 * FRAME[1] - 0.4))


# -------------------------------------------------------------------------------- depth
def _depth_weights(L, eps, n=2, width=2, seed=0):
    lf = _lf()
    dims = (int(n),) + (int(width),) * (int(L) - 1) + (int(n),)
    return lf.init.unimodal(dims, int(L), [float(eps)] * (int(L) - 1), seed=seed)


@checked(L=count(1, 10), eps=number(0, 10), n=count(1, 10), t_end=number(0, 100, above=True), seed=seed)
def depth_compute(L=4, eps=0.4, *, n=2, t_end=3.0, seed=0):
    r"""One depth: the flow of a unimodal network with :math:`D_l=\epsilon I` and its Theorem 3 bound."""
    lf = _lf()
    Ws = _depth_weights(L, eps, n, n, seed)
    loss = lf.losses.Squared(lf.asarray(np.eye(int(n))))
    t = np.linspace(0.0, t_end, 81)
    traj = lf.gradient_flow(Ws, loss, t_end=t_end, t_eval=t, save=("loss",), rtol=1e-7,
                            atol=1e-12, loss_tol=1e-13, throw=False)
    a = _f(lf.bounds.unimodal(Ws))
    reached = np.asarray(traj.saved)  # the run stops at loss_tol: the save points after it are not reached
    t = t[reached]
    return {"L": int(L), "eps": float(eps), "t": _host(traj.t)[reached], "loss": _host(traj.loss)[reached],
            "bound": _host(lf.bounds.loss_curve(t, _f(traj.loss[0]), a, loss.gamma)), "alpha": a}


@draws("depth_compute")
def depth_draw(data, fig):
    """Draw :func:`depth_compute` output."""
    ax = _axes(fig)
    plot_loss_and_bounds(ax, data["t"], data["loss"],
                         {rf"Theorem 3: $\epsilon^{{L-1}}(L-1)!={data['alpha']:.3g}$": data["bound"]},
                         title=rf"depth $L={data['L']}$, $D_l={data['eps']:.2g}\,I$")
    ax.set_ylim(1e-14, 1e2)


def depth_explorer(Ls=(2, 4, 6), epss=(0.3, 0.6)):
    """Explorer: depth and per-layer imbalance -> loss against the Theorem 3 guarantee."""
    from ._core import Explorer, Slider

    checks = depth_compute.checks
    Ls, epss = grid_values("Ls", Ls, checks["L"], at_least=2), grid_values("epss", epss, checks["eps"])
    return Explorer(depth_compute, depth_draw,
                    [Slider("L", Ls, label="depth L", default=int(Ls[1])),
                     Slider("eps", epss, label="imbalance ε",
                            default=float(epss[0]), fmt="{:.2g}")],
                    title="Depth: the super-exponential guarantee ε^(L-1) (L-1)!",
                    caption="Gradient flow from unimodal weights with D_l = εI (l* = L).",
                    size=FRAME)


# ------------------------------------------------------------------------ classification
def classification_data(N=20, n=3, seed=0):
    """Linearly separable data ``(X, y)``: labels of a random direction, points pushed off the boundary."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    z /= np.linalg.norm(z)
    X = rng.standard_normal((N, n))
    y = np.sign(X @ z)
    y[y == 0] = 1.0
    X = X + 0.5 * y[:, None] * z[None, :]
    return X, y


@checked(std=number(0, 10, above=True), h=count(1, 64), t_end=number(1e-2, 1000, above=True), seed=seed)
def classification_compute(std=1.0, *, h=6, t_end=100.0, seed=0):
    r"""Two-layer flow on the exponential loss: loss against Theorem 4 with :math:`\alpha=\underline\Delta`."""
    lf = _lf()
    X, y = classification_data(seed=seed)
    loss = lf.losses.Exponential(lf.asarray(X), lf.asarray(y))
    Ws = lf.init.gaussian((X.shape[1], int(h), 1), scheme="custom", std=float(std), seed=seed + 1)
    t = np.concatenate([[0.0], np.geomspace(1e-2, t_end, 79)])
    traj = lf.gradient_flow(Ws, loss, t_end=t_end, t_eval=t, save=("loss",), rtol=1e-7, atol=1e-12)
    alpha = _f(lf.bounds.spread_gap(Ws)[2])
    L0 = _f(traj.loss[0])
    return {"std": float(std), "t": _host(traj.t), "loss": _host(traj.loss), "alpha": alpha,
            "gamma": float(loss.gamma),
            "bound": _host(lf.bounds.loss_curve(t, L0, alpha, loss.gamma, kind="inverse"))}


@draws("classification_compute")
def classification_draw(data, fig):
    """Draw :func:`classification_compute` output (log-log axes: O(1/t) is a slope -1)."""
    ax = _axes(fig)
    plot_loss_and_bounds(ax, data["t"][1:], data["loss"][1:],
                         {rf"Theorem 4, $\alpha=\underline{{\Delta}}={data['alpha']:.3g}$": data["bound"][1:]},
                         title=rf"exponential loss, init std {data['std']:.2g}")
    ax.set_xscale("log")


def classification_explorer(stds=(0.5, 1.0, 2.0)):
    """Explorer: init scale -> exponential-loss flow against the O(1/t) bound of Theorem 4."""
    from ._core import Explorer, Slider

    stds = grid_values("stds", stds, classification_compute.checks["std"], at_least=2)
    return Explorer(classification_compute, classification_draw,
                    [Slider("std", stds, label="init std",
                            default=float(stds[1]), fmt="{:.2g}")],
                    title="Classification: the O(1/t) rate of Theorem 4",
                    caption="Larger weights give a larger imbalance gap and a faster guaranteed rate.",
                    size=FRAME)


# ------------------------------------------------------------------------------- errata
@checked(n=count(1, 20), m=count(1, 20), h=count(1, 64), samples=count(1, 5000), seed=seed)
def lemma3_compute(n=3, m=1, *, h=6, samples=200, seed=0):
    """Lemma 3, printed vs corrected, on random two-layer nets of shape ``(n, h, m)``."""
    lf = _lf()
    Ws = lf.init.gaussian((int(n), int(h), int(m)), scheme="custom", std=0.7,
                          batch=(int(samples),), seed=seed)
    exact = _host(lf.lambda_min(Ws))
    corrected = _host(lf.bounds.lemma3(Ws))
    printed = _host(lf.bounds.printed.lemma3(Ws))
    tol = 1e-10 * np.maximum(1.0, np.abs(exact))
    return {"n": int(n), "m": int(m), "exact": exact, "corrected": corrected, "printed": printed,
            "violations_printed": int(np.sum(printed > exact + tol)),
            "violations_corrected": int(np.sum(corrected > exact + tol))}


@draws("lemma3_compute")
def lemma3_draw(data, fig):
    """Draw :func:`lemma3_compute` output."""
    from ..plots import color, style

    ax = _axes(fig)
    with style():
        ax.scatter(data["exact"], data["corrected"], s=8, color=color(0),
                   label=f"corrected ({data['violations_corrected']} violations)")
        ax.scatter(data["exact"], data["printed"], s=8, color=color(1), marker="x",
                   label=f"printed ({data['violations_printed']} violations)")
        hi = float(max(np.max(data["exact"]), np.max(data["printed"]), 1e-3))
        ax.plot([0, hi], [0, hi], "k--", lw=1, label="bound = exact")
        ax.set(xlabel=r"exact $\lambda_{\min}(\mathcal{T})$", ylabel="Lemma 3 lower bound",
               title=f"n = {data['n']}, m = {data['m']}: points above the line are violations")
        ax.legend(loc="best")


def lemma3_explorer(ns=(1, 2, 3), ms=(1, 2, 3)):
    """Explorer: (n, m) -> printed vs corrected Lemma 3 on random two-layer networks."""
    from ._core import Explorer, Slider

    checks = lemma3_compute.checks
    ns, ms = grid_values("ns", ns, checks["n"], at_least=3), grid_values("ms", ms, checks["m"])
    return Explorer(lemma3_compute, lemma3_draw,
                    [Slider("n", ns, label="n", default=int(ns[2])),
                     Slider("m", ms, label="m", default=int(ms[0]))],
                    title="Erratum E2: the pairing in Lemma 3",
                    caption="The printed pairing fails only when n ≠ m.",
                    size=FRAME)


# ------------------------------------------------------------------------------ Figure 1
#: What Figure 1 of the paper shows, read off the figure (chapter *Three layers*): box medians (and
#: quartiles) of the left panel, legend values of the middle and right panels, the measured
#: slopes of the solid right-panel curves, and the Delta implied by its dashed lines.
PAPER_FIGURE1 = {
    "left_median": {"ntk": 24.0, "fan_in": 15.5, "fan_out": 100.0},
    "left_box": {"ntk": (18.0, 27.0), "fan_in": (14.5, 16.5), "fan_out": (88.0, 117.0)},
    "middle_legend": (317.95, 650.70, 973.00),
    "right_legend": (121.97, 196.23, 252.45),
    "right_solid_rate": (109.0, 177.0, 280.0),
    "right_dashed_implied": (15.0, 36.0, 52.0),
    "eta": 5e-6,
}

_SCHEME_NAMES = {"ntk": "NTK (scaled)", "fan_in": "Fan_in", "fan_out": "Fan_out"}


def fitted_rate(t, loss, frac=0.5, floor=1e-24):
    r"""Rate :math:`-\tfrac{d}{dt}\log\mathcal L` fitted on the last ``frac`` of the samples above ``floor``."""
    t = _host(t).ravel()
    y = _host(loss).ravel()
    idx = np.flatnonzero(np.isfinite(y) & (y > floor))
    if idx.size < 3:
        return float("nan")
    idx = idx[int((1 - frac) * idx.size):]
    return float(-np.polyfit(t[idx], np.log(y[idx]), 1)[0])


def figure1_panels(left, middle, right):
    """The three panels of Figure 1 side by side, from :func:`linflow.figure1.left` and ``gd``.

    The GD panels are drawn against the flow time :math:`t = k\\eta` expressed in iterations of
    the paper's step :math:`\\eta = 5\\times10^{-6}`, so runs with a larger step line up with
    the paper's axis.
    """
    from ..plots import color, figure, style

    fig, axes = figure(3, size=(14.5, 4.0))
    with style():
        ax = axes[0]
        keys = [k for k in ("ntk", "fan_in", "fan_out") if k in left]
        ax.boxplot([_host(left[k]) for k in keys], tick_labels=[_SCHEME_NAMES[k] for k in keys])
        for i, k in enumerate(keys):
            ax.plot(i + 1, PAPER_FIGURE1["left_median"][k], "D", color=color(1),
                    label="paper's median" if i == 0 else None)
        ax.set(ylabel=r"rate bound $\Delta^*$", title=f"left: $\\Delta^*$, {len(_host(left[keys[0]]))} draws each")
        ax.legend(loc="upper left")
        for ax, data, name in ((axes[1], middle, "middle: $n=m=1$"), (axes[2], right, "right: $n=5$, $m=1$")):
            for i, run in enumerate(data["runs"]):
                k_paper = run["k"] * data["eta"] / PAPER_FIGURE1["eta"]
                h1, h2 = run["widths"]
                ax.plot(k_paper, np.maximum(run["loss"], 1e-300), color=color(i),
                        label=f"$(h_1,h_2)=({h1},{h2})$")
                ax.plot(k_paper, np.maximum(run["bound"], 1e-300), "--", color=color(i),
                        label=rf"bound, $\Delta^*={run['delta_star']:.1f}$")
            ax.set_yscale("log")
            ax.set(xlabel=r"iteration $k$ (at $\eta=5\times10^{-6}$)", ylabel="squared $\\ell_2$ loss",
                   title=name)
            ax.legend(loc="lower left", fontsize=9)
    return fig


def figure1_rows(left, middle, right, medians=None):
    """Numbers of our Figure 1 next to the paper's: a list of table rows (see :func:`figure1_table`).

    ``medians``: optional dict panel -> list of median Delta* per width (from Fan_out draws
    of :func:`linflow.figure1.left`, as in the chapter *Three layers*).
    """
    P = PAPER_FIGURE1
    medians = medians or {}
    rows = []
    for k in ("ntk", "fan_in", "fan_out"):
        if k in left:
            v = _host(left[k])
            q1, q3 = np.percentile(v, [25, 75])
            rows.append([f"left, {_SCHEME_NAMES[k]}", "median Δ* (box)",
                         f"{P['left_median'][k]:.4g} ({P['left_box'][k][0]:.4g}–{P['left_box'][k][1]:.4g})",
                         f"{np.median(v):.4g} ({q1:.4g}–{q3:.4g})",
                         f"{int(np.sum(v > 0))}/{v.size} positive"])
    for name, data, legend in (("middle", middle, P["middle_legend"]), ("right", right, P["right_legend"])):
        for i, run in enumerate(data["runs"]):
            measured = fitted_rate(run["k"] * data["eta"], run["loss"]) / data["gamma"]
            extra = f"measured rate/γ: {measured:.4g}"
            if name == "right":
                extra += (f" (paper: solid {P['right_solid_rate'][i]:.4g}, "
                          f"dashed {P['right_dashed_implied'][i]:.4g})")
            ours = f"{run['delta_star']:.5g}"
            if name in medians:
                ours += f" (median of draws: {medians[name][i]:.4g})"
            rows.append([f"{name}, {run['widths']}", "legend Δ*", f"{legend[i]:.5g}", ours, extra])
    return rows


def figure1_table(left, middle, right, medians=None):
    """Markdown table: the paper's Figure 1 values against ours."""
    return markdown_table(["panel", "quantity", "paper", "this build", "note"],
                          figure1_rows(left, middle, right, medians))


def figure1_summary(left, middle, right):
    """One-line text summary of the left panel (positivity of Delta*)."""
    parts = []
    for k in ("ntk", "fan_in", "fan_out"):
        if k in left:
            v = _host(left[k])
            parts.append(f"{_SCHEME_NAMES[k]}: {int(np.sum(v > 0))}/{v.size} draws with Delta* > 0, "
                         f"median {np.median(v):.4g}")
    return "; ".join(parts)


# ------------------------------------------------------------------------- open problems
def relu_balance_probe(*, n=3, h=8, N=30, eta=1e-3, steps=3000, seed=0):
    r"""A one-hidden-layer **ReLU** network trained by small-step GD: which imbalance survives?

    Model :math:`\hat Y = \mathrm{relu}(XW_1)W_2`, loss :math:`\tfrac12\|\hat Y - Y\|_F^2`.  For
    homogeneous activations the *diagonal* of :math:`W_1^\top W_1 - W_2W_2^\top` (one number per
    neuron) is conserved by gradient flow (Du et al. 2018), but not the whole matrix, which is
    what the linear theory uses.  (Plain NumPy: linflow's engine is linear.)

    Returns
    -------
    dict
        ``k`` (steps), ``diag_drift`` and ``offdiag_drift`` (max-abs change of the diagonal and
        off-diagonal part of the imbalance) and ``loss``.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, n))
    Y = np.maximum(X @ rng.standard_normal((n, 2)), 0.0) @ rng.standard_normal((2, 1))
    W1 = rng.standard_normal((n, h)) / math.sqrt(n)
    W2 = rng.standard_normal((h, 1)) / math.sqrt(h)

    def imb(A, B):
        return A.T @ A - B @ B.T

    D0 = imb(W1, W2)
    off = ~np.eye(h, dtype=bool)
    ks, dd, od, ls = [], [], [], []
    for k in range(steps + 1):
        Z = X @ W1
        H = np.maximum(Z, 0.0)
        R = H @ W2 - Y
        if k % max(1, steps // 100) == 0:
            D = imb(W1, W2) - D0
            ks.append(k)
            dd.append(float(np.max(np.abs(np.diag(D)))))
            od.append(float(np.max(np.abs(D[off]))))
            ls.append(0.5 * float(np.sum(R * R)))
        g2 = H.T @ R
        g1 = X.T @ ((R @ W2.T) * (Z > 0))
        W1 = W1 - eta * g1
        W2 = W2 - eta * g2
    return {"k": np.asarray(ks), "diag_drift": np.asarray(dd), "offdiag_drift": np.asarray(od),
            "loss": np.asarray(ls)}

