"""Network algebra: gradients, the operator T_W, lambda_min, imbalance (appendix *Numerical methods*, Test oracles).

References are computed on the host in float64 from explicit prefixes and suffixes;
the library runs on every row of the backend grid.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
from support import assert_like, host, random_weights, rel_err, tol

import linflow as lf

DIMS = [(3, 4, 2), (2, 3, 3, 2), (3, 2, 4, 3, 2)]


def np_product(Ws):
    return functools.reduce(np.matmul, Ws)


def np_prefix_suffix(Ws):
    L = len(Ws)
    n, m = Ws[0].shape[-2], Ws[-1].shape[-1]
    P = [np.eye(n)] + [np_product(Ws[:l]) for l in range(1, L)]
    S = [np_product(Ws[l + 1:]) for l in range(L - 1)] + [np.eye(m)]
    return P, S


def np_grads(Ws, G):
    P, S = np_prefix_suffix(Ws)
    return [p.T @ G @ s.T for p, s in zip(P, S)]


def np_T_matrix(Ws):
    """sum_l (P_l P_l^T) ⊗ (S_l^T S_l) on row-major vec (S_l^T S_l is symmetric)."""
    P, S = np_prefix_suffix(Ws)
    return sum(np.kron(p @ p.T, (s.T @ s).T) for p, s in zip(P, S))


def squared_F(Ws, Y):
    return 0.5 * np.sum((np_product(Ws) - Y) ** 2)


@pytest.mark.parametrize("dims", DIMS, ids=lambda d: "x".join(map(str, d)))
def test_layer_gradients_finite_differences(backend, rng, dims):
    Wh = random_weights(rng, dims)
    Yh = rng.normal(size=(dims[0], dims[-1]))
    # host central differences, eps = 1e-6 (row 1)
    fd = []
    eps = 1e-6
    for l, W in enumerate(Wh):
        g = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            Wp = [w.copy() for w in Wh]
            Wm = [w.copy() for w in Wh]
            Wp[l][idx] += eps
            Wm[l][idx] -= eps
            g[idx] = (squared_F(Wp, Yh) - squared_F(Wm, Yh)) / (2 * eps)
        fd.append(g)
    Ws = backend.weights(Wh)
    value, grads = lf.value_and_gradients(Ws, lf.losses.Squared(backend.asarray(Yh)))
    assert_like(value, backend, shape=())
    assert abs(float(host(value)) - squared_F(Wh, Yh)) <= tol(backend, 1e-12) * squared_F(Wh, Yh)
    for g, ref, W in zip(grads, fd, Ws):
        assert_like(g, backend, shape=W.shape)
        assert rel_err(g, ref) < tol(backend, 1e-6, 1e-4)
    # layer_gradients from G directly, against the explicit P^T G S^T
    G = np_product(Wh) - Yh
    for g, ref in zip(lf.layer_gradients(Ws, backend.asarray(G)), np_grads(Wh, G)):
        assert rel_err(g, ref) < tol(backend, 1e-12, 1e-5)


@pytest.mark.parametrize("dims", DIMS, ids=lambda d: "x".join(map(str, d)))
def test_energy_identity_and_product_dynamics(backend, rng, dims):
    Wh = random_weights(rng, dims)
    G = rng.normal(size=(dims[0], dims[-1]))
    Ws, Gd = backend.weights(Wh), backend.asarray(G)
    grads = lf.layer_gradients(Ws, Gd)
    e = lf.energy(Ws, Gd)
    assert_like(e, backend, shape=())
    s = sum(float(np.sum(host(g) ** 2)) for g in grads)
    assert abs(float(host(e)) - s) <= tol(backend, 1e-12, 1e-5) * s  # <G, T G> = sum ||g_l||^2
    TG = lf.T_apply(Ws, Gd)
    assert_like(TG, backend, shape=(dims[0], dims[-1]))
    # dW/dt along the field W_l' = -g_l, by a host central difference (row 2)
    g = np_grads(Wh, G)
    h = 1e-5
    Wp = np_product([w - h * gl for w, gl in zip(Wh, g)])
    Wm = np_product([w + h * gl for w, gl in zip(Wh, g)])
    dW = (Wp - Wm) / (2 * h)
    assert rel_err(TG, -dW) < tol(backend, 1e-8, 1e-5)


@pytest.mark.parametrize("dims", DIMS + [(4, 3)], ids=lambda d: "x".join(map(str, d)))
def test_T_matrix_lambda_min(backend, rng, dims):
    Wh = random_weights(rng, dims, scale=0.8)
    Ws = backend.weights(Wh)
    n, m = dims[0], dims[-1]
    M = lf.T_matrix(Ws)
    assert_like(M, backend, shape=(n * m, n * m))
    ref = np_T_matrix(Wh)
    assert rel_err(M, ref) < tol(backend, 1e-13, 1e-5)
    # T_matrix is T_apply on row-major vec
    E = rng.normal(size=(n, m))
    TE = host(lf.T_apply(Ws, backend.asarray(E)))
    assert rel_err(host(M) @ E.reshape(-1), TE.reshape(-1)) < tol(backend, 1e-13, 1e-5)
    lam = lf.lambda_min(Ws)
    assert_like(lam, backend, shape=())
    ev = np.linalg.eigvalsh(ref)
    assert abs(float(host(lam)) - ev[0]) <= tol(backend, 1e-12, 1e-5) * ev[-1]
    # Kronecker lower bound sum_l s_min^2(P_l) s_min^2(S_l) <= lambda_min (row 15)
    P, S = np_prefix_suffix(Wh)
    bound = sum(np.linalg.eigvalsh(p @ p.T)[0] * np.linalg.eigvalsh(s.T @ s)[0] for p, s in zip(P, S))
    assert bound <= ev[0] * (1 + 1e-9) + 1e-12
    # lambda_max_bound bounds the top eigenvalue
    assert float(host(lf.lambda_max_bound(Ws))) >= ev[-1] * (1 - tol(backend, 1e-12, 1e-5))
    if len(dims) == 3:  # L = 2: Kronecker sum, lambda_n(W1 W1^T) + lambda_m(W2^T W2)
        W1, W2 = Wh
        formula = np.linalg.eigvalsh(W1 @ W1.T)[0] + np.linalg.eigvalsh(W2.T @ W2)[0]
        assert abs(formula - ev[0]) <= 1e-12 * ev[-1]


def test_lambda_min_L2_large_uses_formula(rng):
    # L = 2 never builds the (n m)^2 matrix, so it works beyond max_size
    Wh = random_weights(rng, (40, 30, 50))
    lam = lf.lambda_min(Wh, max_size=16)
    W1, W2 = Wh
    ref = np.linalg.eigvalsh(W1 @ W1.T)[0] + np.linalg.eigvalsh(W2.T @ W2)[0]
    assert abs(lam - ref) <= 1e-10 * max(1.0, abs(ref))
    with pytest.raises(ValueError, match="max_size"):
        lf.lambda_min(random_weights(rng, (5, 3, 3, 5)), max_size=16)


def test_imbalance_products_and_singular_values(backend, rng):
    dims = (3, 4, 5, 2)
    Wh = random_weights(rng, dims)
    Ws = backend.weights(Wh)
    D = lf.imbalance(Ws)
    assert len(D) == len(dims) - 2
    for l, Dl in enumerate(D):
        assert_like(Dl, backend, shape=(dims[l + 1],) * 2)
        ref = Wh[l].T @ Wh[l] - Wh[l + 1] @ Wh[l + 1].T
        assert rel_err(Dl, ref) < tol(backend, 1e-14, 1e-5)
    W = lf.product(Ws)
    assert_like(W, backend, shape=(dims[0], dims[-1]))
    assert rel_err(W, np_product(Wh)) < tol(backend, 1e-14, 1e-5)
    P, S = lf.prefix_products(Ws), lf.suffix_products(Ws)
    Ph, Sh = np_prefix_suffix(Wh)
    for a, b in zip(P + S, Ph + Sh):
        assert_like(a, backend, shape=b.shape)
        assert rel_err(a, b) < tol(backend, 1e-14, 1e-5)
    sv = lf.singular_values(Ws)
    assert_like(sv, backend, shape=(2,))
    assert rel_err(sv, np.linalg.svd(np_product(Wh), compute_uv=False)) < tol(backend, 1e-13, 1e-5)
    assert rel_err(lf.sigma_min(Ws), np.linalg.svd(np_product(Wh), compute_uv=False)[-1]) < tol(
        backend, 1e-12, 1e-4)


def test_batched_equals_per_network(backend, rng):
    dims = (2, 3, 3, 2)
    B = (2, 3)
    Wh = random_weights(rng, dims, batch=B)
    Ws = backend.weights(Wh)
    funcs = {
        "product": lf.product, "lambda_min": lf.lambda_min, "sigma_min": lf.sigma_min,
        "lambda_max_bound": lf.lambda_max_bound, "T_matrix": lf.T_matrix,
    }
    # A backward-stable eigensolver or SVD gets every eigenvalue to about eps * ||T|| (Weyl), not to
    # eps * lambda_min: so the smallest ones are compared on the scale of the largest (on an H200,
    # cuSOLVER's batched and single lambda_min of 0.055 differed by 1.2e-14 relative to itself).
    scale = {"lambda_min": lf.lambda_max_bound, "sigma_min": lambda W: lf.singular_values(W)[..., 0]}
    for name, fn in funcs.items():
        out = fn(Ws)
        assert tuple(out.shape[:2]) == B, name
        for i in np.ndindex(B):
            one = backend.weights(tuple(W[i] for W in Wh))
            single = host(fn(one))
            ref = host(scale[name](one)) if name in scale else single
            err = float(np.max(np.abs(host(out)[i] - single)) / max(float(np.max(np.abs(ref))), 1e-300))
            assert err < tol(backend, 1e-14, 1e-6), name
    for seq in (lf.prefix_products(Ws), lf.suffix_products(Ws), lf.imbalance(Ws)):
        for a in seq:
            assert tuple(a.shape[:2]) == B


def test_single_layer(rng):
    W = rng.normal(size=(3, 2))
    G = rng.normal(size=(3, 2))
    assert np.allclose(lf.T_apply((W,), G), G)  # L = 1: T is the identity
    assert float(lf.lambda_min((W,))) == 1.0
    assert float(lf.lambda_max_bound((W,))) == 1.0
    assert lf.imbalance((W,)) == ()
    (g,) = lf.layer_gradients((W,), G)
    assert np.array_equal(g, G)
