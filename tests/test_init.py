"""Initializations (linflow.init): each scheme delivers what it promises.

Seeded host draws moved once to the default backend; batched over leading axes;
prescribed imbalances come back to 1e-10; the unimodality index is recovered.
"""
from __future__ import annotations

import numpy as np
import pytest

import linflow as lf

I = lf.init


def np_(x):
    return np.asarray(lf.to_numpy(x))


# --- Gaussian schemes (App. A) ---------------------------------------------------------

@pytest.mark.parametrize("scheme", ["ntk", "fan_in", "fan_out"])
def test_gaussian_variances(scheme):
    dims = (30, 60, 40, 20)
    Ws = I.gaussian(dims, scheme, batch=(8,), seed=1)
    assert [tuple(W.shape) for W in Ws] == [(8, 30, 60), (8, 60, 40), (8, 40, 20)]
    for l, W in enumerate(Ws):
        want = {"ntk": 1.0, "fan_in": 1 / dims[l], "fan_out": 1 / dims[l + 1]}[scheme]
        var = np.var(np_(W))
        assert var == pytest.approx(want, rel=0.05)


def test_gaussian_custom_seeded_and_batched():
    a = I.gaussian((3, 4, 2), "custom", std=[2.0, 0.5], batch=(2, 3), seed=7)
    b = I.gaussian((3, 4, 2), "custom", std=[2.0, 0.5], batch=(2, 3), seed=7)
    c = I.gaussian((3, 4, 2), "custom", std=[2.0, 0.5], batch=(2, 3), seed=8)
    assert tuple(a[0].shape) == (2, 3, 3, 4) and tuple(a[1].shape) == (2, 3, 4, 2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np_(x), np_(y))
    assert not np.allclose(np_(a[0]), np_(c[0]))
    # the host draw: rng.standard_normal, layer by layer, times std
    rng = np.random.default_rng(7)
    np.testing.assert_allclose(np_(a[0]), rng.standard_normal((2, 3, 3, 4)) * 2.0)
    np.testing.assert_allclose(np_(a[1]), rng.standard_normal((2, 3, 4, 2)) * 0.5)


def test_gaussian_bad_inputs():
    with pytest.raises(ValueError, match="unknown scheme"):
        I.gaussian((2, 3), "he")
    with pytest.raises(ValueError, match="needs std"):
        I.gaussian((2, 3), "custom")
    with pytest.raises(ValueError, match="one per layer"):
        I.gaussian((2, 3, 4), "custom", std=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="only used with scheme='custom'"):
        I.gaussian((2, 3), "ntk", std=1.0)
    with pytest.raises(ValueError, match="at least 2 widths"):
        I.gaussian((2,))
    with pytest.raises(ValueError, match="positive integer"):
        I.gaussian((2, 0, 3))


def test_default_backend_and_same_values_everywhere():
    import array_api_strict as xs

    ref = I.gaussian((2, 3, 2), seed=3)
    with lf.set_backend("array_api_strict"):
        Ws = I.gaussian((2, 3, 2), seed=3)
        Wb = I.unimodal((2, 2, 2), 2, [0.5], seed=3)
    assert all(lf.namespace(W) is lf.namespace(xs.asarray(0.0)) for W in Ws)
    for x, y in zip(Ws, ref):
        np.testing.assert_array_equal(lf.to_numpy(x), np_(y))
    np.testing.assert_allclose(lf.to_numpy(lf.imbalance(Wb)[0]), 0.5 * np.eye(2), atol=1e-12)


# --- balanced and lambda-balanced ------------------------------------------------------

@pytest.mark.parametrize("dims", [(3, 4, 5, 2), (2, 2, 3), (4, 4, 4, 4, 4), (1, 3, 2, 5)])
def test_balanced_imbalance_zero_and_product(dims):
    rng = np.random.default_rng(2)
    Wp = rng.normal(size=(6, dims[0], dims[-1]))
    Ws = I.balanced(dims, product=Wp, seed=1)
    for D in lf.imbalance(Ws):
        np.testing.assert_allclose(np_(D), 0, atol=1e-10)
    np.testing.assert_allclose(np_(lf.product(Ws)), Wp, atol=1e-10)
    # sigma_i(W_l) = sigma_i(W)^(1/L)
    L = len(dims) - 1
    s = np.linalg.svd(Wp, compute_uv=False)
    s1 = np.linalg.svd(np_(Ws[0]), compute_uv=False)[..., : s.shape[-1]]
    np.testing.assert_allclose(s1, s ** (1 / L), atol=1e-10)
    # random product, batch
    Wr = I.balanced(dims, batch=(3,), seed=2)
    assert tuple(Wr[0].shape[:-2]) == (3,)
    for D in lf.imbalance(Wr):
        np.testing.assert_allclose(np_(D), 0, atol=1e-10)


