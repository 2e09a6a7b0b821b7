"""Array backends: the namespace comes from the inputs, the default only creates.

Every computation in :mod:`linflow` takes its array namespace from its inputs
(``xp = namespace(*arrays)``, via array-api-compat), so the array type that
comes in is the array type that goes out: NumPy in, NumPy out; CuPy in, CuPy
out; ``array_api_strict`` in, ``array_api_strict`` out.

A *default backend* is used only where no array is passed in, i.e. when arrays
are created (random initializations, targets).  It is chosen with
:func:`set_backend` (a function and a context manager) or with the environment
variable ``LINFLOW_BACKEND`` (``numpy`` or ``cupy``).

Random numbers are always drawn on the host from ``numpy.random.default_rng(seed)``
in float64 and moved to the backend once (:func:`asarray`), so the same seed gives
the same weights on every backend.  Results come back to NumPy only through
:func:`to_numpy`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "Backend",
    "BackendError",
    "asarray",
    "get_backend",
    "namespace",
    "same_device",
    "set_backend",
    "to_numpy",
]


class BackendError(RuntimeError):
    """A requested backend is not usable here (e.g. CuPy without a GPU)."""


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where new arrays are created: a namespace, a device and a dtype.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
    xp : module
        The array-API namespace.
    device : object or None
        Device for new arrays (``None``: the namespace's default).
    dtype : dtype
        Floating dtype for new arrays (float64 unless the device lacks it).
    """

    name: str
    xp: Any
    device: Any = None
    dtype: Any = None


def _load(name: str, device=None, dtype=None) -> Backend:
    name = str(name).lower().replace("-", "_")
    if name == "numpy":
        xp = array_api_compat.array_namespace(np.zeros(1))
    elif name == "cupy":
        try:
            import cupy  # noqa: F401
        except Exception as exc:  # ImportError, or a broken CUDA install
            raise BackendError(
                "linflow: the 'cupy' backend was requested but CuPy cannot be imported "
                f"({type(exc).__name__}: {exc}). Install it on a machine with an NVIDIA GPU "
                "and CUDA 12 with `pip install 'linflow[gpu]'`, or use "
                "linflow.set_backend('numpy') / LINFLOW_BACKEND=numpy."
            ) from None
        if not cupy.is_available():
            raise BackendError(
                "linflow: the 'cupy' backend was requested but CuPy finds no usable GPU "
                "(cupy.is_available() is False). Run on a machine with an NVIDIA GPU and "
                "a CUDA 12 driver, or use linflow.set_backend('numpy') / LINFLOW_BACKEND=numpy."
            )
        xp = array_api_compat.array_namespace(cupy.zeros(1))
    elif name == "array_api_strict":
        import array_api_strict as xp
    else:
        raise ValueError(
            f"linflow: unknown backend {name!r}; expected 'numpy', 'cupy' or 'array_api_strict'."
        )
    if dtype is None:
        info = xp.__array_namespace_info__()
        dtype = info.default_dtypes(device=device)["real floating"]
    return Backend(name, xp, device, dtype)


_current: list[Backend] = []


def get_backend() -> Backend:
    """The default backend for creating arrays (``LINFLOW_BACKEND``, else NumPy)."""
    if not _current:
        _current.append(_load(os.environ.get("LINFLOW_BACKEND", "numpy")))
    return _current[-1]


class set_backend(contextlib.ContextDecorator):
    """Set the default backend for array creation.

    Works as a plain call (the setting stays) or as a context manager (the
    previous setting comes back on exit)::

        lf.set_backend("cupy")
        with lf.set_backend("numpy"):
            ...

    Parameters
    ----------
    name : {"numpy", "cupy", "array_api_strict"}
    device : optional
        Device for new arrays, e.g. an ``array_api_strict.Device``.
    dtype : optional
        Floating dtype for new arrays; default float64 where the device has it.

    Raises
    ------
    BackendError
        CuPy was asked for but cannot be imported or finds no GPU.
    """

    def __init__(self, name: str = "numpy", *, device=None, dtype=None):
        get_backend()  # make sure the environment default sits underneath
        self.backend = _load(name, device=device, dtype=dtype)
        self._previous = _current[-1]
        _current[-1] = self.backend

    def __enter__(self):
        return self.backend

    def __exit__(self, *exc):
        _current[-1] = self._previous
        return False


