"""linflow on a GPU: CuPy against NumPy on the same seeds, and GPU throughput against 2 CPU cores.

One command, about 3-5 minutes on one GPU with CuPy installed (no internet needed)::

    python benchmarks/gpu.py [--out benchmarks/results] [--quick]

1. **Agreement** (float64 and float32): gradients, a batched dopri5 flow, a Gauss-Legendre flow
   and gradient descent on CuPy, compared with NumPy on the *same* host-drawn weights
   (``numpy.random.default_rng(seed)`` moved once with ``lf.asarray``).  Tolerances scale with the
   dtype's machine epsilon; the Gauss run also checks that the imbalances stay conserved.
2. **Gradient GFLOP/s** on the GPU (``6(L-1)n^3`` flops per gradient) next to CuPy's own matmul.
3. **Throughput**: ``lf.gradient_flow`` (dopri5) with B = 10^4 networks, n = 64, L = 4 on the GPU
   against the same integrator on 2 CPU cores (a child process pinned to 2 cores, with
   ``OPENBLAS_NUM_THREADS=2`` and ``LINFLOW_THREADS=2``), timed on a subsample and scaled per
   trajectory.  Target: >= 20x.
4. **Sweep** (``lf.sweep.run(..., backend="cupy")``) of many seeded initializations built on
   the host, with one point that ``build`` rejects: each batch is moved to the GPU once, its
   size comes from the free GPU memory, the bad point is
   recorded as failed and every other row is kept, and the first rows match the same sweep
   on NumPy.
5. **Long horizon and memory on the GPU**: gauss2 and midpoint against fixed-step RK4 (same step,
   same kernel) on a batch, in float64 and float32: drift of the imbalances and wall time per unit
   time; then the GPU memory each method holds per trajectory (CuPy's memory pool) against the
   cost model ``lf.sweep.bytes_per_trajectory`` that sizes sweep batches.

6. **diffrax on the GPU** (JAX with CUDA wheels, ``pip install 'linflow[bench]' 'jax[cuda12]'``):
   the same throughput problem (B = 10^4, n = 64, L = 4) with diffrax's Dopri5 + PID controller
   under ``vmap`` + ``jit`` in float64, against CuPy linflow's lean and default calls (the
   final state; the loss at 101 points); compile time apart.
   Without JAX the section says so in its output and the rest runs.

It prints a table and writes ``<out>/gpu-<card>.json``.  Without CuPy or without a GPU it says
so and exits with status 2, having written nothing.  ``--emulate`` runs the same code with
NumPy standing in for CuPy (to check the script itself on a machine without a GPU; its numbers
mean nothing).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

TARGET_SPEEDUP = 20.0
THROUGHPUT = dict(B=10_000, n=64, L=4, T=1.0, rtol=1e-6, atol=1e-9)


def problem(B, n, L, seed=0):
    """Host float64 weights (entries N(0, 1/n)) and target Y ~ N(0, 1), as in benchmarks/run.py."""
    rng = np.random.default_rng(seed)
    Ws = tuple(rng.normal(0.0, 1.0 / math.sqrt(n), (B, n, n)) for _ in range(L))
    Y = rng.normal(0.0, 1.0, (n, n))
    return Ws, Y


# --- the device -------------------------------------------------------------------------------

class Device:
    """CuPy (or NumPy with --emulate): array creation, synchronisation and the card's name."""

    def __init__(self, emulate=False):
        self.emulate = emulate
        if emulate:
            self.name, self.card = "numpy (emulating cupy)", "emulated"
            self.cp = None
            return
        try:
            import cupy
        except Exception as exc:  # ImportError or a broken CUDA install
            raise SystemExit(
                f"benchmarks/gpu.py: CuPy cannot be imported ({type(exc).__name__}: {exc}).\n"
                "Run this on a machine with an NVIDIA GPU and `pip install cupy-cuda12x` "
                "(or `pip install 'linflow[gpu]'`). Nothing was measured."
            ) from None
        try:
            ok = cupy.is_available()
        except Exception:  # pragma: no cover
            ok = False
        if not ok:
            raise SystemExit(
                "benchmarks/gpu.py: CuPy is installed but finds no usable GPU "
                "(cupy.is_available() is False). Check `nvidia-smi` and the CUDA driver. "
                "Nothing was measured."
            )
        self.cp = cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        self.card = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "gpu"
        self.memory = int(props.get("totalGlobalMem", 0))

    @property
    def backend(self):
        return "numpy" if self.emulate else "cupy"

    def sync(self):
        if self.cp is not None:
            self.cp.cuda.Device().synchronize()

    def free_pool(self):
        if self.cp is not None:
            self.cp.get_default_memory_pool().free_all_blocks()

    def timed(self, fn, repeat=3):
        """Best wall time of ``repeat`` synchronised runs (after one warm-up run) and its output."""
        out = fn()
        self.sync()
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            self.sync()
            best = min(best, time.perf_counter() - t0)
        return best, out


