r"""One-step methods for the gradient flow :math:`\dot W_l = -\nabla_{W_l}\mathcal L`.

Each solver acts on a batch of trajectories at once (leading axis ``B``) with a
step size per trajectory, ``dt`` of shape ``(B,)``.  A trajectory's arithmetic
depends on its own values only, so its result does not depend on which other
trajectories share the batch.

* :class:`Dopri5` — Dormand–Prince 5(4), explicit, embedded error estimate and a
  4th-order continuous extension (dense output) for the save points.
* :class:`Gauss` — Gauss–Legendre collocation (``stages=1``: implicit midpoint,
  order 2; ``stages=2``: order 4).  These methods conserve every quadratic first
  integral (Cooper 1987), hence every imbalance matrix :math:`D_l` (Lemma 2), up to
  the accuracy of the stage equations.  The stages are solved by fixed-point
  iteration run *to stagnation*: per trajectory, until the increment stops
  decreasing.  A fixed iteration cap would break exact conservation.
"""
from __future__ import annotations

import dataclasses
import math
import threading

import array_api_compat
import numpy as np

from .._validate import integer, nonnegative, positive
from ..network import _backward, _cumulative
from .packed import GaussWorkspace, Layout, RungeKuttaWorkspace, gauss_stages, runge_kutta_stages

__all__ = ["Dopri5", "Gauss", "field"]

#: NumPy batches take the packed fast path (:mod:`linflow.flow.packed`); the tests switch it
#: off to check that the generic array-API path gives the same numbers on every namespace.
PACKED = True


def field(xp, y, loss):
    """The gradient-flow vector field: ``(loss value, -gradients)``."""
    if isinstance(y[0], np.ndarray):  # the sign folded into the backward sweep
        cum = _cumulative(np, y)
        value, G = loss.value_and_grad(cum[-1])
        return value, _backward(np, y, cum, G, scale=-1.0)
    cum = _cumulative(xp, y)
    value, G = loss.value_and_grad(cum[-1])
    return value, _backward(xp, y, cum, G, scale=-1.0)


def bcast(s, a):
    """Reshape a per-trajectory array ``s`` of shape (B,) to broadcast against ``a`` (B, ...)."""
    return s[(...,) + (None,) * (a.ndim - 1)]


def combine(y, ks, coeffs, dt):
    """``y + dt * sum_j coeffs[j] * ks[j]`` layer by layer (zero coefficients skipped).

    On NumPy the sum is accumulated in place into one fresh array per layer:
    stage combinations dominate the cost of a batched Runge–Kutta step with
    small matrices, and most of that cost is allocating temporaries.  Other
    namespaces (CuPy has a memory pool) take the functional path.
    """
    pairs = [(c, k) for c, k in zip(coeffs, ks) if hasattr(c, "shape") or c != 0]
    if not pairs:
        return tuple(y)
    if isinstance(y[0], np.ndarray):
        return tuple(_combine_numpy(yl, [(c, k[l]) for c, k in pairs], dt) for l, yl in enumerate(y))
    out = []
    for l, yl in enumerate(y):
        acc = None
        for c, k in pairs:
            term = (bcast(c, yl) if hasattr(c, "shape") else c) * k[l]
            acc = term if acc is None else acc + term
        out.append(yl + bcast(dt, yl) * acc)
    return tuple(out)


def _combine_numpy(yl, terms, dt):
    def coef(c):  # a number, or one coefficient per trajectory
        return bcast(c, yl) if hasattr(c, "shape") else c

    c0, k0 = terms[0]
    acc = np.multiply(k0, coef(c0))
    tmp = np.empty_like(acc) if len(terms) > 1 else None
    for c, k in terms[1:]:
        np.multiply(k, coef(c), out=tmp)
        acc += tmp
    acc *= bcast(dt, yl)
    acc += yl
    return acc


def sq_norm(xp, y):
    """Per-trajectory squared Frobenius norm of a tuple of layers."""
    total = 0
    for a in y:
        total = total + xp.sum(xp.reshape(a * a, (a.shape[0], -1)), axis=1)
    return total


