"""``mtl-tracing figure7``: simulate and draw Figure 7 (tracing attack on mean estimation)."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if

NAME = "figure7"
HELP = "Figure 7: ROC and score distributions of the tracing attack, simulation vs exact theory."
DESCRIPTION = (
    HELP + " Writes figure7.json, figure7.npz, figure7.png and figure7.pdf into --out. "
    "Defaults are the paper's setting T=256, d=256, N=8, k=4, sbar=s=1."
)

# CLI flag -> GaussianGameConfig field (see the notation table in DEVELOPERS.md).
_OVERRIDES = (
    ("--tasks", "tasks", int, "T, IN tasks in the release mu_hat"),
    ("--dim", "dim", int, "d, data dimension"),
    ("--samples", "samples", int, "N, training samples per task"),
    ("--challenge", "challenge", int, "k, challenge batch size (k <= N)"),
    ("--task-std", "task_std", float, "sbar, std of task means"),
    ("--sample-std", "sample_std", float, "s, std of samples around their task mean"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--games", type=int, default=2000, help="G, games (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--sampler",
        default="sufficient",
        choices=("sufficient", "faithful"),
        help="game sampler: 'sufficient' (fast, exact in law) or 'faithful' (default sufficient)",
    )
    for flag, _field, typ, text in _OVERRIDES:
        parser.add_argument(flag, type=typ, default=None, help=f"{text} (default: paper value)")
    parser.add_argument(
        "--resamples", type=int, default=200, help="bootstrap resamples of games (default 200)"
    )
    parser.add_argument("--x64", action="store_true", help="simulate in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the figure from the data in --out"
    )


def _fmt_ci(entry: dict) -> str:
    lo, hi = entry["ci"]
    return f"{entry['empirical']:.4f} [{lo:.4f}, {hi:.4f}]"


def headline_table(payload: dict) -> str:
    """Short text table of the headline numbers of a ``figure7.json`` payload."""
    head = f"{'adversary':<9} {'AUC (95% CI)':<26} {'exact':>7}"
    tpr_heads = []
    first = next(iter(payload["adversaries"].values()))
    for t in first["tpr_at_fpr"]:
        tpr_heads.append(f"TPR@{t['target_fpr']:g} (CI) / exact")
    lines = [head + "  " + "  ".join(f"{h:<36}" for h in tpr_heads)]
    for adv, s in payload["adversaries"].items():
        row = f"{adv:<9} {_fmt_ci(s['auc']):<26} {s['auc']['exact']:>7.4f}"
        for t in s["tpr_at_fpr"]:
            cell = f"{_fmt_ci(t)} / {t['exact']:.4f}"
            row += f"  {cell:<36}"
        lines.append(row)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    from mtl_tracing.experiments import figure7

    if args.replot:
        paths = figure7.plot(args.out)
    else:
        overrides = {field: getattr(args, field) for _f, field, _t, _h in _OVERRIDES}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        config = figure7.DEFAULT_CONFIG.replace(**overrides)
        dtype = None
        if args.x64:
            import jax.numpy as jnp

            dtype = jnp.float64
        figure7.run(
            args.out,
            config=config,
            games=args.games,
            seed=args.seed,
            sampler=args.sampler,
            progress=not args.no_progress,
            dtype=dtype,
            num_resamples=args.resamples,
        )
        paths = figure7.plot(args.out)
    payload, _ = figure7.load(args.out)
    print(headline_table(payload))
    for p in paths:
        print(f"wrote {p}")
    return 0
