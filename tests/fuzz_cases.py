"""Strategies for the whole-API fuzz (tests/test_fuzz.py, issue #22).

Every public callable of every public linflow module gets a *case*: one or more valid
calls (small problems, so that a call takes milliseconds).  The fuzz then replaces one
argument of a valid call by a bad value chosen by the argument's kind (:func:`bad_values`):
NaN, inf, huge (1e200) and tiny (1e-300) numbers or entries, None, wrong types (strings,
booleans, lists, arrays for numbers, integer and string arrays) and wrong shapes (an extra
or a missing axis, a transposed or an empty array, a layer too many or too few).

:data:`EXCLUDED` names the public callables that have no case, each with its reason;
:data:`INTERNAL_MODULES` the public-looking modules whose functions are the integrators'
internals, reached only through :func:`linflow.gradient_flow` and
:func:`linflow.gradient_descent`, which are fuzzed here and in their own property tests.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np

import linflow as lf

#: modules whose functions take the integrators' packed, already validated state
INTERNAL_MODULES = {
    "linflow.flow.driver": "the integration loop; its input is built and checked by gradient_flow/gradient_descent",
    "linflow.flow.packed": "packed Runge-Kutta/Gauss workspaces built by the driver from validated weights",
    "linflow.flow.parallel": "the driver split over threads; same input as linflow.flow.driver",
    "linflow.flow.progress": "the driver's progress bar (progress= is fuzzed through gradient_flow)",
    "linflow.flow.solvers": "the vector field on packed states (Dopri5/Gauss are fuzzed through linflow.flow)",
    "linflow.flow.trajectory": "result and exception classes, re-exported by linflow.flow",
    "linflow.widgets.sphinx": "a Sphinx extension hook (no __all__), run by the book build",
}

#: public callables without a case, each with the reason it cannot be fuzzed meaningfully
EXCLUDED = {
    "BackendError": "an exception class",
    "DivergenceError": "an exception class",
    "MaxStepsError": "an exception class",
    "MaxStepsWarning": "a warning class",
    "MalformedRowsWarning": "a warning class",
    "HypothesisError": "an exception class",
    "SweepLocked": "an exception class",
    "Status": "an enum of stop reasons (Status(value) is the enum's own lookup)",
    "Trajectory": "a result record built by the integrators (its fields are checked on every fuzzed flow)",
    "Backend": "a record built by set_backend/get_backend (set_backend is fuzzed)",
    "LinflowFigure": "matplotlib's Figure constructor (figure() is fuzzed)",
    "Loss": "the abstract base class of the losses (each concrete loss is fuzzed)",
    "local_client": "starts a Dask LocalCluster of processes (tests/test_sweep_dask.py covers it)",
    "execute": "the Dask executor behind sweep.run(client=...); needs a live Dask client",
}


def public_modules():
    """Every importable linflow module with no private (underscored) path component."""
    names = ["linflow"] + [m.name for m in pkgutil.walk_packages(lf.__path__, "linflow.")]
    return [n for n in names if not any(p.startswith("_") for p in n.split("."))]


def public_callables():
    """``{qualified name: callable}`` over the ``__all__`` of every public module, each object once.

    A name re-exported by several modules is listed under the first (shallowest) module.
    """
    out, seen = {}, set()
    for m in public_modules():
        if m in INTERNAL_MODULES:
            continue
        mod = importlib.import_module(m)
        for n in getattr(mod, "__all__", ()):
            obj = getattr(mod, n)
            if not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            out[f"{m}.{n}"] = obj
    return out


# --- valid inputs -----------------------------------------------------------------------------

def rng(seed=0):
    return np.random.default_rng(seed)


def Ws(dims=(3, 4, 2), seed=0, scale=0.5, batch=()):
    r = rng(seed)
    return tuple(r.normal(size=batch + (a, b)) * scale for a, b in zip(dims[:-1], dims[1:]))


def Y(n=3, m=2, seed=1):
    return rng(seed).normal(size=(n, m))


def sym(n=3, seed=2):
    A = rng(seed).normal(size=(n, n))
    return A + A.T


def pair21_23(dims, batch=()):
    """The imbalances (D21, D23) of random three-layer weights, with n and m."""
    W1, W2, W3 = Ws(dims, seed=4, batch=batch)
    tr = lambda a: np.swapaxes(a, -1, -2)  # noqa: E731
    return W2 @ tr(W2) - tr(W1) @ W1, tr(W2) @ W2 - W3 @ tr(W3), dims[0], dims[-1]


def rank_update(k, r):
    """(A, B) with A - B positive semidefinite of rank r: A >=_r B."""
    Z = rng(7).normal(size=(r, k))
    return sym(k), sym(k) - Z.T @ Z


def squared(n=3, m=2):
    return lf.losses.Squared(Y(n, m))


def classification(N=6, n=3):
    r = rng(3)
    X = r.normal(size=(N, n))
    y = np.sign(X @ np.ones(n) + 0.1)
    return X, y


def times(k=5, t_end=2.0):
    return np.linspace(0.0, t_end, k)


def unimodal_Ws():
    return lf.init.unimodal((3, 2, 2, 1), 3, [0.5, 0.4], seed=0)


def homogeneous_Ws():
    return lf.init.homogeneous((2, 2, 2, 2), [0.3, 0.2], seed=0)


def theory_fig():
    from linflow import plots

    fig, _ = plots.figure(ncols=2)
    return fig


class Call:
    """One valid call: positional ``args`` and keyword ``kwargs`` (rebuilt for every example)."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _theory_data(name, **kw):
    from linflow.widgets import theory_explorers as te

    return getattr(te, f"{name}_compute")(**kw)


