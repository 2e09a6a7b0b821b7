"""Chapter 11 (open problems at scale): the check of the shipped data, and the steps of the
chapter's proofs on random instances.

The data check (``studies._common.verify``) must accept a table that its study wrote and reject
one edited afterwards, in one cell of one row.  The proofs' steps are checked against oracles
that do not come from the code under test: NumPy eigenvalues, closed forms for scalar networks,
an exact exponential, and a second integration of the flow.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

import linflow as lf
from linflow.rates import tail_rate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from studies import _common, delta_positive, eq18_search, tightness  # noqa: E402

DATA = os.path.join(ROOT, "studies", "data")


# --- the check of the shipped data ------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny delta_positive run, written by the study itself (table, manifest with digest)."""
    out = tmp_path_factory.mktemp("tiny")
    delta_positive._common.main(delta_positive, ["--tiny", "--client", "none", "--out", str(out)])
    return out


def _copy(src, dst):
    for ext in ("parquet", "json"):
        shutil.copy(os.path.join(src, f"delta_positive.{ext}"), os.path.join(dst, f"delta_positive.{ext}"))
    return pd.read_parquet(os.path.join(dst, "delta_positive.parquet"))


def test_verify_accepts_what_the_study_wrote_and_reruns_every_row(tiny):
    df, m = _common.verify(delta_positive, str(tiny), sample=None)
    assert m["parquet_sha256"] == _common.sha256(os.path.join(tiny, "delta_positive.parquet"))
    df, _ = _common.verify(delta_positive, str(tiny), sample=len(df), rng=np.random.default_rng(0))
    assert len(df) == m["rows"]["total"] > 10


def test_verify_rejects_a_table_edited_in_one_cell(tiny, tmp_path):
    df = _copy(tiny, tmp_path)
    df.loc[3, "positive"] = not df.loc[3, "positive"]
    _common.write_parquet(df, os.path.join(tmp_path, "delta_positive.parquet"))
    with pytest.raises(ValueError, match="SHA-256"):
        _common.verify(delta_positive, str(tmp_path))


def _rewrite(df, folder):
    """Write ``df`` and a manifest that describes it (a table and manifest tampered together)."""
    path = os.path.join(folder, "delta_positive.parquet")
    _common.write_parquet(df, path)
    mpath = os.path.join(folder, "delta_positive.json")
    m = json.load(open(mpath))
    m["rows"]["total"] = len(df)
    m["parquet_sha256"] = _common.sha256(path)
    json.dump(m, open(mpath, "w"))


def test_verify_rejects_a_value_the_code_does_not_produce(tiny, tmp_path):
    df = _copy(tiny, tmp_path)
    i = df.index[df["value"] > 1e-3][0]
    df.loc[i, "value"] = df.loc[i, "value"] * (1 + 1e-9)
    _rewrite(df, tmp_path)
    _common.verify(delta_positive, str(tmp_path))  # the digest now agrees ...
    with pytest.raises(ValueError, match="columns \\['value'\\] differ"):  # ... the rerun does not
        _common.verify(delta_positive, str(tmp_path), sample=len(df), rng=np.random.default_rng(1))


def test_verify_rejects_a_point_twice_and_a_wrong_row_count(tiny, tmp_path):
    df = _copy(tiny, tmp_path)
    _rewrite(pd.concat([df, df.iloc[:1]], ignore_index=True), tmp_path)
    with pytest.raises(ValueError, match="twice"):
        _common.verify(delta_positive, str(tmp_path))
    _rewrite(df, tmp_path)
    m = json.load(open(os.path.join(tmp_path, "delta_positive.json")))
    m["rows"]["total"] += 1
    json.dump(m, open(os.path.join(tmp_path, "delta_positive.json"), "w"))
    with pytest.raises(ValueError, match="rows"):
        _common.verify(delta_positive, str(tmp_path))


@pytest.mark.parametrize("study", [delta_positive, tightness, eq18_search], ids=lambda s: s.NAME)
def test_the_shipped_tables_are_the_ones_their_manifests_describe(study):
    df, m = _common.verify(study, DATA, sample=1 if study is tightness else 20, rng=np.random.default_rng(2))
    assert len(df) == m["rows"]["total"]