# --- 1. agreement -----------------------------------------------------------------------------

def agreement(dev, quick, log):
    import linflow as lf

    rows = []
    B, n, L, T = (16 if quick else 64), 10, 3, 5.0
    Ws_h, Y_h = problem(B, n, L, seed=11)
    loss_h = lf.losses.Squared(Y_h)
    ref = {
        "gradient": lf.value_and_gradients(tuple(W[0] for W in Ws_h), loss_h)[1],
        "dopri5": lf.gradient_flow(Ws_h, loss_h, T, save=("loss",), t_eval=[0.0, T], progress=False),
        "gd": lf.gradient_descent(Ws_h, loss_h, 0.05, 200, progress=False),
    }
    lam = float(np.max(lf.lambda_max_bound(Ws_h)))
    h = T / math.ceil(T * 4 * lam)  # 0.25 / lambda_max, landing on T
    ref["gauss2"] = lf.gradient_flow(Ws_h, loss_h, T, method="gauss2", dt=h, save=("loss",), t_eval=[0.0, T],
                                     progress=False)
    D0 = lf.imbalance(Ws_h)
    for dtype_name in ("float64", "float32"):
        eps = float(np.finfo(dtype_name).eps)
        with lf.set_backend(dev.backend, dtype=getattr(np, dtype_name) if dev.emulate else
                            getattr(dev.cp, dtype_name)):
            Ws = tuple(lf.asarray(W) for W in Ws_h)
            loss = lf.losses.Squared(lf.asarray(Y_h))
            ok_ns = type(Ws[0]).__module__.split(".")[0] == ("numpy" if dev.emulate else "cupy")

            def check(name, got, want, tol, note=""):
                got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
                err = float(np.max(np.abs(got - want)) / max(1e-300, float(np.max(np.abs(want)))))
                rows.append({"check": name, "dtype": dtype_name, "value": err, "tolerance": tol,
                             "ok": bool(err <= tol), "note": note})
                log(f"  {name:<38} {dtype_name}: {err:.2e} (tol {tol:.0e}) {'ok' if err <= tol else 'FAIL'} {note}")

            rows.append({"check": "arrays live on the GPU", "dtype": dtype_name, "value": float(ok_ns),
                         "tolerance": 1.0, "ok": ok_ns, "note": type(Ws[0]).__module__})
            g = lf.value_and_gradients(tuple(W[0] for W in Ws), loss)[1]
            check("gradients vs numpy", np.concatenate([lf.to_numpy(a).ravel() for a in g]),
                  np.concatenate([a.ravel() for a in ref["gradient"]]), 100 * eps)
            tol_flow = 1e-9 if dtype_name == "float64" else 1e-3
            tr = lf.gradient_flow(Ws, loss, T, save=("loss",), t_eval=[0.0, T], progress=False,
                                  atol=1e-10 if dtype_name == "float64" else 1e-6,
                                  rtol=1e-8 if dtype_name == "float64" else 1e-5)
            check("dopri5 final loss vs numpy", lf.to_numpy(tr.loss)[-1], ref["dopri5"].loss[-1], tol_flow,
                  f"steps {int(np.max(tr.stats['steps']))}")
            gd = lf.gradient_descent(Ws, loss, 0.05, 200, progress=False)
            check("gradient descent final loss vs numpy", lf.to_numpy(gd.loss)[-1], ref["gd"].loss[-1],
                  1e-10 if dtype_name == "float64" else 1e-4)
            try:
                tr = lf.gradient_flow(Ws, loss, T, method="gauss2", dt=h, save=("loss",), t_eval=[0.0, T],
                                      progress=False)
                check("gauss2 final loss vs numpy", lf.to_numpy(tr.loss)[-1], ref["gauss2"].loss[-1],
                      1e-9 if dtype_name == "float64" else 1e-3)
                D1 = [lf.to_numpy(d) for d in lf.imbalance(tr.weights)]
                drift = max(float(np.max(np.linalg.norm(b - a, axis=(-2, -1))
                                         / np.maximum(1.0, np.linalg.norm(a, axis=(-2, -1)))))
                            for a, b in zip(D0, D1))
                rows.append({"check": "gauss2 drift of D_l over T=5", "dtype": dtype_name, "value": drift,
                             "tolerance": 1e-12 if dtype_name == "float64" else 1e-5, "ok": None, "note": ""})
                rows[-1]["ok"] = bool(drift <= rows[-1]["tolerance"])
                log(f"  {'gauss2 drift of D_l':<38} {dtype_name}: {drift:.2e} (tol {rows[-1]['tolerance']:.0e})")
            except (RuntimeError, lf.DivergenceError) as exc:  # float32 may not reach the fixed point's round-off floor
                rows.append({"check": "gauss2", "dtype": dtype_name, "value": math.nan, "tolerance": None,
                             "ok": dtype_name == "float32", "note": f"{type(exc).__name__}: {exc}"})
                log(f"  gauss2 {dtype_name}: {exc}")
        dev.free_pool()
    return rows


