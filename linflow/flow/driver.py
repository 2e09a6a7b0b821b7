"""The batched integration loop: per-trajectory steps, save points, no per-step host sync.

Every trajectory carries its own ``t`` and ``dt``; accepting or rejecting a step
is a mask, never a Python branch.  The host looks at the state only every
``check_every`` steps (one small transfer) to decide whether all trajectories
are done, to report progress, and to compact the batch when few remain active.

Saving uses the solver's dense output (adaptive methods) or lands steps exactly
on the save times (fixed-step methods).  The number of save points crossed in
one adaptive step is not known in advance without a sync, so the loop does a
fixed number of save passes per step; if a check finds that a step crossed
more, the loop rolls back to the last check (all updates are functional, so the
old state is still there) and redoes those steps with more passes.  The Gauss
methods use the same rollback when a fixed-point iteration needs a larger
budget.  Results are therefore identical to a loop that synchronised every step.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from ..network import _cumulative, lambda_max_bound
from .progress import progress_bar
from .solvers import bcast, field
from .trajectory import DivergenceError, Status, Trajectory

__all__ = ["integrate"]

_SCALARS = ("t", "dt", "value", "active", "status", "steps", "rejected", "evals", "iters", "idx")


class _HostNamespace:
    """array_api_compat's NumPy namespace, with NumPy's own functions for the driver's
    per-step calls on small per-trajectory vectors.

    The compat wrappers (device and dtype handling) cost microseconds per call, which adds
    up over the ~60 calls of a step; NumPy's functions do the same for these arguments.
    Everything else is the compat namespace's.
    """

    full_like = staticmethod(np.full_like)
    where = staticmethod(np.where)
    take = staticmethod(np.take)
    isfinite = staticmethod(np.isfinite)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    abs = staticmethod(np.abs)

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        return getattr(self._xp, name)

    @staticmethod
    def astype(x, dtype, /, *, copy=True):
        return x.astype(dtype, copy=copy)

    @staticmethod
    def any(x, /, *, axis=None, keepdims=False):
        return x.any(axis=axis, keepdims=keepdims)

    @staticmethod
    def zeros_like(x, /, *, dtype=None, device=None):
        return np.zeros(x.shape, dtype=x.dtype if dtype is None else dtype)

    @staticmethod
    def ones_like(x, /, *, dtype=None, device=None):
        out = np.empty(x.shape, dtype=x.dtype if dtype is None else dtype)
        out.fill(1)
        return out


def _clip(xp, x, lo, hi):
    # array_api_compat's generic clip costs tens of microseconds per call on NumPy
    return np.clip(x, lo, hi) if isinstance(x, np.ndarray) else xp.clip(x, lo, hi)


def _where(xp, mask, a, b):
    return xp.where(bcast(mask, a), a, b)


def _tree_where(xp, mask, a, b):
    """Per-trajectory choice between two states; on NumPy (where looking at the mask is
    free) the common cases "all" and "none" cost no pass over the state."""
    if isinstance(mask, np.ndarray):
        if mask.all():
            return tuple(a)
        if not mask.any():
            return tuple(b)
    return tuple(_where(xp, mask, x, y) for x, y in zip(a, b))


class _State(dict):
    """Per-trajectory arrays (batch axis 0) under fixed keys; updated functionally."""

    def take(self, xp, index):
        out = _State()
        for k, v in self.items():
            if v is None:
                out[k] = None
            elif isinstance(v, tuple):
                out[k] = tuple(xp.take(a, index, axis=0) for a in v)
            elif isinstance(v, dict):
                out[k] = {n: xp.take(a, index, axis=0) for n, a in v.items()}
            else:
                out[k] = xp.take(v, index, axis=0)
        return out


def _concat(xp, parts, key):
    first = parts[0][key]
    if isinstance(first, tuple):
        return tuple(xp.concat([p[key][i] for p in parts], axis=0) for i in range(len(first)))
    if isinstance(first, dict):
        return {n: xp.concat([p[key][n] for p in parts], axis=0) for n in first}
    return xp.concat([p[key] for p in parts], axis=0)


def integrate(
    xp,
    y0,
    loss,
    solver,
    *,
    t_end,
    dt0,
    ts,
    savers,
    loss_tol=None,
    max_steps=100_000,
    check_every=8,
    throw=True,
    progress=None,
    max_growth=1e10,
):
    """Integrate the batch ``y0`` (tuple of layers with batch axis 0) from t=0 to ``t_end``.

    ``ts`` is a host NumPy vector of save times in [0, t_end]; ``savers`` maps a
    name to ``fn(xp, y, cum, value, loss) -> array or tuple``.  Returns a
    :class:`Trajectory` with batch axis 0 (the caller restores the batch shape).
    """
    if isinstance(y0[0], np.ndarray):
        xp = _HostNamespace(xp)
    B = y0[0].shape[0]
    dtype = y0[0].dtype
    dev = _device(y0[0])
    S = len(ts)
    ts_dev = xp.asarray(np.asarray(ts, dtype=np.float64), dtype=dtype, device=dev)
    zeros = xp.zeros((B,), dtype=dtype, device=dev)
    izeros = xp.zeros((B,), dtype=_index_dtype(xp, dev), device=dev)

    value, f = field(xp, y0, loss)
    value0 = value
    st = _State(
        t=zeros,
        dt=xp.asarray(dt0, dtype=dtype, device=dev) + zeros if not hasattr(dt0, "shape") else dt0,
        value=value,
        active=xp.ones((B,), dtype=xp.bool, device=dev),
        status=izeros,
        steps=izeros,
        rejected=izeros,
        evals=izeros + 1,
        iters=izeros,
        iters_total=izeros,
        idx=izeros,
        y=tuple(y0),
        f=f,
        bufs=None,
        param=getattr(solver, "param", None),
    )
    if loss_tol is not None:
        conv = st["value"] <= loss_tol
        st["active"] = st["active"] & ~conv
        st["status"] = xp.where(conv, izeros + int(Status.CONVERGED), st["status"])
    # a loss that grows by max_growth over max(|f(0)|, 1) is an explosion (GD past its
    # stability limit); the floor keeps a start at f = 0 from reading round-off as one
    st["limit"] = (
        xp.maximum(xp.abs(value0), xp.ones_like(value0)) * max_growth if max_growth else None
    )
    # buffers (B, S, ...) filled with NaN; saves at t = 0 recorded now
    init = _save_values(xp, savers, st["y"], st["value"], loss)
    st["bufs"] = {
        k: xp.full((B, S) + tuple(v.shape[1:]), math.nan, dtype=v.dtype, device=dev)
        for k, v in init.items()
    }
    for _ in range(int(np.sum(np.asarray(ts) <= 0))):
        st = _record(xp, st, init, xp.ones((B,), dtype=xp.bool, device=dev), S)

    on_host = isinstance(y0[0], np.ndarray)
    gid = np.arange(B)
    done_parts = []  # (host global ids, state) of trajectories removed by compaction
    n_pass = 1
    it_seen = 0
    it = 0
    checkpoint = (st, it, loss)
    bar = progress_bar(progress, t_end)
    # non-finite trial values (a rejected step, an exploding GD step) are expected and handled by
    # masks and status codes, so NumPy's floating-point warnings would only be noise here
    errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    errstate.__enter__()
    try:
        while True:
            flags = None
            for _ in range(check_every):
                st, f_iter = _one_step(xp, st, loss, solver, t_end, ts_dev, S, savers, n_pass,
                                       loss_tol, max_steps)
                flags = f_iter if flags is None else flags | f_iter
                it += 1
            # --- the one host sync per check -------------------------------------------
            summary = xp.stack([
                xp.astype(xp.sum(xp.astype(st["active"], xp.int32)), dtype),
                xp.astype(flags[0], dtype),
                xp.astype(flags[1], dtype),
                xp.min(xp.where(st["active"], st["t"], xp.asarray(t_end, dtype=dtype, device=dev))),
                xp.astype(xp.max(st["iters"]) if solver.adaptive is False else 0 * st["t"][0], dtype),
            ])
            n_active, missed, unresolved, t_min, max_it = (float(v) for v in to_numpy(summary))
            if missed or unresolved:
                # redo the steps since the last check with a larger budget
                st, it, loss = checkpoint
                if missed:
                    n_pass *= 2
                if unresolved:
                    if solver.budget >= solver.max_iterations:
                        raise RuntimeError(
                            f"linflow: {solver.name}: the fixed-point iteration still improves after "
                            f"{solver.max_iterations} iterations; reduce the step size."
                        )
                    solver.budget = min(2 * solver.budget, solver.max_iterations)
                continue
            if not solver.adaptive and max_it > 0:
                # fit the budget to the hardest step seen so far, with headroom: a budget
                # that is too small costs a rollback of the whole window
                it_seen = max(it_seen, max_it)
                solver.budget = max(4, min(solver.max_iterations, math.ceil(1.25 * it_seen) + 2))
            if bar is not None:
                bar.update_to(t_min if n_active else t_end)
            status_host = None
            if throw:
                status_host = to_numpy(st["status"])
                if np.any(status_host == Status.DIVERGED):
                    _raise_divergence(xp, st, status_host, gid, done_parts, loss, solver, ts, B, y0)
            if n_active == 0:
                break
            cur = st["t"].shape[0]
            # finished trajectories leave the batch: on the host as soon as a quarter of it is
            # done (a copy of the state costs less than a few steps of a quarter of the batch);
            # on a device, at half (each compaction there means host index transfers)
            if cur >= 16 and n_active <= (cur * 3 // 4 if on_host else cur // 2):
                act = to_numpy(st["active"]).astype(bool)
                keep = np.nonzero(act)[0]
                gone = np.nonzero(~act)[0]
                keep_dev = _idx(xp, keep, dev)
                done_parts.append((gid[gone], st.take(xp, _idx(xp, gone, dev))))
                st = st.take(xp, keep_dev)
                loss = loss.take(keep_dev, 1)  # per-network data (e.g. batched targets) follow
                gid = gid[keep]
            checkpoint = (st, it, loss)
    finally:
        errstate.__exit__(None, None, None)
        if bar is not None:
            bar.close()
    return _assemble(xp, st, gid, done_parts, ts, solver, dev)


def _index_dtype(xp, dev):
    """The namespace's default indexing dtype on ``dev`` (int64 on NumPy, CuPy and strict)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]
    except Exception:  # pragma: no cover - namespaces without the inspection API
        return xp.int64


