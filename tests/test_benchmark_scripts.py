"""The GPU benchmark script runs end to end (NumPy standing in for CuPy).

A GPU machine is lent to a session for minutes at most, so ``benchmarks/gpu.py`` must not
be found broken there: this runs every section of it with ``--emulate --quick`` and checks
what it writes.  (Its numbers mean nothing on a CPU; the checks are about the script.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_script_runs_every_section(tmp_path):
    env = dict(os.environ, LINFLOW_PROGRESS="0")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--emulate", "--quick",
                          "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    res = json.loads((tmp_path / "gpu-emulated.json").read_text())
    assert res["emulated"] is True and res["errors"] == {}, res["errors"]
    assert set(res["section_seconds"]) == {"agreement", "gflops", "throughput", "sweep", "structure", "diffrax"}
    # diffrax is an optional peer: without JAX the section says so and the rest runs
    dx = res["diffrax"]
    try:
        import diffrax  # noqa: F401
    except ImportError:
        assert "not installed" in dx["skipped"] and "JAX/diffrax not installed" in out.stdout
    else:
        assert set(dx["rows"]) == {"lean", "default"}
        for r in dx["rows"].values():
            assert r["max_rel_diff_final_loss"] < 1e-5 and r["diffrax_over_linflow"] > 0
    # CuPy against NumPy: with NumPy on both sides every agreement check must pass
    assert res["agreement"] and all(r["ok"] for r in res["agreement"]), res["agreement"]
    sw = res["sweep"]
    assert sw["passed"] and sw["failed"] == 1 and sw["ok"] == sw["points"] - 1
    drift = {(r["dtype"], r["method"]): r["drift"] for r in res["structure"]["long_horizon"]}
    assert drift[("float64", "gauss2")] < 1e-12 and drift[("float64", "midpoint")] < 1e-12
    assert drift[("float64", "rk4")] > 1e3 * drift[("float64", "gauss2")]  # RK4 does not conserve D_l
    assert "| check | dtype |" in out.stdout