# --- 2. gradient GFLOP/s ----------------------------------------------------------------------

def gflops(dev, quick, log):
    import linflow as lf
    from linflow.network import _value_and_grads

    rows = []
    L = 4
    cases = [(10, 10_000), (64, 10_000), (100, 1000), (200, 100), (500, 8), (1000, 1)]
    if quick:
        cases = cases[:3]
    if dev.emulate:  # a CPU stand-in: keep it small
        cases = [(10, 100), (64, 16)]
    for dtype_name in ("float64", "float32"):
        dtype = getattr(np, dtype_name) if dev.emulate else getattr(dev.cp, dtype_name)
        for n, B in cases:
            with lf.set_backend(dev.backend, dtype=dtype):
                Ws_h, Y_h = problem(B, n, L, seed=5)
                Ws = tuple(lf.asarray(W) for W in Ws_h)
                loss = lf.losses.Squared(lf.asarray(Y_h))
                xp = lf.namespace(*Ws)
                A, C = Ws[0], Ws[1]
                reps = 5
                tg, _ = dev.timed(lambda: [_value_and_grads(xp, Ws, loss) for _ in range(reps)])
                tm, _ = dev.timed(lambda: [A @ C for _ in range(reps)])
                flops = 6 * (L - 1) * n ** 3 * B
                row = {"dtype": dtype_name, "n": n, "L": L, "B": B,
                       "gflops_gradient": flops * reps / tg / 1e9, "gflops_matmul": 2 * n ** 3 * B * reps / tm / 1e9}
                row["fraction"] = row["gflops_gradient"] / row["gflops_matmul"]
                rows.append(row)
                log(f"  {dtype_name} n={n:>4} B={B:>5}: gradient {row['gflops_gradient']:9.1f} GFLOP/s, "
                    f"matmul {row['gflops_matmul']:9.1f} GFLOP/s ({row['fraction']:.0%})")
                del Ws, A, C, loss
            dev.free_pool()
    return rows


# --- 3. throughput vs 2 CPU cores ---------------------------------------------------------------