def _device(a):
    import array_api_compat

    return array_api_compat.device(a)


def _idx(xp, host_index, dev):
    """Host indices moved to ``dev`` in the indexing dtype (used at compaction and assembly only)."""
    return xp.asarray(np.asarray(host_index, dtype=np.int64), dtype=_index_dtype(xp, dev), device=dev)


def _save_values(xp, savers, y, value, loss):
    cum = _cumulative(xp, y)
    out = {}
    for name, fn in savers.items():
        v = fn(xp, y, cum, value, loss)
        if isinstance(v, tuple):
            for i, a in enumerate(v, 1):
                out[f"{name}_{i}"] = a
        else:
            out[name] = v
    return out


def _record(xp, st, values, write, S):
    """Write ``values`` at each trajectory's save index where ``write``; advance the index.

    The device path's save pass (one value per trajectory).  Namespaces with integer-array
    assignment (NumPy, CuPy, PyTorch) write in place at one entry per trajectory;
    others (array_api_strict) rebuild each buffer with ``where`` over all its save
    points.  In-place writes survive a rollback to the last check, and that is safe: the
    redo writes again every save point the discarded steps wrote (it crosses at least the
    same ones), with the same values.
    """
    idx = st["idx"]
    st = _State(st)
    if _can_scatter(xp):
        rows = xp.arange(idx.shape[0], dtype=idx.dtype, device=_device(idx))
        col = _clip(xp, idx, 0, S - 1)
        for k, buf in st["bufs"].items():
            v = values[k]
            buf[rows, col] = xp.where(bcast(write, v), v, buf[rows, col])
    else:
        st["bufs"] = _record_where(xp, st["bufs"], values, idx, write, S)
    st["idx"] = idx + xp.astype(write, idx.dtype)
    return st