def _workspace(solver, cls, y, *args):
    """The solver's NumPy workspace for this batch shape, one per thread
    (:mod:`linflow.flow.parallel` runs shallow copies of a solver in a pool)."""
    cache = solver.__dict__.setdefault("_workspaces", {})
    key = threading.get_ident()
    ws = cache.get(key)
    if ws is None or not ws.fits(y):
        ws = cache[key] = cls(*args, y)
    return ws


@dataclasses.dataclass(frozen=True)
class StepResult:
    y1: tuple
    value1: object  # loss at y1, shape (B,)
    f1: tuple  # field at y1
    err: object = None  # (B,) scaled error norm (adaptive only)
    dense: tuple = ()  # stage slopes for interpolation
    evaluations: int = 0
    iterations: object = None  # (B,) fixed-point iterations
    unresolved: object = None  # (B,) bool: the step needs a larger budget (Gauss)
    failed: object = None  # (B,) bool: the step failed (fixed point did not converge)


class Dopri5:
    """Dormand–Prince 5(4) with per-trajectory error control (Hairer, Nørsett & Wanner, II.5)."""

    name = "dopri5"
    adaptive = True
    order = 5
    error_order = 4

    C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    A = (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    E = (
        71 / 57600,
        0.0,
        -71 / 16695,
        71 / 1920,
        -17253 / 339200,
        22 / 525,
        -1 / 40,
    )
    # Dense output: y(t + θh) = y + h Σ_i k_i Σ_j P[i][j] θ^(j+1)   (as in SciPy's RK45)
    P = (
        (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
        (0.0, 0.0, 0.0, 0.0),
        (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
        (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
        (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
        (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
        (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
    )

    def __init__(self, rtol=1e-8, atol=1e-10):
        self.rtol, self.atol = positive("rtol", rtol), nonnegative("atol", atol)

    def step(self, xp, y, value, f, dt, loss):
        if PACKED and isinstance(y[0], np.ndarray):
            return self._step_packed(y, f, dt, loss)
        ks = [f]
        for i in range(1, 7):
            yi = combine(y, ks, self.A[i], dt)
            vi, ki = field(xp, yi, loss)
            ks.append(ki)
        y1, v1, f1 = yi, vi, ks[6]  # FSAL: stage 7 is evaluated at y1
        e = combine(tuple(xp.zeros_like(a) for a in y), ks, self.E, dt)
        ratio = 0
        n = 0
        for l in range(len(y)):
            scale = self.atol + self.rtol * xp.maximum(xp.abs(y[l]), xp.abs(y1[l]))
            r = e[l] / scale
            ratio = ratio + xp.sum(xp.reshape(r * r, (r.shape[0], -1)), axis=1)
            n += math.prod(y[l].shape[1:])
        err = xp.sqrt(ratio / n)
        return StepResult(y1, v1, f1, err=err, dense=tuple(ks), evaluations=6)

    def _step_packed(self, y, f, dt, loss):
        """The same step on NumPy with packed stage buffers (:mod:`linflow.flow.packed`)."""
        ws = _workspace(self, RungeKuttaWorkspace, y, self.A, self.E)
        y1_row, v1, f1 = runge_kutta_stages(ws, y, f, dt, loss)
        lay, Z = ws.lay, ws.Z
        ws.error()
        e, scale = ws.e, np.abs(Z[0], out=ws.scale)
        np.maximum(scale, np.abs(y1_row, out=Z[0]), out=scale)  # Z[0] (= y) is not needed below
        scale *= self.rtol
        scale += self.atol
        e /= scale
        err = np.sqrt(lay.sq_norm(e) / lay.n)
        return StepResult(lay.views(y1_row), v1, f1, err=err, dense=_PackedDense(lay, Z, y), evaluations=6)

    def _coefficients(self, theta):
        powers = [theta, theta * theta, theta * theta * theta, theta * theta * theta * theta]
        coeffs = []
        for row in self.P:
            c = 0
            for pj, th in zip(row, powers):
                if pj != 0:
                    c = c + pj * th
            coeffs.append(c)  # each is (B,), or 0 for the unused stage
        return coeffs

    def interpolate(self, xp, y, dt, ks, theta):
        """Dense output at ``t + theta*dt`` (theta of shape (B,)), 4th order."""
        return self.interpolate_many(xp, y, dt, ks, [theta])[0]

    def interpolate_many(self, xp, y, dt, ks, thetas):
        """Dense output at several points of the step: one tuple of layers per entry of
        ``thetas`` (each of shape (B,)).  On a packed NumPy step the slopes are read once
        for every two points (``_PackedDense.interpolate``)."""
        coeffs = [self._coefficients(theta) for theta in thetas]
        if isinstance(ks, _PackedDense):
            return ks.interpolate(coeffs)  # the coefficients multiply dt k_i there
        return [combine(y, ks, c, dt) for c in coeffs]


@dataclasses.dataclass(frozen=True)
class _PackedDense:
    """Dense-output data of a packed step: the start ``y`` and rows ``dt k_1..dt k_7`` of ``Z``."""

    lay: object
    Z: object
    y: tuple

    def take(self, rows):
        """The dense output of trajectories ``rows`` only (host indices), packed anew.

        Each trajectory's interpolation stays the same small matrix product as in the full
        batch, so its numbers do not change (tests/test_packed.py checks this).
        """
        y = tuple(a[rows] for a in self.y)
        lay = Layout(y)
        Z = lay.empty(self.Z.shape[0])  # row 0 (the start, kept in ``y``) is not read
        for src, dst in zip(self.lay.views(self.Z[1:]), lay.views(Z[1:])):
            np.take(src, rows, axis=1, out=dst, mode="clip")  # "clip": no buffered copy
        return _PackedDense(lay, Z, y)

    def interpolate(self, points):
        """The layers at each point of ``points`` (one list of stage coefficients per point,
        each coefficient a number or one per trajectory), as fresh arrays.

        Points go two at a time through one ``(2, 7) @ (7, h_{l-1} h_l)`` product per
        trajectory and layer (a lone point is paired with zeros): the slopes are read once
        for both, and every row of a two-row product has the same bits wherever it sits,
        which a one-row product (BLAS's matrix-vector path) does not share.  So a point's
        value never depends on how many points its step crosses, nor on the batch.
        """
        lay = self.lay
        out = []
        for i in range(0, len(points), 2):
            pair = points[i:i + 2]
            C = np.zeros((lay.b, 2, len(pair[0])), dtype=lay.dtype)
            for r, coeffs in enumerate(pair):
                for j, c in enumerate(coeffs):
                    C[:, r, j] = c
            rows = lay.combine(C, self.Z[1:], many=True)
            for r in range(len(pair)):
                layers = lay.views(rows[r])
                for d, y_l in zip(layers, self.y):
                    np.add(d, y_l, out=d)  # in place: the combination is a fresh array
                out.append(layers)
        return out


class Gauss:
    """Gauss–Legendre collocation with ``stages`` = 1 (implicit midpoint) or 2.

    The stage slopes solve :math:`K_i = f(y + h\\sum_j a_{ij}K_j)` by fixed-point
    iteration.  For each trajectory, iteration stops when the increment
    :math:`\\|K^{(k+1)} - K^{(k)}\\|` stops decreasing (or is exactly zero): the
    stage equations are then solved to round-off, and the imbalances are
    conserved to round-off.  The iteration contracts when
    :math:`h\\,\\rho(A)\\,\\mathrm{Lip}(\\nabla F) < 1`, i.e. for steps of the
    order of the GD limit ``2/lambda_max``.
    """

    adaptive = False

    def __init__(self, stages=2, max_iterations=200):
        stages = integer("stages", stages)
        if stages == 1:
            self.A = ((0.5,),)
            self.B = (1.0,)
            self.name, self.order = "midpoint", 2
        elif stages == 2:
            r = math.sqrt(3) / 6
            self.A = ((0.25, 0.25 - r), (0.25 + r, 0.25))
            self.B = (0.5, 0.5)
            self.name, self.order = "gauss2", 4
        else:
            raise ValueError(f"linflow: Gauss supports stages=1 or 2; got {stages}.")
        self.stages = stages
        self.max_iterations = integer("max_iterations", max_iterations, minimum=1)
        if self.max_iterations > 10**6:
            raise ValueError(f"linflow: max_iterations must be at most 10**6; got {max_iterations!r}.")
        self.budget = 24  # iterations per step; the driver adapts it at each sync

    def step(self, xp, y, value, f, dt, loss):
        if PACKED and isinstance(y[0], np.ndarray):
            return self._step_packed(y, f, dt, loss)
        # The stages are one more leading axis: K_l has shape (s, B, ...), and one gradient
        # evaluation serves all stages (on a GPU, each iteration is then a few dozen kernel
        # launches whatever s is).  Stage sums are elementwise products summed over the stage
        # axis, so a trajectory's numbers do not depend on the batch.
        s = self.stages
        dtype, dev = y[0].dtype, array_api_compat.device(y[0])
        if s == 1:
            A, b = self.A[0][0], self.B[0]
        else:  # shaped to broadcast over the stage axis of (s, B, ...) and of (B, ...) per stage
            A = xp.reshape(xp.asarray(self.A, dtype=dtype, device=dev), (s, s) + (1,) * y[0].ndim)
            b = xp.reshape(xp.asarray(self.B, dtype=dtype, device=dev), (s,) + (1,) * y[0].ndim)

        def stage_sum(coef, Kl, axis):
            if s == 1:  # implicit midpoint: one coefficient, no sum
                return coef * (Kl if axis else Kl[0, ...])
            return xp.sum(coef * Kl, axis=axis)

        def points(K):  # Y_il = y_l + dt * sum_j A_ij K_jl, for all stages at once
            return tuple(yl + bcast(dt, yl) * stage_sum(A, Kl, 1) for yl, Kl in zip(y, K))

        def increment(newK, K):  # sum over stages and layers of ||newK - K||^2, per trajectory
            total = 0
            for a, c in zip(newK, K):
                d = xp.reshape(a - c, (s, a.shape[1], -1))
                total = total + xp.vecdot(d, d)
            return total[0, ...] if s == 1 else xp.sum(total, axis=0)

        K = tuple(xp.stack([fl] * s, axis=0) for fl in f)  # initial guess: explicit Euler slopes
        prev_inc = None
        running = None
        iters = None
        for it in range(self.budget):
            newK = field(xp, points(K), loss)[1]
            inc = increment(newK, K)
            if running is None:
                running = inc > 0
                iters = xp.ones_like(inc)
                K = newK
            else:
                # keep iterating while the increment still decreases
                go = running & (inc < prev_inc)
                K = tuple(xp.where(go[(...,) + (None,) * (a.ndim - 2)], a, c) for a, c in zip(newK, K))
                iters = iters + xp.astype(go, iters.dtype)
                running = go & (inc > 0)
            prev_inc = xp.where(running, inc, prev_inc) if it else inc
        unresolved = running  # still decreasing when the budget ran out
        y1 = tuple(yl + bcast(dt, yl) * stage_sum(b, Kl, 0) for yl, Kl in zip(y, K))
        v1, f1 = field(xp, y1, loss)
        # A contraction ends at round-off; a step beyond the contraction limit
        # stagnates at once with an increment of the size of the slopes.
        eps = xp.finfo(y[0].dtype).eps
        failed = ~(prev_inc <= eps * (1.0 + s * sq_norm(xp, f)))
        return StepResult(
            y1, v1, f1, evaluations=s * iters + 1, iterations=iters,
            unresolved=unresolved, failed=failed & ~unresolved,
        )

    def _step_packed(self, y, f, dt, loss):
        """The same step on NumPy with packed stage buffers (:func:`linflow.flow.packed.gauss_stages`)."""
        ws = _workspace(self, GaussWorkspace, y, self.A, self.B)
        eps = np.finfo(y[0].dtype).eps
        y1, iters, unresolved, failed = gauss_stages(ws, y, f, dt, loss, self.budget, eps)
        v1, f1 = field(np, y1, loss)
        return StepResult(
            y1, v1, f1, evaluations=self.stages * iters + 1, iterations=iters,
            unresolved=unresolved, failed=failed & ~unresolved,
        )
