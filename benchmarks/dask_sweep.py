#!/usr/bin/env python3
"""One sweep in one process and on a Dask LocalCluster; per-task overhead; a model to size a cluster.

    python benchmarks/dask_sweep.py [--points 100000] [--t-end 0.2] [--workers 2] [--quick]
                                    [--out benchmarks/results]

The sweep: ``--points`` seeded initializations of a depth-3 linear network with square
10 x 10 layers (entries N(0, 1/n)), squared loss to a fixed Gaussian target, dopri5
(rtol 1e-8, atol 1e-10) to ``t_end``, saving only the loss at 0 and ``t_end``.  It runs

1. in this process (``client=None``; the engine splits each batch over the cores), then
2. on a ``LocalCluster`` of ``--workers`` single-threaded worker processes (``client=``),

and checks that the two tables agree in every column but ``seconds``.  Then it measures
the per-task overhead of Dask (``client.map`` of a no-op) and of a sweep task (one trivial
point per task), and what the single writer spends per row.  The scaling model

    T(P, W, B) = T_start + max( ceil(ceil(P / B) / W) * (B * t_point + o_task),  P * c_row )

(``P`` points, ``W`` workers, ``B`` points per task, ``t_point`` seconds per point in a
worker, ``o_task`` overhead per task, ``c_row`` client time per row) takes ``t_point``
from the main run and the overheads from their own measurements, is checked against a
second sweep of other points in small tasks (``B = 200``), and predicts 10^7 points.
Writes ``dask_sweep.json`` and ``dask_sweep.png`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linflow as lf  # noqa: E402
from linflow import sweep  # noqa: E402
from linflow.distributed import WORKER_ENV, sweep_time as model  # noqa: E402
from linflow.sweep.jsonl import JsonLines  # noqa: E402

N, L = 10, 3
TARGET = np.random.default_rng(20230723).normal(size=(N, N))


def build(p):
    rng = np.random.default_rng(p["seed"])
    Ws = tuple(rng.normal(0.0, 1.0 / math.sqrt(N), (N, N)) for _ in range(L))
    return Ws, lf.losses.Squared(TARGET)


def trivial(p):
    return (np.eye(2),), lf.losses.Squared(np.eye(2))


def noop(x):
    return x


def same(a, b):
    return {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--t-end", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="10^4 points and fewer overhead tasks")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.points = min(args.points, 10_000)
    os.makedirs(args.out, exist_ok=True)
    os.environ["LINFLOW_PROGRESS"] = "0"
    from dask.distributed import Client, LocalCluster

    T = args.t_end
    kw = dict(t_end=T, t_eval=[0.0, T], save=("loss",), rtol=1e-8, atol=1e-10, progress=False)
    points = sweep.grid(seed=range(args.points))
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                       "load_start": os.getloadavg()},
           "problem": {"points": args.points, "n": N, "L": L, "t_end": T, "method": "dopri5", "rtol": 1e-8,
                       "atol": 1e-10, "workers": args.workers}}
    B = sweep.batch_size([N] * (L + 1), method="dopri5", n_saves=2)
    out["problem"]["batch_cost_model"] = B
    print(f"{args.points} points, n={N}, L={L}, t_end={T}; batch size from the cost model: {B}", flush=True)

    t0 = time.perf_counter()
    single = sweep.run(points, build, **kw)
    t_single = time.perf_counter() - t0
    print(f"one process: {t_single:.1f} s", flush=True)

    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env=WORKER_ENV, silence_logs=50) as cluster, Client(cluster) as client:
        t_start = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            dist = sweep.run(points, build, client=client, path=f"{tmp}/rows.jsonl", **kw)
            t_dask = time.perf_counter() - t0
        identical = len(dist) == len(single) and all(same(a, b) for a, b in zip(dist, single))
        print(f"{args.workers} workers: {t_dask:.1f} s (cluster start {t_start:.1f} s); identical: {identical}",
              flush=True)

        # per-task overhead: Dask alone, then a sweep task of one trivial point
        k = 500 if args.quick else 2000
        t0 = time.perf_counter()
        client.gather(client.map(noop, range(k), pure=False))
        o_dask = (time.perf_counter() - t0) * args.workers / k
        k2 = 200 if args.quick else 1000
        t0 = time.perf_counter()
        sweep.run(sweep.grid(seed=range(k2)), trivial, client=client, max_batch=1, progress=False)
        o_sweep = (time.perf_counter() - t0) * args.workers / k2
        print(f"overhead per task: dask {o_dask * 1e3:.2f} ms, sweep task {o_sweep * 1e3:.2f} ms", flush=True)

        # a second, independent sweep to check the model: other seeds, small tasks (overhead shows)
        P2, B2 = args.points // 5, 200
        t0 = time.perf_counter()
        sweep.run(sweep.grid(seed=range(10**9, 10**9 + P2)), build, client=client, max_batch=B2, **kw)
        t_check = time.perf_counter() - t0

    # the single writer: time per row of appending a table like this one
    with tempfile.TemporaryDirectory() as tmp:
        rows = [dict(r, settings={"t_end": T}) for r in single[:10_000]]
        store = JsonLines(f"{tmp}/w.jsonl")
        t0 = time.perf_counter()
        for j in range(0, len(rows), B):
            store.append(rows[j:j + B])
        c_row = (time.perf_counter() - t0) / len(rows)

    # seconds per point on one worker (building, integrating, measuring, returning the row),
    # fitted to the main run: its ceil(P/B)/W rounds of B points each cost B t_point + o_task
    rounds = math.ceil(math.ceil(args.points / B) / args.workers)
    t_point = (t_dask / rounds - o_sweep) / B
    fit = dict(t_point=t_point, o_task=o_sweep, c_row=c_row, t_start=t_start)
    predicted = model(args.points, args.workers, B, **fit)
    check = {"points": P2, "batch": B2, "measured_s": t_check,
             "predicted_s": model(P2, args.workers, B2, **dict(fit, t_start=0.0))}
    print(f"check: {P2} other points in tasks of {B2}: {t_check:.1f} s, model {check['predicted_s']:.1f} s")
    out["measured"] = {"one_process_s": t_single, "dask_s": t_dask, "cluster_start_s": t_start,
                       "speedup": t_single / t_dask, "identical_rows": identical,
                       "overhead_per_task_dask_s": o_dask, "overhead_per_task_sweep_s": o_sweep,
                       "writer_per_row_s": c_row, "t_point_worker_s": t_point,
                       "t_point_integration_only_s": float(np.median([r["seconds"] for r in dist])),
                       "t_point_one_process_s": t_single / args.points}
    P7 = 10 ** 7
    workers = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    sizes = sorted({10, 100, B})
    out["model"] = {
        "formula": "T = T_start + max(ceil(ceil(P/B)/W) * (B*t_point + o_task), P*c_row)",
        "parameters": fit, "fitted_to": "the main run (t_point); overheads measured separately",
        "predicted_this_run_s": predicted, "check": check,
        "predicted_1e7": {str(b): {str(w): model(P7, w, b, **fit) for w in workers} for b in sizes},
        "writer_floor_1e7_s": P7 * c_row,
        "workers_where_writer_binds_1e7": math.ceil((B * t_point + o_sweep) / (B * c_row)),
    }
    out["machine"]["load_end"] = os.getloadavg()
    with open(os.path.join(args.out, "dask_sweep.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out["measured"], indent=1))
    print(f"model: {predicted:.1f} s predicted for this run (measured {t_dask:.1f} s)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.bar(["one process", f"{args.workers} workers", f"check: {P2}\npoints, B={B2}", "model"],
          [t_single, t_dask, t_check, check["predicted_s"]], color=["C0", "C1", "C1", "C2"])
    a.set_ylabel("wall time (s)")
    a.set_title(f"{args.points:.0e} points, n={N}, L={L}, t_end={T}", fontsize=9)
    for bsz in sizes:
        b.loglog(workers, [model(P7, w, bsz, **fit) for w in workers], marker="o", ms=3,
                 label=f"B = {bsz} points/task")
    b.axhline(P7 * c_row, color="k", ls=":", label="single writer (client)")
    b.set_xlabel("workers W")
    b.set_ylabel("predicted wall time (s)")
    b.set_title("10^7 points: T = T_start + max(ceil(ceil(P/B)/W) (B t_point + o_task), P c_row)", fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "dask_sweep.png"), dpi=110)
    return out


if __name__ == "__main__":
    main()
