"""Monte Carlo checks of Thms 4.1-4.3 (and the exact second-order theory) on the game samplers.

Exact theory per coordinate (DEVELOPERS.md): A = (sbar^2 + s^2/N)/T, B = sbar^2 + s^2/k,
c = A (strong), sbar^2/T (weak), 0 (out); E z = d c, Var z = d (A B + c^2).

Scores within a game are correlated through mu_hat, so means and their SEs are computed over
per-game averages and variances from one score per game. Every acceptance is
|estimate - theory| <= 4.5 se (two-sided normal tail ~7e-6 per check). Power checks assert that
the same data reject a neighbouring wrong formula whenever its predicted separation is >= 9 se
(and deterministic cases below make sure such separations occur).
"""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mtl_tracing.gaussian import game
from mtl_tracing.gaussian.config import GaussianGameConfig

Z = 4.5
GAMES = 20_000
# (T, N, d, k): a small fixed set spanning T in [1, 512], N in [1, 64], k in [1, N], d in [1, 2048].
SHAPES = [
    (1, 1, 1, 1),
    (1, 64, 2048, 64),
    (2, 8, 16, 8),
    (16, 8, 64, 4),
    (512, 1, 1, 1),
    (512, 64, 2048, 1),
]


def exact(cfg: GaussianGameConfig) -> dict:
    """(mean, var) = (d c, d (A B + c^2)) per adversary, computed locally."""
    T, N, d, k = cfg.shape
    sb2, s2 = cfg.task_std**2, cfg.sample_std**2
    A = (sb2 + s2 / N) / T
    B = sb2 + s2 / k
    cs = {"strong": A, "weak": sb2 / T, "out": 0.0}
    return {adv: (d * c, d * (A * B + c * c), A, B, c) for adv, c in cs.items()}


def paper_var(cfg: GaussianGameConfig) -> float:
    """Thm 4.3: d/T [sbar^4 + s^4/(kN) + (k+N)/(kN) sbar^2 s^2]."""
    T, N, d, k = cfg.shape
    sb, s = cfg.task_std, cfg.sample_std
    return d / T * (sb**4 + s**4 / (k * N) + (k + N) / (k * N) * sb**2 * s**2)


def mean_stats(z: np.ndarray) -> tuple[float, float]:
    """Mean of all scores (G, T) and its SE over per-game averages."""
    per_game = z.mean(axis=1)
    return float(per_game.mean()), float(per_game.std(ddof=1) / np.sqrt(len(per_game)))


def var_stats(z: np.ndarray) -> tuple[float, float]:
    """Variance of one score per game and its SE from the sample fourth moment."""
    x = z[:, 0] - z[:, 0].mean()
    v = float(np.mean(x**2))
    m4 = float(np.mean(x**4))
    return v, float(np.sqrt(max(m4 - v * v, 0.0) / len(x)))


def check_theorems(cfg: GaussianGameConfig, scores: game.GameScores) -> dict:
    """Assert Thms 4.1-4.3 and the exact variance; return which power checks were exercised."""
    th = exact(cfg)
    z = {adv: np.asarray(a, np.float64) for adv, a in zip(th, scores, strict=True)}
    powered = {"mean": False, "var": False}

    # Thm 4.3's expression is exactly d A B = Var z_OUT (deterministic identity).
    _, var_out, A, B, _ = th["out"]
    np.testing.assert_allclose(paper_var(cfg), var_out, rtol=1e-12)
    assert th["strong"][1] <= (1 + 1 / cfg.tasks) * var_out * (1 + 1e-12) <= 2 * var_out * 1.000001

    # Means: E z_OUT = 0, E z_strong = d/T (sbar^2 + s^2/N), E z_weak = d/T sbar^2.
    for adv, (mu, *_rest) in th.items():
        m, se = mean_stats(z[adv])
        assert abs(m - mu) <= Z * se, (adv, m, mu, se)
    # Power: the weak data reject the strong formula when the gap is resolvable.
    m_w, se_w = mean_stats(z["weak"])
    gap = th["strong"][0] - th["weak"][0]
    if gap >= 2 * Z * se_w:
        assert abs(m_w - th["strong"][0]) > Z * se_w
        powered["mean"] = True

    # Variances: exact d (A B + c^2) for all three; the paper's bound Var IN <= 3 Var OUT.
    v_out, se_out = var_stats(z["out"])
    for adv, (_mu, var, *_r) in th.items():
        v, se = var_stats(z[adv])
        assert abs(v - var) <= Z * se, (adv, v, var, se)
        if adv != "out":
            assert v <= 3 * v_out + Z * np.hypot(se, 3 * se_out), (adv, v, v_out)
    # Power: the strong IN variance rejects "Var IN = Var OUT" (= d A B) when d c^2 is resolvable.
    v_s, se_s = var_stats(z["strong"])
    if th["strong"][1] - var_out >= 2 * Z * se_s:
        assert abs(v_s - var_out) > Z * se_s
        powered["var"] = True
    return powered


@given(
    shape=st.sampled_from(SHAPES),
    task_std=st.floats(0.1, 5.0),
    sample_std=st.floats(0.1, 5.0),
    mean=st.floats(-10.0, 10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_theorems_sufficient(shape, task_std, sample_std, mean, seed):
    T, N, d, k = shape
    cfg = GaussianGameConfig(T, N, d, k, task_std, sample_std, mean)
    scores = game.simulate(jax.random.key(seed), cfg, games=GAMES)
    check_theorems(cfg, scores)
    try:  # agreement with gaussian.py (written concurrently) where it matches the contract
        from mtl_tracing import gaussian
    except ImportError:  # pragma: no cover
        return
    mom = gaussian.moments(cfg)
    for adv, (mu, var, A, B, c) in exact(cfg).items():
        np.testing.assert_allclose(
            [mom[adv].mean, mom[adv].var, mom[adv].A, mom[adv].B, mom[adv].c],
            [mu, var, A, B, c],
            rtol=1e-10,
            atol=1e-300,
        )
        np.testing.assert_allclose(mom[adv].paper_var, paper_var(cfg), rtol=1e-10)


def test_theorems_power_cases_sufficient():
    """Deterministic cases where both power checks must be exercised (T = 1 and T = 2, k = N)."""
    for shape, seed in (((1, 1, 1, 1), 0), ((2, 8, 16, 8), 1)):
        cfg = GaussianGameConfig(*shape, task_std=0.5, sample_std=2.0, mean=-3.0)
        powered = check_theorems(cfg, game.simulate(jax.random.key(seed), cfg, games=GAMES))
        assert powered == {"mean": True, "var": True}, (shape, powered)


def test_theorems_faithful_small_shapes():
    """The same checks on the faithful sampler (a couple of small shapes, with power)."""
    for shape, seed in (((1, 1, 1, 1), 2), ((2, 8, 16, 8), 3)):
        cfg = GaussianGameConfig(*shape, task_std=0.5, sample_std=2.0, mean=7.0)
        scores = game.simulate(jax.random.key(seed), cfg, games=GAMES, sampler="faithful")
        powered = check_theorems(cfg, scores)
        assert powered == {"mean": True, "var": True}, (shape, powered)
