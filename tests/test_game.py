"""Tests of the game samplers: shapes, dtypes, validation, chunking, compiles, and the law.

Statistical tests are seeded; each states its failure probability and shows power on a
deliberately wrong variant at the same sample size.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_within_se
from scipy import stats

from mtl_tracing import cli, flat_random
from mtl_tracing.gaussian import game
from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig

# A small fixed set of shapes (limits compiles).
SMALL = GaussianGameConfig(tasks=4, samples=4, dim=8, challenge=2, task_std=0.5, sample_std=2.0)
ALPHA = 1e-3  # per-test failure probability of a KS / Fisher-z acceptance under the null


@pytest.mark.parametrize("sampler", game.SAMPLERS)
def test_shapes_and_float32_default(sampler):
    cfg = SMALL.replace(mean=1.5)
    res = game.simulate(jax.random.key(0), cfg, games=5, sampler=sampler)
    assert isinstance(res, game.GameScores)
    for arr in res:
        assert arr.shape == (5, 4) and arr.dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(arr)))
    if sampler == "faithful":
        return  # the kernel contract is checked once, on the cheap sampler (compile time)
    f = game.game_kernel(sampler, cfg.shape, jnp.float32)
    out = jax.jit(f)(jax.random.key(1), jnp.float32(1.0), jnp.float32(1.0), jnp.zeros(8))
    assert [o.shape for o in out] == [(4,)] * 3


@pytest.mark.parametrize("sampler", game.SAMPLERS)
def test_float64(x64, sampler):
    cfg = SMALL.replace(mean=tuple(np.linspace(-1, 1, 8)))
    res = game.simulate(jax.random.key(0), cfg, games=3, sampler=sampler, dtype=jnp.float64)
    assert all(a.dtype == jnp.float64 and a.shape == (3, 4) for a in res)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padded_sufficient_game_is_the_game_of_every_shape(request, dtype):
    """The sweep's shape-generic sampler: ONE program (T, N, d, k traced, width 8) gives every
    shape's scores, equal to game_kernel's to float rounding (the same draws; alpha_1 and the
    fusion may sum in another order), with zeros past T."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    keys = jax.vmap(lambda g: jax.random.fold_in(jax.random.key(3), g))(jnp.arange(40))
    kernel = jax.jit(
        jax.vmap(
            lambda key, *a: game.padded_sufficient_game(key, *a, width=8, dtype=dt),
            in_axes=(0,) + (None,) * 11,
        )
    )
    sbar, s = np.asarray(0.7, dt), np.asarray(1.3, dt)
    tol = {"float32": 2e-6, "float64": 1e-13}[dtype]
    for shape in [(3, 5, 1, 1), (8, 6, 2, 6)]:  # T < width, k < N, d = 1; T = width, k = N
        shape = GameShape(*shape)
        args = game.padded_game_args(shape, dt)
        got = kernel(keys, sbar, s, *args)
        ref = jax.vmap(game.game_kernel("sufficient", shape, dt), in_axes=(0, None, None, None))(
            keys, sbar, s, np.zeros((), dt)
        )
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == dt and g.shape == (40, 8)
            np.testing.assert_allclose(g[:, : shape.tasks], r, rtol=tol, atol=tol)
            assert not np.any(np.asarray(g[:, shape.tasks :]))
    assert kernel._cache_size() == 1


def test_validation_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="games"):
        game.simulate(key, SMALL, games=0)
    with pytest.raises(ValueError, match="sampler"):
        game.simulate(key, SMALL, games=1, sampler="exact")
    with pytest.raises(ValueError, match="chunk_games"):
        game.simulate(key, SMALL, games=2, chunk_games=0)
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        game.simulate(key, SMALL, games=2, memory_budget_bytes=-1)
    with pytest.raises(ValueError, match="key"):
        game.simulate(jax.random.PRNGKey(0), SMALL, games=1)  # raw uint32 key
    with pytest.raises(ValueError, match="config"):
        game.simulate(key, {"tasks": 4}, games=1)
    with pytest.raises(ValueError, match="dtype"):
        game.simulate(key, SMALL, games=1, dtype=jnp.int32)
    if not jax.config.jax_enable_x64:
        with pytest.raises(ValueError, match="x64"):
            game.simulate(key, SMALL, games=1, dtype=jnp.float64)
    with pytest.raises(ValueError, match="challenge"):
        game.game_kernel("faithful", GameShape(4, 2, 8, 3), None)
    with pytest.raises(ValueError, match="sampler"):
        game.game_kernel("nope", SMALL.shape, None)
    with pytest.raises(ValueError, match="challenge"):
        GaussianGameConfig(samples=8, challenge=9)


