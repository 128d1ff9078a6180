"""Tests for the Gaussian game with a DP release (gaussian/release.py): the default release is
today's game bit for bit; the exact unclipped theory (A + sigma^2) against both samplers with
SE tolerances and a power check (the noiseless formula is rejected); roc_theory's noise column;
the mu-GDP bound on every simulated ROC point of the clipped release, with its power check
(the same noise without clipping beats the curve); validation."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtl_tracing import audit
from mtl_tracing import gaussian as g
from mtl_tracing.audit import clopper_pearson_upper
from mtl_tracing.gaussian.moments import moments

SMALL = g.GaussianGameConfig(tasks=8, samples=4, dim=16, challenge=2)
#: Large task norms (sbar = 3, d = 16) against C = 1: clipping binds for every task.
DP_CFG = g.GaussianGameConfig(tasks=4, samples=4, dim=16, challenge=2, task_std=3.0)
CLIP, Z = 1.0, 2.0  # mu = 2 / z = 1


@pytest.mark.parametrize("sampler", g.SAMPLERS)
def test_default_release_is_todays_game_bit_for_bit(sampler):
    a = g.simulate_release(jax.random.key(3), SMALL, g.DPRelease(), games=50, sampler=sampler)
    b = g.simulate(jax.random.key(3), SMALL, games=50, sampler=sampler)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _col0(scores):
    """One task per game: the games are independent, the T tasks of a game are not."""
    return [np.asarray(s[:, 0], np.float64) for s in scores]


def _var_se(x):
    """SE of the sample variance from the fourth central moment."""
    c = x - x.mean()
    return np.sqrt(max(np.mean(c**4) - np.mean(c**2) ** 2, 0.0) / x.size)


@given(
    seed=st.integers(0, 2**16),
    sampler=st.sampled_from(g.SAMPLERS),
    sigma=st.sampled_from([0.3, 0.6]),
)
def test_noisy_release_moments_match_simulation_with_power(seed, sampler, sigma):
    rel = g.DPRelease(release_noise_std=sigma)
    sc = _col0(g.simulate_release(jax.random.key(seed), SMALL, rel, games=4096, sampler=sampler))
    want = g.release_moments(SMALL, rel)
    plain = moments(SMALL)  # the function (g.moments may be the submodule once imported)
    for x, adv in zip(sc, ("strong", "weak", "out"), strict=True):
        se_m, se_v = x.std() / np.sqrt(x.size), _var_se(x)
        assert abs(x.mean() - want[adv].mean) < 5 * se_m
        assert abs(x.var() - want[adv].var) < 5 * se_v, (adv, x.var(), want[adv].var)
        # Power: the noiseless variance is rejected (A + sigma^2 matters).
        assert abs(x.var() - plain[adv].var) > 5 * se_v


def _auc_se(auc, n):
    """Hanley-McNeil SE of an AUC from n IN and n OUT independent scores."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return np.sqrt((auc * (1 - auc) + (n - 1) * (q1 - auc**2) + (n - 1) * (q2 - auc**2)) / n**2)


def test_exact_auc_and_roc_match_simulation_with_power():
    from mtl_tracing import metrics

    rel = g.DPRelease(release_noise_std=0.5)
    s, w, o = _col0(g.simulate_release(jax.random.key(11), SMALL, rel, games=4096))
    for x, adv in ((s, "strong"), (w, "weak")):
        want = g.release_auc(SMALL, rel, adv)
        got = float(metrics.auc(x, o))
        se = _auc_se(want, x.size)
        assert abs(got - want) < 4 * se
        assert abs(got - g.exact_auc(SMALL, adv)) > 4 * se  # power: noiseless AUC rejected
        t = np.quantile(o, 0.9)
        np.testing.assert_allclose(
            np.mean(x > t), g.release_roc(SMALL, rel, adv, 0.1), atol=4 * np.sqrt(0.25 / x.size)
        )
        np.testing.assert_allclose(
            g.release_tpr_at_fpr(SMALL, rel, adv, 0.1),
            g.release_roc(SMALL, rel, adv, 0.1),
            rtol=1e-8,
        )