def _explorer_data(name, **kw):
    from linflow import widgets

    return getattr(widgets, f"{name}_compute")(**kw)


def cases():
    """``{qualified name: (builder, options)}``; ``builder()`` gives a list of valid :class:`Call`.

    options: ``examples`` (fuzz examples, small for slow calls), ``inf_ok`` (the result may
    hold ``+-inf`` where the docstring says so), ``missing_ok`` (a batched measurement whose
    docstring says NaN marks a trajectory it could not measure; counted as ``missing``), ``propagates`` (NaN/inf in, NaN/inf out:
    documented pure algebra), ``restore`` (undo a global setting after each call).
    """
    from linflow import bounds as B
    from linflow import closed_form as cf
    from linflow import figure1, plots, sweep, widgets
    from linflow.bounds import printed as P
    from linflow.widgets import theory_explorers as te

    slow = dict(examples=6)
    C = {}

    def add(fn_name, build, **opts):
        C[fn_name] = (build, opts)

    net = "linflow."
    # --- network and backend
    for n in ("product", "prefix_products", "suffix_products", "imbalance"):
        add(net + n, lambda: [Call(Ws()), Call(Ws((2, 3, 3, 2), batch=(2,)))], propagates=True)
    for n in ("singular_values", "sigma_min", "lambda_min", "lambda_max_bound", "T_matrix"):
        add(net + n, lambda: [Call(Ws()), Call(Ws((2, 3, 3, 2), batch=(2,)))])
    add(net + "T_apply", lambda: [Call(Ws(), Y())])
    add(net + "energy", lambda: [Call(Ws(), Y())])
    add(net + "layer_gradients", lambda: [Call(Ws(), Y())])
    add(net + "value_and_gradients", lambda: [Call(Ws(), squared())])
    add(net + "asarray", lambda: [Call(Y()), Call([1.0, 2.0], like=Y(), dtype=np.float32)], propagates=True)
    add(net + "namespace", lambda: [Call(Y(), Y())])
    add(net + "to_numpy", lambda: [Call(Y()), Call((Y(), {"a": Y()}))], propagates=True)
    add(net + "get_backend", lambda: [Call()])
    add(net + "set_backend", lambda: [Call("numpy"), Call("numpy", dtype=np.float32)], restore=True)
    add("linflow.backend.same_device", lambda: [Call(Y(), Y())])

    # --- the integrators
    add(net + "gradient_flow", lambda: [Call(Ws(), squared(), 0.5, max_steps=500),
                                        Call(Ws(), squared(), 0.5, method="midpoint", dt=0.05),
                                        Call(Ws(batch=(2,)), squared(), 0.3, rtol=1e-6, t_eval=[0.0, 0.1, 0.3],
                                             diagnostics=("lambda_min",), loss_tol=1e-3)], examples=25)
    add(net + "gradient_descent", lambda: [Call(Ws(), squared(), 0.05, 10, save_every=2),
                                           Call(Ws(batch=(2,)), squared(), 0.05, 5, diagnostics=("imbalance",),
                                                throw=False, loss_tol=1e-3)], examples=25)
    add("linflow.flow.Dopri5", lambda: [Call(1e-6, 1e-9)])
    add("linflow.flow.Gauss", lambda: [Call(2, 50), Call(1)])

    # --- losses
    add("linflow.losses.Squared", lambda: [Call(Y())])
    add("linflow.losses.Regression", lambda: [Call(rng(4).normal(size=(5, 3)), Y(5, 2))])
    for n in ("Exponential", "Logistic"):
        add(f"linflow.losses.{n}", lambda: [Call(*classification()), Call(*classification(), margin=0.1)])

    # --- init
    I = "linflow.init."
    add(I + "gaussian", lambda: [Call((3, 4, 2)), Call((2, 3, 2), "ntk", batch=(2,), seed=3),
                                 Call((2, 2), "custom", std=0.3)])
    add(I + "balanced", lambda: [Call((3, 4, 2)), Call((2, 3, 2), product=Y(2, 2), scale=0.5, batch=(2,))])
    add(I + "lambda_balanced", lambda: [Call((3, 3, 2), 0.5), Call((2, 2, 2), -0.3, scale=0.5, batch=(2,))])
    add(I + "spectral", lambda: [Call(Y(3, 2), np.full((2, 2), 0.5)), Call(Y(2, 2), np.full((2, 1), 0.1), widths=(4,))])
    add(I + "unimodal", lambda: [Call((3, 2, 2, 1), 3, [0.5, 0.4]), Call((3, 2, 2, 1), 3, 0.3, scale=0.5)])
    add(I + "homogeneous", lambda: [Call((2, 2, 2, 2), [0.3, 0.2]), Call((3, 3, 3), [0.2], batch=(2,))])
    add(I + "diagonal", lambda: [Call(rng(5).normal(size=(3, 2)))])
    add(I + "scalar", lambda: [Call(np.array([0.5, 1.0, 1.5])), Call([0.3, 0.7])])

    # --- bounds
    Bn = "linflow.bounds."
    for n in ("spread_gap", "lemma3", "two_layer", "min2021", "is_balanced"):
        add(Bn + n, lambda: [Call(Ws()), Call(Ws((2, 3, 2), batch=(2,)))], inf_ok=True)
    for n in ("arora", "yun"):
        add(Bn + n, lambda: [Call(lf.init.balanced((3, 4, 2))), Call(lf.init.balanced((2, 3, 2), batch=(2,)), tol=1e-6)],
            inf_ok=True)
    for n in ("deltas", "delta_star", "lemma_g1"):
        add(Bn + n, lambda: [Call(Ws((2, 4, 4, 3))), Call(Ws((1, 3, 3, 1), batch=(2,)))], inf_ok=True)
    for n in ("unimodal_index", "unimodal_indices", "cumulative_imbalance", "is_homogeneous", "unimodal"):
        add(Bn + n, lambda: [Call(unimodal_Ws()), Call(unimodal_Ws(), tol=1e-6)], inf_ok=True)
    add(Bn + "homogeneous", lambda: [Call(homogeneous_Ws()), Call(homogeneous_Ws(), tol=1e-6)], inf_ok=True)
    add(Bn + "corollary2", lambda: [Call(unimodal_Ws(), lf.losses.Squared(Y(3, 1))),
                                    Call(unimodal_Ws(), part=1)], inf_ok=True)
    add(Bn + "margin", lambda: [Call(Ws(), squared())], inf_ok=True)
    add(Bn + "margins", lambda: [Call(Ws(), squared())], inf_ok=True)
    add(Bn + "tarmoun", lambda: [Call(lf.init.lambda_balanced((2, 2, 2), 0.5), Y(2, 2))], inf_ok=True)
    add(Bn + "wedge", lambda: [Call(sym(3), sym(3, 5), 1), Call(sym(2), sym(2, 5), 2)])
    add(Bn + "D_bar", lambda: [Call(sym(3), sym(3, 5))])
    add(Bn + "delta_star_from", lambda: [Call(sym(3), sym(3, 5), 2, 1)], inf_ok=True)
    add(Bn + "tight_weights", lambda: [Call(*pair21_23((2, 3, 4, 1))), Call(*pair21_23((3, 2, 2, 2), batch=(2,)))])
    add(Bn + "interlacing_converse", lambda: [Call(*rank_update(4, 2), 2), Call(*rank_update(3, 4), 4)])
    add(Bn + "diagonal_rate", lambda: [Call(rng(6).normal(size=(3, 2))), Call(rng(6).normal(size=(3, 2)), np.ones(2))],
        inf_ok=True)
    add(Bn + "scalar_ideal", lambda: [Call(np.array([0.5, 1.0, 1.5])), Call(np.array([0.5, 1.0]), 2.0, iters=50)],
        inf_ok=True)
    add(Bn + "loss_curve", lambda: [Call(times(), 1.0, 0.5, 1.0), Call(times(), 2.0, 0.3, 0.5, 0.1, kind="inverse")])
    add(Bn + "observed_rate", lambda: [Call(times(), np.exp(-times())), Call(times(), 1 + np.exp(-times()), L_star=1.0,
                                                                             gamma=0.5)])
    Pn = "linflow.bounds.printed."
    for n in ("lemma3", "balanced"):
        add(Pn + n, lambda: [Call(Ws()), Call(Ws((2, 3, 2), batch=(2,)))], inf_ok=True)
    for n in ("delta_star", "delta_star_G17"):
        add(Pn + n, lambda: [Call(Ws((2, 4, 4, 3)))], inf_ok=True)
    add(Pn + "eq19", lambda: [Call(homogeneous_Ws()), Call(homogeneous_Ws(), tol=1e-6)], inf_ok=True)
    add(Pn + "theorem1", lambda: [Call(Ws(), squared())], inf_ok=True)
    add(Pn + "corollary2", lambda: [Call(unimodal_Ws(), lf.losses.Squared(Y(3, 1)))], inf_ok=True)
    add(Pn + "figure1_bound", lambda: [Call(np.arange(5), 0.1, 0.5, 1.0, 2.0), Call(3, 0.01, 1e-3, 1.0, 1.0)])

    # --- closed forms
    Cn = "linflow.closed_form."
    add(Cn + "saxe", lambda: [Call(Y(2, 2), 0.1, times())])
    add(Cn + "saxe_modes", lambda: [Call(np.array([1.0, 0.5]), 0.1, times()[:, None])])
    add(Cn + "saxe_learning_time", lambda: [Call(1.0, 0.1, 0.5)])
    add(Cn + "deep_balanced", lambda: [Call(Y(2, 2), 0.1, 3, times())])
    add(Cn + "deep_balanced_modes", lambda: [Call(np.array([1.0, 0.5]), 0.1, 3, times())])
    add(Cn + "deep_balanced_time", lambda: [Call(0.5, 1.0, 0.1, 3)])
    add(Cn + "riccati", lambda: [Call(lf.init.lambda_balanced((2, 2, 2), 0.5), Y(2, 2), times())])
    add(Cn + "scalar_two_layer", lambda: [Call(np.array([0.5, 0.3]), 1.0, times())])
    add(Cn + "scalar_two_layer_time", lambda: [Call(0.5, 0.1, 1.0, 0.2)])
    add(Cn + "scalar_deep", lambda: [Call(np.array([0.5, 0.7, 0.9]), 1.0, times())])
    add(Cn + "aligned_balanced", lambda: [Call(Y(2, 2), 0.1), Call(Y(2, 3), 0.2, 3, widths=(4, 4), seed=1)])
    # lambda >= 0 needs h <= n, lambda < 0 needs h <= m
    add(Cn + "lambda_balanced", lambda: [Call(3, 2, 2, 0.5), Call(2, 2, 4, -0.2, scale=0.5, seed=2)])

    # --- sweep (enumerated through linflow.sweep.__all__)
    def build(p):
        return Ws(seed=p["seed"]), squared(), {}

    # a grid only combines the values it is given (NaN in, the same NaN in its points)
    add("linflow.sweep.grid", lambda: [Call(seed=[0, 1], lr=[0.1])], propagates=True)
    add("linflow.sweep.run", lambda: [Call(sweep.grid(seed=[0, 1]), build, t_end=0.3, max_steps=500)], **slow)
    add("linflow.sweep.bytes_per_trajectory", lambda: [Call((3, 4, 2)), Call((3, 4, 2), method="gauss2",
                                                                             dtype="float32", n_saves=5)])
    add("linflow.sweep.batch_size", lambda: [Call((3, 4, 2), memory=2**20), Call((3, 4, 2), max_batch=4)])
    add("linflow.sweep.available_memory", lambda: [Call()])
    add("linflow.sweep.read_rows", lambda: [Call(_rows_file())])
    add("linflow.sweep.read_frame", lambda: [Call(_rows_file())])
    add("linflow.sweep.to_frame", lambda: [Call(_rows())])
    add("linflow.sweep.write_csv", lambda: [Call(_rows(), _tmp("rows.csv"))])
    add("linflow.sweep.write_json", lambda: [Call(_rows(), _tmp("rows.json"))])
    add("linflow.sweep.point_key", lambda: [Call({"seed": 1}), Call({"seed": 1, "h": 3}, {"rtol": 1e-6})])
    add("linflow.sweep.summarize", lambda: [Call(_rows(), "seed", "final_loss")])
    add("linflow.distributed.sweep_time", lambda: [Call(100, 2, 10, t_point=0.01, o_task=0.1)])

    # --- experiments: statistics of sweeps, measured rates
    add("linflow.stats.wilson", lambda: [Call(3, 10), Call(np.array([0, 5, 10]), np.array([10, 10, 10]))])
    add("linflow.stats.crossing", lambda: [Call(np.array([1.0, 2.0, 4.0, 8.0]), np.array([0.1, 0.4, 0.7, 0.99]), 0.5),
                                           Call(np.array([0.0, 1.0, 2.0]), np.array([0.2, 0.6, 1.0]), 0.5,
                                                log=False)])
    add("linflow.stats.power_law", lambda: [Call(np.array([1.0, 2.0, 4.0, 8.0]), np.array([3.0, 6.1, 11.8, 24.5]))])
    add("linflow.rates.tail_rate", lambda: [Call(times(60, 30.0), np.exp(-times(60, 30.0))),
                                            Call(times(60, 30.0), np.exp(-np.outer(times(60, 30.0), [1.0, 2.0])),
                                                 lo=1e-10, hi=1e-3)], missing_ok=True)

    # --- figure 1
    add("linflow.figure1.left", lambda: [Call(3, 0, dims=(2, 5, 5, 1))], **slow)
    add("linflow.figure1.gd", lambda: [Call("middle", ((3, 4),), 20, progress=False),
                                       Call("right", ((3, 4),), 20, eta=1e-4, save_every=5, progress=False)], **slow)

    # --- plots
    Pl = "linflow.plots."
    add(Pl + "color", lambda: [Call(3)])
    # NaN marks a save point a run did not reach: plotted data pass it through (not drawn)
    add(Pl + "drift", lambda: [Call(rng(7).normal(size=(4, 2, 2)))], propagates=True)
    add(Pl + "figure", lambda: [Call(), Call(2, 1, size=(6, 3), sharex=True)], examples=8)
    add(Pl + "gap", lambda: [Call(np.exp(-times())), Call(1 + np.exp(-times()), 1.0)], propagates=True)
    add(Pl + "imbalance_drift", lambda: [Call(times(), [np.exp(times())], ["a"])], examples=8)
    add(Pl + "loss_curves", lambda: [Call(times(), [np.exp(-times())], ["a"], bounds=[np.exp(-0.5 * times())])],
        examples=8)
    add(Pl + "spectrum", lambda: [Call([np.array([3.0, 2.0, 1.0])], ["a"])], examples=8)
    add(Pl + "spectrum_over_time", lambda: [Call(times(), rng(8).uniform(size=(5, 3)))], examples=8)
    add(Pl + "style", lambda: [Call()])
    add(Pl + "to_png", lambda: [Call(plots.figure()[0]), Call(plots.figure()[0], dpi=30)], examples=6)

    # --- widgets
    Wd = "linflow.widgets."
    add(Wd + "Slider", lambda: [Call("scale", [0.1, 0.2], "s", 0.2, "{:.1f}")])
    add(Wd + "Explorer", lambda: [Call(widgets.depth_compute, widgets.depth_plot,
                                       [widgets.Slider("depth", [2, 3])])], examples=6)
    add(Wd + "static_mode", lambda: [Call()])
    for name, call in (("depth", Call(2, 0.2, 1.0)), ("imbalance", Call(0.05, 1.0, 0.5)),
                       ("pl", Call(4.0, 1.0, 1.0)), ("preconditioner", Call(2, 0.5, 1.0))):
        add(Wd + f"{name}_compute", lambda call=call: [call], **slow)
        add(Wd + f"{name}_plot", lambda name=name, call=call: [
            Call(getattr(widgets, f"{name}_compute")(*call.args), theory_fig())], **slow)
        add(Wd + f"{name}_explorer", lambda: [Call()], examples=1)
    add(Wd + "width_compute", lambda: [Call(4, "fan_out", 5)], **slow)
    add(Wd + "width_plot", lambda: [Call(widgets.width_compute(4, "fan_out", 5), theory_fig())], **slow)
    add(Wd + "width_explorer", lambda: [Call()], examples=1)
    add(Wd + "inverse_bound", lambda: [Call(times(), 1.0, 0.5)])
    add(Wd + "rate_bound", lambda: [Call(times(), 1.0, 0.5, 1.0)])
    add(Wd + "observed_rate", lambda: [Call(times()[1:], np.exp(-times()[1:]))])
    add(Wd + "pl_ratios", lambda: [Call(squared(), 10), Call(squared(), 5, scale=0.5, power=1)])
    add(Wd + "regression_problem", lambda: [Call(6, 3, 2, 4.0)])
    add(Wd + "rescale", lambda: [Call(Ws(), 1, 2 * np.eye(4))])
    add(Wd + "weights", lambda: [Call((3, 4, 2), 0.5), Call((2, 2), 1.0, batch=(2,))])
    add(Wd + "T_spectrum", lambda: [Call(Ws())])
    Te = "linflow.widgets.theory_explorers."
    add("linflow.rates.asymptotic_rate", lambda: [Call(times(30, 20.0), np.exp(-times(30, 20.0)))])
    add(Te + "plot_loss_and_bounds", lambda: [Call(theory_fig().axes[0], times(), np.exp(-times()),
                                                   {"b": np.exp(-0.5 * times())})], examples=8)
    theory = {"two_layer": dict(t_end=1.0), "three_layer": dict(h=4, n=2, t_end=1.0),
              "depth": dict(L=3, t_end=1.0), "classification": dict(h=3, t_end=5.0),
              "lemma3": dict(h=3, samples=5)}
    for name, kw in theory.items():
        add(Te + f"{name}_compute", lambda kw=kw: [Call(**kw)], **slow)
        add(Te + f"{name}_draw", lambda name=name, kw=kw: [Call(_theory_data(name, **kw), theory_fig())], **slow)
    add(Te + "two_layer_explorer", lambda: [Call((0.0, 1.0))], examples=3)
    add(Te + "three_layer_explorer", lambda: [Call((4,), (1,))], examples=3)
    add(Te + "depth_explorer", lambda: [Call((2, 3), (0.3,))], examples=3)
    add(Te + "classification_explorer", lambda: [Call((0.5, 1.0))], examples=3)
    add(Te + "lemma3_explorer", lambda: [Call((1, 2, 3), (1,))], examples=3)
    add(Te + "markdown_table", lambda: [Call(["a", "b"], [[1, 2.5], ["x", 3e-9]])])
    return C


