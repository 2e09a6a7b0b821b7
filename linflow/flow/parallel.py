"""Batch parallelism over CPU threads for NumPy.

A batched run of small networks on NumPy is bound by many small operations.
NumPy releases the GIL inside its kernels, so independent pieces of the batch
can run in a thread pool, one thread per core, with BLAS limited to one thread
inside (threadpoolctl) to avoid oversubscription.  Trajectories never interact
(each has its own step size; compaction only drops finished ones), so splitting
the batch changes no result: the pieces' trajectories are merged back in order
(tests/test_parallel.py checks bit-for-bit equality).

Pieces are as large as possible (one per thread) up to ``CHUNK_BYTES`` of state,
which only bounds the working set of huge batches: on an idle 2-core machine,
cache-sized pieces of ~100 trajectories were slower than one piece per core,
because Python overhead per operation then dominates.  A batch is split only if
each piece holds at least ``MIN_CHUNK_BYTES`` of state: below that size the second
thread costs more than it gives (measured on 2 cores, dopri5: 100 networks with
10 x 10 layers ran 1.6x *slower* on two threads than on one; the two broke even
at about 150 networks per thread, 360 KB of state, for n = 10 and n = 20).
The cost is not the GIL (elementwise NumPy calls on two threads ran 1.8-1.9x as
fast as on one) but OpenBLAS: NumPy multiplies a stack of small matrices with one
BLAS call per matrix, and such calls from two threads of one process slow each
other down (10 x 10 stacks: two threads did 1.45x the work of one, at times as
little as 0.5x; two processes 1.77x; at 64 x 64, about 1.7x either way).  So at
n = 10 the second thread helps the products of a step less than the rest of it
(benchmarks/experiments/thread_scaling.py).
CuPy and other namespaces run as one batch (the GPU is already parallel).  The number of
threads is ``LINFLOW_THREADS`` or the number of usable cores.
"""
from __future__ import annotations

import concurrent.futures
import copy
import math
import os

import numpy as np
from threadpoolctl import threadpool_limits

from .driver import divergence_error, integrate
from .progress import progress_bar
from .trajectory import Status, Trajectory

__all__ = ["integrate_parallel", "n_threads"]

MIN_CHUNK = 32  # trajectories per chunk below which splitting does not pay
MIN_CHUNK_BYTES = 384 * 1024  # state bytes per chunk below which threads cost more than they give
MAX_DIM = 64  # above this, BLAS threads already use the cores
CHUNK_BYTES = 8 * 1024 * 1024  # state bytes per chunk: bounds the working set of huge batches


def n_threads():
    env = os.environ.get("LINFLOW_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def integrate_parallel(xp, y0, loss, solver, **kw):
    """:func:`~linflow.flow.driver.integrate`, split over threads when that pays off."""
    B = y0[0].shape[0]
    small = max(max(a.shape[1:]) for a in y0) <= MAX_DIM
    if not small or not isinstance(y0[0], np.ndarray) or B < 2 * MIN_CHUNK:
        return integrate(xp, y0, loss, solver, **kw)
    per_traj = sum(math.prod(a.shape[1:]) for a in y0) * y0[0].dtype.itemsize
    least = max(MIN_CHUNK, math.ceil(MIN_CHUNK_BYTES / per_traj))  # trajectories per chunk
    chunk = max(least, CHUNK_BYTES // per_traj)
    n_chunks = max(math.ceil(B / chunk), min(n_threads(), B // least))
    threads = min(n_threads(), n_chunks)
    if n_chunks <= 1:
        return integrate(xp, y0, loss, solver, **kw)
    throw = kw.pop("throw", True)
    progress = kw.pop("progress", None)
    dt0 = kw.pop("dt0")
    parts = np.array_split(np.arange(B), n_chunks)
    bar = progress_bar(progress, n_chunks, desc="linflow chunks") if n_chunks > threads else None
    jobs = []
    with threadpool_limits(limits=1, user_api="blas"), \
            concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for i, idx in enumerate(parts):
            a, b = int(idx[0]), int(idx[-1]) + 1
            s = copy.copy(solver)
            for name in ("eta", "param"):  # per-trajectory solver parameters (GD steps)
                if hasattr(getattr(s, name, None), "shape"):
                    setattr(s, name, getattr(s, name)[a:b])
            jobs.append(pool.submit(
                integrate, xp, tuple(y[a:b] for y in y0), loss.take(xp.asarray(idx), 1), s,
                dt0=dt0[a:b] if hasattr(dt0, "shape") else dt0, throw=False,
                progress=progress if (i == 0 and bar is None) else False, **kw,
            ))
        if bar is not None:
            for done, _ in enumerate(concurrent.futures.as_completed(jobs), 1):
                bar.update_to(done)
            bar.close()
        trajs = [j.result() for j in jobs]
    traj = merge(xp, trajs)
    if throw:
        status = np.asarray(traj.status)
        if np.any(status == Status.DIVERGED):
            g = int(np.nonzero(status == Status.DIVERGED)[0][0])
            raise divergence_error(traj, y0, loss, solver, g, float(np.asarray(traj.t_final)[g]))
    return traj


def merge(xp, trajs):
    """Concatenate trajectories of consecutive chunks of one batch (batch axis 0, saves axis 0)."""
    first = trajs[0]

    def cat(arrs, axis):
        return None if arrs[0] is None else xp.concat(arrs, axis=axis)

    return Trajectory(
        t=first.t,
        loss=cat([t.loss for t in trajs], 1),
        product=cat([t.product for t in trajs], 1),
        diagnostics={k: cat([t.diagnostics[k] for t in trajs], 1) for k in first.diagnostics},
        weights=tuple(cat([t.weights[l] for t in trajs], 0) for l in range(len(first.weights))),
        status=np.concatenate([t.status for t in trajs]),
        t_final=cat([t.t_final for t in trajs], 0),
        stats={k: np.concatenate([t.stats[k] for t in trajs]) for k in first.stats},
        method=first.method,
    )
