"""linflow.sweep.run(client=...): a Dask cluster gives the rows of the in-process sweep, survives a
killed worker and an interrupted client, and leaves one writer on the results file."""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest

import linflow as lf
from linflow import sweep

distributed = pytest.importorskip("distributed", reason="the Dask tests need linflow[dask]")
import cloudpickle  # noqa: E402  (a dependency of distributed)

# the workers cannot import this test module: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

Y = np.array([[1.0, 0.5], [0.0, 2.0]])
POINTS = sweep.grid(width=[3, 4], seed=range(20))
SETTINGS = dict(t_end=1.0, rtol=1e-9, atol=1e-12, max_batch=4)


def build(p):
    """Seeded host draws; seed 7 is a configuration ``build`` rejects (a failed row, not a crash)."""
    if p["seed"] == 7:
        raise ValueError("seed 7 is rejected")
    rng = np.random.default_rng(p["seed"])
    dims = (2, p["width"], p["width"], 2)
    return tuple(rng.normal(0.0, 0.5, (a, b)) for a, b in zip(dims[:-1], dims[1:])), lf.losses.Squared(Y)


def measure(point, Ws0, traj):
    return {"lambda_min": float(lf.lambda_min(Ws0)), "pid": os.getpid()}


def measure_batch(Ws0, loss, traj):
    return {"lambda_min_batch": lf.lambda_min(Ws0)}


def same(a, b, skip=("seconds", "pid")):
    """Every column but the timings (and where it ran), bit for bit."""
    return {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


@pytest.fixture(scope="module")
def client():
    from linflow.distributed import WORKER_ENV

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_port=0, env=WORKER_ENV, silence_logs=50) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def reference():
    return sweep.run(POINTS, build, measure=measure, measure_batch=measure_batch, **SETTINGS)


def test_rows_equal_the_single_process_run(client, reference, tmp_path):
    path = str(tmp_path / "rows.jsonl")
    rows = sweep.run(POINTS, build, measure=measure, measure_batch=measure_batch, path=path, client=client,
                     **SETTINGS)
    assert len(rows) == len(POINTS)
    for a, b in zip(rows, reference):
        assert same(a, b), (a, b)
    # the points ran on the workers, not here
    workers = set(client.run(os.getpid).values())
    assert {r["pid"] for r in rows if r["ok"]} <= workers and os.getpid() not in workers
    # a rejected configuration marks only its points failed
    assert [r["seed"] for r in rows if not r["ok"]] == [7, 7]
    assert all("seed 7 is rejected" in r["error"] for r in rows if not r["ok"])
    # the file holds each row once, as returned
    saved = {r["key"]: r for r in sweep.read_rows(path)}
    assert len(saved) == len(sweep.read_rows(path)) == len(POINTS)
    assert all(same(saved[r["key"]], r, skip=()) for r in rows)
    assert not os.path.exists(path + ".lock")


def test_killed_worker_loses_nothing(client, reference, tmp_path):
    """A worker process killed mid-sweep: its batch runs again elsewhere, no row lost or doubled."""
    marker = tmp_path / "kill-once"
    marker.write_text("")
    killed = tmp_path / "killed-pid"

    def deadly(p):
        if p["seed"] == 13 and p["width"] == 3:
            try:
                os.remove(marker)  # the first worker to get here claims the kill
            except FileNotFoundError:
                pass
            else:
                killed.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return build(p)

    path = str(tmp_path / "rows.jsonl")
    start = time.perf_counter()
    rows = sweep.run(POINTS, deadly, measure=measure, measure_batch=measure_batch, path=path, client=client,
                     **SETTINGS)
    assert not marker.exists() and killed.exists()  # a worker did die
    dead = int(killed.read_text())
    row13 = next(r for r in rows if r["seed"] == 13 and r["width"] == 3)
    assert row13["ok"] and row13["pid"] != dead
    assert all(same(a, b) for a, b in zip(rows, reference))
    lines = sweep.read_rows(path)
    assert sorted(r["key"] for r in lines) == sorted(r["key"] for r in reference)  # each once
    assert time.perf_counter() - start < 60
    # the nanny brought the worker back: the cluster has its two workers again
    client.wait_for_workers(2, timeout=30)


def test_interrupted_client_resumes(client, reference, tmp_path, monkeypatch):
    """Ctrl-C on the client after three batches: those rows stay, the rerun does the rest once."""
    path = str(tmp_path / "rows.jsonl")
    from linflow.sweep.jsonl import JsonLines

    real = JsonLines.append
    written = []

    def interrupt_after_three(self, rows):
        real(self, rows)
        if rows:
            written.append(len(rows))
        if len(written) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(JsonLines, "append", interrupt_after_three)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(POINTS, build, measure=measure, measure_batch=measure_batch, path=path, client=client,
                  **SETTINGS)
    monkeypatch.setattr(JsonLines, "append", real)
    first = sweep.read_rows(path)
    assert len(first) == sum(written) < len(POINTS)
    assert not os.path.exists(path + ".lock")  # the interrupted sweep let go of the file
    assert not client.futures or all(f.status in ("cancelled", "finished") for f in client.futures.values())

    rows = sweep.run(POINTS, build, measure=measure, measure_batch=measure_batch, path=path, client=client,
                     **SETTINGS)
    lines = sweep.read_rows(path)
    assert sorted(r["key"] for r in lines) == sorted(r["key"] for r in reference)  # no duplicates, none lost
    assert [r["key"] for r in lines[: len(first)]] == [r["key"] for r in first]  # kept, not rerun
    assert all(same(a, b) for a, b in zip(rows, reference))


