"""Two layers, lambda-balanced: the matrix Riccati solution (Fukumizu 1998)."""
from __future__ import annotations

from .._validate import check_matrix, check_scale, check_weights
from ..backend import namespace
from ._common import _device, _on


# --- lambda-balanced Riccati --------------------------------------------------------------


def riccati(Ws, Y, t):
    r"""Product :math:`W(t)` of a :math:`\lambda`-balanced two-layer net, exactly (course appendix *Numerical methods*, Closed-form solutions).

    With :math:`Q = [W_1;\,W_2^\top]` and
    :math:`F = \begin{bmatrix}\tfrac\lambda2 I_n & Y\\ Y^\top & -\tfrac\lambda2 I_m\end{bmatrix}`,
    the flow is the matrix Riccati equation :math:`\dot Q = FQ - \tfrac12 QQ^\top Q`, solved by

    .. math:: QQ^\top(t) = e^{Ft}Q_0\Big[I_h + Q_0^\top\Big(\int_0^t e^{2Fs}ds\Big)Q_0\Big]^{-1}Q_0^\top e^{Ft}

    (Fukumizu 1998; Braun et al. 2022; Dominé et al. 2025), and :math:`W(t)` is its
    top-right block.  Only ``eigh`` of the symmetric :math:`F` and one small ``qr`` per
    time are used (array API, no ``expm``, nothing large inverted): in the eigenbasis of
    :math:`F` the factor :math:`Q(t)` (up to an orthogonal factor) is a row scaling of the
    ``Q`` factor of :math:`[G^{1/2}Z;\,I]`, whose rows are sorted by growth, so the
    evaluation stays well conditioned at every ``t`` up to convergence and beyond (the
    error stays near 1e-12 on a dense grid, where the asymptotic rate of the Riccati solution is measured;
    tested against :func:`linflow.gradient_flow` at tight tolerance).

    Parameters
    ----------
    Ws : (W1, W2), shapes (n, h) and (h, m), with :math:`D_1 = \lambda I_h`
    Y : array (n, m)
    t : float or array (T,)

    Returns
    -------
    array ``t.shape + (n, m)``.

    Raises
    ------
    ValueError
        :math:`D_1` is not a multiple of the identity (relative deviation above 1e-6).
    """
    xp, Ws = check_weights(Ws, min_layers=2)
    if len(Ws) != 2 or Ws[0].ndim != 2:
        raise ValueError(f"linflow: riccati solves two-layer networks (W1, W2), unbatched; got "
                         f"{len(Ws)} layers of shapes {[tuple(W.shape) for W in Ws]}.")
    W1, W2 = Ws
    xp = namespace(W1, W2, check_matrix(Y, "Y"))
    for name, M in (("Ws[0]", W1), ("Ws[1]", W2), ("Y", Y)):  # D_1 and F hold their squares
        check_scale(xp, (M,), name)
    n, h = W1.shape
    m = W2.shape[1]
    if tuple(Y.shape) != (n, m):
        raise ValueError(f"linflow: riccati needs Y of the product's shape ({n}, {m}); got {tuple(Y.shape)}.")
    dev = _device(W1)
    D = xp.matrix_transpose(W1) @ W1 - W2 @ xp.matrix_transpose(W2)
    lam = xp.sum(xp.linalg.diagonal(D)) / h
    Ih = xp.eye(h, dtype=W1.dtype, device=dev)
    dev_rel = float(xp.max(xp.abs(D - lam * Ih))) / max(1.0, float(xp.max(xp.abs(D))))
    if dev_rel > 1e-6:
        raise ValueError(
            f"linflow: riccati needs a lambda-balanced start, D_1 = lambda I; D_1 deviates from "
            f"{float(lam):.4g} I by {dev_rel:.2g} (relative)."
        )
    In = xp.eye(n, dtype=W1.dtype, device=dev)
    Im = xp.eye(m, dtype=W1.dtype, device=dev)
    top = xp.concat([lam / 2 * In, Y], axis=1)
    bottom = xp.concat([xp.matrix_transpose(Y), -lam / 2 * Im], axis=1)
    F = xp.concat([top, bottom], axis=0)
    Q0 = xp.concat([W1, xp.matrix_transpose(W2)], axis=0)  # (n+m, h)
    ev, E = xp.linalg.eigh(F)
    ev, E = xp.flip(ev), xp.flip(E, axis=1)  # decreasing: the fastest-growing rows first
    Z = xp.matrix_transpose(E) @ Q0  # (n+m, h)
    t_arr = _on(W1, t)
    if not (bool(xp.all(xp.isfinite(t_arr))) and bool(xp.all(t_arr >= 0))):
        raise ValueError(f"linflow: riccati needs finite times t >= 0; got {t_arr!r}.")
    tt = t_arr[..., None]  # (..., n+m)
    # In the eigenbasis of F, with G = diag(int_0^t e^{2 ev s} ds) = diag(e^{2 max(ev,0) t} g),
    # g = -expm1(-2|ev|t)/(2|ev|) (-> t as ev -> 0), and K = [G^{1/2} Z; I] = Qk Rk:
    #   QQ^T = E e^{ev t} Z (I + Z^T G Z)^{-1} Z^T e^{ev t} E^T = (E V)(E V)^T,
    #   V = e^{ev t} Z Rk^{-1} = Dg Qk[:n+m],  Dg = e^{min(ev,0) t} / sqrt(g)  (bounded for t > 0).
    # Qk Qk^T (the projection on K's columns) does not change when K's columns are recombined,
    # so K is replaced by K C S^{-1}: C orthogonal makes Z C zero above its diagonal (column j
    # then grows like e^{ev_j t}), S scales each column to its largest entry (in log space, so
    # no exponential overflows or underflows at any t).  The rows stay sorted by decreasing
    # growth, so Householder QR keeps each row's relative accuracy, and V = Dg Qk inverts
    # nothing (a factor Rk^{-1} would cancel terms of size e^{(ev_1 - ev_h) t}).
    # For small t (|ev| t < 1: no grading) V = e^{ev t} Z Rk^{-1} by substitution instead.
    C, _ = xp.linalg.qr(xp.matrix_transpose(Z[:h, :]))
    ZC = Z @ C  # zero above the diagonal (to round-off)
    a = xp.abs(ev) * xp.ones_like(tt)
    small = a * xp.abs(tt) < 1e-8
    a_safe = xp.where(small, xp.ones_like(a), a)
    # (the series branch is evaluated for every entry: a * tt only where it is taken, no overflow at huge t)
    g = xp.where(small, tt * (1.0 - xp.where(small, a * tt, xp.zeros_like(a))),
                 -xp.expm1(-2.0 * a_safe * tt) / (2.0 * a_safe))
    zero = xp.zeros_like(a)
    absZC = xp.abs(ZC)
    nz = absZC > 0
    logZC = xp.log(xp.where(nz, absZC, xp.ones_like(absZC)))
    tiny = -float(xp.finfo(W1.dtype).max)
    grow = (xp.maximum(ev * tt, zero))[..., :, None] + logZC  # (..., n+m, h) log |G^{1/2}/sqrt(g) ZC|
    grow = xp.where(nz, grow, tiny * xp.ones_like(grow))
    logs = xp.max(grow, axis=-2, keepdims=True)  # (..., 1, h)
    logs = xp.where(logs == tiny, xp.zeros_like(logs), logs)  # an all-zero column: no scaling
    Gz = xp.sqrt(g)[..., :, None] * xp.sign(ZC) * xp.exp(xp.minimum(grow - logs, zero[..., :1, None]))
    Gz = xp.where(nz, Gz, xp.zeros_like(Gz))
    Iz = C * xp.exp(-logs)  # (..., h, h)
    Qk, Rk = xp.linalg.qr(xp.concat([Gz, Iz], axis=-2))
    g_safe = xp.where(g > 0, g, xp.ones_like(g))
    V_graded = (xp.exp(xp.minimum(ev * tt, zero)) / xp.sqrt(g_safe))[..., :, None] * Qk[..., : n + m, :]
    early = xp.max(a * xp.abs(tt), axis=-1) < 1.0
    Rk_early = xp.where(early[..., None, None], Rk, Ih)
    Yt = xp.exp(xp.where(early[..., None], ev * tt, zero))[..., :, None] * ZC * xp.exp(
        xp.where(early[..., None, None], -logs, zero[..., :1, None]))
    V_early = _solve_upper_right(xp, Rk_early, Yt)
    V = xp.where(early[..., None, None], V_early, V_graded)
    EV = E @ V  # (..., n+m, h): Q(t) up to an orthogonal factor on the right
    QQ = EV[..., :n, :] @ xp.matrix_transpose(EV[..., n:, :])
    return xp.reshape(QQ, tuple(t_arr.shape) + (n, m))


def _solve_upper_right(xp, R, B):
    """``B R^{-1}`` for upper-triangular ``R`` (batched), by substitution over its columns.

    A general ``solve`` pivots across the rows of a graded triangular factor and loses
    its accuracy; substitution keeps the backward error relative to each entry.  (The
    array API has no triangular solve; ``h`` is small here.)
    """
    h = R.shape[-1]
    cols = []
    for j in range(h):
        acc = B[..., :, j]
        for k in range(j):
            acc = acc - cols[k] * R[..., None, k, j]
        cols.append(acc / R[..., None, j, j])
    return xp.stack(cols, axis=-1)
