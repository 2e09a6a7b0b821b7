r"""When is Delta* > 0?  P(Delta* > 0) for Gaussian three-layer networks, and the two-layer gap.

Question (a) of the course's chapter *Open problems at scale* (the Errata chapter's open
problem 6; Min, Vidal & Mallada 2023 conjecture that most random initializations give
:math:`\Delta^* > 0`, §4.2).  One point is one network: widths ``(n, h, h, m)`` (``L = 3``,
the sign of :func:`linflow.bounds.delta_star`) or ``(n, h, m)`` (``L = 2``, the sign of the gap
:math:`\underline\Delta` of :func:`linflow.bounds.spread_gap`), entries
:math:`\mathcal N(0, 1/h_{l-1})` (``fan_in``) or :math:`\mathcal N(0, 1/h_l)` (``fan_out``), the
middle layer (``L = 3``) or the first layer (``L = 2``) multiplied by ``scale`` (the bound is
homogeneous in a common scale of all layers, so only relative scales matter).  Nothing is
integrated (``t_end=None``): the quantities are those at initialization.

The grid is declared in two stages: a **pilot** of 100 networks in every cell
``(L, scheme, scale, n, m, h)``, h <= 128, and a **main** stage of 800 more networks in every
cell where the pilot's frequency lies in [0.01, 0.99], and in its neighbours on the h grid;
plus a few networks at h = 256 and 512 (n = m).  The main stage is a function of the pilot's
stored rows, so a rerun declares the same grid.

The column ``positive`` is the floating-point sign of ``value`` (``value > 0``).  For many
narrow three-layer networks :math:`\Delta^*` is exactly 0 and its computed value is round-off
of either sign, below ``1e-11`` in magnitude; the chapter counts a network as positive when
``value > TOL`` (``1e-10``), inside the empty band between that round-off and the smallest
genuinely positive values (above ``1e-7``).  The pilot chose the main stage's cells by the raw
sign.

    python -m studies.delta_positive [--client local|none|tcp://...] [--tiny] [--bench P]
"""
from __future__ import annotations

import os

import numpy as np

import linflow as lf

from . import _common

NAME = "delta_positive"
QUESTION = "P(Delta* > 0) for Gaussian three-layer initializations, and P(gap > 0) for two layers"
SCHEMES = ("fan_in", "fan_out")
SCALES = (0.5, 1.0, 2.0)
NM = (1, 2, 5, 10)
H = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
H_BIG = (256, 512)
PILOT, MAIN, BIG = 100, 800, 20
TRANSITION = (0.01, 0.99)
#: a network has Delta* > 0 (or a gap > 0) when ``value > TOL``: computed values of an exact 0 are
#: round-off below 1e-11 in magnitude (see the module's docstring)
TOL = 1e-10
SETTINGS = {"t_end": None}
MAX_BATCH = 512
GRID = {
    "L": [2, 3], "scheme": list(SCHEMES), "scale": list(SCALES), "n": list(NM), "m": list(NM), "h": list(H),
    "pilot": f"{PILOT} networks per cell (seeds 0..{PILOT - 1}), h <= 128",
    "main": f"{MAIN} more networks (seeds {PILOT}..{PILOT + MAIN - 1}) in each cell whose pilot frequency "
            f"lies in [{TRANSITION[0]}, {TRANSITION[1]}] and in its neighbours on the h grid",
    "big": f"{BIG} networks at h in {list(H_BIG)}, n = m, scale 1, L = 3, both schemes",
}
#: the parameters of a point (the rest of a row is computed from them)
POINT = ("L", "scheme", "scale", "n", "m", "h", "seed")
COLUMNS = ("L", "scheme", "scale", "n", "m", "h", "seed", "ok", "value", "positive")


def _dims(p):
    h = p["h"]
    return (p["n"], h, h, p["m"]) if p["L"] == 3 else (p["n"], h, p["m"])


_LOSSES = {}


