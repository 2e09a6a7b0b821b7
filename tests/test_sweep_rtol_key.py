"""The sweep's resume key and stored settings follow the dtype's default rtol (issue 22, item 3).

gradient_flow's default rtol is ``default_rtol(dtype)``: 1e-8 in float64, 100 eps = 1.19e-5 in
float32.  A sweep keys ``rtol=None`` and an explicit rtol equal to the default of the point's
dtype as one run, stores the rtol the flow used, and keeps the float64 keys of the stores
written before (the key of ``{"t_end", "flow": {}, "tag"}``).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import linflow as lf
from linflow import sweep
from linflow.flow.api import default_rtol

F32 = default_rtol(np.float32)


def build_of(dtype):
    def build(p):
        rng = np.random.default_rng(p["seed"])
        Ws = tuple(rng.normal(0, 0.5, s).astype(dtype) for s in ((2, 3), (3, 2)))
        return Ws, lf.losses.Squared(np.eye(2, dtype=dtype))
    return build


def old_key(point, t_end):
    """The key a store written before this change holds for a float64 point at the default settings."""
    blob = json.dumps({"point": point, "settings": {"t_end": t_end, "flow": {}, "tag": None}}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def keys(rows):
    return [r["key"] for r in rows]


def test_float32_default_rtol_is_one_key_and_is_stored():
    assert F32 == pytest.approx(100 * np.finfo(np.float32).eps)
    pts = sweep.grid(seed=[0, 1])
    none = sweep.run(pts, build_of(np.float32), t_end=0.5)
    explicit = sweep.run(pts, build_of(np.float32), t_end=0.5, rtol=F32)
    assert keys(none) == keys(explicit)
    assert all(r["settings"]["rtol"] == F32 for r in none + explicit)  # the rtol the flow used
    # float64's default is not float32's: rtol=1e-8 on float32 networks is another run
    with pytest.warns(RuntimeWarning, match="below 10 machine epsilons"):
        tight = sweep.run(pts, build_of(np.float32), t_end=0.5, rtol=1e-8)
    assert set(keys(tight)).isdisjoint(keys(none))
    assert all(r["settings"]["rtol"] == 1e-8 for r in tight)
    assert all(r["steps"] > s["steps"] for r, s in zip(tight, none))  # and it is a different run


def test_float64_keys_are_those_of_older_stores():
    pts = sweep.grid(seed=[0, 1])
    for kw in ({}, {"rtol": None}, {"rtol": 1e-8}):
        rows = sweep.run(pts, build_of(np.float64), t_end=0.5, **kw)
        assert keys(rows) == [old_key(p, 0.5) for p in pts]
        assert all(r["settings"]["rtol"] == 1e-8 for r in rows)
    # float32's default on float64 networks is an explicit, other setting
    loose = sweep.run(pts, build_of(np.float64), t_end=0.5, rtol=F32)
    assert set(keys(loose)).isdisjoint(old_key(p, 0.5) for p in pts)


def test_a_float32_store_resumes_with_either_spelling(tmp_path):
    path = str(tmp_path / "rows.jsonl")
    pts = sweep.grid(seed=range(3))
    first = sweep.run(pts, build_of(np.float32), t_end=0.5, path=path, rtol=F32)
    calls = []

    def counting(p):
        calls.append(p)
        return build_of(np.float32)(p)

    again = sweep.run(pts, counting, t_end=0.5, path=path, verify=False)  # rtol=None: nothing left to run
    assert keys(again) == keys(first) and not calls
    assert len(sweep.read_rows(path)) == 3
    with pytest.raises(ValueError, match="rtol"):  # another rtol is another run: refused on this store
        sweep.run(pts, build_of(np.float32), t_end=0.5, path=path, rtol=1e-8)