def test_the_round_off_band_of_delta_star():
    """The threshold TOL lies in an empty band: round-off of an exact 0 below, true values above."""
    df = pd.read_parquet(os.path.join(DATA, "delta_positive.parquet"), columns=["L", "value"])
    v = df.loc[df["L"] == 3, "value"].to_numpy()
    assert not ((v > 1e-11) & (v < 1e-7)).any()
    assert 1e-11 < delta_positive.TOL < 1e-7
    pos, neg = ((v > 0) & (v <= 1e-11)).sum(), ((v < 0) & (v >= -1e-11)).sum()
    assert pos > 1000 and abs(pos - neg) < 0.02 * (pos + neg)


# --- the proofs' steps --------------------------------------------------------------------------

def test_scale_invariance_of_the_bounds():
    """Proposition 'Scale invariance of the signs': c^4, c^2 and c^(2(L-1))."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        c = float(rng.uniform(0.3, 3.0)) * rng.choice([-1, 1])
        Ws = lf.init.gaussian((3, 6, 5, 2), "fan_in", seed=rng)
        cW = tuple(c * W for W in Ws)
        d, dc = (float(lf.to_numpy(lf.bounds.delta_star(w))) for w in (Ws, cW))
        assert dc == pytest.approx(c ** 4 * d, rel=1e-9, abs=1e-12)
        W2 = lf.init.gaussian((3, 7, 2), "fan_in", seed=rng)
        g, gc = (float(lf.to_numpy(lf.bounds.spread_gap(w)[2])) for w in (W2, tuple(c * W for W in W2)))
        assert gc == pytest.approx(c ** 2 * g, rel=1e-9, abs=1e-12)
        L = 4
        Wu = _common.random_unimodal(rng, L, 2, 1.0)[0]
        cWu = tuple(c * W for W in Wu)
        for fn in (lf.bounds.unimodal, lf.lambda_min):
            a, ac = float(lf.to_numpy(fn(tuple(Wu)))), float(lf.to_numpy(fn(cWu)))
            assert ac == pytest.approx(c ** (2 * (L - 1)) * a, rel=1e-8)
        assert lf.bounds.unimodal_index(cWu) == lf.bounds.unimodal_index(tuple(Wu))


@pytest.mark.parametrize("n,m,h", [(1, 1, 2), (2, 3, 5), (5, 2, 9), (3, 3, 6), (4, 1, 12)])
def test_two_layer_gap_once_h_is_at_least_n_plus_m(n, m, h):
    """Proposition 'The two-layer gap is positive once h >= n + m': the subspace of the proof,
    and exactly n positive and m negative eigenvalues (NumPy's, not linflow's)."""
    rng = np.random.default_rng(n * 100 + m * 10 + h)
    for _ in range(20):
        W1 = rng.standard_normal((n, h)) * rng.uniform(0.1, 3)
        W2 = rng.standard_normal((h, m)) * rng.uniform(0.1, 3)
        D = W1.T @ W1 - W2 @ W2.T
        lam = np.linalg.eigvalsh(D)
        tol = 1e-10 * np.abs(lam).max()
        assert (lam > tol).sum() == n and (lam < -tol).sum() == m
        U = np.hstack([W1.T, W2])
        a = rng.standard_normal(n)
        x = U @ np.linalg.solve(U.T @ U, np.concatenate([a, np.zeros(m)]))
        assert np.allclose(W1 @ x, a) and np.allclose(W2.T @ x, 0, atol=1e-9)
        assert x @ D @ x == pytest.approx(a @ a, rel=1e-8)
        assert float(lf.to_numpy(lf.bounds.spread_gap((W1, W2))[2])) > 0


def test_two_layer_gap_is_zero_for_narrow_layers():
    rng = np.random.default_rng(4)
    for n, m, h in [(3, 4, 2), (5, 5, 4), (2, 3, 1)]:
        Ws = (rng.standard_normal((n, h)), rng.standard_normal((h, m)))
        assert float(lf.to_numpy(lf.bounds.spread_gap(Ws)[2])) == 0.0


def test_a_least_squares_slope_is_at_least_the_smallest_derivative():
    """Proposition 'A fitted rate is never below the bound': -log L = r t + g(t), g non-decreasing,
    gives a least-squares slope >= r on any times; a decreasing g can give less (the test can fail)."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        r = float(rng.uniform(0.1, 5))
        t = np.sort(rng.uniform(0, 10, int(rng.integers(2, 40))))
        if np.any(np.diff(t) <= 0):
            continue
        g = np.cumsum(rng.exponential(rng.uniform(0, 2), t.size)) * rng.integers(0, 2)
        loss = np.exp(-(r * t + g))
        slope = tail_rate(t, loss, lo=1e-300, hi=1e300, relative=False, min_points=2)
        assert slope >= r * (1 - 1e-12)
    t = np.linspace(0, 1, 10)
    assert tail_rate(t, np.exp(-(t - 0.5 * t ** 2 * 3)), lo=1e-300, hi=1e300, relative=False) < 1