def test_balanced_width_constraint():
    with pytest.raises(ValueError, match="width constraint"):
        I.balanced((3, 2, 3))


@pytest.mark.parametrize("dims,lam", [((4, 3, 2), 0.7), ((2, 3, 4), -0.5), ((3, 3, 3), 0.0),
                                      ((2, 5, 3), 0.0), ((3, 3, 3), -2.0), ((5, 2, 1), 1e-6)])
def test_lambda_balanced(dims, lam):
    Ws = I.lambda_balanced(dims, lam, batch=(4,), seed=5)
    D = np_(lf.imbalance(Ws)[0])
    np.testing.assert_allclose(D, np.broadcast_to(lam * np.eye(dims[1]), D.shape), atol=1e-10)
    assert tuple(Ws[0].shape) == (4, dims[0], dims[1])


def test_lambda_balanced_errors():
    with pytest.raises(ValueError, match="h <= n"):
        I.lambda_balanced((2, 3, 4), 0.5)
    with pytest.raises(ValueError, match="h <= m"):
        I.lambda_balanced((4, 3, 2), -0.5)
    with pytest.raises(ValueError, match="two-layer"):
        I.lambda_balanced((2, 2, 2, 2), 0.5)


# --- spectral (App. E.1) ---------------------------------------------------------------

@pytest.mark.parametrize("n,m", [(3, 2), (2, 3), (2, 2)])
def test_spectral_structure(n, m):
    rng = np.random.default_rng(n * 10 + m)
    Y = rng.normal(size=(n, m))
    S = np.abs(rng.normal(size=(3, n))) + 0.2
    Ws = I.spectral(Y, S, widths=(n + 1, n + 2), seed=0)
    assert [tuple(W.shape) for W in Ws] == [(n, n + 1), (n + 1, n + 2), (n + 2, m)]
    U, s, Vt = np.linalg.svd(Y, full_matrices=True)
    r = min(n, m)
    core = U.T @ np_(lf.product(Ws)) @ Vt.T
    want = np.zeros((n, m))
    want[np.arange(r), np.arange(r)] = np.prod(S, axis=0)[:r]
    np.testing.assert_allclose(core, want, atol=1e-12)
    # singular values of the inner layers are the chosen sigmas (V_l^T V_l = I)
    np.testing.assert_allclose(np.linalg.svd(np_(Ws[1]), compute_uv=False)[:n],
                               np.sort(S[1])[::-1], atol=1e-12)
    # imbalances are diagonal in the V basis: D_l has eigenvalues sigma_l^2 - sigma_{l+1}^2 (+ zeros)
    ev = np.sort(np.linalg.eigvalsh(np_(lf.imbalance(Ws)[0])))
    want_ev = np.sort(np.concatenate([S[0] ** 2 - S[1] ** 2, np.zeros(1)]))
    np.testing.assert_allclose(ev, want_ev, atol=1e-12)


def test_spectral_modes_are_scalar_networks_along_the_flow():
    """The structure is kept and each mode follows the scalar flow."""
    rng = np.random.default_rng(3)
    Y = np.diag([2.0, 1.0]) @ np.linalg.qr(rng.normal(size=(2, 2)))[0]
    S = np.array([[1.1, 0.6], [0.8, 0.9], [0.7, 0.5]])
    Ws = I.spectral(Y, S, widths=(3, 4), seed=1)
    loss = lf.losses.Squared(Y)
    t_eval = np.linspace(0, 1.5, 4)
    traj = lf.gradient_flow(Ws, loss, 1.5, rtol=1e-11, atol=1e-13, t_eval=t_eval, progress=False,
                            save=("loss", "product"))
    U, s, Vt = np.linalg.svd(Y)
    core = U.T @ np_(traj.product) @ Vt.T  # (S, 2, 2)
    np.testing.assert_allclose(core[:, 0, 1], 0, atol=1e-9)
    np.testing.assert_allclose(core[:, 1, 0], 0, atol=1e-9)
    for i in range(2):
        ws = I.scalar(S[:, i][None, :])
        tr = lf.gradient_flow(ws, lf.losses.Squared(np.full((1, 1), s[i])), 1.5, rtol=1e-11, atol=1e-13,
                              t_eval=t_eval, progress=False, save=("loss", "product"))
        np.testing.assert_allclose(core[:, i, i], np_(tr.product)[:, 0, 0, 0], atol=1e-8)