@pytest.mark.parametrize("sampler", game.SAMPLERS)
def test_chunk_invariance_bitwise(sampler):
    key = jax.random.key(7)
    width = game.lanes(sampler, SMALL.shape)
    games = 2 * width + 3
    ref = game.simulate(key, SMALL, games=games, sampler=sampler, chunk_games=games)
    for chunk in (1, width):  # the last chunk is padded
        got = game.simulate(key, SMALL, games=games, sampler=sampler, chunk_games=chunk)
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Prefix property: the first games do not depend on how many games are played.
    short = game.simulate(key, SMALL, games=3, sampler=sampler, chunk_games=3)
    np.testing.assert_array_equal(np.asarray(short.out), np.asarray(ref.out[:3]))


def test_no_recompile_on_new_stds_means_seeds():
    cfg = SMALL.replace(mean=0.0)
    game.simulate(jax.random.key(0), cfg, games=40, chunk_games=32)
    chunk = game._chunk_size("sufficient", cfg.shape, jnp.float32, 40, 32, 1)
    runner = game._chunk_runner("sufficient", cfg.shape, jnp.dtype(jnp.float32), chunk)
    assert runner._cache_size() == 1
    cfg2 = cfg.replace(task_std=2.5, sample_std=0.3, mean=-4.0)
    game.simulate(jax.random.key(99), cfg2, games=50, chunk_games=32)
    assert runner._cache_size() == 1


