r"""The Dask executor of a sweep: :func:`linflow.sweep.run` with ``client=``.

Also importable as :mod:`linflow.distributed` (the same names).

The unit of work is one batch of :func:`linflow.sweep.run`: a task gets a slice of
the points, builds them on the worker, runs them as batched flows there (the same
code as the in-process sweep, :func:`linflow.sweep.batch.execute`) and returns the rows.
The client submits every task at once, and as futures complete it hands their rows
to the sweep's single writer, which appends them to the results file; nothing on a
worker touches that file.

* **Batch size.**  One probe task builds the first point on a worker and sizes a
  batch there with the cost model (see the course appendix *Numerical methods*, Cost
  model): from the worker's memory limit per thread on a CPU, from the free device
  memory with ``backend="cupy"``.  Each task then holds that many points; a worker
  with less memory splits its task into smaller batches.
* **Faults.**  Tasks are pure functions of their points, so when a worker dies the
  scheduler runs its tasks again elsewhere (up to ``distributed.scheduler.allowed-failures``
  deaths per task); the writer keeps the first rows of each key, so no row is lost or
  written twice.  A batch that raises marks only its points failed, exactly as in
  process.  Interrupting the client cancels the outstanding tasks; the rows already
  written stay, and running the sweep again resumes from them.
* **Local clusters.**  ``client="local"`` starts a ``LocalCluster`` whose dashboard
  listens on ``127.0.0.1`` only (``dashboard_address`` of :func:`local_client` to open
  it wider).  Its workers are new processes that import the calling script again; a
  script that starts one at module level, outside ``if __name__ == "__main__":``, gets one
  ``RuntimeError`` that shows the guard to add, before any process starts.
* **Dependency.**  ``dask[distributed]`` is the extra ``linflow[dask]``; this module
  is imported only when ``client`` is given.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import os
import uuid

from .. import _validate as _v
from ..backend import resolve
from .batch import FAIL, batch_size_for, prepare
from .batch import execute as execute_here
from .memory import available_memory

__all__ = ["execute", "local_client", "sweep_time"]

#: Points the probe tries before giving up on sizing a batch (all of them failing to build).
PROBE_POINTS = 16
#: Share of a worker's memory limit per thread that one batch may use.
FRACTION = 0.5

#: Environment of a single-threaded worker process.  One thread for linflow's batch splitting
#: and for BLAS; and a fixed mmap threshold of 64 MiB: Dask's nanny sets MALLOC_TRIM_THRESHOLD_,
#: which also freezes glibc's mmap threshold at 128 KiB, so every batch-sized temporary became
#: a fresh mmap and a batched flow ran about 1.8x slower (benchmarks/README.md, Dask sweeps).
WORKER_ENV = {"LINFLOW_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(64 * 2 ** 20)}


def sweep_time(points, workers, batch, *, t_point, o_task, c_row=0.0, t_start=0.0):
    r"""Predicted wall time (seconds) of a sweep of ``points`` on ``workers`` single-threaded workers.

    .. math::  T = T_{\text{start}} + \max\Big(\Big\lceil \tfrac{1}{W}\Big\lceil \tfrac{P}{B}
               \Big\rceil \Big\rceil (B\,t_{\text{point}} + o_{\text{task}}),\; P\,c_{\text{row}}\Big)

    ``batch`` points per task take ``batch * t_point`` seconds on a worker plus
    ``o_task`` of scheduling, shipping and building; the ``ceil(P / B)`` tasks run in
    rounds of ``W`` (more workers than tasks gain nothing), while the client, the single
    writer, spends ``c_row`` per row at the same time, so the slower of the two sets the
    pace.  ``benchmarks/dask_sweep.py`` measures
    the parameters (see the course appendix *Numerical methods*, Cost model, for
    ``t_point`` as a function of the network's size).
    """
    P, W, B = (_v.integer(n, v) for n, v in (("points", points), ("workers", workers), ("batch", batch)))
    if min(P, W, B) < 1:
        raise ValueError(f"linflow: points, workers and batch must be positive; got {P}, {W}, {B}.")
    t_point, o_task = _v.nonnegative("t_point", t_point), _v.nonnegative("o_task", o_task)
    c_row, t_start = _v.nonnegative("c_row", c_row), _v.nonnegative("t_start", t_start)
    compute = math.ceil(math.ceil(P / B) / W) * (B * t_point + o_task)
    return float(t_start + max(compute, P * c_row))


def _require():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError(
            "linflow: sweep.run(client=...) runs on Dask; install it with pip install 'linflow[dask]' "
            "(dask[distributed])."
        ) from exc
    return distributed


def local_client(n_workers=None, dashboard_address="127.0.0.1:0"):
    """Start a ``LocalCluster`` (processes, one single-threaded worker per core) and a client on it.

    Each worker runs one batch at a time on one core (:data:`WORKER_ENV`: ``LINFLOW_THREADS=1``,
    one BLAS thread), so the cores are not oversubscribed.  The dashboard listens on
    ``dashboard_address`` (default: this machine only, ``127.0.0.1``, on a free port; pass
    ``":8787"`` to open it to the network); its link is printed.  Called from a script's
    module-level code outside ``if __name__ == "__main__":``, it raises a ``RuntimeError``
    that shows the guard, because the worker processes import the script again.
    """
    distributed = _require()
    _check_main_guard()
    n = n_workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=dashboard_address, env=WORKER_ENV,
                                       silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster)
    note = "" if importlib.util.find_spec("bokeh") else " (install bokeh to view it)"
    print(f"linflow: started a local Dask cluster, {n} workers; dashboard: {client.dashboard_link}{note}",
          flush=True)
    return client


def _guarded(tree, line):
    """Whether line ``line`` of a module lies inside a top-level ``if __name__ == "__main__":``."""
    import ast

    for node in tree.body:
        end = getattr(node, "end_lineno", node.lineno)
        if node.lineno <= line <= end:
            if not isinstance(node, ast.If):
                return False
            test = ast.unparse(node.test).replace("'", '"')
            return "__name__" in test and '"__main__"' in test and any(
                s.lineno <= line <= getattr(s, "end_lineno", s.lineno) for s in node.body)
    return True  # a line not in the module's code (generated code): do not refuse


def _check_main_guard():
    """Refuse to start worker processes from unguarded module-level code of a script (they would re-run it)."""
    import sys

    import dask

    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if (main is None or not file or not os.path.isfile(file)
            or dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork"):
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return  # not called from the script's module-level code
    import ast

    try:
        with open(file, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return
    if _guarded(tree, frame.f_lineno):
        return
    raise RuntimeError(
        f"linflow: client='local' starts worker processes, and each of them imports your script "
        f"{file!r} again; line {frame.f_lineno} runs a sweep at the script's top level, so every worker "
        "would try to start a cluster of its own and fail to start. Put the "
        "script's work under the main guard:\n\n"
        "    if __name__ == \"__main__\":\n"
        "        rows = lf.sweep.run(points, build, ..., client=\"local\")\n"
    )


def _client(client):
    """``(client, owned)``: the given client, or a local one started (and to be closed) here."""
    if isinstance(client, str):
        if client != "local":
            raise ValueError(
                f"linflow: client must be a dask.distributed.Client or 'local'; got the string {client!r}."
            )
        return local_client(), True
    distributed = _require()
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"linflow: client must be a dask.distributed.Client, 'local' or None; got {type(client).__name__}."
        )
    return client, False


def _worker_memory(memory, target):
    """Bytes a batch may use on this worker: ``memory`` if given, else a share of its limit per thread."""
    if memory is not None:
        return memory
    if target is not None and target.name == "cupy":
        return None  # batch_size then asks the GPU for its free memory
    import distributed

    try:
        worker = distributed.get_worker()
    except ValueError:  # not in a worker (e.g. a synchronous scheduler)
        return None
    limit = worker.memory_manager.memory_limit
    per_thread = (limit or available_memory()) / max(1, worker.state.nthreads)
    return FRACTION * min(per_thread, available_memory())


def _probe(build, points, *, t_end, flow_kwargs, max_batch, memory, backend):
    """On a worker: the batch size for the first point that builds (``max_batch`` or 1 if none does)."""
    target = None if backend is None else resolve(backend)
    for p in points:
        try:
            Ws, _loss, kw, xp, _sig, _fp = prepare(build, p, target, {})
        except FAIL:
            continue
        return batch_size_for(Ws, xp, kw, t_end=t_end, flow_kwargs=flow_kwargs, max_batch=max_batch,
                               memory=_worker_memory(memory, target), target=target)
    return max_batch or 1


def _task(points, keys, build, *, memory, backend, **opts):
    """On a worker: the rows of one slice of the points (the in-process batch loop, rows collected)."""
    target = None if backend is None else resolve(backend)
    rows = []
    execute_here(points, keys, range(len(points)), build, rows.extend,
             memory=_worker_memory(memory, target), backend=target, **opts)
    return rows


def execute(client, points, keys, todo, build, emit, *, t_end, flow_kwargs, measure, measure_batch,
            max_batch, memory, backend):
    """Run the points ``todo`` on a Dask cluster; ``emit(rows)`` in this process as each batch completes."""
    client, owned = _client(client)
    distributed = _require()
    futures = []
    try:
        size = dict(t_end=t_end, flow_kwargs=flow_kwargs, max_batch=max_batch, memory=memory, backend=backend)
        probe = client.submit(_probe, build, [points[i] for i in todo[:PROBE_POINTS]], pure=False, **size)
        bsize = max(1, int(probe.result()))
        tag = uuid.uuid4().hex[:8]
        for j in range(0, len(todo), bsize):
            part = todo[j:j + bsize]
            futures.append(client.submit(
                _task, [points[i] for i in part], [keys[i] for i in part], build,
                t_end=t_end, flow_kwargs=flow_kwargs, measure=measure, measure_batch=measure_batch,
                max_batch=max_batch, memory=memory, backend=backend,
                key=f"linflow-sweep-{tag}-{j // bsize}", pure=False,
            ))
        for future in distributed.as_completed(futures):
            emit(future.result())
            future.release()
    finally:
        if futures:
            client.cancel(futures)
        if owned:
            cluster = client.cluster
            client.close()
            cluster.close()
