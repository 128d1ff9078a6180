"""Tests of ``mtl_tracing.gaussian`` (moments, law, batched): exact theory of z (Sec. 4, App. B).

Checked two ways (STYLE habit 8): deterministically (paper formulas by value, closed forms,
two independent numerical methods) and by seeded NumPy Monte Carlo of the bivariate-normal
representation (alpha, beta jointly normal per coordinate, z = sum_i alpha_i beta_i), with
tolerances from the samples' standard errors and a power check against a neighbouring
wrong law in the same test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special, stats

from mtl_tracing import gaussian
from mtl_tracing.gaussian import tails
from mtl_tracing.gaussian.config import GaussianGameConfig

# Small fixed sets of configs (T, N, k, d).
CONFIGS = [
    GaussianGameConfig(tasks=256, samples=8, dim=256, challenge=4),  # Figure 7
    GaussianGameConfig(tasks=3, samples=5, dim=7, challenge=2, task_std=0.7, sample_std=1.9),
    GaussianGameConfig(tasks=1, samples=4, dim=1, challenge=2),
]
SKEWED = GaussianGameConfig(tasks=1, samples=4, dim=1, challenge=2)  # d = 1: very skewed law
Z = 4.5  # two-sided normal tail 6.8e-6 per check


def _mc_scores(rng, a_var, b_var, cov, dim, n):
    """n draws of z = sum_i alpha_i beta_i, (alpha_i, beta_i) ~ N(0, [[A, c], [c, B]])."""
    alpha = rng.standard_normal((n, dim)) * math.sqrt(a_var)
    resid = rng.standard_normal((n, dim)) * math.sqrt(max(b_var - cov**2 / a_var, 0.0))
    beta = cov / a_var * alpha + resid
    return np.sum(alpha * beta, axis=1)


def _integrate_pdf(law, fn, extra_points=()):
    """int fn(t) pdf(t) dt by quad on panels around the mean (an independent route to moments)."""
    sd = math.sqrt(law.var)
    pts = sorted({*(law.mean + sd * np.array([-40, -12, -4, -1, 0, 1, 4, 12, 60])), *extra_points})
    if law.scale_neg == 0.0:
        pts = [0.0] + [p for p in pts if p > 0]
    total = 0.0
    for lo, hi in zip(pts[:-1], pts[1:], strict=True):
        total += integrate.quad(
            lambda t: fn(t) * law.pdf(t), lo, hi, epsabs=1e-14, epsrel=1e-12, limit=400
        )[0]
    return total


# ----------------------------------------------------------------------------------------
# Moments: paper formulas by value.


@pytest.mark.parametrize("config", CONFIGS)
def test_moments_against_paper(config):
    mom = gaussian.moments(config)
    t, n, k, d = config.tasks, config.samples, config.challenge, config.dim
    sb, s = config.task_std, config.sample_std
    # Thm 4.1 / 4.2 means, Thm 4.3 OUT variance, written independently of the module.
    assert mom["strong"].mean == pytest.approx(d / t * (sb**2 + s**2 / n), rel=1e-14)
    assert mom["weak"].mean == pytest.approx(d / t * sb**2, rel=1e-14)
    assert mom["out"].mean == 0.0
    paper_var = d / t * (sb**4 + s**4 / (k * n) + (k + n) / (k * n) * sb**2 * s**2)
    for adv in gaussian.ADVERSARIES:
        m = mom[adv]
        assert m.paper_mean == pytest.approx(m.mean, rel=1e-14)
        assert m.paper_var == pytest.approx(paper_var, rel=1e-14)
        assert m.paper_var_bound == pytest.approx(3 * paper_var, rel=1e-14)
        # The OUT variance is the paper's expression; IN exceeds it by exactly d c^2.
        assert m.var - paper_var == pytest.approx(d * m.c**2, rel=1e-9, abs=1e-15)
        assert m.var <= m.paper_var_bound
        law = gaussian.exact_law(config, adv)
        assert law.mean == pytest.approx(m.mean, rel=1e-12, abs=1e-15)
        assert law.var == pytest.approx(m.var, rel=1e-12)
    assert mom["out"].var == pytest.approx(paper_var, rel=1e-14)
    assert mom["strong"].var > paper_var and mom["weak"].var > paper_var


@given(
    tasks=st.sampled_from([1, 2, 5, 64]),
    nk=st.sampled_from([(1, 1), (4, 2), (8, 8), (16, 3)]),
    sb=st.sampled_from([0.1, 1.0, 3.0]),
    s=st.sampled_from([0.2, 1.0, 4.0]),
)
def test_variance_ratio_bound(tasks, nk, sb, s):
    n, k = nk
    for adv in ("strong", "weak"):
        ratio = gaussian.variance_ratio(tasks, n, k, sb, s, adv)
        m = gaussian.score_moments(tasks, n, 3, k, sb, s, adv)
        assert ratio == pytest.approx(m.var_ratio, rel=1e-14)
        assert ratio == pytest.approx(m.var / (3 * m.A * m.B), rel=1e-12)
        assert 1.0 < ratio <= 1.0 + 1.0 / tasks + 1e-15 <= 2.0 + 1e-15
    # Weak never attains the bound; strong attains it iff k = N.
    assert gaussian.variance_ratio(tasks, n, k, sb, s, "weak") < 1.0 + 1.0 / tasks
    strong = gaussian.variance_ratio(tasks, n, k, sb, s, "strong")
    assert (strong == pytest.approx(1.0 + 1.0 / tasks, rel=1e-14)) == (k == n)


def test_tight_constant_is_two_not_three():
    cfg = GaussianGameConfig(tasks=1, samples=5, dim=4, challenge=5)
    mom = gaussian.moments(cfg)
    assert mom["strong"].var == pytest.approx(2 * mom["out"].var, rel=1e-14)
    assert mom["strong"].var < mom["strong"].paper_var_bound


def test_broadcasting_matches_scalar_calls():
    tasks = np.array([1, 2, 4])
    sample_std = np.array([[1.0], [2.5]])
    m = gaussian.score_moments(tasks, 8, 16, 4, 0.5, sample_std, "strong")
    a, b = gaussian.law_scales(tasks, 8, 4, 0.5, sample_std, "strong")
    assert np.shape(m.var) == (2, 3) and np.shape(a) == (2, 3)
    for i, s in enumerate(sample_std[:, 0]):
        for j, t in enumerate(tasks):
            cfg = GaussianGameConfig(tasks=int(t), samples=8, dim=16, challenge=4, task_std=0.5,
                                     sample_std=float(s))  # fmt: skip
            one = gaussian.moments(cfg)["strong"]
            law = gaussian.exact_law(cfg, "strong")
            assert m.var[i, j] == pytest.approx(one.var, rel=1e-14)
            assert m.mean[i, j] == pytest.approx(one.mean, rel=1e-14)
            assert (a[i, j], b[i, j]) == pytest.approx((law.scale_pos, law.scale_neg), rel=1e-14)
    # Host results are float64 even from float32 input.
    m32 = gaussian.score_moments(2, 8, 16, 4, np.float32(0.5), np.array([1.0], np.float32), "weak")
    assert m32.var.dtype == np.float64
    law = gaussian.exact_law(CONFIGS[1], "weak")
    t32 = np.array([0.1, 2.0], dtype=np.float32)
    for out in (law.sf(t32), law.cdf(t32), law.pdf(t32), law.isf(np.float32([0.2, 0.6]))):
        assert out.dtype == np.float64 and out.shape == (2,)
    assert isinstance(law.sf(0.5), float)


# ----------------------------------------------------------------------------------------
# The exact law: deterministic checks.


@pytest.mark.parametrize("dim", [1, 2, 5, 2048])
@pytest.mark.parametrize("adversary", ["strong", "out"])
def test_pdf_normalised_with_exact_moments(dim, adversary):
    cfg = GaussianGameConfig(tasks=3, samples=4, dim=dim, challenge=2)
    law = gaussian.exact_law(cfg, adversary)
    m = gaussian.moments(cfg)[adversary]
    extra = (0.0,)  # d = 1 has a log singularity at 0
    sd = math.sqrt(m.var)
    assert _integrate_pdf(law, lambda t: 1.0, extra) == pytest.approx(1.0, abs=1e-9)
    assert _integrate_pdf(law, lambda t: t, extra) == pytest.approx(m.mean, abs=1e-9 * sd)
    second = _integrate_pdf(law, lambda t: (t - m.mean) ** 2, extra)
    assert second == pytest.approx(m.var, rel=1e-8)
    # Power: the paper's variance (missing d c^2) is rejected when c > 0.
    if adversary == "strong":
        assert abs(second - m.paper_var) > 1e3 * 1e-8 * m.var


def test_asymmetric_laplace_closed_form_d2():
    # d = 2: chi2(2) is exponential, so a X - b Y is asymmetric Laplace.
    a, b = 0.7, 0.3
    law = gaussian.ScoreLaw(2, a, b)
    t = np.array([-6.0, -1.0, 0.0, 0.5, 3.0, 20.0, 45.0])
    sf = np.where(t >= 0, a / (a + b) * np.exp(-t / (2 * a)), 1 - b / (a + b) * np.exp(t / (2 * b)))
    pdf = np.where(t >= 0, np.exp(-t / (2 * a)), np.exp(t / (2 * b))) / (2 * (a + b))
    np.testing.assert_allclose(law.sf(t), sf, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(law.cdf(t), 1 - sf, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(law.pdf(t), pdf, rtol=1e-12)
    # Lower tail keeps relative accuracy (cdf is not computed as 1 - sf).
    assert law.cdf(-30.0) == pytest.approx(b / (a + b) * math.exp(-30.0 / (2 * b)), rel=1e-9)


@pytest.mark.parametrize(
    "law",
    [
        gaussian.ScoreLaw(1, 0.9, 0.2),
        gaussian.ScoreLaw(3, 0.5, 0.5),
        gaussian.ScoreLaw(64, 0.1, 0.07),
    ],
)
def test_sf_three_methods_agree(law):
    sd = math.sqrt(law.var)
    t = law.mean + sd * np.array([-3.0, -0.5, 0.0, 1.0, 4.0])
    conditional = law.sf(t)
    imhof = [tails.imhof_sf(v, [law.scale_pos, -law.scale_neg], [law.dim] * 2) for v in t]
    np.testing.assert_allclose(conditional, imhof, rtol=0, atol=1e-11)
    # Third route: integrate the closed-form pdf (upper tail, relative accuracy).
    tail = _integrate_pdf(law, lambda v: float(v > t[-1]), (t[-1], 0.0))
    assert conditional[-1] == pytest.approx(tail, rel=1e-8)
    np.testing.assert_allclose(law.sf(t) + law.cdf(t), 1.0, atol=1e-13)


def test_quantiles_invert():
    law = gaussian.exact_law(CONFIGS[1], "strong")
    p = np.array([1e-8, 1e-3, 0.3, 0.5, 0.9, 1 - 1e-6])
    np.testing.assert_allclose(law.sf(law.isf(p)), p, rtol=1e-9)
    np.testing.assert_allclose(law.cdf(law.ppf(p)), p, rtol=1e-9)
    np.testing.assert_allclose(law.isf(p), law.ppf(1 - p), rtol=1e-8, atol=1e-12)


def test_rho_one_is_scaled_chi_square():
    # T = 1, k = N, strong: rho = 1, b = 0, z = a X.
    cfg = GaussianGameConfig(tasks=1, samples=3, dim=4, challenge=3, task_std=0.8)
    law = gaussian.exact_law(cfg, "strong")
    m = gaussian.moments(cfg)["strong"]
    assert law.scale_neg == 0.0
    assert law.scale_pos == pytest.approx(math.sqrt(m.A * m.B), rel=1e-14)
    a, t = law.scale_pos, np.array([-1.0, 0.0, 0.3, 2.0, 40.0])
    np.testing.assert_allclose(law.sf(t), stats.chi2.sf(t / a, 4), rtol=1e-13)
    np.testing.assert_allclose(law.cdf(t), stats.chi2.cdf(t / a, 4), rtol=1e-13)
    np.testing.assert_allclose(law.pdf(t), stats.chi2.pdf(t / a, 4) / a, rtol=1e-12)
    np.testing.assert_allclose(law.isf([0.01, 0.7]), a * stats.chi2.isf([0.01, 0.7], 4), rtol=1e-9)
    assert m.var_ratio == pytest.approx(2.0, rel=1e-14)
    # AUC with the 3-term Imhof sum (b = 0 dropped) against integrating sf_IN against pdf_OUT.
    law_out = gaussian.exact_law(cfg, "out")
    other = _integrate_pdf(law_out, lambda v: law.sf(v), (0.0,))
    assert gaussian.exact_auc(cfg, "strong") == pytest.approx(other, abs=1e-9)


def test_contract_fields_and_plain_number_law():
    assert gaussian.ADVERSARIES == ("strong", "weak", "out")
    fields = ("A", "B", "c", "mean", "var", "paper_mean", "paper_var")
    assert gaussian.ScoreMoments._fields == fields
    cfg = CONFIGS[1]
    args = (cfg.tasks, cfg.samples, cfg.dim, cfg.challenge, cfg.task_std, cfg.sample_std)
    for adv in gaussian.ADVERSARIES:
        assert gaussian.score_law(*args, adv) == gaussian.exact_law(cfg, adv)
    with pytest.raises(ValueError, match="tasks must be an integer"):
        gaussian.score_law(np.array([1, 2]), 8, 4, 4, 1.0, 1.0, "weak")
    with pytest.raises(ValueError, match="scalar"):
        gaussian.score_law(1, 8, 4, 4, np.array([1.0, 2.0]), 1.0, "weak")


@pytest.mark.parametrize("dim", [1, 2048])
def test_extreme_dims_stable(dim):
    cfg = GaussianGameConfig(tasks=2, samples=8, dim=dim, challenge=4)
    for adv in gaussian.ADVERSARIES:
        law = gaussian.exact_law(cfg, adv)
        sd = math.sqrt(law.var)
        t = law.mean + sd * np.array([-1e3, -60.0, -5.0, -1e-9, 1e-9, 0.5, 5.0, 60.0, 1e3])
        logpdf = law.logpdf(t)
        assert not np.any(np.isnan(logpdf)) and np.all(logpdf < np.inf)
        assert np.all(np.isfinite(logpdf[1:-1]))  # log space survives where pdf underflows
        assert np.all(np.diff(logpdf[4:]) < 0)  # decreasing right of the mode
        pdf = law.pdf(t)
        assert np.all(np.isfinite(pdf)) and np.all(pdf >= 0)
        sf = law.sf(t[1:-1])
        assert np.all(np.isfinite(sf)) and np.all(np.diff(sf) <= 0)
        assert 0 <= sf[-1] < 1e-20 and sf[0] == 1.0


def test_log_bessel_branches_agree_with_kve():
    # The large-order (Debye) and small-argument branches against kve where it is finite.
    for nu, x in [(20.5, [0.4, 3.0, 30.0]), (60.5, [1.0, 20.0, 300.0]), (3.5, [1e-3, 0.1])]:
        x = np.array(x)
        ref = np.log(special.kve(nu, x)) - x
        if nu >= 20:  # force the Debye branch by evaluating it directly
            z = x / nu
            sq = np.sqrt(1 + z * z)
            series = 1.0 + sum(
                (-1.0) ** j * np.polynomial.polynomial.polyval(1 / sq, c) / nu**j
                for j, c in enumerate(tails._DEBYE, start=1)
            )
            eta = sq + np.log(z) - np.log1p(sq)
            debye = 0.5 * np.log(np.pi / (2 * nu)) - nu * eta - 0.5 * np.log(sq) + np.log(series)
            np.testing.assert_allclose(debye, ref, rtol=1e-9)
        np.testing.assert_allclose(tails.log_kv(nu, x), ref, rtol=1e-12)
    # Where kve overflows the result stays finite.
    assert np.isfinite(tails.log_kv(1023.5, np.array([1e-3, 10.0]))).all()


# ----------------------------------------------------------------------------------------
# The exact law against Monte Carlo of the bivariate-normal representation.


def test_sf_against_monte_carlo_with_power():
    cfg = SKEWED
    m = gaussian.moments(cfg)["strong"]
    law = gaussian.exact_law(cfg, "strong")
    n = 200_000
    z = _mc_scores(np.random.default_rng(1234), m.A, m.B, m.c, cfg.dim, n)
    t = np.array([-0.5, 0.0, 0.3, 1.0, 3.0, 6.0])
    emp = (z[:, None] > t).mean(axis=0)
    se = np.sqrt(np.maximum(emp * (1 - emp), 1.0 / n) / n)
    # 6 thresholds at 4.5 se: failure probability <= 6 * 6.8e-6.
    assert np.all(np.abs(emp - law.sf(t)) <= Z * se)
    # Power: the normal approximation and the law with c = 0 are rejected at the same data.
    normal = stats.norm.sf(t, loc=m.mean, scale=math.sqrt(m.var))
    assert np.any(np.abs(emp - normal) > Z * se)
    no_cov = gaussian.ScoreLaw(cfg.dim, math.sqrt(m.A * m.B) / 2, math.sqrt(m.A * m.B) / 2)
    assert np.any(np.abs(emp - no_cov.sf(t)) > Z * se)


def test_ks_exact_cdf_against_monte_carlo():
    cfg = SKEWED
    m = gaussian.moments(cfg)["strong"]
    # n = 300: the KS critical value at alpha = 1e-4 is sqrt(ln(2e4)/(2n)) = 0.13, while the
    # sup-distance of the exact cdf to the moment-matched normal is 0.20 (to the c = 0 law 0.38).
    z = _mc_scores(np.random.default_rng(99), m.A, m.B, m.c, cfg.dim, 300)
    law = gaussian.exact_law(cfg, "strong")
    # alpha = 1e-4: the true law is rejected with probability 1e-4.
    assert stats.kstest(z, law.cdf).pvalue > 1e-4
    # Power: the moment-matched normal and the c = 0 law are rejected at the same alpha.
    assert stats.kstest(z, stats.norm(m.mean, math.sqrt(m.var)).cdf).pvalue < 1e-4
    no_cov = gaussian.ScoreLaw(cfg.dim, math.sqrt(m.A * m.B) / 2, math.sqrt(m.A * m.B) / 2)
    assert stats.kstest(z, no_cov.cdf).pvalue < 1e-4


# ----------------------------------------------------------------------------------------
# ROC quantities.


def _mc_auc(z_in, z_out):
    """Mann-Whitney AUC and its DeLong standard error (independent samples, no ties)."""
    s_out, s_in = np.sort(z_out), np.sort(z_in)
    v10 = np.searchsorted(s_out, z_in) / z_out.size  # P(OUT < z_in_i)
    v01 = 1.0 - np.searchsorted(s_in, z_out) / z_in.size  # P(IN > z_out_j)
    auc = v10.mean()
    se = math.sqrt(v10.var(ddof=1) / z_in.size + v01.var(ddof=1) / z_out.size)
    return auc, se


def test_auc_against_monte_carlo_with_power():
    cfg = SKEWED
    mom = gaussian.moments(cfg)
    rng = np.random.default_rng(7)
    n = 20_000
    m1, m0 = mom["strong"], mom["out"]
    z_in = _mc_scores(rng, m1.A, m1.B, m1.c, cfg.dim, n)
    z_out = _mc_scores(rng, m0.A, m0.B, m0.c, cfg.dim, n)
    auc, se = _mc_auc(z_in, z_out)
    exact = gaussian.exact_auc(cfg, "strong")
    assert abs(auc - exact) <= Z * se  # failure probability 6.8e-6
    # Power: the normal-approximation AUC is rejected at d = 1.
    assert abs(auc - gaussian.normal_auc(cfg, "strong")) > Z * se


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[1]])
def test_auc_imhof_against_pdf_integration(config):
    for adv in ("strong", "weak"):
        law_in = gaussian.exact_law(config, adv)
        law_out = gaussian.exact_law(config, "out")
        other = _integrate_pdf(law_out, lambda t, law_in=law_in: law_in.sf(t))
        assert gaussian.exact_auc(config, adv) == pytest.approx(other, abs=1e-9)
    # Large d: the normal approximation is close (CLT), but the strong/weak ordering holds.
    if config.dim >= 256:
        assert gaussian.exact_auc(config, "strong") == pytest.approx(
            gaussian.normal_auc(config, "strong"), abs=1e-3
        )
    assert gaussian.exact_auc(config, "strong") > gaussian.exact_auc(config, "weak") > 0.5


def test_roc_endpoints_and_monotone():
    cfg = CONFIGS[1]
    fpr = np.array([1e-9, 1e-4, 0.01, 0.1, 0.3, 0.5, 0.8, 0.99, 1 - 1e-9])
    strong = gaussian.exact_roc(cfg, "strong", fpr)
    weak = gaussian.exact_roc(cfg, "weak", fpr)
    for tpr in (strong, weak):
        assert tpr.shape == fpr.shape
        assert np.all(np.diff(tpr) > 0) and np.all(tpr > fpr)
        assert tpr[0] < 1e-4 and tpr[-1] > 1 - 1e-6
    assert np.all(strong >= weak)  # the strong adversary dominates
    assert gaussian.exact_tpr_at_fpr(cfg, "weak", 0.01) == pytest.approx(weak[2], rel=1e-12)
    normal = gaussian.normal_roc(cfg, "strong", fpr)
    assert np.all(np.diff(normal) > 0)
    assert gaussian.normal_tpr_at_fpr(cfg, "strong", 0.3) == pytest.approx(normal[4], rel=1e-12)
    # Shape is preserved for 2-D fpr.
    assert gaussian.exact_roc(cfg, "weak", fpr[:4].reshape(2, 2)).shape == (2, 2)


def test_percentile_table():
    cfg = CONFIGS[1]
    table = gaussian.exact_percentile_table(cfg, "strong", percentiles=(50, 75, 90))
    law_in, law_out = gaussian.exact_law(cfg, "strong"), gaussian.exact_law(cfg, "out")
    q = table["percentile"]
    mix = 0.5 * (law_in.sf(table["threshold"]) + law_out.sf(table["threshold"]))
    np.testing.assert_allclose(mix, 1 - q / 100, atol=1e-10)
    np.testing.assert_allclose(table["tpr"], law_in.sf(table["threshold"]), rtol=1e-12)
    np.testing.assert_allclose(table["fpr"], law_out.sf(table["threshold"]), rtol=1e-12)
    ba = (table["tpr"] + 1 - table["fpr"]) / 2
    np.testing.assert_allclose(table["balanced_accuracy"], ba, rtol=1e-14)
    assert np.all(np.diff(table["threshold"]) > 0)
    # At the median of a 50/50 mixture, fpr = 1 - tpr, so balanced accuracy = tpr.
    assert table["balanced_accuracy"][0] == pytest.approx(table["tpr"][0], abs=1e-10)


def test_per_game_auc_against_monte_carlo_with_power():
    # One game: IN and OUT scores share alpha = mu_hat - mu_bar.
    cfg = GaussianGameConfig(tasks=2, samples=2, dim=1, challenge=2)
    m = gaussian.moments(cfg)["strong"]
    rng = np.random.default_rng(2024)
    g = 200_000
    alpha = rng.standard_normal((g, cfg.dim)) * math.sqrt(m.A)
    beta_in = m.c / m.A * alpha + rng.standard_normal((g, cfg.dim)) * math.sqrt(m.B - m.c**2 / m.A)
    beta_out = rng.standard_normal((g, cfg.dim)) * math.sqrt(m.B)
    wins = np.sum(alpha * beta_in, axis=1) > np.sum(alpha * beta_out, axis=1)
    est, se = wins.mean(), wins.std(ddof=1) / math.sqrt(g)
    assert abs(est - gaussian.exact_per_game_auc(cfg, "strong")) <= Z * se
    # Power: the marginal AUC (independent releases) is rejected for a single game's scores.
    assert abs(est - gaussian.exact_auc(cfg, "strong")) > Z * se


# ----------------------------------------------------------------------------------------
# Vectorised ROC theory (roc_theory): against the scalar functions and closed forms.

ROC_FPRS = (1e-3, 1e-2, 0.1)


def _roc_grid():
    """42 cells (T, N, d, k, sbar, adversary, fpr): per d in {1, 2, 3, 16, 256, 4096}, T in
    {1, 4, 256} x {strong, weak} plus rho = 1 (T = 1, k = N, strong); (N, k) and sbar/s in
    [0.1, 10] drawn from a seeded RNG, every fpr in ROC_FPRS used for every d."""
    rng = np.random.default_rng(11)
    nk = ((4, 2), (8, 1), (16, 4), (3, 3))
    cells = []
    for d in (1, 2, 3, 16, 256, 4096):
        combos = [(t, adv) for t in (1, 4, 256) for adv in ("strong", "weak")] + [(1, "rho1")]
        for j, (t, adv) in enumerate(combos):
            n, k = (4, 4) if adv == "rho1" else nk[rng.integers(len(nk))]
            sbar = float(10.0 ** rng.uniform(-1.0, 1.0))
            adv = "strong" if adv == "rho1" else adv
            cells.append((t, n, d, k, sbar, adv, ROC_FPRS[j % 3]))
    return cells


def _roc_batches(cells):
    """{(adversary, fpr): (row indices, roc_theory result)}: one batched call per group."""
    out = {}
    for adv in ("strong", "weak"):
        for fpr in ROC_FPRS:
            idx = [i for i, c in enumerate(cells) if c[5] == adv and c[6] == fpr]
            t, n, d, k, sb = (np.array([cells[i][j] for i in idx]) for j in range(5))
            out[adv, fpr] = idx, gaussian.roc_theory(t, n, d, k, sb, 1.0, adv, fpr)
    return out


def test_roc_theory_matches_scalar_functions():
    """|AUC - exact_auc| <= 1e-12, |TPR - exact_tpr_at_fpr| <= 1e-12 and <= 1e-10 relative
    (TPR > 1e-12) on the 42-cell grid (achieved: 7e-14, 1.4e-15, 9e-15; the scalar functions
    are themselves accurate to ~1e-10); normal approximations and moments agree exactly."""
    cells = _roc_grid()
    assert any(c[0] == 1 and c[1] == c[3] and c[5] == "strong" for c in cells)  # rho = 1
    for (adv, fpr), (idx, res) in _roc_batches(cells).items():
        for row, i in enumerate(idx):
            t, n, d, k, sb = cells[i][:5]
            cfg = GaussianGameConfig(tasks=t, samples=n, dim=d, challenge=k, task_std=sb)
            msg = f"{cells[i]}"
            auc, tpr = gaussian.exact_auc(cfg, adv), gaussian.exact_tpr_at_fpr(cfg, adv, fpr)
            assert abs(res["exact_auc"][row] - auc) <= 1e-12, msg
            assert abs(res["exact_tpr"][row] - tpr) <= 1e-12, msg
            if tpr > 1e-12:
                assert abs(res["exact_tpr"][row] - tpr) <= 1e-10 * tpr, msg
            assert res["normal_auc"][row] == pytest.approx(gaussian.normal_auc(cfg, adv), abs=1e-15)
            assert res["normal_tpr"][row] == pytest.approx(
                gaussian.normal_tpr_at_fpr(cfg, adv, fpr), abs=1e-15
            )
            m_in, m_out = gaussian.moments(cfg)[adv], gaussian.moments(cfg)["out"]
            got = [res[f"theory_{q}"][row] for q in ("mean_in", "var_in", "mean_out", "var_out")]
            assert got == [m_in.mean, m_in.var, m_out.mean, m_out.var], msg
            assert res["paper_var"][row] == m_out.paper_var


def _unit_scales(t, n, k, sb, adv):
    """(a1, b1) = (a, b)/sqrt(AB) = ((1 + rho)/2, (1 - rho)/2), b1 without cancellation."""
    a_var, b_var, cov = (np.asarray(x) for x in gaussian.second_order(t, n, k, sb, 1.0, adv))
    root = np.sqrt(a_var * b_var)
    return 0.5 * (1 + cov / root), 0.5 * np.maximum(a_var * b_var - cov**2, 0) / (
        root * (root + cov)
    )


@pytest.mark.parametrize("fpr", [1e-6, 1e-3, 0.3, 0.5, 0.8, 0.999])
def test_roc_theory_closed_forms(fpr):
    """Independent references. d = 2 (exponentials): OUT is Laplace(1), sf_IN(t) = a1
    exp(-t/(2 a1)) for t >= 0 and 1 - b1 exp(t/(2 b1)) for t < 0, AUC = 1/2 + a1^2/(2 a1 + 1)
    - b1^2/(2 b1 + 1). d = 1, fpr = 1/2: TPR = P(F(1, 1) > b1/a1) = 1 - (2/pi) atan(sqrt(b1/a1))
    (there the scalar exact_tpr_at_fpr is off by up to 2e-9 near rho = 1). Achieved: 2e-15."""
    t = np.array([1, 1, 1, 2, 4, 256, 1, 3])
    n = np.array([4, 8, 2, 8, 8, 16, 1000, 5])
    k = np.array([4, 2, 1, 8, 1, 4, 999, 5])
    sb = np.array([1.0, 0.1, 10.0, 0.5, 3.0, 1.0, 100.0, 0.2])
    for adv in ("strong", "weak"):
        a1, b1 = _unit_scales(t, n, k, sb, adv)
        res = gaussian.roc_theory(t, n, 2, k, sb, 1.0, adv, fpr)
        if fpr <= 0.5:
            tpr = a1 * (2 * fpr) ** (1 / (2 * a1))
        else:  # t = log(2 (1 - fpr)) < 0; 1/(2 b1) = inf when b1 = 0 gives lower = 0
            with np.errstate(divide="ignore"):
                lower = b1 * (2 * (1 - fpr)) ** (1 / (2 * b1))
            tpr = 1 - lower
        np.testing.assert_allclose(res["exact_tpr"], tpr, rtol=1e-13, atol=0)
        auc = 0.5 + a1**2 / (2 * a1 + 1) - b1**2 / (2 * b1 + 1)
        np.testing.assert_allclose(res["exact_auc"], auc, rtol=0, atol=1e-14)
        if fpr == 0.5:  # includes rho = 1 (row 0) and 1 - rho ~ 5e-11 (row 6)
            res1 = gaussian.roc_theory(t, n, 1, k, sb, 1.0, adv, fpr)
            tpr1 = 1 - 2 / np.pi * np.arctan(np.sqrt(b1 / a1))
            np.testing.assert_allclose(res1["exact_tpr"], tpr1, rtol=0, atol=1e-14)


def test_roc_theory_batch_independent_and_broadcast():
    """Each cell's numbers are bitwise the same alone or in a batch (with duplicates), and the
    result broadcasts like the numeric arguments; scalar input gives 0-d float64 arrays."""
    t = np.array([1, 4, 4, 256, 1, 4])
    d = np.array([1, 3, 3, 16, 4096, 2])
    sb = np.array([0.3, 2.0, 2.0, 1.0, 10.0, 0.1])
    for fpr in (0.01, 0.7):
        full = gaussian.roc_theory(t, 8, d, 2, sb, 1.0, "weak", fpr)
        for i in range(len(t)):
            one = gaussian.roc_theory(int(t[i]), 8, int(d[i]), 2, float(sb[i]), 1.0, "weak", fpr)
            for key, v in full.items():
                assert one[key].shape == () and one[key].dtype == np.float64
                assert one[key] == v[i], (key, i, fpr)
    res = gaussian.roc_theory([[1], [4]], 8, [16, 256, 3], 4, 1.0, [1.0, 2.0, 0.5], "strong", 0.1)
    assert {v.shape for v in res.values()} == {(2, 3)}
    again = gaussian.roc_theory(4, 8, 3, 4, 1.0, 0.5, "strong", 0.1)
    assert again["exact_tpr"] == res["exact_tpr"][1, 2]


def test_roc_theory_validation():
    good = dict(tasks=4, samples=8, dim=16, challenge=2, task_std=1.0, sample_std=1.0)
    bad = [
        ("adversary", {"adversary": "out"}),
        ("adversary", {"adversary": "medium"}),
        ("fpr", {"fpr": 0.0}),
        ("fpr", {"fpr": 1.0}),
        ("fpr", {"fpr": float("nan")}),
        ("fpr must be a scalar", {"fpr": [0.1, 0.2]}),
        ("tasks", {"tasks": 0}),
        ("samples", {"samples": [8, 2.5]}),
        ("dim", {"dim": 1.5}),
        ("dim", {"dim": [4, 0]}),
        ("challenge", {"challenge": 9}),
        ("task_std", {"task_std": -1.0}),
        ("sample_std", {"sample_std": [1.0, float("inf")]}),
        ("broadcast", {"tasks": [1, 2], "dim": [4, 8, 16]}),
    ]
    for match, change in bad:
        kw = {"adversary": "strong", "fpr": 0.01, **good, **change}
        with pytest.raises(ValueError, match=match):
            gaussian.roc_theory(**kw)


# ----------------------------------------------------------------------------------------
# Validation.


def test_validation_errors():
    cfg = CONFIGS[1]
    with pytest.raises(ValueError, match="adversary"):
        gaussian.exact_law(cfg, "medium")
    with pytest.raises(ValueError, match="adversary"):
        gaussian.exact_roc(cfg, "out", 0.1)
    with pytest.raises(ValueError, match="adversary"):
        gaussian.normal_auc(cfg, "out")
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="fpr"):
            gaussian.exact_roc(cfg, "strong", [0.1, bad])
        with pytest.raises(ValueError, match="fpr"):
            gaussian.normal_tpr_at_fpr(cfg, "weak", bad)
    with pytest.raises(ValueError, match="fpr must be a scalar"):
        gaussian.exact_tpr_at_fpr(cfg, "strong", [0.1, 0.2])
    for bad in ((0, 50), (50, 100), (float("nan"),)):
        with pytest.raises(ValueError, match="percentiles"):
            gaussian.exact_percentile_table(cfg, "strong", bad)
    with pytest.raises(ValueError, match="config"):
        gaussian.moments({"tasks": 3})
    with pytest.raises(ValueError, match="challenge"):
        gaussian.score_moments(2, 3, 4, 5, 1.0, 1.0, "strong")
    with pytest.raises(ValueError, match="tasks"):
        gaussian.score_moments(0, 3, 4, 2, 1.0, 1.0, "strong")
    with pytest.raises(ValueError, match="dim"):
        gaussian.score_moments(2, 3, 1.5, 2, 1.0, 1.0, "strong")
    with pytest.raises(ValueError, match="task_std"):
        gaussian.law_scales(2, 3, 2, -1.0, 1.0, "weak")
    with pytest.raises(ValueError, match="sample_std"):
        gaussian.variance_ratio(2, 3, 2, 1.0, [1.0, float("nan")], "weak")
    with pytest.raises(ValueError, match="dim"):
        gaussian.ScoreLaw(0, 1.0, 0.5)
    with pytest.raises(ValueError, match="scale_neg"):
        gaussian.ScoreLaw(2, 1.0, -0.5)
    with pytest.raises(ValueError, match="scale_pos"):
        gaussian.ScoreLaw(2, 0.0, 0.5)
    law = gaussian.ScoreLaw(2, 1.0, 0.5)
    with pytest.raises(ValueError, match="p must be in"):
        law.isf(1.0)
    with pytest.raises(ValueError, match="q must be in"):
        law.ppf([0.5, 0.0])
    with pytest.raises(ValueError, match="t must be finite"):
        law.sf(float("nan"))
