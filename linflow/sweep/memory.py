"""The cost model of a batch: bytes per trajectory, free memory, trajectories per batch.

See the course appendix *Numerical methods*, Cost model.
"""
from __future__ import annotations

import os

from .. import _validate as _v

__all__ = ["STATE_WORDS", "CPU_WORKING_SET", "bytes_per_trajectory", "available_memory", "batch_size"]

#: Words per state entry ``N = sum_l h_{l-1} h_l`` held at once by one step of each method
#: (state, stage slopes, stage points, error, the NumPy workspaces and the driver's checkpoint
#: copy; the course appendix *Numerical methods*, Cost model, gives 5 for RK4).  ``benchmarks/run.py`` (comparison d) measures these
#: with tracemalloc; the values are fitted to its measurements.
STATE_WORDS = {"rk4": 5, "dopri5": 18, "midpoint": 13, "gauss2": 17}


def bytes_per_trajectory(dims, *, method="dopri5", dtype="float64", n_saves=101, save_product=False,
                         diagnostics=(), extra_words=0):
    r"""Bytes one trajectory holds during a batched run: the cost model.

    See the course appendix *Numerical methods*, Cost model:

    .. math::  s\,\big(c_{\text{method}} N + (L+1)\,n_{\max}^2
               + S(1 + [\text{product}]\,nm + d)\big),

    with :math:`N=\sum_l h_{l-1}h_l` the state size, ``c`` from :data:`STATE_WORDS`
    (5 for RK4), the prefixes and the loss gradient, and the save buffers: ``S`` save
    points of the loss, of the product if saved and of ``d`` words of diagnostics.

    Parameters
    ----------
    dims : sequence of int
        Layer widths ``(h_0, ..., h_L)`` (``h_0 = n``, ``h_L = m``).
    method : {"dopri5", "midpoint", "gauss2", "rk4"}
    dtype : "float64" or "float32" (or a dtype)
    n_saves : int
        Number of save points.
    save_product : bool
        Whether the product ``W`` is saved at every save point (``save=("loss", "product")``).
    diagnostics : sequence of names
        Named diagnostics saved at every save point (``linflow.flow.DIAGNOSTICS``); a
        callable's size is not known in advance: count it in ``extra_words``.
    extra_words : int
        Further words per trajectory.
    """
    dims = list(_v.widths("dims", dims))
    if len(dims) < 2:
        raise ValueError(f"linflow: dims must be at least two positive widths (h_0, ..., h_L); got {dims}.")
    n_saves = _v.integer("n_saves", n_saves, minimum=0)
    extra_words = _v.integer("extra_words", extra_words, minimum=0)
    save_product = _v.boolean("save_product", save_product)
    if method not in STATE_WORDS:
        raise ValueError(f"linflow: unknown method {method!r}; expected one of {sorted(STATE_WORDS)}.")
    s = 4 if "32" in str(dtype) else 8
    N = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    L = len(dims) - 1
    n, m = dims[0], dims[-1]
    big = max(dims) ** 2
    per_save = 1 + (n * m if save_product else 0) + _diagnostic_words(dims, diagnostics)
    words = STATE_WORDS[method] * N + (L + 1) * big + n_saves * per_save
    return int(s * (words + extra_words))


def _diagnostic_words(dims, diagnostics):
    """Words per save point of the named diagnostics (callables count 0)."""
    if isinstance(diagnostics, str):
        diagnostics = (diagnostics,)
    names = [d for d in diagnostics if isinstance(d, str)]
    if isinstance(diagnostics, dict):
        names = [v for v in diagnostics.values() if isinstance(v, str)]
    size = {
        "imbalance": sum(h * h for h in dims[1:-1]),
        "singular_values": min(dims[0], dims[-1]),
        "sigma_min": 1,
        "lambda_min": 1,
        "weights": sum(a * b for a, b in zip(dims[:-1], dims[1:])),
    }
    return sum(size.get(d, 0) for d in names)


def available_memory(xp=None, device=None):
    """Free memory in bytes where the arrays live (GPU: free device memory; CPU: MemAvailable)."""
    try:
        import array_api_compat

        if xp is not None and array_api_compat.is_cupy_namespace(xp):
            import cupy

            with cupy.cuda.Device(getattr(device, "id", None)):
                free, _total = cupy.cuda.runtime.memGetInfo()
            pool = cupy.get_default_memory_pool()
            return int(free + pool.free_bytes())
    except Exception:  # pragma: no cover - no CuPy
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2 ** 31


#: On a CPU the engine itself splits a NumPy batch over the cores (linflow/flow/parallel.py), and
#: bigger batches amortize Python overhead better (on an idle 2-core machine B = 1000 in one call
#: ran 2.8x faster than batches of 113, benchmarks/README.md); the cap only bounds the working set.
CPU_WORKING_SET = 256 * 2 ** 20


def batch_size(dims, *, memory=None, max_batch=None, xp=None, device=None, fraction=0.5, **cost):
    """How many trajectories to run at once.

    ``memory`` (bytes) defaults to ``fraction`` of :func:`available_memory`; on a CPU
    the batch is also capped so its working set stays near :data:`CPU_WORKING_SET`,
    unless ``max_batch`` is given.  Always >= 1.
    """
    per = bytes_per_trajectory(dims, **cost)
    if memory is None:
        memory = _v.positive("fraction", fraction) * available_memory(xp, device)
    else:
        memory = _v.nonnegative("memory", memory)
    b = 1 if per > memory else int(memory // per)  # (per may be an int too large for a float)
    if max_batch is not None:
        return max(1, min(b, _v.integer("max_batch", max_batch, minimum=1)))
    import array_api_compat

    if xp is None or not array_api_compat.is_cupy_namespace(xp):
        b = min(b, max(32, CPU_WORKING_SET // per))
    return b
