"""The optimal (likelihood-ratio) tracing test (``gaussian.optimal``, issue 24): its form, its
exact law against the adaptive laws and issue 24's table, Neyman-Pearson on Hypothesis-drawn
configurations, the large-T limit, the degenerate games, and simulation (all samplers, the DP
release) at SE tolerance with power against z's law.

Statistical checks: |z| <= 4.5 standard errors (~6.8e-6 false failures per comparison). One
score per game where independence is needed (the T scores of a game share mu_hat).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from _stats import assert_rejects, assert_within_se
from hypothesis import given
from hypothesis import strategies as st

from mtl_tracing import gaussian as g
from mtl_tracing.gaussian import law
from mtl_tracing.metrics import group_moments
from proofs_check import ISSUE_TABLE

CFG = g.GaussianGameConfig(tasks=4, samples=4, dim=16, challenge=2)  # issue 24's rows 2-3
TABLE = ISSUE_TABLE  # issue 24's rows: (T, N, d, k, sbar, adversary, AUC z, AUC Lambda)


def _cfg(t, n, d, k, sb):
    return g.GaussianGameConfig(tasks=t, samples=n, dim=d, challenge=k, task_std=sb)


# ------------------------------------------------------------------------------ the form


def test_lambda_is_the_log_likelihood_ratio_up_to_scale():
    """log N(x; Sigma_1) - log N(x; Sigma_0) - (c/D) Lambda_j is one constant over random
    points; power: the form without the 1/2 (c/A, c/B) is not."""
    rng = np.random.default_rng(0)
    A, B, c = 0.3, 1.5, 0.3  # the strong adversary of CFG
    s1, s0 = np.array([[A, c], [c, B]]), np.diag([A, B])
    x = rng.normal(size=(50, 2)) * 3

    def logpdf(sig):
        return -0.5 * np.einsum("ni,ij,nj->n", x, np.linalg.inv(sig), x) - 0.5 * np.log(
            np.linalg.det(sig)
        )

    llr = logpdf(s1) - logpdf(s0)
    wa, wb = g.lrt_weights(A, B, c)
    lam = x[:, 0] * x[:, 1] - wa * x[:, 0] ** 2 - wb * x[:, 1] ** 2
    rest = llr - c / (A * B - c**2) * lam
    assert np.ptp(rest) < 1e-12 and rest[0] == pytest.approx(0.5 * math.log(A * B / (A * B - c**2)))
    wrong = x[:, 0] * x[:, 1] - 2 * wa * x[:, 0] ** 2 - 2 * wb * x[:, 1] ** 2
    assert np.ptp(llr - c / (A * B - c**2) * wrong) > 1e-2


# ------------------------------------------------------------------------------ exact theory


def test_issue_table_is_reproduced_by_the_exact_theory():
    """Both AUC columns to 1e-4 (printed to 4 digits: |diff| <= 5e-5); Lambda's fixed-node AUC
    equals the adaptive Imhof inversion of its 4-term weighted chi2 law to 1e-10."""
    for t, n, d, k, sb, adv, auc_z, auc_l in TABLE:
        cfg = _cfg(t, n, d, k, sb)
        assert g.exact_auc(cfg, adv) == pytest.approx(auc_z, abs=5e-5)
        got = g.lrt_auc(cfg, adv)
        assert got == pytest.approx(auc_l, abs=5e-5)
        (a1, b1), (a0, b0) = g.lrt_scales(*g.second_order(t, n, k, sb, 1.0, adv))
        weights = [w for w in (a1, -b1, -a0, b0) if w != 0.0]
        imhof = law._imhof_sf(0.0, weights, [d] * len(weights))
        assert got == pytest.approx(imhof, abs=1e-10)


def test_lrt_laws_roc_moments_and_percentiles_agree():
    """The vectorised ROC (lrt_roc, roc_theory) equals the adaptive laws' sf(isf) (LrtLaw over
    ScoreLaw) to 1e-10; the laws' moments equal the closed forms; the in-law identities
    Lambda_IN = (1 - rho^2) z_OUT, Lambda_OUT = -z_IN hold on the exact laws."""
    fpr = np.array([1e-3, 0.05, 0.5, 0.9])
    for adv in ("strong", "weak"):
        law_in, law_out = g.lrt_law(CFG, adv, "in"), g.lrt_law(CFG, adv, "out")
        slow = law_in.sf(np.asarray(law_out.isf(fpr)))
        np.testing.assert_allclose(g.lrt_roc(CFG, adv, fpr), slow, rtol=0, atol=1e-10)
        cell = (4, 4, 16, 2, 1.0, 1.0, adv)
        row = g.roc_theory(*cell, 0.05, statistic="lrt")
        assert row["exact_tpr"] == pytest.approx(slow[1], abs=1e-10)
        A, B, c = g.second_order(4, 4, 2, 1.0, 1.0, adv)
        d = CFG.dim
        assert (law_in.mean, law_out.mean) == pytest.approx((0.0, -d * c))
        assert law_in.var == pytest.approx(d * (A * B - c**2) ** 2 / (A * B))
        assert law_out.var == pytest.approx(d * (A * B + c**2)) == row["theory_var_out"]
        z_in, z_out = g.exact_law(CFG, adv), g.exact_law(CFG, "out")
        rho2 = c**2 / (A * B)
        assert law_in.scale_pos == pytest.approx((1 - rho2) * z_out.scale_pos)
        assert (law_out.scale_pos, law_out.scale_neg) == pytest.approx(
            (z_in.scale_neg, z_in.scale_pos)
        )
        t = g.lrt_percentile_table(CFG, adv, (50.0, 90.0))
        np.testing.assert_allclose(0.5 * (law_in.sf(t["threshold"]) + law_out.sf(t["threshold"])),
                                   [0.5, 0.1], atol=1e-9)  # fmt: skip


@given(
    t=st.integers(1, 64),
    n=st.integers(1, 16),
    k_frac=st.floats(0.0, 1.0),
    d=st.sampled_from([1, 2, 7, 32, 256]),
    sb=st.sampled_from([0.0, 0.3, 1.0, 3.0]),
    s=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    sigma=st.sampled_from([0.0, 0.2]),
    adv=st.sampled_from(["strong", "weak"]),
)
def test_neyman_pearson_lambda_dominates_z(t, n, k_frac, d, sb, s, sigma, adv):
    """AUC(Lambda) >= AUC(z) and TPR(Lambda) >= TPR(z) at every FPR (the LRT is most powerful
    at each level), to the exact theory's tolerance 1e-12, with and without release noise."""
    if sb == 0.0 and s == 0.0:
        s = 1.0
    k = max(1, round(k_frac * n))
    for fpr in (1e-3, 0.05, 0.5):
        cell = (t, n, d, k, sb, s, adv, fpr)
        z = g.roc_theory(*cell, release_noise_std=sigma)
        lam = g.roc_theory(*cell, release_noise_std=sigma, statistic="lrt")
        assert lam["exact_auc"] >= z["exact_auc"] - 1e-12
        assert lam["exact_tpr"] >= z["exact_tpr"] - 1e-12


