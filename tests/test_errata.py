"""Errata of the ICML version (the book's chapter *Errata and open problems*): for each, a concrete counterexample where the
printed statement fails and the corrected one (linflow.bounds) holds.

The printed statements live in linflow.bounds.printed, clearly labelled as wrong.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import linflow as lf

B = lf.bounds
P = lf.bounds.printed


def flow(Ws, Y, t_end, **kw):
    return lf.gradient_flow(Ws, lf.losses.Squared(np.asarray(Y, dtype=np.float64)), t_end, rtol=1e-11,
                            atol=1e-13, diagnostics=("lambda_min",), progress=False, **kw)


# E1 + E2 (Theorem 1.2): the factor 1/2 ---------------------------------------------------

def test_E1_theorem1_missing_half():
    """Scalar two-layer net near Y = 2: printed alpha_2 is twice the true asymptotic rate."""
    Ws = lf.init.scalar(np.array([1.5, 1.2]))
    Y = np.array([[2.0]])
    loss = lf.losses.Squared(Y)
    corrected = float(B.two_layer(Ws, loss))
    printed = float(P.theorem1(Ws, loss))
    d, nu = 1.5 ** 2 - 1.2 ** 2, 2.0 - 0.2
    assert corrected == pytest.approx(math.sqrt(d ** 2 + 4 * nu ** 2), rel=1e-12)
    assert printed == pytest.approx(2 * corrected, rel=1e-12)
    traj = flow(Ws, Y, 4.0, t_eval=np.linspace(0, 4.0, 81))
    lam = np.asarray(traj.diagnostics["lambda_min"])
    assert lam.min() >= corrected - 1e-9  # the corrected rate holds
    assert lam[-1] < printed  # lambda_min(T) at the optimum, sqrt(d^2 + 16), is below the printed alpha_2
    t, L = np.asarray(traj.t), np.asarray(traj.loss)
    ok = L <= np.asarray(B.loss_curve(t, L[0], corrected, 2.0)) * (1 + 1e-7) + 1e-15
    fails = L > np.asarray(B.loss_curve(t, L[0], printed, 2.0)) * (1 + 1e-3) + 1e-300
    assert np.all(ok) and np.any(fails)
    # and with nu = 0 the printed form gives 2 * gap, contradicting Theorem 1.1
    Wz = lf.init.scalar(np.array([1.5, 0.0]))
    far = lf.losses.Squared(np.array([[0.1]]))  # margin 0: ||W - W*|| = 0.1 = sigma(W*)
    assert float(B.margin(Wz, far)) == 0.0
    assert float(P.theorem1(Wz, far)) == pytest.approx(2 * float(B.two_layer(Wz)))
    assert float(B.two_layer(Wz, far)) == pytest.approx(float(B.two_layer(Wz)))


# E2 (Lemma 3): the sigma_n / sigma_m pairing --------------------------------------------

def test_E2_lemma3_pairing_counterexample():
    rng = np.random.default_rng(1)
    Ws = (rng.normal(size=(3, 4)), rng.normal(size=(4, 1)) * 2)  # n = 3 != m = 1
    exact = float(lf.lambda_min(Ws))
    assert float(P.lemma3(Ws)) > exact + 0.2  # printed (9) fails
    assert float(B.lemma3(Ws)) <= exact  # corrected holds


def test_E2_printed_pairing_fails_often_only_when_n_ne_m():
    rng = np.random.default_rng(2)
    bad_rect = bad_sq = 0
    for n, h, m in [(3, 4, 1), (1, 3, 4), (2, 5, 4), (4, 2, 2), (2, 2, 2), (3, 5, 3)]:
        Ws = (rng.normal(size=(200, n, h)), rng.normal(size=(200, h, m)) * rng.uniform(0.2, 3, size=(200, 1, 1)))
        lm = np.asarray(lf.lambda_min(Ws))
        bad = np.sum(np.asarray(P.lemma3(Ws)) > lm * (1 + 1e-9) + 1e-12)
        assert np.all(np.asarray(B.lemma3(Ws)) <= lm * (1 + 1e-9) + 1e-12)
        if n == m:
            bad_sq += bad
            np.testing.assert_allclose(P.lemma3(Ws), B.lemma3(Ws), rtol=1e-13)
        else:
            bad_rect += bad
    assert bad_sq == 0 and bad_rect > 50


# E3: the appendix normalization of Delta* --------------------------------------------------

def test_E3_appendix_delta_star_is_twice_the_rate():
    """Unimodal L = 3 attains (15): lambda_min = Delta*, so the appendix's 'Delta*' (2x) is no rate."""
    Ws = lf.init.scalar(np.array([2.0, 1.5, 0.0]))  # w3 = 0: tau = w1^2 w2^2 = 9
    exact = float(lf.lambda_min(Ws))
    assert exact == pytest.approx(9.0)
    assert float(B.delta_star(Ws)) == pytest.approx(exact, rel=1e-12)
    assert float(P.delta_star(Ws)) == pytest.approx(2 * exact, rel=1e-12)
    assert float(P.delta_star(Ws)) > exact
    # Theorem G.2's own statement, lambda_min >= Delta*_G / 2, is the main-text one
    Wr = lf.init.gaussian((2, 4, 3, 2), batch=(50,), seed=3)
    np.testing.assert_allclose(np.asarray(P.delta_star(Wr)) / 2, B.delta_star(Wr), rtol=1e-13)


