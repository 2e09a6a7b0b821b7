"""Experiment, not part of linflow: what keeps two threads of one process from using two cores?

``linflow.flow.parallel`` splits a NumPy batch over threads.  On the 2-core VM the second
thread adds far less than a core at n = 10 (benchmarks/README.md, "Threads and OpenBLAS").
This script separates the candidate causes on ``(k, n, n)`` stacks, BLAS single-threaded
(threadpoolctl), each workload on one thread and then on two threads at once (twice the work):

* ``multiply``: an elementwise ufunc, as many calls as ``matmul`` makes per second.  Each call
  releases and retakes the GIL, so if GIL hand-overs were the cost, this would not scale either;
* ``matmul``: NumPy's stacked matmul, one OpenBLAS ``dgemm`` call per matrix;
* ``matmul, processes``: the same matmul in two processes side by side (separate OpenBLAS
  instances, nothing shared but the machine).

Prints the two-worker speed-up (2.0 is perfect)::

    python benchmarks/experiments/thread_scaling.py [k] [n]

Measured 2026-12-05 on the 2-core VM (AMD EPYC, NumPy 2.4 with OpenBLAS 0.3.31), three runs
at k = 500, n = 10: multiply 1.82-1.91x, matmul on threads 1.44-1.49x, matmul in processes
1.75-1.79x; at k = 128, n = 64 all three 1.6-1.8x.  Earlier that day, ad-hoc versions of the
matmul-on-threads measurement gave as little as 0.5x (two threads slower than one).
"""
import concurrent.futures
import multiprocessing
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

K = int(sys.argv[1]) if len(sys.argv) > 1 else 500
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10
SECONDS = 0.5  # per one-thread measurement


def operands(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(K, N, N)), rng.normal(size=(K, N, N)), np.empty((K, N, N))


def calls_for(fn):
    a, b, c = operands(0)
    t0, count = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.1:
        fn(a, b, c)
        count += 1
    return max(1, int(count * SECONDS / (time.perf_counter() - t0)))


def loop(fn, reps, seed):
    a, b, c = operands(seed)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(a, b, c)
    return time.perf_counter() - t0


def one_blas_thread():
    threadpool_limits(limits=1, user_api="blas")  # for the rest of this worker process


def matmul(a, b, c):
    np.matmul(a, b, out=c)


def multiply(a, b, c):
    np.multiply(a, b, out=c)


def on_threads(fn, reps, workers):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        list(pool.map(loop, [fn] * workers, [reps] * workers, range(workers)))
        return time.perf_counter() - t0


def on_processes(fn, reps, workers):
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                                initializer=one_blas_thread) as pool:
        list(pool.map(loop, [fn] * workers, [1] * workers, range(workers)))  # start the workers
        t0 = time.perf_counter()
        list(pool.map(loop, [fn] * workers, [reps] * workers, range(workers)))
        return time.perf_counter() - t0


def main():
    one_blas_thread()  # set once here: threads entering and leaving limits of their own would race
    print(f"stacks of {K} matrices {N} x {N}; speed-up of two workers over one (2.0 is perfect)")
    for name, fn, runner in [("multiply, threads", multiply, on_threads),
                             ("matmul, threads", matmul, on_threads),
                             ("matmul, processes", matmul, on_processes)]:
        reps = calls_for(fn)
        best = []
        for _ in range(3):  # interleaved rounds, best of each
            one, two = runner(fn, reps, 1), runner(fn, reps, 2)
            best.append((one, two))
        one, two = min(b[0] for b in best), min(b[1] for b in best)
        print(f"  {name:<18} {reps:6d} calls: one worker {one:.3f} s, two workers (2x the work) "
              f"{two:.3f} s -> {2 * one / two:.2f}x")


if __name__ == "__main__":
    main()
