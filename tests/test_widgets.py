"""linflow.widgets: the Explorer framework and the chapters' explorers, without a browser.

The callbacks (compute + plot) are tested directly; the static face is checked for the
structure the browser tests and the CSS rely on; the live face is built (not rendered).
"""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import linflow as lf
from linflow.widgets import Explorer, Slider

PNG = b"\x89PNG\r\n\x1a\n"


def _toy():
    calls = []

    def compute(a, b="x"):
        calls.append((a, b))
        return {"t": np.linspace(0, 1, 5), "y": np.exp(-a * np.linspace(0, 1, 5)), "b": b}

    def plot(data, fig):
        ax = fig.subplots()
        lf.plots.loss_curves(data["t"], data["y"], [f"b={data['b']}"], ax=ax)

    ex = Explorer(compute, plot, [Slider("a", (1.0, 2.0, 3.0), "rate", fmt="{:.1f}"),
                                  Slider("b", ("x", "y"), default="y")], title="toy", caption="look")
    return ex, calls


def test_slider_validation():
    with pytest.raises(ValueError, match="identifier"):
        Slider("not a name", (1, 2))
    with pytest.raises(ValueError, match="at least one"):
        Slider("a", ())
    with pytest.raises(ValueError, match="default"):
        Slider("a", (1, 2), default=3)
    assert Slider("a", (1, 2, 3)).index == 1
    assert Slider("a", (0.25,), fmt="{:.1f}").text(0.25) == "0.2"


def test_explorer_validation():
    with pytest.raises(ValueError, match="distinct"):
        Explorer(lambda a: a, lambda d, f: None, [Slider("a", (1,)), Slider("a", (2,))])
    with pytest.raises(ValueError, match="at least one"):
        Explorer(lambda: 0, lambda d, f: None, [])
    ex, _ = _toy()
    with pytest.raises(TypeError, match="unknown explorer parameter"):
        ex.figure(c=1)


def test_grid_defaults_and_figure():
    ex, calls = _toy()
    assert ex.defaults == {"a": 2.0, "b": "y"}
    assert ex.n_frames == 6 and len(list(ex.grid())) == 6
    fig = ex.figure(a=1.0)
    assert calls[-1] == (1.0, "y")
    assert fig._repr_png_().startswith(PNG)
    assert fig.axes[0].get_yscale() == "log"


def test_static_face_structure_and_frames():
    ex, calls = _toy()
    html = ex.static_html()
    assert html.count('class="linflow-explorer"') == 1
    assert len(re.findall(r'<input type="range" class="linflow-slider"', html)) == 2
    assert html.count('<img class="linflow-frame"') == 1
    assert html.count('class="linflow-value"') == 2
    frames = json.loads(re.search(r'<script type="application/json" class="linflow-frames">(.*?)</script>', html).group(1))
    assert sorted(frames) == sorted(f"{i}-{j}" for i in range(3) for j in range(2))
    assert len(set(frames.values())) == 6  # every frame differs
    for uri in frames.values():
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(PNG)
    # the initial image is the default frame, and the slider shows the default value
    first = re.search(r'data-key="([0-9-]+)" src="([^"]+)"', html)
    assert first.group(1) == "1-1" and frames["1-1"] == first.group(2)
    assert 'value="1"' in html and ">2.0</output>" in html
    # the JS swaps the image on input and updates the value display
    assert "addEventListener('input'" in html and "img.src=frames[key]" in html
    assert {c for c in calls} == {(a, b) for a in (1.0, 2.0, 3.0) for b in ("x", "y")}


def test_two_static_faces_do_not_collide():
    ex, _ = _toy()
    ids = {re.search(r'id="(lfx-[0-9a-f]+)"', ex.static_html()).group(1) for _ in range(2)}
    assert len(ids) == 2


def test_frame_limit():
    ex = Explorer(lambda a, b: None, lambda d, f: None,
                  [Slider("a", tuple(range(10))), Slider("b", tuple(range(10)))])
    with pytest.raises(ValueError, match="MAX_FRAMES"):
        ex.frames()


def test_show_picks_the_face(monkeypatch):
    ex, _ = _toy()
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setenv("LINFLOW_STATIC", "1")
    assert lf.widgets.static_mode()
    ex.show()
    assert "linflow-explorer" in shown[-1].data
    assert "text/html" in ex._repr_mimebundle_()
    monkeypatch.setenv("LINFLOW_STATIC", "0")
    assert not lf.widgets.static_mode()
    ex.show()
    import ipywidgets as W

    assert isinstance(shown[-1], W.VBox)


def test_live_face_widgets(monkeypatch):
    import ipywidgets as W

    ex, calls = _toy()
    box = ex.live()
    sliders = [w for w in box.children if isinstance(w, W.SelectionSlider)]
    assert [s.description for s in sliders] == ["rate", "b"]
    assert [s.value for s in sliders] == [2.0, "y"]
    assert sliders[0].label == "2.0"  # the value is shown in the slider's own format
    n = len(calls)
    sliders[0].value = 3.0  # the callback recomputes
    assert calls[n:] and calls[-1] == (3.0, "y")


def test_sphinx_extension_sets_static_mode(monkeypatch):
    monkeypatch.delenv("LINFLOW_STATIC", raising=False)
    from linflow.widgets import sphinx as ext

    meta = ext.setup(app=None)
    assert meta["parallel_read_safe"]
    import os

    assert os.environ["LINFLOW_STATIC"] == "1"


# --- the chapters' explorers: compute (pure, host data) and plot --------------------------

