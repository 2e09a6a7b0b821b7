"""The explorers and experiment helpers of the theory chapters (linflow.widgets.theory_explorers).

Compute functions are tested without a browser or a kernel: shapes, that every bound they
report is a valid bound on the trajectory they computed, and that the explorers build.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from linflow import rates
from linflow.widgets import theory_explorers as tx


def test_asymptotic_rate_recovers_an_exponential():
    t = np.linspace(0, 10, 201)
    assert rates.asymptotic_rate(t, 3.0 * np.exp(-2.5 * t), lo=1e-10, hi=1e-2) == pytest.approx(2.5, rel=1e-9)
    # too few samples in the window: falls back to the tail; nothing usable: nan
    assert rates.asymptotic_rate(t, np.exp(-0.1 * t)) == pytest.approx(0.1, rel=1e-9)
    with pytest.raises(ValueError, match="no decay rate to measure"):  # two samples: no rate (issue 22: no silent NaN)
        rates.asymptotic_rate(t[:2], [1.0, 0.5])
    assert tx.fitted_rate(t, np.exp(-4.0 * t)) == pytest.approx(4.0, rel=1e-9)


def test_markdown_table_formats_cells():
    md = tx.markdown_table(["a", "b"], [["x", 1.234567], [None, float("nan")]])
    lines = md.splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "|---|---|"
    assert "1.235" in lines[2] and lines[3] == "| n/a | n/a |"


def test_two_layer_compute_bounds_hold():
    d = tx.two_layer_compute(lam=1.0, t_end=3.0)
    assert d["t"].shape == d["loss"].shape == d["bound_alpha2"].shape
    assert d["alpha2"] >= d["gap"] - 1e-12 >= 0
    assert np.all(d["loss"] <= d["bound_alpha2"] * (1 + 1e-6) + 1e-14)


def test_three_layer_compute_delta_star_below_lambda_min():
    d = tx.three_layer_compute(h=8, n=2)
    assert d["delta_star"] <= np.min(d["lambda_min"]) + 1e-9
    assert np.all(d["loss"] <= d["bound"] * (1 + 1e-6) + 1e-14)


def test_depth_compute_bound_holds():
    d = tx.depth_compute(L=3, eps=0.5, t_end=1.0)
    ok = np.isfinite(d["loss"])
    assert np.all(d["loss"][ok] <= d["bound"][ok] * (1 + 1e-5) + 1e-13)


def test_classification_compute_theorem4():
    d = tx.classification_compute(std=1.0, t_end=20.0)
    assert d["gamma"] > 0 and d["alpha"] >= 0
    assert np.all(d["loss"] <= d["bound"] * (1 + 1e-6) + 1e-12)


def test_lemma3_compute_counts_printed_violations_only_for_rectangular():
    sq = tx.lemma3_compute(n=2, m=2, samples=100)
    rect = tx.lemma3_compute(n=3, m=1, samples=100)
    assert sq["violations_corrected"] == rect["violations_corrected"] == 0
    assert sq["violations_printed"] == 0 and rect["violations_printed"] > 0


def test_relu_probe_diagonal_conserved_offdiagonal_not():
    r = tx.relu_balance_probe(steps=500)
    assert r["diag_drift"][-1] < 1e-2 * r["offdiag_drift"][-1]


def test_figure1_rows_with_synthetic_data():
    left = {"fan_in": np.array([14.0, 15.0, 16.0])}
    run = {"widths": (100, 200), "k": np.arange(5.0), "loss": np.exp(-np.arange(5.0)),
           "bound": np.ones(5), "delta_star": 3.0}
    gd = {"eta": 0.5, "gamma": 2.0, "runs": [run]}
    rows = tx.figure1_rows(left, gd, gd, medians={"middle": [3.5]})
    assert rows[0][0] == "left, Fan_in" and "3/3" in rows[0][4]
    assert rows[1][2] == "317.95" and "median of draws: 3.5" in rows[1][3]
    assert "paper: solid 109" in rows[2][4]


@pytest.mark.parametrize("make", [tx.two_layer_explorer, tx.three_layer_explorer, tx.depth_explorer,
                                  tx.classification_explorer, tx.lemma3_explorer])
def test_explorers_build(make):
    from linflow.widgets._core import MAX_FRAMES, Explorer

    e = make()
    assert isinstance(e, Explorer)
    assert 1 < e.n_frames <= MAX_FRAMES
    assert set(e.defaults) == {s.name for s in e.sliders}


def test_one_explorer_frame_renders():
    fig = tx.lemma3_explorer().figure(n=2, m=1)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel()
