"""Figure 1 data (linflow.figure1): Delta* box-plot samples and the GD panels.

The full left panel (100 draws per scheme, seed=0) gives medians 45.5 (NTK, paper's c scaling),
14.9 (fan-in), 91.4 (fan-out); here a smaller sample keeps the test fast.
"""
from __future__ import annotations

import numpy as np
import pytest

import linflow as lf
import linflow.figure1 as F


@pytest.fixture(scope="module")
def left_small():
    return F.left(n_samples=12, seed=0, ntk_scaling="none")


def test_left_panel_all_positive_and_medians(left_small):
    assert set(left_small) == {"ntk", "fan_in", "fan_out"}
    for scheme, d in left_small.items():
        assert isinstance(d, np.ndarray) and d.shape == (12,)
        assert np.all(d > 0), scheme  # Theorem 2 guarantees exponential convergence for every draw
    c = 1 / np.sqrt(1 * 200 * 200)
    assert 30 < np.median(left_small["ntk"]) * c < 65  # App. A's stated scaling (paper's box ~ 24)
    assert 11 < np.median(left_small["fan_in"]) < 20  # paper ~ 15.5
    assert 65 < np.median(left_small["fan_out"]) < 130  # paper ~ 100


def test_left_panel_ntk_conventions_and_seeding(left_small):
    small = dict(n_samples=4, seed=0, dims=(5, 20, 20, 1), schemes=("ntk",))
    none = F.left(ntk_scaling="none", **small)["ntk"]
    paper = F.left(ntk_scaling="paper", **small)["ntk"]
    exact = F.left(ntk_scaling="exact", **small)["ntk"]
    np.testing.assert_allclose(paper, none / np.sqrt(400), rtol=1e-14)
    np.testing.assert_allclose(exact, none / 400, rtol=1e-14)
    np.testing.assert_array_equal(F.left(ntk_scaling="none", **small)["ntk"], none)
    # the samples are delta_star of the documented draws
    Ws = lf.init.gaussian((5, 20, 20, 1), "ntk", batch=(4,), seed=0)
    np.testing.assert_allclose(none, lf.bounds.delta_star(Ws), rtol=1e-14)
    with pytest.raises(ValueError, match="ntk_scaling"):
        F.left(ntk_scaling="sqrt")
    with pytest.raises(ValueError, match="three layers"):
        F.left(dims=(5, 20, 1))


@pytest.mark.parametrize("panel", ["middle", "right"])
def test_gd_panels_below_bound(panel):
    out = F.gd(panel, widths=((20, 40), (40, 60)), n_steps=400, save_every=50, progress=False)
    assert out["panel"] == panel and out["gamma"] == 2.0 and out["eta"] == 5e-6
    for run in out["runs"]:
        assert run["delta_star"] > 0
        assert run["k"][0] == 0 and run["k"][-1] == 400 and run["loss"].shape == run["k"].shape
        assert run["bound"][0] == pytest.approx(run["L0"])
        assert np.all(run["loss"] <= run["bound"] * (1 + 1e-6))
        assert run["loss"][-1] < run["loss"][0]
        assert run["status"] == int(lf.Status.DONE)


def test_gd_bad_panel():
    with pytest.raises(ValueError, match="panel"):
        F.gd("left")