# --- files for the sweep's readers and writers ------------------------------------------------------

_TMP = {}


def _tmp(name):
    import tempfile
    from pathlib import Path

    if "dir" not in _TMP:
        _TMP["dir"] = tempfile.mkdtemp(prefix="linflow-fuzz-")
    return str(Path(_TMP["dir"]) / name)


def _rows():
    return [{"seed": 0, "ok": True, "final_loss": 0.1}, {"seed": 1, "ok": True, "final_loss": 0.2}]


def _rows_file():
    import json

    path = _tmp("rows.jsonl")
    with open(path, "w") as f:
        for r in _rows():
            f.write(json.dumps(r) + "\n")
    return path


# --- bad values ---------------------------------------------------------------------------------------

HUGE, TINY = 1e200, 1e-300


def _with_entry(a, value):
    a = np.array(a, dtype=np.float64, copy=True)
    if a.size:
        a.flat[a.size // 2] = value
    return a


def bad_values(v):
    """Bad replacements for the valid argument ``v``, by its kind: ``[(label, value, finite)]``.

    ``finite`` is False where the bad value holds NaN or inf (a non-finite result may then
    only come with a clear error, never silently from finite input).
    """
    common = [("None", None, True), ("str", "1", True)]
    if isinstance(v, (bool, np.bool_)):
        return common + [("int 2", 2, True), ("nan", np.nan, False)]
    if isinstance(v, (int, float, np.integer, np.floating)):
        return common + [
            ("nan", np.nan, False), ("inf", np.inf, False), ("-inf", -np.inf, False), ("huge", HUGE, True),
            ("-huge", -HUGE, True), ("tiny", TINY, True), ("zero", 0, True), ("-1", -1, True), ("2.5", 2.5, True),
            ("bool", True, True), ("array", np.ones(2), True), ("list", [1.0], True), ("int huge", 10**30, True),
        ]
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        a = v.astype(np.float64)
        return common + [
            ("nan entry", _with_entry(a, np.nan), False), ("inf entry", _with_entry(a, np.inf), False),
            ("huge entry", _with_entry(a, HUGE), True), ("huge", a * HUGE + HUGE, True),
            ("tiny", a * TINY, True), ("zeros", np.zeros_like(a), True), ("negated", -a, True),
            ("extra axis", a[None, ...], True), ("raveled", a.ravel() if a.ndim > 1 else a[:0], True),
            ("transposed", a.T if a.ndim > 1 else np.stack([a, a]), True), ("empty", a[..., :0], True),
            ("int dtype", np.ones(a.shape, dtype=np.int64), True), ("str dtype", a.astype(str), True),
            ("list", a.tolist(), True), ("scalar", 1.0, True), ("float32", a.astype(np.float32), True),
        ]
    if isinstance(v, (tuple, list)) and v and all(isinstance(x, np.ndarray) and x.ndim >= 2 for x in v):
        W = [x.astype(np.float64) for x in v]
        return common + [
            ("layer nan", (_with_entry(W[0], np.nan), *W[1:]), False),
            ("layer inf", (*W[:-1], _with_entry(W[-1], np.inf)), False),
            ("huge", tuple(x * HUGE for x in W), True), ("huge entry", (_with_entry(W[0], 1e160), *W[1:]), True),
            ("tiny", tuple(x * TINY for x in W), True), ("zeros", tuple(np.zeros_like(x) for x in W), True),
            ("one array", W[0], True), ("no layers", (), True), ("layer dropped", tuple(W[1:]) or (W[0][..., :0],), True),
            ("layer doubled", (*W, W[-1]), True), ("transposed", tuple(np.swapaxes(x, -1, -2) for x in W), True),
            ("int dtype", tuple(np.ones(x.shape, dtype=np.int64) for x in W), True),
            ("mixed dtype", (W[0].astype(np.float32), *W[1:]), True),
            ("batch mismatch", (W[0][None], *W[1:]), True), ("vector layer", (W[0][..., 0], *W[1:]), True),
            ("nested lists", tuple(x.tolist() for x in W), True), ("with None", (W[0], None), True),
        ]
    if isinstance(v, (tuple, list)):
        return common + [
            ("empty", type(v)(), True), ("nan inside", (*v[:-1], np.nan) if v else (np.nan,), False),
            ("-1 inside", (*v[:-1], -1) if v else (-1,), True), ("2.5 inside", (*v[:-1], 2.5) if v else (2.5,), True),
            ("str inside", (*v[:-1], "3") if v else ("3",), True), ("None inside", (*v[:-1], None) if v else (None,), True),
            ("huge inside", (*v[:-1], HUGE) if v else (HUGE,), True), ("nested", (v,), True), ("number", 3, True),
        ]
    if isinstance(v, str):
        # a path argument stays in the fuzz's temporary folder (a fuzzed writer may create it)
        unknown = _tmp("no-such-thing") if "/" in v else "no-such-thing"
        return common[:1] + [("int", 3, True), ("unknown", unknown, True), ("empty", "", True)]
    if isinstance(v, dict):
        return common + [("empty", {}, True), ("list", [v], True)]
    if isinstance(v, lf.losses.Loss):
        return common + [("array", np.ones((2, 2)), True), ("other shape", lf.losses.Squared(np.ones((5, 7))), True),
                         ("function", lambda W: 0.0, True)]
    if callable(v):
        return common + [("int", 3, True)]
    return common + [("int", 3, True)]
