r"""Batched sweeps: many initializations or configurations, memory-sized batches, resumable results.

A sweep runs one gradient flow per *point* (a small dict of parameters, e.g.
``{"width": 16, "seed": 3}``).  Points that build networks of the same shape
with the same loss are stacked into one batch and integrated by a single call
of :func:`linflow.gradient_flow`, so a thousand seeds cost about as much as a
few batched runs, not a thousand separate ones.  The batch size comes from the
cost model (see the course appendix *Numerical methods*, Cost model) and the
memory available (or ``max_batch``).  With ``client=`` the batches run on a Dask
cluster (:mod:`linflow.distributed`) and this process stays the one writer.

Results are a *tidy table*: one plain ``dict`` per point, with the point's
parameters, the run's outcome and whatever ``measure`` adds.  With ``path``,
every finished batch is appended to a JSON Lines file, keyed by a hash of the
point and the run settings; running the same sweep again skips the points
already there, so an interrupted sweep resumes where it stopped.

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
>>> len(rows), sorted(rows[0])[:4]
(8, ['depth', 'error', 'evaluations', 'key'])
>>> all(r["loss_final"] < r["loss_0"] for r in rows)
True
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import json
import math
import os
import time
import warnings

import numpy as np

from .backend import mover, namespace, resolve, to_numpy
from .flow import DivergenceError, MaxStepsWarning, Status, gradient_flow
from .flow.api import DEFAULT_RTOL

__all__ = [
    "grid",
    "run",
    "bytes_per_trajectory",
    "batch_size",
    "available_memory",
    "read_rows",
    "write_csv",
    "write_json",
    "point_key",
    "summarize",
    "SweepLocked",
]

#: Words per state entry ``N = sum_l h_{l-1} h_l`` held at once by one step of each method
#: (state, stage slopes, stage points, error, the NumPy workspaces and the driver's checkpoint
#: copy; the course appendix *Numerical methods*, Cost model, gives 5 for RK4).  ``benchmarks/run.py`` (comparison d) measures these
#: with tracemalloc; the values are fitted to its measurements.
STATE_WORDS = {"rk4": 5, "dopri5": 18, "midpoint": 13, "gauss2": 17}

#: gradient_flow's defaults of the settings every row stores
_FLOW_DEFAULTS = {k: inspect.signature(gradient_flow).parameters[k].default for k in ("method", "rtol", "atol")}
_FLOW_DEFAULTS["rtol"] = DEFAULT_RTOL  # the signature says None (an explicit rtol is checked more)

_FAIL = (ValueError, TypeError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)


# --- points -------------------------------------------------------------------------------

def grid(**axes):
    """Every combination of the given parameter values, as a list of dicts (last axis fastest).

    >>> grid(width=[2, 4], seed=range(2))
    [{'width': 2, 'seed': 0}, {'width': 2, 'seed': 1}, {'width': 4, 'seed': 0}, {'width': 4, 'seed': 1}]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(
                f"linflow: grid axis {name!r} must be a sequence of values; got {values!r}. "
                f"Wrap a single value in a list: {name}=[{values!r}]."
            )
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[k]) for k in names))]


