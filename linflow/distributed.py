"""Sweeps on a Dask cluster: :func:`linflow.sweep.run` with ``client=``.

The executor lives in :mod:`linflow.sweep.cluster`; this module keeps its public names
importable as ``linflow.distributed`` (``from linflow.distributed import WORKER_ENV,
sweep_time``).  Dask itself is imported only when a sweep is given a client.
"""
from __future__ import annotations

from .sweep.cluster import FRACTION, PROBE_POINTS, WORKER_ENV, execute, local_client, sweep_time

__all__ = ["execute", "local_client", "sweep_time", "WORKER_ENV", "PROBE_POINTS", "FRACTION"]
