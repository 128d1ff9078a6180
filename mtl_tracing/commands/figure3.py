"""``mtl-tracing figure3``: Figure 3 (Sec. 6.5), attack AUC vs generalization gaps in training."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if, int_list

NAME = "figure3"
HELP = "Figure 3: attack AUC vs generalization gaps at training checkpoints (synthetic MTL)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config, 2 checkpoints")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--checkpoints", type=int_list, default=None, help="comma-separated epochs (increasing)"
    )
    parser.add_argument("--x64", action="store_true", help="train and score in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--replot", action="store_true", help="only redraw from the data in --out")


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    from mtl_tracing.experiments import figure3

    if not args.replot:
        config = figure3.QUICK_CONFIG if args.quick else figure3.DEFAULT_CONFIG
        cps = args.checkpoints or (
            figure3.QUICK_CHECKPOINTS if args.quick else figure3.DEFAULT_CHECKPOINTS
        )
        figure3.run(
            args.out,
            config=config,
            checkpoints=tuple(cps),
            seed=args.seed,
            progress=not args.no_progress,
            dtype="float64" if args.x64 else None,
        )
    paths = figure3.plot(args.out)
    payload, _ = figure3.load(args.out)
    for row in payload["checkpoints"]:
        ip, g = row["attacks"]["inner_product"], row["gaps"]
        print(
            f"epoch {row['epochs']}: inner product AUC strong {ip['strong']['auc']:.3f} "
            f"weak {ip['weak']['auc']:.3f}; strong gap {g['strong_gap']['mean']:.3f} "
            f"weak gap {g['weak_gap']['mean']:.3f}"
        )
    for p in paths:
        print(f"wrote {p}")
    return 0
