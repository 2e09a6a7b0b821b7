"""Keep NumPy's large temporaries in the heap instead of fresh pages (glibc only).

A batched step on NumPy allocates and frees many arrays of a few hundred KB to a
few MB.  glibc serves those with ``mmap`` and returns them with ``munmap`` (or
trims the heap), so every temporary costs fresh page faults: measured here, a
(1000, 10, 10) matmul whose result lands in fresh pages took 0.55 ms instead of
0.2 ms, and a whole Dormand–Prince step 62 ms instead of 25 ms.  CuPy avoids
this with its memory pool; for NumPy the equivalent is to raise glibc's mmap and
trim thresholds so freed blocks are reused.

:func:`tune` does that once per process, when the first NumPy integration
starts.  Memory freed by the process is then kept for reuse rather than handed
back to the operating system at once.  Set ``LINFLOW_HOST_MALLOC=default`` to
leave the allocator alone.  Numbers never change, only speed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 256 * 1024 * 1024  # blocks below 256 MiB come from the heap and are reused
_done = []


def tune():
    """Raise glibc's mmap/trim thresholds once (no-op elsewhere or when disabled)."""
    if _done:
        return _done[0]
    _done.append(False)
    if os.environ.get("LINFLOW_HOST_MALLOC", "").lower() == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        ok = False
    _done[0] = ok
    return ok