def build(p):
    """One Gaussian network of the point's cell; its seed is the point itself."""
    if p["L"] not in (2, 3) or p["scheme"] not in SCHEMES:
        raise ValueError(f"delta_positive: L must be 2 or 3 and scheme one of {SCHEMES}; got {p}.")
    rng = _common.seed_of(p["L"], SCHEMES.index(p["scheme"]), round(100 * p["scale"]), p["n"], p["m"], p["h"],
                          p["seed"])
    Ws = list(lf.init.gaussian(_dims(p), p["scheme"], seed=rng))
    Ws[1 if p["L"] == 3 else 0] = Ws[1 if p["L"] == 3 else 0] * p["scale"]
    key = (p["n"], p["m"])
    if key not in _LOSSES:  # the loss is not used (nothing is integrated); one object per shape
        _LOSSES[key] = lf.losses.Squared(np.zeros(key))
    return tuple(Ws), _LOSSES[key]


def measure_batch(Ws0, loss, traj):
    """``value``: Delta* (L = 3) or the gap (L = 2) at initialization; ``positive``: value > 0."""
    if len(Ws0) == 3:
        v = lf.to_numpy(lf.bounds.delta_star(Ws0))
    else:
        v = lf.to_numpy(lf.bounds.spread_gap(Ws0)[2])
    return {"value": v, "positive": v > 0}


def _cells(L_values=(2, 3)):
    for L in L_values:
        for scheme in SCHEMES:
            for scale in SCALES:
                for n in NM:
                    for m in NM:
                        yield L, scheme, scale, n, m


def _points(L, scheme, scale, n, m, hs, seeds):
    return [dict(L=L, scheme=scheme, scale=scale, n=n, m=m, h=h, seed=s) for h in hs for s in seeds]


def pilot_groups(tiny=False):
    if tiny:
        return {"tiny_pilot": _points(3, "fan_in", 1.0, 2, 2, (2, 4, 8), range(8))
                + _points(2, "fan_out", 1.0, 2, 1, (2, 3), range(8))}
    return {f"L{L}_n{n}_m{m}": [q for sch in SCHEMES for sc in SCALES
                                for q in _points(L, sch, sc, n, m, H, range(PILOT))]
            for L in (2, 3) for n in NM for m in NM}


def transition_cells(df, lo=TRANSITION[0], hi=TRANSITION[1]):
    """Cells ``(L, scheme, scale, n, m, h)`` where the frequency is in [lo, hi], with their h-neighbours."""
    out = set()
    freq = df.groupby(["L", "scheme", "scale", "n", "m", "h"])["positive"].mean()
    for (L, sch, sc, n, m), s in freq.groupby(level=[0, 1, 2, 3, 4]):
        hs = [k[-1] for k in s.index]
        ps = s.to_numpy()
        for j, (h, pv) in enumerate(zip(hs, ps)):
            if lo <= pv <= hi:
                for i in (j - 1, j, j + 1):
                    if 0 <= i < len(hs):
                        out.add((L, sch, sc, n, m, hs[i]))
    return sorted(out, key=lambda c: (c[0], c[1], c[2], c[3], c[4], c[5]))


def groups(tiny=False, work=None):
    """The declared grid: the pilot, then the main stage chosen from the pilot's stored rows."""
    pilot = pilot_groups(tiny)
    first = 8 if tiny else PILOT  # the pilot's rows: its seeds, its h grid
    stored = [] if work is None else [r for r in _common.stored_rows(work)
                                      if r.get("seed", 0) < first and r.get("h") in H]
    out = dict(pilot)
    if not stored:  # the main stage is declared once the pilot is in
        return out
    import pandas as pd

    df = pd.DataFrame([{k: r.get(k) for k in COLUMNS} for r in stored if r.get("ok")])
    main_n = 8 if tiny else MAIN
    for c in transition_cells(df):
        L, sch, sc, n, m, h = c
        out.setdefault(f"L{L}_n{n}_m{m}_main", []).extend(
            _points(L, sch, sc, n, m, (h,), range(PILOT if not tiny else 8, (PILOT if not tiny else 8) + main_n)))
    if not tiny:
        out["big"] = [q for sch in SCHEMES for n in NM
                      for q in _points(3, sch, 1.0, n, n, H_BIG, range(BIG))]
    return out


def summary(df):
    """Counts for the manifest: networks in all and per L."""
    ok = df[df["ok"]]
    return {"networks": int(len(ok)), "networks_by_L": {str(k): int(v) for k, v in ok.groupby("L").size().items()}}


if __name__ == "__main__":
    _common.main(__import__(__name__))