def _record_where(xp, bufs, values, idx, write, S):
    """Functional save: a one-hot ``where`` over every buffer, cost ``B x S`` per call."""
    onehot = (xp.arange(S, dtype=idx.dtype, device=_device(idx))[None, :] == idx[:, None]) & write[:, None]
    out = {}
    for k, buf in bufs.items():
        mask = onehot[(...,) + (None,) * (buf.ndim - 2)]
        out[k] = xp.where(mask, values[k][:, None, ...], buf)
    return out


#: Which save write the device path uses: ``None`` chooses by namespace (see :func:`_record`);
#: the tests set ``"where"`` or ``"scatter"`` to compare both, and ``HOST_SAVES = False`` sends
#: NumPy through the device path.
SCATTER = None
HOST_SAVES = True


def _can_scatter(xp):
    if SCATTER is not None:
        return SCATTER == "scatter"
    import array_api_compat

    inner = getattr(xp, "_xp", xp)
    return (array_api_compat.is_numpy_namespace(inner) or array_api_compat.is_cupy_namespace(inner)
            or array_api_compat.is_torch_namespace(inner))


def _write_rows(st, values, rows, pos, idx_new):
    """Host save: ``values`` (one per crossing) into the buffers at ``(rows, pos)``, in place."""
    st = _State(st)
    for k, buf in st["bufs"].items():
        buf[rows, pos] = values[k]
    st["idx"] = idx_new
    return st


