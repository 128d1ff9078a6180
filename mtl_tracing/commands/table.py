"""``mtl-tracing table``: percentile-threshold table (App. A.7, Tables 1-2 layout)."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if

NAME = "table"
HELP = "Tables 1-2 layout: (TPR, FPR) and accuracy at percentile thresholds, synthetic MTL."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config (seconds after compile)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="train and score in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--replot", action="store_true", help="only rewrite table.md from table.json"
    )


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    from mtl_tracing.experiments import table

    if not args.replot:
        table.run(
            args.out,
            config=table.QUICK_CONFIG if args.quick else table.DEFAULT_CONFIG,
            seed=args.seed,
            progress=not args.no_progress,
            dtype="float64" if args.x64 else None,
        )
    paths = table.plot(args.out)
    print(paths[0].read_text())
    for p in paths:
        print(f"wrote {p}")
    return 0
