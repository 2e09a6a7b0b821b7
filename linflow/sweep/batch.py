"""The batch loop: build each point, stack compatible points into batches, run them, make rows.

Points whose networks have the same shapes, dtype, flow keywords and loss data are stacked
into one batch and integrated by a single call of :func:`linflow.gradient_flow`.  A point
that fails (``build`` rejects it, its trajectory diverges, ``measure`` raises) gets a row
with ``ok = False`` and the error, and the rest of the batch goes on.  Every row of a point
that was built carries a ``fingerprint`` of what ``build`` made (``fingerprint``), which
a resume compares.  The same loop runs in this process and in a Dask task
(:mod:`linflow.sweep.cluster`).
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings

import numpy as np

from ..backend import mover, namespace, to_numpy
from ..flow import DivergenceError, MaxStepsWarning, Status, gradient_flow
from .memory import STATE_WORDS, batch_size
from .points import plain

__all__ = ["execute"]

FAIL = (ValueError, TypeError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)


def _hash_arrays(h, arrays):
    for d in arrays:
        a = np.ascontiguousarray(to_numpy(d))
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h


def fingerprint(Ws, loss):
    """What ``build`` made for a point, as text: dtype, shapes, loss type, hashes of the weights and the loss data.

    ``"float64 2x3 3x2 Squared weights:<12 hex> data:<12 hex>"``: two points with equal
    fingerprints start the same flow.
    """
    host = [np.asarray(to_numpy(W)) for W in Ws]
    shapes = " ".join("x".join(str(s) for s in W.shape) for W in host)
    w = _hash_arrays(hashlib.sha1(), host).hexdigest()[:12]
    d = _hash_arrays(hashlib.sha1(), getattr(loss, "data", ())).hexdigest()[:12]
    return f"{host[0].dtype.name} {shapes} {type(loss).__name__} weights:{w} data:{d}"


def _loss_group(loss, cache):
    """Group key of a loss: its type and a hash of its data (losses with equal data share a batch)."""
    k = id(loss)
    if k not in cache:
        h = _hash_arrays(hashlib.sha1(type(loss).__name__.encode()), getattr(loss, "data", ()))
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



def prepare(build, point, target, lcache):
    """Build one point: ``(Ws, loss, flow_kwargs, xp, signature, fingerprint)``; equal signatures share a batch."""
    Ws, loss, kw = _unpack(build(dict(point)))
    if target is not None:  # stacked on the host, moved once per batch
        Ws = tuple(to_numpy(W) for W in Ws)
    xp = namespace(*Ws)
    sig = (
        tuple(tuple(W.shape) for W in Ws), str(Ws[0].dtype),
        json.dumps(plain(kw), sort_keys=True, default=str),
        type(loss).__name__ if _stackable(loss) else _loss_group(loss, lcache),
    )
    return Ws, loss, kw, xp, sig, fingerprint(Ws, loss)


def point_fingerprint(build, point):
    """The fingerprint of what ``build`` makes for ``point`` (``None`` if it rejects the point)."""
    try:
        Ws, loss, _kw = _unpack(build(dict(point)))
    except FAIL:
        return None
    return fingerprint(Ws, loss)


def batch_size_for(Ws, xp, kw, *, t_end, flow_kwargs, max_batch, memory, target):
    """Trajectories per batch for networks shaped like ``Ws`` (cost model, :func:`~linflow.sweep.batch_size`)."""
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


def execute(points, keys, todo, build, emit, *, t_end, flow_kwargs, measure, measure_batch, max_batch,
            memory, backend):
    """Build the points ``todo`` one by one, run each batch of compatible points, ``emit(rows)`` per batch.

    The batch loop of :func:`~linflow.sweep.run`, in this process or in a Dask task (``backend`` resolved)."""
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
        emit(run_batch(members[0][4], members, points, keys, t_end, kw, measure, measure_batch, move))
        groups[sig] = (bsize, [])

    for i in todo:
        try:
            Ws, loss, kw, xp, sig, fp = prepare(build, points[i], target, lcache)
        except FAIL as exc:
            emit([failed_row(points[i], keys[i], exc)])
            continue
        if sig not in groups:
            bsize = batch_size_for(Ws, xp, kw, t_end=t_end, flow_kwargs=flow_kwargs, max_batch=max_batch,
                                   memory=memory, target=target)
            groups[sig] = (bsize, [])
        groups[sig][1].append((i, Ws, loss, kw, xp, fp))
        if len(groups[sig][1]) >= groups[sig][0]:
            flush(sig)
    for sig in list(groups):
        flush(sig)


def _n_saves(kw):
    te = kw.get("t_eval")
    return 101 if te is None else int(np.size(to_numpy(te)))


def _stackable(loss):
    """Losses whose data may differ within a batch (they accept a batch of targets)."""
    from ..losses import Squared

    return type(loss) is Squared


def failed_row(point, key, exc, fp=None):
    """The row of a point that failed: ``ok = False``, ``status = "failed"`` and the error's text."""
    row = dict(point)
    row.update(key=key, ok=False, status="failed", error=_error_text(exc) if isinstance(exc, BaseException) else str(exc))
    if fp is not None:
        row["fingerprint"] = fp
    return row


def _stack_loss(xp, losses, lcache):
    first = losses[0]
    if all(l is first for l in losses):
        return first
    prints = {_loss_group(l, lcache) for l in losses}
    if len(prints) == 1:
        return first
    # Squared with different targets: one target per network
    return type(first)(xp.stack([l.Y for l in losses], axis=0))


def run_batch(xp, chunk, points, keys, t_end, kw, measure, measure_batch, move=None):
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
        return (run_batch(xp, chunk[:half], points, keys, t_end, kw, measure, measure_batch, move)
                + run_batch(xp, chunk[half:], points, keys, t_end, kw, measure, measure_batch, move))
    except FAIL + (DivergenceError,) as exc:
        if len(chunk) == 1:
            return [failed_row(points[idx[0]], keys[idx[0]], exc, chunk[0][5])]
        rows = []
        for c in chunk:  # isolate the point(s) that break the batch
            rows += run_batch(xp, [c], points, keys, t_end, kw, measure, measure_batch, move)
        return rows
    return _rows(namespace(*Ws0), chunk, points, keys, Ws0, loss, traj, seconds, measure, measure_batch)


def _rows(xp, chunk, points, keys, Ws0, loss, traj, seconds, measure, measure_batch):
    B = len(chunk)
    base = [dict(points[c[0]], key=keys[c[0]]) for c in chunk]
    for r in base:
        r.update(ok=True, status="done", error=None)
    host = None
    if traj is not None:
        from ..network import _cumulative

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
                    r[name] = plain(vals[b])
        except FAIL as exc:
            for r in base:
                r.update(ok=False, status="failed", error=f"measure_batch: {_error_text(exc)}")
    if measure is not None:
        Ws_host = to_numpy(Ws0)
        for b, r in enumerate(base):
            try:
                one = _select(host, b) if host is not None else None
                extra = measure(dict(points[chunk[b][0]]), tuple(W[b] for W in Ws_host), one)
                r.update({k: plain(v) for k, v in dict(extra or {}).items()})
            except FAIL as exc:
                r.update(ok=False, status="failed", error=f"measure: {_error_text(exc)}")
    for c, r in zip(chunk, base):
        r["fingerprint"] = c[5]
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


