"""Checks at the API boundary: each error names the argument, what came, and what was expected."""
from __future__ import annotations

from .backend import namespace

__all__ = ["check_weights", "check_matrix", "check_finite", "float_dtype"]


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
    xp = namespace(*Ws)
    for l, W in enumerate(Ws, 1):
        if W.ndim < 2:
            raise ValueError(
                f"linflow: {name}[{l - 1}] (W_{l}) must have shape (..., h_{l - 1}, h_{l}) "
                f"with at least 2 dimensions; got shape {_shape(W)}."
            )
        float_dtype(xp, W, f"{name}[{l - 1}] (W_{l})")
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
    return xp, Ws


def check_matrix(a, name, *, ndim=2, finite=True, xp=None):
    """Validate a data matrix (at least ``ndim`` dims, floating, finite)."""
    if not hasattr(a, "shape"):
        raise TypeError(f"linflow: {name} must be an array; got {type(a).__name__}.")
    xp = namespace(a) if xp is None else xp
    if a.ndim < ndim:
        raise ValueError(
            f"linflow: {name} must have at least {ndim} dimensions; got shape {_shape(a)}."
        )
    float_dtype(xp, a, name)
    if finite:
        check_finite(xp, a, name)
    return a
