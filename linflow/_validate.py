"""Checks at the API boundary: each error names the argument, what came, and what was expected."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import namespace, to_numpy

__all__ = [
    "check_weights",
    "check_matrix",
    "check_finite",
    "check_scale",
    "check_loss",
    "check_power",
    "real_array",
    "float_dtype",
    "real",
    "positive",
    "nonnegative",
    "integer",
    "widths",
    "seed",
    "boolean",
    "path",
    "name",
]


def boolean(name, value):
    """``True`` or ``False`` (NumPy booleans too); anything else is a TypeError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"linflow: {name} must be True or False; got {type(value).__name__} {value!r}.")


def _scalar(name, value, what):
    """``value`` as a Python float; a TypeError names the argument unless it is a real number.

    Strings, booleans and arrays with more than one element are refused (``float("1")``
    would quietly accept a string).
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise TypeError(f"linflow: {name} must be a number ({what}); got {type(value).__name__} {value!r}.")
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "shape") and tuple(value.shape) == () and hasattr(value, "dtype"):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"linflow: {name} must be a number ({what}); got {type(value).__name__} {value!r}.")


def real(name, value):
    """A finite real number (float)."""
    v = _scalar(name, value, "a real number")
    if not math.isfinite(v):
        raise ValueError(f"linflow: {name} must be finite; got {value!r}.")
    return v


def positive(name, value):
    """A finite number ``> 0`` (float)."""
    v = _scalar(name, value, "a positive number")
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"linflow: {name} must be positive and finite; got {value!r}.")
    return v


def nonnegative(name, value):
    """A finite number ``>= 0`` (float)."""
    v = _scalar(name, value, "a non-negative number")
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"linflow: {name} must be non-negative and finite; got {value!r}.")
    return v


def integer(name, value, *, minimum=None):
    """An integer (``int``, NumPy integer, or an integral float like ``3.0``), at least ``minimum``.

    A fractional value is refused rather than truncated.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        v = int(value)
    else:
        f = _scalar(name, value, "an integer")
        if not (math.isfinite(f) and f == int(f)):
            raise ValueError(f"linflow: {name} must be an integer; got {value!r}.")
        v = int(f)
    if minimum is not None and v < minimum:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"linflow: {name} must be {what}; got {value!r}.")
    return v