def _plain(v):
    """A JSON-friendly copy of ``v`` (NumPy scalars and arrays become Python numbers and lists)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if v is None or isinstance(v, str):
        return v
    if hasattr(v, "shape"):
        a = np.asarray(to_numpy(v))
        return a.item() if a.ndim == 0 else a.tolist()
    return str(v)


def _json_value(v):
    # NaN/inf are not JSON; store them as strings that read back as floats
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v


def _from_json_value(v):
    if v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, list):
        return [_from_json_value(x) for x in v]
    return v


def point_key(point, settings=None):
    """A stable 16-hex-digit hash of a point and the run settings (the resume key)."""
    blob = json.dumps({"point": _plain(point), "settings": _plain(settings)}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


# --- memory ------------------------------------------------------------------------------

def bytes_per_trajectory(dims, *, method="dopri5", dtype="float64", n_saves=101, save_product=False,
                         diagnostics=(), extra_words=0):
    r"""Bytes one trajectory holds during a batched run: the cost model.

    See the course appendix *Numerical methods*, Cost model:

    .. math::  s\,\big(c_{\text{method}} N + (L+1)\,n_{\max}^2
               + S(1 + [\text{product}]\,nm + d)\big),

    with :math:`N=\sum_l h_{l-1}h_l` the state size, ``c`` from :data:`STATE_WORDS`
    (5 for RK4), the prefixes and the loss gradient, and the save buffers: ``S`` save
    points of the loss, of the product if saved and of ``d`` words of diagnostics.

    Parameters
    ----------
    dims : sequence of int
        Layer widths ``(h_0, ..., h_L)`` (``h_0 = n``, ``h_L = m``).
    method : {"dopri5", "midpoint", "gauss2", "rk4"}
    dtype : "float64" or "float32" (or a dtype)
    n_saves : int
        Number of save points.
    save_product : bool
        Whether the product ``W`` is saved at every save point (``save=("loss", "product")``).
    diagnostics : sequence of names
        Named diagnostics saved at every save point (``linflow.flow.DIAGNOSTICS``); a
        callable's size is not known in advance: count it in ``extra_words``.
    extra_words : int
        Further words per trajectory.
    """
    dims = [int(d) for d in dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"linflow: dims must be at least two positive widths (h_0, ..., h_L); got {dims}.")
    if method not in STATE_WORDS:
        raise ValueError(f"linflow: unknown method {method!r}; expected one of {sorted(STATE_WORDS)}.")
    s = 4 if "32" in str(dtype) else 8
    N = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    L = len(dims) - 1
    n, m = dims[0], dims[-1]
    big = max(dims) ** 2
    per_save = 1 + (n * m if save_product else 0) + _diagnostic_words(dims, diagnostics)
    words = STATE_WORDS[method] * N + (L + 1) * big + n_saves * per_save
    return int(s * (words + extra_words))


def _diagnostic_words(dims, diagnostics):
    """Words per save point of the named diagnostics (callables count 0)."""
    if isinstance(diagnostics, str):
        diagnostics = (diagnostics,)
    names = [d for d in diagnostics if isinstance(d, str)]
    if isinstance(diagnostics, dict):
        names = [v for v in diagnostics.values() if isinstance(v, str)]
    size = {
        "imbalance": sum(h * h for h in dims[1:-1]),
        "singular_values": min(dims[0], dims[-1]),
        "sigma_min": 1,
        "lambda_min": 1,
        "weights": sum(a * b for a, b in zip(dims[:-1], dims[1:])),
    }
    return sum(size.get(d, 0) for d in names)


def available_memory(xp=None, device=None):
    """Free memory in bytes where the arrays live (GPU: free device memory; CPU: MemAvailable)."""
    try:
        import array_api_compat

        if xp is not None and array_api_compat.is_cupy_namespace(xp):
            import cupy

            with cupy.cuda.Device(getattr(device, "id", None)):
                free, _total = cupy.cuda.runtime.memGetInfo()
            pool = cupy.get_default_memory_pool()
            return int(free + pool.free_bytes())
    except Exception:  # pragma: no cover - no CuPy
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2 ** 31


#: On a CPU the engine itself splits a NumPy batch over the cores (linflow/flow/parallel.py), and
#: bigger batches amortize Python overhead better (on an idle 2-core machine B = 1000 in one call
#: ran 2.8x faster than batches of 113, benchmarks/README.md); the cap only bounds the working set.
CPU_WORKING_SET = 256 * 2 ** 20


def batch_size(dims, *, memory=None, max_batch=None, xp=None, device=None, fraction=0.5, **cost):
    """How many trajectories to run at once.

    ``memory`` (bytes) defaults to ``fraction`` of :func:`available_memory`; on a CPU
    the batch is also capped so its working set stays near :data:`CPU_WORKING_SET`,
    unless ``max_batch`` is given.  Always >= 1.
    """
    per = bytes_per_trajectory(dims, **cost)
    if memory is None:
        memory = fraction * available_memory(xp, device)
    b = max(1, int(memory // per))
    if max_batch is not None:
        return max(1, min(b, int(max_batch)))
    import array_api_compat

    if xp is None or not array_api_compat.is_cupy_namespace(xp):
        b = min(b, max(32, CPU_WORKING_SET // per))
    return b


# --- results files ---------------------------------------------------------------------

def read_rows(path):
    """Rows already saved in a JSON Lines file (a torn last line from an interruption is skipped)."""
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the write that was interrupted
            rows.append({k: _from_json_value(v) for k, v in row.items()})
    return rows


def _append(path, rows):
    if not path or not rows:
        return
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    torn = False
    if os.path.exists(path) and os.path.getsize(path):
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    with open(path, "a", encoding="utf-8") as fh:
        if torn:  # an interrupted write left half a line: end it, so it stays one bad line
            fh.write("\n")
        for row in rows:
            fh.write(json.dumps(_json_value(_plain(row)), sort_keys=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _columns(rows):
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def write_csv(rows, path):
    """Write rows (list of dicts) as CSV, columns in order of first appearance; no pandas needed.

    Lists and dicts are written as JSON text; missing values as empty cells.
    """
    import csv

    cols = _columns(rows)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            out = []
            for c in cols:
                v = _plain(r.get(c))
                out.append("" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v)
            w.writerow(out)
    return path


def write_json(rows, path):
    """Write rows as one JSON list (NaN and inf as strings)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump([_json_value(_plain(r)) for r in rows], fh, indent=1)
    return path


