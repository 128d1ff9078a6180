"""Task-level DP flags shared by ``game`` (``--clip``, ``--noise-multiplier``) and ``attack``
(``--audit``); a private helper module (not a command). No JAX at import time."""

from __future__ import annotations

import argparse
import math

__all__ = [
    "add_game_dp_arguments",
    "release_from_args",
    "game_dp_blocks",
    "dp_theory",
    "dp_simulate",
    "dp_update_payload",
    "attack_audit",
]


def add_game_dp_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("DP release (mtl_tracing.gaussian.release)")
    g.add_argument("--clip", type=float, default=None, help="C > 0: clip each task's mean")
    g.add_argument("--noise-multiplier", type=float, default=0.0, help="z >= 0: noise z C")
    g.add_argument("--release-noise-std", type=float, default=0.0, help="sigma on mu_hat")
    g.add_argument("--delta", type=float, default=1e-5, help="delta of epsilon (default 1e-5)")
    g.add_argument("--level", type=float, default=0.95, help="audit confidence (default 0.95)")


def release_from_args(args: argparse.Namespace):
    """A validated ``DPRelease``, or None when no DP flag was given (today's game)."""
    from mtl_tracing._validate import check_probability
    from mtl_tracing.gaussian.release import DPRelease

    check_probability("--delta", args.delta)
    check_probability("--level", args.level)
    release = DPRelease(args.clip, args.noise_multiplier, args.release_noise_std)
    return None if release.is_plain else release


def _f(x: float):
    return None if math.isinf(x) else x


def game_dp_blocks(config, release, scores, delta: float, level: float) -> dict:
    """``{"dp": ..., "audit": ...}`` for the game's JSON: the release's mu and epsilon at
    delta, and the audit of one (strong IN, OUT) score pair per game (task 0)."""
    import numpy as np

    from mtl_tracing import audit

    s_in, s_out = audit.game_trials(np.asarray(scores.strong_in), np.asarray(scores.out))
    r = audit.audit(s_in, s_out, delta=delta, level=level)
    dp = {**release.to_dict(), "mu": _f(release.mu), "epsilon": _f(release.epsilon(delta))}
    dp["delta"] = delta
    return {"dp": dp, "audit": {**r.to_dict(), "adversary": "strong", "task": 0}}


def _exact_auc(config, adversary: str) -> float:
    """The exact marginal AUC by ``roc_theory`` (fixed nodes, ~1e-13 from ``law.exact_auc``;
    it needs no SciPy integrate/optimize import, which a small run would pay for)."""
    from mtl_tracing.gaussian.batched import roc_theory

    c = config
    cell = (c.tasks, c.samples, c.dim, c.challenge, c.task_std, c.sample_std)
    return float(roc_theory(*cell, adversary=adversary, fpr=0.5)["exact_auc"])


def dp_theory(config, release):
    """(moments, exact AUC function) under ``release`` (None: the plain game); NaN when the
    release is clipped (no closed form)."""
    # Submodule imports, not ``gaussian.moments``: once ``mtl_tracing.gaussian.moments`` is
    # imported, the package attribute ``moments`` is that submodule, not the function.
    from mtl_tracing.gaussian.moments import moments

    if release is None:
        return moments(config), lambda adv: _exact_auc(config, adv)
    from mtl_tracing.gaussian.release import release_auc, release_moments

    if release.clip is not None:
        nan = float("nan")
        plain = moments(config)
        moms = {
            a: m._replace(A=nan, mean=nan, var=nan) for a, m in plain.items()
        }  # paper fields kept for reference
        return moms, lambda adv: nan
    return release_moments(config, release), lambda adv: release_auc(config, release, adv)


def attack_audit(scores, delta: float = 1e-5, level: float = 0.95) -> dict:
    """One-run audit (Steinke et al. 2023) of one model from per-task mean scores: guess IN for
    the top quarter and OUT for the bottom quarter of the tasks. Caveat: the IN tasks of an
    embeddings file are fixed, not independent fair coins, so this illustrates the bound rather
    than certifying it."""
    import numpy as np

    from mtl_tracing import audit

    out = {}
    for name in ("variance", "inner_product"):
        g = getattr(scores, name)
        s_in = np.asarray(g.scores_in, np.float64).reshape(np.shape(g.scores_in)[0], -1)
        s_out = np.asarray(g.scores_out, np.float64).reshape(np.shape(g.scores_out)[0], -1)
        s = np.r_[s_in.mean(1), s_out.mean(1)]
        inc = np.r_[np.ones(s_in.shape[0], bool), np.zeros(s_out.shape[0], bool)]
        k = max(1, min(s_in.shape[0], s_out.shape[0]) // 4)
        r = audit.one_run_audit(s, inc, guesses_in=k, guesses_out=k, delta=delta, level=level)
        out[name] = {**r._asdict(), "method": "one_run (Steinke, Nasr, Jagielski 2023)"}
    return out


def dp_simulate(args: argparse.Namespace, config, release, norms: bool = False):
    """The game's scores under ``release`` (``gaussian.simulate_release``; with ``norms``,
    (scores, norms))."""
    import jax
    import jax.numpy as jnp

    from mtl_tracing.gaussian.release import simulate_release

    dtype = jnp.float64 if args.x64 else jnp.float32
    return simulate_release(
        jax.random.key(args.seed),
        config,
        release,
        games=args.games,
        sampler=args.sampler,
        dtype=dtype,
        norms=norms,
    )


def dp_update_payload(payload: dict, args, config, release, scores, exact_auc) -> None:
    """Add ``dp`` and ``audit`` to the game's JSON and set the exact AUCs of the release (null
    when clipped: no closed form)."""
    for adv, block in payload["auc"].items():
        block["exact"] = exact_auc(adv)
    payload.update(game_dp_blocks(config, release, scores, args.delta, args.level))
