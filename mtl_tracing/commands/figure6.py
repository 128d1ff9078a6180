"""``mtl-tracing figure6``: Figure 6 (App. A.8), attack AUC vs embedding dim, samples, tasks."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if

NAME = "figure6"
HELP = "Figure 6: synthetic-MTL ablations (AUC vs embedding dim, samples per task, tasks)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config and grid (< 1-2 min)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="train and score in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--replot", action="store_true", help="only redraw from the data in --out")


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    from mtl_tracing.experiments import figure6

    if not args.replot:
        kwargs = {"config": figure6.QUICK_CONFIG, "grid": figure6.QUICK_GRID} if args.quick else {}
        figure6.run(
            args.out,
            seed=args.seed,
            progress=not args.no_progress,
            dtype="float64" if args.x64 else None,
            **kwargs,
        )
    paths = figure6.plot(args.out)
    payload, _ = figure6.load(args.out)
    for field, panel in payload["panels"].items():
        for value, cell in zip(panel["values"], panel["cells"], strict=True):
            a = cell["attacks"]
            print(
                f"{field}={value}: variance AUC strong {a['variance']['strong']['auc_mean']:.3f} "
                f"weak {a['variance']['weak']['auc_mean']:.3f}; inner product strong "
                f"{a['inner_product']['strong']['auc_mean']:.3f} "
                f"weak {a['inner_product']['weak']['auc_mean']:.3f}"
            )
    for p in paths:
        print(f"wrote {p}")
    return 0