def test_lambda_and_z_agree_at_large_t():
    """The stated tolerance: AUC(Lambda) - AUC(z) <= rho^2 / 4 <= 1/(4T) (rho^2 <= 1/T). At
    T = 1024 the gap is below 1e-4; at T = 4 it is 0.023 (the table), so the bound is not
    vacuous."""
    T = np.array([4, 16, 64, 256, 1024, 4096])
    for d, n, k, sb in ((256, 8, 4, 1.0), (16, 4, 2, 1.0), (64, 8, 1, 0.0), (1024, 8, 4, 1.0)):
        for adv in ("strong", "weak"):
            z = g.roc_theory(T, n, d, k, sb, 1.0, adv, 0.01)
            lam = g.roc_theory(T, n, d, k, sb, 1.0, adv, 0.01, statistic="lrt")
            A, B, c = g.second_order(T, n, k, sb, 1.0, adv)
            gap = lam["exact_auc"] - z["exact_auc"]
            assert np.all(gap >= -1e-12) and np.all(gap <= c**2 / (A * B) / 4 + 1e-12)
            assert np.all(gap[T >= 1024] < 1e-4)
    row = g.roc_theory(4, 4, 16, 2, 1.0, 1.0, "strong", 0.01, statistic="lrt")
    assert row["exact_auc"] - g.exact_auc(CFG, "strong") > 0.02


