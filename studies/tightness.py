r"""Tightness: the measured asymptotic rate over the paper's bounds, on integrated flows.

Question (b) of the course's chapter *Open problems at scale* (the Errata chapter's open
problem 7).  Each point is one gradient flow of :math:`\tfrac12\|Y - W_1\cdots W_L\|_F^2`
(``lf.losses.Squared``, :math:`\gamma = 2`, :math:`\mathcal L^* = 0`) from

* ``family="gaussian"``: ``L = 3``, widths ``(n, h, h, 1)``, ``fan_out`` entries times
  ``scale``; the bound is :math:`\alpha = \Delta^*` (Corollary 1);
* ``family="unimodal"``: ``L = 2..6``, all widths ``k`` (``n = m = h = k``), unimodal weights
  (:func:`linflow.init.unimodal`) with index :math:`l^*` drawn uniformly, imbalances
  :math:`D_l = \pm Q\,\mathrm{diag}(d_l u)\,Q^\top` (``Q`` a random orthogonal frame, a level
  :math:`d_l` uniform on [0.2, 2], ``u`` uniform on [0.5, 1.5]^k; for ``L = 2`` and
  ``D="identity"`` :math:`D_1 = \pm d_1I`) and the core layer's scale ``scale``; the bound is
  :math:`\alpha = \prod\tilde d_{(i)}` (Theorem 3 (18), Corollary 2).

The target :math:`Y_0` is standard Gaussian.  Both are then **rescaled so that**
:math:`\alpha = 1`: weights times :math:`c = \alpha^{-1/(2L-2)}`, target times :math:`c^L`.
This maps the flow onto itself with time multiplied by :math:`c^{-(2L-2)}` (the chapter proves
it), so every ratio is unchanged and one horizon fits all points: the bound promises
:math:`\mathcal L(t)\le e^{-2t}\mathcal L(0)`, and the flows run to ``t = 14``.

Measured: ``rate``, the least-squares slope of :math:`-\log\mathcal L` where
:math:`\mathcal L(t)/\mathcal L(0)\in[10^{-12}, 10^{-6}]` (:func:`linflow.rates.tail_rate`);
``lam_final``, :math:`\lambda_{\min}(\mathcal T)` at the final weights (the asymptotic rate is
:math:`\gamma` times it when the error's last direction is the slowest; a check on ``rate``);
and the ratios ``ratio = rate / (gamma alpha)`` and over each prior-work bound that applies
(``lf.bounds.prior``: Yun et al. when :math:`l^* = L`; Min et al. 2021 and Tarmoun et al.
for ``L = 2``), NaN where its hypothesis fails.

    python -m studies.tightness [--client local|none|tcp://...] [--tiny] [--bench P]
"""
from __future__ import annotations

import math

import numpy as np

import linflow as lf
from linflow.bounds import HypothesisError
from linflow.rates import tail_rate

from . import _common

NAME = "tightness"
QUESTION = "measured asymptotic rate / (gamma * bound) for Delta* (L = 3), (18) (L = 2..6) and prior-work bounds"
T_END = 14.0
#: save times: 0 and a geometric grid, so that every flow, fast or slow, has about 70 saved
#: points in the fitting window
SETTINGS = {"t_end": T_END, "t_eval": np.concatenate([[0.0], np.geomspace(1e-4, T_END, 1400)]),
            "rtol": 1e-9, "atol": 1e-12, "max_steps": 20_000}