# --- the sweep -----------------------------------------------------------------------------

class _Bar:
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


def _show_progress(progress):
    if progress is not None:
        return bool(progress)
    from .flow.progress import _interactive

    return _interactive()


def _fingerprint(loss, cache):
    """Group key of a loss: its type and a hash of its data (losses with equal data share a batch)."""
    k = id(loss)
    if k not in cache:
        h = hashlib.sha1(type(loss).__name__.encode())
        for d in getattr(loss, "data", ()):
            a = np.ascontiguousarray(to_numpy(d))
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
        cache[k] = (h.hexdigest(), loss)  # keep the loss alive so its id is not reused
    return cache[k][0]


def _unpack(built):
    if not isinstance(built, tuple) or len(built) not in (2, 3):
        raise TypeError(
            "linflow: build(point) must return (Ws, loss) or (Ws, loss, flow_kwargs); got "
            f"{type(built).__name__}."
        )
    Ws, loss = built[0], built[1]
    kw = dict(built[2]) if len(built) == 3 and built[2] else {}
    if hasattr(Ws, "shape") or not isinstance(Ws, (tuple, list)) or not Ws:
        raise TypeError(f"linflow: build(point) must return a tuple of weights first; got {type(Ws).__name__}.")
    Ws = tuple(Ws)
    if any(W.ndim != 2 for W in Ws):
        raise ValueError(
            "linflow: build(point) must return one network per point (each W_l 2-D); got shapes "
            f"{[tuple(W.shape) for W in Ws]}. Make one point per network instead of a batch."
        )
    return Ws, loss, kw