def cpu_baseline(B_sub):
    """Child process: the NumPy integrator on 2 cores, on the first B_sub trajectories."""
    try:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        pass
    import linflow as lf

    c = THROUGHPUT
    Ws, Y = problem(c["B"], c["n"], c["L"], seed=7)
    Ws = tuple(W[:B_sub] for W in Ws)
    loss = lf.losses.Squared(Y)
    t0 = time.perf_counter()
    tr = lf.gradient_flow(Ws, loss, c["T"], rtol=c["rtol"], atol=c["atol"], save=("loss",),
                          t_eval=[0.0, c["T"]], progress=False)
    secs = time.perf_counter() - t0
    print(json.dumps({"B": B_sub, "seconds": secs, "final_loss": tr.loss[-1].tolist(),
                      "steps_mean": float(np.mean(tr.stats["steps"])),
                      "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}))


def throughput(dev, quick, log):
    import linflow as lf

    c = dict(THROUGHPUT)
    B = 2000 if quick else c["B"]
    B_sub = 16 if quick else 64
    if dev.emulate:  # a CPU stand-in: keep it small
        B, B_sub = 32, 8
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
               LINFLOW_THREADS="2", LINFLOW_BACKEND="numpy", LINFLOW_PROGRESS="0")
    log(f"  CPU baseline: {B_sub} trajectories on 2 cores (child process) ...")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--cpu-baseline", str(B_sub)],
                         env=env, capture_output=True, text=True, timeout=240)
    if out.returncode != 0:
        raise RuntimeError(f"CPU baseline failed: {out.stderr[-2000:]}")
    cpu = json.loads(out.stdout.strip().splitlines()[-1])
    cpu_per = cpu["seconds"] / cpu["B"]
    log(f"  CPU: {cpu['seconds']:.2f} s for {cpu['B']} -> {cpu_per * 1e3:.1f} ms per trajectory "
        f"({cpu['steps_mean']:.0f} steps)")
    rows = []
    Ws_h, Y_h = problem(c["B"], c["n"], c["L"], seed=7)
    for dtype_name in ("float64", "float32"):
        dtype = getattr(np, dtype_name) if dev.emulate else getattr(dev.cp, dtype_name)
        with lf.set_backend(dev.backend, dtype=dtype):
            Ws = tuple(lf.asarray(W[:B]) for W in Ws_h)
            loss = lf.losses.Squared(lf.asarray(Y_h))
            tol = dict(rtol=c["rtol"], atol=c["atol"]) if dtype_name == "float64" else dict(rtol=1e-5, atol=1e-6)

            def go():
                return lf.gradient_flow(Ws, loss, c["T"], save=("loss",), t_eval=[0.0, c["T"]],
                                        progress=False, **tol)

            secs, tr = dev.timed(go, repeat=1)  # the warm-up is the full call: it also sizes the pool
            final = lf.to_numpy(tr.loss)[-1]
            k = cpu["B"]
            diff = float(np.max(np.abs(final[:k] - np.array(cpu["final_loss"])) / np.abs(np.array(cpu["final_loss"]))))
            row = {"dtype": dtype_name, "B": B, "n": c["n"], "L": c["L"], "T": c["T"], "gpu_seconds": secs,
                   "gpu_trajectories_per_second": B / secs, "cpu_seconds_per_trajectory": cpu_per,
                   "cpu_trajectories_per_second": 1 / cpu_per, "speedup": cpu_per * B / secs,
                   "max_rel_diff_final_loss_vs_cpu": diff, "steps_mean": float(np.mean(tr.stats["steps"])),
                   "target": TARGET_SPEEDUP}
            row["meets_target"] = bool(row["speedup"] >= TARGET_SPEEDUP) if dtype_name == "float64" else None
            rows.append(row)
            log(f"  GPU {dtype_name}: {secs:.2f} s for B={B} -> {B / secs:,.0f} traj/s, x{row['speedup']:.1f} "
                f"vs 2 CPU cores (target {TARGET_SPEEDUP:g}x), final-loss rel. diff vs CPU {diff:.1e}")
            del Ws, loss, tr
        dev.free_pool()
    return {"cpu": {k: v for k, v in cpu.items() if k != "final_loss"}, "rows": rows}


# --- 6. diffrax on the GPU -------------------------------------------------------------------------

def diffrax_gpu(dev, quick, log):
    """diffrax (JAX, float64) against linflow on the throughput problem: the lean call (final
    state only) and the default call (the loss at 101 times), each against its diffrax twin."""
    import linflow as lf

    # JAX takes 75 % of the card at import unless told otherwise; CuPy shares it here
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax

        import peers
    except ImportError as exc:
        log(f"  skipped: JAX/diffrax not installed ({exc}); pip install 'linflow[bench]' 'jax[cuda12]'")
        return {"skipped": f"JAX/diffrax not installed: {exc}"}
    if not peers.available()["diffrax"]:
        log("  skipped: diffrax not importable")
        return {"skipped": "diffrax not importable"}
    c = dict(THROUGHPUT)
    B = 2000 if quick else c["B"]
    if dev.emulate:  # a CPU stand-in: keep it small
        B = 16
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    jdev = gpus[0] if gpus else jax.devices()[0]
    log(f"  JAX device: {jdev} ({peers.available()['diffrax']})")
    Ws_h, Y_h = problem(c["B"], c["n"], c["L"], seed=7)
    Ws_h = tuple(W[:B] for W in Ws_h)
    hl = lf.losses.Squared(Y_h)
    rows = {}
    for call, n_saves in (("lean", 0), ("default", 101)):
        dx = peers.diffrax_run(Ws_h, Y_h, c["T"], rtol=c["rtol"], atol=c["atol"], n_saves=n_saves,
                               device=jdev)
        kw = dict(save=("loss",), t_eval=[0.0, c["T"]]) if call == "lean" else {}
        with lf.set_backend(dev.backend, dtype=np.float64 if dev.emulate else dev.cp.float64):
            Ws = tuple(lf.asarray(W) for W in Ws_h)
            loss = lf.losses.Squared(lf.asarray(Y_h))

            def go():
                return lf.gradient_flow(Ws, loss, c["T"], rtol=c["rtol"], atol=c["atol"],
                                        progress=False, **kw)

            # after a full-size warm-up: a slice's left CuPy's pool to grow inside the timed run
            secs, tr = dev.timed(go, repeat=1)
            final = lf.to_numpy(tr.loss)[-1]
            del Ws, loss
        if n_saves:
            dx_final = np.asarray(dx["losses"])[-1]
        else:
            dx_final = np.asarray(hl.value(lf.product(tuple(dx["final_weights"]))))
        diff = float(np.max(np.abs(dx_final - final) / np.abs(final)))
        rows[call] = {"diffrax_seconds": dx["seconds"], "diffrax_compile_seconds": dx["compile_seconds"],
                      "linflow_seconds": secs, "diffrax_over_linflow": dx["seconds"] / secs,
                      "max_rel_diff_final_loss": diff, "diffrax_steps_mean": dx["steps"],
                      "linflow_steps_mean": float(np.mean(tr.stats["steps"]))}
        log(f"  {call:>7} call: diffrax {dx['seconds']:.2f} s (+ compile {dx['compile_seconds']:.1f} s, "
            f"{dx['steps']:.0f} steps), linflow {secs:.2f} s ({rows[call]['linflow_steps_mean']:.0f} steps): "
            f"diffrax / linflow = {rows[call]['diffrax_over_linflow']:.2f}; final losses agree to {diff:.1e}")
        dev.free_pool()
    return {"B": B, "n": c["n"], "L": c["L"], "T": c["T"], "rtol": c["rtol"], "atol": c["atol"],
            "jax_device": str(jdev), "versions": peers.available()["diffrax"], "rows": rows}


# --- 4. a sweep on the GPU ------------------------------------------------------------------------

def sweep_check(dev, quick, log):
    import linflow as lf

    n, L, T = 10, 3, 5.0
    N = 512 if dev.emulate else (2000 if quick else 20_000)
    k = 32  # rows compared with NumPy
    Y = problem(1, n, L, seed=3)[1]

    loss = lf.losses.Squared(Y)

    def build(p):  # host NumPy: the sweep stacks a batch and moves it to the GPU once
        if p["seed"] < 0:
            raise ValueError(f"seed must be >= 0, got {p['seed']}")
        rng = np.random.default_rng(p["seed"])
        return tuple(rng.normal(0.0, 1.0 / math.sqrt(n), (n, n)) for _ in range(L)), loss

    points = list(lf.sweep.grid(seed=range(N))) + [{"seed": -1}]
    with lf.set_backend(dev.backend) as target:
        batch = lf.sweep.batch_size([n] * (L + 1), xp=target.xp, n_saves=2)
    t0 = time.perf_counter()
    rows = lf.sweep.run(points, build, t_end=T, t_eval=[0.0, T], progress=False, backend=target)
    secs = time.perf_counter() - t0
    ref = lf.sweep.run(points[:k], build, t_end=T, t_eval=[0.0, T], progress=False)  # NumPy
    ok = [r for r in rows if r["ok"]]
    failed = [r for r in rows if not r["ok"]]
    diff = max(abs(a["loss_final"] - b["loss_final"]) / abs(b["loss_final"]) for a, b in zip(rows[:k], ref))
    res = {"points": len(points), "ok": len(ok), "failed": len(failed),
           "failed_error": failed[0]["error"] if failed else None, "batch_size": batch,
           "seconds": secs, "points_per_second": len(points) / secs,
           "max_rel_diff_vs_numpy": diff,
           "passed": bool(len(ok) == N and len(failed) == 1 and failed[0]["seed"] == -1 and diff <= 1e-9)}
    log(f"  {len(points)} points (n={n}, L={L}, T={T:g}) in {secs:.1f} s ({res['points_per_second']:,.0f}/s), "
        f"batch size {batch:,} from free memory; ok {len(ok)}, failed {len(failed)} "
        f"({res['failed_error']}); first {k} vs numpy {diff:.1e} -> {'ok' if res['passed'] else 'FAIL'}")
    return res


# --- 5. long horizon and memory on the GPU --------------------------------------------------------

def structure(dev, quick, log):
    import linflow as lf
    from linflow import sweep
    from run import drift, rk4

    B, n, L = 256, 10, 3
    # T = 10 took over 200 s on an H200 (gauss2 runs its whole fixed-point budget every step
    # there, ~60 ms per step at this size), so the GPU run uses a short horizon: the ratios and
    # the per-step drift do not depend on T, and run.py measures T = 100 on the CPU.
    T = 0.5 if quick else 2.0
    Ws_h, Y_h = problem(B, n, L, seed=1)
    lam = float(np.max(lf.lambda_max_bound(Ws_h)))
    h = T / math.ceil(T * 4 * lam)  # the engine's default Gauss step 0.25 / lambda_max, landing on T
    rows = []
    for dtype_name in ("float64", "float32"):
        dtype = getattr(np, dtype_name) if dev.emulate else getattr(dev.cp, dtype_name)
        with lf.set_backend(dev.backend, dtype=dtype):
            Ws = tuple(lf.asarray(W) for W in Ws_h)
            loss = lf.losses.Squared(lf.asarray(Y_h))

            def run_method(method, t):
                if method == "rk4":
                    return rk4(Ws, loss, t, h)[0]
                return lf.gradient_flow(Ws, loss, t, method=method, dt=h, save=("loss",), t_eval=[0.0, t],
                                        progress=False).weights

            base = None
            for method in ("rk4", "gauss2", "midpoint"):
                run_method(method, 2 * h)  # compile the kernels
                dev.sync()
                t0 = time.perf_counter()
                Wf = run_method(method, T)
                dev.sync()
                secs = time.perf_counter() - t0
                base = secs if method == "rk4" else base
                row = {"dtype": dtype_name, "method": method, "B": B, "n": n, "L": L, "T": T, "h": h,
                       "seconds_per_unit_time": secs / T, "cost_vs_rk4": secs / base,
                       "drift": drift(Ws_h, tuple(lf.to_numpy(W) for W in Wf))}
                rows.append(row)
                log(f"  {dtype_name} {method:>8}: {secs / T * 1e3:8.1f} ms per unit time (x{row['cost_vs_rk4']:.1f} "
                    f"RK4), drift of D_l over T={T:g}: {row['drift']:.1e}")
        dev.free_pool()
    mem = []
    if dev.cp is None:
        log("  memory: needs CuPy's memory pool (skipped when emulating)")
        return {"long_horizon": rows, "memory": mem}
    pool = dev.cp.get_default_memory_pool()
    Bm, nm, Lm = 1000, 32, 4
    Ws_h, Y_h = problem(Bm, nm, Lm, seed=3)
    with lf.set_backend("cupy"):
        Ws = tuple(lf.asarray(W) for W in Ws_h)
        loss = lf.losses.Squared(lf.asarray(Y_h))
        h = 0.25 / float(np.max(lf.lambda_max_bound(Ws_h)))
        for method in ("rk4", "dopri5", "midpoint", "gauss2"):
            dev.sync()
            pool.free_all_blocks()
            before = pool.total_bytes()
            if method == "rk4":
                rk4(Ws, loss, 2 * h, h)
            else:
                lf.gradient_flow(Ws, loss, 2 * h, method=method, dt=h, save=("loss",), t_eval=[0.0, 2 * h],
                                 progress=False)
            dev.sync()
            per = (pool.total_bytes() - before) / Bm  # the pool keeps every block it handed out
            model = sweep.bytes_per_trajectory([nm] * (Lm + 1), method=method if method != "rk4" else "rk4",
                                               n_saves=2)
            mem.append({"method": method, "B": Bm, "n": nm, "L": Lm, "bytes_per_trajectory": per,
                        "model_bytes": model, "measured_over_model": per / model})
            log(f"  memory n={nm} L={Lm} {method:>8}: {per / 2**20:6.2f} MiB per trajectory on the GPU, "
                f"model {model / 2**20:6.2f} MiB (x{per / model:.2f})")
    return {"long_horizon": rows, "memory": mem}


# --- driver -----------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--emulate", action="store_true", help="NumPy stands in for CuPy (checks the script only)")
    ap.add_argument("--only", nargs="+", default=None, metavar="SECTION",
                    help="run only these sections: agreement gflops throughput sweep structure diffrax")
    ap.add_argument("--cpu-baseline", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cpu_baseline is not None:
        cpu_baseline(args.cpu_baseline)
        return 0
    os.environ.setdefault("LINFLOW_PROGRESS", "0")
    try:
        dev = Device(args.emulate)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    import linflow as lf

    res = {"device": dev.name, "card": dev.card, "emulated": dev.emulate, "quick": args.quick,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "linflow": lf.__version__, "numpy": np.__version__,
           "cupy": None if dev.cp is None else dev.cp.__version__, "errors": {}}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"gpu-{dev.card}.json")

    def save(res):
        with open(path, "w") as fh:
            json.dump(res, fh, indent=1, default=float)

    log(f"linflow GPU check on {dev.name}")
    t_all = time.perf_counter()
    for key, fn, title in (("agreement", agreement, "1. CuPy vs NumPy on the same seeds"),
                           ("gflops", gflops, "2. gradient GFLOP/s"),
                           ("throughput", throughput, "3. throughput vs 2 CPU cores"),
                           ("sweep", sweep_check, "4. a sweep of seeded initializations"),
                           ("structure", structure, "5. long horizon and memory on the GPU"),
                           ("diffrax", diffrax_gpu, "6. diffrax (JAX) on the GPU")):
        if args.only and key not in args.only:
            continue
        log(title)
        t_sec = time.perf_counter()
        try:
            res[key] = fn(dev, args.quick, log)
            res.setdefault("section_seconds", {})[key] = time.perf_counter() - t_sec
        except Exception as exc:  # keep the other sections' results
            res["errors"][key] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {res['errors'][key]}")
        dev.free_pool()
        save(res)  # after every section: a run cut short keeps what it measured
    res["seconds"] = time.perf_counter() - t_all

    # the table
    log("\n| check | dtype | value | tolerance / target | ok |\n|---|---|---|---|---|")
    for r in res.get("agreement", []):
        log(f"| {r['check']} | {r['dtype']} | {r['value']:.2e} | {r['tolerance'] if r['tolerance'] is not None else ''} "
            f"| {'yes' if r['ok'] else 'NO'} |")
    for r in res.get("throughput", {}).get("rows", []):
        log(f"| speedup vs 2 CPU cores, B={r['B']}, n={r['n']}, L={r['L']} | {r['dtype']} | {r['speedup']:.1f}x "
            f"| >= {r['target']:g}x | {'' if r['meets_target'] is None else 'yes' if r['meets_target'] else 'NO'} |")
    sw = res.get("sweep")
    if sw:
        log(f"| sweep: {sw['ok']} ok + {sw['failed']} rejected of {sw['points']}, vs numpy | float64 "
            f"| {sw['max_rel_diff_vs_numpy']:.2e} | 1e-09 | {'yes' if sw['passed'] else 'NO'} |")
    for r in res.get("structure", {}).get("long_horizon", []):
        if r["method"] != "rk4":
            log(f"| {r['method']} drift over T={r['T']:g} (cost x{r['cost_vs_rk4']:.1f} RK4) | {r['dtype']} "
                f"| {r['drift']:.2e} | {'1e-12' if r['dtype'] == 'float64' else ''} | "
                f"{('yes' if r['drift'] <= 1e-12 else 'NO') if r['dtype'] == 'float64' else ''} |")
    dxr = res.get("diffrax", {})
    for call, r in dxr.get("rows", {}).items():
        log(f"| diffrax seconds / linflow's, {call} call, B={dxr['B']}, n={dxr['n']}, L={dxr['L']} | float64 "
            f"| {r['diffrax_over_linflow']:.2f} | | |")
    save(res)
    log(f"\nwrote {path} ({res['seconds']:.0f} s)")
    failed = [r for r in res.get("agreement", []) if r["ok"] is False]
    if sw and not sw["passed"]:
        failed.append(sw)
    return 1 if (failed or res["errors"]) else 0


if __name__ == "__main__":
    sys.exit(main())
