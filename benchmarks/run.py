"""linflow benchmarks: batched integrators against per-trajectory baselines, measured side by side.

One command (from the repository root)::

    python benchmarks/run.py [--quick] [--out benchmarks/results]

writes ``results.json`` (everything), ``results.csv`` (one tidy row per measurement, with its
target), ``profile_a.txt`` (cProfile of the batched integrator, when comparison (a) misses its
target) and ``a_throughput.png``, ``b_long_horizon.png``, ``c_gflops.png``, ``d_memory.png``.
``benchmarks/README.md`` explains each comparison.

(a) throughput: batched adaptive ``lf.gradient_flow`` (dopri5) against a loop of
    ``scipy.integrate.solve_ivp`` (RK45, DOP853), one trajectory at a time, at matched accuracy;
(b) long horizon (T = 100): Gauss-Legendre (gauss2, midpoint) against fixed-step RK4, RK45 and
    adaptive dopri5: drift of the imbalances D_l and cost per unit time;
(c) gradient throughput (GFLOP/s, 6(L-1)n^3 flops per gradient) against NumPy's own matmul rate;
(d) peak memory per trajectory (tracemalloc) against the cost model (the course appendix *Numerical methods*, Cost model).

The machine is shared: every timing is the best of a few repeats where that is affordable, and
the comparisons are reported as ratios measured in the same run.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import math
import os
import platform
import pstats
import re
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import array_api_compat.numpy as xnp  # noqa: E402

import linflow as lf  # noqa: E402
from linflow import sweep  # noqa: E402
from linflow.network import _value_and_grads  # noqa: E402  (the engine's gradient kernel)

TARGETS = {
    # (a) the speedup over the solve_ivp loop has no fixed target any more (the former 30x is
    # retired, issue 13): the batched matmul rate bounds it, and (e) reports the fraction reached
    "b_drift_gauss": 1e-12,  # relative drift of D_l over T = 100
    "b_cost_vs_rk4": 6.0,  # gauss cost per unit time / RK4 cost per unit time
    "c_fraction_n200": 0.5,  # gradient GFLOP/s / matmul GFLOP/s at n = 200
    "gpu_speedup": 20.0,  # benchmarks/gpu.py: GPU vs 2 CPU cores, B = 1e4, n = 64, L = 4
    # (e) peers, issue 13: ratios measured in one run (peer seconds / linflow seconds)
    "e_lean_vs_diffrax": {"P1": 4.0, "P2": 3.0, "P3": 1.5},
    "e_default_vs_diffrax": 1.0,  # at every problem
    "e_default_over_lean": 1.15,  # linflow's default call / its lean call, P1 and P2 (lower is better)
    "e_matmul_fraction_P1": 0.35,  # lean P1: gradient flop rate / the 2-core batched matmul rate
}

#: The problems of comparison (e): B networks, L square n x n layers, horizon T
PEER_PROBLEMS = {"P1": (1000, 10, 3, 5.0), "P2": (256, 64, 4, 0.1), "P3": (100, 10, 3, 5.0)}
# interleaved rounds of (e), best of each (torchode: one): the same P1 call took 1.5 to 2.0 s in
# nine fresh processes on the idle 2-core VM (two threads of NumPy calls), so two were too few
ROUNDS_E = 3


# --- problems ------------------------------------------------------------------------------

def problem(B, n, L, seed=0, xp=None, dtype=np.float64):
    """``B`` networks with ``L`` square n x n layers, entries N(0, 1/n), and a target Y ~ N(0, 1).

    Drawn on the host from ``numpy.random.default_rng(seed)`` (the same numbers on every
    backend), then moved once with ``lf.asarray``.
    """
    rng = np.random.default_rng(seed)
    Ws = tuple(rng.normal(0.0, 1.0 / math.sqrt(n), (B, n, n)) for _ in range(L))
    Y = rng.normal(0.0, 1.0, (n, n))
    if xp is not None:
        Ws = tuple(lf.asarray(W, dtype=dtype) for W in Ws)
        Y = lf.asarray(Y, dtype=dtype)
    return Ws, lf.losses.Squared(Y)


def flat_field(loss, n, L):
    """The flow field on the flattened state, for solve_ivp: **what a user would write**.

    Plain NumPy for ``1/2 ||W_1...W_L - Y||^2``: prefix products, then the backward sweep
    ``grad_l = P_{l-1}^T M_l`` with ``M_L = W - Y`` and ``M_{l-1} = M_l W_l^T`` (3(L-1) matmuls,
    no validation, no batching machinery).  This is the baseline of comparisons (a) and (b); it
    is about 20-25 % faster per call than :func:`engine_field` at B = 1.
    """
    Y = np.asarray(loss.Y)
    shape = (L, n, n)

    def fun(t, y):
        Ws = y.reshape(shape)
        pre = [Ws[0]]
        for W in Ws[1:]:
            pre.append(pre[-1] @ W)
        M = pre[-1] - Y
        out = np.empty(shape)
        for l in range(L - 1, 0, -1):
            out[l] = pre[l - 1].T @ M
            M = M @ Ws[l].T
        out[0] = M
        return -out.ravel()

    return fun


def dop853_losses(fun, Ws, loss, T, k):
    """Final losses of the first ``k`` networks of the batch ``Ws`` by SciPy's DOP853 at
    rtol 1e-12, atol 1e-14: the accuracy reference of every contender."""
    from scipy.integrate import solve_ivp

    L, n = len(Ws), Ws[0].shape[-2]
    ref = []
    for b in range(k):
        y0 = np.concatenate([W[b].ravel() for W in Ws])
        sol = solve_ivp(fun, (0.0, T), y0, method="DOP853", rtol=1e-12, atol=1e-14)
        ref.append(float(loss.value(lf.product(tuple(sol.y[:, -1].reshape(L, n, n))))))
    return np.array(ref)


def engine_field(loss, n, L):
    """The same field through the engine's own gradient kernel (reported next to the baseline)."""
    shape = (L, n, n)

    def fun(t, y):
        Ws = tuple(y.reshape(shape))
        _, grads, _ = _value_and_grads(xnp, Ws, loss)
        return -np.concatenate([g.ravel() for g in grads])

    return fun


