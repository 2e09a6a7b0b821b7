r"""Presentation: explorers with a live (ipywidgets) and a kernel-free (HTML) face.

>>> import linflow as lf
>>> ex = lf.widgets.Explorer(lambda a: {"a": a}, lambda d, fig: fig.subplots().plot([0, d["a"]]),
...                          [lf.widgets.Slider("a", (1, 2))])
>>> ex.n_frames
2
"""
from ._core import Explorer, Slider, static_mode
from ._data import T_spectrum, inverse_bound, observed_rate, pl_ratios, rate_bound, regression_problem, rescale, weights
from .explorers import (
    depth_compute,
    depth_explorer,
    depth_plot,
    imbalance_compute,
    imbalance_explorer,
    imbalance_plot,
    pl_compute,
    pl_explorer,
    pl_plot,
    preconditioner_compute,
    preconditioner_explorer,
    preconditioner_plot,
    width_compute,
    width_explorer,
    width_plot,
)

__all__ = [
    "Explorer",
    "Slider",
    "static_mode",
    "depth_compute", "depth_explorer", "depth_plot",
    "imbalance_compute", "imbalance_explorer", "imbalance_plot",
    "inverse_bound", "observed_rate", "pl_compute", "pl_explorer", "pl_plot", "pl_ratios",
    "preconditioner_compute", "preconditioner_explorer", "preconditioner_plot",
    "rate_bound", "regression_problem", "rescale", "weights", "T_spectrum",
    "width_compute", "width_explorer", "width_plot",
]
