"""The ``game`` command's computation: one Gaussian tracing game against its exact theory.

:func:`run_game` simulates G games (:func:`~mtl_tracing.gaussian.simulate`, or
:func:`~mtl_tracing.gaussian.simulate_release` under a DP release) and returns the results as
a JSON-ready dict: for each adversary (``strong``, ``weak``, ``out``) the empirical mean and
variance of z with standard errors over games (:func:`metrics.group_moments`: scores within a
game are correlated through mu_hat) beside the exact theory and the paper's formulas
(:func:`~mtl_tracing.gaussian.game_theory`: plain, released or clipped; ``None`` where there
is no closed form); the AUC of the strong and weak adversaries against OUT, pooled over games,
with a bootstrap CI that resamples games, and the exact marginal AUC; the optimal
(likelihood-ratio) statistic Lambda (``lrt``, from the sampler's ``norms``; skipped above
2^28 extra draws of the sufficient sampler); under a release, its mu and epsilon and the audit
of one (strong IN, OUT) pair per game. :func:`render` is the command's printout.
"""

from __future__ import annotations

import numpy as np

from mtl_tracing._validate import check_int, check_probability
from mtl_tracing.threat import ADVERSARIES, IN_ADVERSARIES

__all__ = ["LRT_ROWS", "run_game", "render"]

#: Above this many extra draws G T (d - 1), the sufficient sampler skips Lambda's norms.
LRT_ROWS = 1 << 28
_LRT_FORMULA = "Lambda = z - (c/2A) ||alpha||^2 - (c/2B) ||beta||^2"


def _auc_block(key, pairs, exact_auc, resamples: int, offset: int = 0) -> dict:
    """``{adversary: {"exact", "empirical", "ci"}}``; ``pairs`` = the (IN, OUT) scores of
    strong and of weak, (G, T) each; the bootstrap resamples games."""
    import jax

    from mtl_tracing import metrics

    block = {}
    for i, (adv, (s_in, s_out)) in enumerate(zip(IN_ADVERSARIES, pairs, strict=True)):
        ci = metrics.grouped_bootstrap(
            jax.random.fold_in(key, 1_000_003 + offset + i),
            metrics.auc,
            s_in,
            s_out,
            num_resamples=resamples,
            paired=True,
        )
        block[adv] = {
            "exact": exact_auc(adv),
            "empirical": float(ci.estimate),
            "ci": [float(ci.low), float(ci.high)],
        }
    return block


def _lrt_block(key, config, release, scores, norms, resamples: int) -> dict:
    """Lambda per IN adversary: AUC (empirical with a game-bootstrap CI, exact) and IN/OUT
    moments against the exact ones (``None`` under a clipped release, which has no closed
    form; Lambda then uses A + sigma_tot^2 and is not optimal)."""
    from mtl_tracing import gaussian
    from mtl_tracing.metrics import group_moments

    clipped = release is not None and release.clip is not None
    a2 = np.asarray(norms.alpha_sq, np.float64)[:, None]
    out_z, out_sq = np.asarray(scores.out, np.float64), np.asarray(norms.out_sq, np.float64)
    pairs, theory = [], {}
    for i, adv in enumerate(IN_ADVERSARIES):
        abc = gaussian.lrt_second_order(config, adv, release)
        z_in, sq_in = np.asarray(scores[i], np.float64), np.asarray(norms[1 + i], np.float64)
        lam_in = gaussian.lrt_statistic(z_in, a2, sq_in, *abc)
        pairs.append((lam_in, gaussian.lrt_statistic(out_z, a2, out_sq, *abc)))
        theory[adv] = None if clipped else gaussian.lrt_moments(config, adv, release)

    def exact_auc(adv):
        return None if clipped else gaussian.lrt_auc(config, adv, release)

    block = {"statistic": _LRT_FORMULA}
    for adv, entry in _auc_block(key, pairs, exact_auc, resamples, offset=2).items():
        block[adv] = {"auc": entry}
        for h, lam in zip(("in", "out"), pairs[IN_ADVERSARIES.index(adv)], strict=True):
            mean, var = (None, None) if theory[adv] is None else theory[adv][h]
            block[adv][h] = {**group_moments(lam)._asdict(), "theory_mean": mean, "theory_var": var}
    return block


def _lrt_skipped(lrt: bool, sampler: str, config, games: int) -> str | None:
    """None when Lambda is computed, else why it is skipped."""
    if not lrt:
        return "--no-lrt"
    rows = games * config.tasks * (config.dim - 1)
    if sampler == "sufficient" and rows > LRT_ROWS:
        return f"G T (d - 1) = {rows:,} > 2^28 extra draws for the sufficient sampler"
    return None


def _dp_blocks(release, scores, delta: float, level: float) -> dict:
    """``{"dp": ..., "audit": ...}``: the release's mu and epsilon at delta (``None``: no
    guarantee), and the audit of one (strong IN, OUT) score pair per game (task 0)."""
    import math

    from mtl_tracing import audit

    s_in, s_out = audit.game_trials(np.asarray(scores.strong_in), np.asarray(scores.out))
    r = audit.audit(s_in, s_out, delta=delta, level=level)
    eps = release.epsilon(delta)
    dp = {**release.to_dict(), "mu": None if math.isinf(release.mu) else release.mu}
    dp.update(epsilon=None if math.isinf(eps) else eps, delta=delta)
    return {"dp": dp, "audit": {**r.to_dict(), "adversary": "strong", "task": 0}}


