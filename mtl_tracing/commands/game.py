"""``mtl-tracing game``: simulate the Gaussian tracing game and compare with the theory.

Writes a JSON file with the config, seed, sampler and run metadata; for each adversary
(``strong``, ``weak``, ``out``) the empirical mean and variance of z with standard errors computed
over games (scores within a game are correlated through mu_hat; :func:`metrics.group_moments`,
whose docstring holds the definition), the exact theory
(E z = d c, Var z = d (A B + c^2)) and the paper's formulas (Thms 4.1-4.3); and the AUC of the
strong and weak adversaries against OUT, pooled over games, with a bootstrap CI that resamples
games and the exact marginal AUC. Beside z, the optimal (likelihood-ratio) statistic Lambda of
:mod:`mtl_tracing.gaussian.optimal` (``lrt``: per adversary its AUC, empirical with CI and
exact, and its IN and OUT moments against the exact ones), from the sampler's ``norms``; the
sufficient sampler then draws O(G T d) more normals, so ``lrt`` is skipped (with a note) above
2^28 G T (d - 1), or always with ``--no-lrt``.
"""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import check_output_file, enable_x64_if
from mtl_tracing.commands._dp import (
    add_game_dp_arguments,
    dp_simulate,
    dp_theory,
    dp_update_payload,
    release_from_args,
)

NAME = "game"
HELP = "simulate the Gaussian tracing game (Sec. 4) and compare with the exact theory"

_ADVERSARIES = ("strong", "weak", "out")
_LRT_ROWS = 1 << 28  # the sufficient sampler's extra draws for Lambda: G T (d - 1) row entries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, required=True, help="T, number of IN tasks")
    parser.add_argument("--samples", type=int, required=True, help="N, samples per task")
    parser.add_argument("--dim", type=int, required=True, help="d, data dimension")
    parser.add_argument("--challenge", type=int, required=True, help="k, challenge batch size")
    parser.add_argument("--task-std", type=float, required=True, help="sbar, std of task means")
    parser.add_argument("--sample-std", type=float, required=True, help="s, std of samples")
    parser.add_argument("--mean", type=float, default=0.0, help="mu_bar (scalar, broadcast)")
    parser.add_argument("--games", type=int, required=True, help="G, independent games (>= 2)")
    parser.add_argument("--seed", type=int, required=True, help="PRNG seed")
    parser.add_argument("--sampler", choices=("sufficient", "faithful"), default="sufficient")
    parser.add_argument("--x64", action="store_true", help="simulate in float64")
    parser.add_argument("--chunk-games", type=int, default=None, help="games per compiled chunk")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (games)")
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument(
        "--no-lrt", action="store_true", help="skip the optimal statistic Lambda (lrt block)"
    )
    add_game_dp_arguments(parser)


def _auc_block(args, pairs, exact_auc, offset: int = 0) -> dict:
    """``{adversary: AUC block}``; ``pairs`` = ((IN, OUT) scores of strong, of weak), (G, T)."""
    import jax

    from mtl_tracing import metrics

    block = {}
    for i, (adv, (s_in, s_out)) in enumerate(zip(("strong", "weak"), pairs, strict=True)):
        ci = metrics.grouped_bootstrap(
            jax.random.fold_in(jax.random.key(args.seed), 1_000_003 + offset + i),
            metrics.auc,
            s_in,
            s_out,
            num_resamples=args.bootstrap,
            paired=True,
        )
        entry = {
            "exact": exact_auc(adv),
            "empirical": float(ci.estimate),
            "ci": [float(ci.low), float(ci.high)],
        }
        block[adv] = entry
    return block


def _lrt_block(args, config, release, scores, norms) -> dict:
    """The optimal statistic Lambda per IN adversary: AUC (empirical with a game-bootstrap CI,
    exact) and IN/OUT moments against the exact ones (exact null under a clipped release,
    which has no closed form; Lambda then uses A + sigma_tot^2 and is not optimal)."""
    import numpy as np

    from mtl_tracing.gaussian import optimal
    from mtl_tracing.metrics import group_moments

    clipped = release is not None and release.clip is not None
    a2 = np.asarray(norms.alpha_sq, np.float64)[:, None]
    out_z, out_sq = np.asarray(scores.out, np.float64), np.asarray(norms.out_sq, np.float64)
    pairs, theory = [], {}
    for i, adv in enumerate(("strong", "weak")):
        abc = optimal.lrt_second_order(config, adv, release)
        lam_in = optimal.lrt_statistic(
            np.asarray(scores[i], np.float64), a2, np.asarray(norms[1 + i], np.float64), *abc
        )
        pairs.append((lam_in, optimal.lrt_statistic(out_z, a2, out_sq, *abc)))
        theory[adv] = None if clipped else optimal.lrt_moments(config, adv, release)

    def exact_auc(adv):
        return None if clipped else optimal.lrt_auc(config, adv, release)

    block = {"statistic": "Lambda = z - (c/2A) ||alpha||^2 - (c/2B) ||beta||^2"}
    for adv, entry in _auc_block(args, pairs, exact_auc, offset=2).items():
        block[adv] = {"auc": entry}
        for h, lam in zip(("in", "out"), pairs[("strong", "weak").index(adv)], strict=True):
            mean, var = (None, None) if theory[adv] is None else theory[adv][h]
            block[adv][h] = {**group_moments(lam)._asdict(), "theory_mean": mean, "theory_var": var}
    return block


