r"""Initializations of deep linear networks :math:`W = W_1 W_2\cdots W_L`.

Every function draws its random numbers on the host from
``numpy.random.default_rng(seed)`` in float64, builds the weights there, and
moves them once to the default backend with :func:`linflow.asarray` (or, for
:func:`spectral`, :func:`diagonal` and :func:`scalar`, to the namespace of the
array passed in).  So one seed gives the same network on every backend.

``dims = (h_0, h_1, ..., h_L)`` lists the widths, with ``h_0 = n`` (input) and
``h_L = m`` (output); ``W_l`` has shape ``batch + (h_{l-1}, h_l)``.  ``batch``
(a tuple) adds leading axes: a batch of independent networks, drawn in one go.

Schemes (Min, Vidal & Mallada, ICML 2023):

* :func:`gaussian` — the random schemes of App. A (NTK, Xavier/fan-in, fan-out);
* :func:`balanced` — all :math:`D_l = 0` (Arora et al. construction);
* :func:`lambda_balanced` — two layers with :math:`D_1 = \lambda I` (course appendix *Numerical methods*, Closed-form solutions);
* :func:`spectral` — aligned with the target, App. E.1;
* :func:`unimodal` / :func:`homogeneous` — prescribed imbalances (Definition 3);
* :func:`diagonal` / :func:`scalar` — diagonal and scalar networks (App. E.2, §4.3).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._validate import check_matrix, integer, nonnegative, real, real_array, seed as _check_seed, widths as _widths
from .backend import asarray, namespace, to_numpy

__all__ = [
    "gaussian",
    "balanced",
    "lambda_balanced",
    "spectral",
    "unimodal",
    "homogeneous",
    "diagonal",
    "scalar",
    "SCHEMES",
]

#: Names accepted by :func:`gaussian`.
SCHEMES = ("ntk", "fan_in", "fan_out", "custom")


# --- helpers ---------------------------------------------------------------------------

def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(_check_seed(seed))


def _dims(dims, *, min_layers=1, name="dims"):
    try:
        dims = _widths(name, dims, minimum=-math.inf)  # integers only: 4.5 is refused, not truncated
    except TypeError:
        raise TypeError(
            f"linflow: {name} must be a sequence of integer widths (h_0, ..., h_L); got {dims!r}."
        ) from None
    if len(dims) < min_layers + 1:
        raise ValueError(
            f"linflow: {name} must list at least {min_layers + 1} widths (h_0, ..., h_L) for "
            f"L >= {min_layers} layers; got {dims}."
        )
    if any(d < 1 for d in dims):
        raise ValueError(f"linflow: every width in {name} must be a positive integer; got {dims}.")
    return _not_huge(name, dims)


#: the largest width (or batch axis) accepted: beyond it no weight matrix could be allocated
MAX_WIDTH = 2**31


def _not_huge(name, values):
    if any(v > MAX_WIDTH for v in values):
        raise ValueError(f"linflow: every entry of {name} must be at most 2**31 (an allocatable size); "
                         f"got {tuple(values)}.")
    return values


def _scale(scale):
    """The entry scale of random weights: finite, >= 0, and at most 1e100 (so that squares fit float64)."""
    scale = nonnegative("scale", scale)
    if scale > 1e100:
        raise ValueError(f"linflow: scale must be at most 1e100 (the weights' squares must fit float64); "
                         f"got {scale!r}.")
    return scale


def _batch(batch):
    if batch is None:
        return ()
    if isinstance(batch, numbers.Integral) or not hasattr(batch, "__iter__"):
        return _not_huge("batch", (integer("batch", batch, minimum=0),))
    return _not_huge("batch", _widths("batch", batch, minimum=0))


def _move(Ws_host, like=None):
    return tuple(asarray(np.ascontiguousarray(W), like=like) for W in Ws_host)


def _mT(A):
    return np.swapaxes(A, -1, -2)


def _orthonormal(rng, batch, rows, cols):
    """Random ``rows x cols`` matrices with orthonormal columns (needs rows >= cols)."""
    G = rng.standard_normal(batch + (rows, cols))
    Q, R = np.linalg.qr(G)
    # fix the signs so the distribution is Haar
    s = np.sign(np.diagonal(R, axis1=-2, axis2=-1))
    s = np.where(s == 0, 1.0, s)
    return Q * s[..., None, :]


def _psd_factor(M, rows, rng, *, side, tol, what):
    r"""Factor a PSD ``M`` (``h x h``): ``A^T A = M`` with A ``rows x h`` (side="left"),
    or ``A A^T = M`` with A ``h x rows`` (side="right").  Needs rank(M) <= rows."""
    batch = M.shape[:-2]
    h = M.shape[-1]
    mu, U = np.linalg.eigh(0.5 * (M + _mT(M)))  # ascending
    mu, U = mu[..., ::-1], U[..., ::-1]  # decreasing
    scale = np.maximum(1.0, np.max(np.abs(mu), axis=-1, keepdims=True))
    if np.any(mu < -tol * scale):
        raise ValueError(
            f"linflow: {what} is not positive semi-definite (smallest eigenvalue "
            f"{float(np.min(mu)):.3g}); the requested imbalances are not attainable."
        )
    k = min(rows, h)
    if k < h and np.any(mu[..., k] > tol * scale[..., 0]):
        raise ValueError(
            f"linflow: {what} has rank greater than {rows} (eigenvalue {k + 1} is "
            f"{float(np.max(mu[..., k])):.3g}), so it cannot be the Gram matrix of a layer with "
            f"{rows} {'rows' if side == 'left' else 'columns'}. Use widths that shrink toward the "
            "peak layer l*, or imbalances of lower rank."
        )
    root = np.sqrt(np.clip(mu[..., :k], 0.0, None))  # (..., k)
    Uk = U[..., :, :k]  # (..., h, k)
    O = _orthonormal(rng, batch, rows, k)  # (..., rows, k)
    if side == "left":
        return O @ (root[..., :, None] * _mT(Uk))  # rows x h
    return (Uk * root[..., None, :]) @ _mT(O)  # h x rows


# --- Gaussian schemes (App. A) ---------------------------------------------------------

def gaussian(dims, scheme="fan_in", *, std=None, batch=(), seed=0):
    r"""Independent Gaussian weights, the random schemes of App. A.

    Parameters
    ----------
    dims : sequence of int
        Widths ``(h_0, ..., h_L)``.
    scheme : {"fan_in", "fan_out", "ntk", "custom"}
        Entry distribution of ``W_l`` (shape ``h_{l-1} x h_l``):

        * ``"ntk"`` — :math:`\mathcal N(0, 1)` (Du & Hu 2019; the :math:`1/\sqrt{m h_1\cdots}`
          output scaling of their model is *not* applied here, see :mod:`linflow.figure1`);
        * ``"fan_in"`` — :math:`\mathcal N(0, 1/h_{l-1})` (Xavier / Glorot & Bengio 2010);
        * ``"fan_out"`` — :math:`\mathcal N(0, 1/h_l)`;
        * ``"custom"`` — :math:`\mathcal N(0, \mathrm{std}^2)`; ``std`` a number or one per layer.

        (The second argument of :math:`\mathcal N` is the variance.)
    std : float or sequence of L floats, optional
        Standard deviation(s) for ``scheme="custom"``.
    batch : tuple of int
        Leading batch shape.
    seed : int or numpy.random.Generator

    Returns
    -------
    tuple of L arrays on the default backend, ``W_l`` of shape ``batch + (h_{l-1}, h_l)``.

    Examples
    --------
    >>> import linflow as lf
    >>> Ws = lf.init.gaussian((5, 200, 200, 1), "fan_out", batch=(3,), seed=1)
    >>> [tuple(W.shape) for W in Ws]
    [(3, 5, 200), (3, 200, 200), (3, 200, 1)]
    """
    dims = _dims(dims)
    batch = _batch(batch)
    key = str(scheme).lower().replace("-", "_")
    if key == "xavier":
        key = "fan_in"
    if key not in SCHEMES:
        raise ValueError(f"linflow: unknown scheme {scheme!r}; expected one of {SCHEMES}.")
    L = len(dims) - 1
    if key == "custom":
        if std is None:
            raise ValueError("linflow: scheme='custom' needs std (a number or one per layer).")
        stds = np.asarray(std, dtype=np.float64)
        if stds.ndim > 1 or stds.size not in (1, L):
            raise ValueError(
                f"linflow: std must be a number or one per layer (L = {L}); got {std!r}."
            )
        stds = np.broadcast_to(stds.reshape(-1), (L,))
        if np.any(stds < 0) or not np.all(np.isfinite(stds)):
            raise ValueError(f"linflow: std must be non-negative and finite; got {std!r}.")
    elif std is not None:
        raise ValueError(f"linflow: std is only used with scheme='custom'; got scheme={scheme!r}.")
    else:
        stds = {
            "ntk": [1.0] * L,
            "fan_in": [1.0 / np.sqrt(dims[l]) for l in range(L)],
            "fan_out": [1.0 / np.sqrt(dims[l + 1]) for l in range(L)],
        }[key]
    rng = _rng(seed)
    Ws = [rng.standard_normal(batch + (dims[l], dims[l + 1])) * stds[l] for l in range(L)]
    return _move(Ws)


# --- balanced --------------------------------------------------------------------------

def balanced(dims, *, product=None, batch=(), seed=0, scale=1.0):
    r"""Balanced weights, :math:`D_l = 0` for every ``l`` (Arora et al. construction).

    With the SVD :math:`W = U\Sigma V^\top` of the product (``r = min(n, m)`` modes),
    :math:`W_1 = U\Sigma^{1/L}R_1^\top`, :math:`W_l = R_{l-1}\Sigma^{1/L}R_l^\top` and
    :math:`W_L = R_{L-1}\Sigma^{1/L}V^\top`, where each :math:`R_l` is a random
    ``h_l x r`` matrix with orthonormal columns.  Then :math:`W_1\cdots W_L = W` and
    :math:`W_l^\top W_l = R_l\Sigma^{2/L}R_l^\top = W_{l+1}W_{l+1}^\top`.

    Parameters
    ----------
    dims : sequence of int
        Widths ``(n, h_1, ..., h_{L-1}, m)``; the hidden widths must be at least
        ``min(n, m)`` (the width constraint of the course appendix *Numerical methods*, Conventions).
    product : array, shape ``(..., n, m)``, optional
        The end-to-end matrix to factor; its leading axes become the batch.  Default:
        a random one with :math:`\mathcal N(0, \mathrm{scale}^2)` entries.
    batch, seed
        As in :func:`gaussian` (``batch`` is ignored when ``product`` has its own).
    scale : float
        Entry scale of the random product.

    Returns
    -------
    tuple of L arrays (the namespace of ``product`` if given, else the default backend).
    """
    dims = _dims(dims)
    L = len(dims) - 1
    n, m = dims[0], dims[-1]
    r = min(n, m)
    bad = [l for l in range(1, L) if dims[l] < r]
    if bad:
        raise ValueError(
            f"linflow: balanced weights need every hidden width h_l >= min(n, m) = {r} "
            f"(the width constraint); got dims={dims}."
        )
    rng = _rng(seed)
    like = None
    if product is None:
        W = rng.standard_normal(_batch(batch) + (n, m)) * _scale(scale)
    else:
        if hasattr(product, "shape") and not isinstance(product, np.ndarray):
            like = product
        W = np.asarray(to_numpy(check_matrix(product, "product")), dtype=np.float64)
        if W.ndim < 2 or tuple(W.shape[-2:]) != (n, m):
            raise ValueError(
                f"linflow: product must have shape (..., {n}, {m}) to match dims={dims}; "
                f"got {W.shape}."
            )
    batch = W.shape[:-2]
    U, s, Vh = np.linalg.svd(W, full_matrices=False)  # U (.., n, r), Vh (.., r, m)
    root = s ** (1.0 / L)
    if L == 1:
        return _move([W], like)
    R = [None] + [_orthonormal(rng, batch, dims[l], r) for l in range(1, L)]
    Ws = []
    for l in range(1, L + 1):
        left = U if l == 1 else R[l - 1]
        right = Vh if l == L else _mT(R[l])
        Ws.append((left * root[..., None, :]) @ right)
    return _move(Ws, like)


def lambda_balanced(dims, lam, *, batch=(), seed=0, scale=1.0):
    r"""Two-layer weights with :math:`D_1 = W_1^\top W_1 - W_2W_2^\top = \lambda I_h`.

    Construction (course appendix *Numerical methods*, Closed-form solutions):

    * ``lam > 0``: draw :math:`W_2` (``h x m``, entries :math:`\mathcal N(0, \mathrm{scale}^2/h)`)
      and set :math:`W_1 = O(W_2W_2^\top + \lambda I)^{1/2}` with ``O`` (``n x h``),
      :math:`O^\top O = I_h`.  Needs ``h <= n``.
    * ``lam < 0``: draw :math:`W_1` (``n x h``, entries :math:`\mathcal N(0, \mathrm{scale}^2/n)`)
      and set :math:`W_2 = (W_1^\top W_1 - \lambda I)^{1/2}O^\top` with ``O`` (``m x h``),
      :math:`O^\top O = I_h`.  Needs ``h <= m``.  (Drawing :math:`W_2` first, as for
      ``lam > 0``, fails here: :math:`W_2W_2^\top + \lambda I` need not be PSD.)
    * ``lam = 0``: balanced, by either branch, or by :func:`balanced` if ``h > max(n, m)``.

    Parameters
    ----------
    dims : (n, h, m)
    lam : float
    batch, seed
        As in :func:`gaussian`.
    scale : float
        Scale of the drawn layer.

    Raises
    ------
    ValueError
        ``L != 2``, or the width condition above fails: :math:`\lambda I_h` with
        :math:`\lambda\ne0` has rank ``h``, which a Gram matrix of an ``n x h`` (or
        ``h x m``) factor cannot exceed.
    """
    dims = _dims(dims)
    if len(dims) != 3:
        raise ValueError(
            f"linflow: lambda_balanced builds two-layer networks; dims must be (n, h, m); got {dims}."
        )
    n, h, m = dims
    lam = real("lam", lam)
    scale = _scale(scale)
    batch = _batch(batch)
    rng = _rng(seed)
    if lam > 0 and h > n:
        raise ValueError(
            f"linflow: lambda_balanced with lam = {lam} > 0 needs h <= n (W_1^T W_1 = "
            f"W_2 W_2^T + lam I has rank h and W_1 has n rows); got n = {n}, h = {h}."
        )
    if lam < 0 and h > m:
        raise ValueError(
            f"linflow: lambda_balanced with lam = {lam} < 0 needs h <= m (W_2 W_2^T = "
            f"W_1^T W_1 - lam I has rank h and W_2 has m columns); got h = {h}, m = {m}."
        )
    eye = np.eye(h)
    if lam > 0 or (lam == 0 and h <= n):
        W2 = rng.standard_normal(batch + (h, m)) * (scale / np.sqrt(h))
        M = W2 @ _mT(W2) + lam * eye
        W1 = _psd_factor(M, n, rng, side="left", tol=1e-12, what="W_2 W_2^T + lam I")
    elif lam < 0 or h <= m:
        W1 = rng.standard_normal(batch + (n, h)) * (scale / np.sqrt(n))
        M = _mT(W1) @ W1 - lam * eye
        W2 = _psd_factor(M, m, rng, side="right", tol=1e-12, what="W_1^T W_1 - lam I")
    else:
        return balanced(dims, batch=batch, seed=rng, scale=scale)
    return _move([W1, W2])


# --- spectral (App. E.1) ---------------------------------------------------------------

def spectral(Y, sigmas, *, widths=None, seed=0):
    r"""Spectral initialization aligned with the target ``Y`` (Section 4.2, App. E.1).

    With the full SVD :math:`Y = P\tilde\Sigma_Y\tilde Q` (``P`` ``n x n`` orthogonal,
    :math:`\tilde Q` ``n x m`` whose first ``r = min(n, m)`` rows are the right singular
    vectors and the rest zero):

    .. math:: W_1 = P\Sigma_1V_1^\top,\quad W_l = V_{l-1}\Sigma_lV_l^\top,\quad W_L = V_{L-1}\Sigma_L\tilde Q,

    with :math:`\Sigma_l = \mathrm{diag}(\sigma_{1,l},\dots,\sigma_{n,l})`.  The paper prints
    :math:`V_l\in\mathbb R^{n\times h_l}`; for the shapes to fit we read :math:`V_l` as an
    ``h_l x n`` matrix with :math:`V_l^\top V_l = I_n` (so ``h_l >= n``), drawn at random.
    The structure is kept by the flow on :math:`\tfrac12\|Y - W\|_F^2`, and each mode
    ``i <= r`` is a deep scalar network on :math:`\tfrac12(\sigma_i(Y) - \prod_l\sigma_{i,l})^2`.

    Parameters
    ----------
    Y : array, shape ``(n, m)``
        The target.
    sigmas : array_like, shape ``(..., L, k)`` with ``1 <= k <= n``
        Per-layer diagonal entries :math:`\sigma_{i,l}` for modes ``i = 1..k``; modes
        ``k+1..n`` are zero.  Leading axes give a batch of networks.
    widths : sequence of L-1 int, optional
        Hidden widths ``h_1..h_{L-1}``, each ``>= n``; default all ``n``.
    seed : int or Generator

    Returns
    -------
    tuple of L arrays in the namespace of ``Y`` (on its device).
    """
    like = Y if (hasattr(Y, "shape") and not isinstance(Y, np.ndarray)) else None
    Yh = np.asarray(to_numpy(check_matrix(Y, "Y")), dtype=np.float64)
    if Yh.ndim != 2:
        raise ValueError(f"linflow: spectral needs one target Y of shape (n, m); got {Yh.shape}.")
    n, m = Yh.shape
    S = np.asarray(to_numpy(real_array(sigmas, "sigmas", ndim=0)), dtype=np.float64)
    if S.ndim < 2 or not (1 <= S.shape[-1] <= n):
        raise ValueError(
            f"linflow: sigmas must have shape (..., L, k) with 1 <= k <= n = {n}; got {S.shape}."
        )
    L, k = S.shape[-2:]
    batch = S.shape[:-2]
    if k < n:
        S = np.concatenate([S, np.zeros(batch + (L, n - k))], axis=-1)
    widths = (n,) * (L - 1) if widths is None else _not_huge("widths", _widths("widths", widths))
    if len(widths) != L - 1:
        raise ValueError(f"linflow: widths must list L-1 = {L - 1} hidden widths; got {widths}.")
    if any(h < n for h in widths):
        raise ValueError(
            f"linflow: spectral initialization needs every hidden width >= n = {n} (V_l is "
            f"h_l x n with orthonormal columns); got widths={widths}."
        )
    rng = _rng(seed)
    P, s, Vh = np.linalg.svd(Yh, full_matrices=True)
    r = min(n, m)
    Qt = np.zeros((n, m))
    Qt[:r] = Vh[:r]
    V = [None] + [_orthonormal(rng, batch, h, n) for h in widths]
    Ws = []
    for l in range(1, L + 1):
        sig = S[..., l - 1, :]  # (..., n)
        left = np.broadcast_to(P, batch + (n, n)) if l == 1 else V[l - 1]
        right = np.broadcast_to(Qt, batch + (n, m)) if l == L else _mT(V[l])
        Ws.append((left * sig[..., None, :]) @ right)
    return _move(Ws, like)


# --- prescribed imbalances (Definition 3) ----------------------------------------------

def _imbalance_host(Ws):
    return [_mT(Ws[l]) @ Ws[l] - Ws[l + 1] @ _mT(Ws[l + 1]) for l in range(len(Ws) - 1)]


def unimodal(dims, l_star, D, *, batch=(), seed=0, scale=1.0):
    r"""Weights with prescribed imbalances :math:`D_l`, unimodal with index :math:`l^*`.

    Definition 3: :math:`D_l\succeq0` for :math:`l<l^*` and :math:`D_l\preceq0` for
    :math:`l\ge l^*`.  The construction goes outward from layer :math:`l^*`: draw
    :math:`W_{l^*}` (entries :math:`\mathcal N(0, \mathrm{scale}^2/h_{l^*-1})`), then for
    :math:`l = l^*-1, \dots, 1` factor :math:`W_l^\top W_l = D_l + W_{l+1}W_{l+1}^\top`
    (PSD), and for :math:`l = l^*, \dots, L-1` factor
    :math:`W_{l+1}W_{l+1}^\top = W_l^\top W_l - D_l` (PSD), each with a random
    orthonormal factor.  So ``imbalance(Ws)`` returns the requested :math:`D_l` (to
    round-off).

    Parameters
    ----------
    dims : sequence of int
        ``(h_0, ..., h_L)``.  A Gram matrix of rank ``k`` needs a factor with at least
        ``k`` rows (columns): e.g. with full-rank :math:`D_l` the widths must not grow
        toward :math:`l^*`, i.e. :math:`h_{l-1}\ge h_l` for :math:`l<l^*` and
        :math:`h_{l+1}\ge h_l` for :math:`l\ge l^*`.
    l_star : int
        The peak index, ``1 <= l_star <= L``.
    D : number, or sequence of L-1 items
        Each a number ``d_l`` (meaning :math:`d_lI_{h_l}`) or a symmetric matrix of
        shape ``(h_l, h_l)`` or ``batch + (h_l, h_l)``.  A single number is used for
        every hidden layer.
    batch, seed
        As in :func:`gaussian`.
    scale : float
        Scale of the drawn core layer :math:`W_{l^*}`.

    Raises
    ------
    ValueError
        ``D`` does not have the unimodal sign pattern, or a factorization needs more
        rows/columns than the widths allow.
    """
    dims = _dims(dims)
    L = len(dims) - 1
    l_star = integer("l_star", l_star)
    if not 1 <= l_star <= L:
        raise ValueError(f"linflow: l_star must be in 1..L = 1..{L}; got {l_star}.")
    if isinstance(D, numbers.Real) or (hasattr(D, "shape") and len(D.shape) == 0):
        D = [D] * (L - 1)  # one number for every hidden layer
    elif hasattr(D, "shape"):
        Dn = np.asarray(to_numpy(D), dtype=np.float64)
        if Dn.ndim == 1:
            D = list(Dn)
        elif L == 2 and Dn.shape[-2:] == (dims[1], dims[1]):
            D = [Dn]
        else:
            D = list(Dn)
    elif isinstance(D, (list, tuple)):
        D = list(D)
    else:
        raise TypeError(f"linflow: D must be a number, a sequence of L-1 = {L - 1} numbers or matrices, or an "
                        f"array; got {type(D).__name__} {D!r}.")
    if len(D) != L - 1:
        raise ValueError(
            f"linflow: D must give L-1 = {L - 1} imbalances (one per hidden layer); got {len(D)}."
        )
    batch = _batch(batch)
    Dh = []
    for l, d in enumerate(D, 1):
        h = dims[l]
        a = np.asarray(to_numpy(real_array(d, f"D_{l}", ndim=0)), dtype=np.float64)
        if a.ndim == 0:
            a = float(a) * np.eye(h)
        if a.ndim < 2 or a.shape[-2:] != (h, h):
            raise ValueError(
                f"linflow: D_{l} must be a number or a ({h}, {h}) matrix (h_{l} = {h}); "
                f"got shape {a.shape}."
            )
        check_matrix(a, f"D_{l}")
        Dh.append(0.5 * (a + _mT(a)))
    for a in Dh:
        if a.ndim > 2:
            try:
                batch = tuple(np.broadcast_shapes(batch, a.shape[:-2]))
            except ValueError:
                raise ValueError(
                    f"linflow: the batch shapes of D and batch={batch} do not broadcast."
                ) from None
    Dh = [np.broadcast_to(a, batch + a.shape[-2:]) for a in Dh]
    # the sign pattern of Definition 3
    for l, a in enumerate(Dh, 1):
        ev = np.linalg.eigvalsh(a)
        tol = 1e-12 * max(1.0, float(np.max(np.abs(ev))) if ev.size else 1.0)
        if l < l_star and np.min(ev) < -tol:
            raise ValueError(
                f"linflow: unimodal weights with index l* = {l_star} need D_l ⪰ 0 for l < l* "
                f"(Definition 3), but D_{l} has eigenvalue {float(np.min(ev)):.3g} < 0."
            )
        if l >= l_star and np.max(ev) > tol:
            raise ValueError(
                f"linflow: unimodal weights with index l* = {l_star} need D_l ⪯ 0 for l >= l* "
                f"(Definition 3), but D_{l} has eigenvalue {float(np.max(ev)):.3g} > 0."
            )
    rng = _rng(seed)
    Ws = [None] * (L + 1)  # 1-based
    hin = dims[l_star - 1]
    Ws[l_star] = rng.standard_normal(batch + (hin, dims[l_star])) * (_scale(scale) / np.sqrt(hin))
    for l in range(l_star - 1, 0, -1):
        M = Dh[l - 1] + Ws[l + 1] @ _mT(Ws[l + 1])
        Ws[l] = _psd_factor(M, dims[l - 1], rng, side="left", tol=1e-11,
                            what=f"W_{l}^T W_{l} = D_{l} + W_{l + 1} W_{l + 1}^T")
    for l in range(l_star, L):
        M = _mT(Ws[l]) @ Ws[l] - Dh[l - 1]
        Ws[l + 1] = _psd_factor(M, dims[l + 1], rng, side="right", tol=1e-11,
                                what=f"W_{l + 1} W_{l + 1}^T = W_{l}^T W_{l} - D_{l}")
    return _move(Ws[1:])


def homogeneous(dims, d, *, batch=(), seed=0, scale=1.0):
    r"""Weights with homogeneous imbalance :math:`D_l = d_lI_{h_l}` (Definition 3).

    The numbers ``d`` must be unimodal: :math:`d_l\ge0` up to some index and
    :math:`d_l\le0` after it; :math:`l^*` is taken as the first ``l`` with
    :math:`d_k\le0` for all :math:`k\ge l`.  Built by :func:`unimodal`, so nonzero
    :math:`d_l` need widths that do not grow toward :math:`l^*` (e.g. all widths equal).

    Parameters
    ----------
    dims : sequence of int
    d : sequence of L-1 numbers
    batch, seed, scale
        As in :func:`unimodal`.
    """
    dims = _dims(dims)
    L = len(dims) - 1
    d = [real(f"d[{i}]", x) for i, x in enumerate(np.asarray(to_numpy(d), dtype=np.float64).reshape(-1))]
    if len(d) != L - 1:
        raise ValueError(f"linflow: d must give L-1 = {L - 1} numbers; got {len(d)}.")
    l_star = L
    while l_star > 1 and d[l_star - 2] <= 0:
        l_star -= 1
    if any(x < 0 for x in d[: l_star - 1]):
        raise ValueError(
            f"linflow: homogeneous imbalances must be unimodal (d_l >= 0 for l < l*, d_l <= 0 "
            f"for l >= l*, Definition 3); got d = {d}."
        )
    return unimodal(dims, l_star, d, batch=batch, seed=seed, scale=scale)


# --- diagonal and scalar networks --------------------------------------------------------

def _from_host_or_array(ws, name="ws"):
    """``ws`` as (namespace, array) for a library array, or (None, float64 NumPy data); finite, non-empty."""
    if hasattr(ws, "shape") and not isinstance(ws, np.ndarray):
        xp = namespace(ws)
        check_matrix(ws, name, ndim=1, xp=xp)
        return xp, ws
    try:
        a = np.asarray(ws, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"linflow: {name} must be an array of real numbers; got {ws!r}.") from None
    check_matrix(a, name, ndim=1)
    return None, a


def diagonal(ws):
    r"""Diagonal linear network :math:`W_l = \mathrm{diag}(w_l)` (App. E.2).

    The product is :math:`\mathrm{diag}(w_1\odot\cdots\odot w_L)`; each coordinate is a
    scalar network with its own conserved imbalances.

    Parameters
    ----------
    ws : array_like, shape ``(..., L, n)``
        Row ``l`` holds the diagonal of ``W_l``.  Arrays keep their namespace; lists
        and NumPy data go to the default backend.

    Returns
    -------
    tuple of L arrays of shape ``(..., n, n)``.
    """
    xp, a = _from_host_or_array(ws)
    if a.ndim < 2:
        raise ValueError(f"linflow: diagonal needs ws of shape (..., L, n); got {tuple(a.shape)}.")
    L, n = a.shape[-2:]
    if xp is None:
        return _move([a[..., l, :, None] * np.eye(n) for l in range(L)])
    import array_api_compat

    eye = xp.eye(n, dtype=a.dtype, device=array_api_compat.device(a))
    return tuple(a[..., l, :, None] * eye for l in range(L))


def scalar(ws):
    r"""Deep scalar network: ``ws`` of shape ``(..., L)`` becomes L ``1 x 1`` matrices.

    :math:`\lambda_{\min}(\mathcal T) = \tau = \sum_l\prod_{i\ne l}w_i^2` (§4.3).
    """
    xp, a = _from_host_or_array(ws)
    if a.ndim < 1:
        raise ValueError(f"linflow: scalar needs ws of shape (..., L); got {tuple(a.shape)}.")
    L = a.shape[-1]
    if xp is None:
        return _move([a[..., l, None, None] for l in range(L)])
    return tuple(a[..., l, None, None] for l in range(L))
