r"""The algebra of a deep linear network :math:`W = W_1 W_2 \cdots W_L`.

Weights are a plain tuple ``(W_1, ..., W_L)``; ``W_l`` has shape
``(..., h_{l-1}, h_l)`` where the optional leading axes hold a batch of
networks.  Conventions follow Min, Vidal & Mallada (ICML 2023), §2–3:

* prefix :math:`P_l = W_1\cdots W_{l-1}` (:math:`P_1 = I_n`), suffix
  :math:`S_l = W_{l+1}\cdots W_L` (:math:`S_L = I_m`);
* layer gradient :math:`\nabla_{W_l}\mathcal L = P_l^\top G S_l^\top` with
  :math:`G = \nabla f(W)`;
* operator :math:`\mathcal T_W E = \sum_l P_l P_l^\top E S_l^\top S_l` (Lemma 1),
  so that :math:`\dot W = -\mathcal T_W(\nabla f(W))`;
* imbalance :math:`D_l = W_l^\top W_l - W_{l+1} W_{l+1}^\top` (eq. 8), conserved
  by gradient flow (Lemma 2).
"""
from __future__ import annotations

import numpy as np

from ._validate import check_loss, check_matrix, check_scale, check_weights
from .backend import namespace

__all__ = [
    "product",
    "prefix_products",
    "suffix_products",
    "layer_gradients",
    "value_and_gradients",
    "imbalance",
    "singular_values",
    "sigma_min",
    "T_apply",
    "T_matrix",
    "lambda_min",
    "lambda_max_bound",
    "energy",
]


def _mT(xp, A):
    return xp.matrix_transpose(A)


# --- internal kernels (no validation; used by the integrators) -------------------------

def _cumulative(xp, Ws, out=None):
    """``[W_1, W_1W_2, ..., W_1...W_L]``: L-1 matmuls; the last entry is the product.

    ``out`` (NumPy only): L-1 arrays that receive the products (a reused, cache-warm
    workspace, see :mod:`linflow.flow.packed`).
    """
    P = [Ws[0]]
    for i, W in enumerate(Ws[1:]):
        P.append(P[-1] @ W if out is None else np.matmul(P[-1], W, out=out[i]))
    return P


def _work_shapes(dims, lead):
    """Shapes of the buffers ``_cumulative`` and ``_backward`` use for widths ``dims``:
    ``(products, transposed sweeps)``, each with the leading axes ``lead``."""
    lead, L = tuple(lead), len(dims) - 1
    cum = [lead + (dims[0], dims[k + 1]) for k in range(1, L)]
    sweep = [lead + (dims[L], dims[0])] + [lead + (dims[l], dims[0]) for l in range(L - 1, 1, -1)]
    return cum, sweep


def _backward(xp, Ws, cum, G, out=None, scale=None, work=None):
    """Layer gradients from the cumulative products and G: 2(L-1) matmuls.

    The sweep runs on the transposes :math:`C_l^\top = S_l G^\top`, so that
    every product is ``A @ B``, ``A.T @ B`` or ``A.T @ B.T``: with OpenBLAS and
    small matrices, NumPy's ``A @ B.T`` is about twice as slow as the others.
    Suffixes are never formed.

    ``out`` (NumPy only: a tuple of arrays shaped like the layers) receives the
    gradients in place, and ``scale`` (a number, or one per trajectory) multiplies
    them; a batched Runge–Kutta step uses both to write its scaled
    stage slopes straight into its buffers (:mod:`linflow.flow.packed`).  ``work``
    (NumPy only) holds the sweep's intermediate arrays (shapes from ``_work_shapes``).
    """
    L = len(Ws)
    if scale is not None and getattr(scale, "ndim", 0):
        scale = scale[:, None, None]  # one number per trajectory
    if L == 1:
        if out is None:
            return (G if scale is None else G * scale,)
        np.multiply(G, 1 if scale is None else scale, out=out[0])
        return tuple(out)
    if isinstance(G, np.ndarray):
        return _backward_numpy(Ws, cum, G, out, scale, work)
    if scale is not None:
        G = G * scale
    grads = [None] * L
    Ct = _mT(xp, G)
    for l in range(L - 1, 0, -1):  # 0-based layer index l = L-1 .. 1
        grads[l] = _mT(xp, cum[l - 1]) @ _mT(xp, Ct)
        if l > 1:
            Ct = Ws[l] @ Ct
    grads[0] = _mT(xp, Ct) @ _mT(xp, Ws[1])
    return tuple(grads)


