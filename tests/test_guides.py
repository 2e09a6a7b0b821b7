"""The user guide ("Using linflow"): the code it shows but does not execute agrees with the package.

The three guide pages execute what runs on a CPU at build time. These tests cover the rest: the
code blocks shown for a script, a cluster or a GPU are valid Python whose calls name only
arguments that the called functions take; the script of the sweeps page runs as shown (a smaller
grid); its Dask reader of a Parquet store gives the store's numbers; and ``backend=`` together
with ``client=``, which the page says is tested on CPU workers, is.
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import linflow as lf
from linflow import sweep

ROOT = Path(__file__).resolve().parent.parent
GUIDES = [ROOT / "book" / f"guide_{name}.md" for name in ("sweeps", "gpu", "benchmarks")]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page):
    return FENCE.findall(page.read_text(encoding="utf-8"))


def block(page, marker):
    """The one ``python`` block of ``page`` that contains ``marker``."""
    found = [b for b in python_blocks(page) if marker in b]
    assert len(found) == 1, (page.name, marker, len(found))
    return found[0]


def test_every_shown_block_is_python_and_holds_no_heading():
    count = 0
    for page in GUIDES:
        for code in python_blocks(page):
            ast.parse(code)  # a SyntaxError names the block
            # a Markdown heading swallowed by an unclosed fence reads as a comment: refuse it
            assert not re.search(r"^#{2,} [A-Z]", code, re.M), (page.name, code)
            count += 1
    assert count >= 7, count


# the linflow callables that the shown blocks call, by the name they are called with
CALLEES = {
    "run": sweep.run,
    "grid": sweep.grid,
    "read_frame": sweep.read_frame,
    "set_backend": lf.set_backend,
    "local_client": None,  # filled below (linflow.distributed imports Dask only when asked)
    "gaussian": lf.init.gaussian,
    "lambda_balanced": lf.init.lambda_balanced,
}


def _flow_keywords():
    return set(inspect.signature(lf.gradient_flow).parameters) - {"throw", "progress"}


def test_shown_calls_name_only_arguments_the_package_takes():
    from linflow import distributed as ld

    callees = dict(CALLEES, local_client=ld.local_client)
    checked = 0
    for page in GUIDES:
        for code in python_blocks(page):
            for node in ast.walk(ast.parse(code)):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name not in callees:
                    continue
                params = inspect.signature(callees[name]).parameters
                allowed = set(params)
                if name == "run":  # its **flow_kwargs are gradient_flow's keywords
                    allowed |= _flow_keywords()
                elif any(p.kind is p.VAR_KEYWORD for p in params.values()):
                    allowed = None  # grid(**axes): any name is an axis
                for kw in node.keywords:
                    if kw.arg is not None and allowed is not None:
                        assert kw.arg in allowed, (page.name, name, kw.arg)
                positional = [p for p in params.values()
                              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
                assert len(node.args) <= len(positional), (page.name, name, ast.unparse(node))
                checked += 1
    assert checked >= 8, checked


def _env():
    paths = [str(Path(lf.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p), LINFLOW_PROGRESS="0")


def test_the_sweep_script_of_the_guide_runs_as_shown(tmp_path):
    pytest.importorskip("distributed", reason="the script starts a LocalCluster: linflow[dask]")
    code = block(GUIDES[0], "sweep_rates.py")
    assert "range(1000)" in code
    (tmp_path / "sweep_rates.py").write_text(code.replace("range(1000)", "range(3)"))
    out = subprocess.run([sys.executable, "sweep_rates.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=240, env=_env())
    assert out.returncode == 0, out.stderr[-3000:]
    df = sweep.read_frame(str(tmp_path / "rows.parquet"))
    assert len(df) == 9 and df["ok"].all()
    assert sorted(set(df["lam"])) == [0.0, 1.0, 4.0] and (df["loss_final"] < df["loss_0"]).all()


def _build(p):
    Ws = lf.init.lambda_balanced((3, 3, 3), p["lam"], seed=p["seed"], scale=0.5)
    return Ws, lf.losses.Squared(np.diag([2.0, 1.0, 0.5]))


def _rate(point, Ws0, traj):
    gamma = lf.losses.Squared(np.diag([2.0, 1.0, 0.5])).gamma
    return {"rate": lf.bounds.observed_rate(traj.t, traj.loss, gamma=gamma)}


def test_the_dask_reader_of_the_guide_gives_the_store(tmp_path, monkeypatch):
    dd = pytest.importorskip("dask.dataframe")
    points = sweep.grid(lam=[0.0, 1.0], seed=range(5))
    rows = sweep.run(points, _build, t_end=1.0, t_eval=np.linspace(0, 1, 5), measure=_rate,
                     path=str(tmp_path / "rows.parquet"), max_batch=3)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(block(GUIDES[0], "dd.read_parquet"), scope)
    got = scope["ddf"].groupby("lam")["rate"].mean().compute()
    for lam in (0.0, 1.0):
        want = np.mean([r["rate"] for r in rows if r["lam"] == lam])
        assert abs(got[lam] - want) <= 1e-12 * abs(want)
    assert scope["dd"] is dd and len(scope["ddf"]) == len(points)


def test_backend_with_a_client_runs_on_the_workers_with_the_rows_of_one_process():
    """The sweeps page: ``backend=`` with ``client=`` is tested on CPU workers, array_api_strict
    standing in for CuPy (the workers resolve the backend; the host builds the points)."""
    distributed = pytest.importorskip("distributed", reason="linflow[dask]")
    pytest.importorskip("array_api_strict")
    import cloudpickle

    from linflow.distributed import WORKER_ENV

    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    def where(Ws0, loss, traj):  # runs on a worker: report the namespace of the batch
        return {"module": [type(Ws0[0]).__module__.split(".")[0]] * Ws0[0].shape[0]}

    points = sweep.grid(lam=[0.0, 0.5], seed=range(6))
    here = sweep.run(points, _build, t_end=1.0, measure=_rate, max_batch=4)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  env=WORKER_ENV, silence_logs=50) as cluster, distributed.Client(cluster) as c:
        there = sweep.run(points, _build, t_end=1.0, measure=_rate, measure_batch=where,
                          max_batch=4, backend="array_api_strict", client=c)
        seen = {r["module"] for r in there}
    assert seen == {"array_api_strict"}, seen
    assert len(there) == len(here) == 12 and all(r["ok"] for r in there)
    for a, b in zip(here, there):
        assert (a["lam"], a["seed"]) == (b["lam"], b["seed"])
        for k in ("loss_final", "rate", "steps"):
            assert abs(a[k] - b[k]) <= 1e-12 * max(1.0, abs(a[k])), (k, a[k], b[k])
