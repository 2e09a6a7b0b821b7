"""Experiment, not part of linflow: is a fused, compiled dopri5 step faster than the batched
NumPy engine on 2 CPU cores?  (benchmarks/README.md, "Why (a) stays short of 30x".)

The whole per-trajectory Dormand-Prince loop for the squared loss, compiled with Numba
(``prange`` over trajectories; stages, gradient and error norm held per trajectory; the small
products as plain loops; ``fastmath``), timed against the RK45 loops of comparison (a) on the
same problem, in interleaved rounds.  Needs ``pip install numba`` (not a linflow dependency)::

    python benchmarks/experiments/numba_dopri5.py [threads]

Measured 2026-11-28 on the 2-core VM (Numba 0.68.1, two runs of 3 interleaved rounds): 19.5 us
per step on one thread, 11-18 us of wall time on two; 7-10x the RK45 loop on the user-written
field and 9-13x the one on the engine's kernel -- no better than the batched NumPy path (11.3x
in benchmarks/run.py), far from 30x.
"""
import math
import os
import sys
import time

import numpy as np
import numba as nb
from numba import njit, prange

@njit(inline="always", fastmath=True)
def mm(A, B, C):  # C = A @ B
    n, k = A.shape
    m = B.shape[1]
    for i in range(n):
        for j in range(m):
            C[i, j] = 0.0
        for p in range(k):
            a = A[i, p]
            for j in range(m):
                C[i, j] += a * B[p, j]

@njit(inline="always", fastmath=True)
def mmTA(A, B, C):  # C = A.T @ B
    k, n = A.shape
    m = B.shape[1]
    for i in range(n):
        for j in range(m):
            C[i, j] = 0.0
    for p in range(k):
        for i in range(n):
            a = A[p, i]
            for j in range(m):
                C[i, j] += a * B[p, j]

@njit(inline="always", fastmath=True)
def mmBT(A, B, C):  # C = A @ B.T
    n, k = A.shape
    m = B.shape[0]
    for i in range(n):
        for j in range(m):
            s = 0.0
            for p in range(k):
                s += A[i, p] * B[j, p]
            C[i, j] = s

@njit(inline="always", fastmath=True)
def field(W, Y, out, P, R, R2):
    """out = -grad of 0.5||W1..WL - Y||^2; returns the loss.  W, out: (L, n, n)."""
    L = W.shape[0]
    P[0, :, :] = W[0]
    for k in range(1, L):
        mm(P[k - 1], W[k], P[k])
    val = 0.0
    n, m = Y.shape
    for i in range(n):
        for j in range(m):
            g = P[L - 1, i, j] - Y[i, j]
            R[i, j] = g
            val += g * g
    for l in range(L - 1, 0, -1):
        mmTA(P[l - 1], R, out[l])
        mmBT(R, W[l], R2)
        R[:, :] = R2
    out[0, :, :] = R
    for l in range(L):
        for i in range(n):
            for j in range(m):
                out[l, i, j] = -out[l, i, j]
    return 0.5 * val

A = np.array([
    [0, 0, 0, 0, 0, 0],
    [1/5, 0, 0, 0, 0, 0],
    [3/40, 9/40, 0, 0, 0, 0],
    [44/45, -56/15, 32/9, 0, 0, 0],
    [19372/6561, -25360/2187, 64448/6561, -212/729, 0, 0],
    [9017/3168, -355/33, 46732/5247, 49/176, -5103/18656, 0]])
Bc = np.array([35/384, 0, 500/1113, 125/192, -2187/6784, 11/84])
E = np.array([71/57600, 0.0, -71/16695, 71/1920, -17253/339200, 22/525, -1/40])

