"""The studies (studies/): end to end on tiny grids, their statistics helpers, and the shipped data.

The helpers are checked against oracles: the Wilson interval against SciPy's score interval,
the tail rate against exact exponentials, the crossing and the power law against data built
from known laws.  The shipped data are checked against their manifests and against the
theorems they must obey (Theorem 3 (18), Corollary 1 and 2 rates, the two-layer gap once
h >= n + m).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import linflow as lf
from linflow import rates, stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "studies", "data")
MANIFEST_KEYS = {"study", "linflow_version", "git_commit", "grid", "settings", "rows", "wall_s", "workers",
                 "points_per_s", "runs"}


# --- statistics helpers -------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(0, 1), (0, 10), (3, 10), (50, 100), (99, 100), (100, 100), (7, 1000)])
def test_wilson_matches_scipy_score_interval(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = stats.wilson(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_wilson_closed_form_and_batches():
    k, n, z = np.array([1, 5, 9]), np.array([10, 10, 10]), 1.959963984540054
    lo, hi = stats.wilson(k, n)
    p = k / n
    mid = (p + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * np.sqrt(p * (1 - p) / 10 + z * z / 400)
    np.testing.assert_allclose(lo, mid - half, rtol=1e-13)
    np.testing.assert_allclose(hi, mid + half, rtol=1e-13)
    assert np.all(lo < p) and np.all(p < hi)


@pytest.mark.parametrize("k,n,err", [(5, 3, ValueError), (-1, 3, ValueError), (1, 0, ValueError),
                                     (1.5, 3, TypeError)])
def test_wilson_rejects_bad_counts(k, n, err):
    with pytest.raises(err, match="wilson"):
        stats.wilson(k, n)


def test_crossing_interpolates_in_log_x():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.log2(x) / 3  # linear in log x: reaches 1/2 at x = 2^1.5
    assert stats.crossing(x, p, 0.5) == pytest.approx(2 ** 1.5, rel=1e-12)
    assert stats.crossing(x, p, 0.0) == 1.0
    assert stats.crossing(x, p, 1.5) is None
    assert stats.crossing(x, 2 * x, 5.0, log=False) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="increasing"):
        stats.crossing(x[::-1], p, 0.5)


def test_power_law_recovers_a_law_and_its_error():
    x = np.array([2.0, 4.0, 10.0, 20.0])
    fit = stats.power_law(x, 3.0 * x ** 1.25)
    assert fit["c"] == pytest.approx(3.0) and fit["beta"] == pytest.approx(1.25)
    assert fit["r2"] == pytest.approx(1.0) and fit["max_rel_err"] < 1e-12
    noisy = stats.power_law(x, 3.0 * x ** 1.25 * np.array([1.1, 0.9, 1.05, 1.0]))
    assert noisy["beta_se"] > 0 and noisy["max_rel_err"] > 0.01
    with pytest.raises(ValueError, match="two distinct"):
        stats.power_law([1.0, 1.0], [2.0, 3.0])


def test_tail_rate_of_exact_exponentials():
    t = np.concatenate([[0.0], np.geomspace(1e-3, 20.0, 400)])
    L = np.stack([5.0 * np.exp(-1.5 * t), np.exp(-0.8 * t) + 0 * t, np.exp(-30.0 * t)], axis=1)
    r = rates.tail_rate(t, L)
    np.testing.assert_allclose(r, [1.5, 0.8, 30.0], rtol=1e-9)
    # a curve that never reaches the window has no rate
    assert math.isnan(rates.tail_rate(t, np.exp(-0.01 * t)))
    with pytest.raises(ValueError, match="0 < lo < hi"):
        rates.tail_rate(t, L, lo=1e-3, hi=1e-6)
    with pytest.raises(ValueError, match="shape"):
        rates.tail_rate(t[:5], L)


# --- the studies end to end -----------------------------------------------------------------

def _study(name):
    import importlib
    import sys

    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    return importlib.import_module(f"studies.{name}")


@pytest.mark.parametrize("name", ["delta_positive", "tightness", "eq18_search"])
def test_study_runs_end_to_end_and_resumes(name, tmp_path):
    import pandas as pd

    study = _study(name)
    m = study._common.main(study, ["--tiny", "--client", "none", "--out", str(tmp_path)])
    assert MANIFEST_KEYS <= set(m)
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved["rows"] == m["rows"] and saved["rows"]["total"] > 0
    assert saved["rows"]["ok"] + saved["rows"]["failed"] == saved["rows"]["total"]
    assert saved["linflow_version"] == lf.__version__ and saved["workers"] == 1
    df = pd.read_parquet(tmp_path / f"{name}.parquet")
    assert list(df.columns) == list(study.COLUMNS) and len(df) == m["rows"]["total"]
    assert saved["runs"][-1]["new_rows"] == m["rows"]["total"]
    # the second run finds every point stored and computes nothing
    again = study._common.main(study, ["--tiny", "--client", "none", "--out", str(tmp_path)])
    assert again["runs"][-1]["new_rows"] == 0 and again["rows"] == m["rows"]
    assert pd.read_parquet(tmp_path / f"{name}.parquet").equals(df)


def test_staged_grid_adds_the_main_stage(tmp_path):
    study = _study("delta_positive")
    m = study._common.main(study, ["--tiny", "--client", "none", "--out", str(tmp_path)])
    pilot = sum(map(len, study.pilot_groups(True).values()))
    assert m["rows"]["total"] > pilot  # cells in transition got the main stage's networks
    assert any(k.endswith("_main") for k in m["groups"])


def test_eq18_search_never_beats_theorem_3(tmp_path):
    study = _study("eq18_search")
    study._common.main(study, ["--tiny", "--client", "none", "--out", str(tmp_path)])
    inst = json.loads((tmp_path / "eq18_search_instance.json").read_text())["smallest"]
    Ws = tuple(np.array(W) for W in inst["weights"])
    r = float(lf.lambda_min(Ws) / lf.bounds.unimodal(Ws))
    assert r == pytest.approx(inst["found_ratio"], rel=1e-12)
    assert r >= 1 - 1e-9  # Theorem 3 (18)


def test_bad_client_is_a_clear_error():
    study = _study("eq18_search")
    with pytest.raises(ValueError, match="client"):
        study._common.open_client("tcp//nowhere")


# --- the shipped data -----------------------------------------------------------------------

def _shipped(name):
    import pandas as pd

    path = os.path.join(DATA, f"{name}.parquet")
    if not os.path.exists(path):
        pytest.fail(f"{path} is not shipped")
    return pd.read_parquet(path), json.load(open(os.path.join(DATA, f"{name}.json")))


def test_shipped_data_size():
    total = sum(os.path.getsize(os.path.join(DATA, f)) for f in os.listdir(DATA)
                if os.path.isfile(os.path.join(DATA, f)))
    assert total < 25 * 2 ** 20


def test_shipped_delta_positive():
    df, m = _shipped("delta_positive")
    assert len(df) == m["rows"]["total"] and int(df["ok"].sum()) == m["rows"]["ok"]
    assert (df["positive"] == (df["value"] > 0)).all()
    # two layers, h >= n + m: the gap is positive for every Gaussian network (proved in the chapter)
    wide = df[(df["L"] == 2) & (df["h"] >= df["n"] + df["m"])]
    assert len(wide) > 10 ** 4 and wide["positive"].all()
    # and with h < min(n, m) it is 0 (lambda_n(D) = lambda_m(-D) = 0 past the rank)
    narrow = df[(df["L"] == 2) & (df["h"] < np.minimum(df["n"], df["m"]))]
    assert len(narrow) > 0 and not narrow["positive"].any()


def test_shipped_tightness_obeys_the_bounds():
    df, m = _shipped("tightness")
    assert len(df) == m["rows"]["total"] and int(df["ok"].sum()) == m["rows"]["ok"]
    ok = df[df["ok"] & df["rate"].notna()]
    assert len(ok) >= 0.95 * m["rows"]["ok"]  # a fitted rate for almost every flow
    np.testing.assert_allclose(ok["alpha"], 1.0, rtol=1e-8)  # the normalization
    # Corollaries 1 and 2: the loss decays at least at gamma * alpha, so the asymptotic ratio is
    # >= 1. A windowed least-squares slope can fall short on a handful of flows (too few saved
    # points in the window); on each of those the flow's own lambda_min at the end is >= alpha
    below = ok[ok["ratio"] < 1 - 1e-3]
    assert len(below) <= 3 and (below["lam_final"] >= below["alpha"] * (1 - 1e-6)).all()
    for col in ("ratio_yun", "ratio_min2021"):
        v = ok.drop(below.index)[col].dropna()
        assert (v >= 1 - 1e-3).all()


def test_shipped_eq18_obeys_theorem_3():
    df, m = _shipped("eq18_search")
    assert len(df) == m["rows"]["total"] and int(df["ok"].sum()) == m["rows"]["ok"]
    assert (df.loc[df["ok"], "ratio"] >= 1 - 1e-9).all()
    inst = json.load(open(os.path.join(DATA, "eq18_search_instance.json")))["smallest"]
    Ws = tuple(np.array(W) for W in inst["weights"])
    assert float(lf.lambda_min(Ws) / lf.bounds.unimodal(Ws)) == pytest.approx(inst["found_ratio"], rel=1e-9)
    assert m["search"]["smallest_ratio_found"] <= m["search"]["smallest_ratio_sampled"]


@pytest.mark.parametrize("name,minimum", [("delta_positive", 10 ** 6), ("tightness", 10 ** 4),
                                          ("eq18_search", 10 ** 5)])
def test_shipped_data_meet_the_issue_minimums(name, minimum):
    """Issue 25: >= 10^6 networks for (a), >= 10^4 integrated flows for (b), >= 10^5 for (c)."""
    _df, m = _shipped(name)
    assert m["complete"], (f"{name}: {m['stored_points']:,} of {m['declared_points']:,} declared points "
                           f"shipped; finish with: python -m studies.{name}")
    assert m["rows"]["ok"] >= minimum


@pytest.mark.parametrize("name", ["delta_positive", "tightness", "eq18_search"])
def test_manifests_carry_their_costs(name):
    _df, m = _shipped(name)
    assert MANIFEST_KEYS <= set(m)
    c = m["throughput"]
    assert c["one_process_points_per_s"] > 0 and c["cluster_points_per_s"] > 0 and c["cluster_workers"] == 2
    assert m["predicted_64_workers_s"] > 0


def test_export_of_an_interrupted_run(tmp_path):
    import pandas as pd

    study = _study("eq18_search")
    work = tmp_path / "work" / "eq18_search"
    pts = study.groups(True)["tiny"]
    lf.sweep.run(pts[:3], study.build, measure_batch=study.measure_batch, path=str(work / "tiny.jsonl"),
                 progress=False, **study.SETTINGS)  # an interrupted run: 3 of the declared points
    m = study._common.main(study, ["--tiny", "--export", "--out", str(tmp_path)])
    assert m["complete"] is False and m["stored_points"] == 3 and m["declared_points"] == len(pts)
    assert len(pd.read_parquet(tmp_path / "eq18_search.parquet")) == 3
    # resuming completes it
    done = study._common.main(study, ["--tiny", "--client", "none", "--out", str(tmp_path)])
    assert done["complete"] is True and done["runs"][-1]["new_rows"] == len(pts) - 3
