r"""The Explorer framework: one definition, two faces.

An :class:`Explorer` is

* a **pure compute function** ``compute(**params) -> data`` of the slider values (every
  number comes from :mod:`linflow`), and
* a **plot function** ``plot(data, fig)`` that draws ``data`` on a styled
  :class:`~linflow.plots.LinflowFigure` (through :mod:`linflow.plots`).

From the same two functions it builds

1. a **live face** (:meth:`Explorer.live`): ipywidgets sliders and an ``Output`` that
   re-runs compute + plot whenever a slider moves (JupyterLab, Binder, Colab);
2. a **kernel-free face** (:meth:`Explorer.static_html`): every frame of the slider grid
   computed in advance, rendered to PNG (base64) and shown with HTML
   ``<input type="range">`` sliders and a few lines of inline JavaScript that swap the image
   and show the current value. Stable classes for tests and CSS:
   ``div.linflow-explorer``, ``input.linflow-slider``, ``output.linflow-value``,
   ``img.linflow-frame``.

:meth:`Explorer.show` picks the face: the static one when the environment variable
``LINFLOW_STATIC`` is ``1`` (the book build sets it through the Sphinx extension
:mod:`linflow.widgets.sphinx`), the live one otherwise (``LINFLOW_STATIC=0`` forces it).
"""
from __future__ import annotations

import base64
import dataclasses
import functools
import html
import inspect
import itertools
import json
import os
import uuid
from typing import Any, Callable, Sequence

from .. import _validate as _v
from ..plots._style import figure, to_png

__all__ = ["Slider", "Explorer", "static_mode"]

#: most frames a static face may hold (the product of the slider lengths)
MAX_FRAMES = 64


@dataclasses.dataclass(frozen=True)
class Slider:
    """One parameter of an explorer: a name, its grid of values and how to show them.

    Attributes
    ----------
    name : str
        Keyword passed to ``compute``.
    values : sequence
        The grid (numbers or strings); the static face precomputes each of them.
    label : str
        Text next to the slider (default: ``name``).
    default : object
        Initial value (must be in ``values``; default: the middle one).
    fmt : str
        Format of the displayed value, e.g. ``"{:.2g}"``.
    """

    name: str
    values: Sequence[Any]
    label: str = ""
    default: Any = None
    fmt: str = "{}"

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"linflow: Slider name must be an identifier; got {self.name!r}.")
        if isinstance(self.values, (str, bytes)) or not hasattr(self.values, "__iter__"):
            raise TypeError(f"linflow: Slider {self.name!r} values must be a sequence; got {self.values!r}.")
        vals = tuple(self.values)
        if not vals:
            raise ValueError(f"linflow: Slider {self.name!r} needs at least one value.")
        object.__setattr__(self, "values", vals)
        if self.default is not None and not any(_same(v, self.default) for v in vals):
            raise ValueError(
                f"linflow: Slider {self.name!r}: default {self.default!r} is not one of {vals}."
            )

    @property
    def index(self):
        """Index of the default value."""
        return len(self.values) // 2 if self.default is None else self.values.index(self.default)

    def text(self, v):
        """The value as displayed."""
        try:
            return self.fmt.format(v)
        except (ValueError, TypeError):
            return str(v)


def check_figure(fig):
    """A matplotlib figure to draw a frame on; else a TypeError (every ``*_plot``/``*_draw``)."""
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"linflow: fig must be a matplotlib Figure (e.g. linflow.plots.figure()[0]); "
                        f"got {type(fig).__name__}.")
    return fig


def draws(compute):
    """Decorator of a ``draw(data, fig)``: ``data`` must be the dict that ``compute`` returns and
    ``fig`` a matplotlib figure; anything else is a clear TypeError/ValueError, not a KeyError."""
    def wrap(draw):
        @functools.wraps(draw)
        def checked(data, fig, *args, **kwargs):
            if not isinstance(data, dict):
                raise TypeError(f"linflow: data must be the dict that {compute} returns; got {type(data).__name__}.")
            check_figure(fig)
            try:
                return draw(data, fig, *args, **kwargs)
            except KeyError as exc:
                raise ValueError(f"linflow: data has no entry {exc}; pass the dict that {compute} returns.") from None
        return checked
    return wrap


# --- the parameters of a compute function ---------------------------------------------------
# An explorer's compute runs flows for slider values: each parameter is checked against the
# range the explorer is made for (a clear error, never a raw one, nor a flow that runs for hours).

def count(lo, hi):
    """Check of an integer parameter from ``lo`` to ``hi``."""
    def check(name, value):
        v = _v.integer(name, value)
        if not lo <= v <= hi:
            raise ValueError(f"linflow: {name} must be an integer from {lo} to {hi} (the explorer's range); "
                             f"got {value!r}.")
        return v
    return check


def number(lo, hi, *, above=False):
    """Check of a real parameter in ``[lo, hi]`` (``(lo, hi]`` if ``above``)."""
    def check(name, value):
        v = _v.real(name, value)
        if not ((v > lo if above else v >= lo) and v <= hi):
            span = f"{'(' if above else '['}{lo:g}, {hi:g}]"
            raise ValueError(f"linflow: {name} must be a number in {span} (the explorer's range); got {value!r}.")
        return v
    return check