#: Gather the slopes of the crossing trajectories when fewer than 1/GATHER_BELOW of the batch cross
GATHER_BELOW = 8


def _take_dense(dense, rows):
    if hasattr(dense, "take"):  # packed dense output (linflow.flow.solvers._PackedDense)
        return dense.take(rows)
    return tuple(tuple(a[rows] for a in k) for k in dense)


def _save_crossed(xp, st, savers, loss, solver, ts_dev, accept, t, h, t_new, y, dense):
    """Host, adaptive step: one save pass for every save point that the step crossed.

    When many trajectories cross a point, the dense output is evaluated for the whole
    batch (one stage sum, cheaper than gathering the slopes) and the crossing rows kept;
    when few do, only their slopes are gathered.  Either way a trajectory's numbers are
    those of a full-batch evaluation.  The saved quantities are then computed once per
    crossing and written in place: saving costs ``B x S`` in all, not ``B x S`` per step.
    """
    idx = st["idx"]
    count = np.where(accept, np.maximum(np.searchsorted(ts_dev, t_new, side="right") - idx, 0), 0)
    if not count.any():
        return st
    safe_h = np.where(h > 0, h, 1.0)
    last = ts_dev.shape[0] - 1
    st = _State(st)
    B, K = h.shape[0], int(count.max())
    for j0 in range(0, K, 2):  # a trajectory's j-th save points, two at a time
        sel = np.nonzero(count > j0)[0]
        if GATHER_BELOW * sel.size < B:  # few cross: gather their slopes
            src = sel
            ys = tuple(a[sel] for a in y)
            args = (h[sel], _take_dense(dense, sel))
        else:  # many cross: the whole batch (non-crossing rows get theta = 0, unused)
            src = np.arange(B)
            ys, args = y, (h, dense)
        pair = [j for j in (j0, j0 + 1) if j < K]
        thetas = []
        for j in pair:
            p = np.minimum(idx[src] + j, last)
            theta = np.clip((ts_dev[p] - t[src]) / safe_h[src], 0.0, 1.0)
            thetas.append(np.where(count[src] > j, theta, 0.0))
        for j, layers in zip(pair, solver.interpolate_many(xp, ys, *args, thetas)):
            m = count[src] > j
            if m.all():  # no copy of the layers
                rows, part = src, layers
            else:
                rows, part = src[m], tuple(a[m] for a in layers)
            vals = _save_values(xp, savers, part, None, loss if rows.size == B else loss.take(rows, 1))
            for k, buf in st["bufs"].items():
                buf[rows, idx[rows] + j] = vals[k]
    st["idx"] = idx + count
    return st


