"""The result of a run: a :class:`Trajectory` record with named fields and per-trajectory status."""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from ..backend import to_numpy

__all__ = ["Status", "Trajectory", "DivergenceError", "MaxStepsError", "MaxStepsWarning"]


class Status(enum.IntEnum):
    """Why a trajectory stopped.  Each member's ``message`` says what to do."""

    RUNNING = 0
    DONE = 1  #: reached t_end (or n_steps)
    CONVERGED = 2  #: the loss fell below loss_tol
    DIVERGED = 3  #: non-finite values, or a step beyond the stability limit
    MAX_STEPS = 4  #: the step budget ran out

    @property
    def message(self):
        return {
            Status.RUNNING: "still running (internal state)",
            Status.DONE: "reached the end of the time span",
            Status.CONVERGED: "the loss fell below loss_tol",
            Status.DIVERGED: (
                "diverged: the loss or the weights became non-finite or exploded. Reduce the "
                "step size (below 2/lambda_max) or use the adaptive method 'dopri5'."
            ),
            Status.MAX_STEPS: "the maximum number of steps was reached; increase max_steps.",
        }[self]


@dataclasses.dataclass
class Trajectory:
    """A batch of gradient-flow (or gradient-descent) trajectories.

    Attributes
    ----------
    t : array, shape ``(S,)`` (or ``(S, *batch)`` for GD with per-network steps)
        Save times, in flow time (``k * eta`` for gradient descent).
    loss : array, shape ``(S, *batch)``
        Loss at the save points.  After a trajectory stops early (``loss_tol``,
        divergence, the step budget) its later entries were never computed and hold
        NaN; :attr:`saved` marks the entries that were reached, ``t_final`` the time
        each trajectory reached, and ``status`` why it stopped.  A run in which any
        trajectory ends :attr:`Status.MAX_STEPS` raises :class:`MaxStepsError`
        (``throw=True``) or warns with :class:`MaxStepsWarning`.
    product : array ``(S, *batch, n, m)`` or None
        The product ``W_1...W_L`` at the save points (if saved).
    diagnostics : dict of str -> array ``(S, *batch, ...)``
        Requested diagnostics (e.g. ``"imbalance_1"``, ``"sigma_min"``).
    weights : tuple of arrays
        Final weights ``(W_1, ..., W_L)``, shapes as given.
    status : numpy array of int, shape ``batch``
        :class:`Status` codes.
    t_final : array, shape ``batch``
        Time at which each trajectory stopped.
    stats : dict of str -> numpy array, shape ``batch``
        ``steps`` (accepted), ``rejected``, ``evaluations`` (gradient evaluations),
        ``saves`` (how many save points were reached and written), and
        ``fixed_point_iterations`` for the Gauss methods.
    method : str
    """

    t: Any
    loss: Any
    product: Any
    diagnostics: dict
    weights: tuple
    status: Any
    t_final: Any
    stats: dict
    method: str = ""
    steps: Any = None  #: for gradient descent: the step index k of each save point

    @property
    def ok(self):
        """True where a trajectory finished normally (DONE or CONVERGED)."""
        s = np.asarray(self.status)
        return (s == Status.DONE) | (s == Status.CONVERGED)

    @property
    def saved(self):
        """Boolean NumPy mask of shape ``(S, *batch)``: True where a save point was reached and written.

        False entries (NaN in ``loss``, ``product`` and the diagnostics) lie after the
        time ``t_final`` at which a trajectory stopped: the loss fell below ``loss_tol``,
        it diverged, or the step budget ran out (status MAX_STEPS).
        """
        S = int(self.t.shape[0])
        if "saves" not in self.stats:  # a record built by hand: the save times up to t_final
            t = np.asarray(to_numpy(self.t), dtype=np.float64)
            tf = np.asarray(to_numpy(self.t_final), dtype=np.float64)
            return (t.reshape((S,) + (1,) * tf.ndim) if t.ndim == 1 else t) <= tf[None, ...]
        n = np.asarray(self.stats["saves"])
        return np.arange(S).reshape((S,) + (1,) * n.ndim) < n[None, ...]

    @property
    def batch_shape(self):
        return tuple(np.shape(self.status))

    def to_numpy(self):
        """A copy of this trajectory with every array on the host as NumPy."""
        return dataclasses.replace(
            self,
            t=to_numpy(self.t),
            loss=to_numpy(self.loss),
            product=to_numpy(self.product),
            diagnostics=to_numpy(self.diagnostics),
            weights=to_numpy(self.weights),
            t_final=to_numpy(self.t_final),
        )

    def __repr__(self):
        s = np.asarray(self.status).ravel()
        counts = {Status(c).name.lower(): int(np.sum(s == c)) for c in np.unique(s)}
        steps = np.asarray(self.stats.get("steps", [0]))
        return (
            f"Trajectory(method={self.method!r}, batch={self.batch_shape}, saves={len(self.t)}, "
            f"status={counts}, steps={int(steps.min()) if steps.size else 0}.."
            f"{int(steps.max()) if steps.size else 0})"
        )


class MaxStepsWarning(RuntimeWarning):
    """Some trajectories ran out of steps (status MAX_STEPS) before ``t_end``; see :attr:`Trajectory.saved`."""


class MaxStepsError(RuntimeError):
    """Some trajectories ran out of steps before ``t_end`` (``throw=True``).

    ``trajectory`` holds the whole run; :attr:`Trajectory.saved` marks the save
    points each trajectory reached (later ones are NaN).
    """

    def __init__(self, message, trajectory=None):
        super().__init__(message)
        self.trajectory = trajectory


class DivergenceError(FloatingPointError):
    """A run diverged.  ``trajectory`` holds everything computed so far (nothing is lost)."""

    def __init__(self, message, trajectory=None):
        super().__init__(message)
        self.trajectory = trajectory