def choice(*options):
    """Check of a parameter that is one of ``options``."""
    def check(name, value):
        if not (isinstance(value, str) and value in options):
            raise ValueError(f"linflow: {name} must be one of {options}; got {value!r}.")
        return value
    return check


def optional(check):
    """``check``, or None."""
    def maybe(name, value):
        return None if value is None else check(name, value)
    return maybe


def seed(name, value):
    """Check of a seed (an integer >= 0)."""
    return _v.integer(name, value, minimum=0)


def checked(**checks):
    """Decorator of a ``compute(**params)``: each named parameter passes its check (from
    :func:`count`, :func:`number`, :func:`choice`, :func:`optional`, :func:`seed`) before
    the call, so a cached compute sees hashable, converted values and bad ones get a clear error.
    The checks stay on the function as ``compute.checks`` (the explorers check their grids with them).
    """
    def wrap(compute):
        sig = inspect.signature(compute)

        @functools.wraps(compute)
        def run(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"linflow: {compute.__name__}: {exc}.") from None
            bound.apply_defaults()
            for k, check in checks.items():
                bound.arguments[k] = check(k, bound.arguments[k])
            return compute(*bound.args, **bound.kwargs)

        run.checks = checks
        return run
    return wrap


def grid_values(name, values, check, *, at_least=1):
    """The slider grid ``values`` of an explorer, each value passed through ``check``, as a tuple."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"linflow: {name} must be a sequence of slider values; got {type(values).__name__} "
                        f"{values!r}.")
    out = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))
    if len(out) < at_least:
        raise ValueError(f"linflow: {name} must hold at least {at_least} value(s); got {values!r}.")
    return out


def _same(a, b):
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare elementwise: not one of the grid values
        return False


def static_mode():
    """True when explorers should show their kernel-free face (``LINFLOW_STATIC=1``)."""
    return os.environ.get("LINFLOW_STATIC", "0").strip().lower() in ("1", "true", "yes")


class Explorer:
    """An interactive figure with a live (ipywidgets) and a kernel-free (HTML) face.

    Parameters
    ----------
    compute : callable
        ``compute(**params) -> data``; pure (same parameters, same data).
    plot : callable
        ``plot(data, fig) -> None``: draws on an empty styled figure.
    sliders : sequence of Slider
        The parameters; the static face holds one frame per combination.
    title : str
        Heading of the explorer.
    caption : str
        One line under the sliders (what to look for).
    size : (float, float), optional
        Figure size in inches.
    dpi : int
        Resolution of the static frames.
    """

    def __init__(self, compute: Callable, plot: Callable, sliders: Sequence[Slider], *,
                 title: str = "", caption: str = "", size=(7.0, 3.4), dpi: int = 80):
        for what, f in (("compute", compute), ("plot", plot)):
            if not callable(f):
                raise TypeError(f"linflow: {what} must be a function; got {type(f).__name__} {f!r}.")
        if isinstance(sliders, (str, bytes, Slider)) or not hasattr(sliders, "__iter__"):
            raise TypeError(f"linflow: sliders must be a sequence of Slider; got {type(sliders).__name__}.")
        self.compute = compute
        self.plot = plot
        self.sliders = tuple(sliders)
        for s in self.sliders:
            if not isinstance(s, Slider):
                raise TypeError(f"linflow: sliders must be a sequence of Slider; got an item {s!r}.")
        names = [s.name for s in self.sliders]
        if len(set(names)) != len(names):
            raise ValueError(f"linflow: slider names must be distinct; got {names}.")
        if not self.sliders:
            raise ValueError("linflow: an Explorer needs at least one Slider.")
        self.title = title
        self.caption = caption
        self.size = size
        self.dpi = _v.integer("dpi", dpi, minimum=1)

    # --- the shared path: parameters -> data -> figure -------------------------------------
    @property
    def defaults(self):
        """Default parameters ``{name: value}``."""
        return {s.name: s.values[s.index] for s in self.sliders}

    def grid(self):
        """All parameter combinations of the static face, as dicts (C order)."""
        names = [s.name for s in self.sliders]
        for combo in itertools.product(*(s.values for s in self.sliders)):
            yield dict(zip(names, combo))

    @property
    def n_frames(self):
        n = 1
        for s in self.sliders:
            n *= len(s.values)
        return n

    def figure(self, **params):
        """Compute and draw the frame for ``params`` (missing ones take their defaults)."""
        p = {**self.defaults, **params}
        unknown = set(p) - set(self.defaults)
        if unknown:
            raise TypeError(f"linflow: unknown explorer parameter(s) {sorted(unknown)}; "
                            f"expected {sorted(self.defaults)}.")
        data = self.compute(**p)
        fig, _ = figure(size=self.size, layout="fixed")
        fig.clear()
        self.plot(data, fig)
        w, h = fig.get_size_inches()
        fig.subplots_adjust(left=0.8 / w, right=1 - 0.15 / w, bottom=0.55 / h, top=1 - 0.35 / h, wspace=0.32)
        return fig

    def frames(self):
        """PNG bytes of every frame, keyed by the slider indices joined with ``"-"``."""
        if self.n_frames > MAX_FRAMES:
            raise ValueError(f"linflow: {self.n_frames} frames exceed MAX_FRAMES={MAX_FRAMES}; "
                             "use coarser slider grids for the static face.")
        out = {}
        idx = [range(len(s.values)) for s in self.sliders]
        for key, params in zip(itertools.product(*idx), self.grid()):
            fig = self.figure(**params)
            out["-".join(map(str, key))] = to_png(fig, dpi=self.dpi)
        return out

    # --- face 1: kernel-free HTML ---------------------------------------------------------
    def static_html(self):
        """The kernel-free face: precomputed frames, range sliders and inline JS."""
        uid = "lfx-" + uuid.uuid4().hex[:10]
        frames = {k: "data:image/png;base64," + base64.b64encode(v).decode("ascii")
                  for k, v in self.frames().items()}
        rows = []
        for j, s in enumerate(self.sliders):
            texts = [s.text(v) for v in s.values]
            rows.append(
                f'<div class="linflow-control"><label for="{uid}-{j}">{html.escape(s.label or s.name)}'
                f'</label><input type="range" class="linflow-slider" id="{uid}-{j}" '
                f'name="{html.escape(s.name)}" min="0" max="{len(s.values) - 1}" step="1" '
                f'value="{s.index}" data-values=\'{html.escape(json.dumps(texts))}\' '
                f'aria-valuetext="{html.escape(texts[s.index])}">'
                f'<output class="linflow-value" for="{uid}-{j}">{html.escape(texts[s.index])}'
                f'</output></div>'
            )
        first = "-".join(str(s.index) for s in self.sliders)
        title = f'<div class="linflow-title">{html.escape(self.title)}</div>' if self.title else ""
        cap = (f'<div class="linflow-note">{html.escape(self.caption)}</div>' if self.caption else "")
        note = ('<div class="linflow-note">Precomputed frames; run this page as a notebook in '
                'Jupyter for the live version.</div>')
        return (
            f'<div class="linflow-explorer" id="{uid}" data-frames="{self.n_frames}">{title}'
            + "".join(rows) + cap
            + f'<img class="linflow-frame" alt="{html.escape(self.title or "explorer frame")}" '
            f'data-key="{first}" src="{frames[first]}">{note}'
            f'<script type="application/json" class="linflow-frames">{json.dumps(frames)}</script>'
            "<script>(function(){"
            f'var root=document.getElementById("{uid}");'
            'var frames=JSON.parse(root.querySelector("script.linflow-frames").textContent);'
            'var img=root.querySelector("img.linflow-frame");'
            'var inputs=root.querySelectorAll("input.linflow-slider");'
            "function update(){var key=[];inputs.forEach(function(el){"
            "var i=parseInt(el.value,10);key.push(i);var vals=JSON.parse(el.dataset.values);"
            "el.setAttribute('aria-valuetext',vals[i]);"
            "var out=el.parentNode.querySelector('output.linflow-value');if(out){out.textContent=vals[i];}});"
            "key=key.join('-');if(frames[key]){img.src=frames[key];img.dataset.key=key;}}"
            "inputs.forEach(function(el){el.addEventListener('input',update);el.addEventListener('change',update);});"
            "})();</script></div>"
        )

    # --- face 2: live ipywidgets ------------------------------------------------------------
    def live(self):
        """The live face: ipywidgets sliders + an Output redrawn on every change."""
        import ipywidgets as W
        from IPython.display import display

        controls = {}
        for s in self.sliders:
            options = [(s.text(v), v) for v in s.values]
            controls[s.name] = W.SelectionSlider(
                options=options, value=s.values[s.index], description=s.label or s.name,
                continuous_update=False, style={"description_width": "initial"},
                layout=W.Layout(width="32em"),
            )
        out = W.Output()

        def redraw(**params):
            with out:
                out.clear_output(wait=True)
                display(self.figure(**params))

        W.interactive_output(redraw, controls)
        head = [W.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else []
        cap = [W.HTML(f"<i>{html.escape(self.caption)}</i>")] if self.caption else []
        box = W.VBox(head + list(controls.values()) + cap + [out])
        box.add_class("linflow-explorer-live")
        return box

    def show(self):
        """Display the face that fits: static when ``LINFLOW_STATIC=1``, live otherwise."""
        from IPython.display import HTML, display

        if static_mode():
            display(HTML(self.static_html()))
        else:
            display(self.live())

    def _repr_mimebundle_(self, include=None, exclude=None):
        # an explorer at the end of a cell shows itself like show() does
        if static_mode():
            return {"text/html": self.static_html()}
        return self.live()._repr_mimebundle_(include=include, exclude=exclude)

    def __repr__(self):
        names = ", ".join(f"{s.name}[{len(s.values)}]" for s in self.sliders)
        return f"Explorer({self.title!r}, sliders: {names}, {self.n_frames} frames)"
