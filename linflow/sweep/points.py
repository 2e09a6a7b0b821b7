"""Points and keys: the grid of a sweep, its run settings in one normal form, and the resume key.

A row is found again by its *key*, a hash of the point and of the run settings.  The
settings are first brought to one normal form (``flow_settings``): a keyword passed at
its default value (``method="dopri5"``, ``atol=1e-10``, ...) is the same run as leaving it
out, so it gives the same key; numbers are floats or ints whatever type came.  The default
``rtol`` depends on the dtype of the network (``linflow.flow.api.default_rtol``: 1e-8 in
float64, 1.19e-5 in float32), so ``rtol`` is brought to its normal form per point
(``for_dtype``): ``rtol=None`` and an ``rtol`` equal to the default of the point's dtype
are one run and one key (in float64 the keys are those of the stores written before).
``check_flow_settings`` validates them before anything runs, with the messages of
:func:`linflow.gradient_flow`.
"""
from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import numbers

import numpy as np

from .. import _validate as v
from ..backend import to_numpy
from ..flow import gradient_flow
from ..flow.api import DEFAULT_RTOL, METHODS, _save_times, _savers, default_rtol

__all__ = ["grid", "point_key"]

#: gradient_flow's keywords a sweep passes on, with their defaults (``rtol=None``: the dtype's default)
FLOW_DEFAULTS = {
    k: p.default for k, p in inspect.signature(gradient_flow).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in ("throw", "progress")
}
#: the default rtol of each floating dtype a network may have, by value
DTYPE_RTOLS = {default_rtol(np.dtype(d)): d for d in ("float32", "float64")}
#: the settings every row stores even at their defaults
STORED = ("method", "rtol", "atol")
_FLOATS = ("rtol", "atol", "dt", "loss_tol")
_INTS = ("max_steps", "check_every")


def grid(**axes):
    """Every combination of the given parameter values, as a list of dicts (last axis fastest).

    >>> grid(width=[2, 4], seed=range(2))
    [{'width': 2, 'seed': 0}, {'width': 2, 'seed': 1}, {'width': 4, 'seed': 0}, {'width': 4, 'seed': 1}]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(
                f"linflow: grid axis {name!r} must be a sequence of values; got {values!r}. "
                f"Wrap a single value in a list: {name}=[{values!r}]."
            )
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[k]) for k in names))]


def plain(v):
    """A JSON-friendly copy of ``v`` (NumPy scalars and arrays become Python numbers and lists)."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if v is None or isinstance(v, str):
        return v
    if hasattr(v, "shape"):
        a = np.asarray(to_numpy(v))
        return a.item() if a.ndim == 0 else a.tolist()
    return str(v)


def _leaves(v, leaf):
    """``v`` with ``leaf`` applied to every value that is not a list or a dict."""
    if isinstance(v, list):
        return [_leaves(x, leaf) for x in v]
    if isinstance(v, dict):
        return {k: _leaves(x, leaf) for k, x in v.items()}
    return leaf(v)


def json_value(v):
    """``v`` with NaN and infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no such numbers)."""
    return _leaves(v, lambda x: repr(x) if isinstance(x, float) and not math.isfinite(x) else x)


def from_json_value(v):
    """The inverse of :func:`json_value`."""
    return _leaves(v, lambda x: float(x) if isinstance(x, str) and x in ("nan", "inf", "-inf") else x)