def _norms_wanted(args, config) -> str | None:
    """None when the lrt block is computed, else why it is skipped."""
    if args.no_lrt:
        return "--no-lrt"
    rows = args.games * config.tasks * (config.dim - 1)
    if args.sampler == "sufficient" and rows > _LRT_ROWS:
        return f"G T (d - 1) = {rows:,} > 2^28 extra draws for the sufficient sampler"
    return None


def run(args: argparse.Namespace) -> int:
    from mtl_tracing._validate import check_int

    check_int("games", args.games, low=2)
    check_int("seed", args.seed, low=0)
    check_int("bootstrap", args.bootstrap, low=1)
    json_path = check_output_file("--json", args.json)
    release = release_from_args(args)  # None without DP flags: today's game
    enable_x64_if(args.x64)

    import jax
    import jax.numpy as jnp

    from mtl_tracing import results
    from mtl_tracing.gaussian import game
    from mtl_tracing.gaussian.config import GaussianGameConfig
    from mtl_tracing.metrics import group_moments

    config = GaussianGameConfig(
        tasks=args.tasks,
        samples=args.samples,
        dim=args.dim,
        challenge=args.challenge,
        task_std=args.task_std,
        sample_std=args.sample_std,
        mean=args.mean,
    )
    skip_lrt = _norms_wanted(args, config)
    norms = None
    if release is None:
        scores = game.simulate(
            jax.random.key(args.seed),
            config,
            games=args.games,
            sampler=args.sampler,
            dtype=jnp.float64 if args.x64 else jnp.float32,
            chunk_games=args.chunk_games,
            progress=False,
            norms=skip_lrt is None,
        )
    else:
        scores = dp_simulate(args, config, release, norms=skip_lrt is None)
    if skip_lrt is None:
        scores, norms = scores
    mom, exact_auc = dp_theory(config, release)
    payload = results.run_metadata(config=config, seed=args.seed, sampler=args.sampler)
    for adv, z in zip(_ADVERSARIES, scores, strict=True):
        m = mom[adv]
        payload[adv] = {
            **group_moments(z)._asdict(),
            "theory_mean": float(m.mean),
            "theory_var": float(m.var),
            "paper_mean": float(m.paper_mean),
            "paper_var": float(m.paper_var),
        }
    payload["auc"] = _auc_block(
        args, ((scores.strong_in, scores.out), (scores.weak_in, scores.out)), exact_auc
    )
    if release is not None:
        dp_update_payload(payload, args, config, release, scores, exact_auc)
    if norms is None:
        payload["lrt"] = {"skipped": skip_lrt}
    else:
        payload["lrt"] = _lrt_block(args, config, release, scores, norms)
    results.write_json(json_path, payload)

    print(
        f"game  T={config.tasks} N={config.samples} d={config.dim} k={config.challenge} "
        f"sbar={config.task_std:g} s={config.sample_std:g} G={args.games} ({args.sampler})"
    )
    head = f"{'adversary':<9} {'mean':>11} {'+-se':>9} {'theory':>11} {'paper':>11} | "
    head += f"{'var':>11} {'+-se':>9} {'theory':>11} {'paper':>11}"
    print(head)
    for adv in _ADVERSARIES:
        r = payload[adv]
        print(
            f"{adv:<9} {r['mean']:>11.4g} {r['mean_se']:>9.2g} {r['theory_mean']:>11.4g} "
            f"{r['paper_mean']:>11.4g} | {r['var']:>11.4g} {r['var_se']:>9.2g} "
            f"{r['theory_var']:>11.4g} {r['paper_var']:>11.4g}"
        )
    for adv, r in payload["auc"].items():
        ci = f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]"
        print(f"AUC {adv:<6} empirical {r['empirical']:.4f} {ci}  exact {_num(r['exact'])}")
    for adv in ("strong", "weak"):
        if adv in payload["lrt"]:
            r = payload["lrt"][adv]["auc"]
            ci = f"[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]"
            print(
                f"AUC {adv:<6} optimal Lambda {r['empirical']:.4f} {ci}  exact {_num(r['exact'])}"
            )
    if "skipped" in payload["lrt"]:
        print(f"optimal Lambda skipped: {payload['lrt']['skipped']}")
    if release is not None:
        dp, au = payload["dp"], payload["audit"]
        print(f"DP mu {dp['mu']} epsilon {dp['epsilon']}; audit mu_lb {au['mu_lb']:.4f}")
    print(f"wrote {json_path}")
    return 0


def _num(x) -> str:
    return "n/a" if x is None or x != x else f"{x:.4f}"
