"""The driver of a sweep: :func:`run` checks the settings and the store, runs the points left, writes their rows."""
from __future__ import annotations

import numpy as np

from .._validate import positive
from ..backend import resolve
from .batch import FAIL, _unpack, execute, point_fingerprint
from .lock import lock
from .points import (DTYPE_RTOLS, check_flow_settings, flow_settings, for_dtype, point_key, rtol_needs_dtype,
                     stored_settings)
from .store import check_fingerprints, check_settings, open_store, prepare_path, sample, select

__all__ = ["run"]


class Bar:
    """A tqdm bar over the points, or nothing."""

    def __init__(self, total, show, desc):
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="pt")

    def update(self, k):
        if self.bar is not None and k:
            self.bar.update(k)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def show_progress(progress):
    if progress is not None:
        return bool(progress)
    from ..flow.progress import _interactive

    return _interactive()


def run(
    points,
    build,
    *,
    t_end=None,
    measure=None,
    measure_batch=None,
    path=None,
    max_batch=None,
    memory=None,
    progress=None,
    retry_failed=False,
    tag=None,
    format=None,
    verify=64,
    backend=None,
    client=None,
    **flow_kwargs,
):
    r"""Run :func:`linflow.gradient_flow` for every point, batched; return a tidy table of rows.

    Parameters
    ----------
    points : sequence of dict
        One dict of parameters per run (e.g. from :func:`~linflow.sweep.grid`).  Its values should
        be JSON-friendly (numbers, strings): they go into the rows and the resume key.
    build : callable ``build(point) -> (Ws, loss)`` or ``(Ws, loss, flow_kwargs)``
        One network (2-D ``W_l``) and its loss for a point.  Points whose networks
        have the same shapes, dtype, flow keywords and loss data are stacked into one
        batch (different targets ``Y`` of :class:`~linflow.losses.Squared` are stacked
        too).  A ``ValueError``/``TypeError`` raised here marks only that point failed.
        Draw randomness from a seeded host generator (``numpy.random.default_rng``,
        ``lf.init.*(seed=...)``) so a point is the same network every time.
    t_end : float or None
        Final time of the flow.  ``None``: no integration; rows then hold only what
        ``measure``/``measure_batch`` return for the initial weights.
    measure : callable ``measure(point, Ws0, traj) -> dict``, optional
        Extra columns for one point: ``Ws0`` are its initial weights and ``traj`` its
        own :class:`~linflow.Trajectory` (host NumPy, batch axis removed; ``None``
        when ``t_end`` is ``None``).
    measure_batch : callable ``measure_batch(Ws0, loss, traj) -> dict of (B,) arrays``, optional
        The same for a whole batch at once (``Ws0`` stacked with batch axis 0, on
        the backend) — faster for batched quantities such as ``lf.lambda_min``.
    path : str, optional
        The results store: a JSON Lines file, or a Parquet dataset folder when the path
        ends in ``.parquet`` (see :mod:`linflow.sweep.store`).  Each finished batch is
        appended (and flushed); points whose key is already stored are skipped, so
        re-running resumes a sweep.  The store has one writer: while a sweep runs it
        holds a lock file beside the store's resolved path (:mod:`linflow.sweep.lock`;
        an ``flock``, released when the process ends, even when it is killed), and a
        second sweep on the same store, under any name, raises
        :class:`~linflow.sweep.SweepLocked`.  Rows store the run settings, and a resume
        whose settings differ from the saved rows' (``t_end``, ``method``, ``rtol``,
        ``atol``, ``tag`` or another flow keyword) raises a ``ValueError`` that names the
        setting; settings are compared and keyed in one normal form, so an ``rtol`` equal
        to the default of the network's dtype (1e-8 in float64, 1.19e-5 in float32: see
        ``linflow.flow.api.default_rtol``) is the same run as no ``rtol``, and rows
        store the ``rtol`` the flow used.  A finished store on read-only
        media is read back without a lock; only a sweep with points left to run needs
        to write.  A path that is a folder (for JSON Lines) or a file (for Parquet), or
        whose folder cannot be created, is a ``ValueError`` before anything runs.
    max_batch : int, optional
        Upper bound on the trajectories per batch.
    memory : int, optional
        Bytes a batch may use (default: half the free memory); the batch size is
        ``memory // bytes_per_trajectory(...)`` (see the course appendix *Numerical
        methods*, Cost model).
    progress : bool or None
        tqdm bar over points; ``None`` shows it only on a terminal (``LINFLOW_PROGRESS``).
    retry_failed : bool
        Re-run points whose saved row failed (default: keep them as they are).
    tag : str, optional
        Extra text in the resume key and the stored settings (a label for the run).
    format : {"jsonl", "parquet"} or None
        The store's format; ``None`` (default) chooses by the suffix of ``path``.
    verify : int or bool
        On a resume, how many of the points already stored are built again to check that
        ``build`` still makes the same networks (their ``fingerprint``), spread evenly
        over the stored points, the first and the last included; ``True``: all of them,
        ``False``: none.  A different network is a ``ValueError`` naming the point.
    backend : str or Backend, optional
        Where the batches run (``"cupy"``, ``"numpy"``, ``"array_api_strict"`` or a
        :class:`~linflow.backend.Backend`).  ``build`` then returns host NumPy arrays: they
        are stacked on the host and each batch is moved to the backend **once**, floating
        data in the backend's dtype, and the batch size comes from that backend's free
        memory.  This is the fast way to sweep on a GPU: building every point on the
        device costs a transfer per array and a check per point.  ``None`` (default): the
        batches run where ``build``'s arrays live.  A backend that cannot be used (CuPy
        without a GPU) raises :class:`~linflow.BackendError` before anything runs.
    client : ``dask.distributed.Client``, ``"local"`` or None
        Run the batches on a Dask cluster (see :mod:`linflow.sweep.cluster`): a
        ``Client`` of any cluster (``LocalCluster``, dask-jobqueue, dask-cuda's
        ``LocalCUDACluster``), or ``"local"`` to start a ``LocalCluster`` of one
        single-threaded worker process per core for this call, its dashboard on
        ``127.0.0.1``; a script that does this must do it under
        ``if __name__ == "__main__":``.  ``build`` and
        ``measure`` are shipped to the workers, each task is one batch sized by the
        worker's memory and ``backend``, and the rows come back to this process, which
        alone writes ``path``.  The rows equal those of ``client=None`` (the default:
        everything runs in this process) in every column but ``seconds``.
    **flow_kwargs
        Passed on to :func:`linflow.gradient_flow` (``method``, ``rtol``, ``atol``,
        ``dt``, ``t_eval``, ``loss_tol``, ``save``, ``diagnostics``, ``max_steps``).
        ``throw`` and ``progress`` are managed by the sweep.  They are checked before
        anything runs or is written: an invalid one (``rtol=-1``) is one ``ValueError``
        or ``TypeError``, not a failed row per point.

    Returns
    -------
    list of dict
        One row per point, in the order of ``points``, with the point's parameters and:
        ``key``; ``ok``; ``status`` (``"done"``, ``"converged"``, ``"diverged"``,
        ``"max_steps"``, ``"failed"``); ``error`` (message or ``None``); and, when
        integrated, ``loss_0``, ``loss_final``, ``t_final``, ``steps``, ``rejected``,
        ``evaluations``, ``seconds`` (the batch's wall time per point); then the
        ``measure`` columns; ``fingerprint`` (what ``build`` made: dtype, shapes, loss
        type and hashes of the weights and the loss data; absent when ``build``
        rejected the point); last ``settings`` (a dict: ``t_end``, ``method``, ``rtol``,
        ``atol``, ``tag`` and any other flow keyword not at its default).

    Notes
    -----
    Each trajectory has its own step size in the batched integrator, so a point's
    numbers do not depend on which other points share its batch (``tests/test_sweep.py``
    checks batched against one-by-one runs).  A batch that runs out of memory
    (``MemoryError``, e.g. CuPy's ``OutOfMemoryError``) is split in halves and retried.
    """
    try:
        points = [dict(p) for p in points]
    except (TypeError, ValueError):
        raise TypeError(
            f"linflow: points must be a sequence of dicts of parameters (e.g. sweep.grid(seed=range(10))); "
            f"got {type(points).__name__} {points!r:.80}."
        ) from None
    if not callable(build):
        raise TypeError(f"linflow: build must be a callable build(point) -> (Ws, loss); got {type(build).__name__}.")
    for bad in ("throw", "progress"):
        if bad in flow_kwargs:
            raise TypeError(f"linflow: sweep.run manages {bad!r} itself; do not pass it.")
    if t_end is not None:
        t_end = positive("t_end", t_end)
    if not isinstance(verify, (bool, int)) or (not isinstance(verify, bool) and verify < 0):
        raise TypeError(f"linflow: verify must be True, False or a number of points >= 0; got {verify!r}.")
    flow = flow_settings(flow_kwargs)
    if client is None:  # with a client, the backend is resolved on the workers (a GPU may be only there)
        backend = None if backend is None else resolve(backend)
    # the dtype of the networks: the backend's where the batches are moved to one, else what build makes
    fixed = None if backend is None or client is not None else _dtype_name(backend.dtype)

    def dtype_of(row):
        fp = row.get("fingerprint")
        return fixed or (fp.split(" ", 1)[0] if isinstance(fp, str) and fp else None)

    def stored_of(row):
        return stored_settings(t_end, flow, tag, dtype_of(row))

    store = None
    if path is not None:
        store = open_store(path, format)
        prepare_path(store)
    with lock(None if store is None else store.path) as writable:
        saved = {}
        if store is not None:
            raw, bad = store.read_raw()
            rows = select(raw, bad, repr(store.path))
            check_settings(path, rows, stored_of)
            saved = {r["key"]: r for r in rows}
        keys = _keys(points, build, t_end, flow, tag, saved, fixed, dtype_of)
        check_flow_settings(t_end, flow_kwargs)
        if saved and verify:
            pairs = [(points[i], saved[k]) for i, k in enumerate(keys) if k in saved]
            if verify is not True:
                pairs = [pairs[j] for j in sample(len(pairs), int(verify))]
            check_fingerprints(path, pairs, lambda p: point_fingerprint(build, p))
        if retry_failed:
            saved = {k: r for k, r in saved.items() if r.get("ok")}
        todo = [i for i, k in enumerate(keys) if k not in saved]
        seen = set()
        todo = [i for i in todo if not (keys[i] in seen or seen.add(keys[i]))]  # duplicate points run once
        if todo and not writable:
            raise PermissionError(
                f"linflow: {len(todo)} point(s) of this sweep are not in {path!r} yet, and its folder cannot be "
                "written (read-only media or no permission); a finished store can be read back there, but a "
                "sweep with points left to run needs a writable path."
            )

        results = {}
        where = {keys[i]: i for i in todo}
        bar = Bar(len(todo), show_progress(progress) and bool(todo), "sweep")

        def emit(rows):
            """The one writer: keep and append the rows of points not yet recorded."""
            new = []
            for row in rows:
                i = where[row["key"]]
                if i not in results:  # a batch re-run after a lost worker brings its rows twice
                    row["settings"] = stored_of(row)
                    results[i] = row
                    new.append(row)
            if store is not None:
                store.append(new)
            bar.update(len(new))

        opts = dict(t_end=t_end, flow_kwargs=flow_kwargs, measure=measure, measure_batch=measure_batch,
                    max_batch=max_batch, memory=memory, backend=backend)
        try:
            if client is None:
                execute(points, keys, todo, build, emit, **opts)
            elif todo:
                from . import cluster

                cluster.execute(client, points, keys, todo, build, emit, **opts)
        finally:
            bar.close()

    out = []
    for i, k in enumerate(keys):
        if i in results:
            out.append(results[i])
        elif k in saved:
            out.append(saved[k])
        else:  # a duplicate of an earlier point
            j = keys.index(k)
            out.append(results.get(j, saved.get(k)))
    return out


