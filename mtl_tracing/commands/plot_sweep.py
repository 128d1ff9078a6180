"""``mtl-tracing plot-sweep DIR``: draw a finished sweep (AUC and TPR vs each swept field)."""

from __future__ import annotations

import argparse

from mtl_tracing.experiments.sweep_plots import plot_sweep

NAME = "plot-sweep"
HELP = "Draw AUC and TPR@FPR of a sweep folder against each swept field, over exact theory."
DESCRIPTION = (
    HELP + " Empirical points carry their bootstrap CIs; exact-law theory is drawn as a dense "
    "curve over the swept range; a two-field sweep also gets heatmaps. Writes PNG + PDF."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="sweep folder (with sweep.npz and sweep.json)")
    parser.add_argument("--out", default=None, help="figure folder (default: DIR)")
    parser.add_argument("--dense", type=int, default=40, help="theory points per curve")


def run(args: argparse.Namespace) -> int:
    paths = plot_sweep(args.dir, args.out, dense=args.dense)
    for p in paths:
        print(p)
    return 0
