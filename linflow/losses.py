r"""Base losses :math:`f(W)` with their constants (Assumptions A1, A2, A1′).

Each loss gives its value and gradient at the product :math:`W` (batched over
leading axes), and the constants the theory uses where they exist:

* ``gamma`` — the PL constant of A1, :math:`\|\nabla f\|_F^2 \ge \gamma (f - f^*)`,
  or, for classification losses, the constant of A1′,
  :math:`\|\nabla f\|_F \ge \gamma (f - f^*)` (``assumption`` says which);
* ``K``, ``mu`` — smoothness and strong convexity (A2), ``None`` where absent;
* ``minimizer`` (:math:`W^*`) and ``f_star``.

Constants are computed once, on the host, when the loss is built.
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import check_matrix, check_power, positive
from .backend import namespace, to_numpy

__all__ = ["Loss", "Squared", "Regression", "Exponential", "Logistic"]


class Loss:
    """Base class: ``value_and_grad(W) -> (f(W), ∇f(W))`` for ``W`` of shape ``(..., n, m)``.

    Attributes
    ----------
    shape : tuple (n, m)
        Shape of the product this loss accepts.
    assumption : str
        ``"A1+A2"``, ``"A1"`` or ``"A1'"`` (classification).
    gamma, K, mu : float or None
    minimizer : array or None
    f_star : float
    """

    assumption = "A1"
    gamma = None
    K = None
    mu = None
    minimizer = None
    f_star = 0.0

    def __init__(self, *data):
        self._data = data
        self.xp = namespace(*data)

    def value(self, W):
        """Loss value, shape ``W.shape[:-2]``."""
        return self.value_and_grad(W)[0]

    def grad(self, W):
        """Gradient ``∇f(W)``, shaped like ``W``."""
        return self.value_and_grad(W)[1]

    def value_and_grad(self, W):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def data(self):
        """The data arrays of the loss (targets, features)."""
        return self._data

    @property
    def batch_shape(self):
        """Leading batch shape of the data (empty if the data is shared by all networks)."""
        return ()

    def check(self, Ws):
        """Check that weights fit this loss: namespace, device, dtype and the product's shape."""
        xp = namespace(*Ws, *self._data)
        n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
        if (n, m) != tuple(self.shape):
            raise ValueError(
                f"linflow: the product W_1...W_L has shape (..., {n}, {m}) but "
                f"{type(self).__name__} expects (..., {self.shape[0]}, {self.shape[1]})."
            )
        for d in self._data:
            if d.dtype != Ws[0].dtype:
                raise TypeError(
                    f"linflow: the weights have dtype {Ws[0].dtype} but the data of "
                    f"{type(self).__name__} has dtype {d.dtype}; use one dtype."
                )
        return xp

    def _replace(self, *data):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._data = data
        return new

    def take(self, index, batch_ndim):
        """The loss restricted to trajectories ``index`` of a flattened batch (engine use)."""
        return self

    def _moved(self, move):
        """The same loss with every array moved by ``move`` (engine use: a sweep builds on the
        host and moves each batch once).  Arrays shared between attributes stay shared."""
        import array_api_compat

        memo = {}

        def mv(a):
            if array_api_compat.is_array_api_obj(a):
                if id(a) not in memo:
                    memo[id(a)] = move(a)
                return memo[id(a)]
            return a

        new = object.__new__(type(self))
        new.__dict__.update({k: tuple(mv(a) for a in v) if k == "_data" else mv(v)
                             for k, v in self.__dict__.items()})
        new.xp = namespace(*new._data)
        return new

    def flatten_batch(self, batch_shape):
        """The loss with its data batch reshaped to one axis (engine use)."""
        return self

    def __repr__(self):
        parts = [f"shape={tuple(self.shape)}", f"assumption={self.assumption!r}"]
        for k in ("gamma", "K", "mu"):
            v = getattr(self, k)
            if v is not None:
                parts.append(f"{k}={v:.4g}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _sumsq(xp, A):
    if A.ndim >= 2 and A.shape[-1] * A.shape[-2] > 0:
        flat = xp.reshape(A, tuple(A.shape[:-2]) + (A.shape[-2] * A.shape[-1],))
        return xp.vecdot(flat, flat, axis=-1)  # one pass, no temporary
    return xp.sum(A * A, axis=(-2, -1))


class Squared(Loss):
    r"""Matrix factorization :math:`f(W) = \tfrac12\|W - Y\|_F^2`.

    Satisfies A1 and A2 with :math:`\|\nabla f\|^2 = 2(f - f^*)` exactly, so
    ``gamma = 2``, ``K = mu = 1``, ``minimizer = Y``, ``f_star = 0``.

    Parameters
    ----------
    Y : array, shape ``(..., n, m)``
        Target; leading axes (if any) give one target per network of a batch.
    """

    assumption = "A1+A2"
    gamma = 2.0
    K = 1.0
    mu = 1.0

    def __init__(self, Y):
        check_matrix(Y, "Y")
        super().__init__(Y)
        self.Y = Y
        self.shape = tuple(Y.shape[-2:])
        self.minimizer = Y

    @property
    def batch_shape(self):
        return tuple(self._data[0].shape[:-2])

    def _replace(self, *data):
        new = super()._replace(*data)
        new.Y = new.minimizer = data[0]
        return new

    def value_and_grad(self, W):
        G = W - self._data[0]
        return 0.5 * _sumsq(self.xp, G), G

    def grad(self, W):
        return W - self._data[0]

    def take(self, index, batch_ndim):
        Y = self._data[0]
        if Y.ndim == 2:
            return self
        return self._replace(self.xp.take(Y, index, axis=0))

    def flatten_batch(self, batch_shape):
        Y = self._data[0]
        if Y.ndim == 2:
            return self
        Y = self.xp.broadcast_to(Y, tuple(batch_shape) + self.shape)
        return self._replace(self.xp.reshape(Y, (-1,) + self.shape))


class Regression(Loss):
    r"""Linear regression :math:`f(W) = \tfrac12\|Y - XW\|_F^2`, ``X`` of shape ``(N, n)``.

    * ``X`` of full column rank (:math:`N \ge n`): A1 and A2 hold with
      :math:`\mu = \lambda_{\min}(X^\top X)`, :math:`K = \lambda_{\max}(X^\top X)`,
      :math:`\gamma = 2\mu`; the minimizer is :math:`W^* = (X^\top X)^{-1}X^\top Y`.
    * ``X`` of full row rank (:math:`N < n`, under-determined): only A1 holds, with
      :math:`\gamma = 2\lambda_{\min}(XX^\top)`, ``f_star = 0``; ``mu = None`` and
      ``minimizer`` is the minimum-norm solution :math:`X^+Y` (one of many).

    Raises
    ------
    ValueError
        ``X`` is rank deficient (neither full column nor full row rank).
    """

    def __init__(self, X, Y):
        check_matrix(X, "X")
        check_matrix(Y, "Y")
        if X.ndim != 2 or Y.ndim != 2:
            raise ValueError(
                f"linflow: Regression takes X of shape (N, n) and Y of shape (N, m); "
                f"got X {tuple(X.shape)} and Y {tuple(Y.shape)}."
            )
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"linflow: X and Y must have the same number of rows N; got X {tuple(X.shape)} "
                f"and Y {tuple(Y.shape)}."
            )
        check_power(X, "X", 4)  # X^T X and the loss's squares must fit the dtype
        check_power(Y, "Y", 4)
        super().__init__(X, Y)
        self.X, self.Y = X, Y
        xp = self.xp
        N, n = X.shape
        self.shape = (n, Y.shape[1])
        Xh, Yh = to_numpy(X).astype(np.float64), to_numpy(Y).astype(np.float64)
        s = np.linalg.svd(Xh, compute_uv=False)
        tol = s[0] * max(N, n) * np.finfo(np.float64).eps if s.size else 0.0
        rank = int(np.sum(s > tol))
        if rank == n:  # full column rank
            self.assumption = "A1+A2"
            self.mu = float(s[-1] ** 2)
            self.K = float(s[0] ** 2)
            self.gamma = 2.0 * self.mu
            Wstar = np.linalg.lstsq(Xh, Yh, rcond=None)[0]
            self.f_star = 0.5 * float(np.sum((Yh - Xh @ Wstar) ** 2))
        elif rank == N:  # full row rank, under-determined
            self.assumption = "A1"
            self.gamma = 2.0 * float(s[N - 1] ** 2)
            self.K = float(s[0] ** 2)
            Wstar = np.linalg.pinv(Xh) @ Yh
            self.f_star = 0.0
        else:
            raise ValueError(
                f"linflow: Regression needs X of full column rank or full row rank; X has shape "
                f"{tuple(X.shape)} and numerical rank {rank}."
            )
        if not (self.gamma > 0 and np.all(np.isfinite(Wstar))):
            raise ValueError(
                f"linflow: Regression's constants underflow: the smallest singular value of X, {s[-1]:.3g}, "
                "squares to 0 in float64; rescale X."
            )
        self.minimizer = xp.asarray(Wstar.astype(to_numpy(X).dtype), device=_dev(X))

    def value_and_grad(self, W):
        xp = self.xp
        X, Y = self._data
        R = X @ W - Y
        return 0.5 * _sumsq(xp, R), xp.matrix_transpose(X) @ R


