r"""Generic plotters: loss curves with bound overlays, imbalance drift, spectra.

Each plotter takes host data (anything :func:`numpy.asarray` accepts; device arrays are
moved with :func:`linflow.to_numpy`), draws on ``ax`` (a new styled figure when omitted)
and returns the axes. They compute nothing beyond what is needed to draw: the numbers come
from :mod:`linflow`.
"""
from __future__ import annotations

import numpy as np

from .._validate import real
from ..backend import to_numpy
from ._style import color, figure, style

__all__ = [
    "loss_curves",
    "imbalance_drift",
    "spectrum",
    "spectrum_over_time",
    "gap",
    "drift",
]

_TINY = 1e-300


def _host(x, name="data"):
    """Numbers as a float64 NumPy array (NaN marks a point not reached, and is not drawn)."""
    try:
        a = np.asarray(to_numpy(x))
    except (TypeError, ValueError):
        a = np.asarray(None)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"linflow: {name} must be numbers (an array or nested lists); got {type(x).__name__} "
                        f"{x!r}"[:300] + ".")
    return a.astype(np.float64)


def _ax(ax):
    if ax is None:
        _, ax = figure()
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"linflow: ax must be matplotlib Axes (or None for a new figure); got {type(ax).__name__}.")
    return ax


def _pair(t, y, what):
    """Times and values of one curve, of one length."""
    t, y = np.ravel(t), np.ravel(y)
    if t.shape != y.shape:
        raise ValueError(f"linflow: {what} has {y.size} values for {t.size} times.")
    return t, y


def _labels(labels, k, name="labels"):
    """``k`` legend entries (None: no legend entry); a clear error for anything else."""
    if labels is None:
        return [None] * k
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, (list, tuple)) or not all(v is None or isinstance(v, str) for v in labels):
        raise TypeError(f"linflow: {name} must be a list of strings; got {labels!r}.")
    if len(labels) < k:
        raise ValueError(f"linflow: {name} has {len(labels)} entries for {k} curves.")
    return list(labels)


def _times(t, k):
    """One time array per curve: ``t`` shared, or a list of ``k`` arrays."""
    if isinstance(t, (list, tuple)) and t and np.ndim(t[0]) > 0:
        if len(t) < k:
            raise ValueError(f"linflow: t has {len(t)} time arrays for {k} curves.")
        return [_host(v, "t") for v in t]
    return [_host(t, "t")] * k


def gap(values, f_star=0.0):
    r"""Optimality gap :math:`f - f^*`, clipped at a tiny positive number for log axes.

    NaN entries (save points a run did not reach) stay NaN: matplotlib leaves them out.
    """
    return np.maximum(_host(values, "values") - real("f_star", f_star), _TINY)


def loss_curves(t, losses, labels=None, *, f_star=0.0, bounds=None, bound_labels=None, ax=None,
                xlabel="flow time $t$", ylabel=r"$\mathcal{L}(t)-\mathcal{L}^*$", title=None,
                logy=True, markers=False):
    r"""Loss gaps :math:`\mathcal L(t)-\mathcal L^*` on a log axis, with optional bounds.

    Parameters
    ----------
    t : array (S,) or list of arrays
        Times (one array shared by all curves, or one per curve).
    losses : array (S,) or (S, k), or list of arrays
        One curve per column / list entry.
    labels : list of str, optional
        Legend entries of the curves.
    f_star : float or sequence of float
        Optimal value(s) subtracted before plotting.
    bounds : array or list of arrays, optional
        Upper bounds on the gap (already gaps, e.g. from ``lf.bounds.loss_curve``); drawn
        dashed in the colour of the curve with the same index.
    bound_labels : list of str, optional
        Legend entries of the bounds.
    """
    ax = _ax(ax)
    curves = _as_list(losses)
    if not curves:
        raise ValueError("linflow: loss_curves needs at least one curve; got none.")
    ts = _times(t, len(curves))
    fs = list(f_star) if isinstance(f_star, (list, tuple, np.ndarray)) else [f_star] * len(curves)
    if len(fs) < len(curves):
        raise ValueError(f"linflow: f_star has {len(fs)} values for {len(curves)} curves.")
    labs = _labels(labels, len(curves))
    with style():
        for i, (ti, li) in enumerate(zip(ts, curves)):
            ax.plot(*_pair(ti, gap(li, fs[i]), f"losses[{i}]"), color=color(i), label=labs[i],
                    marker="o" if markers else None, ms=3)
        if bounds is not None:
            bs = _as_list(bounds)
            blabs = _labels(bound_labels, len(bs), "bound_labels")
            for i, b in enumerate(bs):
                ti = ts[i] if i < len(ts) else ts[0]
                ax.plot(*_pair(ti, np.maximum(b, _TINY), f"bounds[{i}]"), color=color(i), ls="--", lw=1.4,
                        label=blabs[i] if i < len(blabs) else None)
        _finish(ax, xlabel, ylabel, title, logy=logy)
    return ax


