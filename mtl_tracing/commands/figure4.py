"""``mtl-tracing figure4``: Figure 4 (App. A.7.2); runs the shared Figures 4-5 job."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if

NAME = "figure4"
HELP = (
    "Figure 4 (App. A.7.2): variance statistic, IN vs OUT; "
    "writes the shared figure45 data and both figures."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config (seconds after compile)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="train and score in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--replot", action="store_true", help="only redraw from the data in --out")


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    from mtl_tracing.experiments import figure45

    if not args.replot:
        figure45.run(
            args.out,
            config=figure45.QUICK_CONFIG if args.quick else figure45.DEFAULT_CONFIG,
            seed=args.seed,
            progress=not args.no_progress,
            dtype="float64" if args.x64 else None,
        )
    paths = figure45.plot(args.out)
    payload, _ = figure45.load(args.out)
    v = payload["attacks"]["variance"]
    h = payload["heads"]
    print(
        f"variance AUC strong {v['strong']['auc']:.3f} weak {v['weak']['auc']:.3f}; "
        f"learned head cosine mean {h['learned_cosine']['mean']:.3f} "
        f"(target {h['target_cosine']['mean']:.3f})"
    )
    for p in paths:
        print(f"wrote {p}")
    return 0