def _backward_numpy(Ws, cum, G, out, scale, work=None):
    """:func:`_backward` on NumPy, from a C-contiguous ``G^T`` so that every product is fast."""
    L = len(Ws)
    Ct = np.empty(G.shape[:-2] + G.shape[:-3:-1], dtype=G.dtype) if work is None else work[0]
    if scale is None:
        Ct[...] = G.swapaxes(-1, -2)
    else:
        np.multiply(G.swapaxes(-1, -2), scale, out=Ct)
    grads = [None] * L if out is None else list(out)
    for l in range(L - 1, 0, -1):  # 0-based layer index l = L-1 .. 1
        grads[l] = np.matmul(cum[l - 1].swapaxes(-1, -2), Ct.swapaxes(-1, -2), out=grads[l])
        if l > 1:
            Ct = Ws[l] @ Ct if work is None else np.matmul(Ws[l], Ct, out=work[L - l])
    grads[0] = np.matmul(Ct.swapaxes(-1, -2), Ws[1].swapaxes(-1, -2), out=grads[0])
    return tuple(grads)


def _value_and_grads(xp, Ws, loss):
    """(f(W), layer gradients, W) in 3(L-1) matmuls plus the loss."""
    cum = _cumulative(xp, Ws)
    W = cum[-1]
    value, G = loss.value_and_grad(W)
    return value, _backward(xp, Ws, cum, G), W


# --- public API ------------------------------------------------------------------------

def product(Ws):
    r"""The end-to-end matrix :math:`W = W_1 W_2\cdots W_L`, shape ``(..., n, m)``.

    Pure matrix products: NaN or inf entries in the weights propagate (no check, no host
    sync), as in :func:`prefix_products`, :func:`suffix_products` and :func:`imbalance`;
    the spectral quantities (:func:`singular_values`, :func:`lambda_min`, the bounds)
    refuse non-finite weights with a ValueError.
    """
    xp, Ws = check_weights(Ws, finite=False)
    return _cumulative(xp, Ws)[-1]


def _eye_like(xp, A, n):
    return xp.eye(n, dtype=A.dtype, device=_device(A))


def _device(A):
    import array_api_compat

    return array_api_compat.device(A)


def _batched_eye(xp, A, n):
    """``I_n`` broadcast to the batch shape of ``A``."""
    return xp.broadcast_to(_eye_like(xp, A, n), tuple(A.shape[:-2]) + (n, n))


def prefix_products(Ws):
    r"""Prefixes :math:`P_l = W_1\cdots W_{l-1}` for ``l = 1..L`` (``P_1 = I_n``, batched like ``Ws``)."""
    xp, Ws = check_weights(Ws, finite=False)
    cum = _cumulative(xp, Ws)
    return (_batched_eye(xp, Ws[0], Ws[0].shape[-2]),) + tuple(cum[:-1])


def suffix_products(Ws):
    r"""Suffixes :math:`S_l = W_{l+1}\cdots W_L` for ``l = 1..L`` (``S_L = I_m``, batched like ``Ws``)."""
    xp, Ws = check_weights(Ws, finite=False)
    S = [_batched_eye(xp, Ws[-1], Ws[-1].shape[-1])]
    for W in reversed(Ws[1:]):
        S.append(W @ S[-1] if len(S) > 1 else W)
    return tuple(reversed(S))


def _check_G(Ws, G, name):
    r"""A finite matrix of the product's shape ``(..., n, m)``, small enough that
    :math:`\langle G, \mathcal T_W G\rangle` cannot overflow (:func:`linflow._validate.check_scale`)."""
    if not hasattr(G, "shape"):
        raise TypeError(f"linflow: {name} must be an array of shape (..., n, m); got {type(G).__name__}.")
    xp = namespace(*Ws, G)
    check_matrix(G, name, xp=xp)
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    if tuple(G.shape[-2:]) != (n, m):
        raise ValueError(
            f"linflow: {name} must have shape (..., {n}, {m}) to match the product; got {tuple(G.shape)}."
        )
    check_scale(xp, (*Ws, G), f"Ws with {name}")  # <G, T G> grows like (|G| prod |W_l|)^2
    return xp