def test_the_rescaled_flow_is_the_flow_in_faster_time():
    """Proposition 'Rescaling a flow': V(s) = c W(c^(2L-2) s) has loss c^(2L) L(c^(2L-2) s)."""
    rng = np.random.default_rng(6)
    Ws = lf.init.gaussian((2, 4, 4, 1), "fan_out", seed=rng)
    Y = rng.standard_normal((2, 1))
    L, c = 3, 1.7
    s = np.linspace(0, 0.5, 11)
    a = lf.gradient_flow(Ws, lf.losses.Squared(Y), float(c ** (2 * L - 2) * s[-1]),
                         t_eval=c ** (2 * L - 2) * s, rtol=1e-11, atol=1e-13)
    b = lf.gradient_flow(tuple(c * W for W in Ws), lf.losses.Squared(c ** L * Y), float(s[-1]), t_eval=s,
                         rtol=1e-11, atol=1e-13)
    la, lb = np.ravel(lf.to_numpy(a.loss)), np.ravel(lf.to_numpy(b.loss))
    assert la[-1] < 0.5 * la[0]  # the flow moved
    assert np.allclose(lb, c ** (2 * L) * la, rtol=1e-7)


@pytest.mark.parametrize("L", [2, 3, 4, 6])
def test_eq18_is_optimal_for_scalar_networks(L):
    """Proposition '(18) is optimal for scalar networks': prod d~ = prod_{j != l*} c_j, lambda_min
    is the closed form sum_l prod_{i != l} (a + c_i), strictly increasing in a, equal to the bound
    at a = 0."""
    rng = np.random.default_rng(L)
    for _ in range(20):
        l_star = int(rng.integers(0, L))
        cs = rng.uniform(0.2, 2.0, L)
        cs[l_star] = 0.0
        signs = rng.choice([-1.0, 1.0], L)
        prev = None
        for a in (0.0, 1e-6, 1e-3, 0.1, 1.0):
            w = signs * np.sqrt(a + cs)
            Ws = lf.init.scalar(w)
            closed = sum(np.prod(np.delete(w ** 2, l)) for l in range(L))
            lam = float(lf.to_numpy(lf.lambda_min(Ws)))
            bound = float(lf.to_numpy(lf.bounds.unimodal(Ws)))
            assert lam == pytest.approx(closed, rel=1e-10)
            assert bound == pytest.approx(np.prod(np.delete(cs, l_star)), rel=1e-10)
            if a == 0.0:
                assert lam == pytest.approx(bound, rel=1e-12)
            else:
                assert lam > bound and lam > prev
            prev = lam


def test_the_two_flows_below_the_bound_are_integration_error():
    """The chapter's table: at tight tolerances the two shipped ratios below 1 are above 1 and
    equal lambda_min(T) at the end (the asymptotic rate over gamma)."""
    ti = pd.read_parquet(os.path.join(DATA, "tightness.parquet"))
    below = ti[ti["ok"] & (ti["ratio"] < 1)]
    assert 1 <= len(below) <= 3
    for _, r in below.iterrows():
        p = {k: (r[k].item() if hasattr(r[k], "item") else r[k]) for k in tightness.POINT}
        same = tightness.refit(p)
        assert same["ratio"] == pytest.approx(r["ratio"], rel=1e-9)
        tight = tightness.refit(p, rtol=1e-12, atol=1e-20)
        assert tight["ratio"] >= 1 and tight["ratio"] == pytest.approx(r["lam_final"], rel=1e-3)