def point_key(point, settings=None):
    """A stable 16-hex-digit hash of a point and the run settings (the resume key)."""
    blob = json.dumps({"point": plain(point), "settings": plain(settings)}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _normal(name, value):
    """One flow setting in its normal form (numbers as float/int, method lower-case, sequences as lists)."""
    if name == "method" and isinstance(value, str):
        return value.lower()
    if name in _FLOATS and isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    if (name in _INTS and isinstance(value, numbers.Integral)
            and not isinstance(value, (bool, np.bool_))):
        return int(value)
    return plain(value)


def flow_settings(flow_kwargs):
    """The flow keywords of a sweep in normal form, those at their default value left out.

    An unknown keyword is a ``TypeError`` that lists the known ones.
    """
    out = {}
    for name in sorted(flow_kwargs):
        if name not in FLOW_DEFAULTS:
            raise TypeError(
                f"linflow: sweep.run got the unknown keyword {name!r}; the flow settings it passes on to "
                f"gradient_flow are {', '.join(sorted(FLOW_DEFAULTS))}."
            )
        value = _normal(name, flow_kwargs[name])
        if value != _normal(name, FLOW_DEFAULTS[name]):
            out[name] = value
    return out


def rtol_needs_dtype(flow):
    """Whether the key of ``flow`` (from ``flow_settings``) depends on the dtype: an explicit
    ``rtol`` that is the default of some dtype (1e-8 of float64, 1.19e-5 of float32)."""
    return flow.get("rtol") in DTYPE_RTOLS


def for_dtype(flow, dtype):
    """``flow`` (from ``flow_settings``) in the normal form of a network of ``dtype``: an ``rtol``
    equal to that dtype's default is left out, like ``rtol=None`` (``dtype=None``: float64)."""
    name = "float64" if dtype is None else str(np.dtype(dtype))
    if "rtol" in flow and DTYPE_RTOLS.get(flow["rtol"]) == name:
        return {k: val for k, val in flow.items() if k != "rtol"}
    return flow


def stored_settings(t_end, flow, tag, dtype=None):
    """The run settings every row stores: ``t_end``, ``method``, ``rtol``, ``atol``, ``tag``, other flow keywords.

    ``flow`` is the output of ``flow_settings``; ``rtol`` is the one the flow uses for a
    network of ``dtype`` (without an explicit ``rtol``: ``default_rtol``;
    ``dtype=None``: float64).  The result is what a row read back from a JSON Lines file holds.
    """
    out = {"t_end": t_end}
    for name in STORED:
        if name == "rtol":
            out[name] = flow.get("rtol", DEFAULT_RTOL if dtype is None else default_rtol(np.dtype(dtype)))
            continue
        out[name] = flow.get(name, _normal(name, FLOW_DEFAULTS[name]))
    out["tag"] = tag
    out.update((k, val) for k, val in sorted(flow.items()) if k not in out)
    return json.loads(json.dumps(json_value(plain(out))))


def check_flow_settings(t_end, flow_kwargs):
    """Refuse settings :func:`linflow.gradient_flow` would refuse, before any point runs.

    The same checks and messages as the flow itself, so an invalid ``rtol`` (or ``dt``,
    ``t_eval``, ``method``, ...) is one clear error instead of a failed row for every point.
    """
    from ..flow.solvers import Gauss

    kw = dict(FLOW_DEFAULTS)
    kw.update(flow_kwargs)
    if t_end is not None:
        t_end = v.positive("t_end", t_end)
    if kw["rtol"] is not None:
        v.positive("rtol", kw["rtol"])
    v.nonnegative("atol", kw["atol"])
    max_steps = v.integer("max_steps", kw["max_steps"], minimum=1)
    v.integer("check_every", kw["check_every"], minimum=1)
    method = kw["method"]
    if isinstance(method, str):
        if method.lower() not in METHODS:
            raise ValueError(f"linflow: unknown method {method!r}; expected one of {METHODS}.")
    elif not (hasattr(method, "step") and hasattr(method, "adaptive")):
        raise TypeError(f"linflow: method must be one of {METHODS} or a solver object; got {method!r}.")
    if kw["dt"] is not None:
        dt = v.positive("dt", kw["dt"])
        fixed = isinstance(method, str) and method.lower() != "dopri5"
        if fixed and t_end is not None:
            from ..flow.api import _check_step_budget

            _check_step_budget(Gauss(1 if method.lower() == "midpoint" else 2), dt, t_end, max_steps,
                               default=False)
    if kw["loss_tol"] is not None:
        v.nonnegative("loss_tol", kw["loss_tol"])
    if t_end is not None:
        _save_times(kw["t_eval"], t_end, 101)
    _savers(None, kw["save"], kw["diagnostics"])