def run_game(
    config,
    *,
    games: int,
    seed: int = 0,
    sampler: str = "sufficient",
    release=None,
    resamples: int = 200,
    chunk_games: int | None = None,
    dtype=None,
    lrt: bool = True,
    delta: float = 1e-5,
    level: float = 0.95,
) -> dict:
    """Simulate ``games`` games of ``config`` (a ``GaussianGameConfig``) under ``release`` (a
    ``DPRelease``; None or ``DPRelease()``: the plain game) and compare with the theory.

    Keys: the games use ``key(seed)`` (game g ``fold_in(key(seed), g)``), the AUC bootstraps
    ``fold_in(key(seed), 1_000_003 + i)``. Everything is checked before any simulation.
    Returns the JSON-ready payload (module docstring; ``results.write_json`` writes it).
    """
    import jax

    from mtl_tracing import gaussian, results
    from mtl_tracing.metrics import group_moments

    config = gaussian.check_config(config)
    games = check_int("games", games, low=2)
    seed = check_int("seed", seed, low=0)
    resamples = check_int("resamples", resamples, low=1)
    delta, level = check_probability("delta", delta), check_probability("level", level)
    if release is not None and gaussian.check_release(release).is_plain:
        release = None
    skipped = _lrt_skipped(lrt, sampler, config, games)
    key = jax.random.key(seed)
    kw = dict(games=games, sampler=sampler, dtype=dtype, norms=skipped is None)
    if release is None:
        scores = gaussian.simulate(key, config, chunk_games=chunk_games, progress=False, **kw)
    else:
        scores = gaussian.simulate_release(key, config, release, **kw)
    scores, norms = (scores, None) if skipped is not None else scores
    theory = gaussian.game_theory(config, release)
    payload = results.run_metadata(config=config, seed=seed, sampler=sampler)
    for adv, z in zip(ADVERSARIES, scores, strict=True):
        t = theory[adv]
        payload[adv] = {
            **group_moments(z)._asdict(),
            "theory_mean": t.mean,
            "theory_var": t.var,
            "paper_mean": t.paper_mean,
            "paper_var": t.paper_var,
        }
    pairs = ((scores.strong_in, scores.out), (scores.weak_in, scores.out))
    payload["auc"] = _auc_block(key, pairs, lambda adv: theory[adv].auc, resamples)
    if release is not None:
        payload.update(_dp_blocks(release, scores, delta, level))
    if norms is None:
        payload["lrt"] = {"skipped": skipped}
    else:
        payload["lrt"] = _lrt_block(key, config, release, scores, norms, resamples)
    return payload


def _num(x, fmt: str = ".4f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


def render(payload: dict, games: int) -> str:
    """The command's printout of a :func:`run_game` payload."""
    c = payload["config"]
    lines = [
        f"game  T={c['tasks']} N={c['samples']} d={c['dim']} k={c['challenge']} "
        f"sbar={c['task_std']:g} s={c['sample_std']:g} G={games} ({payload['sampler']})"
    ]
    head = f"{'adversary':<9} {'mean':>11} {'+-se':>9} {'theory':>11} {'paper':>11} | "
    lines.append(head + f"{'var':>11} {'+-se':>9} {'theory':>11} {'paper':>11}")
    for adv in ADVERSARIES:
        r = payload[adv]
        lines.append(
            f"{adv:<9} {r['mean']:>11.4g} {r['mean_se']:>9.2g} {_num(r['theory_mean'], '.4g'):>11} "
            f"{r['paper_mean']:>11.4g} | {r['var']:>11.4g} {r['var_se']:>9.2g} "
            f"{_num(r['theory_var'], '.4g'):>11} {r['paper_var']:>11.4g}"
        )
    for adv, r in payload["auc"].items():
        ci = f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]"
        lines.append(f"AUC {adv:<6} empirical {r['empirical']:.4f} {ci}  exact {_num(r['exact'])}")
    for adv in IN_ADVERSARIES:
        if adv in payload["lrt"]:
            r = payload["lrt"][adv]["auc"]
            ci = f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]"
            lines.append(
                f"AUC {adv:<6} optimal Lambda {r['empirical']:.4f} {ci}  exact {_num(r['exact'])}"
            )
    if "skipped" in payload["lrt"]:
        lines.append(f"optimal Lambda skipped: {payload['lrt']['skipped']}")
    if "dp" in payload:
        dp, au = payload["dp"], payload["audit"]
        mu = "inf" if dp["mu"] is None else dp["mu"]
        eps = "inf" if dp["epsilon"] is None else dp["epsilon"]
        lines.append(f"DP mu {mu} epsilon {eps}; audit mu_lb {au['mu_lb']:.4f}")
    return "\n".join(lines)
