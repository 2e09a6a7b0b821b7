"""The Parquet store of linflow.sweep and sweep results as pandas DataFrames: the same frames as the
JSON Lines store, a resumable interrupted sweep, and a folder that pandas and Dask read as they are."""
from __future__ import annotations

import os

import numpy as np
import pytest

import linflow as lf
from linflow import sweep

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")

Y = np.array([[1.0, 0.5], [0.0, 2.0]])


def build(p):
    if p["seed"] == 0:
        raise ValueError("seed 0 is rejected")  # the first batch holds only a failed row
    rng = np.random.default_rng(p["seed"])
    Ws = tuple(rng.normal(0.0, 0.5, s) for s in ((2, 3), (3, 2)))
    if p["seed"] == 3:  # runs out of steps: a row with a status but ok = False
        return Ws, lf.losses.Squared(Y), {"max_steps": 2}
    return Ws, lf.losses.Squared(Y)


def measure(point, Ws0, traj):
    return {"D1": lf.imbalance(Ws0)[0].tolist(), "odd": float("nan") if point["seed"] % 2 else 1.5,
            "label": f"s{point['seed']}", "inf": float("inf")}


POINTS = sweep.grid(width=[3], seed=range(8))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    out = {}
    for name in ("rows.jsonl", "rows.parquet"):
        out[name] = sweep.run(POINTS, build, t_end=0.5, path=str(d / name), max_batch=2, measure=measure)
    return d, out


def by_seed(frame):
    return frame.sort_values("seed", kind="stable").reset_index(drop=True)


def test_jsonl_and_parquet_give_identical_frames(stores):
    d, rows = stores
    j, p = sweep.read_frame(str(d / "rows.jsonl")), sweep.read_frame(str(d / "rows.parquet"))
    # two runs of the same sweep: equal in every column but the timings
    pd.testing.assert_frame_equal(j.drop(columns="seconds"), p.drop(columns="seconds"))
    # each store gives back exactly the rows its sweep returned (a store is in the order of writing)
    pd.testing.assert_frame_equal(by_seed(j), sweep.to_frame(rows["rows.jsonl"]))
    pd.testing.assert_frame_equal(by_seed(p), sweep.to_frame(rows["rows.parquet"]))
    j = by_seed(j)
    assert len(j) == 8 and list(j["seed"]) == list(range(8))
    assert list(j["ok"]) == [False, True, True, False, True, True, True, True]
    assert j.loc[0, "error"] == "ValueError: seed 0 is rejected" and j.loc[3, "status"] == "max_steps"
    assert np.isnan(j.loc[0, "loss_final"]) and np.isnan(j.loc[1, "odd"]) and j.loc[2, "odd"] == 1.5
    assert j.loc[2, "inf"] == np.inf and j.loc[2, "D1"] == rows["rows.jsonl"][2]["D1"]
    assert (j["settings.t_end"] == 0.5).all() and (j["settings.method"] == "dopri5").all()
    # the stored numbers are those the sweep returned
    assert list(j["loss_final"].iloc[1:3]) == [rows["rows.jsonl"][i]["loss_final"] for i in (1, 2)]


def test_parquet_store_is_one_file_per_batch_with_one_schema(stores):
    d, _ = stores
    parts = sorted(os.listdir(d / "rows.parquet"))
    # a failed build is a batch of its own; then batches of two points
    assert parts == [f"part-{i:06d}.parquet" for i in range(len(parts))] and len(parts) >= 4
    schemas = [pq.read_schema(d / "rows.parquet" / f) for f in parts]
    assert all(s.equals(schemas[0]) for s in schemas)  # earlier parts widened to the later columns
    assert {"loss_final", "D1", "fingerprint", "settings"} <= set(schemas[0].names)


def test_pandas_and_dask_read_the_parquet_folder(stores):
    d, rows = stores
    frame = pd.read_parquet(d / "rows.parquet")
    ours = sweep.read_frame(str(d / "rows.parquet"))
    assert sorted(frame["key"]) == sorted(ours["key"]) and len(frame) == 8
    by_key = frame.set_index("key")
    for r in rows["rows.parquet"]:
        got = by_key.loc[r["key"], "loss_final"]
        assert (np.isnan(got) and r.get("loss_final") is None) or got == r["loss_final"]
    dd = pytest.importorskip("dask.dataframe")
    lazy = dd.read_parquet(str(d / "rows.parquet"))
    computed = lazy.compute()
    assert sorted(computed["key"]) == sorted(frame["key"])
    assert computed["steps"].sum() == frame["steps"].sum() > 0


def test_interrupted_parquet_sweep_resumes(tmp_path):
    path = str(tmp_path / "rows.parquet")
    pts = sweep.grid(width=[3], seed=range(1, 9))

    class Interrupt(BaseException):
        pass

    def stop_at_5(point, Ws0, traj):
        if point["seed"] == 5:
            raise Interrupt
        return {}

    with pytest.raises(Interrupt):
        sweep.run(pts, build, t_end=0.5, path=path, max_batch=2, measure=stop_at_5)
    # seeds 1, 2 were written; 3 (other flow keywords) waits for a batch of its own; 4, 5 were cut off
    assert sorted(r["seed"] for r in sweep.read_rows(path)) == [1, 2]
    assert not os.path.exists(path + ".lock")
    assert not [f for f in os.listdir(path) if f.startswith(".")]  # no half-written part
    ran = []
    rows = sweep.run(pts, build, t_end=0.5, path=path, max_batch=2, measure=lambda p, W, t: ran.append(p["seed"]) or {})
    assert sorted(ran) == [3, 4, 5, 6, 7, 8]
    saved = sweep.read_rows(path)
    assert sorted(r["seed"] for r in saved) == list(range(1, 9)) and len({r["key"] for r in saved}) == 8
    alone = sweep.run(pts, build, t_end=0.5, max_batch=2)
    assert [r["loss_final"] for r in rows] == [r["loss_final"] for r in alone]
    # the settings rule holds for Parquet too
    with pytest.raises(ValueError, match="rtol: saved 1e-08, now 1e-06"):
        sweep.run(pts, build, t_end=0.5, path=path, rtol=1e-6)
    # format= chooses the format whatever the suffix
    other = str(tmp_path / "rows.data")
    sweep.run(pts[:2], build, t_end=0.5, path=other, format="parquet")
    assert os.path.isdir(other) and len(pd.read_parquet(other)) == 2


def test_frame_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results store"):
        sweep.read_frame(str(tmp_path / "missing.parquet"))
    with pytest.raises(TypeError, match="list of dicts"):
        sweep.to_frame([1, 2])
    assert sweep.to_frame([]).shape == (0, 0)


def test_retry_of_a_rejected_point_in_a_parquet_store(tmp_path):
    """A row whose build failed has no network (fingerprint None): fixing build and retrying is no change of build."""
    path = str(tmp_path / "rows.parquet")
    pts = sweep.grid(width=[3], seed=range(3))
    first = sweep.run(pts, build, t_end=0.5, path=path)
    assert [r["ok"] for r in first] == [False, True, True]

    def fixed(p):
        return build(dict(p, seed=p["seed"] or 10))

    kept = sweep.run(pts, fixed, t_end=0.5, path=path, verify=True)
    assert [r["ok"] for r in kept] == [False, True, True]
    retried = sweep.run(pts, fixed, t_end=0.5, path=path, verify=True, retry_failed=True)
    assert [r["ok"] for r in retried] == [True, True, True]
    assert [r["ok"] for r in sweep.read_rows(path)] == [True, True, True]