def layer_gradients(Ws, G):
    r"""Gradients :math:`\nabla_{W_l}\mathcal L = P_l^\top G S_l^\top` of all layers (eq. D.1).

    Computed in backprop order: the prefixes forward (L-2 matmuls; the product
    itself is not needed), then one backward sweep (2(L-1) matmuls), so with the
    forward pass of the loss a full gradient costs 3(L-1) matmuls.

    Parameters
    ----------
    Ws : tuple of arrays, ``W_l`` of shape ``(..., h_{l-1}, h_l)``
    G : array, shape ``(..., n, m)``
        The gradient :math:`\nabla f(W)` of the base loss at the product.

    Returns
    -------
    tuple of arrays, shaped like ``Ws``.
    """
    xp, Ws = check_weights(Ws)
    xp = _check_G(Ws, G, "G")
    cum = _cumulative(xp, Ws[:-1]) if len(Ws) > 1 else []
    return _backward(xp, Ws, cum + [None], G)


def value_and_gradients(Ws, loss):
    r"""Loss value :math:`f(W_1\cdots W_L)` and all layer gradients, in 3(L-1) matmuls.

    Returns
    -------
    value : array, shape ``(...)``
    grads : tuple of arrays shaped like ``Ws``
    """
    xp, Ws = check_weights(Ws)
    check_loss(loss).check(Ws)
    value, grads, _ = _value_and_grads(xp, Ws, loss)
    return value, grads


def imbalance(Ws):
    r"""Imbalance matrices :math:`D_l = W_l^\top W_l - W_{l+1}W_{l+1}^\top`, ``l = 1..L-1`` (eq. 8).

    Conserved by gradient flow for any differentiable loss (Lemma 2).

    Returns
    -------
    tuple of ``L-1`` arrays, ``D_l`` of shape ``(..., h_l, h_l)``.
    """
    xp, Ws = check_weights(Ws, finite=False)
    return _imbalance(xp, Ws)


def _imbalance(xp, Ws):
    return tuple(
        _mT(xp, Ws[l]) @ Ws[l] - Ws[l + 1] @ _mT(xp, Ws[l + 1]) for l in range(len(Ws) - 1)
    )


def singular_values(Ws):
    r"""Singular values of the product :math:`W`, decreasing, shape ``(..., min(n, m))``."""
    xp, Ws = check_weights(Ws)  # non-finite weights: a clear error, not "SVD did not converge"
    return xp.linalg.svdvals(_cumulative(xp, Ws)[-1])


def sigma_min(Ws):
    r""":math:`\sigma_{\min}(W) = \sigma_{\min\{n,m\}}(W_1\cdots W_L)`, shape ``(...)``."""
    return singular_values(Ws)[..., -1]


def _grams(xp, Ws):
    """Left Grams P_l P_l^T (n x n) and right Grams S_l^T S_l (m x m), l = 1..L."""
    L = len(Ws)
    cum = _cumulative(xp, Ws)
    left = [None] + [c @ _mT(xp, c) for c in cum[: L - 1]]
    S, right = None, [None] * L
    for l in range(L - 1, 0, -1):
        S = Ws[l] if S is None else Ws[l] @ S
        right[l - 1] = _mT(xp, S) @ S
    return left, right


def T_apply(Ws, E):
    r"""Apply :math:`\mathcal T_W E = \sum_{l=1}^L P_lP_l^\top\,E\,S_l^\top S_l` (Lemma 1).

    With ``E = ∇f(W)`` this is minus the velocity of the product under gradient
    flow, :math:`\dot W = -\mathcal T_W(\nabla f(W))`.

    Parameters
    ----------
    Ws : tuple of arrays
    E : array, shape ``(..., n, m)``
    """
    xp, Ws = check_weights(Ws)
    xp = _check_G(Ws, E, "E")
    left, right = _grams(xp, Ws)
    out = 0
    for A, B in zip(left, right):
        term = E if A is None else A @ E
        term = term if B is None else term @ B
        out = out + term
    return out