def best_of(fn, repeat):
    """Best wall time of ``repeat`` runs, the CPU time (all threads) of that run, and its output."""
    best, cpu, out = math.inf, math.inf, None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        w, c = time.perf_counter() - t0, time.process_time() - c0
        if w < best:
            best, cpu, out = w, c, res
    return best, cpu, out


def final_loss(loss, Ws):
    return np.asarray(lf.to_numpy(loss.value(lf.product(Ws))))


# --- (a) throughput -----------------------------------------------------------------------

def bench_a(quick, log, budget=None):
    from scipy.integrate import solve_ivp

    n, L, T = 10, 3, 5.0
    rtol, atol = 1e-8, 1e-10
    budget = (60.0 if quick else 150.0) if budget is None else budget
    Bs = [1, 100, 1000] if quick else [1, 100, 1000, 10000]
    n_sub = 6 if quick else 24
    chunk = sweep.batch_size([n] * (L + 1), method="dopri5", n_saves=2)
    Ws_all, loss = problem(max(Bs), n, L)
    fun = flat_field(loss, n, L)

    # per-trajectory loop of solve_ivp, timed on the first n_sub trajectories
    ivp = {}
    runs = (("RK45", "RK45", fun), ("DOP853", "DOP853", fun),
            ("RK45, engine kernel", "RK45", engine_field(loss, n, L)))
    for name, method, f in runs:
        finals, nfev = [], []
        t0, c0 = time.perf_counter(), time.process_time()
        for b in range(n_sub):
            y0 = np.concatenate([W[b].ravel() for W in Ws_all])
            s = solve_ivp(f, (0.0, T), y0, method=method, rtol=rtol, atol=atol)
            Wf = tuple(s.y[:, -1].reshape(L, n, n))
            finals.append(float(loss.value(lf.product(Wf))))
            nfev.append(s.nfev)
        per = (time.perf_counter() - t0) / n_sub
        cpu = (time.process_time() - c0) / n_sub
        ivp[name] = {"seconds_per_trajectory": per, "cpu_seconds_per_trajectory": cpu, "final_loss": finals,
                     "nfev_mean": float(np.mean(nfev))}
        log(f"  solve_ivp {name}: {per * 1e3:.1f} ms per trajectory ({np.mean(nfev):.0f} evaluations)")
    # reference: DOP853 at tight tolerances
    ref = dop853_losses(fun, Ws_all, loss, T, n_sub)

    k_block = 4 if quick else 8
    samples = {"RK45": []}

    def ivp_block(r):
        """RK45 loop on a block of k_block trajectories: (wall, CPU) seconds per trajectory."""
        t0, c0 = time.perf_counter(), time.process_time()
        for j in range(k_block):
            b = (r * k_block + j) % n_sub
            y0 = np.concatenate([W[b].ravel() for W in Ws_all])
            solve_ivp(fun, (0.0, T), y0, method="RK45", rtol=rtol, atol=atol)
        return (time.perf_counter() - t0) / k_block, (time.process_time() - c0) / k_block

    rows = []
    t_start = time.perf_counter()
    for B in Bs:
        modes = []
        if B <= 1000:
            modes.append(("one call", B))
        if B > chunk:
            modes.append((f"chunks of {chunk}", chunk))
        for mode, cb in modes:
            repeat = 3 if B <= 100 else 1
            # chunked runs cost B times the cost of one trajectory by construction; when the
            # time budget is short, time the first B_run of them and scale (flagged in the row)
            B_run = B
            prev = [r for r in rows if r["mode"] == mode or r["mode"].startswith("chunks")]
            if prev and mode.startswith("chunks"):
                est = B / prev[-1]["trajectories_per_second"]
                left = budget - (time.perf_counter() - t_start)
                if est > left:
                    B_run = max(cb, int(cb * max(1, (left / est * B) // cb)))
                    B_run = min(B_run, B)
            Ws = tuple(W[:B_run] for W in Ws_all)

            def go():
                finals, steps = [], []
                for s0 in range(0, B_run, cb):
                    part = tuple(W[s0:s0 + cb] for W in Ws)
                    tr = lf.gradient_flow(part, loss, T, rtol=rtol, atol=atol, save=("loss",),
                                          t_eval=[0.0, T], progress=False)
                    finals.append(final_loss(loss, tr.weights))
                    steps.append(tr.stats["steps"])
                return np.concatenate(finals), np.concatenate(steps)

            # interleaved rounds: a block of the RK45 loop, then the batched run, so that both
            # see the same machine (on a shared VM its speed drifts by 2x within minutes)
            rounds = 1 if mode.startswith("chunks") else (2 if quick else 3)
            base_w, base_c, secs, cpu = [], [], math.inf, math.inf
            for r in range(rounds):
                w, c = ivp_block(r)
                base_w.append(w)
                base_c.append(c)
                s_r, c_r, out = best_of(go, repeat)
                if s_r < secs:
                    secs, cpu, (finals, steps) = s_r, c_r, out
            secs, cpu = secs * B / B_run, cpu * B / B_run
            samples["RK45"] += list(zip(base_w, base_c))
            k = min(B_run, n_sub)
            row = {
                "B": B, "mode": mode, "timed_trajectories": B_run, "seconds": secs, "cpu_seconds": cpu,
                "trajectories_per_second": B / secs, "steps_mean": float(np.mean(steps)),
                "rel_diff_vs_RK45": float(np.max(np.abs(finals[:k] - ivp["RK45"]["final_loss"][:k])
                                                 / np.abs(ref[:k]))),
                "rel_err_vs_reference": float(np.max(np.abs(finals[:k] - ref[:k]) / np.abs(ref[:k]))),
            }
            # the baseline: its best per-trajectory time among the blocks timed next to this row
            # (all blocks so far for the long chunked rows, which run once)
            near = samples["RK45"][-rounds:] if rounds > 1 else samples["RK45"]
            row["RK45_seconds_per_trajectory"] = min(w for w, _ in near)
            row["speedup_vs_RK45"] = row["RK45_seconds_per_trajectory"] * B / secs
            row["cpu_speedup_vs_RK45"] = min(c for _, c in near) * B / cpu
            # DOP853 was timed once, at the start: scaled by the drift of RK45 since then
            drift = row["RK45_seconds_per_trajectory"] / ivp["RK45"]["seconds_per_trajectory"]
            row["speedup_vs_DOP853"] = ivp["DOP853"]["seconds_per_trajectory"] * drift * B / secs
            row["cpu_speedup_vs_DOP853"] = ivp["DOP853"]["cpu_seconds_per_trajectory"] * drift * B / cpu
            rows.append(row)
            log(f"  B={B:>5} {mode:>14}: {secs:7.2f} s{' (scaled from %d)' % B_run if B_run < B else ''}, "
                f"{B / secs:8.1f} traj/s, x{row['speedup_vs_RK45']:.1f} vs RK45 (CPU time "
                f"x{row['cpu_speedup_vs_RK45']:.1f}), x{row['speedup_vs_DOP853']:.1f} vs DOP853, "
                f"max rel diff vs RK45 {row['rel_diff_vs_RK45']:.1e}")
    ivp_err = {m: float(np.max(np.abs(np.array(ivp[m]["final_loss"]) - ref) / np.abs(ref))) for m in ivp}

    # chunk size: time per trajectory-step at a few batch sizes (T = 1 keeps it short)
    chunks = []
    Bc = 256 if quick else 512
    for cb in ([32, 128, 256] if quick else [16, 32, 64, 128, 256, 512]):
        Ws = tuple(W[:Bc] for W in Ws_all)

        def go():
            st = 0
            for s0 in range(0, Bc, cb):
                tr = lf.gradient_flow(tuple(W[s0:s0 + cb] for W in Ws), loss, 1.0, rtol=rtol, atol=atol,
                                      save=("loss",), t_eval=[0.0, 1.0], progress=False)
                st += int(np.sum(tr.stats["steps"]))
            return st

        secs, _, st = best_of(go, 1)
        chunks.append({"chunk": cb, "microseconds_per_trajectory_step": secs / st * 1e6})
        log(f"  chunk {cb:>4}: {secs / st * 1e6:.1f} us per trajectory-step")

    # where the time goes (cProfile of one batched call of 1000 networks)
    # (one thread: cProfile sees only the thread that calls it, so the batch must not be split;
    # with LINFLOW_THREADS=1 a batch below parallel.CHUNK_BYTES of state runs in this thread)
    Ws = tuple(W[:1000] for W in Ws_all)
    old = os.environ.get("LINFLOW_THREADS")
    os.environ["LINFLOW_THREADS"] = "1"
    prof = cProfile.Profile()
    try:
        prof.enable()
        lf.gradient_flow(Ws, loss, 1.0, rtol=rtol, atol=atol, save=("loss",), t_eval=[0.0, 1.0], progress=False)
        prof.disable()
    finally:
        if old is None:
            os.environ.pop("LINFLOW_THREADS", None)
        else:
            os.environ["LINFLOW_THREADS"] = old
    buf = io.StringIO()
    ps = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    ps.print_stats(15)
    total = sum(v[2] for v in ps.stats.values())
    top = sorted(((v[2], f"{os.path.relpath(k[0], os.path.dirname(HERE)) if k[0].startswith('/') else k[0]}:"
                   f"{k[1]}({k[2]})") for k, v in ps.stats.items()), reverse=True)[:8]
    profile = [{"function": name, "fraction_of_time": t / total} for t, name in top]
    return {
        "config": {"n": n, "L": L, "T": T, "rtol": rtol, "atol": atol, "loss": "Squared", "n_subsample": n_sub,
                   "chunk": chunk, "note": (f"solve_ivp timed on {n_sub} trajectories and extrapolated "
                                            "per trajectory (its cost does not depend on B)")},
        "solve_ivp": {m: {k: v for k, v in d.items() if k != "final_loss"} | {"rel_err_vs_reference": ivp_err[m]}
                      for m, d in ivp.items()},
        "rows": rows,
        "chunks": chunks,
        "profile": profile,
        "profile_text": buf.getvalue(),
    }


# --- (e) peers: diffrax and torchode -----------------------------------------------------------

def batched_matmul_rate(B, n, threads=2, repeat=5):
    """The batched-matmul ceiling of ``threads`` cores for ``B`` n x n products (GFLOP/s).

    Two measurements on ``(B / threads, n, n)`` stacks, BLAS single-threaded:

    * ``threaded``: the shares on ``threads`` threads of this process (what linflow does);
    * ``one_thread``: one share on one thread, the others idle.

    ``ceiling`` is the larger of ``threaded`` and ``threads * one_thread``: the cores do not
    slow each other (separate processes run side by side at the one-thread rate), so
    ``threads`` times one core's rate is what the cores can do.  ``thread_scaling`` is
    ``threaded / one_thread``: how well small BLAS calls from threads of one process scale
    (they slow each other down: at n = 10 on the 2-core VM, 0.5x to 1.5x).
    """
    import concurrent.futures

    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    parts = [(rng.normal(size=(k, n, n)), rng.normal(size=(k, n, n)), np.empty((k, n, n)))
             for k in np.diff(np.linspace(0, B, threads + 1).astype(int))]
    reps = max(1, int(2e8 // (2 * n ** 3 * B)))

    def work(p):
        a, b, c = p
        for _ in range(reps):
            np.matmul(a, b, out=c)

    best_t = best_1 = math.inf
    with threadpool_limits(limits=1, user_api="blas"), concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for _ in range(repeat):  # interleaved, so that a busy moment hits both
            t0 = time.perf_counter()
            list(pool.map(work, parts))
            best_t = min(best_t, time.perf_counter() - t0)
            t0 = time.perf_counter()
            work(parts[0])
            best_1 = min(best_1, time.perf_counter() - t0)
    threaded = 2 * n ** 3 * B * reps / best_t / 1e9
    one = 2 * n ** 3 * parts[0][0].shape[0] * reps / best_1 / 1e9
    return {"threaded": threaded, "one_thread": one, "ceiling": max(threaded, threads * one),
            "thread_scaling": threaded / one}


def bench_e(quick, log):
    """linflow's lean and default calls against diffrax and torchode (and the solve_ivp loop),
    interleaved rounds, matched accuracy checked against DOP853 at rtol 1e-12."""
    from scipy.integrate import solve_ivp

    import peers

    avail = peers.available()
    log(f"  peers: {avail}")
    rtol, atol = 1e-8, 1e-10
    out = {"config": {"rtol": rtol, "atol": atol, "problems": PEER_PROBLEMS, "peers": avail,
                      "note": "ratios are peer seconds / linflow seconds, best of the rounds of one run"},
           "problems": {}, "quick": quick}
    for pname, (B, n, L, T) in PEER_PROBLEMS.items():
        if quick:
            B = min(B, 64)
        Ws, loss = problem(B, n, L)
        Y = np.asarray(loss.Y)
        fun = flat_field(loss, n, L)
        k_ref = 2 if quick else 4
        ref = dop853_losses(fun, Ws, loss, T, k_ref)

        def lf_call(lean):
            def go():
                kw = dict(save=("loss",), t_eval=[0.0, T]) if lean else {}
                t0 = time.perf_counter()
                tr = lf.gradient_flow(Ws, loss, T, rtol=rtol, atol=atol, progress=False, **kw)
                secs = time.perf_counter() - t0
                return {"seconds": secs, "compile_seconds": 0.0, "losses": np.asarray(tr.loss),
                        "steps": float(np.mean(tr.stats["steps"])),
                        "evaluations": float(np.sum(tr.stats["evaluations"]))}
            return go

        def loop():
            t0 = time.perf_counter()
            finals = []
            for b in range(k_ref):
                y0 = np.concatenate([W[b].ravel() for W in Ws])
                sol = solve_ivp(fun, (0.0, T), y0, method="RK45", rtol=rtol, atol=atol)
                finals.append(float(loss.value(lf.product(tuple(sol.y[:, -1].reshape(L, n, n))))))
            # per-trajectory cost does not depend on B: timed on k_ref trajectories, scaled
            return {"seconds": (time.perf_counter() - t0) * B / k_ref, "compile_seconds": 0.0,
                    "losses": np.array([finals, finals])}

        calls = {"linflow lean": lf_call(True), "linflow default": lf_call(False), "scipy RK45 loop": loop}
        if avail["diffrax"]:
            calls["diffrax lean"] = lambda: peers.diffrax_run(Ws, Y, T, rtol=rtol, atol=atol)
            calls["diffrax default"] = lambda: peers.diffrax_run(Ws, Y, T, rtol=rtol, atol=atol, n_saves=101)
        if avail["torchode"]:  # lean only: torchode keeps the whole state at every save time
            calls["torchode lean"] = lambda: peers.torchode_run(Ws, Y, T, rtol=rtol, atol=atol, threads=2)
        best, compile_s = {}, {}
        for r in range(1 if quick else ROUNDS_E):
            for name, fn in calls.items():
                if name.startswith("torchode") and r:  # eager and slow: one round is enough
                    continue
                res = fn()
                compile_s[name] = max(compile_s.get(name, 0.0), res["compile_seconds"])
                if name not in best or res["seconds"] < best[name]["seconds"]:
                    best[name] = res
        rows = {}
        for name, res in best.items():
            if res.get("losses") is not None:
                finals = np.asarray(res["losses"])[-1, :k_ref]
            else:
                finals = np.asarray(lf.to_numpy(loss.value(lf.product(tuple(W[:k_ref] for W in res["final_weights"])))))
            rows[name] = {"seconds": res["seconds"], "compile_seconds": compile_s[name],
                          "steps_mean": res.get("steps"),
                          "rel_err_vs_DOP853": float(np.max(np.abs(finals - ref) / np.abs(ref)))}
        lean, dflt = rows["linflow lean"]["seconds"], rows["linflow default"]["seconds"]
        for name, row in rows.items():
            base = dflt if name.endswith("default") else lean
            row["ratio_vs_linflow"] = row["seconds"] / base  # > 1: linflow is faster
        flops = best["linflow lean"]["evaluations"] * 6 * (L - 1) * n ** 3
        rate = batched_matmul_rate(B, n)
        mm = rate["ceiling"]
        info = {"B": B, "n": n, "L": L, "T": T, "rows": rows, "default_over_lean": dflt / lean,
                "lean_gflops": flops / lean / 1e9, "matmul_gflops_2core": mm,
                "matmul_gflops_1thread": rate["one_thread"], "matmul_gflops_2threads": rate["threaded"],
                "matmul_thread_scaling": rate["thread_scaling"],
                "lean_matmul_fraction": flops / lean / 1e9 / mm}
        out["problems"][pname] = info
        for name, row in rows.items():
            log(f"  {pname} (B={B}, n={n}, L={L}, T={T}) {name:>16}: {row['seconds']:8.3f} s"
                f"{' + compile %.1f s' % row['compile_seconds'] if row['compile_seconds'] else ''}, "
                f"x{row['ratio_vs_linflow']:.2f} of linflow, rel err vs DOP853 {row['rel_err_vs_DOP853']:.1e}")
        log(f"  {pname}: default / lean {dflt / lean:.2f}; lean at {info['lean_gflops']:.2f} GFLOP/s = "
            f"{info['lean_matmul_fraction']:.0%} of the 2-core batched matmul rate ({mm:.2f} GFLOP/s; one thread "
            f"{rate['one_thread']:.2f}, two threads of one process {rate['threaded']:.2f})")
    return out


# --- (b) long horizon: invariants and cost ----------------------------------------------

def rk4(Ws, loss, T, h):
    """Plain fixed-step RK4 on the batch, with the engine's gradient kernel (the cost baseline).

    Runs on the weights' own namespace (``benchmarks/gpu.py`` uses it on CuPy)."""
    xp = lf.namespace(*Ws)

    def f(y):
        _, g, _ = _value_and_grads(xp, y, loss)
        return tuple(-a for a in g)

    y = tuple(Ws)
    steps = int(round(T / h))
    for _ in range(steps):
        k1 = f(y)
        k2 = f(tuple(a + 0.5 * h * k for a, k in zip(y, k1)))
        k3 = f(tuple(a + 0.5 * h * k for a, k in zip(y, k2)))
        k4 = f(tuple(a + h * k for a, k in zip(y, k3)))
        y = tuple(a + (h / 6) * (p + 2 * q + 2 * r + s) for a, p, q, r, s in zip(y, k1, k2, k3, k4))
    return y, 4 * steps


def drift(Ws0, Ws1):
    """max_l ||D_l(T) - D_l(0)||_F / max(1, ||D_l(0)||_F), worst over the batch."""
    D0 = lf.imbalance(tuple(np.asarray(W) for W in Ws0))
    D1 = lf.imbalance(tuple(np.asarray(W) for W in Ws1))
    out = 0.0
    for a, b in zip(D0, D1):
        num = np.linalg.norm(np.asarray(b) - np.asarray(a), axis=(-2, -1))
        den = np.maximum(1.0, np.linalg.norm(np.asarray(a), axis=(-2, -1)))
        out = max(out, float(np.max(num / den)))
    return out


def bench_b(quick, log):
    from scipy.integrate import solve_ivp

    n, L, B = 5, 3, 4
    T = 20.0 if quick else 100.0
    Ws, loss = problem(B, n, L, seed=1)
    lam = float(np.max(lf.to_numpy(lf.lambda_max_bound(Ws))))
    h = 0.25 / lam  # the engine's default Gauss step
    h = T / math.ceil(T / h)
    ref = []
    fun = flat_field(loss, n, L)
    for b in range(B):
        y0 = np.concatenate([W[b].ravel() for W in Ws])
        s = solve_ivp(fun, (0.0, T), y0, method="DOP853", rtol=1e-12, atol=1e-14)
        ref.append(float(loss.value(lf.product(tuple(s.y[:, -1].reshape(L, n, n))))))
    ref = np.array(ref)
    scale = final_loss(loss, Ws)  # errors relative to the initial loss (the final one is ~0 at T = 100)
    rows = []

    def record(name, secs, Wf, evals, note=""):
        fl = final_loss(loss, Wf)
        r = {"method": name, "seconds": secs, "seconds_per_unit_time": secs / T,
             "evaluations_per_trajectory": float(evals), "evaluations_per_unit_time": float(evals) / T,
             "drift": drift(Ws, Wf), "final_loss_err_over_initial_loss": float(np.max(np.abs(fl - ref) / scale)),
             "note": note}
        rows.append(r)
        log(f"  {name:>9}: {secs:6.2f} s, {evals / T:8.1f} evals per unit time, drift {r['drift']:.1e}, "
            f"|loss(T) - ref| / loss(0) {r['final_loss_err_over_initial_loss']:.1e} {note}")

    # interleaved rounds (RK4, gauss2, midpoint, RK4, ...), best of each: the wall-time ratios
    # then compare runs made under the same machine load
    runs = {"rk4": lambda: rk4(Ws, loss, T, h)}
    for method in ("gauss2", "midpoint"):
        runs[method] = (lambda m: lambda: lf.gradient_flow(Ws, loss, T, method=m, dt=h, save=("loss",),
                                                           t_eval=[0.0, T], progress=False))(method)
    best = {k: (math.inf, None) for k in runs}
    for _ in range(1 if quick else 2):
        for k, fn in runs.items():
            secs, _, out = best_of(fn, 1)
            if secs < best[k][0]:
                best[k] = (secs, out)
    secs, (Wf, ev) = best["rk4"]
    record("rk4", secs, Wf, ev, f"h = {h:.4g}")
    for method in ("gauss2", "midpoint"):
        secs, tr = best[method]
        it = tr.stats["fixed_point_iterations"] / np.maximum(tr.stats["steps"], 1)
        record(method, secs, tr.weights, np.mean(tr.stats["evaluations"]),
               f"h = {h:.4g}, {np.mean(it):.1f} fixed-point iterations per step")
    secs, _, tr = best_of(lambda: lf.gradient_flow(Ws, loss, T, rtol=1e-8, atol=1e-10, save=("loss",),
                                                t_eval=[0.0, T], progress=False), 1)
    record("dopri5", secs, tr.weights, np.mean(tr.stats["evaluations"]), "adaptive, rtol 1e-8")
    t0 = time.perf_counter()
    finals, ev = [], []
    for b in range(B):
        y0 = np.concatenate([W[b].ravel() for W in Ws])
        s = solve_ivp(fun, (0.0, T), y0, method="RK45", rtol=1e-8, atol=1e-10)
        finals.append(tuple(s.y[:, -1].reshape(L, n, n)))
        ev.append(s.nfev)
    secs = time.perf_counter() - t0
    Wf = tuple(np.stack([f[l] for f in finals]) for l in range(L))
    record("RK45", secs, Wf, np.mean(ev), "scipy solve_ivp loop, rtol 1e-8")
    by = {r["method"]: r for r in rows}
    for r in rows:
        r["evals_vs_rk4"] = r["evaluations_per_unit_time"] / by["rk4"]["evaluations_per_unit_time"]
        r["seconds_vs_rk4"] = r["seconds_per_unit_time"] / by["rk4"]["seconds_per_unit_time"]
    return {"config": {"n": n, "L": L, "B": B, "T": T, "h": h, "lambda_max_bound": lam,
                       "drift": "max_l ||D_l(T) - D_l(0)||_F / max(1, ||D_l(0)||_F), worst trajectory"},
            "rows": rows}


# --- (c) gradient GFLOP/s -----------------------------------------------------------------

def bench_c(quick, log):
    L = 4
    rows = []
    sizes = [10, 100, 200] if quick else [10, 100, 200, 500]
    for n in sizes:
        for B in ([1, 1000] if n == 10 else [1]):
            Ws, loss = problem(B, n, L, seed=2)
            if B == 1:
                Ws = tuple(W[0] for W in Ws)
            flops = 6 * (L - 1) * n ** 3 * B
            A, C = np.asarray(Ws[0]), np.asarray(Ws[1])
            fns = {"kernel": lambda: _value_and_grads(xnp, Ws, loss),
                   "public": lambda: lf.value_and_gradients(Ws, loss),
                   "matmul": lambda: A @ C}
            best = {k: math.inf for k in fns}
            budget = 0.05 if quick else 0.15
            for _ in range(3 if quick else 5):  # interleaved rounds: load bursts hit all three alike
                for k, fn in fns.items():
                    fn()
                    reps, t0 = 0, time.perf_counter()
                    while True:
                        fn()
                        reps += 1
                        el = time.perf_counter() - t0
                        if el >= budget:
                            break
                    best[k] = min(best[k], el / reps)
            t_kernel, t_public, t_mm = best["kernel"], best["public"], best["matmul"]
            mm = 2 * n ** 3 * B / t_mm / 1e9
            row = {"n": n, "L": L, "B": B, "gflops_kernel": flops / t_kernel / 1e9,
                   "gflops_public": flops / t_public / 1e9, "gflops_matmul": mm,
                   "ms_per_gradient": t_kernel * 1e3}
            row["fraction_kernel"] = row["gflops_kernel"] / mm
            row["fraction_public"] = row["gflops_public"] / mm
            rows.append(row)
            log(f"  n={n:>4} B={B:>4}: gradient {row['gflops_kernel']:6.2f} GFLOP/s (public "
                f"{row['gflops_public']:6.2f}), matmul {mm:6.2f} GFLOP/s -> {row['fraction_kernel']:.0%}")
    big = 1000 if not quick else 600
    A = np.random.default_rng(0).normal(size=(big, big))
    A @ A
    tb = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        A @ A
        tb = min(tb, time.perf_counter() - t0)
    peak = 2 * big ** 3 / tb / 1e9
    log(f"  matmul n={big}: {peak:.1f} GFLOP/s (this machine's large-matrix rate)")
    return {"config": {"L": L, "flops_per_gradient": "6(L-1) n^3 per network"}, "rows": rows,
            "matmul_peak_gflops": peak, "matmul_peak_n": big}


# --- (d) memory -----------------------------------------------------------------------------

def bench_d(quick, log):
    rows = []
    B = 64
    cases = [(10, 3), (32, 4)] if quick else [(10, 3), (32, 4), (64, 4)]
    for n, L in cases:
        Ws, loss = problem(B, n, L, seed=3)
        h = 0.25 / float(np.max(lf.to_numpy(lf.lambda_max_bound(Ws))))  # a stable step; 2 steps suffice
        for method in ("rk4", "dopri5", "midpoint", "gauss2"):
            Wc = tuple(W.copy() for W in Ws)
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            if method == "rk4":
                rk4(Wc, loss, 2 * h, h)
            else:
                lf.gradient_flow(Wc, loss, 2 * h, method=method, save=("loss",), t_eval=[0.0, 2 * h],
                                 progress=False, dt=h)
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            per = peak / B
            model = sweep.bytes_per_trajectory([n] * (L + 1), method=method, n_saves=2)
            row = {"n": n, "L": L, "B": B, "method": method, "bytes_per_trajectory": per,
                   "model_bytes": model, "measured_over_model": per / model,
                   "words_per_state_entry": per / 8 / (L * n * n)}
            if method == "rk4":
                row["cost_model_5L+1"] = (5 * L + 1) * n * n * 8
                row["measured_over_5L+1"] = per / row["cost_model_5L+1"]
            rows.append(row)
            log(f"  n={n:>3} L={L} {method:>8}: {per / 1024:8.1f} KiB per trajectory, "
                f"model {model / 1024:8.1f} KiB (x{per / model:.2f})"
                + (f", (5L+1)n^2 s = {row['cost_model_5L+1'] / 1024:.1f} KiB" if method == "rk4" else ""))
    return {"config": {"B": B, "dtype": "float64", "tool": "tracemalloc (NumPy allocations)"}, "rows": rows}


# --- output -----------------------------------------------------------------------------------

def summary_rows(res):
    """The tidy CSV: one row per headline measurement, with its target where there is one."""
    out = []

    def add(comp, what, value, target=None, better="higher", note=""):
        ok = None if target is None else (value >= target if better == "higher" else value <= target)
        out.append({"comparison": comp, "measurement": what, "value": value, "target": target,
                    "meets_target": ok, "note": note})

    a = res.get("a")
    if a:
        for r in a["rows"]:
            add("a", f"speedup vs RK45 loop, B={r['B']} ({r['mode']})", r["speedup_vs_RK45"], None,
                note="wall time" + (f"; timed on {r['timed_trajectories']} and scaled"
                                    if r["timed_trajectories"] < r["B"] else ""))
            add("a", f"CPU-time speedup vs RK45 loop, B={r['B']} ({r['mode']})", r["cpu_speedup_vs_RK45"],
                note="process CPU time, all threads")
            add("a", f"speedup vs DOP853 loop, B={r['B']} ({r['mode']})", r["speedup_vs_DOP853"])
            add("a", f"max rel. final-loss difference vs RK45, B={r['B']} ({r['mode']})",
                r["rel_diff_vs_RK45"], 1e-6, "lower")
    b = res.get("b")
    if b:
        for r in b["rows"]:
            g = r["method"] in ("gauss2", "midpoint")
            add("b", f"{r['method']}: relative drift of D_l over T={b['config']['T']:g}", r["drift"],
                TARGETS["b_drift_gauss"] if g else None, "lower")
            add("b", f"{r['method']}: gradient evaluations per unit time / RK4's", r["evals_vs_rk4"],
                TARGETS["b_cost_vs_rk4"] if g else None, "lower")
            add("b", f"{r['method']}: wall time per unit time / RK4's", r["seconds_vs_rk4"],
                TARGETS["b_cost_vs_rk4"] if g else None, "lower")
    c = res.get("c")
    if c:
        for r in c["rows"]:
            tgt = TARGETS["c_fraction_n200"] if (r["n"] == 200 and r["B"] == 1) else None
            add("c", f"gradient / matmul GFLOP/s, n={r['n']}, B={r['B']}", r["fraction_kernel"], tgt)
            add("c", f"gradient GFLOP/s, n={r['n']}, B={r['B']}", r["gflops_kernel"])
    d = res.get("d")
    if d:
        for r in d["rows"]:
            add("d", f"bytes per trajectory / model, {r['method']}, n={r['n']}, L={r['L']}",
                r["measured_over_model"], note=f"{r['bytes_per_trajectory']:.0f} bytes measured")
    e = res.get("e")
    if e:
        for pname, p in e["problems"].items():
            size = f"{pname}: B={p['B']}, n={p['n']}, L={p['L']}, T={p['T']:g}"
            for name, r in p["rows"].items():
                tgt = None
                if name == "diffrax lean":
                    tgt = TARGETS["e_lean_vs_diffrax"].get(pname)
                elif name == "diffrax default":
                    tgt = TARGETS["e_default_vs_diffrax"]
                if not name.startswith("linflow"):
                    what = "lean" if name.endswith("lean") else ("default" if name.endswith("default") else "lean")
                    add("e", f"{name} seconds / linflow {what} call's, {size}", r["ratio_vs_linflow"], tgt,
                        note=(f"compile {r['compile_seconds']:.1f} s not counted; " if r["compile_seconds"] else "")
                        + f"rel. error vs DOP853 {r['rel_err_vs_DOP853']:.1e}")
                add("e", f"{name}: max rel. final-loss error vs DOP853 rtol 1e-12, {size}", r["rel_err_vs_DOP853"],
                    1e-6, "lower")
            add("e", f"linflow default call / lean call, {size}", p["default_over_lean"],
                TARGETS["e_default_over_lean"] if pname in ("P1", "P2") else None, "lower")
            add("e", f"linflow lean: gradient rate / 2-core batched matmul rate, {size}", p["lean_matmul_fraction"],
                TARGETS["e_matmul_fraction_P1"] if pname == "P1" else None,
                note=f"{p['lean_gflops']:.2f} of {p['matmul_gflops_2core']:.2f} GFLOP/s: the ceiling of any speedup"
                + (f" (2 x one thread's {p['matmul_gflops_1thread']:.2f}; two threads of one process reach"
                   f" {p['matmul_thread_scaling']:.2f}x one)" if "matmul_gflops_1thread" in p else ""))
    return out


def markdown_summary(res):
    """The headline table as Markdown (written to summary.md, pasted into benchmarks/README.md)."""
    m = res["machine"]
    lines = [f"Measured {res['date']} on {m.get('cpu', '?')} ({m['cpu_count']} cores), NumPy {m['numpy']}, "
             f"load average {m['loadavg_at_start'][0]:.1f} at start, {m['loadavg_at_end'][0]:.1f} at end"
             + (" (--quick)" if res.get("quick") else "") + ".", "",
             "| | measurement | value | target | met |", "|---|---|---|---|---|"]
    dates = {k: (res[k].get("date"), res[k].get("quick")) for k in "abcde" if k in res and res[k].get("date")}
    if len(set(dates.values())) > 1:  # a run with --only kept some comparisons from an earlier run
        lines[1:1] = ["", "Comparisons from different runs: " + "; ".join(
            f"({k}) {d}{' --quick' if q else ''}" for k, (d, q) in dates.items()) + "."]
    for r in res["summary"]:
        v = r["value"]
        met = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "**no**")
        tgt = "" if r["target"] is None else f"{r['target']:g}"
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| ({r['comparison']}) | {r['measurement']}{note} | {v:.3g} | {tgt} | {met} |")
    a = res.get("a")
    if a:
        lines += ["", "Profile of one batched dopri5 call (comparison a, one thread, share of total time):", ""]
        lines += [f"* `{p['function']}`: {p['fraction_of_time']:.0%}" for p in a["profile"][:6]]
    return "\n".join(lines) + "\n"


def plots(res, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    a = res.get("a")
    if a:
        fig, ax = plt.subplots(figsize=(6, 4))
        for mode in sorted({r["mode"] for r in a["rows"]}):
            rs = [r for r in a["rows"] if r["mode"] == mode]
            ax.plot([r["B"] for r in rs], [r["trajectories_per_second"] for r in rs], "o-",
                    label=f"lf.gradient_flow dopri5 ({mode})")
        for m, d in a["solve_ivp"].items():
            ax.axhline(1 / d["seconds_per_trajectory"], ls=":" if "engine" in m else "--",
                       color="gray" if m.startswith("RK45") else "k", label=f"solve_ivp {m} loop")
        ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="trajectories per second",
               title=f"(a) n = {a['config']['n']}, L = {a['config']['L']}, T = {a['config']['T']:g}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(os.path.join(out, "a_throughput.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    b = res.get("b")
    if b:
        fig, axs = plt.subplots(1, 2, figsize=(9, 3.6))
        names = [r["method"] for r in b["rows"]]
        axs[0].bar(names, [max(r["drift"], 1e-17) for r in b["rows"]])
        axs[0].axhline(TARGETS["b_drift_gauss"], ls="--", color="r", label="target 1e-12")
        axs[0].set(yscale="log", title=f"(b) drift of $D_l$ over T = {b['config']['T']:g}")
        axs[0].legend(fontsize=8)
        axs[1].bar(names, [r["evals_vs_rk4"] for r in b["rows"]], label="gradient evaluations")
        axs[1].plot(names, [r["seconds_vs_rk4"] for r in b["rows"]], "ko", label="wall time")
        axs[1].axhline(TARGETS["b_cost_vs_rk4"], ls="--", color="r", label="target 6x")
        axs[1].set(yscale="log", title="cost per unit time / RK4")
        axs[1].legend(fontsize=8)
        fig.tight_layout()
        paths.append(os.path.join(out, "b_long_horizon.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    c = res.get("c")
    if c:
        fig, ax = plt.subplots(figsize=(6, 4))
        rs = [r for r in c["rows"] if r["B"] == 1]
        ax.plot([r["n"] for r in rs], [r["gflops_kernel"] for r in rs], "o-", label="gradient (kernel)")
        ax.plot([r["n"] for r in rs], [r["gflops_public"] for r in rs], "s:", label="lf.value_and_gradients")
        ax.plot([r["n"] for r in rs], [r["gflops_matmul"] for r in rs], "k--", label="numpy matmul, same n")
        for r in c["rows"]:
            if r["B"] > 1:
                ax.plot([r["n"]], [r["gflops_kernel"]], "r^", label=f"gradient, batch B={r['B']}")
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel="GFLOP/s", title="(c) one gradient, L = 4")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(os.path.join(out, "c_gflops.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    d = res.get("d")
    if d:
        fig, ax = plt.subplots(figsize=(6, 4))
        for method in ("rk4", "dopri5", "midpoint", "gauss2"):
            rs = [r for r in d["rows"] if r["method"] == method]
            ax.plot([r["model_bytes"] for r in rs], [r["bytes_per_trajectory"] for r in rs], "o", label=method)
        lim = [min(r["model_bytes"] for r in d["rows"]) / 1.5, max(r["model_bytes"] for r in d["rows"]) * 1.5]
        ax.plot(lim, lim, "k--", lw=1, label="measured = model")
        ax.set(xscale="log", yscale="log", xlabel="cost model (bytes per trajectory)",
               ylabel="tracemalloc peak / B", title="(d) memory per trajectory")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(os.path.join(out, "d_memory.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def machine():
    import numpy

    info = {"python": platform.python_version(), "numpy": numpy.__version__, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "linflow": lf.__version__}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def _relative_paths(text):
    """A profile's file names relative to the repository or to site-packages (no machine paths)."""
    text = text.replace(os.path.dirname(HERE) + os.sep, "")
    return re.sub(r"\S*/site-packages/", "site-packages/", text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    ap.add_argument("--only", default="abcde",
                    help="which comparisons to run, e.g. 'ac' (the others are kept from the results.json there)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    os.environ.setdefault("LINFLOW_PROGRESS", "0")

    def log(msg):
        print(msg, flush=True)

    res = {"machine": machine(), "quick": args.quick, "targets": TARGETS,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    t_all = time.perf_counter()
    for key, fn, title in (("c", bench_c, "gradient GFLOP/s"), ("d", bench_d, "memory per trajectory"),
                           ("b", bench_b, "long horizon"), ("a", bench_a, "throughput"),
                           ("e", bench_e, "peers: diffrax, torchode")):
        if key not in args.only:
            continue
        log(f"({key}) {title}")
        t0 = time.perf_counter()
        res[key] = fn(args.quick, log)
        res[key]["benchmark_seconds"] = time.perf_counter() - t0
        res[key]["date"], res[key]["quick"] = res["date"], args.quick  # kept when others are rerun
    res["machine"]["loadavg_at_end"] = os.getloadavg()
    old_path = os.path.join(args.out, "results.json")
    if set("abcde") - set(args.only) and os.path.exists(old_path):  # keep the comparisons not rerun
        with open(old_path) as fh:
            old = json.load(fh)
        for key in set("abcde") - set(args.only):
            if key in old:
                res[key] = old[key]
    res["total_seconds"] = time.perf_counter() - t_all
    if "a" in res and "profile_text" in res["a"]:  # not when (a) was kept from an earlier run
        with open(os.path.join(args.out, "profile_a.txt"), "w") as fh:
            fh.write(_relative_paths(res["a"].pop("profile_text")))
    summary = summary_rows(res)
    res["summary"] = summary
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(res, fh, indent=1, default=float)
    sweep.write_csv(summary, os.path.join(args.out, "results.csv"))
    with open(os.path.join(args.out, "summary.md"), "w") as fh:
        fh.write(markdown_summary(res))
    paths = plots(res, args.out)
    log(f"\nwrote {args.out}/results.json, results.csv and {len(paths)} plots in {res['total_seconds']:.0f} s")
    for r in summary:
        if r["target"] is not None:
            mark = "ok  " if r["meets_target"] else "MISS"
            log(f"  [{mark}] ({r['comparison']}) {r['measurement']}: {r['value']:.3g} (target {r['target']:g})")
    return res


if __name__ == "__main__":
    main()
