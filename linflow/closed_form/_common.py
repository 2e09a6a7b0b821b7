"""Host conversions, validation and small helpers shared by the closed forms."""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_matrix, integer
from ..backend import asarray, to_numpy


# --- helpers ----------------------------------------------------------------------------


def _orthonormal(rng, rows, cols):
    """A random ``rows x cols`` matrix with orthonormal columns (host, float64)."""
    if cols > rows:
        raise ValueError(f"linflow: cannot have {cols} orthonormal columns in dimension {rows}.")
    Q, R = np.linalg.qr(rng.normal(size=(rows, cols)))
    return Q * np.sign(np.diag(R))


def _host_svd(Y):
    check_matrix(Y, "Y")
    Yh = np.asarray(to_numpy(Y), dtype=np.float64)
    if Yh.ndim != 2:
        raise ValueError(f"linflow: Y must be a matrix (n, m); got shape {Yh.shape}.")
    U, s, Vh = np.linalg.svd(Yh, full_matrices=False)
    return U, s, Vh.T


def _like(Y, a):
    """Host ``a`` moved to ``Y``'s namespace, device and dtype (or the default backend)."""
    if hasattr(Y, "shape") and not isinstance(Y, np.ndarray):
        return asarray(a, like=Y)
    if isinstance(Y, np.ndarray):
        return np.asarray(a, dtype=Y.dtype)
    return asarray(a)


def _modes_vector(a0, r, name="a0"):
    a0 = _host_float("closed_form", name, a0)
    try:
        a0 = np.broadcast_to(a0, (r,)).copy()
    except ValueError:
        raise ValueError(f"linflow: {name} must be one value or one per mode ({r}); got shape {a0.shape}.") from None
    if not (np.all(np.isfinite(a0)) and np.all(a0 >= 0)):
        raise ValueError(f"linflow: {name} must be finite and >= 0 (one value, or one per mode); got {a0}.")
    return a0


_QUIET = dict(over="ignore", under="ignore", invalid="ignore", divide="ignore")


def _is_array(v):
    return isinstance(v, np.ndarray) or (hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic))


def _host_float(fn, name, v):
    """Host float64 array from a number or array-like, with a clear TypeError otherwise."""
    if v is None or isinstance(v, (str, bytes, bool, np.bool_)):
        raise TypeError(f"linflow: {fn}: {name} must be a number or an array of numbers; "
                        f"got {type(v).__name__} {v!r}.")
    try:
        a = np.asarray(to_numpy(v), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"linflow: {fn}: {name} must be a number or an array of numbers; "
                        f"got {type(v).__name__} {v!r}.") from None
    return a


def _device(a):
    import array_api_compat

    return array_api_compat.device(a)


def _on(like, v):
    """``v`` (a number, host data, or an array of ``like``'s library) as an array like ``like``."""
    if hasattr(v, "shape") and not isinstance(v, (np.ndarray, np.generic)):
        return v
    if isinstance(like, np.ndarray):
        return np.asarray(v, dtype=like.dtype if like.dtype.kind == "f" else np.float64)
    return asarray(np.asarray(v, dtype=np.float64), like=like)


def _checked_host(v, name, fn):
    a = _host_float(fn, name, v)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"linflow: {fn} needs finite {name}; got {v!r}.")
    return a


def _times(t, name="t"):
    """Host float64 times, finite and >= 0 (the closed forms run forward from t = 0)."""
    t = np.atleast_1d(_host_float("closed_form", name, t))
    if t.ndim != 1:
        raise ValueError(f"linflow: {name} must be a number or a 1-d array of times; got shape {t.shape}.")
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError(f"linflow: {name} must hold finite times >= 0; got {t}.")
    return t


#: deepest network the closed forms accept (the deep form sums over L roots of unity)
MAX_DEPTH = 100_000


def _depth(L):
    """The depth ``L`` as an int in ``[1, MAX_DEPTH]``, or a clear error."""
    L = integer("L", L, minimum=1)
    if L > MAX_DEPTH:
        raise ValueError(f"linflow: L must be at most {MAX_DEPTH} for the closed forms; got L = {L}.")
    return L


def _finite_time(t, fn):
    """A learning time that is finite in exact arithmetic but overflowed float64 gets a clear error."""
    if not math.isfinite(t):
        raise ValueError(f"linflow: {fn}: the time overflows float64 (it exceeds 1.8e308); "
                         "rescale the problem.")
    return t


def _float_range(fn, what, compute, *args):
    """``compute(*args)``; an overflow, underflow to a zero divisor or a log of 0 (or a SciPy quadrature
    warning) inside it becomes a ValueError saying that the inputs' scales exceed float64."""
    import warnings

    from scipy.integrate import IntegrationWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", IntegrationWarning)
            return compute(*args)
    except (OverflowError, ZeroDivisionError, IntegrationWarning) as exc:
        raise ValueError(f"linflow: {fn}: {what} exceed the range of float64 ({exc}); rescale the problem.") from None
    except ValueError as exc:
        if str(exc).startswith("linflow"):
            raise
        raise ValueError(f"linflow: {fn}: {what} exceed the range of float64 ({exc}); rescale the problem.") from None


def _path_end(fn, p, p0, target, names):
    """The trivial ends of a learning time from ``p0`` to ``p`` towards ``target``: 0.0 at the start,
    ``inf`` at the target (reached only in the limit), None in between; a ValueError outside."""
    pn, p0n, tn = names
    if not min(p0, target) <= p <= max(p0, target):
        raise ValueError(f"linflow: {fn} needs {pn} between {p0n} = {p0!r} and {tn} = {target!r} "
                         f"(it moves monotonically from {p0n} to {tn}); got {pn} = {p!r}.")
    if p == p0:
        return 0.0
    if p == target:
        return math.inf
    return None
