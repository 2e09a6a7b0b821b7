r"""Batched sweeps: many initializations or configurations, memory-sized batches, resumable results.

A sweep runs one gradient flow per *point* (a small dict of parameters, e.g.
``{"width": 16, "seed": 3}``).  Points that build networks of the same shape
with the same loss are stacked into one batch and integrated by a single call
of :func:`linflow.gradient_flow`, so a thousand seeds cost about as much as a
few batched runs, not a thousand separate ones.  The batch size comes from the
cost model (see the course appendix *Numerical methods*, Cost model) and the
memory available (or ``max_batch``).  With ``client=`` the batches run on a Dask
cluster (:mod:`linflow.sweep.cluster`) and this process stays the one writer.

Results are a *tidy table*: one plain ``dict`` per point, with the point's
parameters, the run's outcome and whatever ``measure`` adds; :func:`to_frame` and
:func:`read_frame` give them as a ``pandas.DataFrame``.  With ``path``, every
finished batch is appended to a results store (a JSON Lines file, or a Parquet
folder for a path ending in ``.parquet``), keyed by a hash of the point and the run
settings; running the same sweep again skips the points already there, so an
interrupted sweep resumes where it stopped.

A point that fails is recorded, not fatal: a configuration that ``build``
rejects (``ValueError``/``TypeError``), a trajectory that diverges (status
``DIVERGED``) or runs out of steps, or a ``measure`` that raises gets a row with
``ok = False`` and the error message, and the rest of the sweep goes on.

>>> import numpy as np, linflow as lf
>>> def build(p):
...     rng = np.random.default_rng(p["seed"])
...     Ws = tuple(rng.normal(0, 0.5, (2, 2)) for _ in range(p["depth"]))
...     return Ws, lf.losses.Squared(np.eye(2))
>>> rows = lf.sweep.run(lf.sweep.grid(depth=[2, 3], seed=range(4)), build, t_end=2.0)
>>> len(rows), sorted(rows[0])[:5]
(8, ['depth', 'error', 'evaluations', 'fingerprint', 'key'])
>>> all(r["loss_final"] < r["loss_0"] for r in rows)
True

The parts: :mod:`~linflow.sweep.points` (points and keys, the settings' normal form),
:mod:`~linflow.sweep.memory` (the cost model), :mod:`~linflow.sweep.store` with
:mod:`~linflow.sweep.jsonl`, :mod:`~linflow.sweep.parquet` and :mod:`~linflow.sweep.lock`
(the results store: formats, reading rule, checks of a resume, one writer),
:mod:`~linflow.sweep.batch` (the batch loop), :mod:`~linflow.sweep.runner` (:func:`run`),
:mod:`~linflow.sweep.cluster` (the Dask executor, also :mod:`linflow.distributed`) and
:mod:`~linflow.sweep.tables` (rows as tables).
"""
from __future__ import annotations

from .lock import SweepLocked
from .memory import CPU_WORKING_SET, STATE_WORDS, available_memory, batch_size, bytes_per_trajectory  # noqa: F401
from .points import grid, point_key
from .runner import run
from .store import MalformedRowsWarning, read_rows
from .tables import read_frame, summarize, to_frame, write_csv, write_json

__all__ = [
    "grid",
    "run",
    "bytes_per_trajectory",
    "batch_size",
    "available_memory",
    "read_rows",
    "read_frame",
    "to_frame",
    "write_csv",
    "write_json",
    "point_key",
    "summarize",
    "SweepLocked",
    "MalformedRowsWarning",
]
