"""The steps of the proofs of chapters 1-4 and of the Tools and Numerical methods appendices.

Every inequality or identity of those proofs that is not immediate is evaluated on random
matrices of several shapes (n != m, uneven widths, several seeds), with linflow's functions
(lf.T_apply, lf.T_matrix, lf.lambda_min, lf.energy, lf.imbalance, lf.value_and_gradients,
lf.bounds.arora) on one side and plain NumPy on the other. Tolerances are multiples of the
machine epsilon scaled by the size of the numbers compared.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import linflow as lf

EPS = np.finfo(float).eps
SEEDS = (0, 1, 2)
# (n, h_1, ..., h_{L-1}, m): n != m, uneven widths, depths 2 to 4
DIMS = [(3, 4, 2), (2, 5, 3), (4, 3, 5, 2), (3, 6, 4, 3), (2, 3, 4, 5, 3)]


def tol(*arrays, k=200.0):
    """k eps times the largest magnitude among the arrays (at least 1)."""
    scale = max([1.0] + [float(np.max(np.abs(np.asarray(a)))) for a in arrays])
    return k * EPS * scale


def layers(dims, seed):
    return [lf.to_numpy(W) for W in lf.init.gaussian(dims, "custom", std=0.7, seed=seed)]


def chain(Ws):
    out = Ws[0]
    for W in Ws[1:]:
        out = out @ W
    return out


def prefix_suffix(Ws, l):
    """P_l = W_1...W_{l-1} and Q_l = W_{l+1}...W_L for l = 1..L (identities at the ends)."""
    n, m = Ws[0].shape[0], Ws[-1].shape[1]
    P = chain(Ws[:l - 1]) if l > 1 else np.eye(n)
    Q = chain(Ws[l:]) if l < len(Ws) else np.eye(m)
    return P, Q


def psd_power(A, p):
    """A^p of a symmetric PSD matrix through its spectral decomposition (0^0 = 1)."""
    lam, V = np.linalg.eigh(A)
    # eigenvalues at round-off level are the zero eigenvalues of a rank-deficient A (their
    # fractional powers would amplify round-off: (1e-16)^(1/4) = 1e-4)
    lam = np.where(lam > 1e-12 * max(1.0, float(np.abs(lam).max())), lam, 0.0)
    return (V * lam ** p if p > 0 else V) @ V.T


def squared(dims, seed):
    rng = np.random.default_rng(100 + seed)
    return lf.losses.Squared(lf.asarray(rng.standard_normal((dims[0], dims[-1]))))


# --- chapter 1 ----------------------------------------------------------------------------

@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_no_rank_bottleneck_construction(dims, seed):
    # lm-lem-width: the balanced factorization of any W has product W
    W = np.random.default_rng(seed).standard_normal((dims[0], dims[-1]))
    Ws = lf.init.balanced(dims, product=lf.asarray(W), seed=seed)
    assert [tuple(V.shape) for V in Ws] == list(zip(dims[:-1], dims[1:]))
    prod = lf.to_numpy(lf.product(Ws))
    assert np.max(np.abs(prod - W)) < tol(W, k=1e3)


@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_layer_gradients_are_P_G_Q(dims, seed):
    # lm-lem-layer-grad: dL/dW_l = P_l^T grad f(W) Q_l^T, against a central difference
    Ws, loss = layers(dims, seed), squared(dims, seed)
    G = lf.to_numpy(loss.grad(lf.asarray(chain(Ws))))
    _, grads = lf.value_and_gradients([lf.asarray(W) for W in Ws], loss)
    rng = np.random.default_rng(seed + 7)
    for l, g in enumerate(grads, start=1):
        P, Q = prefix_suffix(Ws, l)
        assert np.max(np.abs(lf.to_numpy(g) - P.T @ G @ Q.T)) < tol(G, P, Q, k=1e3)
        E = rng.standard_normal(Ws[l - 1].shape)
        h = 1e-6
        plus = [W + (h * E if k == l - 1 else 0) for k, W in enumerate(Ws)]
        minus = [W - (h * E if k == l - 1 else 0) for k, W in enumerate(Ws)]
        fd = (float(loss.value(lf.asarray(chain(plus))))
              - float(loss.value(lf.asarray(chain(minus))))) / (2 * h)
        assert abs(fd - float(np.sum(lf.to_numpy(g) * E))) < 1e-6 * max(1.0, abs(fd))


# --- chapter 2 ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_strong_convexity_gives_A1_with_gamma_2mu(seed):
    # gd-lem-a2-a1: ||grad f||^2 >= 2 mu (f - f*), and the completed square q(V) >= f - |g|^2/2mu
    rng = np.random.default_rng(seed)
    f = lf.widgets.regression_problem(30, 4, 3, kappa=5.0 + seed, seed=seed)
    mu, fstar = float(f.mu), float(f.f_star)
    for _ in range(50):
        W = lf.asarray(rng.standard_normal((4, 3)) * 3)
        g = lf.to_numpy(f.grad(W))
        gap = float(f.value(W)) - fstar
        assert float(np.sum(g * g)) >= 2 * mu * gap - tol(gap, k=1e4)
        V = rng.standard_normal((4, 3))
        q = (float(f.value(W)) + float(np.sum(g * (V - lf.to_numpy(W))))
             + mu / 2 * float(np.sum((V - lf.to_numpy(W)) ** 2)))
        assert float(f.value(lf.asarray(V))) >= q - tol(q, k=1e4)
        assert q >= float(f.value(W)) - float(np.sum(g * g)) / (2 * mu) - tol(q, k=1e4)


@pytest.mark.parametrize("seed", SEEDS)
def test_exponential_loss_satisfies_A1_prime_with_the_margin(seed):
    # the remark of chapter 2: ||grad f|| >= <-grad f, z> >= gamma f for the exponential loss
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((25, 3))
    y = np.sign(X @ np.array([1.0, -0.5, 0.2]))
    f = lf.losses.Exponential(lf.asarray(X), lf.asarray(y))
    gamma = float(f.gamma)
    assert gamma > 0
    for _ in range(100):
        w = lf.asarray(rng.standard_normal((3, 1)) * 2)
        g = lf.to_numpy(f.grad(w))
        assert float(np.linalg.norm(g)) >= gamma * float(f.value(w)) * (1 - 1e-12)


def test_inverse_rate_along_a_flow():
    # gd-thm-inverse (and tool-gronwall part 2): f(t) <= f0 / (1 + gamma^2 f0 t)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    y = np.sign(X @ np.array([0.3, 1.0, -0.7]))
    f = lf.losses.Exponential(lf.asarray(X), lf.asarray(y))
    t = np.geomspace(1e-2, 1e2, 60)
    w0 = lf.asarray(np.zeros((3, 1)))
    run = lf.gradient_flow((w0,), f, t[-1], t_eval=t).to_numpy()
    f0, g = float(f.value(w0)), float(f.gamma)
    assert np.all(run.loss <= f0 / (1 + g ** 2 * f0 * t) * (1 + 1e-7))


# --- chapter 3 ----------------------------------------------------------------------------

@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_lemma_1_identity_self_adjoint_and_psd(dims, seed):
    Ws = layers(dims, seed)
    W = [lf.asarray(V) for V in Ws]
    rng = np.random.default_rng(seed + 11)
    n, m = dims[0], dims[-1]
    E, F = rng.standard_normal((n, m)), rng.standard_normal((n, m))
    TE, TF = lf.to_numpy(lf.T_apply(W, lf.asarray(E))), lf.to_numpy(lf.T_apply(W, lf.asarray(F)))
    # T E = sum_l P_l P_l^T E Q_l^T Q_l
    direct = sum(P @ P.T @ E @ Q.T @ Q for P, Q in (prefix_suffix(Ws, l)
                                                     for l in range(1, len(Ws) + 1)))
    assert np.max(np.abs(TE - direct)) < tol(TE, k=1e3)
    # <T E, F> = <E, T F> (cyclic trace) and <T E, E> = sum_l ||P_l^T E Q_l^T||^2 >= 0
    assert abs(np.sum(TE * F) - np.sum(E * TF)) < tol(TE, TF, k=1e4)
    norms = sum(float(np.sum((P.T @ E @ Q.T) ** 2))
                for P, Q in (prefix_suffix(Ws, l) for l in range(1, len(Ws) + 1)))
    assert abs(float(np.sum(TE * E)) - norms) < tol(norms, k=1e4) and norms >= 0
    # <G, T G> = ||grad L||^2 with G = grad f(W) (lf.energy against the layer gradients)
    loss = squared(dims, seed)
    G = loss.grad(lf.product(W))
    _, grads = lf.value_and_gradients(W, loss)
    sq = sum(float(np.sum(lf.to_numpy(g) ** 2)) for g in grads)
    assert abs(float(lf.energy(W, G)) - sq) < tol(sq, k=1e4)


@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_kronecker_lower_bound_on_lambda_min(dims, seed):
    # appendix Conventions: lambda_min(T) >= sum_l sigma_n(P_l)^2 sigma_m(Q_l)^2 (sigma = 0 beyond
    # the smaller dimension), i.e. sum_l lambda_n(P_l P_l^T) lambda_m(Q_l^T Q_l)
    Ws = layers(dims, seed)
    lam = float(lf.lambda_min([lf.asarray(V) for V in Ws]))
    bound = sum(np.linalg.eigvalsh(P @ P.T)[0] * np.linalg.eigvalsh(Q.T @ Q)[0]
                for P, Q in (prefix_suffix(Ws, l) for l in range(1, len(Ws) + 1)))
    assert bound <= lam + tol(lam, k=1e3)


def test_kronecker_bound_with_sigma_min_is_false():
    # the counterexample of the appendix: sigma_min(P_l) in place of sigma_n(P_l) overstates
    W1, W2 = np.array([[1.0], [0.5], [0.2]]), np.array([[0.7]])
    lam = float(lf.lambda_min([lf.asarray(W1), lf.asarray(W2)]))
    assert abs(lam - 0.49) < 1e-12
    wrong = 1.0 * 0.7 ** 2 + np.linalg.svd(W1, compute_uv=False)[-1] ** 2 * 1.0
    assert abs(wrong - 1.78) < 1e-12 and wrong > lam


@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_rayleigh_bound_on_T(dims, seed):
    # pc-prop-rate: <T G, G> >= lambda_min(T) ||G||^2 (tool-courant-fischer), any G
    W = [lf.asarray(V) for V in layers(dims, seed)]
    lam = float(lf.lambda_min(W))
    evs = np.linalg.eigvalsh(lf.to_numpy(lf.T_matrix(W)))
    assert abs(lam - evs[0]) < tol(evs, k=1e3) and lam >= -tol(evs, k=1e3)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        G = rng.standard_normal((dims[0], dims[-1]))
        q = float(np.sum(lf.to_numpy(lf.T_apply(W, lf.asarray(G))) * G))
        assert q >= lam * float(np.sum(G * G)) - tol(evs, k=1e4) * float(np.sum(G * G))


@pytest.mark.parametrize("seed", SEEDS)
def test_rate_from_the_minimum_of_lambda_min_along_a_flow(seed):
    # pc-prop-rate along a run: L(t) - L* <= exp(-alpha gamma t) (L(0) - L*), alpha = min lambda_min
    loss = lf.losses.Squared(lf.asarray(np.diag([3.0, 2.0, 1.0])))
    t = np.linspace(0.0, 5.0, 101)
    run = lf.gradient_flow(lf.init.gaussian((3, 4, 3), "custom", std=0.5, seed=seed), loss,
                           t[-1], t_eval=t, diagnostics=("lambda_min",)).to_numpy()
    alpha = float(run.diagnostics["lambda_min"].min())
    gap = run.loss - float(loss.f_star)
    assert np.all(gap <= np.exp(-alpha * float(loss.gamma) * t) * gap[0] * (1 + 1e-7))


BALANCED = [(3, 4, 2), (2, 3, 4), (3, 4, 4, 3), (3, 5, 4, 2), (2, 4, 3, 5, 3), (4, 4, 4, 4)]


@pytest.mark.parametrize("dims,seed", list(itertools.product(BALANCED, SEEDS)))
def test_balanced_gram_matrices_and_T(dims, seed):
    # pc-thm-balanced, step 2: P_l P_l^T = (W W^T)^{(l-1)/L}, Q_l^T Q_l = (W^T W)^{(L-l)/L}
    Wl = lf.init.balanced(dims, seed=seed)
    Ws = [lf.to_numpy(V) for V in Wl]
    for D in lf.imbalance(Wl):
        assert np.max(np.abs(lf.to_numpy(D))) < tol(*Ws, k=1e3)
    L, W = len(Ws), chain(Ws)
    WWt, WtW = W @ W.T, W.T @ W
    for l in range(1, L + 1):
        P, Q = prefix_suffix(Ws, l)
        assert np.max(np.abs(P @ P.T - psd_power(WWt, (l - 1) / L))) < 1e-9 * max(1, np.abs(WWt).max())
        assert np.max(np.abs(Q.T @ Q - psd_power(WtW, (L - l) / L))) < 1e-9 * max(1, np.abs(WtW).max())
    # the closed form of T on a random E
    E = np.random.default_rng(seed).standard_normal(W.shape)
    closed = sum(psd_power(WWt, (l - 1) / L) @ E @ psd_power(WtW, (L - l) / L)
                 for l in range(1, L + 1))
    TE = lf.to_numpy(lf.T_apply(Wl, lf.asarray(E)))
    assert np.max(np.abs(TE - closed)) < 1e-9 * max(1.0, np.abs(TE).max())


@pytest.mark.parametrize("dims,seed", list(itertools.product(BALANCED, SEEDS)))
def test_balanced_spectrum_of_T(dims, seed):
    # pc-thm-balanced, step 3: the eigenvalues are mu_ik = sum_l s_i^{2(l-1)/L} s_k^{2(L-l)/L}
    # (s = 0 beyond the rank, 0^0 = 1), and lambda_min is L s_min^{2-2/L} (n = m) or s_min^{2-2/L}
    Wl = lf.init.balanced(dims, seed=seed)
    n, m, L = dims[0], dims[-1], len(dims) - 1
    s = np.linalg.svd(lf.to_numpy(lf.product(Wl)), compute_uv=False)
    si = np.concatenate([s, np.zeros(n - len(s))])
    sk = np.concatenate([s, np.zeros(m - len(s))])

    def pw(x, p):
        return 1.0 if p == 0 else x ** p

    mu = sorted(sum(pw(a, 2 * (l - 1) / L) * pw(b, 2 * (L - l) / L) for l in range(1, L + 1))
                for a in si for b in sk)
    evs = np.linalg.eigvalsh(lf.to_numpy(lf.T_matrix(Wl)))
    assert np.max(np.abs(np.array(mu) - evs)) < 1e-9 * max(1.0, evs.max())
    smin = s[-1]
    expected = (L if n == m else 1) * smin ** (2 - 2 / L)
    assert abs(evs[0] - expected) < 1e-9 * max(1.0, evs.max())
    assert abs(float(lf.bounds.arora(Wl)) - expected) < 1e-9 * max(1.0, evs.max())
    # each term of mu_ik (i, k <= r) is at least s_min^{2-2/L}
    for a, b in itertools.product(s, s):
        for l in range(1, L + 1):
            assert pw(a, 2 * (l - 1) / L) * pw(b, 2 * (L - l) / L) >= smin ** (2 - 2 / L) * (1 - 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_psd_root_of_a_power(seed):
    # the remark before the proof: (M^L)^{1/L} = M for M >= 0
    A = np.random.default_rng(seed).standard_normal((4, 2))
    M = A @ A.T                                   # rank 2: zero eigenvalues included
    for L in (2, 3, 4):
        ML = np.linalg.matrix_power(M, L)
        assert np.max(np.abs(psd_power(ML, 1 / L) - M)) < 1e-7 * max(1.0, np.abs(M).max())


# --- chapter 4 ----------------------------------------------------------------------------

@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_lemma_2_derivatives_agree(dims, seed):
    # imb-lem-2 (and step 1 of pc-thm-balanced): d/dt W_l^T W_l = d/dt W_{l+1} W_{l+1}^T
    Wl = lf.init.gaussian(dims, "custom", std=0.7, seed=seed)
    Ws, loss = [lf.to_numpy(V) for V in Wl], squared(dims, seed)
    _, grads = lf.value_and_gradients(Wl, loss)
    dW = [-lf.to_numpy(g) for g in grads]
    for l in range(len(Ws) - 1):
        left = dW[l].T @ Ws[l] + Ws[l].T @ dW[l]
        right = dW[l + 1] @ Ws[l + 1].T + Ws[l + 1] @ dW[l + 1].T
        assert np.max(np.abs(left - right)) < tol(left, right, k=1e3)


@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_rescaling_symmetry_identity(dims, seed):
    # imb-prop-symmetry: <grad_{W_l} L, W_l A> = <grad_{W_{l+1}} L, A W_{l+1}> for every A
    Wl = lf.init.gaussian(dims, "custom", std=0.7, seed=seed)
    Ws, loss = [lf.to_numpy(V) for V in Wl], squared(dims, seed)
    _, grads = lf.value_and_gradients(Wl, loss)
    g = [lf.to_numpy(x) for x in grads]
    rng = np.random.default_rng(seed)
    for l in range(len(Ws) - 1):
        A = rng.standard_normal((dims[l + 1], dims[l + 1]))
        a, b = np.sum(g[l] * (Ws[l] @ A)), np.sum(g[l + 1] * (A @ Ws[l + 1]))
        assert abs(a - b) < tol(a, b, k=1e4)
        # and the orbit step leaves the product unchanged but moves D_l
        S = np.eye(dims[l + 1]) + 0.3 * A / np.linalg.norm(A, 2)
        V = [W.copy() for W in Ws]
        V[l], V[l + 1] = Ws[l] @ S, np.linalg.solve(S, Ws[l + 1])
        assert np.max(np.abs(chain(V) - chain(Ws))) < 1e-10 * max(1, np.abs(chain(Ws)).max())


@pytest.mark.parametrize("seed", SEEDS)
def test_one_gd_step_changes_D_by_eta_squared_term(seed):
    # imb-ex-gd-step: D_l(k+1) - D_l(k) = eta^2 (g_l^T g_l - g_{l+1} g_{l+1}^T), exactly
    dims, eta = (3, 4, 5, 2), 0.05
    Wl = lf.init.gaussian(dims, "custom", std=0.7, seed=seed)
    loss = squared(dims, seed)
    _, grads = lf.value_and_gradients(Wl, loss)
    g = [lf.to_numpy(x) for x in grads]
    after = [lf.asarray(lf.to_numpy(W) - eta * gl) for W, gl in zip(Wl, g)]
    D0 = [lf.to_numpy(D) for D in lf.imbalance(Wl)]
    D1 = [lf.to_numpy(D) for D in lf.imbalance(after)]
    for l in range(len(D0)):
        step = eta ** 2 * (g[l].T @ g[l] - g[l + 1] @ g[l + 1].T)
        assert np.max(np.abs(D1[l] - D0[l] - step)) < tol(D0[l], D1[l], k=1e3)


# --- the Tools appendix -----------------------------------------------------------------

SHAPES = [(3, 5), (5, 3), (4, 4), (2, 6)]


def sym(rng, k):
    A = rng.standard_normal((k, k))
    return (A + A.T) / 2


def ev(A):
    return np.linalg.eigvalsh(A)[::-1]        # decreasing, as in the book


def sv(A):
    return np.linalg.svd(A, compute_uv=False)


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_weyl(seed):
    rng = np.random.default_rng(seed)
    for k in (3, 5):
        A, B = sym(rng, k), sym(rng, k)
        a, b, c = ev(A), ev(B), ev(A + B)
        t = tol(a, b, k=100)
        for i, j in itertools.product(range(k), repeat=2):
            if i + j < k:
                assert c[i + j] <= a[i] + b[j] + t
        assert np.all(a + b[-1] <= c + t) and np.all(c <= a + b[0] + t)
    for p, q in SHAPES:
        A, B = rng.standard_normal((p, q)), rng.standard_normal((p, q))
        sa, sb, sc = sv(A), sv(B), sv(A + B)
        r = len(sa)
        for i, j in itertools.product(range(r), repeat=2):
            if i + j < r:
                assert sc[i + j] <= sa[i] + sb[j] + tol(sa, sb)
        assert np.all(np.abs(sc - sa) <= sb[0] + tol(sa, sb))
        C = rng.standard_normal((q, 4))
        sac, sc2 = sv(A @ C), sv(C)
        for i, j in itertools.product(range(len(sa)), range(len(sc2))):
            if i + j < len(sac):
                assert sac[i + j] <= sa[i] * sc2[j] + tol(sa, sc2, k=1e3) * sc2[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_cauchy_interlacing(seed):
    rng = np.random.default_rng(seed)
    k = 6
    A = sym(rng, k)
    a = ev(A)
    for r in (2, 3, 5):
        V, _ = np.linalg.qr(rng.standard_normal((k, r)))
        b = ev(V.T @ A @ V)
        assert np.all(a[:r] >= b - tol(a)) and np.all(b >= a[k - r:] - tol(a))


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_ky_fan_and_lidskii(seed):
    rng = np.random.default_rng(seed)
    k = 5
    A, B = sym(rng, k), sym(rng, k)
    a, b, c = ev(A), ev(B), ev(A + B)
    for r in range(1, k + 1):
        assert c[:r].sum() <= a[:r].sum() + b[:r].sum() + tol(a, b)
        V, _ = np.linalg.qr(rng.standard_normal((k, r)))
        assert np.trace(V.T @ A @ V) <= a[:r].sum() + tol(a)
        for idx in itertools.combinations(range(k), r):
            idx = list(idx)
            assert c[idx].sum() <= a[idx].sum() + b[:r].sum() + tol(a, b)
            assert c[idx].sum() >= a[idx].sum() + b[::-1][:r].sum() - tol(a, b)


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_von_neumann(seed):
    rng = np.random.default_rng(seed)
    for p, q in SHAPES:
        A, B = rng.standard_normal((p, q)), rng.standard_normal((p, q))
        assert abs(np.trace(A.T @ B)) <= np.sum(sv(A) * sv(B)) + tol(A, B, k=1e3)
    A, B = sym(rng, 5), sym(rng, 5)
    a, b = ev(A), ev(B)
    tr = np.trace(A @ B)
    assert np.sum(a * b[::-1]) - tol(a, b, k=1e3) <= tr <= np.sum(a * b) + tol(a, b, k=1e3)


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_sylvester_and_svd(seed):
    rng = np.random.default_rng(seed)
    for p, q in SHAPES:
        A, B = rng.standard_normal((p, q)), rng.standard_normal((q, p))
        ab, ba = np.linalg.eigvals(A @ B), np.linalg.eigvals(B @ A)
        nz = lambda x: np.sort_complex(x[np.abs(x) > 1e-9])
        assert np.allclose(nz(ab), nz(ba), atol=1e-9)
        assert np.isclose(np.linalg.det(np.eye(p) + A @ B), np.linalg.det(np.eye(q) + B @ A))
        s = sv(A)
        r = min(p, q)
        assert np.allclose(ev(A @ A.T)[:r], s ** 2) and np.allclose(ev(A.T @ A)[:r], s ** 2)
        assert np.allclose(ev(A @ A.T)[r:], 0, atol=1e-12) and np.allclose(ev(A.T @ A)[r:], 0, atol=1e-12)
        C = rng.standard_normal((q, 3))
        assert np.linalg.norm(A @ C) <= s[0] * np.linalg.norm(C) * (1 + 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_kronecker(seed):
    rng = np.random.default_rng(seed)
    A, X, B = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((5, 2))
    vec = lambda M: M.reshape(-1, order="F")
    assert np.allclose(vec(A @ X @ B), np.kron(B.T, A) @ vec(X))
    S, T = sym(rng, 3), sym(rng, 4)
    prods = np.sort(np.outer(ev(S), ev(T)).ravel())
    assert np.allclose(np.sort(np.linalg.eigvalsh(np.kron(S, T))), prods)


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_loewner(seed):
    rng = np.random.default_rng(seed)
    k = 4
    B = sym(rng, k)
    R = rng.standard_normal((k, k))
    A = B + R @ R.T                                  # A >= B
    C = rng.standard_normal((k, 3))
    assert ev(C.T @ (A - B) @ C)[-1] >= -tol(A, k=1e3)
    assert np.all(ev(A) >= ev(B) - tol(A, B))
    P = rng.standard_normal((k, 2)) @ rng.standard_normal((2, k))
    Q = rng.standard_normal((k, 6))
    A0, B0 = P @ P.T, Q @ Q.T                        # A0 >= 0 (rank 2), B0 >= 0
    tr = np.trace(A0 @ B0)
    assert ev(A0)[-1] * np.trace(B0) - tol(tr, k=1e3) <= tr <= ev(A0)[0] * np.trace(B0) + tol(tr, k=1e3)
    assert ev(Q @ Q.T - sv(Q)[k - 1] ** 2 * np.eye(k))[-1] >= -tol(Q @ Q.T, k=1e3)


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_amgm(seed):
    rng = np.random.default_rng(seed)
    for k in (2, 3, 7):
        a = rng.exponential(size=k)
        assert np.prod(a) ** (1 / k) <= a.mean() * (1 + 1e-15)
        # the tangent-line step of the proof: log x <= log a + (x - a)/a
        assert np.all(np.log(a) <= np.log(a.mean()) + (a - a.mean()) / a.mean() + 1e-15)
    assert np.isclose(np.prod(np.full(4, 2.5)) ** 0.25, 2.5)


def test_tool_gronwall_on_the_comparison_equations():
    # part 1 with equality (u' = a u) and part 2 on u' = -c u^2 - u^3 (so u' <= -c u^2)
    t = np.linspace(0.0, 3.0, 61)
    a = lambda s: np.sin(s) - 0.5
    u = np.exp(-np.cos(t) + 1 - 0.5 * t)             # solves u' = a(t) u, u(0) = 1
    bound = np.exp(np.array([np.trapezoid(a(np.linspace(0, x, 2001)), np.linspace(0, x, 2001))
                             for x in t]))
    assert np.all(u <= bound * (1 + 1e-6))
    from scipy.integrate import solve_ivp
    c, u0 = 2.0, 1.5
    sol = solve_ivp(lambda s, v: -c * v ** 2 - v ** 3, (0, 3), [u0], t_eval=t, rtol=1e-10,
                    atol=1e-12)
    assert np.all(sol.y[0] <= u0 / (1 + c * u0 * t) * (1 + 1e-8))


# --- the chapters' structure --------------------------------------------------------------

EARLY = ["intro.md", "01_linear_models.md", "02_gradient_dominance.md", "03_preconditioning.md",
         "04_imbalance.md", "appendix_numerics.md", "appendix_tools.md"]
BOOK = __import__("pathlib").Path(__file__).resolve().parents[1] / "book"


@pytest.mark.parametrize("name", EARLY)
def test_every_result_has_a_complete_proof(name):
    # issue 24 item 1: each theorem, lemma, proposition and corollary is followed by its proof
    # (before the next result), and no proof calls itself a sketch or sends the reader away
    import re

    text = (BOOK / name).read_text()
    blocks = re.split(r"^:::\{prf:(\w+)\}", text, flags=re.M)
    kinds = blocks[1::2]
    for i, kind in enumerate(kinds):
        if kind in ("theorem", "lemma", "proposition", "corollary"):
            assert i + 1 < len(kinds) and kinds[i + 1] == "proof", (name, kind, blocks[2 * i + 2][:80])
    for body in (b for k, b in zip(kinds, blocks[2::2]) if k == "proof"):
        assert not re.search(r"sketch|see the paper", body[:400], re.I), body[:80]


@pytest.mark.parametrize("name", EARLY)
def test_widths_are_h_l(name):
    # one notation: the widths are h_l (the Notation section of the preface), never d_l
    import re

    text = (BOOK / name).read_text()
    assert not re.search(r"\bd_\{?l|\bd_0\b|\bd_L\b|d_\{\\max\}", text), name


# --- steps added by the A-grade read (chapters 2, 3 and the numerics appendix) -------------

@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_loss_gradient_dominance_on_a_sublevel_set(seed):
    # gd-ex-logistic: -l'(u) = 1 - exp(-l(u)), 1 - e^{-s} >= s e^{-s}, and
    # ||grad f(w)|| >= gamma e^{-B} f(w) whenever f(w) <= B (here B = f(w))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((25, 3))
    y = np.sign(X @ np.array([1.0, -0.5, 0.2]))
    gamma = float(lf.losses.Exponential(lf.asarray(X), lf.asarray(y)).gamma)   # the margin
    f = lf.losses.Logistic(lf.asarray(X), lf.asarray(y))
    u = rng.standard_normal(50) * 3
    ell = np.log1p(np.exp(-u))
    assert np.allclose(1 / (1 + np.exp(u)), 1 - np.exp(-ell), rtol=1e-12)
    s = np.linspace(0.0, 30.0, 301)
    assert np.all(1 - np.exp(-s) >= s * np.exp(-s) - 1e-15)
    for _ in range(50):
        w = lf.asarray(rng.standard_normal((3, 1)) * 2)
        B = float(f.value(w))
        g = float(np.linalg.norm(lf.to_numpy(f.grad(w))))
        assert g >= gamma * np.exp(-B) * B * (1 - 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_origin_is_a_saddle(seed):
    # pc-ex-zero: the factorization of -/+ eps^L grad f(0) has layers of size O(eps), and the
    # loss there is below / above f(0)
    dims = (3, 4, 4, 2)
    loss = squared(dims, seed)
    g0 = lf.to_numpy(loss.grad(lf.asarray(np.zeros((3, 2)))))
    f0 = float(loss.value(lf.asarray(np.zeros((3, 2)))))
    for eps in (1e-1, 1e-2):
        for sign in (-1.0, 1.0):
            Ws = lf.init.balanced(dims, product=lf.asarray(sign * eps ** 3 * g0), seed=seed)
            assert max(float(np.abs(lf.to_numpy(W)).max()) for W in Ws) < 2 * eps * (
                1 + np.linalg.norm(g0, 2)) ** (1 / 3)
            value = float(loss.value(lf.product(Ws)))
            assert (value < f0) if sign < 0 else (value > f0)


def test_scalar_two_layer_time_is_an_antiderivative():
    # appendix, Scalar networks: d/dp (1/R) ln|(4yp + c^2 + R sqrt(4p^2 + c^2)) / (2p - 2y)|
    # = 1 / ((y - p) sqrt(4p^2 + c^2)), R = sqrt(4y^2 + c^2)
    for y, c in [(1.0, 0.72), (2.0, -1.3), (0.5, 0.1)]:
        R = np.sqrt(4 * y * y + c * c)

        def F(p):
            return np.log(abs((4 * y * p + c * c + R * np.sqrt(4 * p * p + c * c))
                              / (2 * p - 2 * y))) / R

        for p in np.linspace(-0.9 * y, 0.9 * y, 7):
            h = 1e-6
            fd = (F(p + h) - F(p - h)) / (2 * h)
            exact = 1 / ((y - p) * np.sqrt(4 * p * p + c * c))
            assert abs(fd - exact) < 1e-6 * abs(exact)
        # and the flow p' = (y - p) sqrt(4 p^2 + c^2) of two scalar layers with imbalance c
        w1 = np.sqrt((c + np.sqrt(c * c + 4 * (0.2 * y) ** 2)) / 2)
        w2 = 0.2 * y / w1
        assert abs(w1 ** 2 - w2 ** 2 - c) < 1e-12 and abs(w1 * w2 - 0.2 * y) < 1e-12
        p = w1 * w2
        assert abs((y - p) * (w1 ** 2 + w2 ** 2) - (y - p) * np.sqrt(4 * p * p + c * c)) < 1e-12


def test_deep_balanced_time_formula():
    # appendix, Deep aligned and balanced: the partial fraction and
    # t(w) = (w0^{2-L} - w^{2-L}) / (s (L - 2)) + (1/s) int_{w0}^w v dv / (s - v^L)
    from scipy.integrate import quad, solve_ivp

    for L, s, w0 in [(3, 2.0, 0.3), (4, 1.0, 0.2), (5, 1.5, 0.4)]:
        w = np.linspace(0.1, 0.9, 9) * s ** (1 / L)
        lhs = 1 / (w ** (L - 1) * (s - w ** L))
        rhs = (w ** (1 - L) + w / (s - w ** L)) / s
        assert np.allclose(lhs, rhs, rtol=1e-12)
        target = 0.9 * s ** (1 / L)
        t_formula = ((w0 ** (2 - L) - target ** (2 - L)) / (L - 2)
                     + quad(lambda v: v / (s - v ** L), w0, target)[0]) / s
        sol = solve_ivp(lambda t, x: x ** (L - 1) * (s - x ** L), (0, 10 * t_formula), [w0],
                        events=lambda t, x: x[0] - target, rtol=1e-11, atol=1e-13)
        assert abs(sol.t_events[0][0] - t_formula) < 1e-6 * t_formula


@pytest.mark.parametrize("lam,seed", [(0.5, 0), (-0.4, 1), (1.2, 2)])
def test_riccati_form_of_the_lambda_balanced_flow(lam, seed):
    # appendix, Riccati: with D_1 = lambda I_h, Q = [W_1; W_2^T] obeys Q' = F Q - Q Q^T Q / 2
    rng = np.random.default_rng(seed)
    n, h, m = 4, 3, 3
    if lam > 0:
        W2 = rng.standard_normal((h, m)) * 0.7
        lam_, V = np.linalg.eigh(W2 @ W2.T + lam * np.eye(h))
        O, _ = np.linalg.qr(rng.standard_normal((n, h)))
        W1 = O @ (V * np.sqrt(lam_)) @ V.T
    else:
        W1 = rng.standard_normal((n, h)) * 0.7
        lam_, V = np.linalg.eigh(W1.T @ W1 - lam * np.eye(h))
        O, _ = np.linalg.qr(rng.standard_normal((m, h)))
        W2 = (O @ (V * np.sqrt(lam_)) @ V.T).T
    assert np.allclose(W1.T @ W1 - W2 @ W2.T, lam * np.eye(h), atol=1e-12)
    Y = rng.standard_normal((n, m))
    loss = lf.losses.Squared(lf.asarray(Y))
    _, grads = lf.value_and_gradients((lf.asarray(W1), lf.asarray(W2)), loss)
    dW1, dW2 = (-lf.to_numpy(g) for g in grads)
    Q = np.vstack([W1, W2.T])
    F = np.block([[lam / 2 * np.eye(n), Y], [Y.T, -lam / 2 * np.eye(m)]])
    assert np.allclose(np.vstack([dW1, dW2.T]), F @ Q - Q @ Q.T @ Q / 2, atol=1e-12)
    ev = np.sort(np.linalg.eigvalsh(F))
    sv = np.linalg.svd(Y, compute_uv=False)
    expected = np.sort(np.concatenate([np.sqrt(sv ** 2 + lam ** 2 / 4),
                                       -np.sqrt(sv ** 2 + lam ** 2 / 4),
                                       np.full(n - m, lam / 2)]))   # n > m: +lambda/2
    assert np.allclose(ev, expected, atol=1e-12)


def test_cooper_condition_and_the_quadratic_expansion():
    # appendix, Integrators: q(y1) - q(y0) = 2h sum_i b_i k_i^T C Y_i - h^2 sum_ij M_ij k_i^T C k_j
    # (an identity for any slopes k_i), M = 0 for midpoint and gauss2, M_ii = -b_i^2 if explicit
    r3 = np.sqrt(3) / 6
    tableaus = {"midpoint": (np.array([[0.5]]), np.array([1.0])),
                "gauss2": (np.array([[0.25, 0.25 - r3], [0.25 + r3, 0.25]]), np.array([0.5, 0.5])),
                "rk4": (np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]]),
                        np.array([1, 2, 2, 1]) / 6)}
    rng = np.random.default_rng(0)
    C = sym(rng, 5)
    for name, (A, b) in tableaus.items():
        M = b[:, None] * A + (b[:, None] * A).T - np.outer(b, b)
        if name == "rk4":
            assert np.allclose(np.diag(M), -b ** 2)
        else:
            assert np.allclose(M, 0, atol=1e-15)
        h, y0 = 0.3, rng.standard_normal(5)
        k = rng.standard_normal((len(b), 5))
        Yst = y0 + h * A @ k
        y1 = y0 + h * b @ k
        q = lambda v: v @ C @ v
        rhs = (2 * h * sum(b[i] * k[i] @ C @ Yst[i] for i in range(len(b)))
               - h ** 2 * sum(M[i, j] * k[i] @ C @ k[j] for i in range(len(b))
                              for j in range(len(b))))
        assert abs(q(y1) - q(y0) - rhs) < 1e-12 * max(1.0, abs(q(y1)))


@pytest.mark.parametrize("seed", SEEDS)
def test_gd_drift_bound_of_one_step(seed):
    # appendix, Gradient descent: ||D_l^+ - D_l||_F <= eta^2 (||g_l||_F^2 + ||g_{l+1}||_F^2)
    dims, eta = (3, 4, 5, 2), 0.1
    Wl = lf.init.gaussian(dims, "custom", std=0.9, seed=seed)
    _, grads = lf.value_and_gradients(Wl, squared(dims, seed))
    g = [lf.to_numpy(x) for x in grads]
    after = [lf.asarray(lf.to_numpy(W) - eta * gl) for W, gl in zip(Wl, g)]
    for D0, D1, l in zip(lf.imbalance(Wl), lf.imbalance(after), range(len(dims) - 2)):
        change = np.linalg.norm(lf.to_numpy(D1) - lf.to_numpy(D0))
        assert change <= eta ** 2 * (np.sum(g[l] ** 2) + np.sum(g[l + 1] ** 2)) * (1 + 1e-12)


@pytest.mark.parametrize("dims,seed", list(itertools.product(DIMS, SEEDS)))
def test_jacobian_of_the_product_gives_T(dims, seed):
    # chapter 1, step-size limit: with J the derivative of (W_1..W_L) -> W_1...W_L,
    # J J^T = T (lf.T_matrix), so J^T J has the same nonzero eigenvalues as T
    Ws = layers(dims, seed)
    vec = lambda M: M.reshape(-1, order="F")
    blocks = []
    for l in range(1, len(Ws) + 1):
        P, Q = prefix_suffix(Ws, l)
        blocks.append(np.kron(Q.T, P))                # vec(P E Q) = (Q^T kron P) vec(E)
    J = np.hstack(blocks)
    n, m = dims[0], dims[-1]
    T = np.column_stack([vec(lf.to_numpy(lf.T_apply([lf.asarray(W) for W in Ws], lf.asarray(
        np.eye(n * m)[:, k].reshape((n, m), order="F"))))) for k in range(n * m)])
    assert np.max(np.abs(J @ J.T - T)) < tol(T, k=1e3)
    # lf.T_matrix (its own ordering of the entries) has the same spectrum
    Tm = lf.to_numpy(lf.T_matrix([lf.asarray(W) for W in Ws]))
    assert np.allclose(np.linalg.eigvalsh(Tm), np.linalg.eigvalsh(T), atol=tol(T, k=1e4))
    big = np.sort(np.linalg.eigvalsh(J.T @ J))[::-1][:T.shape[0]]
    assert np.allclose(big, np.sort(np.linalg.eigvalsh(T))[::-1], atol=tol(T, k=1e4))
    E = np.random.default_rng(seed).standard_normal((dims[0], dims[-1]))
    assert np.allclose(J @ J.T @ vec(E), vec(lf.to_numpy(lf.T_apply(
        [lf.asarray(W) for W in Ws], lf.asarray(E)))), atol=tol(T, E, k=1e4))