def test_spectral_errors():
    with pytest.raises(ValueError, match="hidden width >= n"):
        I.spectral(np.eye(3), np.ones((2, 3)), widths=(2,))
    with pytest.raises(ValueError, match=r"\(\.\.\., L, k\)"):
        I.spectral(np.eye(2), np.ones((2, 3)))


# --- unimodal / homogeneous (Definition 3) ------------------------------------------------

def rand_psd(rng, h, rank):
    G = rng.normal(size=(h, rank))
    return G @ G.T


def test_unimodal_returns_requested_imbalances_and_index():
    rng = np.random.default_rng(4)
    checked = set()
    for trial in range(40):
        L = int(rng.integers(2, 6))
        ls = int(rng.integers(1, L + 1))
        dims = [0] * (L + 1)
        dims[ls - 1], dims[ls] = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        for l in range(ls - 2, -1, -1):
            dims[l] = dims[l + 1] + int(rng.integers(0, 2))
        for l in range(ls + 1, L + 1):
            dims[l] = dims[l - 1] + int(rng.integers(0, 2))
        D = []
        for l in range(1, L):
            h = dims[l]
            full = l in (ls - 1, ls)  # nonzero next to the peak, so l* is identifiable
            M = rand_psd(rng, h, h if full else int(rng.integers(0, h + 1)))
            M = M * np.exp(rng.uniform(-4, 2)) + (0.05 * np.eye(h) if full else 0)
            D.append(M if l < ls else -M)
        Ws = I.unimodal(dims, ls, D, batch=(3,), seed=trial)
        assert [tuple(W.shape[-2:]) for W in Ws] == list(zip(dims[:-1], dims[1:]))
        for got, want in zip(lf.imbalance(Ws), D):
            np.testing.assert_allclose(np_(got), np.broadcast_to(want, np_(got).shape), atol=1e-10 * max(1, np.abs(want).max()))
        np.testing.assert_array_equal(lf.bounds.unimodal_index(Ws), ls)
        one = tuple(W[0] for W in Ws)
        assert lf.bounds.unimodal_index(one) == ls
        checked.add((L, ls))
    assert len(checked) >= 8


def test_unimodal_scalars_and_batched_matrices():
    Ws = I.unimodal((3, 2, 2, 3), 2, [0.5, -0.25], batch=(2,), seed=0)
    D = lf.imbalance(Ws)
    np.testing.assert_allclose(np_(D[0]), np.broadcast_to(0.5 * np.eye(2), (2, 2, 2)), atol=1e-12)
    np.testing.assert_allclose(np_(D[1]), np.broadcast_to(-0.25 * np.eye(2), (2, 2, 2)), atol=1e-12)
    rng = np.random.default_rng(1)
    Db = np.stack([rand_psd(rng, 2, 2) for _ in range(4)])
    Ws = I.unimodal((2, 2, 3), 2, [Db], seed=0)
    assert tuple(Ws[0].shape) == (4, 2, 2)
    np.testing.assert_allclose(np_(lf.imbalance(Ws)[0]), Db, atol=1e-10)


def test_unimodal_D_forms():
    """D as one number (every layer), a 1-D array, or one matrix for L = 2."""
    a = I.unimodal((2, 2, 2, 2), 3, 0.4, seed=0)
    b = I.unimodal((2, 2, 2, 2), 3, np.array([0.4, 0.4]), seed=0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np_(x), np_(y))
    for D in lf.imbalance(a):
        np.testing.assert_allclose(np_(D), 0.4 * np.eye(2), atol=1e-12)
    M = np.array([[2.0, 0.5], [0.5, 1.0]])
    W = I.unimodal((2, 2, 3), 2, M, seed=0)
    np.testing.assert_allclose(np_(lf.imbalance(W)[0]), M, atol=1e-12)


