"""Tests for mtl_tracing.audit: GDP conversions against numerical integration, Clopper-Pearson
and audit bounds on deterministic quantile grids, the worst-case canary's tightness (10^6
trials, one compile), validity by coverage over seeds (with a power check that a naive bound
fails), the one-run audit on randomized response with known epsilon, and input validation."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special, stats

from mtl_tracing import audit
from mtl_tracing.audit import canary as canary_mod


def _hockey_stick(eps, mu):
    """delta(eps) of N(mu,1) vs N(0,1) by quadrature of max(0, p - e^eps q)."""
    f = lambda x: max(0.0, stats.norm.pdf(x, mu) - np.exp(eps) * stats.norm.pdf(x))  # noqa: E731
    return integrate.quad(f, -20, 20, points=[eps / mu + mu / 2], limit=200)[0]


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_gdp_delta_matches_integration_and_epsilon_inverts(mu):
    for eps in (0.0, 0.5, 2.0):
        np.testing.assert_allclose(audit.gdp_delta(eps, mu), _hockey_stick(eps, mu), atol=1e-9)
    for delta in (1e-3, 1e-5):
        eps = audit.gdp_epsilon(mu, delta)
        np.testing.assert_allclose(audit.gdp_delta(eps, mu), delta, rtol=1e-8)
    # Broadcasting, and the limits mu = 0 and mu = inf.
    out = audit.gdp_epsilon(np.array([0.0, mu, np.inf]), 1e-5)
    assert out[0] == 0.0 and np.isinf(out[2]) and out[1] > 0


def test_gdp_tradeoff_is_the_neyman_pearson_roc():
    fpr = np.array([0.0, 1e-3, 0.1, 0.5, 1.0])
    tpr = audit.gdp_tradeoff(fpr, 1.0)
    # The likelihood-ratio test of N(1,1) vs N(0,1) at threshold Phi^-1(1 - fpr).
    with np.errstate(divide="ignore"):
        want = stats.norm.sf(stats.norm.isf(fpr) - 1.0)
    np.testing.assert_allclose(tpr, want, atol=1e-15)
    assert audit.gdp_tradeoff(0.3, np.inf) == 1.0
    with pytest.raises(ValueError, match="fpr"):
        audit.gdp_tradeoff(1.5, 1.0)


def test_clopper_pearson_matches_scipy_binomtest():
    for k, n in [(0, 10), (3, 10), (10, 10), (17, 1000)]:
        want = stats.binomtest(k, n).proportion_ci(0.9, "exact").high  # two-sided 0.9 = one 0.95
        np.testing.assert_allclose(audit.clopper_pearson_upper(k, n, 0.05), want, rtol=1e-10)


def _grid_trials(mu, n):
    """Scores on the exact quantile grid of N(mu, 1) (IN) and N(0, 1) (OUT): no MC noise."""
    u = (np.arange(n) + 0.5) / n
    perm = np.random.default_rng(0).permutation(n)  # exchangeable order for the split
    return (mu + special.ndtri(u))[perm], special.ndtri(u)[perm[::-1]]


@pytest.mark.parametrize("method", audit.METHODS)
def test_audit_on_quantile_grid_is_valid_and_tight(method):
    a, b = _grid_trials(1.0, 20_000)
    r = audit.audit(a, b, delta=1e-5, threshold=method)
    assert 0.9 < r.mu_lb <= 1.0
    assert 0.0 < r.epsilon_lb <= audit.gdp_epsilon(1.0, 1e-5)
    assert r.epsilon_from_mu_lb <= audit.gdp_epsilon(1.0, 1e-5)
    assert r.trials == 20_000 and r.evaluated == (10_000 if method == "split" else 20_000)
    # The reported operating point reproduces mu_lb.
    want = special.ndtri(1 - r.fpr_hi) - special.ndtri(r.fnr_hi)
    np.testing.assert_allclose(r.mu_lb, want, rtol=1e-12)
    # Identical IN and OUT laws: no privacy loss can be claimed.
    r0 = audit.audit(b, b[::-1], delta=1e-5, threshold=method)
    assert r0.mu_lb < 0.1 and r0.epsilon_lb < 0.2


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_worst_case_canary_is_tight_with_1e6_trials_in_one_compile(mu):
    before = canary_mod._canary_kernel._cache_size()
    a, b = audit.canary_scores(jax.random.key(7), clip=1.0, noise_multiplier=2.0 / mu, trials=10**6)
    assert a.shape == b.shape == (10**6,)
    r = audit.audit(a, b, delta=1e-5)
    assert 0.95 * mu <= r.mu_lb <= mu, r
    assert 0.0 < r.epsilon_lb <= audit.gdp_epsilon(mu, 1e-5)
    # One compiled program for every (C, z): the three mu share it.
    audit.canary_scores(jax.random.key(8), clip=2.0, noise_multiplier=1.0, trials=10**6)
    assert canary_mod._canary_kernel._cache_size() - before <= 1


def _naive_mu(a, b):
    """Point estimate at the median threshold, no confidence bound: NOT a valid lower bound."""
    t = np.median(np.r_[a, b])
    return special.ndtri(1 - np.mean(b > t)) - special.ndtri(np.mean(a <= t))


@given(seed=st.integers(0, 2**16), mu=st.sampled_from([0.5, 1.0, 2.0]))
def test_audit_validity_coverage_over_seeds(seed, mu):
    """Over 200 independent audits of a mu-GDP release (canary, 400 trials each), mu_lb > mu and
    epsilon_lb > epsilon(delta) happen at most alpha = 5% of the time (+3 SE: 3 sqrt(.05 .95 /
    200) = 4.6%). Power: the naive point estimate exceeds mu about half the time."""
    reps, n = 200, 400
    a, b = audit.canary_scores(
        jax.random.key(seed), clip=1.0, noise_multiplier=2.0 / mu, trials=reps * n
    )
    a, b = np.asarray(a).reshape(reps, n), np.asarray(b).reshape(reps, n)
    eps_true = audit.gdp_epsilon(mu, 1e-3)
    res = [audit.audit(a[i], b[i], delta=1e-3, num_candidates=32) for i in range(reps)]
    bad_mu = np.mean([r.mu_lb > mu for r in res])
    bad_eps = np.mean([r.epsilon_lb > eps_true for r in res])
    assert bad_mu <= 0.05 + 0.046 and bad_eps <= 0.05 + 0.046
    naive = np.mean([_naive_mu(a[i], b[i]) > mu for i in range(reps)])
    assert naive > 0.3  # power: an invalid estimator is caught by the same check


def test_trials_are_enforced():
    with pytest.raises(ValueError, match="one IN and one OUT score per independent trial"):
        audit.audit(np.zeros(5), np.zeros(6), delta=1e-5)
    with pytest.raises(ValueError, match="one IN and one OUT score per independent trial"):
        audit.audit(np.zeros((5, 2)), np.zeros((5, 2)), delta=1e-5)
    with pytest.raises(ValueError, match="finite"):
        audit.audit(np.array([0.0, np.nan]), np.zeros(2), delta=1e-5)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="delta"):
            audit.audit(np.zeros(4), np.zeros(4), delta=bad)
        with pytest.raises(ValueError, match="level"):
            audit.audit(np.zeros(4), np.zeros(4), delta=1e-5, level=bad)
    with pytest.raises(ValueError, match="threshold"):
        audit.audit(np.zeros(4), np.zeros(4), delta=1e-5, threshold="max")
    s_in, s_out = audit.game_trials(np.arange(12.0).reshape(4, 3), np.zeros((4, 3)), task=1)
    np.testing.assert_array_equal(s_in, [1.0, 4.0, 7.0, 10.0])
    with pytest.raises(ValueError, match="games, T"):
        audit.game_trials(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="clip"):
        audit.canary_scores(jax.random.key(0), clip=0.0, noise_multiplier=1.0, trials=4)
    with pytest.raises(ValueError, match="noise_multiplier"):
        audit.canary_scores(jax.random.key(0), clip=1.0, noise_multiplier=-1.0, trials=4)


def _randomized_response(rng, m, eps):
    """Each canary's output bit equals its inclusion coin w.p. e^eps/(1+e^eps): eps-DP."""
    included = rng.random(m) < 0.5
    keep = rng.random(m) < special.expit(eps)
    out = np.where(keep, included, ~included)
    return out + 1e-6 * rng.random(m), included  # tiny jitter: a strict order for the guesses


