r"""The one figure style of the course.

Every figure of the book and of the explorers is drawn through this module, so they all
look the same:

* a colour cycle from the Okabe–Ito palette (colour-blind safe) without black and yellow,
  whose mid-tones read on the light and on the dark theme;
* figures with an opaque white face, so a PNG stays legible when the site is dark;
* labelled axes with units (flow time :math:`t` is dimensionless; gradient-descent
  time is :math:`t = k\eta`), a legend whenever more than one curve is drawn;
* loss plots on a logarithmic axis, where an exponential rate is a straight line.

Figures are :class:`LinflowFigure` objects (a :class:`matplotlib.figure.Figure` that
knows how to show itself as PNG), created without :mod:`matplotlib.pyplot`. They display
whatever the matplotlib backend is (``MPLBACKEND=Agg`` in the build included) and never
twice.
"""
from __future__ import annotations

import contextlib
import io

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import numpy as np

from .._validate import integer, positive

__all__ = [
    "COLORS",
    "RC",
    "LinflowFigure",
    "MAX_WIDTH",
    "figure",
    "color",
    "style",
    "to_png",
]

#: Okabe–Ito colours (blue, vermillion, bluish green, reddish purple, orange, sky blue, grey).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F7F7F")

#: matplotlib rcParams of the style.
RC = {
    "axes.prop_cycle": mpl.cycler(color=list(COLORS)),
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "figure.constrained_layout.use": True,
}

#: default size of one panel, inches
PANEL = (5.2, 3.6)

#: widest figure, inches.  The site shows a figure at its natural width (100 dpi) or
#: shrunk to the text column: about 360 px on a 390 px phone.  At 5.6 in (560 px) and the
#: 11 pt ticks of :data:`RC` a tick label is still about 10 px tall there.
MAX_WIDTH = 5.6


def color(i):
    """The ``i``-th colour of the cycle (wraps around)."""
    return COLORS[integer("i", i) % len(COLORS)]


@contextlib.contextmanager
def style():
    """Context manager applying :data:`RC` (used by every plotter)."""
    with mpl.rc_context(RC):
        yield


def to_png(fig, dpi=None):
    """PNG bytes of a figure (white face, tight)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"linflow: fig must be a matplotlib Figure; got {type(fig).__name__}.")
    if dpi is not None:
        dpi = positive("dpi", dpi)
        if not 10 <= dpi <= 2000:
            raise ValueError(f"linflow: dpi must be between 10 and 2000; got {dpi!r}.")
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi or fig.dpi, facecolor="white")
    return buf.getvalue()


class LinflowFigure(Figure):
    """A matplotlib figure that displays itself as PNG in Jupyter (any backend)."""

    def _repr_png_(self):
        return to_png(self)

    def _repr_html_(self):  # None: let the PNG be used (no duplicate HTML)
        return None


def _layout(ncols, nrows, size):
    """Grid and size that stay readable on a phone: a row of panels becomes a column.

    ``size`` is what the caller asked for (the whole row); each panel keeps its share of
    it, and the figure is then scaled down, keeping its aspect, to :data:`MAX_WIDTH`.
    """
    if size is None:
        size = (PANEL[0] * ncols, PANEL[1] * nrows)
    w, h = float(size[0]), float(size[1])
    if nrows == 1 and ncols > 1:
        w, h, nrows, ncols = w / ncols, h * ncols, ncols, 1
    if w > MAX_WIDTH:
        w, h = MAX_WIDTH, h * MAX_WIDTH / w
    return ncols, nrows, (w, h)


def figure(ncols=1, nrows=1, *, size=None, sharex=False, sharey=False, layout="constrained"):
    """A new styled figure and its axes (a single axes when ``ncols = nrows = 1``).

    With the default (constrained) layout a single row of panels is laid out as a column
    (the axes are returned in the same order), and no figure is wider than
    :data:`MAX_WIDTH`, so that tick labels stay legible on a phone.  ``"fixed"`` keeps the
    grid and size as given (the explorers' frames).

    Parameters
    ----------
    ncols, nrows : int
        Grid of panels (``ncols`` panels in one row are stacked).
    size : (float, float), optional
        Figure size in inches for the grid as asked; default ``PANEL`` per panel.
    sharex, sharey : bool
        Passed to :meth:`matplotlib.figure.Figure.subplots`.
    layout : {"constrained", "fixed"}
        ``"fixed"`` uses fixed margins (no layout engine: several times faster, used for
        the precomputed frames of the explorers) and keeps the grid as given.

    Returns
    -------
    (LinflowFigure, axes)
    """
    ncols, nrows = (integer(name, v, minimum=1) for name, v in (("ncols", ncols), ("nrows", nrows)))
    if ncols * nrows > 100:
        raise ValueError(f"linflow: figure takes at most 100 panels; got ncols={ncols}, nrows={nrows}.")
    if size is not None:
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise TypeError(f"linflow: size must be (width, height) in inches; got {size!r}.")
        size = tuple(positive(f"size[{i}]", v) for i, v in enumerate(size))
        if max(size) > 1000:
            raise ValueError(f"linflow: size must be at most 1000 inches a side; got {size!r}.")
    for name, v in (("sharex", sharex), ("sharey", sharey)):
        if not (isinstance(v, (bool, np.bool_)) or v in ("all", "row", "col", "none")):
            raise ValueError(f"linflow: {name} must be True, False, 'all', 'row', 'col' or 'none'; got {v!r}.")
    if layout not in ("constrained", "fixed"):
        raise ValueError(f"linflow: layout must be 'constrained' or 'fixed'; got {layout!r}.")
    if layout == "constrained":
        ncols, nrows, size = _layout(ncols, nrows, size)
    elif size is None:
        size = (PANEL[0] * ncols, PANEL[1] * nrows)
    with style():
        fig = LinflowFigure(figsize=size, layout="constrained" if layout == "constrained" else "none")
        FigureCanvasAgg(fig)
        if layout != "constrained":
            w, h = size
            fig.subplots_adjust(left=0.8 / w, right=1 - 0.15 / w, bottom=0.55 / h, top=1 - 0.35 / h, wspace=0.32)
        axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=True)
    return fig, axes