def _one_step(xp, st, loss, solver, t_end, ts_dev, S, savers, n_pass, loss_tol, max_steps):
    t, dt, active, y = st["t"], st["dt"], st["active"], st["y"]
    dtype = t.dtype
    remaining = t_end - t
    next_save = xp.take(ts_dev, _clip(xp, st["idx"], 0, S - 1))
    # a step that would stop just short of t_end (or of a save time, for fixed-step
    # methods) is stretched to land on it, so no sliver steps follow
    # (the slack also absorbs the round-off of t itself, a few ulp of t_end)
    slack = dt * (1.0 + 1e-6) + 64 * float(xp.finfo(dtype).eps) * t_end
    h = xp.where(remaining <= slack, remaining, dt)
    if not solver.adaptive:
        to_save = xp.where(st["idx"] < S, next_save - t, remaining)
        h = xp.where(to_save <= slack, to_save, xp.minimum(h, to_save))
    h = xp.where(active, h, xp.zeros_like(h))
    if st.get("param") is None:
        res = solver.step(xp, y, st["value"], st["f"], h, loss)
    else:  # a per-trajectory solver parameter (the GD step size) travels with the state
        res = solver.step(xp, y, st["value"], st["f"], h, loss, param=st["param"])
    finite = xp.isfinite(res.value1)
    if res.err is not None:
        finite = finite & xp.isfinite(res.err)
    if solver.adaptive:
        accept = active & finite & (res.err <= 1.0)
    else:
        accept = active & finite & ~res.failed
        if res.unresolved is not None:
            accept = accept & ~res.unresolved
    # a loss that explodes (GD beyond its stability limit) is divergence: keep the last sane state
    exploded = xp.zeros_like(accept)
    if st.get("limit") is not None:
        exploded = accept & (res.value1 > st["limit"])
        if not solver.adaptive:
            accept = accept & ~exploded
    # exact landing on t_end / save times
    lands_end = h >= remaining
    t_end_arr = t_end if isinstance(t, np.ndarray) else xp.asarray(t_end, dtype=dtype, device=_device(t))
    t_new = xp.where(lands_end, t_end_arr, t + h)
    if not solver.adaptive:
        lands_save = (st["idx"] < S) & (h >= next_save - t) & ~lands_end
        t_new = xp.where(lands_save, next_save, t_new)

    new = _State(st)
    # --- save points inside the accepted step --------------------------------------------
    on_host = isinstance(t, np.ndarray) and HOST_SAVES
    if solver.adaptive and on_host:
        new = _save_crossed(xp, new, savers, loss, solver, ts_dev, accept, t, h, t_new, y, res.dense)
        missed = xp.any(active[:0])
    elif solver.adaptive:
        # on a device the number of save points crossed is not known without a sync: a
        # fixed number of passes, each one save point per trajectory (see the module doc)
        safe_h = xp.where(h > 0, h, xp.ones_like(h))
        for _ in range(n_pass):
            nxt = xp.take(ts_dev, _clip(xp, new["idx"], 0, S - 1))
            cross = accept & (new["idx"] < S) & (nxt <= t_new)
            theta = xp.where(cross, _clip(xp, (nxt - t) / safe_h, 0.0, 1.0), xp.zeros_like(h))
            ys = solver.interpolate(xp, y, h, res.dense, theta)
            vals = _save_values(xp, savers, ys, None, loss)
            new = _record(xp, new, vals, cross, S)
        nxt = xp.take(ts_dev, _clip(xp, new["idx"], 0, S - 1))
        missed = xp.any(accept & (new["idx"] < S) & (nxt <= t_new))
    else:
        landed = accept & (new["idx"] < S) & (t_new >= next_save)
        if on_host:  # only the trajectories that landed on a save time
            rows = np.nonzero(landed)[0]
            if rows.size:
                vals = _save_values(xp, savers, tuple(a[rows] for a in res.y1), res.value1[rows],
                                    loss.take(rows, 1))
                new = _write_rows(new, vals, rows, new["idx"][rows], new["idx"] + landed)
        else:
            vals = _save_values(xp, savers, res.y1, res.value1, loss)
            new = _record(xp, new, vals, landed, S)
        missed = xp.any(active[:0])

    new["y"] = _tree_where(xp, accept, res.y1, y)
    new["f"] = _tree_where(xp, accept, res.f1, st["f"])
    new["value"] = xp.where(accept, res.value1, st["value"])
    new["t"] = xp.where(accept, t_new, t)
    one = xp.ones_like(st["steps"])
    new["steps"] = st["steps"] + xp.where(accept, one, 0 * one)
    rejected = active & ~accept
    new["rejected"] = st["rejected"] + xp.where(rejected, one, 0 * one)
    ev = res.evaluations
    new["evals"] = st["evals"] + xp.where(active, xp.astype(ev, one.dtype) if hasattr(ev, "shape") else ev * one, 0 * one)
    if res.iterations is not None:
        it_now = xp.astype(res.iterations, one.dtype)
        new["iters"] = xp.where(active, it_now, st["iters"])
        new["iters_total"] = st["iters_total"] + xp.where(active, it_now, 0 * one)

    status = st["status"]
    if solver.adaptive:
        err = xp.where(finite, res.err, xp.full_like(res.err, math.inf))
        safe = xp.where(err > 0, err, xp.full_like(err, 1e-10))
        factor = _clip(xp, 0.9 * safe ** (-1.0 / 5.0), 0.2, 10.0)
        factor = xp.where(accept, factor, xp.minimum(factor, xp.ones_like(factor)))
        new_dt = xp.where(active, dt * factor, dt)
        # accepted steps that were shortened to hit t_end keep their old dt proposal
        new["dt"] = new_dt
        tiny = active & (new_dt <= 1e-14 * xp.maximum(xp.abs(t), xp.ones_like(t)))
        diverged = tiny
    else:
        diverged = active & (~finite | res.failed)
    diverged = diverged | exploded
    unresolved = xp.any(active & res.unresolved) if res.unresolved is not None else xp.any(active[:0])

    still = active & ~diverged
    finished = still & (new["t"] >= t_end)
    converged = still & ~finished & (new["value"] <= loss_tol) if loss_tol is not None else None
    over = still & ~finished & ((new["steps"] + new["rejected"]) >= max_steps)
    code = lambda s: xp.full_like(status, int(s))  # noqa: E731
    status = xp.where(diverged, code(Status.DIVERGED), status)
    status = xp.where(finished, code(Status.DONE), status)
    stop = diverged | finished | over
    if converged is not None:
        status = xp.where(converged, code(Status.CONVERGED), status)
        stop = stop | converged
    status = xp.where(over, code(Status.MAX_STEPS), status)
    new["status"] = status
    new["active"] = active & ~stop
    return new, xp.stack([missed, unresolved])