#: a flow stops once its loss is below about 1e-13 of its start (``loss_tol``, rounded down to a
#: power of ten so that points share batches)
STOP = 1e-13
WINDOW = (1e-12, 1e-6)
#: points per group and round (a run covers every family and depth early)
CHUNK = 240
SEEDS_GAUSSIAN, SEEDS_UNIMODAL = 110, 105
GRID = {
    "gaussian": {"L": [3], "n": [1, 2, 5], "h": [8, 16, 32], "m": [1], "scale": [0.3, 1.0, 3.0],
                 "seed": f"0..{SEEDS_GAUSSIAN - 1}"},
    "unimodal": {"L": [2, 3, 4, 5, 6], "k": [1, 2, 3, 4], "scale": [0.3, 1.0, 3.0],
                 "D": "wishart: Q diag(d u) Q^T, d ~ U[0.2, 2], u ~ U[0.5, 1.5]^k (and d I for L = 2)", "seed": f"0..{SEEDS_UNIMODAL - 1}",
                 "l_star": "uniform on 1..L from the seed"},
    "normalization": "weights * alpha^(-1/(2L-2)), target * alpha^(-L/(2L-2)): alpha = 1",
    "window": list(WINDOW),
}
#: the parameters of a point (the rest of a row is computed from them)
POINT = ("family", "L", "n", "h", "m", "scale", "D", "seed")
COLUMNS = ("family", "L", "n", "h", "m", "scale", "D", "seed", "l_star", "ok", "status", "steps", "alpha",
           "rate", "lam_final", "ratio", "ratio_yun", "ratio_min2021", "ratio_tarmoun")


def _gaussian(p, rng):
    n, h = p["n"], p["h"]
    Ws = lf.init.gaussian((n, h, h, 1), "fan_out", seed=rng)
    return [W * p["scale"] for W in Ws], 0


def _unimodal(p, rng):
    return _common.random_unimodal(rng, p["L"], p["h"], p["scale"], identity=p["D"] == "identity")


def alpha_of(p, Ws):
    """The bound alpha of the point's family: Delta* (gaussian) or prod d~ (unimodal)."""
    return lf.bounds.delta_star(Ws) if p["family"] == "gaussian" else lf.bounds.unimodal(Ws)


def drawn(p):
    """The point's network before the normalization, its target and its bound: ``(Ws, Y0, alpha)``."""
    fam = p["family"]
    if fam not in ("gaussian", "unimodal"):
        raise ValueError(f"tightness: family must be 'gaussian' or 'unimodal'; got {fam!r}.")
    rng = _common.seed_of(0 if fam == "gaussian" else 1, p["L"], p["n"], p["h"], round(100 * p["scale"]),
                          p["D"] == "identity", p["seed"])
    Ws, l_star = (_gaussian if fam == "gaussian" else _unimodal)(p, rng)
    Y0 = rng.standard_normal((p["n"], p["m"]))
    return tuple(Ws), Y0, float(alpha_of(p, tuple(Ws)))


def build(p):
    """The normalized network (alpha = 1) and its squared loss; raises ValueError when alpha <= 0."""
    Ws, Y0, a = drawn(p)
    if not a > 0:
        raise ValueError(f"tightness: the bound is {a:.3g} <= 0 for this network; no rate to compare.")
    L = len(Ws)
    c = a ** (-1.0 / (2 * L - 2))
    Ws, loss = tuple(c * W for W in Ws), lf.losses.Squared(c ** L * Y0)
    L0 = float(loss.value(lf.product(Ws)))
    return Ws, loss, {"loss_tol": 10.0 ** math.floor(math.log10(STOP * L0))}


def _each(fn, Ws0, *extra):
    """``fn`` on every network of the batch, NaN where its hypothesis fails (or gives no positive rate)."""
    out = np.full(Ws0[0].shape[0], np.nan)
    for b in range(out.size):
        try:
            v = float(lf.to_numpy(fn(tuple(W[b] for W in Ws0), *(e[b] for e in extra))))
        except HypothesisError:
            continue
        out[b] = v if v > 0 else np.nan
    return out


def _rates(Ws0, loss, traj, alpha):
    g = float(loss.gamma)
    rate = tail_rate(traj.t, lf.to_numpy(traj.loss), lo=WINDOW[0], hi=WINDOW[1])
    return {"alpha": alpha, "rate": rate, "lam_final": lf.to_numpy(lf.lambda_min(tuple(traj.weights))),
            "ratio": rate / (g * alpha)}, rate, g


def measure_gaussian(Ws0, loss, traj):
    """Three layers: alpha = Delta* (Corollary 1); no prior-work bound applies (NaN columns)."""
    out, rate, g = _rates(Ws0, loss, traj, lf.to_numpy(lf.bounds.delta_star(Ws0)))
    nan = np.full(rate.shape, np.nan)
    out.update(l_star=np.zeros(rate.shape, dtype=int), ratio_yun=nan, ratio_min2021=nan, ratio_tarmoun=nan)
    return out