def T_matrix(Ws):
    r"""The matrix of :math:`\mathcal T_W` on row-major ``vec(E)``: :math:`\sum_l P_lP_l^\top \otimes S_l^\top S_l`.

    Shape ``(..., n*m, n*m)``; symmetric positive semi-definite.
    """
    xp, Ws = check_weights(Ws)
    return _T_matrix(xp, Ws)


def _T_matrix(xp, Ws):
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    left, right = _grams(xp, Ws)
    batch = tuple(Ws[0].shape[:-2])
    In = _eye_like(xp, Ws[0], n)
    Im = _eye_like(xp, Ws[0], m)
    M = 0
    for A, B in zip(left, right):
        A = In if A is None else A
        B = Im if B is None else B
        kron = A[..., :, None, :, None] * B[..., None, :, None, :]
        M = M + kron
    M = xp.broadcast_to(M, batch + (n, m, n, m))  # L = 1: the identity, one per network
    return xp.reshape(M, batch + (n * m, n * m))


def lambda_min(Ws, *, max_size=4096):
    r"""Exact :math:`\lambda_{\min}(\mathcal T_W)`, the rate-setting eigenvalue (eqs. 5–7).

    For ``L = 2`` the exact formula :math:`\lambda_n(W_1W_1^\top) + \lambda_m(W_2^\top W_2)`
    (a Kronecker sum) is used at any size.  For ``L >= 3`` the ``n·m × n·m``
    Kronecker form of :func:`T_matrix` is diagonalized, so ``n·m`` must be at most
    ``max_size``.

    Returns
    -------
    array of shape ``(...)``.
    """
    xp, Ws = check_weights(Ws)
    return _lambda_min(xp, Ws, max_size)


def _lambda_min(xp, Ws, max_size=4096):
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    if len(Ws) == 1:
        return xp.ones(tuple(Ws[0].shape[:-2]), dtype=Ws[0].dtype, device=_device(Ws[0]))
    if len(Ws) == 2:
        W1, W2 = Ws
        a = xp.linalg.eigvalsh(W1 @ _mT(xp, W1))[..., 0]
        b = xp.linalg.eigvalsh(_mT(xp, W2) @ W2)[..., 0]
        return a + b
    if n * m > max_size:
        raise ValueError(
            f"linflow: lambda_min builds an (n·m) x (n·m) matrix; n·m = {n}·{m} = {n * m} "
            f"exceeds max_size={max_size}. Raise max_size if memory allows, or use a bound "
            "from linflow.bounds."
        )
    return xp.linalg.eigvalsh(_T_matrix(xp, Ws))[..., 0]


def lambda_max_bound(Ws):
    r"""Upper bound :math:`\sum_l \|P_l\|_2^2\|S_l\|_2^2 \ge \lambda_{\max}(\mathcal T_W)`.

    Times the smoothness ``K`` of the loss it estimates the sharpness, so
    ``2 / (K · lambda_max_bound)`` is a safe gradient-descent step near ``Ws``
    (exact at a balanced minimum, where :math:`\lambda_{\max} = L\sigma_1^{2-2/L}`).
    """
    xp, Ws = check_weights(Ws)
    left, right = _grams(xp, Ws)
    out = xp.zeros(tuple(Ws[0].shape[:-2]), dtype=Ws[0].dtype, device=_device(Ws[0]))
    for A, B in zip(left, right):
        a = 1.0 if A is None else xp.linalg.eigvalsh(A)[..., -1]
        b = 1.0 if B is None else xp.linalg.eigvalsh(B)[..., -1]
        out = out + a * b
    return out


def energy(Ws, G):
    r""":math:`\langle G, \mathcal T_W G\rangle_F`, which equals :math:`\sum_l\|\nabla_{W_l}\mathcal L\|_F^2`.

    This is the energy identity of Lemma 1: with ``G = ∇f(W)`` it is the rate of
    loss decrease, :math:`\dot{\mathcal L} = -\langle G, \mathcal T_W G\rangle`.
    """
    TG = T_apply(Ws, G)
    xp = namespace(TG)
    return xp.sum(G * TG, axis=(-2, -1))