def _assemble(xp, st, gid, done_parts, ts, solver, dev):
    parts = [s for _, s in done_parts] + [st]
    ids = np.concatenate([g for g, _ in done_parts] + [gid])
    order = _idx(xp, np.argsort(ids, kind="stable"), dev)
    keys = ["t", "status", "steps", "rejected", "evals", "iters_total", "y", "bufs", "value", "idx"]
    merged = {k: _concat(xp, parts, k) if len(parts) > 1 else st[k] for k in keys}
    full = _State(merged).take(xp, order) if len(parts) > 1 else _State(merged)
    bufs = {k: _move(xp, v) for k, v in full["bufs"].items()}
    stats = {
        "steps": to_numpy(full["steps"]),
        "rejected": to_numpy(full["rejected"]),
        "evaluations": to_numpy(full["evals"]),
        "saves": to_numpy(full["idx"]),  # save points reached (Trajectory.saved)
    }
    if hasattr(solver, "budget"):
        stats["fixed_point_iterations"] = to_numpy(full["iters_total"])
    loss = bufs.pop("loss")
    product = bufs.pop("product", None)
    status = to_numpy(full["status"])
    status = np.where(status == Status.RUNNING, int(Status.DONE), status)
    return Trajectory(
        t=xp.asarray(np.asarray(ts, dtype=np.float64), dtype=full["t"].dtype, device=dev),
        loss=loss,
        product=product,
        diagnostics=bufs,
        weights=full["y"],
        status=status,
        t_final=full["t"],
        stats=stats,
        method=solver.name,
    )


