r"""Presentation: the course's one figure style and its generic plotters.

>>> import linflow as lf
>>> fig, ax = lf.plots.figure()
>>> _ = lf.plots.loss_curves([0.0, 1.0, 2.0], [1.0, 0.1, 0.01], ["run"], ax=ax)
>>> ax.get_yscale()
'log'
"""
from ._plotters import drift, gap, imbalance_drift, loss_curves, spectrum, spectrum_over_time
from ._style import COLORS, MAX_WIDTH, RC, LinflowFigure, color, figure, style, to_png

__all__ = [
    "COLORS",
    "RC",
    "LinflowFigure",
    "MAX_WIDTH",
    "color",
    "drift",
    "figure",
    "gap",
    "imbalance_drift",
    "loss_curves",
    "spectrum",
    "spectrum_over_time",
    "style",
    "to_png",
]