def test_one_run_audit_valid_and_rising_with_canaries():
    eps = 2.0
    means = []
    for m in (100, 1000, 10_000):
        lbs = []
        for seed in range(20):
            s, inc = _randomized_response(np.random.default_rng(seed), m, eps)
            r = audit.one_run_audit(s, inc, guesses_in=m // 2, guesses_out=m // 2)
            assert r.guesses == m and 0 <= r.correct <= m
            lbs.append(r.epsilon_lb)
        lbs = np.asarray(lbs)
        # Validity: p-value <= 5% under the null; allow 3 of 20 (P[Binom(20, .05) >= 4] < 2%).
        assert np.sum(lbs > eps) <= 3
        means.append(lbs.mean())
    assert means[0] < means[1] < means[2] <= eps
    assert means[2] > 0.9 * eps  # r = m guesses on RR: the binomial analysis is nearly tight


def test_one_run_p_value_and_delta_correction():
    # With delta = 0, p is the binomial tail exactly.
    p = audit.one_run_p_value(1.0, canaries=50, guesses=50, correct=40)
    np.testing.assert_allclose(p, stats.binom.sf(39, 50, special.expit(1.0)), rtol=1e-12)
    lb0 = audit.one_run_epsilon_lb(canaries=1000, guesses=1000, correct=850)
    lbd = audit.one_run_epsilon_lb(canaries=1000, guesses=1000, correct=850, delta=1e-4)
    assert 0 < lbd <= lb0
    # At epsilon_lb the p-value equals alpha.
    np.testing.assert_allclose(
        audit.one_run_p_value(lb0, canaries=1000, guesses=1000, correct=850), 0.05, rtol=1e-6
    )
    assert audit.one_run_epsilon_lb(canaries=10, guesses=10, correct=5) == 0.0
    with pytest.raises(ValueError, match="correct"):
        audit.one_run_epsilon_lb(canaries=10, guesses=5, correct=6)
    with pytest.raises(ValueError, match="included"):
        audit.one_run_audit(np.zeros(3), np.zeros(3), guesses_in=1)