def _dtype_name(dtype):
    """``"float64"``, ``"float32"``, ... for a NumPy, CuPy or array-API dtype (None if not known)."""
    try:
        return str(np.dtype(str(dtype).rsplit(".", 1)[-1].strip("'>")))
    except TypeError:
        return None


def _keys(points, build, t_end, flow, tag, saved, fixed, dtype_of):
    """The resume key of every point, its settings in the normal form of the point's dtype.

    Only an explicit ``rtol`` equal to a dtype's default makes the key depend on the dtype
    (``rtol_needs_dtype``); then a point's dtype is the backend's, else
    that of its stored row, else that of what ``build`` makes for it (float64 if it rejects it).
    """
    def key(p, dtype):
        return point_key(p, {"t_end": t_end, "flow": for_dtype(flow, dtype), "tag": tag})

    if not rtol_needs_dtype(flow):
        return [key(p, None) for p in points]
    own = DTYPE_RTOLS[flow["rtol"]]  # the dtype whose default this rtol is
    out = []
    for p in points:
        k_own, k_other = key(p, own), key(p, None if own != "float64" else "float32")
        if fixed is not None:
            out.append(k_own if fixed == own else k_other)
        elif k_own in saved and (dtype_of(saved[k_own]) or "float64") == own:
            out.append(k_own)
        elif k_other in saved:
            out.append(k_other)
        else:
            try:
                dtype = str(_unpack(build(dict(p)))[0][0].dtype)
            except FAIL:
                dtype = None
            out.append(k_own if (dtype or "float64") == own else k_other)
    return out