# E4: balanced value and (19) for n != m ------------------------------------------------------

@pytest.mark.parametrize("dims", [(3, 3, 3, 2), (2, 4, 3), (1, 2, 2, 2, 3)])
def test_E4_balanced_factor_L_only_for_square(dims):
    Ws = lf.init.balanced(dims, batch=(20,), seed=4)
    lm = np.asarray(lf.lambda_min(Ws))
    L = len(dims) - 1
    np.testing.assert_allclose(np.asarray(P.balanced(Ws)) / lm, L, rtol=1e-9)  # printed is L times too big
    np.testing.assert_allclose(B.arora(Ws), lm, rtol=1e-9)  # corrected is exact
    assert np.all(np.asarray(P.eq19(Ws)) > lm * 1.5)  # printed (19) fails (d~ = 0 here)
    with pytest.raises(B.HypothesisError, match="E4"):
        B.homogeneous(Ws)


def test_E4_eq19_fails_for_homogeneous_rectangular():
    """Homogeneous imbalance with n != m: printed (19) exceeds lambda_min; n = m is fine."""
    Ws = lf.init.homogeneous((3, 2, 2, 2), [0.05, 0.0], batch=(30,), seed=5, scale=2.0)
    lm = np.asarray(lf.lambda_min(Ws))
    assert np.all(np.asarray(B.is_homogeneous(Ws)))
    assert np.any(np.asarray(P.eq19(Ws)) > lm * 1.1)
    assert np.all(np.asarray(B.unimodal(Ws)) <= lm + 1e-12)  # (18) still holds
    Wsq = lf.init.homogeneous((2, 2, 2, 2), [0.05, 0.0], batch=(30,), seed=5, scale=2.0)
    assert np.all(np.asarray(B.homogeneous(Wsq)) <= np.asarray(lf.lambda_min(Wsq)) * (1 + 1e-9))


# E5: the exponent in Corollary 2.2 ------------------------------------------------------------