def _error_text(exc):
    return f"{type(exc).__name__}: {exc}"


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
    backend=None,
    client=None,
    **flow_kwargs,
):
    r"""Run :func:`linflow.gradient_flow` for every point, batched; return a tidy table of rows.

    Parameters
    ----------
    points : sequence of dict
        One dict of parameters per run (e.g. from :func:`grid`).  Its values should
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
        JSON Lines file.  Each finished batch is appended (and flushed); points whose
        key is already in the file are skipped, so re-running resumes a sweep.  The
        file has one writer: while a sweep runs it holds ``path + ".lock"`` (an
        ``flock``, released when the process ends, even when it is killed), and a second
        sweep on the same ``path`` raises :class:`~linflow.sweep.SweepLocked`.  Rows store the run
        settings, and a resume whose settings differ from the saved rows' (``t_end``,
        ``method``, ``rtol``, ``atol``, ``tag`` or another flow keyword) raises a
        ``ValueError`` that names the setting.
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
        Run the batches on a Dask cluster (see :mod:`linflow.distributed`): a
        ``Client`` of any cluster (``LocalCluster``, dask-jobqueue, dask-cuda's
        ``LocalCUDACluster``), or ``"local"`` to start a ``LocalCluster`` of one
        single-threaded worker process per core for this call.  ``build`` and
        ``measure`` are shipped to the workers, each task is one batch sized by the
        worker's memory and ``backend``, and the rows come back to this process, which
        alone writes ``path``.  The rows equal those of ``client=None`` (the default:
        everything runs in this process) in every column but ``seconds``.
    **flow_kwargs
        Passed on to :func:`linflow.gradient_flow` (``method``, ``rtol``, ``atol``,
        ``dt``, ``t_eval``, ``loss_tol``, ``save``, ``diagnostics``, ``max_steps``).
        ``throw`` and ``progress`` are managed by the sweep.

    Returns
    -------
    list of dict
        One row per point, in the order of ``points``, with the point's parameters and:
        ``key``; ``ok``; ``status`` (``"done"``, ``"converged"``, ``"diverged"``,
        ``"max_steps"``, ``"failed"``); ``error`` (message or ``None``); and, when
        integrated, ``loss_0``, ``loss_final``, ``t_final``, ``steps``, ``rejected``,
        ``evaluations``, ``seconds`` (the batch's wall time per point); then the
        ``measure`` columns; last ``settings`` (a dict: ``t_end``, ``method``, ``rtol``,
        ``atol``, ``tag`` and any other flow keyword given).

    Notes
    -----
    Each trajectory has its own step size in the batched integrator, so a point's
    numbers do not depend on which other points share its batch (``tests/test_sweep.py``
    checks batched against one-by-one runs).  A batch that runs out of memory
    (``MemoryError``, e.g. CuPy's ``OutOfMemoryError``) is split in halves and retried.
    """
    points = [dict(p) for p in points]
    if not callable(build):
        raise TypeError(f"linflow: build must be a callable build(point) -> (Ws, loss); got {type(build).__name__}.")
    for bad in ("throw", "progress"):
        if bad in flow_kwargs:
            raise TypeError(f"linflow: sweep.run manages {bad!r} itself; do not pass it.")
    if t_end is not None:
        t_end = float(t_end)
    if client is None:  # with a client, the backend is resolved on the workers (a GPU may be only there)
        backend = None if backend is None else resolve(backend)
    settings = {"t_end": t_end, "flow": {k: _plain(v) for k, v in sorted(flow_kwargs.items())}, "tag": tag}
    keys = [point_key(p, settings) for p in points]
    stored = _stored_settings(t_end, flow_kwargs, tag)
    with _lock(path):
        saved = {}
        for row in read_rows(path):
            if "key" in row:
                _check_settings(path, row, stored)
                saved[row["key"]] = row
        if retry_failed:
            saved = {k: r for k, r in saved.items() if r.get("ok")}
        todo = [i for i, k in enumerate(keys) if k not in saved]
        seen = set()
        todo = [i for i in todo if not (keys[i] in seen or seen.add(keys[i]))]  # duplicate points run once

        results = {}
        where = {keys[i]: i for i in todo}
        bar = _Bar(len(todo), _show_progress(progress) and bool(todo), "sweep")

        def emit(rows):
            """The one writer: keep and append the rows of points not yet recorded."""
            new = []
            for row in rows:
                i = where[row["key"]]
                if i not in results:  # a batch re-run after a lost worker brings its rows twice
                    row["settings"] = dict(stored)
                    results[i] = row
                    new.append(row)
            _append(path, new)
            bar.update(len(new))

        opts = dict(t_end=t_end, flow_kwargs=flow_kwargs, measure=measure, measure_batch=measure_batch,
                    max_batch=max_batch, memory=memory, backend=backend)
        try:
            if client is None:
                _execute(points, keys, todo, build, emit, **opts)
            elif todo:
                from . import distributed

                distributed.execute(client, points, keys, todo, build, emit, **opts)
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