def test_degenerate_games():
    """rho = 1 (strong, T = 1, k = N: Sigma_1 singular): Lambda_IN is the point mass at 0,
    Lambda_OUT = -sqrt(AB) chi2_d; AUC 1, TPR 1, percentile table as the rho -> 1 limit.
    c = 0 (weak at sbar = 0): Lambda = z, one law, AUC 1/2."""
    one = _cfg(1, 4, 16, 4, 1.0)
    law_in, law_out = g.lrt_law(one, "strong", "in"), g.lrt_law(one, "strong", "out")
    assert law_in.is_point_mass and law_in.var == 0.0
    assert law_out.scale_pos == 0.0 and law_out.mean < 0
    assert law_in.sf(-1e-9) == 1.0 and law_in.sf(0.0) == 0.0 and law_out.sf(0.0) == 0.0
    with pytest.raises(ValueError, match="no density"):
        law_in.pdf(0.0)
    assert g.lrt_auc(one, "strong") == 1.0
    np.testing.assert_array_equal(g.lrt_roc(one, "strong", [1e-6, 0.3]), [1.0, 1.0])
    table = g.lrt_percentile_table(one, "strong", (25.0, 75.0))
    np.testing.assert_allclose(table["tpr"], [1.0, 0.5])
    np.testing.assert_allclose(table["fpr"], [0.5, 0.0])
    near = g.lrt_percentile_table(_cfg(1, 4, 16, 2, 1.0), "strong", (75.0, 90.0))  # rho^2 = 5/6
    np.testing.assert_allclose(near["tpr"], [0.5, 0.2], atol=1e-3)  # the rho -> 1 limit
    flat = _cfg(1, 4, 16, 1, 0.0)
    assert g.lrt_weights(*g.second_order(1, 4, 1, 0.0, 1.0, "weak")) == (0.0, 0.0)
    assert g.lrt_auc(flat, "weak") == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError, match="unclipped"):
        g.lrt_auc(CFG, "strong", g.DPRelease(clip=1.0))
    with pytest.raises(ValueError, match="hypothesis"):
        g.lrt_law(CFG, "strong", "maybe")


def test_release_noise_lowers_the_optimal_curve_to_mu_gdp():
    """With a clip that never binds (C* at the 1 - 1e-6 quantile of the task norm) the noisy
    release is 2/z-GDP and Lambda's exact ROC (the exact trade-off of one random task) lies
    under G_mu; with C = 1 (clipping binds; the unclipped release has no guarantee) it does not."""
    from scipy import special, stats

    from mtl_tracing import audit

    cfg = g.GaussianGameConfig(tasks=4, samples=4, dim=16, challenge=2, task_std=3.0)
    c_star = math.sqrt((9.0 + 0.25) * stats.chi2.isf(1e-6, 16))
    fpr = np.geomspace(1e-4, 0.9, 30)
    for z in (1.0, 4.0):
        free = g.DPRelease(release_noise_std=z * c_star / 4)
        tpr = np.asarray(g.lrt_roc(cfg, "strong", fpr, free))
        assert np.all(tpr <= audit.gdp_tradeoff(fpr, 2 / z) + 1e-9)
        mu_eff = g.lrt_mu_profile(cfg, "strong", fpr, free)
        np.testing.assert_allclose(mu_eff, special.ndtri(tpr) - special.ndtri(fpr))
        assert np.all(mu_eff < 0.3 * 2 / z)  # about a quarter of mu: the GDP bound is loose
        binding = g.DPRelease(release_noise_std=z * 1.0 / 4)
        assert np.any(
            np.asarray(g.lrt_roc(cfg, "strong", fpr, binding)) > audit.gdp_tradeoff(fpr, 2 / z)
        )


# ------------------------------------------------------------------------------ simulation


def _lambda(config, scores, norms, adv, release=None):
    """(Lambda_IN, Lambda_OUT), (G, T) float64, from a sampler's scores and norms."""
    abc = g.lrt_second_order(config, adv, release)
    a2 = np.asarray(norms.alpha_sq, np.float64)[:, None]
    z_in = np.asarray(getattr(scores, f"{adv}_in"), np.float64)
    sq_in = np.asarray(getattr(norms, f"{adv}_sq"), np.float64)
    lam_in = g.lrt_statistic(z_in, a2, sq_in, *abc)
    lam_out = g.lrt_statistic(
        np.asarray(scores.out, np.float64), a2, np.asarray(norms.out_sq), *abc
    )
    return lam_in, lam_out