def test_roc_theory_noise_is_one_more_broadcast_column():
    sig = np.array([0.0, 0.25, 0.5, 1.0])
    th = g.roc_theory(8, 4, 16, 2, 1.0, 1.0, "strong", 0.05, release_noise_std=sig)
    assert th["exact_auc"].shape == (4,)
    assert np.all(np.diff(th["exact_auc"]) < 0)  # more noise, less AUC
    plain = g.roc_theory(8, 4, 16, 2, 1.0, 1.0, "strong", 0.05)
    for k in plain:
        np.testing.assert_array_equal(th[k][0], plain[k])
    for i, s in enumerate(sig[1:], start=1):
        rel = g.DPRelease(release_noise_std=float(s))
        np.testing.assert_allclose(th["exact_auc"][i], g.release_auc(SMALL, rel, "strong"))
        np.testing.assert_allclose(
            th["exact_tpr"][i], g.release_roc(SMALL, rel, "strong", 0.05), rtol=1e-9
        )
        np.testing.assert_allclose(
            th["theory_var_out"][i], g.release_moments(SMALL, rel)["out"].var
        )


FPRS = (0.01, 0.05, 0.1, 0.3, 0.5)


def _roc_points_vs_gdp(s_in, s_out, mu, alpha=0.01):
    """(TPR lower, GDP curve at FPR upper) at thresholds = OUT quantiles; Clopper-Pearson,
    Bonferroni over the 2 x len(FPRS) bounds, so all hold jointly w.p. >= 1 - alpha."""
    n, a = s_in.size, alpha / (2 * len(FPRS))
    rows = []
    for f in FPRS:
        t = np.quantile(s_out, 1 - f)
        fp, tp = int(np.sum(s_out > t)), int(np.sum(s_in > t))
        fpr_hi = clopper_pearson_upper(fp, n, a)
        tpr_lo = 1.0 - clopper_pearson_upper(n - tp, n, a)
        rows.append((tpr_lo, float(audit.gdp_tradeoff(fpr_hi, mu))))
    return rows


def test_clipped_release_lies_under_the_gdp_curve_and_unclipped_beats_it():
    """Also streamed over blocks of 3 tasks (``gaussian.streamed``, T = 4: two blocks, one
    padded): under the curve too, and its per-game mean strong score equals the one-shot
    release's within SE (two-sample z; the power check below rejects a missing clip)."""
    rel = g.DPRelease(clip=CLIP, noise_multiplier=Z)
    assert rel.mu == 1.0
    one_shot = g.simulate_release(jax.random.key(5), DP_CFG, rel, games=4096, sampler="faithful")
    streamed = g.simulate_release(
        jax.random.key(6), DP_CFG, rel, games=4096, sampler="faithful", task_block=3
    )
    per_game = [np.asarray(s.strong_in, np.float64).mean(1) for s in (one_shot, streamed)]
    se = np.sqrt(sum(x.var(ddof=1) / x.size for x in per_game))
    assert abs(per_game[0].mean() - per_game[1].mean()) < 4.5 * se
    for sc in (_col0(one_shot), _col0(streamed)):
        for s_in in sc[:2]:  # strong and weak
            for tpr_lo, bound in _roc_points_vs_gdp(s_in, sc[2], rel.mu):
                assert tpr_lo <= bound
    sc = _col0(one_shot)
    # The audit never claims more than the release's mu or epsilon.
    r = audit.audit(sc[0], sc[2], delta=1e-5)
    assert r.mu_lb <= rel.mu and r.epsilon_lb <= rel.epsilon(1e-5)
    # Power: the same noise on mu_hat (z C / T per coordinate) without clipping beats the curve.
    plain = g.DPRelease(release_noise_std=Z * CLIP / DP_CFG.tasks)
    unclipped = g.simulate_release(jax.random.key(5), DP_CFG, plain, games=4096)
    sc = _col0(unclipped)
    for s_in in sc[:2]:
        assert any(lo > b for lo, b in _roc_points_vs_gdp(s_in, sc[2], rel.mu))
    x = np.asarray(unclipped.strong_in, np.float64).mean(1)
    se = np.sqrt(x.var(ddof=1) / x.size + per_game[1].var(ddof=1) / x.size)
    assert abs(x.mean() - per_game[1].mean()) > 4.5 * se  # the streamed release clips


