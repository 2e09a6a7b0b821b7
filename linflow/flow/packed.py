r"""Packed stage buffers: the NumPy fast path of the explicit Runge–Kutta step.

With small matrices a batched step is bound by memory traffic and by the
number of array operations, not by arithmetic.  Summing the stages layer by
layer, ``y + dt * sum_j a_ij k_j``, costs two passes over the state per term;
Dormand–Prince has 20 such terms per step.  Here the state and the scaled stage
slopes ``dt * k_j`` live in the rows of one matrix ``Z`` (row 0 is ``y``), so a
stage input is one small matrix product per trajectory and layer,
``[1, a_i1, ...] @ Z`` (:meth:`Layout.combine`): every slope is read once.
The slopes are written in place by the gradient kernel
(``linflow.network._backward`` with ``out=``) with ``dt`` already applied,
by scaling the loss gradient ``G`` (one small matrix) rather than every layer.
The Gauss–Legendre methods use the same rows for their fixed-point iteration,
with all stages in one gradient evaluation (:func:`gauss_stages`).

Each row is **layer-major**: layer ``l`` of all ``b`` trajectories is one
contiguous block of shape ``(b, h_{l-1}, h_l)``, so the layer views passed to
``matmul`` are contiguous, and a slice of rows of one layer is a view too.

The arithmetic is the same as the generic path's up to the order of the
floating-point sums (``tests/test_packed.py`` compares both, and checks that a
trajectory's result does not depend on the rest of its batch).
"""
from __future__ import annotations

import math

import numpy as np

from ..network import _backward, _cumulative, _work_shapes

__all__ = ["Layout", "RungeKuttaWorkspace", "runge_kutta_stages", "GaussWorkspace", "gauss_stages"]


