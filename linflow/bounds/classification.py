r"""Loss curves from a rate: Grönwall (7) and Theorem 4's O(1/t) (Min, Vidal & Mallada 2023, §2, §4.4).

Any uniform bound :math:`\lambda_{\min}(\mathcal T_{\{W_l(t)\}})\ge\alpha` turns into a loss bound:

* under A1 (PL, :math:`\|\nabla f\|^2\ge\gamma(f-f^*)`), eq. (7):
  :math:`\mathcal L(t)-\mathcal L^*\le e^{-\alpha\gamma t}(\mathcal L(0)-\mathcal L^*)`;
* under A1′ (:math:`\|\nabla f\|\ge\gamma(f-f^*)`, e.g. the exponential loss on separable
  data with γ the margin, Claim of App. C), Theorem 4, eq. (21):
  :math:`\mathcal L(t)-\mathcal L^*\le\dfrac{\mathcal L(0)-\mathcal L^*}{(\mathcal L(0)-\mathcal L^*)\alpha\gamma^2t+1}`.

For classification only the imbalance-only rates apply (:math:`\underline\Delta`, :math:`\Delta^*`,
:math:`\prod\tilde d`): the margin terms need A2, and :math:`W^*` is at infinity.
"""
from __future__ import annotations

import numpy as np

from .._validate import positive, real, real_array
from ..backend import asarray, namespace, to_numpy

__all__ = ["loss_curve", "KINDS"]

KINDS = ("exp", "inverse")


def loss_curve(t, L0, alpha, gamma, L_star=0.0, kind="exp"):
    r"""The loss bound at times ``t`` for rate ``alpha`` (eq. 7, or Theorem 4 with ``kind="inverse"``).

    Parameters
    ----------
    t : array, shape ``(S,)``
        Times (flow time; ``k * eta`` for gradient descent).
    L0 : float or array, shape ``batch``
        Initial loss :math:`\mathcal L(0)`.
    alpha : float or array, shape ``batch``
        A uniform lower bound on :math:`\lambda_{\min}(\mathcal T)`.
    gamma : float
        The constant of A1 (``kind="exp"``) or A1′ (``kind="inverse"``); ``loss.gamma``.
    L_star : float or array
        :math:`\mathcal L^* = f^*`.
    kind : {"exp", "inverse"}
        ``"exp"``: :math:`\mathcal L^* + e^{-\gamma\alpha t}(\mathcal L_0-\mathcal L^*)`;
        ``"inverse"``: :math:`\mathcal L^* + (\mathcal L_0-\mathcal L^*)/((\mathcal L_0-\mathcal L^*)\alpha\gamma^2t+1)`.

    Returns
    -------
    array of shape ``(S, *batch)``, laid out like ``Trajectory.loss``, in the namespace
    of the array inputs (NumPy if all are numbers).

    Examples
    --------
    >>> import numpy as np, linflow as lf
    >>> lf.bounds.loss_curve(np.array([0.0, 1.0]), 2.0, 0.5, 2.0).tolist()  # 2 e^{-t}
    [2.0, 0.7357588823428847]
    """
    if kind not in KINDS:
        raise ValueError(f"linflow: kind must be one of {KINDS}; got {kind!r}.")
    arrays = [a for a in (t, L0, alpha, L_star) if hasattr(a, "shape") and not isinstance(a, np.ndarray)]
    xp = namespace(*arrays) if arrays else np
    ref = arrays[0] if arrays else None

    def arr(a):
        if hasattr(a, "shape") and not isinstance(a, np.ndarray):
            return a
        a = np.asarray(a, dtype=np.float64)
        return a if ref is None else asarray(a, like=ref)

    gamma = positive("gamma", gamma)
    t, L0, alpha, L_star = (arr(real_array(a, name, ndim=0))
                            for a, name in ((t, "t"), (L0, "L0"), (alpha, "alpha"), (L_star, "L_star")))
    nb = max(L0.ndim, alpha.ndim, L_star.ndim)
    if t.ndim > 1:
        raise ValueError(f"linflow: t must be a 1-D array of times; got shape {tuple(t.shape)}.")
    for a, name in ((t, "t"), (alpha, "alpha"), (L0 - L_star, "L0 - L_star")):
        if not bool(xp.all(a >= 0)):
            raise ValueError(f"linflow: loss_curve needs {name} >= 0 (a rate bound, from a loss above its "
                             f"optimum, at times t >= 0); got {name} down to {float(to_numpy(xp.min(a))):.3g}.")
    t = xp.reshape(t, tuple(t.shape) + (1,) * nb)
    gap = L0 - L_star
    # exp(-huge) = 0 and gap / inf = 0 are the limits; at t = 0 the bound is L0 itself
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if kind == "exp":
            out = L_star + xp.exp(-(gamma * alpha) * t) * gap
        else:
            out = L_star + gap / (gap * alpha * (gamma * gamma) * t + 1.0)
        out = xp.where(t > 0, out, L_star + gap + 0 * out)
    if not bool(xp.all(xp.isfinite(out))):
        raise ValueError("linflow: loss_curve overflows: L0 - L_star is too large for the dtype.")
    return out


