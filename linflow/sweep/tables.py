"""Sweep results as tables: a pandas DataFrame, CSV, JSON, and a summary by group.

:func:`to_frame` turns rows (a list of dicts, e.g. what :func:`~linflow.sweep.run`
returns) into a ``pandas.DataFrame``; :func:`read_frame` reads a results store, JSON Lines
or Parquet, into one in a single call.  The frame has one column per field in order of
first appearance, then ``fingerprint``, then the ``settings`` dict spread into columns
``settings.t_end``, ``settings.method``, ... (one value per row, so a frame can be
filtered by them); a missing value is ``None`` (``NaN`` in a numeric column).  A JSON Lines store and a Parquet store of the same
rows give equal frames.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from .. import _validate as _v
from .points import json_value, plain
from .store import read_rows

__all__ = ["to_frame", "read_frame", "write_csv", "write_json", "summarize"]


def _pandas():
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - a dependency of linflow
        raise ImportError("linflow: sweep results as a DataFrame need pandas (pip install pandas).") from exc
    return pandas


def to_frame(rows):
    """The rows of a sweep as a ``pandas.DataFrame`` (one row per dict, ``settings`` spread into columns).

    >>> to_frame([{"seed": 0, "ok": True, "settings": {"t_end": 1.0}}, {"seed": 1, "ok": False}])
       seed     ok  settings.t_end
    0     0   True             1.0
    1     1  False             NaN
    """
    pd = _pandas()
    flat = []
    for r in _rows("to_frame", rows):
        f = {k: v for k, v in r.items() if k != "settings"}
        if isinstance(r.get("settings"), dict):
            f.update((f"settings.{k}", v) for k, v in r["settings"].items())
        flat.append(f)
    cols = _columns(flat)
    last = [c for c in cols if c == "fingerprint"] + [c for c in cols if c.startswith("settings.")]
    cols = [c for c in cols if c not in last] + last
    return pd.DataFrame.from_records([[f.get(c) for c in cols] for f in flat], columns=cols)


def _rows(fn, rows):
    """``rows`` as a list of dicts; a clear TypeError for anything else."""
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"linflow: {fn} takes rows, a list of dicts; got {type(rows).__name__} {rows!r}."[:300])
    rows = list(rows)
    for r in rows:
        if not isinstance(r, dict):
            raise TypeError(f"linflow: {fn} takes a list of dicts (rows); got an item of type {type(r).__name__}.")
    return rows


def read_frame(path, format=None):
    """The rows of a results store (JSON Lines file or ``.parquet`` folder) as a ``pandas.DataFrame``.

    ``to_frame(read_rows(path))``: the reading rule of :func:`~linflow.sweep.read_rows`
    applies (one row per key).  A missing store is a ``FileNotFoundError``.
    """
    path = _v.path("path", path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"linflow: no results store at {path!r}.")
    return to_frame(read_rows(path, format))


def _columns(rows):
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def write_csv(rows, path):
    """Write rows (list of dicts) as CSV, columns in order of first appearance; no pandas needed.

    Lists and dicts are written as JSON text; missing values as empty cells.
    """
    import csv

    rows, path = _rows("write_csv", rows), _v.path("path", path)
    cols = _columns(rows)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            out = []
            for c in cols:
                v = plain(r.get(c))
                out.append("" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v)
            w.writerow(out)
    return path


def write_json(rows, path):
    """Write rows as one JSON list (NaN and inf as strings)."""
    rows, path = _rows("write_json", rows), _v.path("path", path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump([json_value(plain(r)) for r in rows], fh, indent=1)
    return path


def summarize(rows, by, value):
    """Group rows by column ``by`` and give count, failures and quantiles of ``value`` per group.

    Returns a list of dicts ``{by, n, failed, min, q25, median, q75, max, mean}`` (failed
    rows and missing values are left out of the statistics).  A group with no value left
    (every row failed) has NaN statistics, and its ``n`` and ``failed`` say why.  A ``value``
    that no row has is a ``ValueError`` (a misspelt column), as is a value that is not a number.
    """
    rows, by, value = _rows("summarize", rows), _v.name("by", by), _v.name("value", value)
    if rows and not any(value in r for r in rows):
        raise ValueError(f"linflow: no row has the column value={value!r}; the rows have {_columns(rows)}."[:400])
    out = {}
    for r in rows:
        g = r.get(by)
        try:
            out.setdefault(g, []).append(r)
        except TypeError:
            raise TypeError(f"linflow: the column by={by!r} must hold values that can be grouped; got {g!r}.") from None
    table = []
    for g, rs in out.items():
        picked = [r[value] for r in rs if r.get("ok") and r.get(value) is not None]
        try:
            vals = np.array(picked, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                f"linflow: summarize needs numbers in the column {value!r}; got {picked!r}."[:300]) from None
        if vals.ndim != 1:
            raise TypeError(
                f"linflow: summarize needs one number per row in the column {value!r}; got {picked!r}."[:300])
        q = np.quantile(vals, [0, 0.25, 0.5, 0.75, 1.0]) if vals.size else [math.nan] * 5
        table.append({by: g, "n": len(rs), "failed": sum(not r.get("ok") for r in rs),
                      "min": float(q[0]), "q25": float(q[1]), "median": float(q[2]),
                      "q75": float(q[3]), "max": float(q[4]),
                      "mean": float(vals.mean()) if vals.size else math.nan})
    return table