def _dev(x):
    import array_api_compat

    return array_api_compat.device(x)


def _max_margin(Xh, yh):
    """Hard-margin direction: max_{|z|=1} min_i y_i x_i^T z (host, SciPy)."""
    from scipy.optimize import minimize

    A = yh[:, None] * Xh
    n = Xh.shape[1]
    peak = float(np.max(np.abs(A))) if A.size else 0.0
    if peak == 0:
        return 0.0, np.zeros(n)
    A = A / peak  # the margin scales with the data: solve at unit scale (no overflow for tiny or huge X)
    z0 = np.linalg.lstsq(A, np.ones(len(yh)), rcond=None)[0]
    res = minimize(
        lambda w: 0.5 * w @ w,
        z0,
        jac=lambda w: w,
        constraints=[{"type": "ineq", "fun": lambda w: A @ w - 1.0, "jac": lambda w: A}],
        method="SLSQP",
        options={"maxiter": 500, "ftol": 1e-14},
    )
    w = res.x
    norm = float(np.linalg.norm(w))
    if norm == 0 or not np.all(np.isfinite(w)):
        return 0.0, np.zeros(n)
    z = w / norm
    return float(np.min(A @ z)) * peak, z


class _Classification(Loss):
    assumption = "A1'"

    def __init__(self, X, y, margin=None):
        check_matrix(X, "X")
        if hasattr(y, "dtype") and not namespace(y).isdtype(y.dtype, ("integral", "real floating")):
            raise TypeError(f"linflow: labels y must be numbers -1 or +1; got an array of dtype {y.dtype}.")
        if not hasattr(y, "shape") or y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"linflow: y must be a vector of N = {X.shape[0]} labels in {{-1, +1}}; "
                f"got {getattr(y, 'shape', type(y).__name__)}."
            )
        if X.ndim != 2:
            raise ValueError(f"linflow: X must have shape (N, n); got {tuple(X.shape)}.")
        xp = namespace(X, y)
        yh = to_numpy(y).astype(np.float64)
        if not np.all(np.abs(yh) == 1):
            raise ValueError("linflow: labels y must be -1 or +1.")
        if y.dtype != X.dtype:  # integer or other-precision labels take the features' dtype
            y = xp.astype(y, X.dtype)
        super().__init__(X, y)
        self.X, self.y = X, y
        self.shape = (X.shape[1], 1)
        self._A = (y[:, None] * X)  # rows y_i x_i^T, shape (N, n)
        self.direction = None
        if margin is None:
            margin, z = _max_margin(to_numpy(X).astype(np.float64), yh)
            self.direction = xp.asarray(z.astype(to_numpy(X).dtype), device=_dev(X))
        else:
            margin = positive("margin", margin)
            # y_i x_i^T z <= |x_i| for a unit z: no data have a margin above min_i |x_i|
            Xh = to_numpy(X).astype(np.float64)
            peak = float(np.max(np.abs(Xh)))
            ceiling = float(np.min(np.linalg.norm(Xh / peak, axis=1))) * peak if peak else 0.0
            if margin > ceiling * (1 + 1e-12):
                raise ValueError(
                    f"linflow: margin = {margin:.6g} is larger than these data can have (at most "
                    f"min_i |x_i| = {ceiling:.6g}); omit margin to compute it."
                )
        if not margin > 0:
            raise ValueError(
                "linflow: the data are not linearly separable (margin <= 0); the exponential "
                "and logistic losses satisfy A1' only on separable data."
            )
        self.margin = float(margin)
        self.f_star = 0.0

    def _scores(self, W):
        # u_i = y_i x_i^T w, shape (..., N)
        return (self._A @ W)[..., 0]


