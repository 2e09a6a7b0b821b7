"""Shared fixtures: the backend grid every engine test runs on.

``xp`` rows:
- numpy (float64);
- array_api_strict on CPU_DEVICE (float64);
- array_api_strict on device1 (float64): no implicit conversion to NumPy, so a
  hidden host transfer inside linflow raises;
- array_api_strict on no_float64 (float32 only);
- cupy (float64), skipped with a reason unless a GPU is present.
"""
from __future__ import annotations


import numpy as np
import pytest


from support import Backend, _grid


@pytest.fixture(params=_grid())
def backend(request):
    kind, dev = request.param
    if kind == "numpy":
        import array_api_compat.numpy as xnp

        return Backend("numpy", xnp, None, xnp.float64)
    if kind == "strict":
        import array_api_strict as xs

        device = next(d for d in xs.__array_namespace_info__().devices() if str(d).find(dev) >= 0)
        dtype = xs.float32 if dev == "no_float64" else xs.float64
        return Backend(f"strict-{dev}", xs, device, dtype)
    try:
        import cupy
    except Exception:
        pytest.skip("CuPy is not installed (GPU tests run on a GPU machine: pip install 'linflow[gpu]')")
    if not cupy.is_available():
        pytest.skip("CuPy finds no GPU")
    import array_api_compat.cupy as xc

    return Backend("cupy", xc, None, xc.float64)


@pytest.fixture
def rng():
    return np.random.default_rng(20230723)