CHAPTER = [
    ("depth", dict(depth=2, scale=0.2), ("ref_gap", "deep_gap", "deep_sv")),
    ("pl", dict(kappa=10.0, distance=0.3), ("gap", "bound")),
    ("preconditioner", dict(depth=2, scale=0.5), ("gap", "lam", "bound")),
    ("imbalance", dict(step=0.04), ("gd_gap", "gf_gap", "gd_drift", "gf_drift")),
    ("width", dict(width=8, scheme="fan_in"), ("delta_star",)),
]


@pytest.mark.parametrize("name,params,keys", CHAPTER, ids=[c[0] for c in CHAPTER])
def test_chapter_explorer_callbacks(name, params, keys):
    compute = getattr(lf.widgets, f"{name}_compute")
    data = compute(**params)
    for k in keys:
        assert isinstance(data[k], np.ndarray) and np.all(np.isfinite(data[k])), k
    assert compute(**params) is data or all(np.array_equal(compute(**params)[k], data[k]) for k in keys)
    ex = getattr(lf.widgets, f"{name}_explorer")()
    assert isinstance(ex, Explorer) and ex.n_frames <= 16
    assert set(params) <= set(ex.defaults)
    fig = ex.figure(**params)
    assert fig._repr_png_().startswith(PNG)
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel()


def test_width_explorer_matches_delta_star():
    """The at-scale explorer's samples are lf.bounds.delta_star of the seeded networks."""
    data = lf.widgets.width_compute(width=8, scheme="fan_in", n_samples=5)
    Ws = lf.init.gaussian((5, 8, 8, 1), "fan_in", batch=(5,), seed=8)
    assert np.allclose(data["delta_star"], lf.to_numpy(lf.bounds.delta_star(Ws)), rtol=1e-12)


def test_depth_explorer_physics():
    d = lf.widgets.depth_compute(depth=2, scale=0.2)
    assert d["deep_gap"][-1] < 1e-3 * d["deep_gap"][0]  # converges
    # plateau: the deep network is slower at the start than plain gradient flow on f
    i = np.searchsorted(d["t"], 1.0)
    assert d["deep_gap"][i] > d["ref_gap"][i]


def test_pl_bound_holds():
    d = lf.widgets.pl_compute(kappa=30.0, distance=3.0)
    assert np.all(d["gap"] <= d["bound"] * (1 + 1e-6) + 1e-12)


def test_preconditioner_bound_holds():
    d = lf.widgets.preconditioner_compute(depth=3, scale=0.5)
    assert d["alpha"] == pytest.approx(d["lam"].min())
    assert np.all(d["gap"] <= d["bound"] * (1 + 1e-6) + 1e-12)


def test_imbalance_gd_drifts_gf_does_not():
    d = lf.widgets.imbalance_compute(step=0.04)
    assert d["gd_drift"][-1] > 1e3 * max(d["gf_drift"][-1], 1e-14)
    d2 = lf.widgets.imbalance_compute(step=0.02)
    assert d2["gd_drift"][-1] < d["gd_drift"][-1]  # smaller step, smaller drift


def test_data_helpers():
    f = lf.widgets.regression_problem(30, 3, 2, 10.0, seed=0)
    assert float(f.K) / float(f.mu) == pytest.approx(10.0)
    r = lf.widgets.pl_ratios(f, 50, seed=0)
    assert r.min() >= float(f.gamma) * (1 - 1e-9)
    t = np.linspace(0, 1, 3)
    np.testing.assert_allclose(lf.widgets.rate_bound(t, 2.0, 0.5, 2.0), 2.0 * np.exp(-t))
    np.testing.assert_allclose(lf.widgets.inverse_bound(t, 2.0, 1.0), 2.0 / (1 + 2.0 * t))
    Ws = lf.init.gaussian((2, 3, 2), "fan_in", seed=0)
    Vs = lf.widgets.rescale(Ws, 1, np.diag([2.0, 1.0, 0.5]))
    np.testing.assert_allclose(lf.to_numpy(lf.product(Vs)), lf.to_numpy(lf.product(Ws)), atol=1e-12)
    spec = lf.widgets.T_spectrum(Ws)
    assert spec.shape == (4,) and spec[0] == pytest.approx(float(lf.lambda_min(Ws)))
    assert lf.widgets.observed_rate(t, np.exp(-3 * t)) == pytest.approx(3.0)


def test_sphinx_hook_skips_shadowed_submodules():
    from linflow.widgets.sphinx import skip_member

    assert skip_member(None, "module", "linflow.bounds.two_layer", None, False, []) is True
    assert skip_member(None, "module", "linflow.bounds.deep", None, False, []) is None
    assert skip_member(None, "function", "linflow.bounds.two_layer", None, False, []) is None


def test_sphinx_hook_drops_duplicate_scripts():
    from sphinx.builders.html._assets import _JavaScript

    from linflow.widgets.sphinx import dedupe_scripts

    ctx = {"script_files": [_JavaScript(None, body="const A = 1"), _JavaScript("a.js"),
                            _JavaScript("", body="const A = 1"), _JavaScript("a.js", **{"async": "async"})]}
    dedupe_scripts(None, "p", "page.html", ctx, None)
    assert [(j.filename or "", j.attributes.get("body")) for j in ctx["script_files"]] == [
        ("", "const A = 1"), ("a.js", None), ("a.js", None)]


def test_sphinx_hook_keeps_autoapi_pages():
    from types import SimpleNamespace

    from linflow.widgets.sphinx import keep_autoapi_pages

    cfg = SimpleNamespace(autoapi_root="book/autoapi",
                          exclude_patterns=["_build/*", "book/autoapi/linflow/index.rst", "book/other.md"])
    keep_autoapi_pages(None, cfg)
    assert cfg.exclude_patterns == ["_build/*", "book/other.md"]