@njit(fastmath=True)
def integrate_one(W0, Y, T, rtol, atol, A, Bc, E):
    L, n, _ = W0.shape
    N = W0.size
    y = W0.copy().reshape(N)
    K = np.zeros((7, N))
    P = np.empty((L, n, n)); R = np.empty((n, n)); R2 = np.empty((n, n))
    yt = np.empty(N)
    y1 = np.empty(N)
    f0 = field(y.reshape(W0.shape), Y, K[0].reshape(W0.shape), P, R, R2)
    # initial step (Hairer / SciPy select_initial_step, order 5)
    d0 = 0.0; d1 = 0.0
    for i in range(N):
        sc = atol + abs(y[i]) * rtol
        d0 += (y[i] / sc) ** 2; d1 += (K[0, i] / sc) ** 2
    d0 = math.sqrt(d0 / N); d1 = math.sqrt(d1 / N)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    for i in range(N):
        yt[i] = y[i] + h0 * K[0, i]
    field(yt.reshape(W0.shape), Y, K[1].reshape(W0.shape), P, R, R2)
    d2 = 0.0
    for i in range(N):
        sc = atol + abs(y[i]) * rtol
        d2 += ((K[1, i] - K[0, i]) / sc) ** 2
    d2 = math.sqrt(d2 / N) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / 5)
    h = min(100 * h0, h1)
    t = 0.0
    steps = 0
    val = f0
    while t < T:
        if t + h > T:
            h = T - t
        while True:
            for s in range(1, 6):
                for i in range(N):
                    acc = 0.0
                    for j in range(s):
                        acc += A[s, j] * K[j, i]
                    yt[i] = y[i] + h * acc
                field(yt.reshape(W0.shape), Y, K[s].reshape(W0.shape), P, R, R2)
            for i in range(N):
                acc = 0.0
                for j in range(6):
                    acc += Bc[j] * K[j, i]
                y1[i] = y[i] + h * acc
            v1 = field(y1.reshape(W0.shape), Y, K[6].reshape(W0.shape), P, R, R2)
            err = 0.0
            for i in range(N):
                e = 0.0
                for j in range(7):
                    e += E[j] * K[j, i]
                sc = atol + rtol * max(abs(y[i]), abs(y1[i]))
                err += (h * e / sc) ** 2
            err = math.sqrt(err / N)
            if err < 1.0:
                fac = 10.0 if err == 0 else min(10.0, 0.9 * err ** (-0.2))
                t += h
                y[:] = y1
                K[0, :] = K[6]
                val = v1
                steps += 1
                h *= fac
                break
            h *= max(0.2, 0.9 * err ** (-0.2))
    return y.reshape(W0.shape), val, steps

@njit(parallel=True, fastmath=True)
def integrate_batch(W0s, Y, T, rtol, atol, A, Bc, E):
    B = W0s.shape[0]
    vals = np.empty(B)
    steps = np.empty(B, dtype=np.int64)
    for b in prange(B):
        _, v, s = integrate_one(W0s[b], Y, T, rtol, atol, A, Bc, E)
        vals[b] = v
        steps[b] = s
    return vals, steps

if __name__ == "__main__":
    HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(HERE))
    from scipy.integrate import solve_ivp

    from run import engine_field, flat_field, problem

    nb.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    B, n, L, T, rtol, atol = 1000, 10, 3, 5.0, 1e-8, 1e-10
    Ws, loss = problem(B, n, L, seed=0)
    Y = np.asarray(loss.Y)
    W0 = np.ascontiguousarray(np.stack(Ws, axis=1))  # (B, L, n, n)
    t0 = time.perf_counter()
    integrate_batch(W0[:4], Y, T, rtol, atol, A, Bc, E)
    print(f"compile: {time.perf_counter() - t0:.1f} s, threads: {nb.get_num_threads()}")
    fields = {"user-written": flat_field(loss, n, L), "engine kernel": engine_field(loss, n, L)}
    for rnd in range(3):
        base = {}
        for name, fun in fields.items():
            t0 = time.perf_counter()
            ref = []
            for b in range(8):
                s = solve_ivp(fun, (0, T), W0[b].ravel(), method="RK45", rtol=rtol, atol=atol)
                ref.append(0.5 * float(np.sum((np.linalg.multi_dot(s.y[:, -1].reshape(L, n, n)) - Y) ** 2)))
            base[name] = (time.perf_counter() - t0) / 8
        t0 = time.perf_counter()
        vals, steps = integrate_batch(W0, Y, T, rtol, atol, A, Bc, E)
        per = (time.perf_counter() - t0) / B
        diff = np.max(np.abs(vals[:8] - np.array(ref)) / np.array(ref))
        print(f"round {rnd}: compiled {per * 1e6:.0f} us per trajectory ({per / steps.mean() * 1e6:.1f} us per "
              f"step); RK45 loop: " + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / per:.1f}x)" for k, v in base.items())
              + f"; final losses vs RK45 {diff:.1e}")