def _prepare(build, point, target, lcache):
    """Build one point: ``(Ws, loss, flow_kwargs, xp, signature)``; points of equal signature share a batch."""
    Ws, loss, kw = _unpack(build(dict(point)))
    if target is not None:  # stacked on the host, moved once per batch
        Ws = tuple(to_numpy(W) for W in Ws)
    xp = namespace(*Ws)
    sig = (
        tuple(tuple(W.shape) for W in Ws), str(Ws[0].dtype),
        json.dumps(_plain(kw), sort_keys=True, default=str),
        type(loss).__name__ if _stackable(loss) else _fingerprint(loss, lcache),
    )
    return Ws, loss, kw, xp, sig


def _batch_size_for(Ws, xp, kw, *, t_end, flow_kwargs, max_batch, memory, target):
    """Trajectories per batch for networks shaped like ``Ws`` (cost model, :func:`batch_size`)."""
    full = dict(flow_kwargs)
    full.update(kw)
    method = full.get("method", "dopri5")
    dims = [Ws[0].shape[0]] + [W.shape[1] for W in Ws]
    return batch_size(
        dims, memory=memory, max_batch=max_batch if t_end is not None else (max_batch or 4096),
        xp=xp if target is None else target.xp, device=None if target is None else target.device,
        method=method if isinstance(method, str) and method in STATE_WORDS else "dopri5",
        dtype=str(Ws[0].dtype if target is None else target.dtype), n_saves=_n_saves(full),
        save_product="product" in tuple(full.get("save", ("loss",))),
        diagnostics=full.get("diagnostics", ()),
    )


def _execute(points, keys, todo, build, emit, *, t_end, flow_kwargs, measure, measure_batch, max_batch,
             memory, backend):
    """Build the points ``todo`` one by one, run each batch of compatible points, ``emit(rows)`` per batch.

    The batch loop of :func:`run`, in this process or in a Dask task (``backend`` resolved)."""
    target = backend
    move = None if target is None else mover(target)
    lcache = {}
    groups = {}  # signature -> (batch size, pending members)

    def flush(sig):
        bsize, members = groups[sig]
        if not members:
            return
        kw = dict(flow_kwargs)
        kw.update(members[0][3])
        emit(_run_batch(members[0][4], members, points, keys, t_end, kw, measure, measure_batch, move))
        groups[sig] = (bsize, [])

    for i in todo:
        try:
            Ws, loss, kw, xp, sig = _prepare(build, points[i], target, lcache)
        except _FAIL as exc:
            emit([_failed_row(points[i], keys[i], exc)])
            continue
        if sig not in groups:
            bsize = _batch_size_for(Ws, xp, kw, t_end=t_end, flow_kwargs=flow_kwargs, max_batch=max_batch,
                                    memory=memory, target=target)
            groups[sig] = (bsize, [])
        groups[sig][1].append((i, Ws, loss, kw, xp))
        if len(groups[sig][1]) >= groups[sig][0]:
            flush(sig)
    for sig in list(groups):
        flush(sig)


# --- one writer, one set of settings per results file ---------------------------------------

class SweepLocked(RuntimeError):
    """Another sweep is writing the same results file."""


@contextlib.contextmanager
def _lock(path):
    """Hold ``path + ".lock"`` (``flock``: released by the OS when the process ends) while a sweep runs."""
    if not path:
        yield
        return
    import fcntl
    import socket

    lock = os.path.abspath(path) + ".lock"
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SweepLocked(
                f"linflow: another sweep is writing {path!r} ({holder}; lock file {lock!r}). A results "
                f"file has one writer: wait for that sweep to finish, or give this one another path."
            ) from None
        try:  # the lock file we hold must still be the one at that path (its last holder unlinks it)
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        finally:
            os.close(fd)  # closing releases the flock


