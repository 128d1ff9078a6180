"""The faithful game streamed over blocks of tasks (``gaussian.streamed``): law, planning,
refusal. (The streamed DP release is tested in ``test_release.py``, beside the one-shot one.)

Forced tiny blocks on CPU: T = 4 tasks in blocks of 3 (two blocks, the last one padded), so a
task of block 0 and a task of block 1 must share mu_hat, and the padding must not count.
Statistical checks: |z| <= 4.5 standard errors (~6.8e-6 false failures per comparison), each
with a power check on the neighbouring wrong formula at the same sample size.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from _stats import assert_rejects, assert_within_se

from mtl_tracing import gaussian
from mtl_tracing.gaussian import game, streamed
from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig
from mtl_tracing.metrics import group_moments

SMALL = GaussianGameConfig(tasks=4, samples=4, dim=8, challenge=2, task_std=0.5, sample_std=2.0)
BLOCK = 3  # two blocks of 3 tasks for T = 4: the second holds 1 task and 2 padding rows
G = 4000


@pytest.fixture(scope="module")
def streamed_run():
    cfg = SMALL.replace(mean=1.5)  # mu_bar != 0 must cancel
    kw = dict(sampler="faithful", task_block=BLOCK, norms=True)
    return game.simulate(jax.random.key(5), cfg, games=G, **kw)


@pytest.fixture(scope="module")
def streamed_scores(streamed_run):
    return [np.asarray(a, np.float64) for a in streamed_run[0]]


def test_streamed_norms_give_the_optimal_statistic_its_law(streamed_run):
    """With ``norms``: ||alpha||^2 and ||beta||^2 of the streamed game make Lambda, whose IN and
    OUT means and variances match the exact law (gaussian.optimal); power: z's variance."""
    scores, norms = streamed_run
    a2 = np.asarray(norms.alpha_sq, np.float64)[:, None]
    abc = gaussian.lrt_second_order(SMALL, "strong")
    exact = gaussian.lrt_moments(SMALL, "strong")
    for h, z, sq in (("in", scores.strong_in, norms.strong_sq), ("out", scores.out, norms.out_sq)):
        lam = gaussian.lrt_statistic(
            np.asarray(z, np.float64), a2, np.asarray(sq, np.float64), *abc
        )
        m = group_moments(lam)
        assert_within_se(m.mean, exact[h][0], m.mean_se, what=f"Lambda {h} mean")
        assert_within_se(m.var, exact[h][1], m.var_se, what=f"Lambda {h} var")
    assert_rejects(m.var, gaussian.moments(SMALL)["out"].var, m.var_se, what="z's OUT variance")


def test_streamed_game_matches_the_exact_moments_with_power(streamed_scores):
    """Means and variances of the three scores (E z = d c, Var z = d (AB + c^2), SEs over
    games) at SE tolerance; power: the padding counted as tasks (the moments of T = 6) is
    rejected on the strong mean."""
    exact = gaussian.moments(SMALL)
    for adv, z in zip(("strong", "weak", "out"), streamed_scores, strict=True):
        g = group_moments(z)
        assert_within_se(g.mean, exact[adv].mean, g.mean_se, what=f"{adv} mean")
        assert_within_se(g.var, exact[adv].var, g.var_se, what=f"{adv} var")
    g = group_moments(streamed_scores[0])
    padded = gaussian.moments(SMALL.replace(tasks=2 * BLOCK))["strong"].mean
    assert_rejects(g.mean, padded, g.mean_se, what="padding counted in mu_hat")


def test_tasks_of_different_blocks_share_the_release(streamed_scores):
    """Cov(z_i, z_j) = d c^2 for two tasks of one game (Isserlis: E[alpha^2 b_i b_j] = 2 c^2);
    tasks 0 and 3 lie in different blocks. Power: a block-local release (covariance 0)."""
    m = gaussian.moments(SMALL)["strong"]
    z = streamed_scores[0]
    prod = (z[:, 0] - m.mean) * (z[:, 3] - m.mean)  # one value per independent game
    se = prod.std(ddof=1) / np.sqrt(G)
    target = SMALL.dim * m.c**2
    assert_within_se(prod.mean(), target, se, what="cross-block covariance")
    assert_rejects(prod.mean(), 0.0, se, what="block-local release")


def test_block_plan_fits_the_budget_and_refuses_only_what_no_block_fits():
    budget, cap = 512 * 2**20, 64 * 2**30
    big = GameShape(20000, 8, 20000, 2)  # ~109 GB in one piece (issue 21)
    assert game.bytes_per_game("faithful", big) > cap
    block = streamed.plan_block(big, None, budget, cap)
    assert streamed.block_bytes(big, block, None) <= budget
    assert streamed.block_bytes(big, block + 1, None) > budget  # the largest such block
    assert streamed.plan_block(big, None, budget, 2**40, task_block=10**9) == big.tasks
    with pytest.raises(ValueError, match="blocks of 20000 task"):  # forced, above the cap
        streamed.plan_block(big, None, budget, cap, task_block=big.tasks)
    # Not even one task fits: refused in one line, naming the bytes, before any work.
    huge = GaussianGameConfig(tasks=2, samples=2**20, dim=2**20, challenge=1)
    need = streamed.block_bytes(huge.shape, 1, None)
    with pytest.raises(ValueError, match=f"{need:,} bytes") as err:
        game.simulate(jax.random.key(0), huge, games=2, sampler="faithful")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="task_block"):
        game.simulate(jax.random.key(0), SMALL, games=2, task_block=2)
    with pytest.raises(ValueError, match="task_block"):
        game.simulate(jax.random.key(0), SMALL, games=2, sampler="faithful", task_block=0)
