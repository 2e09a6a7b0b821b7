r"""Front doors: :func:`gradient_flow` and :func:`gradient_descent`.

Both take weights ``(W_1, ..., W_L)`` with optional leading batch axes (one
network per batch entry) and a loss from :mod:`linflow.losses`, and return a
:class:`~linflow.flow.trajectory.Trajectory`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._validate import boolean, check_weights, integer, nonnegative, positive
from ..backend import to_numpy
from ..network import _imbalance, _lambda_min, lambda_max_bound
from .parallel import integrate_parallel
from .solvers import Dopri5, Gauss, StepResult, bcast, field
from .trajectory import DivergenceError, MaxStepsError, MaxStepsWarning, Status

__all__ = ["gradient_flow", "gradient_descent", "DIAGNOSTICS", "METHODS"]

METHODS = ("dopri5", "midpoint", "gauss2")
#: the most gradient-descent steps one call takes (step counts stay exact in float64)
MAX_GD_STEPS = 2**53
#: the most save points one call allocates
MAX_SAVES = 10**7
#: ``rtol`` of :func:`gradient_flow` when none is given (``rtol=None``), for float64 weights;
#: lower precisions get ``linflow.flow.api.default_rtol``.
DEFAULT_RTOL = 1e-8
#: the default ``rtol`` is at least this many machine epsilons of the weights' dtype
DEFAULT_RTOL_EPS = 100


def default_rtol(dtype, xp=np):
    """The ``rtol`` used when none is given: ``max(1e-8, 100 eps(dtype))``.

    1e-8 in float64 (100 eps = 2.2e-14 is far below it); 1.19e-5 in float32, where 1e-8
    sits below the round-off of the error estimate itself (eps = 1.19e-7): steps then
    shrink to chase noise, and a typical run takes 1.5-2.3x the steps that 1.19e-5 takes,
    for no accuracy that float32 can hold.  Like a library with a per-dtype default
    (rather than SciPy's one ``rtol=1e-3`` for every dtype), the default fits the precision;
    an explicit ``rtol`` is always used as given, with a warning below 10 eps.
    """
    return max(DEFAULT_RTOL, DEFAULT_RTOL_EPS * float(xp.finfo(dtype).eps))


def _svdvals(xp, y, cum):
    return xp.linalg.svdvals(cum[-1])


#: Named diagnostics that can be saved along a run: ``name -> fn(xp, Ws, cum)``.
DIAGNOSTICS = {
    "imbalance": lambda xp, y, cum: _imbalance(xp, y),
    "singular_values": _svdvals,
    "sigma_min": lambda xp, y, cum: _svdvals(xp, y, cum)[..., -1],
    "lambda_min": lambda xp, y, cum: _lambda_min(xp, y),
    "weights": lambda xp, y, cum: tuple(y),
}


def _savers(loss, save, diagnostics):
    if isinstance(save, str):
        save = (save,)
    if not isinstance(save, (tuple, list)):
        raise TypeError(f"linflow: save must be a tuple of 'loss' and/or 'product'; got {save!r}.")
    if not isinstance(diagnostics, (str, dict, tuple, list)):
        raise TypeError(
            "linflow: diagnostics must be a name, a sequence of names or callables, or a dict of "
            f"name -> callable; got {type(diagnostics).__name__} {diagnostics!r}."
        )
    save = tuple(save)
    unknown = [s for s in save if s not in ("loss", "product")]
    if unknown:
        raise ValueError(f"linflow: save takes 'loss' and/or 'product'; got {unknown}.")
    # each saver is fn(xp, y, cum, value, loss); ``loss`` is the driver's current
    # (flattened, compacted) loss, never the caller's
    savers = {"loss": lambda xp, y, cum, v, ls: ls.value(cum[-1]) if v is None else v}
    if "product" in save:
        savers["product"] = lambda xp, y, cum, v, ls: cum[-1]
    if isinstance(diagnostics, str):
        diagnostics = (diagnostics,)
    items = diagnostics.items() if isinstance(diagnostics, dict) else [(d, d) for d in diagnostics]
    for name, fn in items:
        if callable(fn):
            savers[name] = (lambda g: lambda xp, y, cum, v, ls: g(tuple(y)))(fn)
        elif fn in DIAGNOSTICS:
            savers[name] = (lambda g: lambda xp, y, cum, v, ls: g(xp, y, cum))(DIAGNOSTICS[fn])
        else:
            raise ValueError(
                f"linflow: unknown diagnostic {fn!r}; expected one of {sorted(DIAGNOSTICS)} "
                "or a callable fn(Ws) -> array."
            )
    return savers


def _flatten(xp, Ws, loss):
    """Reshape the batch to one leading axis; returns (y0, loss, batch_shape)."""
    batch = tuple(Ws[0].shape[:-2])
    lb = tuple(loss.batch_shape)
    if lb:
        try:
            full = tuple(np.broadcast_shapes(batch, lb))
        except ValueError:
            raise ValueError(
                f"linflow: the weights' batch shape {batch} and the loss data's batch shape {lb} "
                "do not broadcast."
            ) from None
        if full != batch:
            Ws = tuple(xp.broadcast_to(W, full + tuple(W.shape[-2:])) for W in Ws)
            batch = full
    y0 = tuple(xp.reshape(W, (-1,) + tuple(W.shape[-2:])) for W in Ws)
    return y0, loss.flatten_batch(batch), batch


def _unflatten(xp, traj, batch):
    def r(a, lead=0):
        if a is None:
            return None
        shape = tuple(a.shape)
        return xp.reshape(a, shape[:lead] + batch + shape[lead + 1:])

    def rn(a):
        return np.reshape(a, batch + np.shape(a)[1:])

    traj.loss = r(traj.loss, 1)
    traj.product = r(traj.product, 1)
    traj.diagnostics = {k: r(v, 1) for k, v in traj.diagnostics.items()}
    traj.weights = tuple(r(W) for W in traj.weights)
    traj.status = rn(traj.status)
    traj.t_final = r(traj.t_final)
    traj.stats = {k: rn(v) for k, v in traj.stats.items()}
    return traj


def _check_inputs(Ws, loss):
    xp, Ws = check_weights(Ws, min_layers=1)
    if not hasattr(loss, "value_and_grad"):
        raise TypeError(
            f"linflow: loss must be a linflow loss (e.g. linflow.losses.Squared(Y)); got "
            f"{type(loss).__name__}."
        )
    loss.check(Ws)
    return xp, Ws


def gradient_flow(
    Ws,
    loss,
    t_end,
    *,
    method="dopri5",
    rtol=None,
    atol=1e-10,
    dt=None,
    t_eval=None,
    loss_tol=None,
    save=("loss",),
    diagnostics=(),
    max_steps=100_000,
    throw=True,
    progress=None,
    check_every=8,
):
    r"""Integrate the gradient flow :math:`\dot W_l = -\nabla_{W_l} f(W_1\cdots W_L)` (eq. 3).

    Parameters
    ----------
    Ws : tuple of arrays, ``W_l`` of shape ``(..., h_{l-1}, h_l)``
        Initial weights; leading axes hold a batch of independent networks.
    loss : linflow.losses.Loss
    t_end : float
        Final time, > 0.
    method : {"dopri5", "midpoint", "gauss2"}
        ``"dopri5"``: adaptive Dormand–Prince 5(4), a step size per trajectory,
        save points by dense output.  ``"midpoint"`` / ``"gauss2"``: Gauss–Legendre
        (orders 2 / 4) with fixed step ``dt``; they conserve every imbalance
        :math:`D_l` to round-off (Lemma 2 holds exactly for the discrete flow).
    rtol, atol : float
        Error tolerances of ``"dopri5"`` (error ≤ atol + rtol·|W|, per entry, RMS);
        ``rtol`` defaults to 1e-8 for float64 and to 100 machine epsilons (1.19e-5) for
        float32 (``linflow.flow.api.default_rtol``).  An explicit ``rtol`` below 10 machine epsilons of
        the weights' dtype (about 1.2e-6 in float32) warns: round-off then dominates
        the error estimate and the tolerance cannot be met.
    dt : float, optional
        Initial step (``"dopri5"``) or the fixed step (Gauss methods).  Default for
        the Gauss methods, per trajectory: ``0.5 / sharpness``, at most ``t_end / 20``,
        where the sharpness estimate is the larger of a Hessian bound at the start and
        the sharpness ``K L sigma_1(W*)^(2-2/L)`` of a balanced minimum (course appendix *Numerical methods*, Integrators).
        Steps also land exactly on the save times.
    t_eval : array_like, optional
        Save times in ``[0, t_end]``, increasing; default 101 equally spaced points.
    loss_tol : float, optional
        Stop a trajectory once its loss falls below this value (status CONVERGED).
    save : tuple
        ``"loss"`` (always) and, on request, ``"product"``: the product
        ``W_1...W_L`` at every save point, ``S n m`` numbers per network.  The
        default saves the loss only: at ``B = 10^4`` networks of width 64 the
        product at the default 101 points would take 33 GB, twenty-five times the
        state itself.  Saving costs one interpolation and one product per save
        point crossed (see the course appendix *Numerical methods*, Cost model).
    diagnostics : sequence of names or dict of name -> callable
        Extra quantities at the save points: ``"imbalance"``, ``"singular_values"``,
        ``"sigma_min"``, ``"lambda_min"``, ``"weights"``, or ``fn(Ws) -> array``.
        Tuple-valued ones are stored as ``name_1, name_2, ...``.
    max_steps : int
        Step budget per trajectory (accepted plus rejected), at least 1.  A fixed-step
        method whose step count ``t_end / dt`` exceeds it is refused before it starts
        (ValueError naming ``dt``, ``t_end`` and ``max_steps``).  A trajectory that runs
        out of steps stops with status MAX_STEPS: the run then raises
        :class:`~linflow.flow.trajectory.MaxStepsError` (``throw=True``, the partial
        results on its ``.trajectory``) or warns with
        :class:`~linflow.flow.trajectory.MaxStepsWarning`; ``Trajectory.saved`` marks
        the save points reached (the later ones are NaN).
    throw : bool
        Raise :class:`~linflow.flow.trajectory.DivergenceError` if a trajectory
        diverges, :class:`~linflow.flow.trajectory.MaxStepsError` if one runs out of
        steps (the partial results ride on the exception).  With ``False``
        the run continues and ``status`` marks failures (MAX_STEPS also warns).
    progress : bool or None
        Progress bar; ``None`` shows one on a terminal for runs over 2 s.
    check_every : int
        Steps between the host's looks at the state (the only syncs), at least 1.

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> import numpy as np, linflow as lf
    >>> Ws = lf.init.gaussian((2, 4, 2), seed=0)
    >>> traj = lf.gradient_flow(Ws, lf.losses.Squared(np.eye(2)), t_end=5.0)
    >>> bool(traj.loss[-1] < traj.loss[0])
    True
    """
    xp, Ws = _check_inputs(Ws, loss)
    t_end = positive("t_end", t_end)
    max_steps = integer("max_steps", max_steps, minimum=1)
    throw = boolean("throw", throw)
    # the driver takes check_every steps between looks: never more than the budget allows
    check_every = min(integer("check_every", check_every, minimum=1), max_steps)
    rtol = _check_rtol(rtol, Ws[0].dtype, xp)
    atol = nonnegative("atol", atol)
    if isinstance(method, str):
        key = method.lower()
        if key not in METHODS:
            raise ValueError(f"linflow: unknown method {method!r}; expected one of {METHODS}.")
        solver = Dopri5(rtol, atol) if key == "dopri5" else Gauss(1 if key == "midpoint" else 2)
    elif hasattr(method, "step") and hasattr(method, "adaptive"):
        solver = method  # a solver object (e.g. linflow.flow.Dopri5(rtol, atol))
    else:
        raise TypeError(f"linflow: method must be one of {METHODS} or a solver object; got {method!r}.")
    ts = _save_times(t_eval, t_end, 101)
    loss_tol = None if loss_tol is None else nonnegative("loss_tol", loss_tol)
    y0, floss, batch = _flatten(xp, Ws, loss)
    if dt is None:
        if solver.adaptive:
            dt0 = _initial_step(xp, y0, floss, solver)
        else:
            dt_host = _default_fixed_step(xp, y0, floss, t_end)
            _check_step_budget(solver, dt_host, t_end, max_steps, default=True)
            dt0 = xp.asarray(dt_host, dtype=y0[0].dtype, device=_device(y0[0]))
    else:
        dt0 = positive("dt", dt)
        if not solver.adaptive:
            _check_step_budget(solver, dt0, t_end, max_steps, default=False)
    return _run(
        xp, batch, y0, floss, solver, t_end=t_end, dt0=dt0, ts=ts,
        savers=_savers(loss, save, diagnostics), loss_tol=loss_tol, max_steps=max_steps,
        check_every=check_every, throw=throw, progress=progress,
    )


def _check_rtol(rtol, dtype, xp):
    """``rtol`` (default ``linflow.flow.api.default_rtol``) validated; an explicit one below 10 eps of ``dtype`` warns."""
    if rtol is None:
        return default_rtol(dtype, xp)
    rtol = positive("rtol", rtol)
    eps = float(xp.finfo(dtype).eps)
    if rtol < 10 * eps:
        warnings.warn(
            f"linflow: rtol = {rtol:.3g} is below 10 machine epsilons of {dtype} ({10 * eps:.2g}): "
            "round-off dominates the error estimate there, so steps shrink without meeting the "
            f"tolerance. Use rtol >= {10 * eps:.2g} (or float64 weights).",
            RuntimeWarning, stacklevel=3,
        )
    return rtol


def _check_step_budget(solver, dt, t_end, max_steps, *, default):
    """Refuse a fixed-step run whose step count ``t_end / dt`` exceeds ``max_steps``, before it starts."""
    dt_host = np.atleast_1d(np.asarray(dt, dtype=np.float64))
    need = np.ceil(t_end / dt_host * (1 - 1e-9))
    worst = int(np.argmax(need))
    if need[worst] <= max_steps:
        return
    which = f" for trajectory {worst} (of {dt_host.size})" if dt_host.size > 1 else ""
    origin = ("the default step, 0.5 / (a sharpness estimate at the start)" if default
              else "the dt passed")
    raise ValueError(
        f"linflow: method {solver.name!r} takes fixed steps: dt = {dt_host[worst]:.3g}{which} ({origin}) "
        f"needs at least {int(need[worst]):,} steps to reach t_end = {t_end:.6g}, but max_steps = "
        f"{max_steps:,}. Pass max_steps >= {int(need[worst])}, a larger dt, a shorter t_end, or the "
        "adaptive method 'dopri5'."
    )


def _report_max_steps(traj, throw, max_steps, t_end):
    """Raise :class:`MaxStepsError` (``throw``) or warn :class:`MaxStepsWarning` if any trajectory ran out of steps."""
    status = np.asarray(traj.status).ravel()
    bad = np.nonzero(status == Status.MAX_STEPS)[0]
    if bad.size == 0:
        return
    first = int(bad[0])
    t_stop = float(np.asarray(to_numpy(traj.t_final)).ravel()[first])
    msg = (
        f"linflow: {bad.size} of {status.size} trajectories ran out of steps (status MAX_STEPS) "
        f"before t_end = {t_end:.6g} (first: trajectory {first}, at t = {t_stop:.6g} after "
        f"max_steps = {max_steps:,} steps). Their saved values after that time are NaN: "
        "Trajectory.saved marks the save points reached and t_final the time reached. "
        "Increase max_steps, loosen rtol, or pass a shorter t_end."
    )
    if throw:
        raise MaxStepsError(msg + " Pass throw=False to keep the run (with this warning); "
                            "the partial results are in the exception's .trajectory.", traj)
    warnings.warn(msg, MaxStepsWarning, stacklevel=4)


def _run(xp, batch, *args, finish=None, **kw):
    """The driver, with results (also a divergence's partial ones) finished and reshaped to the batch.

    ``finish(traj) -> traj`` post-processes the flat trajectory (GD: steps to flow time)
    on both paths, so the exception's ``.trajectory`` reads like a normal result.
    """
    finish = finish or (lambda traj: _unflatten(xp, traj, batch))
    try:
        traj = integrate_parallel(xp, *args, **kw)
    except DivergenceError as exc:
        if exc.trajectory is not None:
            exc.trajectory = finish(exc.trajectory)
        raise
    except MemoryError as exc:  # e.g. CuPy's OutOfMemoryError; still a MemoryError (sweeps halve)
        n = int(np.prod(batch)) if len(batch) else 1
        raise MemoryError(
            f"linflow: the run of {n} network(s) does not fit in memory ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Run fewer networks at a time (lf.sweep.run sizes and splits its "
            "batches itself), save fewer quantities or times (save=, diagnostics=, t_eval=), or "
            "use float32."
        ) from exc
    traj = finish(traj)
    _report_max_steps(traj, kw.get("throw", True), kw["max_steps"], kw["t_end"])
    return traj


def _save_times(t_eval, t_end, default_n):
    if t_eval is None:
        return np.linspace(0.0, t_end, default_n)
    try:
        ts = np.asarray(to_numpy(t_eval), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"linflow: t_eval must be a 1-D array of times; got {t_eval!r}.") from None
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"linflow: t_eval must be a non-empty 1-D array of times; got shape {ts.shape}.")
    if not np.all(np.isfinite(ts)) or np.any(ts < 0) or np.any(ts > t_end * (1 + 1e-12)):
        raise ValueError(f"linflow: t_eval must lie in [0, t_end = {t_end}]; got [{ts.min()}, {ts.max()}].")
    if np.any(np.diff(ts) < 0):
        raise ValueError("linflow: t_eval must be sorted in increasing order.")
    return np.minimum(ts, t_end)


def _sharpness_estimate(xp, y0, loss):
    r"""Per-trajectory estimate of :math:`\lambda_{\max}(\nabla^2 F)` along the flow (host, float64).

    The larger of (i) a bound at the start, :math:`K\sum_l\|P_l\|^2\|S_l\|^2` (the
    :math:`\mathcal T_W` part, :func:`~linflow.network.lambda_max_bound`) plus
    :math:`\|\nabla f\|\max_l\sum_{k\ne l}\prod_{j\ne l,k}\|W_j\|` (the part of the
    Hessian that is linear in the residual), and (ii) the sharpness at a balanced
    minimum, :math:`K\,L\,\sigma_1(W^*)^{2-2/L}` (course appendix *Numerical methods*, Integrators), where the flow ends.
    One transfer to the host at the start of a run.
    """
    K = loss.K or 1.0
    L = len(y0)
    lam_T = np.asarray(to_numpy(lambda_max_bound(y0)), dtype=np.float64) * K
    Wh = [np.asarray(to_numpy(W), dtype=np.float64) for W in y0]
    norms = np.stack([np.linalg.norm(W, ord=2, axis=(-2, -1)) for W in Wh], axis=-1)  # (B, L)
    prod = Wh[0]
    for W in Wh[1:]:
        prod = prod @ W
    G = np.asarray(to_numpy(loss.grad(xp.asarray(prod, dtype=y0[0].dtype, device=_device(y0[0])))),
                   dtype=np.float64)
    gnorm = np.linalg.norm(G.reshape(G.shape[0], -1), axis=-1)
    cross = np.zeros_like(gnorm)
    for l in range(L):
        row = np.zeros_like(gnorm)
        for k in range(L):
            if k != l:
                others = [j for j in range(L) if j not in (l, k)]
                row = row + (np.prod(norms[:, others], axis=-1) if others else 1.0)
        cross = np.maximum(cross, row)
    sharp = lam_T + gnorm * cross
    if loss.minimizer is not None and L > 1:
        Wstar = np.asarray(to_numpy(loss.minimizer), dtype=np.float64)
        s1 = np.linalg.norm(Wstar, ord=2, axis=(-2, -1))
        sharp = np.maximum(sharp, K * L * s1 ** (2 - 2 / L))
    return sharp


def _default_fixed_step(xp, y0, loss, t_end):
    """Default step of the Gauss methods, per trajectory (host): ``0.5 / sharpness``, at most ``t_end/20``.

    The stage iteration contracts with factor about ``h * sharpness / 2`` (at most 0.25
    here, as the estimate is an upper bound at the start), i.e. 10-25 iterations to
    round-off.  Per trajectory, so that no trajectory's step depends on which others
    share the batch.
    """
    sharp = _sharpness_estimate(xp, y0, loss)
    dt = np.minimum(np.where(sharp > 0, 0.5 / np.where(sharp > 0, sharp, 1.0), t_end), t_end / 20)
    return np.broadcast_to(dt, (y0[0].shape[0],))  # host; the caller checks the budget and moves it


def _initial_step(xp, y0, loss, solver):
    """Per-trajectory initial step (Hairer, Nørsett & Wanner II.4), one extra evaluation."""
    from .solvers import combine, sq_norm

    order = solver.error_order
    v0, f0 = field(xp, y0, loss)
    scale = tuple(solver.atol + solver.rtol * xp.abs(a) for a in y0)
    n = sum(math.prod(a.shape[1:]) for a in y0)
    d0 = xp.sqrt(sq_norm(xp, tuple(a / s for a, s in zip(y0, scale))) / n)
    d1 = xp.sqrt(sq_norm(xp, tuple(a / s for a, s in zip(f0, scale))) / n)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = xp.where(small, xp.full_like(d0, 1e-6), 0.01 * d0 / xp.where(d1 > 0, d1, xp.ones_like(d1)))
    y1 = combine(y0, [f0], [1.0], h0)
    _, f1 = field(xp, y1, loss)
    d2 = xp.sqrt(sq_norm(xp, tuple((b - a) / s for a, b, s in zip(f0, f1, scale))) / n) / h0
    dmax = xp.maximum(d1, d2)
    h1 = xp.where(
        dmax <= 1e-15,
        xp.maximum(xp.full_like(h0, 1e-6), h0 * 1e-3),
        (0.01 / xp.where(dmax > 0, dmax, xp.ones_like(dmax))) ** (1.0 / (order + 1)),
    )
    return xp.minimum(100 * h0, h1)


class _Euler:
    """Gradient descent as a discrete map, run by the same driver in units of steps."""

    name = "gd"
    adaptive = False

    def __init__(self, eta):
        self.eta = eta
        # a per-network step is carried in the driver's state, so compaction keeps it aligned
        self.param = eta if hasattr(eta, "shape") else None

    def step(self, xp, y, value, f, h, loss, param=None):
        c = h * (self.eta if param is None else param)  # h is 1 for active trajectories, 0 otherwise
        y1 = tuple(a + bcast(c, a) * k for a, k in zip(y, f))
        v1, f1 = field(xp, y1, loss)
        no = xp.zeros(h.shape, dtype=xp.bool, device=_device(h))
        return StepResult(y1, v1, f1, evaluations=1, failed=no)


def _device(a):
    import array_api_compat

    return array_api_compat.device(a)


def gradient_descent(
    Ws,
    loss,
    step,
    n_steps,
    *,
    save_every=None,
    loss_tol=None,
    save=("loss",),
    diagnostics=(),
    throw=True,
    progress=None,
    check_every=16,
):
    r"""Gradient descent :math:`W_l \leftarrow W_l - \eta\,\nabla_{W_l}\mathcal L`, ``n_steps`` times.

    GD with step :math:`\eta` is the explicit Euler method for the flow; after
    ``k`` steps it sits at flow time :math:`t = k\eta`, which is what ``Trajectory.t``
    reports.  It does not conserve the imbalance: one step changes it by
    :math:`D_l^+ - D_l = \eta^2(g_l^\top g_l - g_{l+1}g_{l+1}^\top)` (course appendix *Numerical methods*, Integrators).

    Parameters
    ----------
    Ws, loss
        As for :func:`gradient_flow`.
    step : float or array of shape ``batch``
        Step size :math:`\eta` (one per network if an array; it must broadcast to the
        batch shape without enlarging it).
    n_steps : int
        At least 1; a fractional value (2.7) is refused, not truncated.
    save_every : int, optional
        Save every this many steps, at least 1 (default: about 200 saves in all).
    loss_tol, save, diagnostics, throw, progress, check_every
        As for :func:`gradient_flow`.  A step beyond the stability limit makes the
        loss explode; the run then stops with :class:`DivergenceError`, which reports
        the step and an estimate of the stable step ``2/lambda_max``.
    """
    xp, Ws = _check_inputs(Ws, loss)
    n_steps = integer("n_steps", n_steps, minimum=1)
    if n_steps > MAX_GD_STEPS:
        raise ValueError(f"linflow: n_steps must be at most {MAX_GD_STEPS:.3g} (steps are counted exactly in "
                         f"float64 up to 2**53); got {n_steps!r}.")
    check_every = min(integer("check_every", check_every, minimum=1), n_steps + 1)
    throw = boolean("throw", throw)
    if save_every is not None:
        save_every = integer("save_every", save_every, minimum=1)
    loss_tol = None if loss_tol is None else nonnegative("loss_tol", loss_tol)
    y0, floss, batch = _flatten(xp, Ws, loss)
    B = y0[0].shape[0]
    if hasattr(step, "shape"):
        _check_step_shape(step, batch)
        eta = xp.reshape(xp.broadcast_to(xp.asarray(step, dtype=y0[0].dtype, device=_device(y0[0])), batch), (B,))
        eta_host = to_numpy(eta)
        if not np.all((eta_host > 0) & np.isfinite(eta_host)):
            raise ValueError("linflow: every step size must be positive and finite.")
    else:
        eta = positive("step", step)
        eta_host = eta
    every = save_every if save_every is not None else max(1, n_steps // 200)
    if n_steps // every > MAX_SAVES:
        raise ValueError(f"linflow: n_steps = {n_steps} with save_every = {every} asks for more than "
                         f"{MAX_SAVES:.3g} saves; save less often (a larger save_every).")
    ks = np.unique(np.append(np.arange(0, n_steps + 1, every), n_steps)).astype(np.float64)

    def finish(traj):  # the driver counts steps; report flow time t = k * eta
        traj.stats["steps_taken"] = traj.stats["steps"]
        traj.t_final = traj.t_final * eta
        if hasattr(step, "shape"):
            traj.t = xp.asarray(ks[:, None] * np.reshape(eta_host, (1, -1)), dtype=y0[0].dtype,
                                device=_device(y0[0]))
        else:
            traj.t = traj.t * eta
        traj.steps = ks.astype(np.int64)
        traj = _unflatten(xp, traj, batch)
        if hasattr(step, "shape"):
            traj.t = xp.reshape(traj.t, (len(ks),) + batch)
        return traj

    return _run(
        xp, batch, y0, floss, _Euler(eta), t_end=float(n_steps), dt0=1.0, ts=ks,
        savers=_savers(loss, save, diagnostics), loss_tol=loss_tol,
        max_steps=n_steps + 1, check_every=check_every, throw=throw, progress=progress,
        finish=finish,
    )


def _check_step_shape(step, batch):
    """A per-network step array must broadcast to the batch shape (and not enlarge it)."""
    shape = tuple(step.shape)
    try:
        ok = tuple(np.broadcast_shapes(shape, batch)) == tuple(batch)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"linflow: step must be a number or an array of step sizes that broadcasts to the batch "
            f"shape {tuple(batch)} (one per network); got shape {shape}."
        )
