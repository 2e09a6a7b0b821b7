r"""Packed stage buffers: the NumPy fast path of the explicit Runge–Kutta step.

With small matrices a batched step is bound by memory traffic and by the
number of array operations, not by arithmetic.  Summing the stages layer by
layer, ``y + dt * sum_j a_ij k_j``, costs two passes over the state per term;
Dormand–Prince has 20 such terms per step.  Here the state and the scaled stage
slopes ``dt * k_j`` live in the rows of one matrix ``Z`` (row 0 is ``y``), so a
stage input is one small matrix product per trajectory and layer,
``[1, a_i1, ...] @ Z`` (:meth:`Layout.combine`): every slope is read once.  The slopes are written in place by the gradient kernel
(:func:`linflow.network._backward` with ``out=``) with ``dt`` already applied,
by scaling the loss gradient ``G`` (one small matrix) rather than every layer.

Each row is **layer-major**: layer ``l`` of all ``b`` trajectories is one
contiguous block of shape ``(b, h_{l-1}, h_l)``, so the layer views passed to
``matmul`` are contiguous, and a slice of rows of one layer is a view too.

The arithmetic is the same as the generic path's up to the order of the
floating-point sums (tests/test_integrators.py compares both).
"""
from __future__ import annotations

import math

import numpy as np

from ..network import _backward, _cumulative

__all__ = ["Layout", "runge_kutta_stages"]


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

    def pack(self, y, row, scale=None):
        """Write the layers ``y`` into ``row``, times the per-trajectory ``scale`` if given."""
        for src, dst in zip(y, self.views(row)):
            if scale is None:
                dst[...] = src
            else:
                np.multiply(src, scale[:, None, None], out=dst)

    def combine(self, coeffs, rows, out=None):
        """``sum_j coeffs[..., j] * rows[j]`` for a stack of packed rows, into a packed row.

        ``coeffs`` is one vector for all trajectories, shape ``(k,)``, or one
        per trajectory, ``(b, k)``.  The sum is a small matrix product per
        trajectory and layer (``(1, k) @ (k, h_{l-1} h_l)``), so each slope is
        read once, and a trajectory's result does not depend on the others: a
        single matrix-vector product over the whole row would give round-off
        that depends on where the trajectory sits in the batch (BLAS treats
        the tail of a vector differently), and so on the batch's size.
        """
        k = rows.shape[0]
        coeffs = np.asarray(coeffs, dtype=self.dtype)
        c = np.broadcast_to(coeffs.reshape(-1, 1, k), (self.b, 1, k))
        out = self.empty() if out is None else out
        for a, b in zip(self.offsets, self.offsets[1:]):
            block = rows[:, a:b].reshape(k, self.b, (b - a) // self.b)
            np.matmul(c, block.transpose(1, 0, 2), out=out[a:b].reshape(self.b, 1, -1))
        return out

    def sq_norm(self, row):
        """Per-trajectory squared norm of a packed row, shape ``(b,)``."""
        total = 0
        for v in self.views(row):
            v2 = v.reshape(self.b, -1)
            total = total + np.einsum("ij,ij->i", v2, v2)
        return total


def runge_kutta_stages(A, y, f, dt, loss):
    """Stage slopes of an explicit Runge–Kutta method on a NumPy batch.

    ``A`` is the Butcher matrix as rows (row ``i`` has ``i`` entries); the last
    stage is evaluated at ``y + dt * sum_j A[-1][j] k_j`` (FSAL methods put the
    new solution there).  ``f`` is the field at ``y`` (the first stage).

    Returns ``(lay, Z, y_last, value_last, f_last)``: ``Z`` has rows
    ``y, dt k_1, ..., dt k_s``; ``y_last`` is the packed row of the last
    stage's input and ``f_last`` the layers of the last slope, unscaled (both
    fresh arrays).
    """
    lay = Layout(y)
    s = len(A)
    Z = lay.empty(s + 1)
    lay.pack(y, Z[0])
    lay.pack(f, Z[1], dt)
    mdt = -dt
    for i in range(1, s):
        yi_row = lay.combine((1.0,) + tuple(A[i]), Z[: i + 1])
        yi = lay.views(yi_row)
        cum = _cumulative(np, yi)
        value, G = loss.value_and_grad(cum[-1])
        if i < s - 1:  # dt * (field) = -dt * grad, written straight into its row
            _backward(np, yi, cum, G, out=lay.views(Z[i + 1]), scale=mdt)
        else:  # the last slope is returned unscaled: it is the next step's first one
            f_last = lay.views(lay.empty())
            _backward(np, yi, cum, G, out=f_last, scale=-np.ones_like(dt))
            lay.pack(f_last, Z[s], dt)
    return lay, Z, yi_row, value, f_last
