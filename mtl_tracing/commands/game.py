"""``mtl-tracing game``: simulate the Gaussian tracing game and compare with the theory.

Flags default to :class:`~mtl_tracing.gaussian.GaussianGameConfig`'s defaults (Figure 7's
configuration, 2000 games, seed 0), so ``mtl-tracing game --out g.json`` runs Figure 7's game.
The computation is :func:`mtl_tracing.experiments.game_report.run_game` (its docstring lists
the JSON's contents); this module parses, calls it, writes ``--out`` and prints.
"""

from __future__ import annotations

import argparse
import dataclasses

from mtl_tracing import results
from mtl_tracing.commands._common import add_option, check_output_file, enable_x64_if
from mtl_tracing.experiments.game_report import render, run_game
from mtl_tracing.gaussian.config import SAMPLERS, DPRelease, GaussianGameConfig
from mtl_tracing.options import Option, rename_error

NAME = "game"
HELP = "Simulate the Gaussian tracing game (Sec. 4) and compare with the exact theory."

#: Old spelling -> flag, accepted (hidden) for one release.
ALIASES = {"--json": "--out", "--bootstrap": "--resamples"}
GAMES = 2000  # as figure7
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GaussianGameConfig)}

#: The game's fields and the DP release's flags (their errors are named by the flag).
OPTIONS = (
    Option("--tasks", int, f"T, number of IN tasks (default {_DEFAULTS['tasks']})"),
    Option("--samples", int, f"N, samples per task (default {_DEFAULTS['samples']})"),
    Option("--dim", int, f"d, data dimension (default {_DEFAULTS['dim']})"),
    Option("--challenge", int, f"k, challenge batch size (default {_DEFAULTS['challenge']})"),
    Option("--task-std", float, f"sbar, std of task means (default {_DEFAULTS['task_std']:g})"),
    Option("--sample-std", float, f"s, std of samples (default {_DEFAULTS['sample_std']:g})"),
    Option("--mean", float, f"mu_bar, scalar, broadcast (default {_DEFAULTS['mean']:g})"),
    Option("--games", int, f"G, independent games, >= 2 (default {GAMES})", GAMES),
    Option("--resamples", int, "bootstrap resamples of games (default 200)", 200),
    Option("--clip", float, "C > 0: clip each task's mean (default: no clipping)"),
    Option("--noise-multiplier", float, "z >= 0: noise z C on the clipped sum", 0.0),
    Option("--release-noise-std", float, "sigma: noise on mu_hat (no guarantee)", 0.0),
    Option("--delta", float, "delta of epsilon (default 1e-5)", 1e-5),
    Option("--level", float, "audit confidence (default 0.95)", 0.95),
)
_CONFIG = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std", "mean")
_RELEASE = ("clip", "noise_multiplier", "release_noise_std", "delta", "level")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    game = parser.add_argument_group("the game (defaults: Figure 7's configuration)")
    release = parser.add_argument_group("DP release (mtl_tracing.gaussian.release)")
    for opt in OPTIONS:
        group = release if opt.dest in _RELEASE else game
        default = _DEFAULTS.get(opt.dest, opt.default)
        add_option(group, opt.flag, aliases=ALIASES, type=opt.type, default=default, help=opt.help)
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="sufficient", help="game sampler")
    parser.add_argument("--chunk-games", type=int, default=None, help="games per compiled chunk")
    parser.add_argument("--x64", action="store_true", help="simulate in float64")
    parser.add_argument("--no-lrt", action="store_true", help="skip the optimal statistic Lambda")
    add_option(parser, "--out", aliases=ALIASES, required=True, metavar="OUT.json",
               help="output JSON path")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    out = check_output_file("--out", args.out)
    enable_x64_if(args.x64)
    try:
        config = GaussianGameConfig(**{k: getattr(args, k) for k in _CONFIG})
        release = DPRelease(args.clip, args.noise_multiplier, args.release_noise_std)
        payload = run_game(
            config,
            games=args.games,
            seed=args.seed,
            sampler=args.sampler,
            release=release,
            resamples=args.resamples,
            chunk_games=args.chunk_games,
            dtype="float64" if args.x64 else "float32",
            lrt=not args.no_lrt,
            delta=args.delta,
            level=args.level,
        )
    except ValueError as err:
        raise rename_error(err, OPTIONS) from None
    results.write_json(out, payload)
    print(render(payload, args.games))
    print(f"wrote {out}")
    return 0