def test_E5_corollary2_exponent():
    """Balanced scalar L = 3 near y = 0.1 (nu = 0.09 < 1): printed L*nu is faster than the flow."""
    y, p0 = 0.1, 0.09
    Ws = lf.init.scalar(np.full(3, p0 ** (1 / 3)))
    loss = lf.losses.Squared(np.array([[y]]))
    nu = float(B.margin(Ws, loss))
    assert nu == pytest.approx(0.09, rel=1e-12)
    corrected = float(B.corollary2(Ws, loss, part=2))
    printed = float(P.corollary2(Ws, loss))
    assert corrected == pytest.approx(3 * nu ** (4 / 3), rel=1e-10)
    assert printed == pytest.approx(3 * nu, rel=1e-10)
    t_end = 60.0
    traj = flow(Ws, [[y]], t_end, t_eval=np.linspace(0, t_end, 121))
    lam = np.asarray(traj.diagnostics["lambda_min"])
    assert lam.min() >= corrected - 1e-12
    assert lam.max() < printed  # lambda_min <= 3 y^(4/3) = 0.139 < 0.27 all along
    t, L = np.asarray(traj.t), np.asarray(traj.loss)
    assert np.all(L <= np.asarray(B.loss_curve(t, L[0], corrected, 2.0)) * (1 + 1e-6) + 1e-300)
    assert np.any(L > 10 * np.asarray(B.loss_curve(t, L[0], printed, 2.0)))


# E6: Figure 1's bound and the NTK scaling --------------------------------------------------

def test_E6_printed_figure_bound_starts_at_e_L0_and_ntk_scales_by_c_squared():
    k = np.array([0.0, 100.0])
    np.testing.assert_allclose(P.figure1_bound(k, 5e-6, 100.0, 2.0, 3.0),
                               math.e * np.asarray(B.loss_curve(k * 5e-6, 3.0, 100.0, 2.0)))
    # f(c W1 W2 W3): the layer gradients are c P^T G Q^T, so the energy (rate) scales by c^2
    rng = np.random.default_rng(6)
    Ws = lf.init.gaussian((2, 5, 5, 1), "ntk", seed=6)
    c = 1 / math.sqrt(1 * 5 * 5)
    G = rng.normal(size=(2, 1))
    grads = lf.layer_gradients(Ws, c * G)
    energy_scaled = sum(float(np.sum(np.asarray(g) ** 2)) for g in grads)
    assert energy_scaled == pytest.approx(c ** 2 * float(lf.energy(Ws, G)), rel=1e-12)


# E7: no two-layer-type formula for L = 3 -----------------------------------------------------

def test_E7_no_kronecker_sum_formula_for_L3():
    rng = np.random.default_rng(7)
    W2 = (rng.normal(size=(20, 2, 3)), rng.normal(size=(20, 3, 2)))
    W3 = W2[:1] + (rng.normal(size=(20, 3, 3)), W2[1])
    for Ws, equal in ((W2, True), (W3, False)):
        left, right = lf.prefix_products(Ws), lf.suffix_products(Ws)
        terms = sum(np.linalg.eigvalsh(np.asarray(p) @ np.swapaxes(p, -1, -2))[..., 0]
                    * np.linalg.eigvalsh(np.swapaxes(s, -1, -2) @ np.asarray(s))[..., 0]
                    for p, s in zip(left, right))
        exact = np.linalg.eigvalsh(np.asarray(lf.T_matrix(Ws)))[..., 0]
        assert np.all(terms <= exact + 1e-10)
        if equal:
            np.testing.assert_allclose(terms, exact, rtol=1e-10, atol=1e-12)
        else:
            assert np.max(exact - terms) > 1e-2


# E8: the D_bar typo of App. G.4 ----------------------------------------------------------------

def test_E8_dbar_typo_breaks_optimality_of_16():
    """With D_bar built from D21 twice, Delta* no longer equals the optimal prod d~ (App. H, l* = 3)."""
    Ws = lf.init.unimodal((2, 2, 2, 1), 3, [0.5 * np.eye(2), np.diag([0.4, 0.3])], batch=(5,), seed=8)
    prod = np.asarray(B.unimodal(Ws))
    np.testing.assert_allclose(prod, 0.8 * 0.3, rtol=1e-10)
    np.testing.assert_allclose(B.delta_star(Ws), prod, rtol=1e-10)
    typo = np.asarray(P.delta_star_G17(Ws))
    assert np.all(np.abs(typo - prod) > 0.1 * prod)
