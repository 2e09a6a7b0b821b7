"""linflow.sweep: rows, failure isolation, resume after an interruption, batching equivalence."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import linflow as lf
from linflow import sweep

Y = np.array([[1.0, 0.5], [0.0, 2.0]])


def build(p):
    """Depth-``depth`` network, 2x``width`` hidden layers, seeded host draws."""
    rng = np.random.default_rng(p["seed"])
    w = p.get("width", 3)
    dims = [2] + [w] * (p.get("depth", 2) - 1) + [2]
    Ws = tuple(rng.normal(0.0, p.get("scale", 0.5), (a, b)) for a, b in zip(dims[:-1], dims[1:]))
    return Ws, lf.losses.Squared(Y)


def test_grid_order_and_errors():
    pts = sweep.grid(a=[1, 2], b=["x", "y"])
    assert pts == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(TypeError, match="grid axis 'a'"):
        sweep.grid(a=3)


def test_rows_are_correct():
    pts = sweep.grid(width=[3, 5], seed=range(3))
    rows = sweep.run(pts, build, t_end=1.0, rtol=1e-10, atol=1e-12)
    assert len(rows) == 6
    for p, r in zip(pts, rows):
        assert r["width"] == p["width"] and r["seed"] == p["seed"]
        assert r["ok"] and r["status"] == "done" and r["error"] is None
        assert r["t_final"] == pytest.approx(1.0)
        assert r["steps"] > 0 and r["evaluations"] >= 6 * r["steps"]
        # the numbers are those of a plain single run
        Ws, loss = build(p)
        traj = lf.gradient_flow(Ws, loss, 1.0, rtol=1e-10, atol=1e-12)
        assert r["loss_0"] == pytest.approx(float(loss.value(lf.product(Ws))), rel=1e-14)
        assert r["loss_final"] == pytest.approx(float(traj.loss[-1]), rel=1e-10)
    # plain types only: the table survives JSON as it is
    json.dumps(rows)


def test_measure_and_measure_batch():
    pts = sweep.grid(seed=range(4))

    def measure(point, Ws0, traj):
        assert Ws0[0].shape == (2, 3) and traj.loss.ndim == 1
        return {"seed2": point["seed"] * 2, "loss_mid": traj.loss[len(traj.loss) // 2],
                "D1": lf.imbalance(Ws0)[0]}

    def mb(Ws0, loss, traj):
        return {"lambda_min": lf.lambda_min(Ws0)}

    rows = sweep.run(pts, build, t_end=0.5, measure=measure, measure_batch=mb)
    for p, r in zip(pts, rows):
        Ws, _ = build(p)
        assert r["seed2"] == 2 * p["seed"]
        assert isinstance(r["loss_mid"], float) and np.shape(r["D1"]) == (3, 3)
        assert r["lambda_min"] == pytest.approx(float(lf.lambda_min(Ws)), rel=1e-10)


def test_no_integration_rows():
    rows = sweep.run(sweep.grid(seed=range(3)), build,
                     measure=lambda p, Ws0, traj: {"traj": traj, "s": float(np.sum(Ws0[0]))})
    assert [r["traj"] for r in rows] == [None] * 3 and all(r["ok"] for r in rows)
    assert "loss_final" not in rows[0]


def test_failure_isolation():
    def fragile(p):
        if p["seed"] == 1:
            raise ValueError("bad configuration for seed 1")
        if p["seed"] == 2:
            return (np.ones((2, 3), dtype=np.float32), np.ones((3, 2))), lf.losses.Squared(Y)  # dtype mix
        if p["seed"] == 3:  # a start that blows up within the step budget
            Ws, loss = build(p)
            return Ws, loss, {"max_steps": 3}
        return build(p)

    rows = sweep.run(sweep.grid(seed=range(6)), fragile, t_end=1.0)
    by = {r["seed"]: r for r in rows}
    assert not by[1]["ok"] and by[1]["status"] == "failed" and "bad configuration" in by[1]["error"]
    assert not by[2]["ok"] and "TypeError" in by[2]["error"]
    assert not by[3]["ok"] and by[3]["status"] == "max_steps" and "max_steps" in by[3]["error"]
    for s in (0, 4, 5):
        assert by[s]["ok"] and by[s]["status"] == "done"


def test_divergence_is_recorded_not_raised():
    # Gauss-Legendre with a step far beyond the contraction limit fails; other points survive
    def b(p):
        Ws, loss = build(p)
        if p["seed"] == 0:
            Ws = tuple(30.0 * W for W in Ws)
        return Ws, loss

    rows = sweep.run(sweep.grid(seed=range(3)), b, t_end=1.0, method="midpoint", dt=0.05)
    assert not rows[0]["ok"] and rows[0]["status"] in ("diverged", "failed")
    assert rows[0]["error"]
    assert rows[1]["ok"] and rows[2]["ok"]


def test_batched_equals_one_by_one():
    pts = sweep.grid(width=[3, 4], seed=range(5))
    kw = dict(t_end=2.0, rtol=1e-9, atol=1e-12)
    together = sweep.run(pts, build, **kw)
    alone = sweep.run(pts, build, max_batch=1, **kw)
    for a, b in zip(together, alone):
        assert a["key"] == b["key"]
        assert a["steps"] == b["steps"] and a["rejected"] == b["rejected"]
        assert a["loss_final"] == pytest.approx(b["loss_final"], rel=1e-12, abs=1e-15)


def test_different_targets_share_a_batch():
    def b(p):
        Ws, _ = build(p)
        return Ws, lf.losses.Squared(Y * (1 + p["seed"]))

    pts = sweep.grid(seed=range(4))
    rows = sweep.run(pts, b, t_end=1.0)
    for p, r in zip(pts, rows):
        Ws, loss = b(p)
        traj = lf.gradient_flow(Ws, loss, 1.0)
        assert r["loss_final"] == pytest.approx(float(traj.loss[-1]), rel=1e-10)


def test_resume_skips_finished_points(tmp_path):
    path = str(tmp_path / "rows.jsonl")
    pts = sweep.grid(seed=range(8))
    calls = []

    def counting(p):
        calls.append(p["seed"])
        return build(p)

    class Interrupt(BaseException):
        pass

    def stop_after_two_batches(point, Ws0, traj):
        if point["seed"] == 5:
            raise Interrupt  # like Ctrl-C in the middle of the third batch
        return {}

    with pytest.raises(Interrupt):
        sweep.run(pts, counting, t_end=0.5, path=path, max_batch=2, measure=stop_after_two_batches)
    done = sweep.read_rows(path)
    assert sorted(r["seed"] for r in done) == [0, 1, 2, 3]
    # a torn line from the interruption is ignored
    with open(path, "a") as fh:
        fh.write('{"key": "abc", "seed": 9')
    calls.clear()
    ran = []
    rows = sweep.run(pts, counting, t_end=0.5, path=path, max_batch=2,
                     measure=lambda p, W, t: ran.append(p["seed"]) or {})
    assert sorted(ran) == [4, 5, 6, 7]  # only the missing points were run
    # ... and built; the stored ones were built once more to check their fingerprints (verify=)
    assert sorted(calls) == list(range(8))
    assert [r["seed"] for r in rows] == list(range(8)) and all(r["ok"] for r in rows)
    # nothing left to do: nothing runs, same table comes back
    calls.clear()
    again = sweep.run(pts, counting, t_end=0.5, path=path, max_batch=2, measure=lambda p, W, t: {},
                      verify=False)
    assert calls == [] and [r["loss_final"] for r in again] == [r["loss_final"] for r in rows]
    # rows store the settings; a resume with other settings is refused, naming the setting
    assert rows[0]["settings"] == {"t_end": 0.5, "method": "dopri5", "rtol": 1e-8, "atol": 1e-10, "tag": None}
    for changed, pattern in (({"t_end": 0.25}, "t_end: saved 0.5, now 0.25"),
                             ({"t_end": 0.5, "rtol": 1e-6}, "rtol: saved 1e-08, now 1e-06"),
                             ({"t_end": 0.5, "method": "rk4", "dt": 0.1}, "method: saved 'dopri5', now 'rk4'; dt"),
                             ({"t_end": 0.5, "tag": "v2"}, "tag: saved None, now 'v2'")):
        with pytest.raises(ValueError, match=pattern):
            sweep.run(pts[:2], counting, path=path, **changed)
    assert calls == [] and len(sweep.read_rows(path)) == 8
    other = sweep.run(pts[:2], counting, t_end=0.25, path=path + ".other")  # another file: fine
    assert calls == [0, 1] and other[0]["key"] != rows[0]["key"]


def test_one_writer_per_results_file(tmp_path):
    """A second sweep on a path in use is refused (lock file); the lock goes with the sweep."""
    path = str(tmp_path / "rows.jsonl")
    inner = {}

    def nested(point, Ws0, traj):  # a second sweep on the same path while the first one writes
        with pytest.raises(sweep.SweepLocked, match="another sweep is writing") as err:
            sweep.run([{"seed": 9}], build, t_end=0.1, path=path)
        inner["message"] = str(err.value)
        return {}

    rows = sweep.run(sweep.grid(seed=range(2)), build, t_end=0.1, path=path, measure=nested)
    assert f"pid {__import__('os').getpid()}" in inner["message"] and ".lock" in inner["message"]
    assert all(r["ok"] for r in rows) and len(sweep.read_rows(path)) == 2
    assert not (tmp_path / "rows.jsonl.lock").exists()
    # the lock is released by an exception too
    def interrupted(point, Ws0, traj):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run([{"seed": 5}], build, t_end=0.1, path=path, measure=interrupted)
    assert len(sweep.run([{"seed": 5}], build, t_end=0.1, path=path)) == 1


def test_retry_failed(tmp_path):
    path = str(tmp_path / "rows.jsonl")
    state = {"broken": True}

    def b(p):
        if state["broken"] and p["seed"] == 1:
            raise ValueError("flaky")
        return build(p)

    rows = sweep.run(sweep.grid(seed=range(3)), b, t_end=0.5, path=path)
    assert [r["ok"] for r in rows] == [True, False, True]
    state["broken"] = False
    kept = sweep.run(sweep.grid(seed=range(3)), b, t_end=0.5, path=path)
    assert [r["ok"] for r in kept] == [True, False, True]
    fixed = sweep.run(sweep.grid(seed=range(3)), b, t_end=0.5, path=path, retry_failed=True)
    assert [r["ok"] for r in fixed] == [True, True, True]
    # the reading rule: a retried point's first success replaces its failed row, which stays in the file
    with open(path) as fh:
        assert len(fh.readlines()) == 4
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", sweep.MalformedRowsWarning)  # a retry is no duplicate
        assert [r["ok"] for r in sweep.read_rows(path)] == [True, True, True]


def test_write_csv_and_json(tmp_path):
    rows = [{"a": 1, "v": [1.0, 2.0]}, {"a": 2, "b": float("nan")}]
    p = sweep.write_csv(rows, str(tmp_path / "t.csv"))
    with open(p) as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["a", "v", "b"] and got[1] == ["1", "[1.0, 2.0]", ""] and got[2][2] == "nan"
    q = sweep.write_json(rows, str(tmp_path / "t.json"))
    assert json.load(open(q))[1]["b"] == "nan"


def test_memory_model_and_batch_size():
    # square layers, RK4: (5L + 1) n^2 words of state plus the save buffer (the course appendix *Numerical methods*, Cost model)
    n, L = 10, 3
    per = sweep.bytes_per_trajectory([n] * (L + 1), method="rk4", n_saves=0)
    assert per == 8 * (5 * L * n * n + (L + 1) * n * n)
    assert sweep.bytes_per_trajectory([n] * (L + 1), method="rk4", n_saves=0, dtype="float32") == per // 2
    assert sweep.batch_size([n] * (L + 1), memory=100 * per, method="rk4", n_saves=0, max_batch=10**6) == 100
    assert sweep.batch_size([n] * (L + 1), memory=1, max_batch=5) == 1
    with pytest.raises(ValueError, match="unknown method"):
        sweep.bytes_per_trajectory([2, 2], method="euler")
    # a small memory budget makes small batches, with the same results
    pts = sweep.grid(seed=range(5))
    small = sweep.run(pts, build, t_end=0.5, memory=2.5 * sweep.bytes_per_trajectory([2, 3, 2]))
    assert [r["ok"] for r in small] == [True] * 5


def test_bad_arguments():
    with pytest.raises(TypeError, match="manages 'throw'"):
        sweep.run([{}], build, t_end=1.0, throw=True)
    with pytest.raises(TypeError, match="build must be a callable"):
        sweep.run([{}], 3)
    rows = sweep.run([{"seed": 0}], lambda p: "nope", t_end=1.0)
    assert not rows[0]["ok"] and "must return (Ws, loss)" in rows[0]["error"]


def test_summarize():
    rows = [{"w": 1, "ok": True, "x": 1.0}, {"w": 1, "ok": True, "x": 3.0}, {"w": 2, "ok": False, "x": None}]
    t = sweep.summarize(rows, "w", "x")
    assert t[0]["n"] == 2 and t[0]["median"] == 2.0 and t[1]["failed"] == 1 and np.isnan(t[1]["median"])


def test_progress_bar_runs(capsys):
    rows = sweep.run(sweep.grid(seed=range(3)), build, t_end=0.2, progress=True)
    assert all(r["ok"] for r in rows)
    assert "sweep" in capsys.readouterr().err


@pytest.mark.parametrize("backend", [None, "array_api_strict"])
def test_out_of_memory_halves_the_batch(monkeypatch, backend):
    from linflow.sweep import batch as sweep_batch

    real = sweep_batch.gradient_flow
    sizes = []

    def picky(Ws, *a, **k):
        sizes.append(Ws[0].shape[0])
        if Ws[0].shape[0] > 2:
            raise MemoryError("out of device memory")
        return real(Ws, *a, **k)

    monkeypatch.setattr(sweep_batch, "gradient_flow", picky)
    pts = sweep.grid(seed=range(6))
    rows = sweep.run(pts, build, t_end=0.3, max_batch=6, backend=backend)
    assert all(r["ok"] for r in rows) and sizes[0] == 6 and max(sizes[1:]) <= 3
    alone = sweep.run(pts, build, t_end=0.3, max_batch=1)
    assert [r["loss_final"] for r in rows] == pytest.approx([r["loss_final"] for r in alone], rel=1e-12)


def _strict_device(name):
    import array_api_strict as xs

    return next(d for d in xs.__array_namespace_info__().devices() if str(d).find(name) >= 0)


@pytest.mark.parametrize("where", ["array_api_strict", "device1"])
def test_backend_option_moves_each_batch_once(where):
    """backend=...: host-built points run on another backend, one move per batch, same numbers."""
    target = "array_api_strict"  # a name, or a Backend (here: array_api_strict on its device1)
    if where == "device1":
        with lf.set_backend("array_api_strict", device=_strict_device("device1")) as target:
            pass

    seen = []

    def regression(p):  # a loss with derived arrays (minimizer) as well as data
        rng = np.random.default_rng(p["seed"])
        X = rng.normal(size=(6, 2))
        Ws, _ = build(p)
        return Ws, lf.losses.Regression(X, X @ Y)

    def mb(Ws0, loss, traj):
        seen.append((type(Ws0[0]).__module__, str(Ws0[0].device), type(loss.minimizer).__module__,
                     Ws0[0].shape[0]))
        assert traj.weights[0].__class__ is Ws0[0].__class__  # the flow ran there too
        return {"lambda_min": lf.lambda_min(Ws0)}

    pts = sweep.grid(seed=range(5))
    # one shared target: batches of 3 and 2; a different X per point: one batch per point
    for b, batches in ((build, [3, 2]), (regression, [1] * 5)):
        seen.clear()
        here = sweep.run(pts, b, t_end=1.0, measure_batch=lambda W, l, t: {"lambda_min": lf.lambda_min(W)})
        there = sweep.run(pts, b, t_end=1.0, measure_batch=mb, backend=target, max_batch=3)
        assert [s[3] for s in seen] == batches
        for module, device, loss_module, _ in seen:
            assert module.startswith("array_api_strict") and loss_module.startswith("array_api_strict")
            assert ("device1" in device) == (where == "device1")
        for a, c in zip(here, there):
            assert a["key"] == c["key"] and c["ok"]
            assert c["steps"] == a["steps"]
            assert c["loss_final"] == pytest.approx(a["loss_final"], rel=1e-12)
            assert c["lambda_min"] == pytest.approx(a["lambda_min"], rel=1e-12)
    assert lf.get_backend().name == "numpy"  # the default backend is left as it was


def test_backend_option_errors_before_running():
    calls = []

    def counting(p):
        calls.append(p)
        return build(p)

    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        sweep.run(sweep.grid(seed=range(2)), counting, t_end=1.0, backend="tpu")
    with pytest.raises(TypeError, match="backend must be a name"):
        sweep.run(sweep.grid(seed=range(2)), counting, t_end=1.0, backend=3)
    try:
        import cupy

        gpu = cupy.is_available()
    except Exception:
        gpu = False
    if not gpu:
        with pytest.raises(lf.BackendError, match="cupy"):
            sweep.run(sweep.grid(seed=range(2)), counting, t_end=1.0, backend="cupy")
    assert calls == []


def test_backend_option_takes_points_built_anywhere():
    """backend=: a point built on another backend (weights and loss) is brought over too."""
    import array_api_strict as xs

    def on_strict(p):
        Ws, _ = build(p)
        X = np.random.default_rng(p["seed"]).normal(size=(6, 2))
        return tuple(xs.asarray(W) for W in Ws), lf.losses.Regression(xs.asarray(X), xs.asarray(X @ Y))

    def on_numpy(p):
        Ws, loss = on_strict(p)
        return tuple(lf.to_numpy(W) for W in Ws), lf.losses.Regression(lf.to_numpy(loss.X), lf.to_numpy(loss.Y))

    pts = sweep.grid(seed=range(3))
    moved = sweep.run(pts, on_strict, t_end=0.5, backend="numpy")
    plain = sweep.run(pts, on_numpy, t_end=0.5)
    assert all(r["ok"] for r in moved), [r["error"] for r in moved]
    assert [r["loss_final"] for r in moved] == pytest.approx([r["loss_final"] for r in plain], rel=1e-13)


def test_cluster_time_model():
    """The sizing model of linflow.distributed: whole tasks spread over workers, or the writer's pace."""
    from linflow.distributed import sweep_time

    # 10 points in tasks of 3: 4 tasks, 2 rounds on 2 workers of 3 * 0.5 s + 0.1 s each
    assert sweep_time(10, 2, 3, t_point=0.5, o_task=0.1, t_start=1.0) == pytest.approx(1.0 + 2 * 1.6)
    # 4 tasks on 3 workers still take 2 rounds; one worker per task: one round, more gain nothing
    assert sweep_time(10, 3, 3, t_point=0.5, o_task=0.1) == pytest.approx(2 * 1.6)
    assert sweep_time(10, 4, 3, t_point=0.5, o_task=0.1) == sweep_time(10, 64, 3, t_point=0.5, o_task=0.1) == 1.6
    # a slow writer sets the pace instead
    assert sweep_time(10, 4, 3, t_point=0.5, o_task=0.1, c_row=1.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="workers and batch must be positive"):
        sweep_time(10, 0, 3, t_point=0.5, o_task=0.1)


def test_dask_is_imported_only_for_a_client():
    """linflow[dask] is optional: an in-process sweep never imports dask."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, linflow as lf\n"
            "rows = lf.sweep.run([{'s': 0}], lambda p: ((np.eye(2),), lf.losses.Squared(np.eye(2))), t_end=0.1)\n"
            "assert rows[0]['ok']\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