def _auc_se(auc, n):
    """Hanley-McNeil SE of an AUC from n IN and n OUT independent scores."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return math.sqrt((auc * (1 - auc) + (n - 1) * (q1 - auc**2) + (n - 1) * (q2 - auc**2)) / n**2)


def _check_law(config, scores, norms, release=None, *, auc=True):
    """Lambda's moments (SEs over games) and AUC (one task per game) within SE of the exact
    law; power: z's exact moments and AUC are rejected on the same data."""
    from mtl_tracing import metrics

    z_mom = g.moments(config) if release is None else g.release_moments(config, release)
    for adv in ("strong", "weak"):
        lam = _lambda(config, scores, norms, adv, release)
        exact = g.lrt_moments(config, adv, release)
        for h, x in zip(("in", "out"), lam, strict=True):
            m = group_moments(x)
            assert_within_se(m.mean, exact[h][0], m.mean_se, what=f"{adv} {h} mean")
            assert_within_se(m.var, exact[h][1], m.var_se, what=f"{adv} {h} var")
        m_in = group_moments(lam[0])
        assert_rejects(m_in.var, z_mom["out"].var, m_in.var_se, what="Var Lambda_IN = Var z_OUT")
        if auc:
            x_in, x_out = lam[0][:, 0], lam[1][:, 0]
            emp = float(metrics.auc(x_in, x_out))
            se = _auc_se(emp, x_in.size)
            assert_within_se(emp, g.lrt_auc(config, adv, release), se, what=f"{adv} AUC")
            z_auc = (
                g.exact_auc(config, adv) if release is None else g.release_auc(config, release, adv)
            )
            assert_rejects(emp, z_auc, se, what=f"{adv}: Lambda's AUC is z's")


@pytest.fixture(scope="module")
def sufficient_with_norms():
    return g.simulate(jax.random.key(0), CFG, games=30000, norms=True)


def test_sufficient_sampler_lambda_matches_the_exact_law_with_power(sufficient_with_norms):
    scores, norms = sufficient_with_norms
    _check_law(CFG, scores, norms)
    # z is the same draw with and without norms (another program: equal to float rounding).
    plain = g.simulate(jax.random.key(0), CFG, games=64)
    np.testing.assert_allclose(np.asarray(scores.strong_in[:64]), np.asarray(plain.strong_in),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    assert isinstance(plain, g.GameScores)  # the default output is unchanged


def test_faithful_and_release_samplers_lambda_match_the_exact_law():
    """The faithful sampler (the literal game) and the sufficient DP release (A + sigma^2;
    power: Lambda's variance with the noiseless A is rejected)."""
    scores, norms = g.simulate(jax.random.key(1), CFG, games=6000, sampler="faithful", norms=True)
    _check_law(CFG, scores, norms, auc=False)
    rel = g.DPRelease(release_noise_std=0.4)
    scores, norms = g.simulate_release(jax.random.key(2), CFG, rel, games=6000, norms=True)
    _check_law(CFG, scores, norms, rel, auc=False)
    lam = _lambda(CFG, scores, norms, "strong", rel)[0]
    m = group_moments(lam)
    assert_rejects(m.var, g.lrt_moments(CFG, "strong")["in"][1], m.var_se, what="noiseless A")


def test_degenerate_game_simulates_a_perfect_test():
    """rho = 1: Lambda_IN = 0 up to float rounding, Lambda_OUT < 0, empirical AUC 1."""
    one = _cfg(1, 4, 16, 4, 1.0)
    scores, norms = g.simulate(jax.random.key(3), one, games=256, norms=True)
    lam_in, lam_out = _lambda(one, scores, norms, "strong")
    scale = float(np.mean(np.abs(lam_out)))
    assert np.max(np.abs(lam_in)) < 1e-4 * scale
    assert np.all(lam_out < 0) and float(np.min(lam_in)) > float(np.max(lam_out))
