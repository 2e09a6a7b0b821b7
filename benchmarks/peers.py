"""Peer integrators for comparison (e) of ``benchmarks/run.py``: diffrax (JAX) and torchode (PyTorch).

Both solve the same problems as linflow: ``B`` networks of ``L`` square layers, the loss
``1/2 ||W_1...W_L - Y||^2``, Dormand–Prince 5(4) with a step size per trajectory and the same
error norm (RMS of the error over ``atol + rtol max(|y0|, |y1|)``).  They are installed only for
the benchmarks (``pip install 'linflow[bench]'``, or ``python3 dev.py bench``); when one is
missing its rows say so and the rest of the suite runs.

* diffrax: ``diffeqsolve(Dopri5, PIDController)`` under ``jax.vmap`` and ``jax.jit``, float64
  (``jax_enable_x64``); the first call compiles, and the compile time is reported apart.
  The field is ``-jax.grad`` of the loss (what a JAX user would write).
* torchode: its batched ``Dopri5`` with an ``IntegralController``, float64, eager PyTorch on
  the CPU (``torch.compile`` needs a C compiler toolchain at run time; not used).

Each ``*_run`` returns ``{"seconds", "compile_seconds", "final_weights" (host NumPy, per
layer), "losses" (saved losses, (S, B)) or None, "steps" (mean accepted steps)}``.
"""
from __future__ import annotations

import time

import numpy as np


def available():
    """Which peers import here: {"diffrax": version or None, "torchode": version or None}."""
    out = {}
    try:
        import diffrax
        import jax

        out["diffrax"] = f"diffrax {diffrax.__version__}, jax {jax.__version__}"
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        out["diffrax"] = None
    try:
        import torch
        import torchode

        out["torchode"] = f"torchode {torchode.__version__}, torch {torch.__version__}"
    except Exception:  # noqa: BLE001
        out["torchode"] = None
    return out


# --- diffrax ---------------------------------------------------------------------------------

_DIFFRAX = {}


def _diffrax_solver(L, n_saves, rtol, atol, T, device=None):
    """A jitted, vmapped solve for one configuration (cached: compiled once per shape)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    key = (L, n_saves, rtol, atol, T, device)
    if key in _DIFFRAX:
        return _DIFFRAX[key]

    def loss(Ws, Y):
        P = Ws[0]
        for W in Ws[1:]:
            P = P @ W
        return 0.5 * jnp.sum((P - Y) ** 2)

    grad = jax.grad(loss)

    def field(t, Ws, Y):
        return jax.tree_util.tree_map(lambda g: -g, grad(Ws, Y))

    if n_saves:
        saveat = diffrax.SaveAt(ts=jnp.linspace(0.0, T, n_saves), fn=lambda t, Ws, Y: loss(Ws, Y))
    else:
        saveat = diffrax.SaveAt(t1=True)

    def one(Ws, Y):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Dopri5(), t0=0.0, t1=T, dt0=None, y0=Ws, args=Y,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), saveat=saveat,
            max_steps=100_000,
        )
        return sol.ys, sol.stats["num_accepted_steps"]

    fn = jax.jit(jax.vmap(one, in_axes=(0, None)))  # runs where its arguments live
    _DIFFRAX[key] = fn
    return fn


def diffrax_run(Ws, Y, T, *, rtol, atol, n_saves=0, device=None):
    """Solve the batch with diffrax.  ``n_saves`` > 0 saves the loss at that many equally spaced
    times (like ``lf.gradient_flow``'s default); 0 returns only the final weights.
    ``device`` (a JAX device) runs it there (``benchmarks/gpu.py``: a GPU)."""
    import jax
    import jax.numpy as jnp

    fn = _diffrax_solver(len(Ws), n_saves, rtol, atol, float(T), device)
    args = [jax.device_put(jnp.asarray(W), device) for W in Ws], jax.device_put(jnp.asarray(Y), device)
    compile_s = 0.0
    if not getattr(fn, "_warm", set()) or (tuple(Ws[0].shape) not in fn._warm):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        compile_s = time.perf_counter() - t0  # compile plus one run; the run is timed below
        fn._warm = getattr(fn, "_warm", set()) | {tuple(Ws[0].shape)}
    t0 = time.perf_counter()
    ys, steps = jax.block_until_ready(fn(*args))
    secs = time.perf_counter() - t0
    if n_saves:
        return {"seconds": secs, "compile_seconds": compile_s, "final_weights": None,
                "losses": np.asarray(ys).T, "steps": float(np.mean(np.asarray(steps)))}
    return {"seconds": secs, "compile_seconds": compile_s,
            "final_weights": [np.asarray(W)[:, -1] for W in ys], "losses": None,
            "steps": float(np.mean(np.asarray(steps)))}


# --- torchode ------------------------------------------------------------------------------

def torchode_run(Ws, Y, T, *, rtol, atol, n_saves=0, threads=None):
    """Solve the batch with torchode (eager PyTorch, float64, CPU).  ``n_saves`` as for diffrax."""
    import torch
    import torchode as to

    if threads:
        torch.set_num_threads(threads)
    B = Ws[0].shape[0]
    shapes = [tuple(W.shape[1:]) for W in Ws]
    sizes = [int(np.prod(s)) for s in shapes]
    Yt = torch.as_tensor(np.asarray(Y), dtype=torch.float64)

    def unflat(y):
        out, i = [], 0
        for s, k in zip(shapes, sizes):
            out.append(y[:, i:i + k].reshape((y.shape[0],) + s))
            i += k
        return out

    def loss_of(y):
        Wl = unflat(y)
        P = Wl[0]
        for W in Wl[1:]:
            P = P @ W
        return 0.5 * ((P - Yt) ** 2).sum(dim=(-2, -1))

    def field(t, y):  # prefix products and the backward sweep, batched (3(L-1) matmuls)
        Wl = unflat(y)
        pre = [Wl[0]]
        for W in Wl[1:]:
            pre.append(pre[-1] @ W)
        M = pre[-1] - Yt
        grads = [None] * len(Wl)
        for l in range(len(Wl) - 1, 0, -1):
            grads[l] = pre[l - 1].transpose(-2, -1) @ M
            M = M @ Wl[l].transpose(-2, -1)
        grads[0] = M
        return -torch.cat([g.reshape(y.shape[0], -1) for g in grads], dim=1)

    y0 = torch.as_tensor(np.concatenate([np.asarray(W).reshape(B, -1) for W in Ws], axis=1), dtype=torch.float64)
    S = n_saves if n_saves else 2
    t_eval = torch.linspace(0.0, float(T), S, dtype=torch.float64).repeat(B, 1)
    term = to.ODETerm(field)
    solver = to.AutoDiffAdjoint(to.Dopri5(term=term), to.IntegralController(atol=atol, rtol=rtol, term=term))
    t0 = time.perf_counter()
    with torch.no_grad():
        sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t_eval))
        losses = torch.stack([loss_of(sol.ys[:, k]) for k in range(S)]) if n_saves else None
    secs = time.perf_counter() - t0
    final = [W.numpy() for W in unflat(sol.ys[:, -1])]
    return {"seconds": secs, "compile_seconds": 0.0, "final_weights": final,
            "losses": None if losses is None else losses.numpy(),
            "steps": float(sol.stats["n_accepted"].double().mean())}
