r"""Converse of :math:`r`-interlacing (Min, Vidal & Mallada 2023, Lemmas G.4, G.7, G.8).

For symmetric :math:`A, B` of order :math:`k`, :math:`A\succeq_rB` (Definition 4) means
:math:`\lambda_{i+r}(A)\le\lambda_i(B)\le\lambda_i(A)` for all :math:`i`.  Weyl's
inequalities give it when :math:`A - B\succeq 0` has rank at most :math:`r` (Lemma G.3);
:func:`interlacing_converse` builds, conversely, a rank-:math:`r` update realizing a given
:math:`A\succeq_rB`, by induction on :math:`r`: :math:`A\succeq_1(A\wedge_rB)\succeq_{r-1}B`
(Lemma G.8), each step the explicit rank-one converse of Cauchy interlacing.  The proofs
are in the course's chapter *Three layers* (the converse lemmas before the attainment
proposition).

All computations run on the host in float64 (the construction is sequential: one
eigendecomposition per step); the results come back in the input's namespace and dtype.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_matrix, check_power, integer
from ..backend import namespace, to_numpy
from ._common import host_eps, like, wedge_values

__all__ = ["interlacing_converse"]


def rank_one_converse(alpha, mu, tol):
    r"""``y`` with spectrum of :math:`\mathrm{diag}(\alpha) - yy^\top` equal to ``mu``.

    ``alpha`` and ``mu`` are decreasing and interlace,
    :math:`\alpha_1\ge\mu_1\ge\alpha_2\ge\cdots\ge\alpha_k\ge\mu_k`.  A run of equal
    :math:`\alpha_i = \dots = \alpha_{i+s}` (within ``tol``) forces
    :math:`\mu_i = \dots = \mu_{i+s-1} = \alpha_i`: ``y`` vanishes on all but the first
    index of the run, which is paired with :math:`\mu_{i+s}`.  On the distinct values
    :math:`a_t` (paired with :math:`c_t`),
    :math:`y_t^2 = (a_t - c_t)\prod_{j\ne t}(a_t - c_j)/(a_t - a_j)\ge 0`, each factor of
    the product in :math:`[0, 1]` or :math:`\ge 1` (no cancellation).
    """
    k = alpha.shape[0]
    y = np.zeros(k)
    keep = [0]
    for i in range(1, k):
        if alpha[keep[-1]] - alpha[i] > tol:
            keep.append(i)
    ends = keep[1:] + [k]
    a = alpha[keep]
    c = np.array([mu[e - 1] for e in ends])
    for t, i in enumerate(keep):
        v = a[t] - c[t]
        for j in range(a.shape[0]):
            if j != t:
                v *= (a[t] - c[j]) / (a[t] - a[j])
        y[i] = np.sqrt(max(v, 0.0))
    return y


def converse_diag(alpha, beta, r, tol):
    r"""``Z`` (``r x k``), orthogonal ``V``: :math:`\mathrm{diag}(\alpha) - Z^\top Z = V\mathrm{diag}(\beta)V^\top`.

    ``alpha``, ``beta`` decreasing with :math:`\mathrm{diag}(\alpha)\succeq_r\mathrm{diag}(\beta)`.
    The last row ``y`` of ``Z`` satisfies
    :math:`\lambda(\mathrm{diag}(\alpha) - yy^\top) = \lambda(\mathrm{diag}(\alpha)\wedge_r\mathrm{diag}(\beta))`
    (the vector that makes Lemma G.6 an equality, Lemma G.7).  For :math:`r > k` the
    condition is :math:`\beta\le\alpha` and ``Z`` is :math:`\mathrm{diag}(\alpha-\beta)^{1/2}`
    above :math:`r - k` zero rows (its last row is 0, and the wedge is :math:`A` itself).
    """
    k = alpha.shape[0]
    if r > k:
        Z = np.zeros((r, k))
        Z[:k] = np.diag(np.sqrt(np.maximum(alpha - beta, 0.0)))
        return Z, np.eye(k)
    return _step(alpha, beta, r, tol)


def _step(alpha, beta, r, tol):
    mu = wedge_values(np, alpha, beta, r)
    y = rank_one_converse(alpha, mu, tol)
    _, Q = np.linalg.eigh(np.diag(alpha) - np.outer(y, y))
    Q = Q[:, ::-1]  # eigenvectors for mu_1 >= mu_2 >= ...
    if r == 1:
        return y[None, :], Q
    Z2, V2 = converse_diag(mu, beta, r - 1, tol)
    return np.vstack([Z2 @ Q.T, y[None, :]]), Q @ V2


#: the most entries one returned factor may have (a larger request is refused, not allocated)
MAX_ENTRIES = 2 ** 27


def check_size(shape, what):
    """Refuse a result of more than :data:`MAX_ENTRIES` entries with a clear error."""
    size = math.prod(int(s) for s in shape)
    if size > MAX_ENTRIES:
        raise ValueError(f"linflow: {what} would have shape {tuple(shape)}, more than {MAX_ENTRIES} entries; "
                         "use smaller dimensions.")


def host_spectrum(S, name, tol):
    """Decreasing eigenvalues and eigenvectors of a host matrix; refuses an asymmetric one."""
    if np.max(np.abs(S - S.T)) > tol:
        raise ValueError(f"linflow: {name} must be symmetric; got max |{name} - {name}^T| = "
                         f"{np.max(np.abs(S - S.T)):.3g}.")
    w, U = np.linalg.eigh(0.5 * (S + S.T))
    return w[::-1], U[:, ::-1]


def host_tolerance(dtype, *mats):
    """Absolute tolerance for interlacing tests: ``1e4 eps(dtype) max(1, max |entries|) k``."""
    eps = host_eps(dtype)
    peak = max([1.0] + [float(np.max(np.abs(M))) for M in mats])
    return 1e4 * eps * peak * max(M.shape[-1] for M in mats)


def check_interlacing(alpha, beta, r, tol, what):
    r"""Refuse unless :math:`\lambda_{i+r}(A)\le\lambda_i(B)\le\lambda_i(A)` within ``tol``; clip inside."""
    k = alpha.shape[0]
    upper = alpha
    lower = np.concatenate([alpha[r:], np.full(min(r, k), -np.inf)])
    bad = np.flatnonzero((beta > upper + tol) | (beta < lower - tol))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"linflow: {what} (Definition 4: lambda_(i+r)(A) <= lambda_i(B) <= lambda_i(A), r = {r}); "
            f"at i = {i + 1}: lambda_i(B) = {beta[i]:.6g}, lambda_i(A) = {alpha[i]:.6g}, "
            f"lambda_(i+r)(A) = {lower[i]:.6g}.")
    return np.clip(beta, lower, upper)


def interlacing_converse(A, B, r):
    r"""Converse of :math:`r`-interlacing (Lemmas G.4 and G.7 of the paper).

    If :math:`A\succeq_rB` (Definition 4), returns ``Z`` of shape ``(r, k)`` and an
    orthogonal ``V`` with

    .. math::
        A - Z^\top Z = VBV^\top ,

    such that the last row :math:`y^\top` of ``Z`` gives
    :math:`\lambda(A - yy^\top) = \lambda(A\wedge_rB)` (Definition 1).  When moreover
    :math:`A\succeq 0` and :math:`r\le k`, both inequalities of Lemma G.6 are equalities
    for this ``Z`` (Lemma G.7), with :math:`e_r` a common eigenvector of :math:`ZZ^\top`
    and :math:`ZAZ^\top` for their smallest eigenvalues.  Construction: induction on
    :math:`r` through :math:`A\succeq_1(A\wedge_rB)\succeq_{r-1}B` (Lemma G.8), each step
    the rank-one converse of Cauchy interlacing.  Cost: ``r`` eigendecompositions of order
    ``k`` (none when :math:`r > k`).

    Parameters
    ----------
    A, B : arrays ``(..., k, k)``, symmetric, of one namespace and dtype
    r : int >= 1

    Returns
    -------
    (Z, V) : arrays ``(..., r, k)`` and ``(..., k, k)`` of the input's namespace and dtype.

    Raises
    ------
    ValueError
        ``A`` or ``B`` not square, of different orders, not symmetric, or
        :math:`A\not\succeq_rB` (beyond round-off); the message names the first failing index.
    """
    namespace(check_matrix(A, "A"), check_matrix(B, "B"))
    r = integer("r", r, minimum=1)
    if A.shape[-1] != A.shape[-2] or B.shape != A.shape:
        raise ValueError(f"linflow: interlacing_converse needs square A and B of one shape; "
                         f"got {tuple(A.shape)} and {tuple(B.shape)}.")
    check_power(A, "A", 2)
    check_power(B, "B", 2)
    check_size(tuple(A.shape[:-2]) + (r, A.shape[-1]), "Z (r x k)")
    a_host = np.asarray(to_numpy(A), dtype=np.float64)
    b_host = np.asarray(to_numpy(B), dtype=np.float64)
    k = A.shape[-1]
    batch = tuple(A.shape[:-2])
    Zs, Vs = np.zeros(batch + (r, k)), np.zeros(batch + (k, k))
    for idx in np.ndindex(*batch):
        tol = host_tolerance(A.dtype, a_host[idx], b_host[idx])
        alpha, P = host_spectrum(a_host[idx], "A", tol)
        beta, U = host_spectrum(b_host[idx], "B", tol)
        beta = check_interlacing(alpha, beta, r, tol, "interlacing_converse needs A >=_r B")
        Zd, Vd = converse_diag(alpha, beta, r, tol)
        Zs[idx], Vs[idx] = Zd @ P.T, P @ Vd @ U.T
    return like(None, Zs, A), like(None, Vs, A)