def widths(name, values, *, minimum=1):
    """A sequence of integer widths, each ``>= minimum``, as a tuple of ints."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"linflow: {name} must be a sequence of integers; got {type(values).__name__} {values!r}.")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(integer(f"{name}[{i}]", v, minimum=minimum))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc} (in {name} = {tuple(values)!r})") from None
    return tuple(out)


def seed(value, name="seed"):
    """A seed for ``numpy.random.default_rng``: None, a Generator, or an integer >= 0."""
    if value is None or isinstance(value, (np.random.Generator, np.random.SeedSequence)):
        return value
    try:
        return integer(name, value, minimum=0)
    except (TypeError, ValueError):
        raise (TypeError if not isinstance(value, numbers.Real) else ValueError)(
            f"linflow: {name} must be a non-negative integer or a numpy.random.Generator; got {value!r}."
        ) from None


def path(name, value):
    """A file system path (``str`` or ``os.PathLike``, not empty) as a ``str``."""
    import os

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"linflow: {name} must be a path (str or os.PathLike); got {type(value).__name__} {value!r}.")
    if not value:
        raise ValueError(f"linflow: {name} must be a path; got the empty string.")
    return value


def name(what, value):
    """A name (a ``str``), e.g. a column of a table or a key of a dict."""
    if not isinstance(value, str):
        raise TypeError(f"linflow: {what} must be a name (str); got {type(value).__name__} {value!r}.")
    return value


def to_host(a):
    """A NumPy copy of one array (one host transfer)."""
    return np.asarray(to_numpy(a))


def _shape(a):
    return tuple(a.shape)


def float_dtype(xp, a, name):
    if not xp.isdtype(a.dtype, "real floating"):
        raise TypeError(
            f"linflow: {name} must have a real floating dtype (float32 or float64); got {a.dtype}."
        )


def check_finite(xp, a, name):
    """Raise ValueError if ``a`` holds NaN or inf (one host sync; boundary only)."""
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"linflow: {name} contains non-finite values (NaN or inf).")


def check_weights(Ws, *, finite=True, min_layers=1, name="Ws"):
    """Validate a chain of weights ``(W_1, ..., W_L)``.

    Each ``W_l`` has shape ``(..., h_{l-1}, h_l)`` with the same leading batch
    shape, one floating dtype, one namespace and one device.

    Returns
    -------
    xp, Ws : namespace, tuple of arrays
    """
    if hasattr(Ws, "shape") or not isinstance(Ws, (tuple, list)):
        raise TypeError(
            f"linflow: {name} must be a tuple of weight matrices (W_1, ..., W_L); "
            f"got {type(Ws).__name__}."
        )
    Ws = tuple(Ws)
    if len(Ws) < min_layers:
        raise ValueError(f"linflow: {name} needs at least {min_layers} layers; got {len(Ws)}.")
    for l, W in enumerate(Ws, 1):
        if not (hasattr(W, "shape") and hasattr(W, "dtype") and hasattr(W, "ndim")):
            raise TypeError(
                f"linflow: {name}[{l - 1}] (W_{l}) must be an array (NumPy, CuPy or another array API "
                f"library); got {type(W).__name__}."
            )
    xp = namespace(*Ws)
    for l, W in enumerate(Ws, 1):
        if W.ndim < 2:
            raise ValueError(
                f"linflow: {name}[{l - 1}] (W_{l}) must have shape (..., h_{l - 1}, h_{l}) "
                f"with at least 2 dimensions; got shape {_shape(W)}."
            )
        float_dtype(xp, W, f"{name}[{l - 1}] (W_{l})")
    for l, W in enumerate(Ws, 1):
        if 0 in _shape(W)[-2:]:
            raise ValueError(
                f"linflow: {name}[{l - 1}] (W_{l}) must have non-zero widths h_{l - 1}, h_{l} >= 1; "
                f"got shape {_shape(W)}."
            )
    batch = _shape(Ws[0])[:-2]
    dtypes = {str(W.dtype) for W in Ws}
    if len(dtypes) > 1:
        raise TypeError(
            f"linflow: all layers of {name} must share one dtype; got "
            + ", ".join(f"W_{l}: {W.dtype}" for l, W in enumerate(Ws, 1))
            + "."
        )
    for l, W in enumerate(Ws, 1):
        if _shape(W)[:-2] != batch:
            raise ValueError(
                f"linflow: all layers of {name} must share the batch shape {batch}; "
                f"W_{l} has shape {_shape(W)}."
            )
    for l in range(1, len(Ws)):
        a, b = Ws[l - 1], Ws[l]
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"linflow: the chain does not fit together: W_{l} has shape {_shape(a)} "
                f"(h_{l} = {a.shape[-1]}) but W_{l + 1} has shape {_shape(b)} "
                f"(expected {a.shape[-1]} rows)."
            )
    if finite:
        for l, W in enumerate(Ws, 1):
            check_finite(xp, W, f"{name}[{l - 1}] (W_{l})")
        check_scale(xp, Ws, name)
    return xp, Ws


def check_scale(xp, Ws, name="Ws"):
    r"""Refuse weights (or a chain with its gradient) so large that the chain's quantities overflow.

    The product, the Grams :math:`P_lP_l^\top`, :math:`S_l^\top S_l`, the loss and
    :math:`\mathcal T_W` grow like the square of :math:`\prod_l\|W_l\|_F` (and the energy
    :math:`\langle G, \mathcal T_W G\rangle` like the square of :math:`\|G\|_F\prod_l\|W_l\|_F`,
    checked by passing ``G`` along).  That product (the largest of the batch, each norm
    computed scaled so that the check itself cannot overflow) must stay below the square
    root of the dtype's largest number over 16: about 8e152 in float64, 1e18 in float32.
    A ValueError says so instead of a silent inf or NaN further on.
    """
    parts = []
    for W in Ws:
        peak = xp.max(xp.abs(W))
        safe = xp.where(peak > 0, peak, xp.ones_like(peak))
        parts += [peak, xp.max(xp.sqrt(xp.sum((W / safe) ** 2, axis=(-2, -1))))]
    host = to_host(xp.stack(parts)).astype(np.float64).reshape(-1, 2)
    if np.any(host[:, 0] == 0):
        return
    log_bound = float(np.sum(np.log(host[:, 0]) + np.log(host[:, 1])))
    limit = 0.5 * math.log(float(xp.finfo(Ws[0].dtype).max)) - math.log(16.0)
    if log_bound > limit:
        raise ValueError(
            f"linflow: {name} too large for {Ws[0].dtype}: the product of the norms of its matrices is about "
            f"1e{log_bound / math.log(10):.0f}, beyond 1e{limit / math.log(10):.0f} (the square root of the "
            "largest number of that dtype, over 16), where the products, Grams and losses overflow. "
            "Rescale the weights (or use float64)."
        )


def check_matrix(a, name, *, ndim=2, finite=True, xp=None):
    """Validate a data matrix (at least ``ndim`` dims, floating, finite)."""
    if not hasattr(a, "shape"):
        raise TypeError(f"linflow: {name} must be an array; got {type(a).__name__}.")
    xp = namespace(a) if xp is None else xp
    if a.ndim < ndim:
        raise ValueError(
            f"linflow: {name} must have at least {ndim} dimensions; got shape {_shape(a)}."
        )
    if 0 in _shape(a)[-ndim:]:
        raise ValueError(f"linflow: {name} must have non-zero dimensions; got shape {_shape(a)}.")
    float_dtype(xp, a, name)
    if finite:
        check_finite(xp, a, name)
    return a


def check_loss(loss, name="loss"):
    """A linflow loss object (an instance of :class:`linflow.losses.Loss`); else a TypeError."""
    from .losses import Loss

    if not isinstance(loss, Loss):
        raise TypeError(
            f"linflow: {name} must be a linflow loss (linflow.losses.Squared, Regression, Exponential, "
            f"Logistic); got {type(loss).__name__}."
        )
    return loss


def real_array(a, name, ndim=1):
    """``a`` as a finite real floating array with at least ``ndim`` axes (and no empty axis if ``ndim``).

    NumPy integer arrays, Python numbers and nested lists become float64 NumPy arrays.
    """
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"linflow: {name} must be an array of real numbers; got {type(a).__name__} {a!r}.")
    if not hasattr(a, "shape") or (isinstance(a, np.ndarray) and a.dtype.kind in "iub"):
        try:
            a = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"linflow: {name} must be an array of real numbers; got {a!r}.") from None
    if a.ndim < ndim:
        raise ValueError(f"linflow: {name} needs at least {ndim} dimensions; got shape {tuple(a.shape)}.")
    if ndim:
        return check_matrix(a, name, ndim=ndim)
    xp = namespace(a)
    float_dtype(xp, a, name)
    check_finite(xp, a, name)
    return a


def check_power(a, name, power):
    """Refuse entries so large that their ``power``-th power overflows the dtype."""
    xp = namespace(a)
    peak = float(to_host(xp.max(xp.abs(a)))) if a.size else 0.0
    limit = float(xp.finfo(a.dtype).max) ** (1.0 / power) / 4
    if peak > limit:
        raise ValueError(f"linflow: {name} has entries up to {peak:.3g}; their power {power} overflows "
                         f"{a.dtype} (entries must stay below {limit:.3g}).")
