"""linflow.plots: one style, labelled axes, log-scale loss plots, figures that display themselves."""
from __future__ import annotations

import numpy as np
import pytest

import linflow as lf

PNG = b"\x89PNG\r\n\x1a\n"


def test_figure_is_styled_and_shows_itself_as_png():
    fig, ax = lf.plots.figure()
    assert isinstance(fig, lf.plots.LinflowFigure)
    ax.plot([0, 1], [0, 1])
    assert fig._repr_png_().startswith(PNG)
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # opaque white: legible on the dark theme
    assert [c.lower() for c in lf.plots.COLORS] == [lf.plots.color(i).lower() for i in range(len(lf.plots.COLORS))]
    assert lf.plots.color(len(lf.plots.COLORS)) == lf.plots.COLORS[0]


def test_figure_grid_and_fixed_layout():
    fig, axes = lf.plots.figure(2, 1, layout="fixed")
    assert len(axes) == 2
    assert fig.get_layout_engine() is None


def test_loss_curves_log_axis_labels_legend_and_bounds():
    t = np.linspace(0, 2, 11)
    losses = np.stack([np.exp(-t), np.exp(-2 * t)], axis=1) + 0.5
    ax = lf.plots.loss_curves(t, losses, ["a", "b"], f_star=0.5, bounds=[np.exp(-0.5 * t)], bound_labels=["bound"])
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel()
    labels = [h.get_text() for h in ax.get_legend().get_texts()]
    assert labels == ["a", "b", "bound"]
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), np.exp(-t))  # f* subtracted
    assert lines[2].get_linestyle() == "--" and lines[2].get_color() == lines[0].get_color()


def test_loss_curves_per_curve_times_and_zero_gap():
    ax = lf.plots.loss_curves([np.arange(3.0), np.arange(5.0)], [np.zeros(3), np.ones(5)], ["x", "y"])
    y0 = ax.get_lines()[0].get_ydata()
    assert np.all(y0 > 0)  # zeros are clipped for the log axis, not dropped


def test_drift_and_imbalance_drift():
    D = np.zeros((4, 3, 3))
    D[2] += 1e-3
    d = lf.plots.drift(D)
    np.testing.assert_allclose(d, [0, 0, 3e-3, 0])
    ax = lf.plots.imbalance_drift(np.arange(4.0), [d], ["GD"])
    assert ax.get_yscale() == "log"
    assert np.all(ax.get_lines()[0].get_ydata() > 0)


def test_spectrum_plots():
    ax = lf.plots.spectrum([np.array([1.0, 3.0, 2.0]), np.array([0.5, 0.1])], ["A", "B"])
    pts = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(pts, [3.0, 2.0, 1.0])  # decreasing, the book's convention
    ax = lf.plots.spectrum_over_time(np.arange(3.0), np.array([[1.0, 2.0], [1.5, 0.5], [2.0, 0.1]]))
    np.testing.assert_allclose(ax.get_lines()[-1].get_ydata(), [1.0, 0.5, 0.1])  # the smallest, highlighted


def test_plotters_accept_a_trajectory():
    loss = lf.losses.Squared(np.diag([2.0, 1.0]))
    Ws = lf.init.gaussian((2, 3, 2), "fan_in", seed=0)
    run = lf.gradient_flow(Ws, loss, 1.0, t_eval=np.linspace(0, 1, 5), diagnostics=("imbalance",)).to_numpy()
    ax = lf.plots.loss_curves(run.t, run.loss, ["GF"])
    lf.plots.imbalance_drift(run.t, [lf.plots.drift(run.diagnostics["imbalance_1"])], ["GF"])
    assert len(ax.get_lines()) == 1


@pytest.mark.parametrize("bad", [None])
def test_labels_optional(bad):
    ax = lf.plots.loss_curves(np.arange(3.0), np.ones(3), bad)
    assert ax.get_legend() is None


def test_a_row_of_panels_becomes_a_column_no_wider_than_a_phone_allows():
    # at 100 dpi and MAX_WIDTH inches, the figure is shrunk to a ~360 px phone column by at
    # most 360 / (100 * MAX_WIDTH); an 11 pt tick label must stay >= 9 px there
    fig, axes = lf.plots.figure(3, size=(14.5, 4.0))
    assert len(axes) == 3
    boxes = [ax.get_position() for ax in axes]
    assert all(abs(b.x0 - boxes[0].x0) < 0.05 for b in boxes)      # one column
    assert boxes[0].y0 > boxes[1].y0 > boxes[2].y0                  # in the given order
    w, h = fig.get_size_inches()
    assert w <= lf.plots.MAX_WIDTH + 1e-9 and h > w
    tick_pt = float(lf.plots.RC["xtick.labelsize"])
    assert tick_pt * 100 / 72 * 360 / (100 * w) >= 9.0
    fig, ax = lf.plots.figure(size=(9.0, 4.0))                     # one wide panel: scaled
    assert tuple(fig.get_size_inches()) == pytest.approx((lf.plots.MAX_WIDTH, 4.0 * lf.plots.MAX_WIDTH / 9.0))