def measure_unimodal(Ws0, loss, traj):
    """Unimodal weights: alpha = prod d~ (18); Yun et al. (l* = L), Min et al. 2021 and Tarmoun et al. (L = 2)."""
    out, rate, g = _rates(Ws0, loss, traj, lf.to_numpy(lf.bounds.unimodal(Ws0)))
    out["l_star"] = np.asarray(lf.bounds.unimodal_indices(Ws0)).reshape(rate.shape)
    out["ratio_yun"] = rate / (g * _each(lf.bounds.yun, Ws0))
    two = len(Ws0) == 2
    nan = np.full(rate.shape, np.nan)
    out["ratio_min2021"] = rate / (g * _each(lf.bounds.min2021, Ws0)) if two else nan
    Y = lf.to_numpy(loss.Y)
    Y = np.broadcast_to(Y, (rate.size,) + Y.shape[-2:])
    out["ratio_tarmoun"] = rate / (g * _each(lf.bounds.tarmoun, Ws0, Y)) if two else nan
    return out


def refit(p, rtol=None, atol=None):
    """Integrate one point again, at the study's tolerances or tighter ones, and fit its rate.

    Returns ``{"L0", "ratio", "increases"}``: the initial loss of the normalized network, the
    fitted ``rate / (gamma alpha)`` (alpha = 1 after the normalization) and how many times the
    computed loss *increases* between consecutive saved points inside the fitting window (the
    loss of a gradient flow never increases, so a positive count is integration error).
    """
    Ws, loss, kw = build(p)
    settings = dict(SETTINGS)
    settings.update({k: v for k, v in (("rtol", rtol), ("atol", atol)) if v is not None})
    settings["max_steps"] = 10 * SETTINGS["max_steps"]
    traj = lf.gradient_flow(Ws, loss, **settings, **kw)
    values = np.ravel(lf.to_numpy(traj.loss))
    gap = values / values[0]
    inside = (gap >= WINDOW[0]) & (gap <= WINDOW[1])
    rate = tail_rate(traj.t, values, lo=WINDOW[0], hi=WINDOW[1])
    return {"L0": float(values[0]), "ratio": float(rate) / float(loss.gamma),
            "increases": int((np.diff(values[inside]) > 0).sum())}


def measure_for(group):
    """The measure of a group of points (groups are one family each)."""
    return measure_gaussian if group.startswith("gaussian") else measure_unimodal


def groups(tiny=False, work=None):
    if tiny:
        return {"gaussian_tiny": [dict(family="gaussian", L=3, n=1, h=4, m=1, scale=1.0, D="gaussian", seed=s)
                                  for s in range(3)],
                "unimodal_tiny": [dict(family="unimodal", L=L, n=2, h=2, m=2, scale=1.0, D=d, seed=s)
                                  for L in (2, 4) for d in ("wishart", "identity") for s in range(2)]}
    out = {}
    for n in (1, 2, 5):
        out[f"gaussian_n{n}"] = [dict(family="gaussian", L=3, n=n, h=h, m=1, scale=sc, D="gaussian", seed=s)
                                 for s in range(SEEDS_GAUSSIAN) for h in (8, 16, 32) for sc in (0.3, 1.0, 3.0)]
    for L in (2, 3, 4, 5, 6):
        pts = [dict(family="unimodal", L=L, n=k, h=k, m=k, scale=sc, D=d, seed=s)
               for s in range(SEEDS_UNIMODAL) for k in (1, 2, 3, 4) for sc in (0.3, 1.0, 3.0)
               for d in (("wishart", "identity") if L == 2 else ("wishart",))]
        out[f"unimodal_L{L}"] = pts
    return out


def summary(df):
    ok = df[df["ok"]]
    return {"flows": int(len(ok)), "flows_by_family": {k: int(v) for k, v in ok.groupby("family").size().items()},
            "rate_missing": int(ok["rate"].isna().sum())}


if __name__ == "__main__":
    _common.main(__import__(__name__))