def test_memory_budget_chunking():
    """A config bigger than one chunk: runs in padded chunks, same numbers as one chunk."""
    cfg = SMALL  # reuses the chunk sizes compiled by the chunk-invariance test
    per_game = game.bytes_per_game("faithful", cfg.shape)
    width = game.lanes("faithful", cfg.shape)
    key = jax.random.key(3)
    games = 2 * width + 3
    budget = width * per_game  # one group of lanes per chunk -> 3 chunks, the last padded
    assert game._chunk_size("faithful", cfg.shape, None, games, None, budget) == width
    small = game.simulate(key, cfg, games=games, sampler="faithful", memory_budget_bytes=budget)
    tiny = game.simulate(key, cfg, games=games, sampler="faithful", memory_budget_bytes=1)
    ref = game.simulate(key, cfg, games=games, sampler="faithful", chunk_games=3 * width)
    for a, b, c in zip(small, tiny, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
        np.testing.assert_array_equal(np.asarray(b), np.asarray(c))
    # A faithful game over the lane threshold is vectorised alone (chunks of single games).
    assert game.lanes("faithful", GameShape(64, 64, 2048, 8)) == 1
    assert game.lanes("faithful", cfg.shape) == 8


def test_progress_bar_runs(capsys):
    res = game.simulate(jax.random.key(0), SMALL, games=5, chunk_games=2, progress=True)
    assert res.out.shape == (5, 4)


def test_strong_batch_without_replacement_k_equals_n():
    """With k = N the strong batch is the task's whole sample: its score is that of m_i."""
    cfg = GaussianGameConfig(tasks=3, samples=5, dim=6, challenge=5, task_std=1.3, mean=2.0)
    key = jax.random.key(11)
    res = game.simulate(key, cfg, games=2, sampler="faithful", dtype=None)
    # Recompute game 0 by hand with the same draws as the kernel.
    k_mu, k_x, *_ = jax.random.split(jax.random.fold_in(key, jnp.uint32(0)), 6)
    mu = 2.0 + 1.3 * flat_random.normal(k_mu, (3, 6), jnp.float32)
    x = mu[:, None, :] + 1.0 * flat_random.normal(k_x, (3, 5, 6), jnp.float32)
    m = np.asarray(x, np.float64).mean(axis=1)  # own full sample means m_i, (T, d)
    alpha = m.mean(axis=0) - 2.0
    expected = (m - 2.0) @ alpha
    # Drawing with replacement would almost surely repeat a sample and miss this equality.
    np.testing.assert_allclose(np.asarray(res.strong_in[0]), expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Faithful vs sufficient: two-sample tests with power.
# --------------------------------------------------------------------------------------------


def _wrong_sufficient(key, cfg: GaussianGameConfig, games: int, *, variant: str):
    """Deliberately wrong sufficient-statistics samplers (for power), (games, T) x 3.

    ``weak_cov``: strong covariance replaced by the weak one (c_strong = sbar^2/T).
    ``no_shared_alpha``: each score gets its own ||alpha||^2 (correlation through mu_hat dropped).
    """
    T, N, d, k = cfg.shape
    sb, s = cfg.task_std, cfg.sample_std

    def one(key):
        k_mu, k_b, k_r, k_w, k_v, k_chi = jax.random.split(key, 6)
        mu = sb * jax.random.normal(k_mu, (T,))
        b = mu + s / math.sqrt(k) * jax.random.normal(k_b, (T,))
        r = mu + s / math.sqrt(max(N - k, 1)) * jax.random.normal(k_r, (T,))
        m = (k * b + (N - k) * r) / N
        w = mu + s / math.sqrt(k) * jax.random.normal(k_w, (T,))
        v = math.sqrt(sb**2 + s**2 / k) * jax.random.normal(k_v, (T,))
        A = (sb**2 + s**2 / N) / T
        cw = sb**2 / T
        cs = cw if variant == "weak_cov" else A
        a1 = jnp.mean(m)
        n_chi = 3 * T if variant == "no_shared_alpha" else 1
        r2 = A * 2.0 * jax.random.gamma(k_chi, d / 2.0, (n_chi,))
        r2 = jnp.broadcast_to(r2, (3 * T,)).reshape(3, T)
        eps = jnp.stack([b - (cs / A) * a1, w - (cw / A) * a1, v])
        coef = jnp.array([cs / A, cw / A, 0.0])[:, None]
        z = coef * r2 + jnp.sqrt(r2) * eps
        return z[0], z[1], z[2]

    keys = jax.random.split(key, games)
    return jax.jit(jax.vmap(one))(keys)


def _fisher_z_diff(x1, y1, x2, y2):
    """|atanh r1 - atanh r2| / se for two independent samples of pairs."""
    r1 = np.corrcoef(x1, y1)[0, 1]
    r2 = np.corrcoef(x2, y2)[0, 1]
    se = math.sqrt(1.0 / (len(x1) - 3) + 1.0 / (len(x2) - 3))
    return abs(math.atanh(r1) - math.atanh(r2)) / se


def test_faithful_matches_sufficient_with_power():
    """Marginals (KS) and within-game correlations (Fisher z) agree; wrong variants fail.

    One score per game for the marginals (games are independent). Acceptance fails with
    probability <= 1e-3 per KS test and ~7e-6 per |Fisher z| <= 4.5 check.
    """
    cfg = SMALL.replace(mean=3.0)  # mu_bar != 0: the sufficient sampler must not care
    G = 6000
    fa = [
        np.asarray(a, np.float64)
        for a in game.simulate(jax.random.key(1), cfg, games=G, sampler="faithful", chunk_games=24)
    ]
    su = [np.asarray(a, np.float64) for a in game.simulate(jax.random.key(2), cfg, games=G)]
    wrong_cov = [
        np.asarray(a) for a in _wrong_sufficient(jax.random.key(3), cfg, G, variant="weak_cov")
    ]
    wrong_alpha = [
        np.asarray(a)
        for a in _wrong_sufficient(jax.random.key(4), cfg, G, variant="no_shared_alpha")
    ]
    for i in range(3):  # strong, weak, out marginals
        assert stats.ks_2samp(fa[i][:, 0], su[i][:, 0]).pvalue > ALPHA
        # Anderson-Darling (scipy floors/caps its p-value to [0.001, 0.25]).
        ad = stats.anderson_ksamp([fa[i][:, 1], su[i][:, 1]], variant="midrank")
        assert ad.pvalue > ALPHA
    # Power: strong covariance replaced by the weak one is rejected on the strong marginal.
    assert stats.ks_2samp(fa[0][:, 0], wrong_cov[0][:, 0]).pvalue < ALPHA

    strong, out = 0, 2
    pairs = {
        "IN_IN": lambda z: (z[strong][:, 0], z[strong][:, 1]),
        "IN_OUT2": lambda z: (z[strong][:, 0], z[out][:, 0] ** 2),
        "OUT2_OUT2": lambda z: (z[out][:, 0] ** 2, z[out][:, 1] ** 2),
    }
    for name, pick in pairs.items():
        stat = _fisher_z_diff(*pick(fa), *pick(su))
        assert stat <= 4.5, (name, stat)
    # Power: dropping the shared ||alpha|| (correlation through mu_hat) is rejected.
    assert _fisher_z_diff(*pairs["IN_IN"](fa), *pairs["IN_IN"](wrong_alpha)) > 4.5
    assert _fisher_z_diff(*pairs["OUT2_OUT2"](fa), *pairs["OUT2_OUT2"](wrong_alpha)) > 4.5


# --------------------------------------------------------------------------------------------
# The `game` CLI command.
# --------------------------------------------------------------------------------------------

_CLI = [
    "game", "--tasks", "4", "--samples", "4", "--dim", "8", "--challenge", "2",
    "--task-std", "0.5", "--sample-std", "2", "--mean", "1", "--games", "64", "--seed", "3",
]  # fmt: skip


def test_cli_game_json_and_reproducible(tmp_path, capsys):
    p1, p2 = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main([*_CLI, "--chunk-games", "64", "--json", str(p1)]) == 0
    assert cli.main([*_CLI, "--chunk-games", "10", "--json", str(p2)]) == 0
    printed = capsys.readouterr().out
    assert "strong" in printed and "theory" in printed
    a, b = json.loads(p1.read_text()), json.loads(p2.read_text())
    for key in ("config", "seed", "sampler", "versions", "strong", "weak", "out", "auc"):
        assert key in a, key
    fields = (
        "mean",
        "mean_se",
        "var",
        "var_se",
        "theory_mean",
        "theory_var",
        "paper_mean",
        "paper_var",
    )
    for adv in ("strong", "weak", "out"):
        assert set(fields) <= set(a[adv])
        for f in fields:
            assert a[adv][f] == b[adv][f], (adv, f)  # bitwise reproducible across chunkings
    assert a["seed"] == 3 and a["sampler"] == "sufficient"
    assert a["config"]["tasks"] == 4
    for adv in ("strong", "weak"):
        assert set(a["auc"][adv]) >= {"empirical", "ci", "exact"}
        assert 0.5 < a["auc"][adv]["exact"] < 1.0
        assert a["auc"][adv]["empirical"] == b["auc"][adv]["empirical"]
        lo, hi = a["auc"][adv]["ci"]
        assert lo <= a["auc"][adv]["empirical"] <= hi
        # The optimal statistic Lambda beside z (gaussian.optimal): AUC and moments.
        opt = a["lrt"][adv]
        assert opt["auc"]["exact"] >= a["auc"][adv]["exact"]
        assert opt["auc"]["empirical"] == b["lrt"][adv]["auc"]["empirical"]
        assert set(opt["in"]) >= {"mean", "mean_se", "var", "var_se", "theory_mean"}
    assert "optimal Lambda" in printed


def test_cli_game_bad_argument_exits_2(tmp_path, capsys):
    argv = [*_CLI, "--json", str(tmp_path / "x.json")]
    argv[argv.index("--challenge") + 1] = "9"
    argv[argv.index("--samples") + 1] = "8"
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "challenge" in err


# --------------------------------------------------------------------------------------------
# The membership-inference limit sbar = 0, s = 0, and the degenerate sbar = s = 0.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", game.SAMPLERS)
def test_membership_limit_task_std_zero(sampler):
    """sbar = 0: moments and AUCs match the exact theory; the weak adversary is at chance.

    Same shape as SMALL (no new compile: the stds are traced). G = 3000 games; the tolerances
    are 4.5 standard errors over games (``metrics.group_moments``). Power: the sbar = 1 formula
    for E z_strong, and AUC 1/2 for the strong adversary, are rejected at the same G.
    """
    from _stats import assert_rejects

    from mtl_tracing import gaussian, metrics

    cfg = SMALL.replace(task_std=0.0)
    z = game.simulate(jax.random.key(21), cfg, games=3000, sampler=sampler, chunk_games=24)
    mom = gaussian.moments(cfg)
    for adv, scores in (("strong", z.strong_in), ("weak", z.weak_in), ("out", z.out)):
        gm = metrics.group_moments(np.asarray(scores))
        assert_within_se(gm.mean, mom[adv].mean, gm.mean_se, what=f"E z_{adv}")
        assert_within_se(gm.var, mom[adv].var, gm.var_se, what=f"Var z_{adv}")
    # E z_strong = d s^2/(N T) at sbar = 0; the sbar = 1 value d (1 + s^2/N)/T is rejected.
    gm = metrics.group_moments(np.asarray(z.strong_in))
    T, N, d, _ = cfg.shape
    assert mom["strong"].mean == pytest.approx(d * cfg.sample_std**2 / (N * T))
    assert_rejects(gm.mean, d * (1.0 + cfg.sample_std**2 / N) / T, gm.mean_se, what="sbar=1")
    # The weak adversary's score has the OUT law exactly: AUC 1/2 in theory and in simulation.
    assert gaussian.exact_auc(cfg, "weak") == 0.5
    assert gaussian.moments(cfg)["weak"].c == 0.0
    one = np.asarray(z.weak_in[:, :1]).ravel(), np.asarray(z.out[:, :1]).ravel()  # 1 per game
    a_weak = float(metrics.auc(*one))
    se = math.sqrt(1.0 / (12 * len(one[0])) * 2)  # Mann-Whitney SE under the null
    assert_within_se(a_weak, 0.5, se, what="weak AUC at sbar = 0")
    a_strong = float(metrics.auc(np.asarray(z.strong_in[:, 0]), np.asarray(z.out[:, 0])))
    assert a_strong == pytest.approx(gaussian.exact_auc(cfg, "strong"), abs=4.5 * se)
    assert a_strong - 0.5 > 4.5 * se  # power: the strong adversary is not at chance


def test_sample_std_zero_and_degenerate_config():
    from mtl_tracing import gaussian

    cfg = SMALL.replace(sample_std=0.0)  # every sample equals its task mean
    m = gaussian.moments(cfg)
    T = cfg.tasks
    assert m["strong"].c == pytest.approx(cfg.task_std**2 / T) == m["weak"].c
    assert m["strong"].rho2 == pytest.approx(1.0 / T)
    z = game.simulate(jax.random.key(0), cfg, games=4)
    np.testing.assert_allclose(np.asarray(z.strong_in), np.asarray(z.weak_in), rtol=1e-5)
    with pytest.raises(ValueError, match="task_std and sample_std must not both be 0"):
        SMALL.replace(task_std=0.0, sample_std=0.0)
    with pytest.raises(ValueError, match="both be 0"):
        gaussian.score_moments(4, 4, 8, 2, 0.0, 0.0, "strong")
    with pytest.raises(ValueError, match="task_std"):
        SMALL.replace(task_std=-1.0)