def _move(xp, v):
    axes = (1, 0) + tuple(range(2, v.ndim))
    return xp.permute_dims(v, axes)


def _raise_divergence(xp, st, status_host, gid, done_parts, loss, solver, ts, B, y0):
    dev = _device(st["t"])
    traj = _assemble(xp, st, gid, done_parts, ts, solver, dev)
    bad = int(np.nonzero(status_host == Status.DIVERGED)[0][0])
    raise divergence_error(
        traj, y0, loss, solver, int(gid[bad]), float(to_numpy(st["t"])[bad]),
        float(to_numpy(st["dt"])[bad]),
    )


def divergence_error(traj, y0, loss, solver, g, t_bad, dt_bad=None):
    """The :class:`DivergenceError` for trajectory ``g`` of a run, carrying ``traj``."""
    y_start = tuple(a[g:g + 1, ...] for a in y0)
    eta = getattr(solver, "eta", None)  # gradient descent runs in units of steps
    if eta is None:
        where = f"t = {t_bad:.6g}" + (f", step size {dt_bad:.3g}" if dt_bad is not None else "")
    else:
        eta_b = float(to_numpy(eta)[g]) if hasattr(eta, "shape") else float(eta)
        where = f"step k = {int(t_bad) + 1} (t = k·eta = {(t_bad + 1) * eta_b:.6g}), step size eta = {eta_b:.3g}"
    lam = float(to_numpy(lambda_max_bound(y_start))[0]) * (loss.K or 1.0)
    stable = 2.0 / lam if lam > 0 else math.inf
    status = np.asarray(traj.status)
    n_bad = int(np.sum(status == Status.DIVERGED))
    why = ""
    if hasattr(solver, "max_iterations"):  # Gauss methods: the stage iteration stopped contracting
        why = (" The fixed-point iteration for the implicit stages did not converge; it contracts "
               "only for steps well below the GD limit (the default dt is 0.25/lambda_max).")
    return DivergenceError(
        f"linflow: {n_bad} of {status.size} trajectories diverged with method {solver.name!r} "
        f"(first: trajectory {g} at {where}).{why} An estimate of the stable step at its "
        f"initialization is 2/lambda_max ≈ {stable:.3g}. Reduce the step size, or pass "
        "throw=False to keep the other trajectories (status DIVERGED marks the failed ones); "
        "the partial results are in the exception's .trajectory.",
        traj,
    )