def test_unimodal_errors():
    with pytest.raises(ValueError, match=r"D_l ⪰ 0 for l < l\*"):
        I.unimodal((2, 2, 2), 2, [-1.0])
    with pytest.raises(ValueError, match=r"D_l ⪯ 0 for l >= l\*"):
        I.unimodal((2, 2, 2, 2), 2, [1.0, 1.0])
    with pytest.raises(ValueError, match="rank greater than"):
        I.unimodal((1, 3, 1), 2, [1.0])  # W_1^T W_1 = I_3 + ... needs 3 rows
    with pytest.raises(ValueError, match="l_star"):
        I.unimodal((2, 2, 2), 3, [1.0])
    with pytest.raises(ValueError, match="L-1 = 2"):
        I.unimodal((2, 2, 2, 2), 1, [-1.0])


def test_homogeneous():
    Ws = I.homogeneous((2, 2, 2, 2, 2), [0.3, 0.1, -0.2], batch=(3,), seed=2)
    for got, d in zip(lf.imbalance(Ws), [0.3, 0.1, -0.2]):
        np.testing.assert_allclose(np_(got), np.broadcast_to(d * np.eye(2), np_(got).shape), atol=1e-12)
    assert np.all(lf.bounds.is_homogeneous(Ws))
    np.testing.assert_array_equal(lf.bounds.unimodal_index(Ws), 3)
    assert lf.bounds.unimodal_index(I.homogeneous((2, 2, 2), [0.0], seed=0)) == 1  # D = 0: the smallest l*
    with pytest.raises(ValueError, match="unimodal"):
        I.homogeneous((2, 2, 2, 2), [-0.3, 0.2])
    assert not lf.bounds.is_homogeneous(I.unimodal((2, 2, 2), 2, [np.diag([1.0, 2.0])], seed=0))


# --- diagonal and scalar networks -----------------------------------------------------------

def test_diagonal_and_scalar():
    rng = np.random.default_rng(5)
    ws = rng.normal(size=(4, 3, 5))  # batch 4, L = 3, n = 5
    Ws = I.diagonal(ws)
    assert [tuple(W.shape) for W in Ws] == [(4, 5, 5)] * 3
    np.testing.assert_allclose(np.diagonal(np_(lf.product(Ws)), axis1=-2, axis2=-1), np.prod(ws, axis=1))
    # App. E.2: per-coordinate imbalances w_{l,i}^2 - w_{l+1,i}^2
    np.testing.assert_allclose(np.diagonal(np_(lf.imbalance(Ws)[0]), axis1=-2, axis2=-1),
                               ws[:, 0] ** 2 - ws[:, 1] ** 2)
    s = I.scalar(ws[:, :, 0])
    assert [tuple(W.shape) for W in s] == [(4, 1, 1)] * 3
    np.testing.assert_allclose(np_(lf.product(s))[:, 0, 0], np.prod(ws[:, :, 0], axis=1))
    # arrays keep their namespace
    import array_api_strict as xs

    Wx = I.scalar(xs.asarray(ws[0, :, 0]))
    assert lf.namespace(*Wx) is lf.namespace(xs.asarray(0.0))
    Dx = I.diagonal(xs.asarray(ws[0]))
    np.testing.assert_allclose(lf.to_numpy(Dx[1]), np.diag(ws[0, 1]))


@pytest.mark.parametrize("make", [
    lambda: I.gaussian((2, 3, 2), "fan_out", batch=(2,), seed=1),
    lambda: I.balanced((2, 3, 3), batch=(2,), seed=1),
    lambda: I.lambda_balanced((3, 2, 2), 0.4, seed=1),
    lambda: I.unimodal((3, 2, 2, 3), 2, [0.5, -0.2], seed=1),
    lambda: I.homogeneous((2, 2, 2), [0.1], seed=1),
    lambda: I.scalar([0.5, 2.0, -1.0]),
    lambda: I.diagonal([[1.0, 2.0], [0.5, -1.0]]),
], ids=["gaussian", "balanced", "lambda_balanced", "unimodal", "homogeneous", "scalar", "diagonal"])
def test_init_on_strict_device1_matches_numpy(make):
    """Host draw, one move: same numbers on every backend; results land on the backend's device."""
    import array_api_strict as xs

    ref = make()
    dev = next(d for d in xs.__array_namespace_info__().devices() if "device1" in str(d))
    with lf.set_backend("array_api_strict", device=dev):
        Ws = make()
    for W, R in zip(Ws, ref):
        assert W.device == dev
        np.testing.assert_array_equal(lf.to_numpy(W), np_(R))
    # and the bounds run there without a hidden host transfer
    np.testing.assert_array_equal(lf.bounds.unimodal_indices(Ws), lf.bounds.unimodal_indices(ref))
