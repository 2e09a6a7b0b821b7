"""Helpers shared by the test modules (imported as `support`; fixtures live in conftest.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest


@dataclasses.dataclass(frozen=True)
class Backend:
    """One row of the grid: how to move host data there, and its tolerance scale."""

    name: str
    xp: object
    device: object
    dtype: object

    def asarray(self, a):
        return self.xp.asarray(np.asarray(a, dtype=np.float64 if self.is64 else np.float32),
                               dtype=self.dtype, device=self.device)

    def weights(self, Ws):
        return tuple(self.asarray(W) for W in Ws)

    @property
    def is64(self):
        return "64" in str(self.dtype)

    @property
    def eps(self):
        return float(np.finfo(np.float64 if self.is64 else np.float32).eps)

    def __repr__(self):
        return self.name


def _grid():
    rows = [pytest.param(("numpy", None), id="numpy")]
    rows += [pytest.param(("strict", d), id=f"strict-{d}") for d in ("CPU_DEVICE", "device1", "no_float64")]
    rows.append(pytest.param(("cupy", None), id="cupy", marks=pytest.mark.gpu))
    return rows


def random_weights(rng, dims, scale=0.6, batch=()):
    """Host float64 weights with W_l of shape batch + (dims[l], dims[l+1])."""
    return tuple(rng.normal(size=tuple(batch) + (a, b)) * scale for a, b in zip(dims[:-1], dims[1:]))


def assert_like(out, backend, shape=None):
    """Namespace, device and dtype of ``out`` are those of ``backend`` (checked before values)."""
    import array_api_compat

    assert array_api_compat.array_namespace(out) == array_api_compat.array_namespace(
        backend.asarray(np.zeros(1))
    ), f"namespace changed: {type(out)}"
    if backend.device is not None:
        assert array_api_compat.device(out) == backend.device, array_api_compat.device(out)
    assert out.dtype == backend.dtype, out.dtype
    if shape is not None:
        assert tuple(out.shape) == tuple(shape), (tuple(out.shape), shape)


def host(x):
    """To NumPy float64 (tests only; the library's own transfer is linflow.to_numpy)."""
    import linflow as lf

    return np.asarray(lf.to_numpy(x), dtype=np.float64)


def rel_err(a, b):
    a, b = host(a), host(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def tol(backend, rtol64, rtol32=None):
    """A float64 tolerance, or its float32 counterpart (default: eps-scaled, 1e-4 floor)."""
    if backend.is64:
        return rtol64
    return rtol32 if rtol32 is not None else max(1e-4, rtol64)


def shared_once(tmp_path_factory, name, build):
    """Run BUILD(folder) once per test session, also under pytest-xdist (-n 2): the workers
    share the session's base temp folder and take turns through a lock, so the expensive
    step runs once and the others reuse its JSON result."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, done = base / name, base / f"{name}.json"
    try:
        import fcntl
    except ImportError:          # no flock (Windows): each worker builds its own
        fcntl = None
        folder, done = tmp_path_factory.mktemp(name), None
    with open(base / f"{name}.lock", "w") as fh:
        if fcntl:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if done is not None and done.exists():
                return json.loads(done.read_text())
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            result = json.loads(json.dumps(build(folder)))
            if done is not None:
                done.write_text(json.dumps(result))
            return result
        finally:
            if fcntl:
                fcntl.flock(fh, fcntl.LOCK_UN)