def _stored_settings(t_end, flow_kwargs, tag):
    """The run settings every row stores: ``t_end``, ``method``, ``rtol``, ``atol``, ``tag``, other flow keywords."""
    out = {"t_end": t_end}
    for name, default in _FLOW_DEFAULTS.items():
        out[name] = flow_kwargs.get(name, default)
    out["tag"] = tag
    out.update((k, v) for k, v in sorted(flow_kwargs.items()) if k not in out)
    return json.loads(json.dumps(_json_value(_plain(out))))  # as a row read back from the file has it


def _check_settings(path, row, stored):
    """Refuse to resume ``path`` with settings other than those its rows were run with."""
    saved = row.get("settings")
    if not isinstance(saved, dict) or saved == stored:
        return  # (rows written before settings were stored carry them only in their key)
    changed = [k for k in (*stored, *(k for k in saved if k not in stored)) if saved.get(k) != stored.get(k)]
    what = "; ".join(f"{k}: saved {saved.get(k)!r}, now {stored.get(k)!r}" for k in changed)
    raise ValueError(
        f"linflow: {path!r} holds rows of a sweep run with other settings ({what}). A resume must use "
        f"the settings of the saved rows: pass the same {', '.join(changed)}, or write to another path."
    )


def _n_saves(kw):
    te = kw.get("t_eval")
    return 101 if te is None else int(np.size(to_numpy(te)))


def _stackable(loss):
    """Losses whose data may differ within a batch (they accept a batch of targets)."""
    from .losses import Squared

    return type(loss) is Squared


def _failed_row(point, key, exc, status="failed"):
    row = dict(point)
    row.update(key=key, ok=False, status=status, error=_error_text(exc) if isinstance(exc, BaseException) else str(exc))
    return row


def _stack_loss(xp, losses, lcache):
    first = losses[0]
    if all(l is first for l in losses):
        return first
    prints = {_fingerprint(l, lcache) for l in losses}
    if len(prints) == 1:
        return first
    # Squared with different targets: one target per network
    return type(first)(xp.stack([l.Y for l in losses], axis=0))


def _run_batch(xp, chunk, points, keys, t_end, kw, measure, measure_batch, move=None):
    """Run one batch; if the batch as a whole fails, fall back to one point at a time.

    With ``move``, the batch is stacked on the host and moved to the backend once."""
    idx = [c[0] for c in chunk]
    try:
        Ws0 = tuple(xp.stack([c[1][l] for c in chunk], axis=0) for l in range(len(chunk[0][1])))
        loss = _stack_loss(xp, [c[2] for c in chunk], {})
        if move is not None:
            Ws0 = tuple(move(W) for W in Ws0)
            loss = loss._moved(move)
        t0 = time.perf_counter()
        traj = None
        if t_end is not None:
            with warnings.catch_warnings():  # a row records its status (max_steps) instead
                warnings.simplefilter("ignore", MaxStepsWarning)
                traj = gradient_flow(Ws0, loss, t_end, throw=False, progress=False, **kw)
        seconds = (time.perf_counter() - t0) / len(chunk)
    except MemoryError:  # the batch did not fit (e.g. CuPy's OutOfMemoryError): halve it
        if len(chunk) == 1:
            raise
        half = len(chunk) // 2
        return (_run_batch(xp, chunk[:half], points, keys, t_end, kw, measure, measure_batch, move)
                + _run_batch(xp, chunk[half:], points, keys, t_end, kw, measure, measure_batch, move))
    except _FAIL + (DivergenceError,) as exc:
        if len(chunk) == 1:
            return [_failed_row(points[idx[0]], keys[idx[0]], exc)]
        rows = []
        for c in chunk:  # isolate the point(s) that break the batch
            rows += _run_batch(xp, [c], points, keys, t_end, kw, measure, measure_batch, move)
        return rows
    return _rows(namespace(*Ws0), chunk, points, keys, Ws0, loss, traj, seconds, measure, measure_batch)