def test_second_writer_refused_while_a_cluster_sweep_runs(client, tmp_path):
    path = str(tmp_path / "rows.jsonl")
    from linflow.sweep.lock import lock

    with lock(path):  # as another sweep (here or on another machine) holds it
        with pytest.raises(sweep.SweepLocked, match="one writer"):
            sweep.run(POINTS[:2], build, path=path, client=client, **SETTINGS)


def test_local_cluster_is_started_and_closed(capsys, monkeypatch):
    from linflow.sweep import cluster as ld

    started = []
    real = ld.local_client
    monkeypatch.setattr(ld, "local_client", lambda *a: started.append(real(*a)) or started[-1])
    rows = sweep.run(POINTS[:6], build, client="local", progress=True, **SETTINGS)
    captured = capsys.readouterr()
    assert "local Dask cluster, 2 workers" in captured.out and "dashboard: http" in captured.out
    assert "sweep" in captured.err and "6/6" in captured.err  # one bar over the points, on the client
    assert all(same(a, b) for a, b in zip(rows, sweep.run(POINTS[:6], build, **SETTINGS)))
    (c,) = started
    assert c.status == "closed" and c.cluster.status.name == "closed"


def test_bad_client():
    with pytest.raises(ValueError, match="client must be a dask.distributed.Client or 'local'"):
        sweep.run(POINTS[:1], build, client="remote", **SETTINGS)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client, 'local' or None; got int"):
        sweep.run(POINTS[:1], build, client=3, **SETTINGS)


def test_benchmark_script_runs(tmp_path):
    """benchmarks/dask_sweep.py end to end on a few points (a broken script would show only at 10^5)."""
    import json
    import pathlib
    import subprocess

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "dask_sweep.py"
    subprocess.run([sys.executable, str(script), "--quick", "--points", "400", "--out", str(tmp_path)],
                   check=True, capture_output=True, text=True, timeout=300)
    res = json.loads((tmp_path / "dask_sweep.json").read_text())
    assert res["measured"]["identical_rows"] is True
    fit = res["model"]["parameters"]
    assert all(fit[k] > 0 for k in ("t_point", "o_task", "c_row", "t_start"))
    assert (tmp_path / "dask_sweep.png").stat().st_size > 0


def test_parquet_store_on_a_cluster(client, reference, tmp_path):
    """The studies' call shape: path="....parquet" with client=; the rows are those of one process."""
    pd = pytest.importorskip("pandas")
    path = str(tmp_path / "rows.parquet")
    rows = sweep.run(POINTS, build, measure=measure, measure_batch=measure_batch, path=path, client=client,
                     **SETTINGS)
    assert all(same(a, b) for a, b in zip(rows, reference))
    frame = pd.read_parquet(path)
    assert sorted(frame["key"]) == sorted(r["key"] for r in reference)
    again = sweep.run(POINTS, build, measure=measure, measure_batch=measure_batch, path=path, client=client,
                      **SETTINGS)
    assert [r["loss_final"] for r in again if r["ok"]] == [r["loss_final"] for r in rows if r["ok"]]
    assert len(sweep.read_rows(path)) == len(POINTS)


def test_local_dashboard_listens_on_localhost_only():
    import socket
    import urllib.parse

    from linflow.sweep import cluster as lc

    c = lc.local_client(1)
    try:
        link = urllib.parse.urlparse(c.dashboard_link)
        assert link.hostname == "127.0.0.1" and link.port
        with socket.create_connection(("127.0.0.1", link.port), timeout=5):
            pass  # it serves on the loopback interface
        others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
        others = {a for a in others if not a.startswith("127.")}
        for addr in others:  # and nowhere else
            with pytest.raises(OSError):
                socket.create_connection((addr, link.port), timeout=5).close()
    finally:
        cluster = c.cluster
        c.close()
        cluster.close()


UNGUARDED = """
import numpy as np
import linflow as lf


def build(p):
    return (np.eye(2), np.eye(2)), lf.losses.Squared(np.eye(2))


rows = lf.sweep.run(lf.sweep.grid(seed=range(2)), build, t_end=0.1, client="local")
print("ran", len(rows))
"""

GUARD_CHECKS = """
import linflow.sweep.cluster as lc


def main():
    lc._check_main_guard()
    print("{label} passed")


{call}
"""


def _script(tmp_path, name, text):
    import subprocess

    p = tmp_path / name
    p.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(lf.__file__)),
                                                      os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(p)], capture_output=True, text=True, timeout=120, env=env)


def test_unguarded_script_gets_one_clear_error(tmp_path):
    out = _script(tmp_path, "unguarded.py", UNGUARDED)
    assert out.returncode == 1 and "ran" not in out.stdout
    assert 'if __name__ == "__main__":' in out.stderr and "unguarded.py" in out.stderr
    assert "Nanny failed" not in out.stderr and out.stderr.count("Traceback") == 1
    assert "RuntimeError: linflow: client='local' starts worker processes" in out.stderr
    # the guard is recognized, the call made from a function or directly; unguarded calls are not
    for label, call, ok in (("guarded", 'if __name__ == "__main__":\n    main()', True),
                            ("guarded-inline", 'if "__main__" == __name__:\n    lc._check_main_guard()\n'
                                               '    print("guarded-inline passed")', True),
                            ("top-level", "main()", False),
                            ("else-branch", 'if __name__ != "__main__":\n    pass\nelse:\n    main()', False)):
        out = _script(tmp_path, f"{label}.py", GUARD_CHECKS.format(label=label, call=call))
        assert (f"{label} passed" in out.stdout) == ok, (label, out.stdout, out.stderr)
        assert ("if __name__ ==" in out.stderr) == (not ok), (label, out.stderr)