class Exponential(_Classification):
    r"""Exponential loss :math:`f(w) = \sum_i \exp(-y_i x_i^\top w)` on separable data.

    Satisfies A1′, :math:`\|\nabla f\| \ge \gamma f`, with ``gamma`` the margin of
    separation (Claim, App. C); ``f_star = 0`` is approached, not attained, so
    Theorem 4 gives an O(1/t) rate.  The product ``W`` has shape ``(..., n, 1)``.

    Parameters
    ----------
    X : array (N, n)
    y : array (N,), labels ±1
    margin : float, optional
        The separation margin; computed by a hard-margin QP (SciPy) if omitted.
    """

    def __init__(self, X, y, margin=None):
        super().__init__(X, y, margin)
        self.gamma = self.margin

    def value_and_grad(self, W):
        xp = self.xp
        e = xp.exp(-self._scores(W))  # (..., N)
        G = -(xp.matrix_transpose(self._A) @ e[..., None])
        return xp.sum(e, axis=-1), G


class Logistic(_Classification):
    r"""Logistic loss :math:`f(w) = \sum_i \log(1 + \exp(-y_i x_i^\top w))` on separable data.

    Not in the paper.  A1′ holds on the sublevel set :math:`\{f \le f_0\}` with
    :math:`\gamma' = \gamma e^{-f_0}` (γ the margin), because
    :math:`-\ell'(u) = 1 - e^{-\ell(u)} \ge \ell(u)e^{-\ell(u)}`; gradient flow stays in
    that set.  So ``gamma`` is ``None``; use :meth:`gamma_on_sublevel`.
    """

    def gamma_on_sublevel(self, f0):
        """A1′ constant on ``{f <= f0}``: ``margin * exp(-f0)``."""
        return self.margin * math.exp(-float(f0))

    def value_and_grad(self, W):
        xp = self.xp
        u = self._scores(W)
        # log(1 + e^{-u}) computed stably; sigmoid(-u) = e^{-softplus(u)}
        value = xp.sum(xp.logaddexp(xp.zeros_like(u), -u), axis=-1)
        s = xp.exp(-xp.logaddexp(xp.zeros_like(u), u))
        G = -(xp.matrix_transpose(self._A) @ s[..., None])
        return value, G