def _rows(xp, chunk, points, keys, Ws0, loss, traj, seconds, measure, measure_batch):
    B = len(chunk)
    base = [dict(points[c[0]], key=keys[c[0]]) for c in chunk]
    for r in base:
        r.update(ok=True, status="done", error=None)
    host = None
    if traj is not None:
        from .network import _cumulative

        final = tuple(traj.weights)
        v0 = to_numpy(loss.value(_cumulative(xp, Ws0)[-1]))
        vT = to_numpy(loss.value(_cumulative(xp, final)[-1]))
        status = np.asarray(traj.status).reshape(B)
        tf = np.asarray(to_numpy(traj.t_final)).reshape(B)
        host = traj.to_numpy()
        for b, r in enumerate(base):
            st = Status(int(status[b]))
            r.update(
                ok=bool(st in (Status.DONE, Status.CONVERGED)), status=st.name.lower(),
                error=None if st in (Status.DONE, Status.CONVERGED) else st.message,
                loss_0=float(v0[b]), loss_final=float(vT[b]), t_final=float(tf[b]),
                steps=int(traj.stats["steps"][b]), rejected=int(traj.stats["rejected"][b]),
                evaluations=int(traj.stats["evaluations"][b]), seconds=float(seconds),
            )
    if measure_batch is not None:
        try:
            cols = measure_batch(Ws0, loss, traj)
            for name, vals in cols.items():
                vals = np.asarray(to_numpy(vals)) if hasattr(vals, "shape") else list(vals)
                if len(vals) != B:
                    raise ValueError(
                        f"linflow: measure_batch column {name!r} has length {len(vals)}; expected one "
                        f"value per point of the batch ({B})."
                    )
                for b, r in enumerate(base):
                    r[name] = _plain(vals[b])
        except _FAIL as exc:
            for r in base:
                r.update(ok=False, status="failed", error=f"measure_batch: {_error_text(exc)}")
    if measure is not None:
        Ws_host = to_numpy(Ws0)
        for b, r in enumerate(base):
            try:
                one = _select(host, b) if host is not None else None
                extra = measure(dict(points[chunk[b][0]]), tuple(W[b] for W in Ws_host), one)
                r.update({k: _plain(v) for k, v in dict(extra or {}).items()})
            except _FAIL as exc:
                r.update(ok=False, status="failed", error=f"measure: {_error_text(exc)}")
    return base


def _select(traj, b):
    """Trajectory ``b`` of a host (NumPy) batch of trajectories, the batch axis removed."""
    import dataclasses

    def s1(a):
        return None if a is None else np.asarray(a)[:, b]

    t = np.asarray(traj.t)
    return dataclasses.replace(
        traj,
        t=t[:, b] if t.ndim == 2 else t,
        loss=s1(traj.loss),
        product=s1(traj.product),
        diagnostics={k: s1(v) for k, v in traj.diagnostics.items()},
        weights=tuple(np.asarray(W)[b] for W in traj.weights),
        status=np.asarray(traj.status)[b],
        t_final=np.asarray(traj.t_final)[b],
        stats={k: np.asarray(v)[b] for k, v in traj.stats.items()},
    )


def summarize(rows, by, value):
    """Group rows by column ``by`` and give count, failures and quantiles of ``value`` per group.

    Returns a list of dicts ``{by, n, failed, min, q25, median, q75, max, mean}`` (failed
    rows and missing values are left out of the statistics).
    """
    out = {}
    for r in rows:
        out.setdefault(r.get(by), []).append(r)
    table = []
    for g, rs in out.items():
        vals = np.array([r[value] for r in rs if r.get("ok") and r.get(value) is not None], dtype=float)
        q = np.quantile(vals, [0, 0.25, 0.5, 0.75, 1.0]) if vals.size else [math.nan] * 5
        table.append({by: g, "n": len(rs), "failed": sum(not r.get("ok") for r in rs),
                      "min": float(q[0]), "q25": float(q[1]), "median": float(q[2]),
                      "q75": float(q[3]), "max": float(q[4]),
                      "mean": float(vals.mean()) if vals.size else math.nan})
    return table