class Layout:
    """Where each layer of a batch lives in one packed row."""

    def __init__(self, y):
        self.b = y[0].shape[0]
        self.dtype = y[0].dtype
        self.shapes = [tuple(a.shape[1:]) for a in y]
        sizes = [self.b * math.prod(s) for s in self.shapes]
        self.offsets = [0]
        for s in sizes:
            self.offsets.append(self.offsets[-1] + s)
        self.size = self.offsets[-1]
        self.n = sum(math.prod(s) for s in self.shapes)  # entries per trajectory

    def empty(self, rows=None):
        return np.empty((self.size,) if rows is None else (rows, self.size), dtype=self.dtype)

    def views(self, row):
        """The layers of a packed row (or of a stack of rows: leading axes are kept)."""
        lead = row.shape[:-1]
        return tuple(
            row[..., a:b].reshape(lead + (self.b,) + s)
            for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes)
        )

    def work(self, lead):
        """Fresh buffers for the gradient kernel's intermediate arrays, leading axes ``lead``."""
        dims = [self.shapes[0][0]] + [sh[1] for sh in self.shapes]
        cum, sweep = _work_shapes(dims, lead)
        return ([np.empty(sh, dtype=self.dtype) for sh in cum],
                [np.empty(sh, dtype=self.dtype) for sh in sweep])

    def pack(self, y, row, scale=None):
        """Write the layers ``y`` into ``row``, times the per-trajectory ``scale`` if given."""
        for src, dst in zip(y, self.views(row)):
            if scale is None:
                dst[...] = src
            else:  # as (b, h*k) arrays: NumPy's inner loop then runs over whole layers
                np.multiply(src.reshape(self.b, -1), scale[:, None], out=dst.reshape(self.b, -1))

    def combine(self, coeffs, rows, out=None, many=False):
        """``sum_j coeffs[..., j] * rows[j]`` for a stack of packed rows, into packed rows.

        ``coeffs`` is one vector for all trajectories, shape ``(k,)``, or one per
        trajectory, ``(b, k)``: the result is one row.  A matrix ``(r, k)``
        with ``many=True`` gives ``r`` rows at once (the stages of an implicit
        method).  See :meth:`mixer`.
        """
        r = _n_rows(coeffs, many)
        out = self.empty(r if many else None) if out is None else out
        self.mixer(coeffs, rows, out, many)()
        return out

    def mixer(self, coeffs, rows, out, many=False):
        """A prepared :meth:`combine` from ``rows`` into ``out``: call it to (re)compute.

        The sum is a small matrix product per trajectory and layer
        (``(r, k) @ (k, h_{l-1} h_l)``), so each slope is read once, and a
        trajectory's result does not depend on the others: one matrix-vector
        product over the whole row would give round-off that depends on where
        the trajectory sits in the batch (BLAS treats the tail of a vector
        differently), and so on the batch's size.  Preparing the views once
        matters for iterative methods on small batches, where each call is
        mostly Python overhead.
        """
        k = rows.shape[0]
        coeffs = np.asarray(coeffs, dtype=self.dtype)
        r = _n_rows(coeffs, many)
        c = np.broadcast_to(coeffs.reshape(-1, r, k), (self.b, r, k))
        out2 = out.reshape(r, self.size)
        plan = []
        for a, b in zip(self.offsets, self.offsets[1:]):
            block = rows[:, a:b].reshape(k, self.b, (b - a) // self.b).transpose(1, 0, 2)
            target = out2[:, a:b].reshape(r, self.b, -1).transpose(1, 0, 2)
            plan.append((block, target))

        def run():
            for block, target in plan:
                np.matmul(c, block, out=target)

        return run

    def sq_norm(self, rows):
        """Per-trajectory squared norm of a packed row or stack of rows, shape ``(b,)``."""
        total = 0
        for v in self.views(rows):
            v2 = v.reshape(-1, self.b, math.prod(v.shape[-2:]))
            total = total + np.einsum("sij,sij->i", v2, v2)
        return total


def _n_rows(coeffs, many):
    """Rows that :meth:`Layout.combine` makes: ``(k,)`` or ``(b, k)`` make one; ``(r, k)``
    with ``many`` makes ``r``, and so does ``(b, r, k)`` (one matrix per trajectory)."""
    if not many:
        return 1
    shape = np.shape(coeffs)
    return shape[1] if len(shape) == 3 else shape[0]


class RungeKuttaWorkspace:
    """Buffers and prepared stage sums for :func:`runge_kutta_stages`, reused from step to step.

    With small batches a step is mostly Python overhead, so the packed stack,
    the stage buffer, their layer views and the prepared stage sums are built
    once per batch shape.  A step's result never points into the workspace
    except its dense output, which the driver uses within the same step.
    """

    def __init__(self, A, E, y):
        lay = self.lay = Layout(y)
        s = self.s = len(A)
        self.Z = lay.empty(s + 1)  # rows y, dt k_1, ..., dt k_s
        self.rows = [lay.views(r) for r in self.Z]
        self.stage_row = lay.empty()
        self.stage = lay.views(self.stage_row)
        self.mix = [None] + [lay.mixer((1.0,) + tuple(A[i]), self.Z[: i + 1], self.stage_row)
                             for i in range(1, s - 1)]
        # the gradient's intermediate arrays, reused at every stage so that they stay in cache
        self.cum, self.sweep = lay.work((lay.b,))
        self.last = (1.0,) + tuple(A[s - 1])
        self.e = lay.empty()
        self.error = lay.mixer(E, self.Z[1:], self.e) if E is not None else None
        self.scale = lay.empty()

    def fits(self, y):
        lay = self.lay
        return (y[0].shape[0] == lay.b and y[0].dtype == lay.dtype
                and [tuple(a.shape[1:]) for a in y] == lay.shapes)


def runge_kutta_stages(ws, y, f, dt, loss):
    """Stage slopes of an explicit Runge–Kutta method on a NumPy batch.

    ``ws`` is a :class:`RungeKuttaWorkspace` for the method's Butcher rows
    (row ``i`` has ``i`` entries); the last stage is evaluated at
    ``y + dt * sum_j A[-1][j] k_j`` (FSAL methods put the new solution there).
    ``f`` is the field at ``y`` (the first stage).  Afterwards ``ws.Z`` has
    rows ``y, dt k_1, ..., dt k_s``.

    Returns ``(y_last, value_last, f_last)``: the packed row of the last
    stage's input and the layers of the last slope, unscaled (fresh arrays).
    """
    lay, s, rows = ws.lay, ws.s, ws.rows
    lay.pack(y, ws.Z[0])
    lay.pack(f, ws.Z[1], dt)
    mdt = -dt
    for i in range(1, s - 1):
        ws.mix[i]()
        cum = _cumulative(np, ws.stage, out=ws.cum)
        # dt * (field) = -dt * grad, written straight into its row (the value is not needed)
        _backward(np, ws.stage, cum, loss.grad(cum[-1]), out=rows[i + 1], scale=mdt, work=ws.sweep)
    y_last = lay.combine(ws.last, ws.Z[:s])
    yl = lay.views(y_last)
    cum = _cumulative(np, yl)
    value, G = loss.value_and_grad(cum[-1])
    # the last slope is returned unscaled: it is the next step's first one
    f_last = lay.views(lay.empty())
    _backward(np, yl, cum, G, out=f_last, scale=-np.ones_like(dt))
    lay.pack(f_last, ws.Z[s], dt)
    return y_last, value, f_last


class GaussWorkspace:
    """Buffers and prepared views for :func:`gauss_stages`, reused from step to step.

    An implicit step on a small batch is mostly Python overhead, so everything
    that does not change between steps (the packed stacks, their layer views,
    the prepared stage sums) is built once per batch shape.  Nothing here is
    kept by a step's result: ``y1`` and the new slopes are fresh arrays.
    """

    def __init__(self, A, B, y):
        lay = self.lay = Layout(y)
        s = self.s = len(A)
        self.Zs = (lay.empty(s + 1), lay.empty(s + 1))
        self.y_views = [lay.views(Z[0]) for Z in self.Zs]
        self.slopes = [lay.views(Z[1:]) for Z in self.Zs]  # layers of shape (s, b, ...)
        self.first = lay.views(self.Zs[0][1:])
        stage_rows = lay.empty(s)
        self.stage = lay.views(stage_rows)
        self.cum, self.sweep = lay.work((s, lay.b))
        C = [(1.0,) + tuple(row) for row in A]
        self.mix = [lay.mixer(C, Z, stage_rows, many=True) for Z in self.Zs]
        self.y1_row = lay.empty()
        self.finish = [lay.mixer((1.0,) + tuple(B), Z, self.y1_row) for Z in self.Zs]
        self.diff = lay.empty(s)
        self.segments = np.concatenate([
            a + np.arange(lay.b) * ((b - a) // lay.b) for a, b in zip(lay.offsets, lay.offsets[1:])
        ])

    def increment(self):
        """Per-trajectory squared norm of ``diff`` (all stages and layers), shape ``(b,)``.

        Each trajectory's sum runs over its own contiguous entries in the same
        order whatever the batch, so its iteration count does not depend on
        the other trajectories.
        """
        sq = np.square(self.diff, out=self.diff)
        per_entry = np.sum(sq, axis=0) if self.s > 1 else sq[0]
        # one sum per (layer, trajectory) segment of the layer-major row, then over layers
        return np.add.reduceat(per_entry, self.segments).reshape(len(self.lay.shapes), self.lay.b).sum(axis=0)

    fits = RungeKuttaWorkspace.fits


def gauss_stages(ws, y, f, dt, loss, budget, eps):
    """Fixed-point iteration for the stages of an implicit Runge–Kutta method, on NumPy.

    The same iteration as :meth:`linflow.flow.solvers.Gauss.step`, run to
    stagnation per trajectory, with all ``s`` stages evaluated at once (the
    stage is one more leading axis of the gradient kernel).  The slopes are
    kept scaled by ``dt``, which scales each trajectory's increments by
    ``dt**2`` and changes none of the comparisons.  Two stacks ``[y, dt K]``
    of the :class:`GaussWorkspace` ``ws`` alternate as current and next
    iterate, so an accepted iterate costs no copy.

    Returns ``(y1, iterations, unresolved, failed)``, ``y1`` the layers of
    ``y + dt sum_i b_i K_i`` (fresh arrays).
    """
    s, Zs, slopes, stage = ws.s, ws.Zs, ws.slopes, ws.stage
    for dst0, dst1, src in zip(ws.y_views[0], ws.y_views[1], y):
        dst0[...] = src
        dst1[...] = src
    scale = dt[:, None, None]
    for K0, fl in zip(ws.first, f):  # initial guess: explicit Euler slopes
        np.multiply(fl, scale, out=K0)
    mdt = -dt
    cur = 0
    prev_inc = running = iters = None
    for it in range(budget):
        nxt = 1 - cur
        ws.mix[cur]()
        cum = _cumulative(np, stage, out=ws.cum)
        _backward(np, stage, cum, loss.grad(cum[-1]), out=slopes[nxt], scale=mdt, work=ws.sweep)
        np.subtract(Zs[nxt][1:], Zs[cur][1:], out=ws.diff)
        inc = ws.increment()
        if running is None:
            running = inc > 0
            iters = np.ones_like(inc)
        else:
            go = running & (inc < prev_inc)  # keep iterating while the increment still decreases
            if not go.all():  # the others keep their current iterate
                keep = ~go[:, None, None]
                for new_l, old_l in zip(slopes[nxt], slopes[cur]):
                    np.copyto(new_l, old_l, where=keep)
            iters = iters + go
            running = go & (inc > 0)
        cur = nxt
        prev_inc = np.where(running, inc, prev_inc) if it else inc
        if not running.any():  # the remaining iterations of the budget would change nothing
            break
    # a contraction ends at round-off; beyond the contraction limit the increment
    # stagnates at once at the size of the slopes (both scaled by dt**2 here)
    floor = eps * dt * dt
    failed = ~(prev_inc <= floor)
    if failed.any():  # only then is the slopes' size needed (it can only raise the floor)
        f_norm = sum(np.vecdot(a.reshape(ws.lay.b, -1), a.reshape(ws.lay.b, -1)) for a in f)
        failed = ~(prev_inc <= floor * (1.0 + s * f_norm))
    ws.finish[cur]()
    y1 = ws.lay.views(ws.y1_row.copy())
    return y1, iters, running, failed