def test_release_validation_and_guarantees():
    with pytest.raises(ValueError, match="clip"):
        g.DPRelease(clip=0.0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        g.DPRelease(clip=1.0, noise_multiplier=-1.0)
    with pytest.raises(ValueError, match="noise_multiplier needs clip"):
        g.DPRelease(noise_multiplier=1.0)
    with pytest.raises(ValueError, match="release_noise_std"):
        g.DPRelease(release_noise_std=-0.1)
    with pytest.raises(ValueError, match="faithful"):
        g.simulate_release(jax.random.key(0), SMALL, g.DPRelease(clip=1.0), games=4)
    with pytest.raises(ValueError, match="unclipped"):
        g.release_auc(SMALL, g.DPRelease(clip=1.0), "strong")
    with pytest.raises(ValueError, match="release_noise_std"):
        g.roc_theory(8, 4, 16, 2, 1.0, 1.0, "strong", 0.05, release_noise_std=-1.0)
    rel = g.DPRelease(clip=2.0, noise_multiplier=4.0, release_noise_std=0.1)
    assert rel.mu == 0.5 and rel.sum_noise_std() == 8.0
    np.testing.assert_allclose(rel.noise_std(4), np.hypot(2.0, 0.1))
    np.testing.assert_allclose(rel.epsilon(1e-5), audit.gdp_epsilon(0.5, 1e-5))
    assert g.DPRelease(release_noise_std=1.0).mu == np.inf
    assert g.DPRelease().is_plain and not rel.is_plain
    # The clipped faithful sampler draws the clipped sum: with C tiny and
    # z = 0 the release is ~0 and every score is ~0 (4096 games: the compile of the moments test).
    sc = g.simulate_release(
        jax.random.key(1), SMALL, g.DPRelease(clip=1e-6), games=4096, sampler="faithful"
    )
    assert float(np.max(np.abs(np.asarray(sc.out)))) < 1e-3


def test_release_parameters_are_traced_no_recompile():
    from mtl_tracing.gaussian import release as rel_mod

    for z in (1.0, 3.0):  # a new clip or z reuses the compiled program
        g.simulate_release(
            jax.random.key(0),
            SMALL,
            g.DPRelease(clip=1e-6 * z, noise_multiplier=z),
            games=4096,
            sampler="faithful",
        )
    runner = rel_mod._runner("faithful", SMALL.shape, np.dtype("float32"), 16)
    assert runner._cache_size() == 1


def test_float64_is_preserved(x64):
    import jax.numpy as jnp

    sc = g.simulate_release(
        jax.random.key(0), SMALL, g.DPRelease(release_noise_std=0.5), games=64, dtype=jnp.float64
    )
    assert all(s.dtype == jnp.float64 for s in sc)
    a, b = audit.canary_scores(
        jax.random.key(0), clip=1.0, noise_multiplier=1.0, trials=8, dtype=jnp.float64
    )
    assert a.dtype == b.dtype == jnp.float64


def test_release_kernel_for_sweeps_traces_every_parameter():
    kern = g.release_kernel("faithful", SMALL.shape)
    calls = []

    @jax.jit
    def run(key, *params):
        calls.append(1)  # counts traces
        return jax.vmap(kern, in_axes=(0,) + (None,) * 6)(jax.random.split(key, 8), *params)

    for clip, zc, sig in ((np.inf, 0.0, 0.5), (1.0, 2.0, 0.0)):
        out = run(jax.random.key(0), 1.0, 1.0, 0.0, clip, zc, sig)
        assert out[0].shape == (8, SMALL.tasks)
    assert len(calls) == 1