def drift(series):
    r"""Frobenius distance :math:`\|D(t)-D(0)\|_F` of a saved series ``(S, ..., h, h)``.

    Returns an array ``(S, ...)``; used for the imbalance diagnostics of a
    :class:`~linflow.Trajectory` (``traj.diagnostics["imbalance_1"]``).
    """
    D = _host(series, "series")
    if D.ndim < 3:
        raise ValueError(f"linflow: drift needs a saved series of shape (S, ..., h, h); got shape {D.shape}.")
    diff = D - D[:1]
    with np.errstate(invalid="ignore"):  # NaN (points not reached) stays NaN
        peak = np.nanmax(np.abs(diff)) if diff.size and not np.all(np.isnan(diff)) else 0.0
    peak = peak if np.isfinite(peak) and peak > 0 else 1.0  # scaled: no overflow in the squares
    return peak * np.sqrt(np.sum((diff / peak) ** 2, axis=(-2, -1)))


def imbalance_drift(t, drifts, labels=None, *, ax=None, xlabel="flow time $t$",
                    ylabel=r"$\|D_l(t)-D_l(0)\|_F$", title=None, floor=1e-17):
    r"""Drift of the imbalance along runs, on a log axis.

    ``drifts`` are arrays ``(S,)`` (from :func:`drift`); exact zeros are drawn at ``floor``.
    """
    ax = _ax(ax)
    curves = _as_list(drifts)
    ts = _times(t, len(curves))
    labs = _labels(labels, len(curves))
    with style():
        for i, (ti, di) in enumerate(zip(ts, curves)):
            ax.plot(*_pair(ti, np.maximum(di, real("floor", floor)), f"drifts[{i}]"), color=color(i),
                    label=labs[i])
        _finish(ax, xlabel, ylabel, title, logy=True)
    return ax


def spectrum(values, labels=None, *, ax=None, xlabel="index $i$", ylabel="eigenvalue",
             title=None, logy=False):
    r"""Eigenvalues or singular values (decreasing), one stem series per entry of ``values``."""
    ax = _ax(ax)
    series = _as_list(values)
    if not series:
        raise ValueError("linflow: spectrum needs at least one series of values; got none.")
    labs = _labels(labels, len(series))
    k = len(series)
    with style():
        for j, v in enumerate(series):
            v = np.sort(_host(v).ravel())[::-1]
            x = np.arange(1, v.size + 1) + (j - (k - 1) / 2) * 0.8 / max(k, 1)
            ax.vlines(x, 0 if not logy else _TINY, v, color=color(j), lw=2)
            ax.plot(x, v, "o", color=color(j), label=labs[j], ms=5)
        ax.set_xticks(np.arange(1, max(np.size(s) for s in series) + 1))
        _finish(ax, xlabel, ylabel, title, logy=logy)
    return ax


def spectrum_over_time(t, values, *, ax=None, label="$\\lambda_i$", xlabel="flow time $t$",
                       ylabel="eigenvalue", title=None, logy=False, highlight_min=True):
    r"""Eigenvalue (or singular-value) paths ``values`` of shape ``(S, k)`` against time."""
    ax = _ax(ax)
    t, V = _host(t, "t"), _host(values, "values")
    if t.ndim != 1 or not t.size or V.ndim < 1 or V.shape[0] != t.size or V.size == 0:
        raise ValueError(f"linflow: spectrum_over_time needs t of shape (S,), S >= 1, and values of shape (S, k); "
                         f"got {t.shape} and {V.shape}.")
    V = V.reshape(t.size, -1)
    with style():
        for i in range(V.shape[1]):
            ax.plot(_host(t), V[:, i], color=color(6), lw=1.0, alpha=0.8,
                    label=label if i == 0 else None)
        if highlight_min:
            ax.plot(_host(t), V.min(axis=1), color=color(0), lw=2.2, label="smallest")
        _finish(ax, xlabel, ylabel, title, logy=logy)
    return ax


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return [_host(v) for v in x]
    a = _host(x)
    if a.ndim == 0:
        raise ValueError(f"linflow: expected an array of values (S,) or (S, k); got the number {float(a)!r}.")
    if a.ndim == 1:
        return [a]
    return [a[:, i] for i in range(a.reshape(a.shape[0], -1).shape[1])]


def _finish(ax, xlabel, ylabel, title, logy):
    if logy:
        ax.set_yscale("log")
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    if any(labels):
        ax.legend(loc="best")