def observed_rate(t, loss, *, L_star=0.0, gamma=1.0):
    r"""The average exponential rate of a run, to compare with a bound ``alpha``.

    .. math:: \hat\alpha = -\frac{\log\big((\mathcal L(t_S) - \mathcal L^*)/(\mathcal L(t_0) - \mathcal L^*)\big)}{\gamma\,(t_S - t_0)},

    so that eq. (7), :math:`\mathcal L(t) - \mathcal L^* \le e^{-\alpha\gamma t}(\mathcal L(0) - \mathcal L^*)`,
    holding at the two ends is exactly :math:`\hat\alpha \ge \alpha`.

    Parameters
    ----------
    t : array, shape ``(S,)``
        Save times (``Trajectory.t``).
    loss : array, shape ``(S, ...)``
        Loss at the save times (``Trajectory.loss``); batched over trailing axes.
    L_star : float
        Optimal value :math:`\mathcal L^* = f^*`.
    gamma : float
        PL constant (1 gives the rate of the loss gap itself).

    Returns
    -------
    numpy array of shape ``loss.shape[1:]`` (a float for one run); ``+inf`` where the final
    gap is exactly 0.

    Raises
    ------
    ValueError
        A time span that is not positive, a non-finite loss at either end (a run that
        stopped early: see ``Trajectory.saved``), or a negative gap.
    """
    t = np.asarray(to_numpy(t), dtype=np.float64)
    gap = np.asarray(to_numpy(loss), dtype=np.float64) - real("L_star", L_star)
    gamma = positive("gamma", gamma)
    if t.ndim != 1 or t.size < 2 or gap.ndim < 1 or gap.shape[0] != t.size:
        raise ValueError(
            f"linflow: observed_rate needs save times t of shape (S,), S >= 2, and loss of shape "
            f"(S, ...); got t of shape {t.shape} and loss of shape {gap.shape}."
        )
    span = t[-1] - t[0]
    if not (np.isfinite(span) and span > 0):
        raise ValueError(
            f"linflow: observed_rate needs a positive time span t[-1] - t[0]; got t[0] = {t[0]}, "
            f"t[-1] = {t[-1]}."
        )
    ends = gap[[0, -1]]
    if not np.all(np.isfinite(ends)):
        raise ValueError(
            "linflow: observed_rate needs finite losses at both ends; got NaN or inf (a run that "
            "stopped early leaves NaN after t_final: pass the saved points, Trajectory.saved)."
        )
    if np.any(ends < 0) or np.any(gap[0] == 0):
        raise ValueError(
            f"linflow: observed_rate needs loss - L_star > 0 at the start and >= 0 at the end; "
            f"got gaps from {float(np.min(gap[0])):.3g} to {float(np.min(gap[-1])):.3g} (is L_star = "
            f"{L_star!r} the optimal value?)."
        )
    with np.errstate(divide="ignore"):  # an end gap of exactly 0: rate +inf (documented)
        out = -np.log(gap[-1] / gap[0]) / (gamma * span)
    return float(out) if np.ndim(out) == 0 else out