def namespace(*arrays):
    """The array namespace shared by ``arrays`` (Python scalars and None are skipped).

    Raises
    ------
    TypeError
        The arrays come from different array libraries, or one is not an array.
    ValueError
        The arrays live on different devices.
    """
    arrays = [a for a in arrays if a is not None and not isinstance(a, (int, float, bool))]
    if not arrays:
        return get_backend().xp
    try:
        xp = array_api_compat.array_namespace(*arrays)
    except TypeError:
        kinds = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in arrays})
        raise TypeError(
            "linflow: inputs must all be arrays of one array library; got "
            + ", ".join(kinds)
            + ". Convert them to one backend first (e.g. numpy.asarray, cupy.asarray, "
            "or linflow.to_numpy)."
        ) from None
    same_device(*arrays)
    return xp


def same_device(*arrays):
    """Return the common device of ``arrays``; raise ValueError if they differ (TypeError for non-arrays)."""
    for a in arrays:
        if not array_api_compat.is_array_api_obj(a):
            raise TypeError(f"linflow: same_device takes arrays; got {type(a).__name__}.")
    devices = [array_api_compat.device(a) for a in arrays]
    for d in devices[1:]:
        if not d == devices[0]:  # devices are compared with ==, never hashed
            raise ValueError(
                f"linflow: inputs live on different devices ({devices[0]!r} and {d!r}); "
                "move them to one device first."
            )
    return devices[0] if devices else None


def asarray(x, *, like=None, dtype=None):
    """Move host data (NumPy / Python) to a backend once.

    With ``like`` (an array), the result takes its namespace, device and dtype;
    otherwise the default backend's.  This is the one way host-generated random
    weights reach a device.

    Raises
    ------
    TypeError
        ``x`` holds something other than numbers (None, strings, objects), ``like`` is not
        an array, or ``dtype`` is not a dtype of the backend.
    """
    if not array_api_compat.is_array_api_obj(x) or isinstance(x, np.ndarray):
        try:
            kind = np.asarray(x).dtype.kind
        except (TypeError, ValueError):
            kind = "O"
        if kind not in "biuf":
            raise TypeError(f"linflow: asarray takes numbers (an array, a number or nested lists of numbers); "
                            f"got {type(x).__name__} {x!r}"[:300] + ".")
    if like is not None and not array_api_compat.is_array_api_obj(like):
        raise TypeError(f"linflow: like must be an array; got {type(like).__name__}.")
    if like is not None:
        xp = namespace(like)
        device = array_api_compat.device(like)
        dtype = like.dtype if dtype is None else dtype
    else:
        b = get_backend()
        xp, device = b.xp, b.device
        dtype = b.dtype if dtype is None else dtype
    try:
        return _put(x, xp, device, dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"linflow: asarray cannot make an array of dtype {dtype!r} from {type(x).__name__} "
                        f"({exc}).") from None


def _put(x, xp, device, dtype):
    if array_api_compat.is_cupy_namespace(xp) and isinstance(x, np.ndarray):
        import cupy

        with cupy.cuda.Device(device.id if device is not None else None):
            return cupy.asarray(x, dtype=dtype)
    return xp.asarray(x, dtype=dtype, device=device)


def resolve(backend) -> Backend:
    """A :class:`Backend` from a name (``"numpy"``, ``"cupy"``, ``"array_api_strict"``) or a Backend.

    Raises :class:`BackendError` for CuPy without a GPU, ``ValueError`` for an unknown name.
    """
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        raise TypeError(
            f"linflow: backend must be a name ('numpy', 'cupy', 'array_api_strict') or a "
            f"linflow Backend (e.g. lf.get_backend()); got {type(backend).__name__}."
        )
    return _load(backend)


def mover(backend):
    """``move(a)``: a host copy of ``a`` placed on ``backend`` once, floating data in its dtype."""
    b = resolve(backend)

    def move(a):
        a = to_numpy(a)
        return _put(a, b.xp, b.device, b.dtype if a.dtype.kind == "f" else None)

    return move


def to_numpy(x):
    """Return a NumPy copy of an array (or of every array in a tuple, list or dict).

    This is the only place where :mod:`linflow` moves data to the host; call it
    once, on results.  NumPy arrays pass through unchanged.
    """
    if isinstance(x, (tuple, list)):
        return type(x)(to_numpy(a) for a in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if x is None or isinstance(x, (int, float, np.ndarray, np.generic)):
        return x
    if hasattr(x, "to_numpy") and not array_api_compat.is_array_api_obj(x):
        return x.to_numpy()
    if array_api_compat.is_cupy_array(x):
        return x.get()
    mod = type(x).__module__
    if mod.startswith("array_api_strict"):
        import array_api_strict

        return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))
    return np.asarray(x)
