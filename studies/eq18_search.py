r"""Is (18) tight for deep networks?  lambda_min(T) / prod d~ on random unimodal weights, and a search.

Question (c) of the course's chapter *Open problems at scale* (the Errata chapter's open
problem 5).  Theorem 3 (18) says :math:`\lambda_{\min}(\mathcal T)\ge\prod_{i=1}^{L-1}\tilde d_{(i)}`
for unimodal weights; for ``L = 3`` the bound is attained (App. H), and Min, Vidal & Mallada
(2023) conjecture it is optimal for deeper networks too.  One point is one network of
:func:`studies._common.random_unimodal` (all widths ``k``, :math:`l^*` uniform, the core
layer's scale ``scale``); the row holds ``lam`` (:func:`linflow.lambda_min`), ``bound``
(:func:`linflow.bounds.unimodal`) and ``ratio = lam / bound``.  Nothing is integrated.

After the sweep, a local search (``scipy.optimize.minimize``, Nelder-Mead, on all the entries
of the weights, the objective :math:`\log(\lambda_{\min}/\prod\tilde d)` and ``+inf`` off the
unimodal set) starts from the smallest ratios of each depth and width and tries to push the
ratio below 1, which would contradict Theorem 3.  The smallest ratio found and its weights go
to ``eq18_search_instance.json``.

    python -m studies.eq18_search [--client local|none|tcp://...] [--tiny] [--bench P]
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

import linflow as lf
from linflow.bounds import HypothesisError

from . import _common

NAME = "eq18_search"
QUESTION = "smallest lambda_min(T) / prod d~ (Theorem 3, eq. 18) over random unimodal weights, and a local search"
DEPTHS, WIDTHS, SCALES = (4, 5, 6), (1, 2, 3), (0.01, 0.1, 1.0, 10.0)
SEEDS = 2800
SETTINGS = {"t_end": None}
MAX_BATCH = 1024
GRID = {"L": list(DEPTHS), "k (n = m = h)": list(WIDTHS), "scale": list(SCALES), "seed": f"0..{SEEDS - 1}",
        "D": "Q diag(d u) Q^T, d ~ U[0.2, 2], u ~ U[0.5, 1.5]^k; l* uniform on 1..L",
        "search": "Nelder-Mead from the smallest ratio of each (L, k), 3000 evaluations each"}
#: the parameters of a point (the rest of a row is computed from them)
POINT = ("L", "k", "scale", "seed")
COLUMNS = ("L", "k", "scale", "seed", "ok", "l_star", "lam", "bound", "ratio")
STARTS, EVALS = 1, 3000
#: points per group and round (a run covers every group early)
CHUNK = 1200
_LOSSES = {}


def build(p):
    """The point's random unimodal network (widths all ``k``)."""
    rng = _common.seed_of(2, p["L"], p["k"], round(1000 * p["scale"]), p["seed"])
    Ws, _ = _common.random_unimodal(rng, p["L"], p["k"], p["scale"])
    if p["k"] not in _LOSSES:  # not used: nothing is integrated
        _LOSSES[p["k"]] = lf.losses.Squared(np.zeros((p["k"], p["k"])))
    return tuple(Ws), _LOSSES[p["k"]]


def measure_batch(Ws0, loss, traj):
    lam = lf.to_numpy(lf.lambda_min(Ws0))
    bound = lf.to_numpy(lf.bounds.unimodal(Ws0))
    return {"l_star": np.asarray(lf.bounds.unimodal_indices(Ws0)), "lam": lam, "bound": bound,
            "ratio": lam / bound}


def groups(tiny=False, work=None):
    if tiny:
        return {"tiny": [dict(L=L, k=k, scale=1.0, seed=s) for L in (4,) for k in (1, 2) for s in range(4)]}
    return {f"L{L}_k{k}": [dict(L=L, k=k, scale=sc, seed=s) for s in range(SEEDS) for sc in SCALES]
            for L in DEPTHS for k in WIDTHS}


def ratio(Ws):
    """lambda_min(T) / prod d~ of one network; ``inf`` when it is not unimodal or the bound is 0."""
    try:
        b = float(lf.to_numpy(lf.bounds.unimodal(Ws)))
    except HypothesisError:
        return math.inf
    return float(lf.to_numpy(lf.lambda_min(Ws))) / b if b > 0 else math.inf


def search(Ws, evals=EVALS):
    """Nelder-Mead on the entries of ``Ws`` (scaled to unit norm) for the smallest :func:`ratio`."""
    from scipy.optimize import minimize

    shapes = [W.shape for W in Ws]
    x0 = np.concatenate([np.ravel(W) for W in Ws])
    x0 = x0 / np.linalg.norm(x0)  # the ratio is invariant under a common scale

    def unpack(x):
        out, i = [], 0
        for s in shapes:
            out.append(x[i:i + s[0] * s[1]].reshape(s))
            i += s[0] * s[1]
        return tuple(out)

    def f(x):
        r = ratio(unpack(x))
        return math.log(r) if math.isfinite(r) and r > 0 else math.inf

    res = minimize(f, x0, method="Nelder-Mead",
                   options={"maxfev": evals, "xatol": 1e-12, "fatol": 1e-14, "adaptive": True})
    best = unpack(res.x)
    return best, ratio(best), int(res.nfev)


def finish(df, out, tiny=False, evals=None):
    """The local search from the smallest ratios; writes ``eq18_search_instance.json``; returns its summary."""
    ok = df[df["ok"]]
    starts = ok.sort_values("ratio").groupby(["L", "k"]).head(1 if tiny else STARTS)
    results = []
    for _, r in starts.iterrows():
        p = {c: (r[c].item() if hasattr(r[c], "item") else r[c]) for c in ("L", "k", "scale", "seed")}
        Ws0, _loss = build(p)
        best, rb, nfev = search(Ws0, evals=evals or (200 if tiny else EVALS))
        results.append({"start": p, "start_ratio": float(r["ratio"]), "found_ratio": rb, "evaluations": nfev,
                        "l_star": int(lf.bounds.unimodal_index(best)), "weights": [W.tolist() for W in best]})
    best = min(results, key=lambda x: x["found_ratio"])
    with open(os.path.join(out, f"{NAME}_instance.json"), "w") as fh:
        json.dump({"smallest": best, "all": [{k: v for k, v in x.items() if k != "weights"} for x in results]},
                  fh, indent=1)
    return {"search": {"starts": len(results), "smallest_ratio_found": best["found_ratio"],
                       "smallest_ratio_sampled": float(ok["ratio"].min()), "below_one_by_more_than_1e-9": best["found_ratio"] < 1 - 1e-9,
                       "instance": f"{NAME}_instance.json"}}


def summary(df):
    ok = df[df["ok"]]
    return {"networks": int(len(ok)), "smallest_ratio": float(ok["ratio"].min())}


if __name__ == "__main__":
    _common.main(__import__(__name__))
